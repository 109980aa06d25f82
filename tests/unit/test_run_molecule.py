"""run_molecule.py finds every test scenario and decides which start when."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from clusterops import molecule_cli
from clusterops.console import Failure
from clusterops.molecule_cli import CacheWatch, Scenario, Schedule, venv_cache_dir

MASTER, WORKER, COMMON = "role:airflow_master", "role:airflow_worker", "role:airflow_common"
OTHERS = ["role:git_server", "role:postgresql", "role:redis", "scenario:lab"]
ALL = [MASTER, WORKER, COMMON, *OTHERS]


def scenarios(*names: str) -> list[Scenario]:
    return [Scenario(name, Path(), ("test",)) for name in names]


def names(started: list[Scenario]) -> list[str]:
    return [s.name for s in started]


def by_name(schedule: Schedule, name: str) -> Scenario:
    return next(s for s in schedule.running if s.name == name)


def test_every_role_scenario_and_no_benchmark_is_found() -> None:
    found = [s.name for s in molecule_cli.discover()]
    assert found[:3] == [MASTER, WORKER, COMMON]
    assert set(OTHERS) <= set(found)
    assert "scenario:bench_local_executor" not in found
    assert len(found) == len(set(found))


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(Failure, match="unknown scenario"):
        molecule_cli.main(["role:nope"])


def test_with_the_cache_one_airflow_scenario_leads_and_the_others_wait_for_its_archive() -> None:
    schedule = Schedule(scenarios(*ALL), 2, cached=True)
    assert names(schedule.start()) == [COMMON, "role:git_server"]
    assert schedule.holding
    schedule.finished(by_name(schedule, "role:git_server"))
    assert names(schedule.start()) == ["role:postgresql"]
    # The archive appears while both places are taken: nothing starts until one is free.
    schedule.cache_filled()
    assert not schedule.holding
    assert schedule.start() == []
    schedule.finished(by_name(schedule, "role:postgresql"))
    assert names(schedule.start()) == [MASTER]
    schedule.finished(by_name(schedule, COMMON))
    assert names(schedule.start()) == [WORKER]
    schedule.finished(by_name(schedule, WORKER))
    assert names(schedule.start()) == ["role:redis"]
    schedule.finished(by_name(schedule, MASTER))
    assert names(schedule.start()) == ["scenario:lab"]
    schedule.finished(by_name(schedule, "role:redis"))
    schedule.finished(by_name(schedule, "scenario:lab"))
    assert schedule.done


def test_without_an_archive_the_airflow_scenarios_wait_until_the_leader_ends() -> None:
    schedule = Schedule(scenarios(*ALL), 2, cached=True)
    assert names(schedule.start()) == [COMMON, "role:git_server"]
    for other in OTHERS:
        schedule.finished(by_name(schedule, other))
        following = names(schedule.start())
        assert MASTER not in following and WORKER not in following
    assert names(schedule.running) == [COMMON]
    assert schedule.holding
    schedule.finished(by_name(schedule, COMMON))
    assert names(schedule.start()) == [MASTER, WORKER]


def test_more_places_go_to_scenarios_without_airflow_while_the_leader_installs() -> None:
    schedule = Schedule(scenarios(*ALL), 4, cached=True)
    assert names(schedule.start()) == [COMMON, *OTHERS[:3]]


def test_one_at_a_time_the_leader_comes_first_then_the_slowest() -> None:
    schedule = Schedule(scenarios(*ALL), 1, cached=True)
    order = []
    while not schedule.done:
        started = schedule.start()
        order += names(started)
        schedule.finished(started[0])
    assert order == [COMMON, MASTER, WORKER, *OTHERS]


def test_the_quickest_of_the_chosen_airflow_scenarios_leads() -> None:
    schedule = Schedule(scenarios(MASTER, WORKER, "role:redis"), 2, cached=True)
    assert names(schedule.start()) == [WORKER, "role:redis"]


def test_without_the_cache_the_slowest_start_first() -> None:
    schedule = Schedule(scenarios(*ALL), 2, cached=False)
    assert not schedule.holding
    assert names(schedule.start()) == [MASTER, WORKER]


def test_a_single_airflow_scenario_waits_for_nothing() -> None:
    schedule = Schedule(scenarios(MASTER, *OTHERS), 2, cached=True)
    assert not schedule.holding
    assert names(schedule.start()) == [MASTER, "role:git_server"]


def test_the_cache_folder_comes_from_the_environment() -> None:
    assert venv_cache_dir({}) == molecule_cli.VENV_CACHE_DIR
    assert venv_cache_dir({"AIRFLOW_VENV_CACHE_DIR": ""}) is None
    relative = venv_cache_dir({"AIRFLOW_VENV_CACHE_DIR": "some/cache"})
    assert relative == Path.cwd() / "some" / "cache"


def test_only_a_whole_new_archive_counts_as_a_filled_cache(tmp_path: Path) -> None:
    cache = tmp_path / "venv-cache"
    assert CacheWatch(cache).new_archives() == []  # no folder yet: the role creates it
    cache.mkdir()
    (cache / "3.3.1-0123456789-debian12-x86_64-py3.11.tar.gz").write_bytes(b"old")
    watch = CacheWatch(cache)
    # Half-written: the role's temporary folder, and temporary files of Ansible's copy.
    (cache / ".partial-x1y2").mkdir()
    (cache / ".partial-x1y2" / "3.3.2-0123456789-debian12-x86_64-py3.11.tar.gz").write_bytes(b"")
    (cache / "tmpa1b2c3").write_bytes(b"")
    (cache / ".ansible_tmpd4e5f6.tar.gz").write_bytes(b"")
    assert watch.new_archives() == []
    (cache / "3.3.2-0123456789-debian12-x86_64-py3.11.tar.gz").write_bytes(b"new")
    assert watch.new_archives() == ["3.3.2-0123456789-debian12-x86_64-py3.11.tar.gz"]


def test_the_others_start_while_the_leader_runs_once_its_archive_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_all() with the scenarios' runs faked: the leader leaves an archive, then waits."""
    cache = tmp_path / "venv-cache"
    monkeypatch.setenv("AIRFLOW_VENV_CACHE_DIR", str(cache))
    monkeypatch.setattr(molecule_cli, "POLL_SECONDS", 0.01)
    events: list[str] = []
    master_started = threading.Event()

    def run(scenario: Scenario, log_dir: Path) -> tuple[Scenario, int, float]:
        events.append(f"{scenario.name} started")
        if scenario.name == COMMON:
            cache.mkdir()
            (cache / "3.3.2-0123456789-debian12-x86_64-py3.11.tar.gz").write_bytes(b"")
            master_started.wait(timeout=5)
        else:
            master_started.set()
        events.append(f"{scenario.name} ended")
        return scenario, 1 if scenario.name == MASTER else 0, 0.0

    monkeypatch.setattr(molecule_cli, "run", run)
    codes = molecule_cli.run_all(scenarios(MASTER, COMMON), 2, tmp_path)
    assert {s.name: code for s, code in codes.items()} == {MASTER: 1, COMMON: 0}
    assert events.index(f"{MASTER} started") < events.index(f"{COMMON} ended")
