"""`python -m clusterops.lab ...` is scripts/lab.py without knowing where scripts/ is."""

from clusterops.console import run_main
from clusterops.lab.cli import main

run_main(main)
