"""`scripts/lab.py`: bring the local lab up, down, inspect it and log in to its hosts."""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
from pathlib import Path

import docker

from clusterops.console import Failure, add_inventory_option, cli_parser, info, step
from clusterops.lab import engine, hosts, image, topology
from clusterops.paths import LAB_INVENTORY

DESCRIPTION = """\
Manage the local lab: containers that behave like VMs (systemd as PID 1, sshd, apt,
a fixed address each) on a Docker network of their own. Ansible reaches them over SSH
as the sudo user 'admin' with a key kept in .lab/ssh/, exactly as it reaches real hosts.

The lab's hosts are the hosts of the lab inventory (inventories/lab/hosts.yml), each at
its ansible_host address; the subnet and names are in inventories/lab/group_vars/all/lab.yml.
If no Docker engine answers and you are root on Debian/Ubuntu, docker.io is installed and
started (log in .lab/dockerd.log). The base image is built locally with debootstrap and
rebuilt only when its recipe (scripts/clusterops/lab/image/) changes.
"""

EPILOG = """\
examples:
  scripts/lab.py up                  create or start every host of the lab inventory
  scripts/lab.py up --workers 3      also change the number of workers (edits the inventory)
  scripts/lab.py status              container, systemd and SSH state of each host
  scripts/lab.py ssh worker-1        log in (or: ssh worker-1 -- systemctl status)
  scripts/lab.py down                remove the lab's containers and network (keeps the image)

environment:
  LAB_CA_CERTS       folder of extra CA certificates (*.crt) the lab hosts trust
                     (default /usr/local/share/ca-certificates; 'none' for none)
  LAB_DEBIAN_MIRROR  Debian mirror for the image and the hosts (default: this machine's)
  LAB_IMAGE          the lab hosts' image, prepared (default) or bare (--image)

exit codes: 0 ok, 1 failure, 2 bad input, 3 address clash
"""

# Molecule scenarios get small labs of their own in this range, one /24 each.
MOLECULE_SUBNETS = ipaddress.IPv4Network("172.30.128.0/17")
MOLECULE_FIRST_ADDRESS = 10


def _recipe(args: argparse.Namespace, kind: str | None = None) -> image.ImageRecipe:
    return image.recipe_for(args.ca_certs, kind or args.image)


def _ready_engine() -> docker.DockerClient:
    client = engine.ensure_engine()
    engine.check_free_space(client)
    return client


def cmd_image(args: argparse.Namespace) -> int:
    print(image.ensure_image(_ready_engine(), _recipe(args)))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    hosts_file = args.inventory / "hosts.yml"
    original = hosts_file.read_text() if hosts_file.exists() else None
    spec = topology.lab_spec(args.inventory)
    removed: list[str] = []
    try:
        for group, size in (("airflow_master", args.masters), ("airflow_worker", args.workers)):
            if size is not None:
                removed += topology.resize(hosts_file, spec.subnet, group, size)
        if args.masters is not None or args.workers is not None:
            spec = topology.lab_spec(args.inventory)
        client = _ready_engine()
        tag = image.ensure_image(client, _recipe(args))
        hosts.up(client, spec, tag)
    except BaseException:
        if original is not None and hosts_file.read_text() != original:
            hosts_file.write_text(original)
            info(f"restored {hosts_file} as it was")
        raise
    if removed:
        with step(f"Removing lab hosts no longer in the inventory: {', '.join(removed)}"):
            hosts.remove_hosts(client, spec, removed)
    info(f"lab '{spec.name}' is up: {len(spec.hosts)} hosts; try 'ansible all -m ping'")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    spec = topology.lab_spec(args.inventory)
    client = engine.connect()
    if client is None:
        info("no Docker engine answers: nothing to remove")
        return 0
    removed = hosts.down(client, spec.name)
    info(f"lab '{spec.name}' removed ({len(removed)} hosts); the image is kept")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    spec = topology.lab_spec(args.inventory)
    client = engine.connect()
    if client is None:
        raise Failure("no Docker engine answers: the lab is down ('scripts/lab.py up')")
    rows = hosts.status(client, spec)
    info(f"{'HOST':<12} {'ADDRESS':<15} {'CONTAINER':<10} {'SYSTEMD':<10} SSH")
    for row in rows:
        info(f"{row.name:<12} {row.address:<15} {row.container:<10} {row.systemd:<10} {row.ssh}")
    healthy = all(r.ssh == "ok" and r.systemd in {"running", "degraded"} for r in rows)
    return 0 if healthy else 1


def cmd_ssh(args: argparse.Namespace) -> int:
    spec = topology.lab_spec(args.inventory)
    remote = args.remote[1:] if args.remote[:1] == ["--"] else args.remote
    argv = hosts.ssh_argv(spec, spec.host(args.host), *remote)
    if not remote:
        argv.insert(1, "-t")
    os.execvp(argv[0], argv)  # noqa: S606 (replaces this process with ssh)


