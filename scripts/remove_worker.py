#!/usr/bin/env python3
"""Remove a Celery worker. Run with --help."""

from clusterops.console import run_main
from clusterops.worker_cli import remove_main

if __name__ == "__main__":
    run_main(remove_main)
