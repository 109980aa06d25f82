"""Make sure a Docker engine answers, installing and starting Debian's docker.io if we may."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
from docker.errors import DockerException

from clusterops.console import Failure, info, step
from clusterops.paths import LAB_STATE_DIR

ENGINE_START_TIMEOUT = 60.0
# Free space the lab needs where Docker keeps images and containers: the base image
# (~0.4 GB) plus, per host, PostgreSQL or an Airflow virtualenv (~0.5 GB each).
MIN_FREE_BYTES = 6 * 1024**3


def connect() -> docker.DockerClient | None:
    """A client for the engine named by DOCKER_HOST (or the default socket), if it answers."""
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except DockerException:
        return None
    return client


def _os_release() -> dict[str, str]:
    values: dict[str, str] = {}
    path = Path("/etc/os-release")
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key] = value.strip('"')
    return values


def _debian_like() -> bool:
    release = _os_release()
    family = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    return bool(family & {"debian", "ubuntu"}) and shutil.which("apt-get") is not None


def _systemd_is_pid1() -> bool:
    return Path("/run/systemd/system").is_dir()


def _install_docker_io(log: Path) -> None:
    with step("Installing Debian's docker.io (log: .lab/apt.log)"), log.open("ab") as out:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", "docker.io"],
        ):
            result = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
            )
            if result.returncode != 0:
                raise Failure(f"'{' '.join(argv)}' failed (exit {result.returncode}); see {log}")


def _start_dockerd(log: Path) -> None:
    if _systemd_is_pid1():
        subprocess.run(["systemctl", "start", "docker"], check=False)
        return
    out = log.open("ab")
    # Not under systemd (a container or CI sandbox): run dockerd in its own session so
    # that it outlives this process, with its log beside the other lab state.
    subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def ensure_engine() -> docker.DockerClient:
    """Return a client for a running engine, or explain how to get one."""
    client = connect()
    if client is not None:
        return client
    if os.geteuid() != 0 or not _debian_like():
        raise Failure(
            "no Docker engine answers (DOCKER_HOST or /var/run/docker.sock); start one "
            "(e.g. 'sudo systemctl start docker') or run as root on Debian/Ubuntu so that "
            "docker.io is installed and started for you"
        )
    LAB_STATE_DIR.mkdir(exist_ok=True)
    if shutil.which("dockerd") is None:
        _install_docker_io(LAB_STATE_DIR / "apt.log")
    log = LAB_STATE_DIR / "dockerd.log"
    with step("Starting the Docker engine (log: .lab/dockerd.log)"):
        _start_dockerd(log)
        deadline = time.monotonic() + ENGINE_START_TIMEOUT
        while (client := connect()) is None:
            if time.monotonic() > deadline:
                raise Failure(
                    f"dockerd did not answer within {ENGINE_START_TIMEOUT:.0f}s; see {log}"
                )
            time.sleep(0.5)
    return client


def check_free_space(client: docker.DockerClient) -> None:
    """Refuse to start when the engine's data root is nearly full."""
    root = Path(client.info().get("DockerRootDir", "/var/lib/docker"))
    if not root.exists():
        info(f"cannot see Docker's data root {root} from here; skipping the disk check")
        return
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise Failure(
            f"only {free / 1024**3:.1f} GiB free at {root}; the lab needs about "
            f"{MIN_FREE_BYTES / 1024**3:.0f} GiB: free some space (e.g. 'docker system prune')"
        )
