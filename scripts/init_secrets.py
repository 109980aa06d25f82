#!/usr/bin/env python3
"""Generate the cluster's secrets into an inventory's Ansible Vault. Run with --help."""

from clusterops.console import run_main
from clusterops.secrets_cli import main

if __name__ == "__main__":
    run_main(main)
