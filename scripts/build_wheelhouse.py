#!/usr/bin/env python3
"""Fetch the wheels every Airflow host installs into one archive. Run with --help."""

from clusterops.console import run_main
from clusterops.wheelhouse_cli import main

if __name__ == "__main__":
    run_main(main)
