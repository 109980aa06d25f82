"""Lab hosts: containers with systemd as PID 1 and sshd, on a network of their own.

A host is reached exactly as a VM would be: over SSH, as a sudo user, with a key
generated under .lab/ssh/ and a host key pinned in .lab/known_hosts (read from the
host itself, so host key checking stays on).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import ipaddress
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network

from clusterops.console import Failure, info, step, warn
from clusterops.paths import LAB_STATE_DIR

LABEL_LAB = "org.airflow-cluster.lab"
LABEL_HOST = "org.airflow-cluster.host"
# Which checkout made a host: a digest of that checkout's lab SSH key (.lab/ssh/). A host
# made by another checkout holds data under that checkout's vault, which this one cannot
# read, so `up` replaces it instead of deploying onto it.
LABEL_CHECKOUT = "org.airflow-cluster.checkout"
BOOT_TIMEOUT = 90.0
SSH_KEY = LAB_STATE_DIR / "ssh" / "id_ed25519"
KNOWN_HOSTS = LAB_STATE_DIR / "known_hosts"
# Each host's /etc/hosts, bind-mounted from <here>/<lab>/<host>: Docker then leaves it
# alone, so it keeps what the roles wrote across a restart or a reconnect, as a VM's disk
# would (Docker writes its own /etc/hosts into a container at every start and network
# change).
ETC_HOSTS_DIR = LAB_STATE_DIR / "etc-hosts"

# systemd as PID 1 without --privileged (which some hosts refuse): every capability but
# CAP_SYS_RESOURCE, no seccomp/AppArmor filter, and the host's cgroup tree writable.
# Hardened units (PrivateUsers=, ProtectSystem=, ...) need this wider set to start.
CGROUP_BIND = "/sys/fs/cgroup:/sys/fs/cgroup:rw"
CONTAINER_OPTIONS: dict[str, object] = {
    "cap_add": ["ALL"],
    "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
    "cgroupns": "host",
    "binds": [CGROUP_BIND],
    "tmpfs": {"/run": "rw,mode=755", "/run/lock": "rw,mode=1777", "/tmp": "rw,mode=1777"},  # noqa: S108
}


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str


@dataclass(frozen=True)
class LabSpec:
    """A set of lab hosts on one network. The main lab comes from inventories/lab/."""

    name: str
    subnet: ipaddress.IPv4Network
    hosts: tuple[HostSpec, ...]
    user: str
    # Inventory groups (name -> host names), when the lab comes from an inventory.
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    def container_name(self, host: str) -> str:
        return f"{self.name}-{host}"

    def group(self, name: str) -> list[str]:
        if name not in self.groups:
            raise Failure(f"lab '{self.name}' has no inventory group '{name}'", 2)
        return list(self.groups[name])

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts) or "none"
        raise Failure(f"unknown lab host '{name}' (lab '{self.name}' has: {known})", 2)


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    container: str
    systemd: str
    ssh: str


def ensure_ssh_key() -> Path:
    """The key Ansible logs in with, generated once per checkout."""
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        raise Failure("the OpenSSH client is missing: run 'apt-get install openssh-client'")
    SSH_KEY.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    # Several molecule scenarios start at once on a fresh checkout: one makes the key, the
    # others wait for it (an exclusive lock), so that every host gets the same public key.
    with (SSH_KEY.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not SSH_KEY.exists() or not SSH_KEY.with_suffix(".pub").exists():
            SSH_KEY.unlink(missing_ok=True)
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "airflow-lab",
                    "-f",
                    str(SSH_KEY),
                ],
                check=True,
            )
    return SSH_KEY


def checkout_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key.strip()).hexdigest()[:16]


def _validate(spec: LabSpec) -> None:
    names: set[str] = set()
    addresses: set[str] = set()
    reserved = {spec.subnet.network_address, spec.subnet.broadcast_address, _gateway(spec)}
    for host in spec.hosts:
        if host.name in names:
            raise Failure(f"lab host '{host.name}' is listed twice", 2)
        if host.address in addresses:
            raise Failure(f"address {host.address} is given to two lab hosts", 2)
        address = ipaddress.IPv4Address(host.address)
        if address not in spec.subnet or address in reserved:
            raise Failure(
                f"lab host '{host.name}' has address {address}, which is not a usable "
                f"address of the lab subnet {spec.subnet}",
                2,
            )
        names.add(host.name)
        addresses.add(host.address)


def _gateway(spec: LabSpec) -> ipaddress.IPv4Address:
    return spec.subnet.network_address + 1


def _host_routes() -> list[tuple[ipaddress.IPv4Network, str]]:
    """Networks this machine already routes to, with the interface they are on."""
    result = subprocess.run(
        ["ip", "-4", "-o", "route", "show"], capture_output=True, text=True, check=False
    )
    routes = []
    for line in result.stdout.splitlines():
        words = line.split()
        if not words or words[0] == "default":
            continue
        try:
            net = ipaddress.IPv4Network(words[0], strict=False)
        except ValueError:
            continue
        device = words[words.index("dev") + 1] if "dev" in words else "?"
        routes.append((net, device))
    return routes


def docker_subnets(
    client: docker.DockerClient, exclude: str = ""
) -> list[tuple[ipaddress.IPv4Network, str]]:
    """IPv4 subnets of the engine's networks (but `exclude`), with the network's name."""
    found = []
    for network in client.networks.list():
        if network.name == exclude:
            continue
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            subnet = config.get("Subnet", "")
            if subnet and ":" not in subnet:
                found.append((ipaddress.IPv4Network(subnet), f"Docker network '{network.name}'"))
    return found


def _check_clashes(client: docker.DockerClient, spec: LabSpec) -> None:
    """The lab subnet must not overlap another Docker network or a routed network."""
    routes = [
        (net, f"interface {device}")
        for net, device in _host_routes()
        if not device.startswith(("br-", "docker"))  # Docker's own bridges come from the API
    ]
    for net, owner in docker_subnets(client, exclude=spec.name) + routes:
        if net.overlaps(spec.subnet):
            raise Failure(
                f"lab subnet {spec.subnet} overlaps {net} of {owner}: choose another "
                "lab_subnet in inventories/lab/group_vars/all/lab.yml",
                3,
            )


def _ensure_network(client: docker.DockerClient, spec: LabSpec) -> Network:
    try:
        network = client.networks.get(spec.name)
    except NotFound:
        _check_clashes(client, spec)
        pool = docker.types.IPAMPool(subnet=str(spec.subnet), gateway=str(_gateway(spec)))
        return client.networks.create(
            spec.name,
            driver="bridge",
            ipam=docker.types.IPAMConfig(pool_configs=[pool]),
            labels={LABEL_LAB: spec.name},
        )
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    subnets = {c.get("Subnet") for c in configs}
    if str(spec.subnet) not in subnets:
        raise Failure(
            f"Docker network '{spec.name}' exists with subnet {', '.join(map(str, subnets))}, "
            f"not {spec.subnet}: run 'scripts/lab.py down' first",
            3,
        )
    return network


def _containers(client: docker.DockerClient, lab: str) -> dict[str, Container]:
    found = client.containers.list(all=True, filters={"label": f"{LABEL_LAB}={lab}"})
    return {c.labels.get(LABEL_HOST, c.name): c for c in found}


def _exec(container: Container, *argv: str) -> tuple[int, str]:
    code, output = container.exec_run(list(argv))
    return code, output.decode(errors="replace").strip()


def _wait_booted(container: Container, host: str) -> str:
    """Wait until systemd has finished booting; return its state (running/degraded)."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        container.reload()
        if container.status != "running":
            raise Failure(
                f"lab host '{host}' stopped while booting: see 'docker logs {container.name}'"
            )
        _, state = _exec(container, "systemctl", "is-system-running")
        if state in {"running", "degraded"}:
            return state
        if time.monotonic() > deadline:
            raise Failure(
                f"lab host '{host}' did not finish booting in {BOOT_TIMEOUT:.0f}s (state: {state})"
            )
        time.sleep(0.5)


