"""The lab's backups: every PostgreSQL member archives its WAL with pgBackRest, the
repository on backup-1 holds an encrypted full backup and the archived WAL, and a restore
drill brings Airflow's database back to a point in time onto the scratch host with
`playbooks/restore.yml`, as an operator runs it; the same playbook refuses a member of the
cluster. The second repository, in the lab's S3 (aws-1 over HTTPS), holds its own encrypted
full backup and the WAL, and restores the database alone.

These tests run after the fault tests (conftest.py's order): the primary has failed over
and the Redis master moved by then, so `pgbackrest check` shows that archiving followed
the new primary, and the drill restores the deploy's first full backup and replays the
archived WAL across the failovers' timelines. Its markers are Airflow variables, set
through the REST API: the one set before the target time is in the restored database, the
one set after it is not.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import botocore.exceptions
import pytest
import requests
from testinfra.backend.base import CommandResult
from testinfra.host import Host

from clusterops import runner
from clusterops.cluster import AirflowAPI
from clusterops.lab.hosts import LabSpec
from clusterops.paths import LAB_INVENTORY

from .conftest import lab_host
from .faults import record
from .lab_aws import LabAws

pytestmark = pytest.mark.lab

STANZA = "airflow"  # airflow_pgbackrest_stanza (roles/cluster_defaults)
SCRATCH = "scratch-1"  # in no group of the lab inventory: the restores' host
RESTORE_PORT = 5433  # pgbackrest_restore_port
DATABASE = "airflow"
S3_REPO = 2  # the copy in S3 (pgbackrest_s3_bucket in inventories/lab/group_vars/all/aws.yml)


@pytest.fixture(scope="module")
def repository(lab: LabSpec) -> Host:
    names = lab.group("pgbackrest_repo")
    if not names:
        pytest.skip("the lab has no backup repository (group pgbackrest_repo)")
    return lab_host(lab, names[0])


def pgbackrest(repository: Host, *args: str) -> CommandResult:
    template = " ".join(["pgbackrest --stanza=%s"] + ["%s"] * len(args))
    with repository.sudo("postgres"):
        return repository.run(template, STANZA, *args)


def stanza_info(repository: Host) -> dict[str, Any]:
    result = pgbackrest(repository, "info", "--output=json")
    assert result.rc == 0, result.stderr
    stanzas = [s for s in json.loads(result.stdout) if s["name"] == STANZA]
    assert len(stanzas) == 1, result.stdout
    return dict(stanzas[0])


def full_backup(repository: Host) -> float:
    """A full backup through the role's unit, as its timer starts it; seconds taken."""
    started = time.monotonic()
    with repository.sudo():
        result = repository.run("systemctl start pgbackrest-backup@full.service")
    assert result.rc == 0, result.stderr
    return time.monotonic() - started


@pytest.fixture(scope="module")
def aws(lab: LabSpec) -> LabAws:
    return LabAws.load(lab)


def archive_now(repository: Host) -> None:
    """`pgbackrest check`: switch the primary's WAL and wait until every repository has it."""
    checked = pgbackrest(repository, "check")
    assert checked.rc == 0, checked.stderr or checked.stdout


def restore(**extravars: object) -> float:
    """playbooks/restore.yml onto the scratch host, as an operator runs it; seconds taken."""
    started = time.monotonic()
    runner.run_playbook(
        LAB_INVENTORY, "playbooks/restore.yml", quiet=True,
        extravars={"restore_host": SCRATCH, **extravars},
    )  # fmt: skip
    return time.monotonic() - started


def restored_keys(scratch: Host, prefix: str) -> set[str]:
    query = f"select key from variable where key like '{prefix}%'"  # noqa: S608 -- our uuid
    with scratch.sudo("postgres"):
        result = scratch.run("psql -p %s -d %s -XAtc %s", str(RESTORE_PORT), DATABASE, query)
    assert result.rc == 0, result.stderr
    return set(result.stdout.split())


def test_every_member_archives_with_pgbackrest(lab: LabSpec, repository: Host) -> None:
    wanted = f"pgbackrest --stanza={STANZA} archive-push %p"
    for name in lab.group("postgres"):
        host = lab_host(lab, name)
        for setting, value in (("archive_mode", "on"), ("archive_command", wanted)):
            shown = host.run("sudo -u postgres psql -XAtq -d postgres -c %s", f"SHOW {setting}")
            assert (shown.rc, shown.stdout.strip()) == (0, value), (name, shown.stderr)


def test_the_repository_holds_an_encrypted_full_backup_and_the_archived_wal(
    repository: Host,
) -> None:
    stanza = stanza_info(repository)
    assert stanza["status"]["code"] == 0, stanza["status"]
    assert "full" in [backup["type"] for backup in stanza["backup"]], stanza["backup"]
    assert stanza["cipher"] == "aes-256-cbc"
    # Nothing in the repository is readable without the passphrase.
    with repository.sudo():
        plain = repository.run("grep -rl %s /var/lib/pgbackrest/backup", STANZA)
    assert plain.rc == 1, f"plain text in the repository: {plain.stdout}"
    # A WAL segment switched on the (new) primary reaches the repositories (within 60 s).
    archive_now(repository)
    assert stanza_info(repository)["archive"][-1]["max"]


def test_restore_refuses_a_member_of_the_cluster(lab: LabSpec) -> None:
    member = lab.group("postgres")[0]
    with pytest.raises(runner.PlaybookFailure) as refused:
        runner.run_playbook(
            LAB_INVENTORY, "playbooks/restore.yml", quiet=True, extravars={"restore_host": member}
        )
    words = " ".join(str(refused.value).split())
    assert f"restore_host {member} is a member of the postgres group" in words, words


