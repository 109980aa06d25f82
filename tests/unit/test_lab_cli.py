"""lab.py's command line: help, and bad input refused before anything is created."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from clusterops.paths import PROJECT_ROOT

LAB = [sys.executable, str(PROJECT_ROOT / "scripts" / "lab.py")]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAB, *args], capture_output=True, text=True, check=False)


def test_help_explains_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("up", "down", "status", "ssh", "image"):
        assert f"\n    {command} " in result.stdout
    assert "inventories/lab/hosts.yml" in result.stdout


def test_unknown_host_is_one_line_and_exit_2(lab_inventory: Path) -> None:
    result = run("-i", str(lab_inventory), "ssh", "worker-9")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown lab host 'worker-9' (lab 'airflow-lab' has: "
        "scratch-1, data-1, data-2, data-3, backup-1, git-1, aws-1, master-1, master-2, "
        "worker-1, worker-2)"
    ]


def test_bad_size_leaves_the_inventory_as_it_was(lab_inventory: Path) -> None:
    hosts = lab_inventory / "hosts.yml"
    before = hosts.read_bytes()
    result = run("-i", str(lab_inventory), "up", "--workers", "0", "--masters", "3")
    assert result.returncode == 2
    assert "airflow_worker size must be between 1 and 99, not 0" in result.stderr
    assert hosts.read_bytes() == before
