#!/usr/bin/env python3
"""Run the molecule scenarios, several at a time. Run with --help."""

from clusterops.console import run_main
from clusterops.molecule_cli import main

if __name__ == "__main__":
    run_main(main)
