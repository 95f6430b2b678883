"""Executors start, watch, kill and re-adopt task processes."""
