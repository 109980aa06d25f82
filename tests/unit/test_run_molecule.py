"""run_molecule.py finds every test scenario and starts the slow ones first."""

from __future__ import annotations

import pytest

from clusterops import molecule_cli
from clusterops.console import Failure


def test_every_role_scenario_and_no_benchmark_is_found() -> None:
    names = [s.name for s in molecule_cli.discover()]
    assert names[:3] == ["role:airflow_master", "role:airflow_worker", "role:airflow_common"]
    assert {"role:git_server", "role:postgresql", "role:redis", "scenario:lab"} <= set(names)
    assert "scenario:bench_local_executor" not in names
    assert len(names) == len(set(names))


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(Failure, match="unknown scenario"):
        molecule_cli.main(["role:nope"])
