"""Three members: etcd healthy with authentication on, one primary and two streaming
replicas (one synchronous), and a real failover: the primary's Patroni and PostgreSQL
are killed, a replica takes over within a bounded time, and the old primary rejoins as
a replica. The tests run in this order and share the cluster."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import testinfra
import yaml
from testinfra.host import Host

from clusterops.paths import ROLES_DIR

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
CLUSTER = yaml.safe_load((ROLES_DIR / "cluster_defaults/defaults/main.yml").read_text())
ETCD_PORT = int(CLUSTER["airflow_etcd_client_port"])
REST_PORT = int(CLUSTER["airflow_patroni_port"])
UNIT = "patroni@15-main"
NAMES = ("pg-1", "pg-2", "pg-3")
# Patroni's timing (ttl 30, loop_wait 10): the lock of a dead primary expires within ttl,
# and a replica notices within loop_wait. The bounds leave room for a slow shared host.
FAILOVER_BOUND_S = 90.0
REJOIN_BOUND_S = 180.0
WRITABLE_BOUND_S = 30.0


def secret(name: str) -> str:
    return (EPHEMERAL / f"secret_{name}").read_text().strip()


@pytest.fixture(scope="module")
def members() -> dict[str, Host]:
    return {
        name: testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")
        for name in NAMES
    }


def address(host: Host) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


def cluster(members: dict[str, Host], exclude: str = "") -> dict[str, Any]:
    """GET /cluster from the first member that answers (other than `exclude`)."""
    for name, host in members.items():
        if name == exclude:
            continue
        try:
            answer = requests.get(f"http://{address(host)}:{REST_PORT}/cluster", timeout=3)
            return dict(answer.json())
        except requests.RequestException:
            continue
    return {"members": []}


def roles(view: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {m["name"]: (m["role"], m["state"]) for m in view["members"]}


def leader(view: dict[str, Any]) -> str | None:
    found = [
        m["name"] for m in view["members"] if m["role"] == "leader" and m["state"] == "running"
    ]
    return found[0] if len(found) == 1 else None


def wait_for(condition: Callable[[], Any], bound: float, step: float = 0.5) -> tuple[Any, float]:
    """Poll until condition() is truthy; its value and the seconds it took."""
    started = time.monotonic()
    while True:
        value = condition()
        elapsed = time.monotonic() - started
        if value or elapsed > bound:
            return value, elapsed
        time.sleep(step)


# The queries below interpolate only values the tests made themselves (uuid hex).
def sql(host: Host, query: str, dbname: str = "postgres") -> tuple[int, str]:
    with host.sudo("postgres"):
        result = host.run("psql -d %s -XAtc %s", dbname, query)
    return result.rc, (result.stdout.strip() or result.stderr.strip())


def has_row(host: Host, value: str) -> bool:
    query = f"select exists (select from probe where v = '{value}')"  # noqa: S608
    return sql(host, query) == (0, "t")


def streaming(primary: Host) -> list[tuple[str, str, str]]:
    rc, out = sql(primary, "select application_name, state, sync_state from pg_stat_replication")
    assert rc == 0, out
    return [tuple(line.split("|")) for line in out.splitlines() if line]  # type: ignore[misc]


def record(name: str, value: str) -> None:
    (EPHEMERAL / name).write_text(value + "\n")
    print(f"\n{name}: {value}")


def test_etcd_has_three_healthy_members_and_auth_on(members: dict[str, Host]) -> None:
    host = members["pg-1"]
    env = f"ETCDCTL_USER=root ETCDCTL_PASSWORD={secret('etcd_root')}"
    endpoint = f"--endpoints=http://127.0.0.1:{ETCD_PORT}"
    status = host.run(f"{env} etcdctl {endpoint} endpoint status --cluster -w json")
    assert status.rc == 0, status.stderr
    statuses = json.loads(status.stdout)
    assert len(statuses) == 3
    assert len({s["Status"]["leader"] for s in statuses}) == 1
    health = host.run(f"{env} etcdctl {endpoint} endpoint health --cluster")
    assert health.rc == 0, health.stderr
    assert health.stdout.count("is healthy") + health.stderr.count("is healthy") == 3
    anonymous = host.run(f"etcdctl {endpoint} get --prefix /service/")
    assert anonymous.rc != 0
    assert "user name is empty" in anonymous.stderr


def test_one_leader_and_two_streaming_replicas_one_synchronous(members: dict[str, Host]) -> None:
    view = cluster(members)
    name = leader(view)
    assert name, roles(view)
    others = sorted(set(NAMES) - {name})
    replicas = {m["name"]: m["role"] for m in view["members"] if m["name"] != name}
    assert sorted(replicas) == others
    assert sorted(replicas.values()) == ["replica", "sync_standby"], roles(view)
    rows, _ = wait_for(lambda: len(streaming(members[name])) == 2, 30)
    assert rows, streaming(members[name])
    states = streaming(members[name])
    assert {row[0] for row in states} == set(others)
    assert {row[1] for row in states} == {"streaming"}
    assert sorted(row[2] for row in states) == ["async", "sync"]


def test_a_row_written_on_the_primary_is_read_on_the_replicas(members: dict[str, Host]) -> None:
    name = leader(cluster(members))
    assert name
    value = uuid.uuid4().hex
    assert sql(members[name], "create table if not exists probe (v text)")[0] == 0
    insert = f"insert into probe values ('{value}')"  # noqa: S608
    assert sql(members[name], insert)[0] == 0
    record("probe_value", value)
    for other in sorted(set(NAMES) - {name}):
        found, _ = wait_for(lambda o=other: has_row(members[o], value), 30)  # type: ignore[misc]
        assert found, f"{other} does not have the row"
        rc, out = sql(members[other], "insert into probe values ('no')")
        assert rc != 0 and "read-only" in out


def test_failover_when_the_primary_dies(members: dict[str, Host]) -> None:
    old = leader(cluster(members))
    assert old
    record("leader_before_failover", old)
    host = members[old]
    with host.sudo():
        assert host.run(f"systemctl kill -s KILL {UNIT}").rc == 0
    gone, _ = wait_for(lambda: host.run("pgrep -u postgres -x postgres").rc != 0, 10, 0.2)
    assert gone, "PostgreSQL still runs on the old primary"

    new, elapsed = wait_for(
        lambda: n if (n := leader(cluster(members, exclude=old))) not in (None, old) else None,
        FAILOVER_BOUND_S,
    )
    assert new, f"no new leader within {FAILOVER_BOUND_S}s: {roles(cluster(members, old))}"
    record("failover_seconds", f"{elapsed:.1f}")
    record("leader_after_failover", str(new))

    value = (EPHEMERAL / "probe_value").read_text().strip()
    assert has_row(members[new], value)
    later = uuid.uuid4().hex
    insert = f"insert into probe values ('{later}')"  # noqa: S608
    # Patroni names the new leader while it promotes it: writes are taken a moment later.
    writable, _ = wait_for(lambda: sql(members[new], insert)[0] == 0, WRITABLE_BOUND_S)
    assert writable, f"{new} refused writes {WRITABLE_BOUND_S}s after it became the leader"
    record("value_after_failover", later)


def test_the_old_primary_rejoins_as_a_replica(members: dict[str, Host]) -> None:
    old = (EPHEMERAL / "leader_before_failover").read_text().strip()
    new = (EPHEMERAL / "leader_after_failover").read_text().strip()
    host = members[old]
    with host.sudo():
        host.run(f"systemctl reset-failed {UNIT}")
        assert host.run(f"systemctl start {UNIT}").rc == 0

    def rejoined() -> bool:
        role, state = roles(cluster(members)).get(old, ("", ""))
        return (
            role in ("replica", "sync_standby")
            and state == "running"
            and old in {row[0] for row in streaming(members[new]) if row[1] == "streaming"}
        )

    done, elapsed = wait_for(rejoined, REJOIN_BOUND_S, 1.0)
    assert done, f"{old} did not rejoin within {REJOIN_BOUND_S}s: {roles(cluster(members))}"
    record("rejoin_seconds", f"{elapsed:.1f}")
    assert leader(cluster(members)) == new
    later = (EPHEMERAL / "value_after_failover").read_text().strip()
    found, _ = wait_for(lambda: has_row(host, later), 30)
    assert found, f"{old} does not have the row written after the failover"
    assert sql(host, "select pg_is_in_recovery()") == (0, "t")
