#!/usr/bin/env python3
"""Measure task throughput: run the noop_mapped DAG with N no-op mapped tasks. See --help."""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import datetime
from pathlib import Path

from clusterops.cluster import AirflowAPI, Credentials, wait_for
from clusterops.console import Failure, info, run_main, step
from clusterops.lab.topology import lab_spec
from clusterops.paths import LAB_INVENTORY, LAB_VAULT_PASSWORD

DESCRIPTION = """\
Trigger the noop_mapped DAG (dags/noop_mapped.py) with N mapped tasks that do nothing,
wait for it, and print how long it took: the run's wall time (created to finished) and
the span from the first task's start to the last task's end, with tasks per second and
how the tasks spread over the hosts. `make bench` runs it against the lab (CeleryExecutor)
and against one host with the LocalExecutor. Results go to docs/benchmarks.md by hand.
"""


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench_mapped.py", description=DESCRIPTION)
    parser.add_argument(
        "--api",
        help="API server URL, e.g. http://172.30.89.31:8080 (default: the lab's first master)",
    )
    parser.add_argument("--tasks", type=int, default=100, help="mapped tasks (default 100)")
    parser.add_argument(
        "--inventory", type=Path, default=LAB_INVENTORY, help="for the admin password"
    )
    parser.add_argument("--vault-password-file", type=Path, default=LAB_VAULT_PASSWORD)
    parser.add_argument(
        "--admin-password-file",
        type=Path,
        help="read the admin password from this file instead of the inventory's vault",
    )
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    if not args.api:
        lab = lab_spec(LAB_INVENTORY)
        args.api = f"http://{lab.host(lab.group('airflow_master')[0]).address}:8080"
    if args.admin_password_file:
        password = args.admin_password_file.read_text(encoding="utf-8").strip()
    else:
        password = Credentials.from_vault(args.inventory, args.vault_password_file).admin_password
    api = AirflowAPI(args.api, "admin", password)
    wait_for("DAG noop_mapped to be parsed", lambda: api.dag("noop_mapped"), timeout=120)
    with step(f"Running noop_mapped with {args.tasks} tasks"):
        run_id = api.trigger("noop_mapped", {"tasks": args.tasks})
        run = api.wait_for_run("noop_mapped", run_id, timeout=args.timeout)
    if run["state"] != "success":
        raise Failure(f"run {run_id} ended {run['state']}")
    tis = [ti for ti in api.task_instances("noop_mapped", run_id) if ti["task_id"] == "noop"]
    first = min(_time(ti["start_date"]) for ti in tis)
    last = max(_time(ti["end_date"]) for ti in tis)
    span = (last - first).total_seconds()
    wall = (_time(run["end_date"]) - _time(run["queued_at"] or run["start_date"])).total_seconds()
    info(f"run wall time (queued to finished): {wall:.1f}s")
    rate = len(tis) / span
    info(f"first task start to last task end: {span:.1f}s, {len(tis)} tasks, {rate:.1f} tasks/s")
    info(f"tasks per host: {dict(sorted(Counter(ti['hostname'] for ti in tis).items()))}")
    return 0


if __name__ == "__main__":
    run_main(main)
