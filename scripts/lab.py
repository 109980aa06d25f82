#!/usr/bin/env python3
"""Manage the local lab of VM-like containers. Run with --help for the details."""

from clusterops.console import run_main
from clusterops.lab.cli import main

if __name__ == "__main__":
    run_main(main)