def _put_file(container: Container, path: str, content: bytes, uid: int, mode: int) -> None:
    directory, _, name = path.rpartition("/")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo(name)
        member.size = len(content)
        member.mode = mode
        member.uid = member.gid = uid
        tar.addfile(member, io.BytesIO(content))
    container.put_archive(directory, buffer.getvalue())


def _authorize_key(container: Container, user: str, public_key: bytes) -> None:
    code, uid = _exec(container, "id", "-u", user)
    if code != 0:
        raise Failure(f"the lab image has no user '{user}': rebuild it with 'scripts/lab.py image'")
    _put_file(container, f"/home/{user}/.ssh/authorized_keys", public_key, int(uid), 0o600)


def _host_key(container: Container, host: str) -> str:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        code, _ = _exec(container, "systemctl", "is-active", "--quiet", "ssh.service")
        if code == 0:
            break
        if time.monotonic() > deadline:
            raise Failure(f"sshd did not start on lab host '{host}': see 'scripts/lab.py status'")
        time.sleep(0.5)
    code, key = _exec(container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
    if code != 0:
        raise Failure(f"lab host '{host}' has no SSH host key: {key}")
    return " ".join(key.split()[:2])


def _write_known_hosts(entries: dict[str, str]) -> None:
    """Replace the lab's lines in .lab/known_hosts, keeping other labs' lines.

    A line is the lab's when it names one of the lab's addresses: host names repeat across
    labs (a molecule scenario's redis-1 beside the lab's), addresses do not.
    """
    lines: list[str] = []
    if KNOWN_HOSTS.exists():
        ours = {names.split(",", 1)[0] for names in entries}
        for line in KNOWN_HOSTS.read_text().splitlines():
            if line.split(" ", 1)[0].split(",", 1)[0] not in ours:
                lines.append(line)
    lines.extend(f"{names} {key}" for names, key in entries.items())
    text = "\n".join(sorted(lines)) + "\n"
    if KNOWN_HOSTS.exists() and KNOWN_HOSTS.read_text() == text:
        return
    tmp = KNOWN_HOSTS.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(KNOWN_HOSTS)


def etc_hosts_file(spec: LabSpec, host: HostSpec) -> Path:
    """A new host's /etc/hosts (its own name and address, localhost), written afresh."""
    path = ETC_HOSTS_DIR / spec.name / host.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"{host.address}\t{host.name}\n"
    )
    path.chmod(0o644)
    return path


