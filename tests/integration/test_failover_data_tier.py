"""Lose the data tier's leaders under load, one at a time, on the lab's HA data tier (3
PostgreSQL members with Patroni, 3 Redis hosts with a Sentinel each).

- The PostgreSQL primary's host: Patroni elects a new primary, every Airflow host's
  HAProxy follows it, the run succeeds without a task failing, nothing committed is lost,
  and the old primary comes back as a replica.
- The Redis master's host: the sentinels promote a replica, the workers, the scheduler and
  Flower follow it, the run succeeds, new work flows, and the old master comes back as a
  replica of the new one. One worker's queue was cancelled and given back before (a drain
  that was undone): it must consume again after the reconnect.

Each lost host is started again as soon as its failover is done, so that the cluster is
whole for what follows. Times are measured, never asserted (.lab/measurements.jsonl).
"""

from __future__ import annotations

import time
import uuid

import pytest

from clusterops import datatier
from clusterops.cluster import AirflowAPI, Flower, wait_for
from clusterops.lab.hosts import LabSpec

from .conftest import SMOKE_DAG, lab_host
from .faults import Load, consuming, host_lost, record, separate_leaders, tries

pytestmark = pytest.mark.lab

CANARY = "CREATE TABLE IF NOT EXISTS failover_canary (token text PRIMARY KEY, at timestamptz)"


def psql(lab: LabSpec, name: str, sql: str) -> str:
    """Run SQL in the `postgres` database of member `name`, as the postgres OS user."""
    command = f"sudo -u postgres psql -XAtq -v ON_ERROR_STOP=1 -d postgres -c {sql!r}"
    return str(lab_host(lab, name).check_output(command)).strip()


@pytest.fixture(scope="module")
def members(lab: LabSpec) -> dict[str, str]:
    found = {name: lab.host(name).address for name in lab.group("postgres")}
    if len(found) < 3:  # a failover needs a majority left
        pytest.skip("the lab's postgres group has fewer than 3 hosts")
    return found


@pytest.fixture(scope="module")
def brokers(lab: LabSpec) -> dict[str, str]:
    found = {lab.host(name).address: name for name in lab.group("redis")}
    if len(found) < 3:  # a failover needs a majority of sentinels
        pytest.skip("the lab's redis group has fewer than 3 hosts")
    return found


def test_one_leader_and_streaming_replicas(members: dict[str, str]) -> None:
    cluster = datatier.patroni_cluster(members.values()) or []
    roles = sorted(m.role for m in cluster)
    assert roles.count("leader") == 1, cluster
    assert "sync_standby" in roles, cluster  # synchronous_mode: a commit is on two members
    assert all(m.state in {"running", "streaming"} for m in cluster), cluster


def test_one_master_and_connected_replicas(brokers: dict[str, str], vault: dict[str, str]) -> None:
    master = datatier.sentinel_master(brokers, vault["vault_redis_sentinel_password"])
    assert master in brokers
    info = datatier.redis_replication(master, vault["vault_redis_admin_password"]) or {}
    assert info.get("role") == "master"
    assert info.get("connected_slaves") == len(brokers) - 1


