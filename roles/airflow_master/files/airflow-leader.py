#!/usr/bin/python3
"""Run a command on one host at a time: the holder of a lock in etcd.

    airflow-leader NAME -- COMMAND [ARG...]

Airflow supports one DAG processor per DAG bundle, not several on one bundle, so every
master runs its DAG processor through this runner: one of them holds the lock and parses,
the others wait, and one of them takes over when the holder goes.

- `etcdctl lock --ttl TTL PREFIX/NAME` holds the lock on a lease that etcdctl keeps alive.
  Once it prints the lock's key the lock is held, and COMMAND starts.
- When the lease is lost (the host cut off from etcd, etcd without quorum), etcdctl exits:
  COMMAND is stopped at once, so that two holders never run for longer than the lease's
  TTL, and the runner exits non-zero (systemd starts it again, to wait for the lock).
- When COMMAND exits, the lock is released and the runner exits with COMMAND's status.
- SIGTERM (systemctl stop) goes to COMMAND; the lock is released once it has stopped.

etcdctl takes its endpoints and credentials from ETCDCTL_* in the environment (the unit's
environment file); COMMAND never sees them. AIRFLOW_LEADER_TTL (seconds, default 15) and
AIRFLOW_LEADER_PREFIX (default /airflow/locks) set the lease and where the lock lives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType

STOP_GRACE = 60.0  # seconds COMMAND has to stop after SIGTERM before SIGKILL


def log(message: str) -> None:
    print(f"airflow-leader: {message}", file=sys.stderr, flush=True)


def stop(process: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds; the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def main(argv: list[str]) -> int:
    if len(argv) < len(["NAME", "--", "COMMAND"]) or argv[1] != "--":
        log("usage: airflow-leader NAME -- COMMAND [ARG...]")
        return 2
    name, command = argv[0], argv[2:]
    ttl = os.environ.get("AIRFLOW_LEADER_TTL", "15")
    prefix = os.environ.get("AIRFLOW_LEADER_PREFIX", "/airflow/locks").rstrip("/")
    lock = subprocess.Popen(
        ["etcdctl", "lock", f"--ttl={ttl}", f"{prefix}/{name}"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    child: subprocess.Popen[bytes] | None = None
    stopping = threading.Event()

    def on_term(signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)
        elif child is None:
            lock.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    log(f"waiting for the lock {prefix}/{name} (lease of {ttl} s)")
    key = lock.stdout.readline().decode().strip() if lock.stdout else ""
    if not key or stopping.is_set():
        status = stop(lock, 5)
        if stopping.is_set():
            return 0
        log(f"etcdctl lock ended (status {status}) before the lock was held")
        return 1
    log(f"holding the lock ({key}): starting {' '.join(command)}")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    child = subprocess.Popen(command, env=environment)

    lost = threading.Event()

    def watch_lock() -> None:
        lock.wait()
        if child is not None and child.poll() is None and not stopping.is_set():
            lost.set()
            log("lost the lock (etcdctl exited): stopping the command")
            stop(child, 5)

    threading.Thread(target=watch_lock, daemon=True).start()
    status = child.wait()
    if stopping.is_set():
        # systemctl stop: the command had its SIGTERM; now release the lock.
        status = stop(child, STOP_GRACE)
    stop(lock, 5)
    if lost.is_set():
        return 1
    log(f"the command exited with status {status}; the lock is released")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
