"""Lose the Redis master's host under load: the sentinels promote a replica, the workers,
the scheduler and Flower follow it, the run succeeds, and the old master comes back as a
replica of the new one.

Runs against the lab's HA data tier (3 Redis hosts, each with a Sentinel). It measures,
never asserts, the times: failover, workers back, the run's delay, the rejoin.
"""

from __future__ import annotations

import time

import pytest

from clusterops import datatier
from clusterops.cluster import AirflowAPI, Flower, wait_for
from clusterops.lab.hosts import LabSpec
from clusterops.layout import LAYOUT

from .conftest import SMOKE_DAG
from .faults import Load, host_lost, record, second_deploy_changes, separate_leaders, tries

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def brokers(lab: LabSpec) -> dict[str, str]:
    found = {lab.host(name).address: name for name in lab.group("redis")}
    if len(found) < 3:  # a failover needs a majority of sentinels
        pytest.skip("the lab's redis group has fewer than 3 hosts")
    return found


@pytest.fixture(scope="module")
def flower(lab: LabSpec, master: str, vault: dict[str, str]) -> Flower:
    return Flower(
        f"http://{lab.host(master).address}:{LAYOUT.flower_port}",
        LAYOUT.flower_user,
        vault["vault_airflow_flower_password"],
    )


def test_one_master_and_connected_replicas(brokers: dict[str, str], vault: dict[str, str]) -> None:
    master = datatier.sentinel_master(brokers, vault["vault_redis_sentinel_password"])
    assert master in brokers
    info = datatier.redis_replication(master, vault["vault_redis_airflow_password"]) or {}
    assert info.get("role") == "master"
    assert info.get("connected_slaves") == len(brokers) - 1


def test_master_host_lost_under_load(
    lab: LabSpec, brokers: dict[str, str], vault: dict[str, str], api: AirflowAPI, flower: Flower
) -> None:
    sentinel_password = vault["vault_redis_sentinel_password"]
    separate_leaders(lab, sentinel_password, vault["vault_redis_airflow_password"])
    old = datatier.sentinel_master(brokers, sentinel_password)
    assert old is not None
    survivors = [address for address in brokers if address != old]
    workers = {f"celery@{name}" for name in lab.group("airflow_worker")}
    load = Load(api)
    load.start()

    with host_lost(lab, brokers[old]) as killed:

        def new_master() -> str | None:
            found = datatier.sentinel_master(survivors, sentinel_password)
            return found if found is not None and found != old else None

        new = wait_for("a new Redis master", new_master, timeout=120, interval=0.5)
        failover = time.monotonic() - killed

        def all_workers_back() -> set[str] | None:
            # Flower asks every worker over the broker: only those on the new master answer.
            alive = flower.alive()
            seen = {n for n, report in flower.workers().items() if alive.get(n) and report}
            return seen if seen >= workers else None

        wait_for("every worker to answer through Flower", all_workers_back, timeout=180)
        workers_back = time.monotonic() - killed
        state, holds = load.finish()
        run_seconds = time.monotonic() - load.started
        # New work after the failover: published to the new master and consumed from it.
        smoke = api.trigger(SMOKE_DAG)
        smoke_state = api.wait_for_run(SMOKE_DAG, smoke, timeout=300)["state"]

    assert state == "success", holds
    assert {ti["state"] for ti in holds} == {"success"}
    assert smoke_state == "success"

    def rejoined() -> dict[str, object] | None:
        info = datatier.redis_replication(old, vault["vault_redis_airflow_password"]) or {}
        linked = info.get("role") == "slave" and info.get("master_link_status") == "up"
        return info if linked and info.get("master_host") == new else None

    wait_for(f"{brokers[old]} to replicate {brokers[new]}", rejoined, timeout=180)
    rejoin = time.monotonic() - killed
    record(
        "redis_master_host_lost",
        failover_seconds=round(failover, 1),
        workers_back_seconds=round(workers_back, 1),
        run_seconds=round(run_seconds, 1),
        added_to_run_seconds=round(run_seconds - load.seconds, 1),
        rejoined_after_kill_seconds=round(rejoin, 1),
        tries=str(tries(holds)),
    )
    changed = second_deploy_changes()
    assert set(changed.values()) == {0}, changed
    assert datatier.sentinel_master(brokers, sentinel_password) == new