def test_the_backups_are_scheduled(repository: Host) -> None:
    for kind in ("full", "diff"):
        timer = repository.service(f"pgbackrest-backup-{kind}.timer")
        assert timer.is_enabled and timer.is_running, kind


def test_the_s3_copy_holds_an_encrypted_full_backup(repository: Host, aws: LabAws) -> None:
    stanza = stanza_info(repository)
    repos = {repo["key"]: repo["status"]["code"] for repo in stanza["repo"]}
    assert repos == {1: 0, S3_REPO: 0}, stanza["repo"]
    in_s3 = [b["type"] for b in stanza["backup"] if b["database"]["repo-key"] == S3_REPO]
    assert "full" in in_s3, stanza["backup"]
    # What pgBackRest wrote through the emulator's HTTPS port, read back as its IAM user:
    # the backup's files and the archived WAL, none readable without the passphrase.
    bucket, prefix = aws.settings["lab_aws_backup_bucket"], "airflow-lab/"
    s3 = aws.pgbackrest_user()
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    assert any(key.startswith(f"{prefix}archive/{STANZA}/") for key in keys), keys[:20]
    backup_files = [key for key in keys if key.startswith(f"{prefix}backup/{STANZA}/")]
    assert backup_files, keys[:20]
    plain = [
        key
        for key in backup_files
        if STANZA.encode() in s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    ]
    assert plain == [], f"plain text in the S3 repository: {plain}"
    # Its key opens the backups' bucket and nothing else.
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        s3.list_objects_v2(Bucket=aws.settings["lab_aws_log_bucket"])
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_the_s3_backups_are_scheduled(repository: Host) -> None:
    for kind in ("full", "diff"):
        timer = repository.service(f"pgbackrest-backup-s3-{kind}.timer")
        assert timer.is_enabled and timer.is_running, kind


def test_a_backup_into_s3_waits_for_one_into_the_repository_host(repository: Host) -> None:
    """The stanza has one backup lock: started while a backup into repo1 runs, the one into
    repo2 waits for it (its unit is ordered after repo1's) instead of failing on the lock."""
    before = {backup["label"] for backup in stanza_info(repository)["backup"]}
    first, second = "pgbackrest-backup@incr.service", "pgbackrest-backup-s3@incr.service"
    with repository.sudo():
        started = repository.run("systemctl start --no-block %s", first)
        assert started.rc == 0, started.stderr
        # --no-block returns once the job is queued; the second start queues behind it.
        result = repository.run("systemctl start %s", second)
        assert result.rc == 0, repository.run("journalctl -u %s -n 20 --no-pager", second).stdout
    new = {
        backup["database"]["repo-key"]: backup
        for backup in stanza_info(repository)["backup"]
        if backup["label"] not in before and backup["type"] == "incr"
    }
    assert sorted(new) == [1, S3_REPO], new
    # repo2's backup started only once repo1's had ended (pgBackRest's own timestamps).
    assert new[S3_REPO]["timestamp"]["start"] >= new[1]["timestamp"]["stop"], new


def forget(api: AirflowAPI, key: str) -> None:
    try:
        api.request("DELETE", f"/api/v2/variables/{key}")
    except requests.HTTPError as error:
        if error.response is None or error.response.status_code != HTTPStatus.NOT_FOUND:
            raise


def test_point_in_time_restore_of_the_airflow_database(
    lab: LabSpec, repository: Host, api: AirflowAPI
) -> None:
    prefix = f"restore-drill-{uuid.uuid4().hex[:12]}-"
    before, after = prefix + "before", prefix + "after"
    scratch = lab_host(lab, SCRATCH)
    try:
        api.request("POST", "/api/v2/variables", json={"key": before, "value": "kept"})
        # Committed before the API answered; the next one starts after this instant (the
        # lab's hosts share the controller's clock).
        target = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        api.request("POST", "/api/v2/variables", json={"key": after, "value": "not restored"})
        # `check` switches the primary's WAL and waits until it is archived: the commit of
        # the second variable, which ends the replay at the target, is in the archive.
        archive_now(repository)
        # Measured here, not used: the restore to the target takes the latest backup that
        # ended before it, the deploy's.
        backup_seconds = full_backup(repository)
        restore_seconds = restore(restore_target=target)
        assert restored_keys(scratch, prefix) == {before}, f"target {target}"
    finally:
        forget(api, before)
        forget(api, after)
        with scratch.sudo():  # the restored server is not needed any more
            scratch.run("systemctl stop postgresql@15-restore.service")
    record(
        "lab_backup_restore",
        full_backup_seconds=round(backup_seconds, 1),
        point_in_time_restore_seconds=round(restore_seconds, 1),
        database_bytes=stanza_info(repository)["backup"][-1]["info"]["size"],
    )


def test_restore_from_the_s3_copy(lab: LabSpec, repository: Host, api: AirflowAPI) -> None:
    """The copy in S3 alone brings the database back: its own full backup and the WAL the
    primary pushed there, up to a variable set just before."""
    key = f"restore-s3-{uuid.uuid4().hex[:12]}"
    scratch = lab_host(lab, SCRATCH)
    try:
        api.request("POST", "/api/v2/variables", json={"key": key, "value": "from s3"})
        archive_now(repository)  # that commit's WAL is in both repositories
        restore_seconds = restore(restore_repo=S3_REPO)
        assert restored_keys(scratch, key) == {key}
    finally:
        forget(api, key)
        with scratch.sudo():
            scratch.run("systemctl stop postgresql@15-restore.service")
    record("lab_backup_restore_s3", restore_latest_seconds=round(restore_seconds, 1))
