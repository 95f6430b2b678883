"""`python -m ant_scheduler.cli` runs the `ant` command."""

from ant_scheduler.cli.main import main

if __name__ == "__main__":
    main()
