"""`scripts/add_worker.py` and `scripts/remove_worker.py`: grow and shrink the workers."""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

from clusterops import rules, scale_in, scale_out
from clusterops.console import Failure, add_inventory_option, cli_parser, info
from clusterops.lab import members
from clusterops.paths import LAB_INVENTORY, LAB_VAULT_PASSWORD
from clusterops.release import role_defaults
from clusterops.workers import EXIT_HELP, WORKER_GROUP, Exit, WorkerSpec, celery_name

ADD_DESCRIPTION = """\
Add a Celery worker to the cluster: the host NAME at --address joins the inventory's
airflow_worker group, is deployed with playbooks/add_worker.yml (which first lets
PostgreSQL admit it and the masters resolve its name), and the command returns once the
new worker answers Celery through Flower, ready for tasks.

Before anything changes, the name, address, queues and concurrency are checked and
Ansible logs in to the host. The inventory's hosts.yml keeps its comments and order and
is written atomically. If any later step fails, the worker is stopped again, hosts.yml is
restored byte for byte and pg_hba.conf is updated back: nothing is left half-added.

The host needs: Debian 12, SSH for a sudo user with your key, its host key in your
known_hosts, and network reach to PostgreSQL, Redis and the masters. Progress is shown
per Ansible task. The steps are playbooks/add_worker.yml's. In the lab an add took 44 s
to "consuming", installing from the controller's wheelhouse (airflow_wheelhouse_dir).
"""

ADD_EPILOG = f"""\
examples:
  scripts/add_worker.py worker-3 --lab                  new lab host at the next address
  scripts/add_worker.py worker-3 --address 10.0.1.23 -i inventories/prod \\
      --vault-password-file ~/.vault-prod --queues default,heavy --concurrency 16

{EXIT_HELP}"""

REMOVE_DESCRIPTION = """\
Remove a Celery worker without losing a task: it stops taking tasks (Celery cancels its
queue consumers), the command waits while the tasks it holds finish, showing them, then
stops and disables airflow-worker.service, copies the worker's task logs to every master
(so the UI still shows them), removes the host from the inventory and updates
PostgreSQL's pg_hba.conf so it is no longer admitted.

Running tasks are never killed: if some still run after --timeout seconds, the worker
goes back to taking tasks, stays in the inventory and the command exits with code 8. A
Flower that does not answer is asked again until then; still silent, nobody can tell
whether the worker is drained: it likewise takes tasks again and stays (exit code 1).
Only --force kills them after the timeout (Airflow then fails them, or retries those with
retries left) and removes a worker whose host no longer answers.
"""

REMOVE_EPILOG = f"""\
examples:
  scripts/remove_worker.py worker-3 --lab               also delete the lab host
  scripts/remove_worker.py worker-7 -i inventories/prod --timeout 7200

{EXIT_HELP}"""