def test_primary_host_lost_under_load(
    lab: LabSpec, members: dict[str, str], api: AirflowAPI, vault: dict[str, str]
) -> None:
    separate_leaders(
        lab, vault["vault_redis_sentinel_password"], vault["vault_redis_admin_password"]
    )
    old = datatier.leader(members.values())
    assert old is not None
    survivors = [address for name, address in members.items() if name != old.name]
    token = uuid.uuid4().hex
    load = Load(api)
    load.start()
    psql(lab, old.name, CANARY)
    # Committed on the primary with synchronous replication: it must survive the host.
    insert = f"INSERT INTO failover_canary VALUES ('{token}', now())"  # noqa: S608 -- a uuid
    psql(lab, old.name, insert)

    with host_lost(lab, old.name) as killed:

        def new_leader() -> datatier.Member | None:
            found = datatier.leader(survivors)
            return found if found is not None and found.name != old.name else None

        new = wait_for("a new primary", new_leader, timeout=120, interval=0.5)
        failover = time.monotonic() - killed
    # The old primary's host is starting again meanwhile.
    select = f"SELECT count(*) FROM failover_canary WHERE token = '{token}'"  # noqa: S608
    assert psql(lab, new.name, select) == "1"
    state, holds = load.finish()
    run_seconds = time.monotonic() - load.started

    assert state == "success", holds
    assert {ti["state"] for ti in holds} == {"success"}
    # No task instance failed for lack of the database: none needed a second try.
    assert tries(holds) == {1: load.tasks}

    streaming = (  # Patroni names each member's replication connection after the member
        "SELECT count(*) FROM pg_stat_replication"  # noqa: S608 -- an inventory name
        f" WHERE application_name = '{old.name}' AND state = 'streaming'"
    )

    def rejoined() -> str | None:
        return "yes" if psql(lab, new.name, streaming) == "1" else None

    wait_for(f"{old.name} to stream from {new.name}", rejoined, timeout=180)
    record(
        "postgres_primary_host_lost",
        failover_seconds=round(failover, 1),
        run_seconds=round(run_seconds, 1),
        added_to_run_seconds=round(run_seconds - load.seconds, 1),
        rejoined_after_kill_seconds=round(time.monotonic() - killed, 1),
        tasks=load.tasks,
    )


def test_master_host_lost_under_load(
    lab: LabSpec, brokers: dict[str, str], vault: dict[str, str], api: AirflowAPI, flower: Flower
) -> None:
    sentinel_password = vault["vault_redis_sentinel_password"]
    separate_leaders(lab, sentinel_password, vault["vault_redis_admin_password"])
    old = datatier.sentinel_master(brokers, sentinel_password)
    assert old is not None
    survivors = [address for address in brokers if address != old]
    names = lab.group("airflow_worker")
    workers = {f"celery@{name}" for name in names}

    def all_workers_back() -> set[str] | None:
        # Flower asks every worker over the broker: only those on the current master answer.
        alive = flower.alive()
        seen = {n for n, report in flower.workers().items() if alive.get(n) and report}
        return seen if seen >= workers else None

    # A switchover by separate_leaders moves the clients too: wait until all have followed.
    wait_for("every worker to answer through Flower", all_workers_back, timeout=120)
    # A drain undone: the queue is cancelled and given back (remove_worker.py does this
    # when a drain times out). Celery 5.6 alone would consume nothing after the reconnect.
    flower.cancel_consumer(f"celery@{names[0]}", "default")
    flower.add_consumer(f"celery@{names[0]}", "default")
    load = Load(api)
    load.start()

    with host_lost(lab, brokers[old]) as killed:

        def new_master() -> str | None:
            found = datatier.sentinel_master(survivors, sentinel_password)
            return found if found is not None and found != old else None

        new = wait_for("a new Redis master", new_master, timeout=120, interval=0.5)
        failover = time.monotonic() - killed

    wait_for("every worker to answer through Flower", all_workers_back, timeout=180)
    workers_back = time.monotonic() - killed
    wait_for("every worker to consume 'default'", lambda: consuming(flower, names), timeout=60)
    state, holds = load.finish()
    run_seconds = time.monotonic() - load.started
    # New work after the failover: published to the new master and consumed from it.
    smoke = api.trigger(SMOKE_DAG)
    smoke_state = api.wait_for_run(SMOKE_DAG, smoke, timeout=300)["state"]

    assert state == "success", holds
    assert {ti["state"] for ti in holds} == {"success"}
    assert smoke_state == "success"

    def rejoined() -> dict[str, object] | None:
        info = datatier.redis_replication(old, vault["vault_redis_admin_password"]) or {}
        linked = info.get("role") == "slave" and info.get("master_link_status") == "up"
        return info if linked and info.get("master_host") == new else None

    wait_for(f"{brokers[old]} to replicate {brokers[new]}", rejoined, timeout=180)
    record(
        "redis_master_host_lost",
        failover_seconds=round(failover, 1),
        workers_back_seconds=round(workers_back, 1),
        run_seconds=round(run_seconds, 1),
        added_to_run_seconds=round(run_seconds - load.seconds, 1),
        rejoined_after_kill_seconds=round(time.monotonic() - killed, 1),
        tries=str(tries(holds)),
    )
