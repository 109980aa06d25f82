"""Adding a Celery worker: check, edit the inventory, deploy, confirm, or undo it all."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from clusterops import runner
from clusterops.cluster import Endpoints, wait_for
from clusterops.console import Failure, info, step, warn
from clusterops.files import write_atomic
from clusterops.inventory import Inventory
from clusterops.workers import WORKER_GROUP, Exit, WorkerSpec, celery_name, check_new

# The operation: check the new host, tell PostgreSQL and the masters (MEMBERS), deploy it.
PLAYBOOK = "playbooks/add_worker.yml"
# Brings PostgreSQL's allow-list and the masters' /etc/hosts in line with the inventory:
# run alone after a worker left it (scale_in.py) or when an add is undone.
MEMBERS = "playbooks/members.yml"


def ssh_exit_code(failure: runner.HostFailure) -> Exit:
    """Tell "cannot reach the host" from "the host refused us"."""
    text = failure.message.lower()
    if "permission denied" in text or "host key verification failed" in text:
        return Exit.SSH_AUTH
    return Exit.UNREACHABLE if failure.outcome == "unreachable" else Exit.FAILED


def _ssh_hint(code: Exit, spec: WorkerSpec) -> str:
    if code == Exit.SSH_AUTH:
        return (
            "check the SSH user (--user, ansible_user) and key, and that the host's key is in "
            "your known_hosts (ssh-keyscan, then compare the fingerprint with the console's)"
        )
    return f"check that {spec.address} is right, the host is up and port 22 is open to you"


def check_ssh(inventory_dir: Path, spec: WorkerSpec) -> None:
    """Log in to the new host as Ansible will, without touching the inventory file.

    The host is given to Ansible in a second, temporary inventory source merged with the
    real one, so it gets the real group_vars (SSH user, key, options). Its inventory_dir
    is set to the real one, which group_vars may build paths from.
    """
    variables = {**spec.host_vars(), "inventory_dir": str(inventory_dir.resolve())}
    with tempfile.TemporaryDirectory(prefix="add-worker-") as tmp:
        overlay = Path(tmp) / "new-worker.yml"
        overlay.write_text(
            yaml.safe_dump({"all": {"children": {WORKER_GROUP: {"hosts": {spec.name: variables}}}}})
        )
        results = runner.run_module([inventory_dir, overlay], spec.name, "ansible.builtin.ping")
    outcome, result = results.get(spec.name, ("unreachable", {"msg": "no answer from Ansible"}))
    if outcome == "ok":
        return
    failure = runner.HostFailure(spec.name, "ping", outcome, str(result.get("msg", "")).strip())
    code = ssh_exit_code(failure)
    raise Failure(
        f"cannot log in to {spec.name} at {spec.address}: {failure.message}\n"
        f"  {_ssh_hint(code, spec)}",
        code,
    )


def tell_the_others(inventory_dir: Path, quiet: bool = False) -> None:
    """Bring PostgreSQL's allow-list and the masters' /etc/hosts in line with the inventory."""
    runner.run_playbook(inventory_dir, MEMBERS, quiet=quiet)


def deploy(inventory_dir: Path, spec: WorkerSpec) -> None:
    try:
        runner.run_playbook(inventory_dir, PLAYBOOK, extravars={"worker": spec.name})
    except runner.PlaybookFailure as failure:
        codes = {ssh_exit_code(f) for f in failure.failures if f.outcome == "unreachable"}
        code = min(codes) if codes else Exit.PLAYBOOK
        raise Failure(str(failure), code) from None


def confirm(endpoints: Endpoints, name: str, timeout: float) -> dict[str, Any]:
    """Wait until Flower gets the worker's answer to a broadcast (Celery's inspect)."""
    try:
        return wait_for(
            f"{celery_name(name)} to answer Flower",
            lambda: endpoints.flower.worker(celery_name(name)),
            timeout,
        )
    except Failure as failure:
        raise Failure(str(failure), Exit.NOT_SEEN) from None


def undo(inventory_dir: Path, hosts_file: Path, original: bytes, spec: WorkerSpec) -> None:
    """Put everything back as it was before the add: best effort, each step reported."""
    info(f"==> Undoing the add of {spec.name}")
    results = runner.run_module(
        inventory_dir,
        spec.name,
        "ansible.builtin.systemd_service",
        "name=airflow-worker.service state=stopped enabled=false",
        become=True,
    )
    outcome, result = results.get(spec.name, ("unreachable", {}))
    if outcome == "ok" or "could not find" in str(result.get("msg", "")).lower():
        info(f"    the worker on {spec.name} is stopped (or was never installed)")
    else:
        warn(f"could not stop the worker on {spec.name}: {result.get('msg', outcome)}")
    write_atomic(hosts_file, original)
    info(f"    {hosts_file} restored byte for byte")
    try:
        tell_the_others(inventory_dir, quiet=True)
        info(f"    PostgreSQL no longer admits {spec.address}; the masters forget its name")
    except Failure as failure:
        warn(f"re-run 'ansible-playbook site.yml' to update pg_hba.conf and /etc/hosts: {failure}")


def add(
    inventory_dir: Path, hosts_file: Path, spec: WorkerSpec, password_file: Path, timeout: float
) -> Endpoints:
    """Add the worker; on any failure after the inventory edit, undo it and re-raise."""
    inventory = Inventory(hosts_file)
    check_new(inventory, spec)
    endpoints = Endpoints.from_inventory(inventory_dir, password_file)
    with step(f"Checking SSH to {spec.name} at {spec.address}"):
        check_ssh(inventory_dir, spec)
    original = hosts_file.read_bytes()
    inventory.add_host(WORKER_GROUP, spec.name, spec.host_vars())
    inventory.save()
    info(f"    {spec.name} added to group {WORKER_GROUP} of {hosts_file}")
    try:
        with step(f"Telling PostgreSQL and the masters, deploying {spec.name} ({PLAYBOOK})"):
            deploy(inventory_dir, spec)
        with step(f"Waiting for {celery_name(spec.name)} to answer through Flower"):
            report = confirm(endpoints, spec.name, timeout)
            queues = [str(q.get("name")) for q in report.get("active_queues") or []]
            info(f"    {celery_name(spec.name)} consumes: {', '.join(queues)}")
    except BaseException:
        undo(inventory_dir, hosts_file, original, spec)
        raise
    return endpoints