def _common_options(parser: argparse.ArgumentParser) -> None:
    add_inventory_option(parser, LAB_INVENTORY)
    parser.add_argument(
        "--vault-password-file", type=Path,
        default=Path(os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE", LAB_VAULT_PASSWORD)),
        help="the inventory's vault password (default: the lab's, or $ANSIBLE_VAULT_PASSWORD_FILE)",
    )  # fmt: skip
    parser.add_argument(
        "--lab", action="store_true",
        help="the inventory is the lab's: also create (or delete) the lab host",
    )  # fmt: skip


def _seconds(text: str) -> float:
    """--timeout: a finite number of seconds above 0. nan passes any `<= 0` test (it
    compares false to everything) and inf never ends, so both are refused by name."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        # argparse prefixes "argument --timeout: " and exits with 2, Exit.INVALID.
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return seconds


def _queues(text: str) -> tuple[str, ...]:
    return tuple(q.strip() for q in text.split(",")) if text else ()


def add_parser() -> argparse.ArgumentParser:
    parser = cli_parser("add_worker.py", ADD_DESCRIPTION, ADD_EPILOG)
    defaults = role_defaults("airflow_worker")
    queues = ",".join(defaults["airflow_worker_queues"])
    parser.add_argument("name", help="inventory name of the new worker, e.g. worker-3")
    parser.add_argument(
        "--address", help="address Ansible reaches it at (ansible_host); with --lab, "
        "defaults to the lab's address for NAME (worker-N -> .10N)",
    )  # fmt: skip
    parser.add_argument(
        "--queues", type=_queues, default=(),
        help=f"comma-separated queues it consumes (default: airflow_worker_queues, {queues})",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int,
        help=f"task slots, 1 to {rules.WORKER_CONCURRENCY_MAX} "
        f"(default: airflow_worker_concurrency, {defaults['airflow_worker_concurrency']})",
    )  # fmt: skip
    parser.add_argument("--user", help="SSH user (default: the inventory's ansible_user)")
    parser.add_argument(
        "--timeout", type=_seconds, default=180,
        help="seconds (> 0) to wait for the deployed worker to answer (default 180)",
    )  # fmt: skip
    _common_options(parser)
    return parser


def remove_parser() -> argparse.ArgumentParser:
    parser = cli_parser("remove_worker.py", REMOVE_DESCRIPTION, REMOVE_EPILOG)
    parser.add_argument("name", help="inventory name of the worker, e.g. worker-3")
    parser.add_argument(
        "--timeout", type=_seconds, default=3600,
        help="seconds (> 0) to wait for its running tasks (default 3600)",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true",
        help="after the timeout, kill what still runs; remove an unreachable worker anyway",
    )  # fmt: skip
    _common_options(parser)
    return parser


def hosts_file(inventory: Path) -> Path:
    path = inventory / "hosts.yml" if inventory.is_dir() else inventory
    if not path.is_file():
        raise Failure(f"no inventory file {path}: give -i INVENTORY_DIR", Exit.INVALID)
    return path


def _inventory(args: argparse.Namespace) -> tuple[Path, Path]:
    """The inventory folder and its hosts file, once the common options are checked.

    The vault password file is handed to every Ansible run through the environment.
    """
    inventory_dir = args.inventory if args.inventory.is_dir() else args.inventory.parent
    os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = str(args.vault_password_file.resolve())
    return inventory_dir, hosts_file(args.inventory)


def add_main(argv: list[str] | None = None) -> int:
    args = add_parser().parse_args(argv)
    started = time.monotonic()
    inventory_dir, hosts = _inventory(args)
    address = args.address
    if address is None and args.lab:
        address = members.default_address(inventory_dir, WORKER_GROUP, args.name)
    if not address:
        raise Failure(f"--address is needed for '{args.name}'", Exit.INVALID)
    spec = WorkerSpec(args.name, address, args.queues, args.concurrency, args.user)
    spec.validate()
    if args.lab:
        members.create(inventory_dir, spec.name, spec.address)
    try:
        scale_out.add(inventory_dir, hosts, spec, args.vault_password_file, args.timeout)
    except BaseException:
        if args.lab:
            members.delete(inventory_dir, spec.name)
            info(f"    lab host {spec.name} deleted")
        raise
    info(
        f"{celery_name(spec.name)} is up and consuming, {time.monotonic() - started:.0f}s "
        f"after the start; it is in group {WORKER_GROUP} of {hosts}"
    )
    return 0


def remove_main(argv: list[str] | None = None) -> int:
    args = remove_parser().parse_args(argv)
    started = time.monotonic()
    inventory_dir, hosts = _inventory(args)
    removal = scale_in.Removal(args.name, args.timeout, args.force)
    killed = scale_in.remove(inventory_dir, hosts, removal, args.vault_password_file)
    if args.lab:
        members.delete(inventory_dir, args.name)
        info(f"lab host {args.name} deleted")
    outcome = f"{len(killed)} task(s) killed (--force)" if killed else "no task was killed"
    info(f"{args.name} removed in {time.monotonic() - started:.0f}s; {outcome}")
    return 0
