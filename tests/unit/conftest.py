"""Fixtures shared by the unit tests: copies of the project's inventories to edit freely."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clusterops.paths import LAB_INVENTORY


@pytest.fixture
def lab_inventory(tmp_path: Path) -> Path:
    """A private copy of inventories/lab/ (hosts.yml and group_vars, without the vault)."""
    copy = tmp_path / "lab"
    shutil.copytree(LAB_INVENTORY, copy, ignore=shutil.ignore_patterns("vault.yml"))
    return copy
