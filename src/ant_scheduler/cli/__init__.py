"""The `ant` command."""
