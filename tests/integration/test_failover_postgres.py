"""Lose the PostgreSQL primary's host under load: Patroni elects a new primary, every
Airflow host's HAProxy follows it, the run succeeds without a task failing, nothing
committed is lost, and the old primary comes back as a replica.

Runs against the lab's HA data tier (3 members). It measures, never asserts, the times:
failover, the delay it adds to the run, the rejoin (.lab/measurements.jsonl).
"""

from __future__ import annotations

import time
import uuid

import pytest

from clusterops import datatier
from clusterops.cluster import AirflowAPI, wait_for
from clusterops.lab.hosts import LabSpec

from .conftest import lab_host
from .faults import Load, host_lost, record, second_deploy_changes, separate_leaders, tries

pytestmark = pytest.mark.lab

CANARY = "CREATE TABLE IF NOT EXISTS failover_canary (token text PRIMARY KEY, at timestamptz)"


def psql(lab: LabSpec, name: str, sql: str) -> str:
    """Run SQL in the `postgres` database of member `name`, as the postgres OS user."""
    command = f"sudo -u postgres psql -XAtq -v ON_ERROR_STOP=1 -d postgres -c {sql!r}"
    return str(lab_host(lab, name).check_output(command)).strip()


def members(lab: LabSpec) -> dict[str, str]:
    return {name: lab.host(name).address for name in lab.group("postgres")}


@pytest.fixture(scope="module")
def ha(lab: LabSpec) -> dict[str, str]:
    found = members(lab)
    if len(found) < 3:  # a failover needs a majority left
        pytest.skip("the lab's postgres group has fewer than 3 hosts")
    return found


def test_one_leader_and_streaming_replicas(ha: dict[str, str]) -> None:
    cluster = datatier.patroni_cluster(ha.values()) or []
    roles = sorted(m.role for m in cluster)
    assert roles.count("leader") == 1, cluster
    assert "sync_standby" in roles, cluster  # synchronous_mode: a commit is on two members
    assert all(m.state in {"running", "streaming"} for m in cluster), cluster


def test_primary_host_lost_under_load(
    lab: LabSpec, ha: dict[str, str], api: AirflowAPI, vault: dict[str, str]
) -> None:
    separate_leaders(
        lab, vault["vault_redis_sentinel_password"], vault["vault_redis_airflow_password"]
    )
    old = datatier.leader(ha.values())
    assert old is not None
    survivors = [address for name, address in ha.items() if name != old.name]
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
    rejoin = time.monotonic() - killed
    record(
        "postgres_primary_host_lost",
        failover_seconds=round(failover, 1),
        run_seconds=round(run_seconds, 1),
        added_to_run_seconds=round(run_seconds - load.seconds, 1),
        rejoined_after_kill_seconds=round(rejoin, 1),
        tasks=load.tasks,
    )
    changed = second_deploy_changes()
    assert set(changed.values()) == {0}, changed
    after = datatier.leader(ha.values())
    assert after is not None and after.name == new.name  # a deploy never moves the primary
