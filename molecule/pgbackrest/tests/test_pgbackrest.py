"""Backups of a two-member Patroni cluster into pgBackRest's repository host, and restores
onto a scratch host with playbooks/restore.yml: a full backup is listed (encrypted), the
WAL is archived, a point-in-time restore has exactly the rows written before the target,
and after a switchover the new primary archives and a restore to the latest WAL has a row
written after it. The tests run in this order and share the cluster; the measured backup
and restore times are printed and written to the ephemeral directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml
from testinfra.backend.base import CommandResult
from testinfra.host import Host

from clusterops import datatier
from clusterops.cluster import wait_for
from clusterops.paths import PROJECT_ROOT, ROLES_DIR

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DEFAULTS = yaml.safe_load((ROLES_DIR / "pgbackrest/defaults/main.yml").read_text())
CLUSTER = yaml.safe_load((ROLES_DIR / "cluster_defaults/defaults/main.yml").read_text())
STANZA = str(CLUSTER["airflow_pgbackrest_stanza"])
DATABASE = str(CLUSTER["airflow_database_name"])
RESTORE_PORT = int(DEFAULTS["pgbackrest_restore_port"])
MEMBERS = ("pgbr-pg-1", "pgbr-pg-2")
REPOSITORY = "pgbr-repo-1"
SCRATCH = "pgbr-scratch-1"
TABLE = "drill_canary"
PATRONI_CONFIG = "/etc/patroni/15-main.yml"
SWITCHOVER_BOUND_S = 90.0
ARCHIVE_BOUND_S = 150.0


@pytest.fixture(scope="module")
def hosts() -> dict[str, Host]:
    return {
        name: testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")
        for name in (*MEMBERS, REPOSITORY, SCRATCH)
    }


def address(host: Host) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


def primary(hosts: dict[str, Host]) -> Host:
    member = datatier.leader(address(hosts[name]) for name in MEMBERS)
    assert member, "no Patroni leader"
    return hosts[member.name]


def record(name: str, value: str) -> None:
    (EPHEMERAL / name).write_text(value + "\n")
    print(f"\n{name}: {value}")


# The queries interpolate only values the tests made themselves (uuid hex).
def sql(host: Host, query: str, port: int = 5432) -> tuple[int, str]:
    with host.sudo("postgres"):
        result = host.run("psql -p %s -d %s -XAtc %s", str(port), DATABASE, query)
    return result.rc, (result.stdout.strip() or result.stderr.strip())


def insert(host: Host, value: str) -> None:
    rc, out = sql(host, f"insert into {TABLE} values ('{value}')")  # noqa: S608
    assert rc == 0, out


def restored_rows(scratch: Host) -> set[str]:
    rc, out = sql(scratch, f"select v from {TABLE}", RESTORE_PORT)  # noqa: S608
    assert rc == 0, out
    return set(out.splitlines())


def pgbackrest(repository: Host, *args: str) -> CommandResult:
    template = " ".join(["pgbackrest --stanza=%s"] + ["%s"] * len(args))
    with repository.sudo("postgres"):
        return repository.run(template, STANZA, *args)


def info(repository: Host) -> dict[str, Any]:
    result = pgbackrest(repository, "info", "--output=json")
    assert result.rc == 0, result.stderr
    stanzas = [s for s in json.loads(result.stdout) if s["name"] == STANZA]
    assert len(stanzas) == 1, result.stdout
    return dict(stanzas[0])


def backup(repository: Host, kind: str) -> float:
    """A backup through the role's systemd unit, as its timer starts it; seconds taken."""
    started = time.monotonic()
    with repository.sudo():
        result = repository.run(f"systemctl start pgbackrest-backup@{kind}.service")
    elapsed = time.monotonic() - started
    if result.rc != 0:
        with repository.sudo():
            log = repository.run(f"journalctl -u pgbackrest-backup@{kind}.service -n 40 --no-pager")
        pytest.fail(f"{kind} backup failed: {result.stderr}\n{log.stdout}")
    return elapsed


def restore(target: str, host: str = SCRATCH) -> tuple[subprocess.CompletedProcess[str], float]:
    """playbooks/restore.yml, as an operator runs it, with molecule's inventory."""
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i", INVENTORY, str(PROJECT_ROOT / "playbooks/restore.yml"),
        "-e", f"restore_host={host}",
        "-e", json.dumps({"restore_target": target, "pgbackrest_restore_expected_tables": [TABLE]}),
    ]  # fmt: skip
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    return result, time.monotonic() - started


def check_archiving(repository: Host) -> CommandResult:
    return pgbackrest(repository, "check")


def test_every_member_archives_with_pgbackrest(hosts: dict[str, Host]) -> None:
    for name in MEMBERS:
        assert sql(hosts[name], "show archive_mode") == (0, "on"), name
        rc, command = sql(hosts[name], "show archive_command")
        assert rc == 0 and command == f"pgbackrest --stanza={STANZA} archive-push %p", command


