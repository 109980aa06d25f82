"""run_molecule.py finds every test scenario and decides which start when."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterops import molecule_cli
from clusterops.console import Failure
from clusterops.molecule_cli import Scenario, wheelhouse_dir

MASTER, WORKER, COMMON = "role:airflow_master", "role:airflow_worker", "role:airflow_common"
OTHERS = ["role:git_server", "role:postgresql", "role:redis", "scenario:lab"]
ALL = [MASTER, WORKER, COMMON, *OTHERS]


def test_every_role_scenario_and_no_benchmark_is_found() -> None:
    found = [s.name for s in molecule_cli.discover()]
    assert found[0] == MASTER
    assert found.index(WORKER) < found.index(COMMON) < found.index("role:redis")
    assert found.index("role:postgresql") < found.index("scenario:lab")
    assert set(OTHERS) <= set(found)
    assert "scenario:bench_local_executor" not in found
    assert len(found) == len(set(found))


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(Failure, match="unknown scenario"):
        molecule_cli.main(["role:nope"])


def test_the_wheelhouse_folder_comes_from_the_environment() -> None:
    assert wheelhouse_dir({}) == molecule_cli.WHEELHOUSE_DIR
    assert wheelhouse_dir({"AIRFLOW_WHEELHOUSE_DIR": ""}) is None
    relative = wheelhouse_dir({"AIRFLOW_WHEELHOUSE_DIR": "some/wheels"})
    assert relative == Path.cwd() / "some" / "wheels"


def test_scenarios_run_slowest_first_and_report_each_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_all() with the scenarios' runs faked: one place, so they run in order."""
    order: list[str] = []

    def run(scenario: Scenario, log_dir: Path, env: dict[str, str]) -> tuple[Scenario, int, float]:
        order.append(scenario.name)
        assert env["AIRFLOW_WHEELHOUSE_DIR"] == "/w"
        return scenario, 1 if scenario.name == MASTER else 0, 0.0

    monkeypatch.setattr(molecule_cli, "run", run)
    chosen = [s for s in molecule_cli.discover() if s.name in (MASTER, COMMON, "role:redis")]
    codes = molecule_cli.run_all(chosen, 1, tmp_path, {"AIRFLOW_WHEELHOUSE_DIR": "/w"})
    assert order == [MASTER, COMMON, "role:redis"]
    assert {s.name: code for s, code in codes.items()} == {MASTER: 1, COMMON: 0, "role:redis": 0}
