#!/usr/bin/env python3
"""Publish dags/ to the lab's git server. Run with --help."""

from clusterops.console import run_main
from clusterops.dags_cli import main

if __name__ == "__main__":
    run_main(main)