def test_a_full_backup_is_listed_and_encrypted(hosts: dict[str, Host]) -> None:
    repository = hosts[REPOSITORY]
    elapsed = backup(repository, "full")
    record("full_backup_seconds", f"{elapsed:.1f}")
    stanza = info(repository)
    assert stanza["status"]["code"] == 0, stanza["status"]
    assert stanza["cipher"] == "aes-256-cbc"
    assert [b["type"] for b in stanza["backup"]].count("full") >= 1, stanza["backup"]
    # The repository's files are not readable without the passphrase.
    with repository.sudo():
        plain = repository.run("grep -rl %s /var/lib/pgbackrest/backup", STANZA)
    assert plain.rc == 1, f"plain text in the repository: {plain.stdout}"


def test_wal_archiving_works(hosts: dict[str, Host]) -> None:
    result = check_archiving(hosts[REPOSITORY])
    assert result.rc == 0, result.stderr or result.stdout
    stanza = info(hosts[REPOSITORY])
    assert stanza["archive"] and stanza["archive"][0]["max"], stanza["archive"]


def test_the_timers_are_scheduled(hosts: dict[str, Host]) -> None:
    repository = hosts[REPOSITORY]
    for kind in ("full", "diff"):
        timer = repository.service(f"pgbackrest-backup-{kind}.timer")
        assert timer.is_enabled and timer.is_running, kind
    assert not repository.file("/etc/systemd/system/pgbackrest-backup-incr.timer").exists


def test_restore_refuses_a_member_of_the_cluster() -> None:
    result, _ = restore("latest", host=MEMBERS[0])
    assert result.returncode != 0
    # Ansible writes the failure to stderr and may wrap the message: compare words.
    words = " ".join((result.stdout + result.stderr).split())
    assert f"restore_host {MEMBERS[0]} is a member of the postgres group" in words, words[-2000:]


def test_point_in_time_restore_onto_the_scratch_host(hosts: dict[str, Host]) -> None:
    leader = primary(hosts)
    repository = hosts[REPOSITORY]
    a, b, c = (f"{label}-{uuid.uuid4().hex}" for label in "ABC")
    assert sql(leader, f"create table if not exists {TABLE} (v text primary key)")[0] == 0
    insert(leader, a)
    record("incr_backup_seconds", f"{backup(repository, 'incr'):.1f}")
    insert(leader, b)
    time.sleep(1)
    rc, target = sql(leader, "select now()")
    assert rc == 0, target
    time.sleep(1)
    insert(leader, c)
    assert sql(leader, "select pg_switch_wal()")[0] == 0
    # check switches another segment and waits until it is archived: C's is before it.
    archived = check_archiving(repository)
    assert archived.rc == 0, archived.stderr or archived.stdout

    result, elapsed = restore(target)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    record("point_in_time_restore_seconds", f"{elapsed:.1f}")
    rows = restored_rows(hosts[SCRATCH])
    assert a in rows and b in rows, f"target {target}: {sorted(rows)}"
    assert c not in rows, f"target {target}: C was written after it"
    assert sql(hosts[SCRATCH], "select pg_is_in_recovery()", RESTORE_PORT) == (0, "f")


def test_archiving_follows_a_switchover(hosts: dict[str, Host]) -> None:
    old = primary(hosts)
    candidate = next(name for name in MEMBERS if hosts[name] is not old)
    with old.sudo():
        switched = old.run(
            "patronictl -c %s switchover --candidate %s --force", PATRONI_CONFIG, candidate
        )
    assert switched.rc == 0, switched.stdout + switched.stderr

    def new_primary_writes() -> bool:
        member = datatier.leader(address(hosts[name]) for name in MEMBERS)
        return bool(member and member.name == candidate and insert_ok(hosts[candidate]))

    started = time.monotonic()
    wait_for(
        f"{candidate} to lead and take writes", lambda: new_primary_writes() or None,
        SWITCHOVER_BOUND_S, 1.0,
    )  # fmt: skip
    record("switchover_seconds", f"{time.monotonic() - started:.1f}")
    # The new primary archives its first segments (and the timeline's history) shortly.
    wait_for(
        "pgbackrest check to pass after the switchover",
        lambda: check_archiving(hosts[REPOSITORY]).rc == 0 or None, ARCHIVE_BOUND_S, 5.0,
    )  # fmt: skip


def insert_ok(host: Host) -> bool:
    value = f"D-{uuid.uuid4().hex}"
    if sql(host, f"insert into {TABLE} values ('{value}')")[0] != 0:  # noqa: S608
        return False
    (EPHEMERAL / "row_after_switchover").write_text(value)
    return True


def test_restore_to_the_latest_wal_crosses_the_switchover(hosts: dict[str, Host]) -> None:
    leader = primary(hosts)
    value = (EPHEMERAL / "row_after_switchover").read_text().strip()
    assert sql(leader, "select pg_switch_wal()")[0] == 0
    archived = check_archiving(hosts[REPOSITORY])
    assert archived.rc == 0, archived.stderr or archived.stdout
    result, elapsed = restore("latest")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    record("latest_restore_seconds", f"{elapsed:.1f}")
    assert value in restored_rows(hosts[SCRATCH])
