#!/usr/bin/env python3
"""Add a Celery worker. Run with --help."""

from clusterops.console import run_main
from clusterops.worker_cli import add_main

if __name__ == "__main__":
    run_main(add_main)