def _molecule_lab() -> str:
    """mol-<project>-<scenario>, from the variables molecule sets for its playbooks."""
    project = os.environ.get("MOLECULE_PROJECT_DIRECTORY", "")
    scenario = os.environ.get("MOLECULE_SCENARIO_NAME", "")
    if not project or not scenario:
        raise Failure("molecule-create/-destroy run under molecule (MOLECULE_* are not set)", 2)
    return f"mol-{Path(project).name}-{scenario}".lower()


def _molecule_spec(lab: str, platforms: list[str], client: docker.DockerClient) -> hosts.LabSpec:
    if not platforms:
        raise Failure("molecule-create needs at least one --host", 2)
    taken = [net for net, _ in hosts.docker_subnets(client, exclude=lab)]
    candidates = list(MOLECULE_SUBNETS.subnets(new_prefix=24))
    start = int(hashlib.sha256(lab.encode()).hexdigest(), 16) % len(candidates)
    for subnet in candidates[start:] + candidates[:start]:
        if not any(subnet.overlaps(t) for t in taken):
            break
    else:
        raise Failure(f"no free /24 left in {MOLECULE_SUBNETS} for lab '{lab}'", 3)
    first = subnet.network_address + MOLECULE_FIRST_ADDRESS
    specs = tuple(hosts.HostSpec(p, str(first + i)) for i, p in enumerate(platforms))
    return hosts.LabSpec(lab, subnet, specs, image.LAB_USER)


def cmd_molecule_create(args: argparse.Namespace) -> int:
    lab = _molecule_lab()
    client = _ready_engine()
    hosts.down(client, lab)  # a scenario always starts from fresh hosts
    spec = _molecule_spec(lab, args.host, client)
    hosts.up(client, spec, image.ensure_image(client, _recipe(args, args.molecule_image)))
    config = [
        {
            "instance": h.name,
            "address": h.address,
            "user": spec.user,
            "port": 22,
            "identity_file": str(hosts.SSH_KEY),
        }
        for h in spec.hosts
    ]
    args.instance_config.write_text(json.dumps(config, indent=2) + "\n")
    return 0


def cmd_molecule_destroy(args: argparse.Namespace) -> int:
    lab = _molecule_lab()
    client = engine.connect()
    if client is not None:
        hosts.down(client, lab)
    return 0


def parser() -> argparse.ArgumentParser:
    top = cli_parser("lab.py", DESCRIPTION, EPILOG)
    add_inventory_option(top, LAB_INVENTORY)
    top.add_argument(
        "--ca-certs", default=os.environ.get("LAB_CA_CERTS", str(image.DEFAULT_CA_DIR)),
        help="folder of extra CA certificates the hosts trust, or 'none'",
    )  # fmt: skip
    top.add_argument(
        "--image", choices=image.KINDS, default=os.environ.get("LAB_IMAGE", "prepared"),
        help="the hosts' image: 'prepared' has the roles' leaf packages installed (default),"
        " 'bare' is a minimal Debian 12",
    )  # fmt: skip
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="create or start the lab's hosts (idempotent)")
    up.add_argument("--masters", type=int, help="number of Airflow masters (edits the inventory)")
    up.add_argument("--workers", type=int, help="number of Celery workers (edits the inventory)")
    up.set_defaults(func=cmd_up)

    sub.add_parser("down", help="remove the lab's containers and network").set_defaults(
        func=cmd_down
    )
    sub.add_parser(
        "status", help="show each host's state; exit 1 if any is unhealthy"
    ).set_defaults(func=cmd_status)
    sub.add_parser("image", help="build the base image if its recipe changed").set_defaults(
        func=cmd_image
    )

    ssh = sub.add_parser("ssh", help="log in to a lab host, or run a command there")
    ssh.add_argument("host", help="inventory name, e.g. worker-1")
    ssh.add_argument(
        "remote",
        nargs=argparse.REMAINDER,
        metavar="COMMAND",
        help="command to run instead of a shell",
    )
    ssh.set_defaults(func=cmd_ssh)

    create = sub.add_parser(
        "molecule-create", help="hosts for a molecule scenario (used by molecule)"
    )
    create.add_argument("--host", action="append", default=[], help="platform name (repeat)")
    create.add_argument("--instance-config", type=Path, required=True, help="file molecule reads")
    create.add_argument(
        "--molecule-image", choices=image.KINDS,
        default=os.environ.get("MOLECULE_LAB_IMAGE", "bare"),
        help="the scenario's image (default bare: the roles' tests deploy onto a bare Debian 12)",
    )  # fmt: skip
    create.set_defaults(func=cmd_molecule_create)

    destroy = sub.add_parser("molecule-destroy", help="remove a molecule scenario's hosts")
    destroy.set_defaults(func=cmd_molecule_destroy)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result