def _create(
    client: docker.DockerClient, spec: LabSpec, host: HostSpec, image: str, owner: str
) -> Container:
    endpoint = client.api.create_endpoint_config(ipv4_address=host.address, aliases=[host.name])
    networking = client.api.create_networking_config({spec.name: endpoint})
    hosts_bind = f"{etc_hosts_file(spec, host).resolve()}:/etc/hosts:rw"
    options = {**CONTAINER_OPTIONS, "binds": [CGROUP_BIND, hosts_bind]}
    try:
        created = client.api.create_container(
            image,
            name=spec.container_name(host.name),
            hostname=host.name,
            labels={LABEL_LAB: spec.name, LABEL_HOST: host.name, LABEL_CHECKOUT: owner},
            networking_config=networking,
            host_config=client.api.create_host_config(**options),
            stop_signal="SIGRTMIN+3",
        )
    except APIError as error:
        raise Failure(f"creating lab host '{host.name}' failed: {error.explanation}") from error
    return client.containers.get(created["Id"])


def up(client: docker.DockerClient, spec: LabSpec, image: str) -> None:
    """Create and start whatever is missing and leave this checkout's hosts alone. Hosts
    another checkout made (or a version of this project before the checkout label) are
    replaced first; they are not put back if the rest fails, as no deploy could use them."""
    _validate(spec)
    public_key = ensure_ssh_key().with_suffix(".pub").read_bytes()
    owner = checkout_id(public_key)
    _ensure_network(client, spec)
    existing = _containers(client, spec.name)
    for name in _foreign(existing, owner):
        warn(
            f"lab host '{name}' was made by another checkout of this project (another vault "
            "and SSH key): replacing it with a new host"
        )
        _remove(client, existing.pop(name).name)
    created: list[str] = []
    try:
        started: dict[str, Container] = {}
        for host in spec.hosts:
            container = existing.get(host.name)
            if container is None:
                info(f"==> Starting lab host {host.name} at {host.address}")
                container = _create(client, spec, host, image, owner)
                created.append(host.name)
                container.start()
            elif container.status != "running":
                info(f"==> Starting stopped lab host {host.name}")
                container.start()
            elif container.image is not None and image not in container.image.tags:
                warn(
                    f"lab host '{host.name}' runs an older lab image; "
                    "'scripts/lab.py down' then 'up' recreates it"
                )
            started[host.name] = container
        known: dict[str, str] = {}
        with step(f"Waiting for {len(started)} host(s) to boot and start sshd"):
            for host in spec.hosts:
                container = started[host.name]
                state = _wait_booted(container, host.name)
                _authorize_key(container, spec.user, public_key)
                known[f"{host.address},{host.name}"] = _host_key(container, host.name)
                info(f"    {host.name:<12} {host.address:<15} systemd {state}")
        _write_known_hosts(known)
    except BaseException:
        # Nothing half-created: hosts this call made are removed again.
        for name in created:
            _remove(client, spec.container_name(name))
        if not _containers(client, spec.name):
            _remove_network(client, spec.name)
        raise


def _foreign(existing: dict[str, Container], owner: str) -> list[str]:
    """The hosts another checkout made (or a version of this project that did not say)."""
    return sorted(name for name, c in existing.items() if c.labels.get(LABEL_CHECKOUT) != owner)


def _remove(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(NotFound):
        client.containers.get(name).remove(force=True, v=True)


def _remove_network(client: docker.DockerClient, name: str) -> None:
    for network in client.networks.list(names=[name]):
        if network.attrs.get("Labels", {}).get(LABEL_LAB) == name:
            network.remove()


def down(client: docker.DockerClient, lab: str) -> list[str]:
    """Remove the lab's containers and network, and nothing else."""
    removed = []
    for host, container in sorted(_containers(client, lab).items()):
        with step(f"Removing lab host {host}"):
            container.remove(force=True, v=True)
        (ETC_HOSTS_DIR / lab / host).unlink(missing_ok=True)
        removed.append(host)
    _remove_network(client, lab)
    with contextlib.suppress(OSError):  # gone already, or hosts of this lab left in it
        (ETC_HOSTS_DIR / lab).rmdir()
    return removed


def remove_hosts(client: docker.DockerClient, spec: LabSpec, names: Iterable[str]) -> None:
    for name in names:
        _remove(client, spec.container_name(name))
        (ETC_HOSTS_DIR / spec.name / name).unlink(missing_ok=True)


def ssh_argv(spec: LabSpec, host: HostSpec, *command: str) -> list[str]:
    return [
        "ssh",
        "-i", str(SSH_KEY),
        "-o", f"UserKnownHostsFile={KNOWN_HOSTS}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=5",
        f"{spec.user}@{host.address}",
        *command,
    ]  # fmt: skip


def status(client: docker.DockerClient, spec: LabSpec) -> list[HostStatus]:
    existing = _containers(client, spec.name)
    rows = []
    for host in spec.hosts:
        container = existing.get(host.name)
        if container is None:
            rows.append(HostStatus(host.name, host.address, "absent", "-", "-"))
            continue
        systemd, ssh = "-", "-"
        if container.status == "running":
            _, systemd = _exec(container, "systemctl", "is-system-running")
            probe = subprocess.run(
                ssh_argv(spec, host, "true"), capture_output=True, text=True, check=False
            )
            ssh = (
                "ok"
                if probe.returncode == 0
                else (probe.stderr.strip().splitlines() or ["failed"])[-1]
            )
        rows.append(HostStatus(host.name, host.address, container.status, systemd, ssh))
    return rows


def kill(client: docker.DockerClient, spec: LabSpec, name: str) -> None:
    """Lose a lab host at once: SIGKILL to every process of its container (no shutdown).
    Their open connections end as the kernel closes the sockets; then the address is gone
    and new connections to it get no answer."""
    client.containers.get(spec.container_name(name)).kill()


def start_again(client: docker.DockerClient, spec: LabSpec, name: str) -> str:
    """Start a killed or stopped lab host again and wait until it has booted; returns
    systemd's state. It keeps its address, its disk and its SSH host key."""
    container = client.containers.get(spec.container_name(name))
    container.start()
    return _wait_booted(container, name)


def cut_off(client: docker.DockerClient, spec: LabSpec, name: str) -> None:
    """Pull a lab host's network cable: its interface on the lab network goes away, its
    processes go on. Peers' connections to it get no answer (no FIN, no RST)."""
    client.networks.get(spec.name).disconnect(spec.container_name(name), force=True)


def reconnect(client: docker.DockerClient, spec: LabSpec, name: str) -> None:
    """Plug a host that cut_off took off the lab network back in, at its own address."""
    host = spec.host(name)
    client.networks.get(spec.name).connect(
        spec.container_name(name), ipv4_address=host.address, aliases=[host.name]
    )
