"""`scripts/run_molecule.py`: run molecule scenarios side by side, each logged to a file."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from clusterops.console import Failure, cli_parser, info
from clusterops.paths import LAB_STATE_DIR, PROJECT_ROOT, shown

DESCRIPTION = """\
Run `molecule test` for every role that has a scenario (roles/*/molecule/default/) and
for the project's scenarios (molecule/*/), JOBS at a time. Each scenario has its own lab
hosts and network, so they do not meet. The slowest (those installing Airflow) start
first. Each scenario's output goes to LOG_DIR/<name>.log; this command prints when each
starts and ends, and the end of the log of each that failed.

The scenarios share a cache of built Airflow virtualenvs, .lab/venv-cache (the role
variable airflow_venv_cache_dir, from AIRFLOW_VENV_CACHE_DIR): a scenario that finds no
archive of its virtualenv there runs pip and leaves one, later scenarios unpack it instead
of running pip. Delete the folder to make them run pip again; set AIRFLOW_VENV_CACHE_DIR
to another folder, or to nothing to turn the cache off.
"""

EPILOG = """\
examples:
  scripts/run_molecule.py                      every scenario, 2 at a time (make molecule)
  scripts/run_molecule.py --jobs 1             one after the other
  scripts/run_molecule.py role:redis scenario:lab

exit codes: 0 all passed, 1 one or more failed, 2 bad input
"""

# Scenarios that are benchmarks, not tests (make bench runs them).
NOT_TESTS = {"bench_local_executor"}
# Scenarios that install Airflow take 5 to 10 minutes; they start first.
SLOW = ("role:airflow_master", "role:airflow_worker", "role:airflow_common")
TAIL_LINES = 150
# The controller's cache of built Airflow virtualenvs (roles/airflow_common), read by the
# molecule configuration (.config/molecule/config.yml) from this environment variable.
VENV_CACHE_VARIABLE = "AIRFLOW_VENV_CACHE_DIR"
VENV_CACHE_DIR = LAB_STATE_DIR / "venv-cache"


@dataclass(frozen=True)
class Scenario:
    name: str  # role:<role> or scenario:<name>
    cwd: Path
    args: tuple[str, ...]

    @property
    def log_name(self) -> str:
        return self.name.replace(":", "-") + ".log"


def discover(root: Path = PROJECT_ROOT) -> list[Scenario]:
    """Every test scenario, the slow ones first, then by name."""
    found = [
        Scenario(f"role:{path.parents[2].name}", path.parents[2], ("test",))
        for path in root.glob("roles/*/molecule/default/molecule.yml")
    ] + [
        Scenario(f"scenario:{path.parent.name}", root, ("test", "-s", path.parent.name))
        for path in root.glob("molecule/*/molecule.yml")
        if path.parent.name not in NOT_TESTS
    ]
    return sorted(
        found,
        key=lambda s: (s.name not in SLOW, SLOW.index(s.name) if s.name in SLOW else 0, s.name),
    )


def scenario_environment() -> dict[str, str]:
    """This process's environment, with the virtualenv cache unless the caller chose one."""
    return {VENV_CACHE_VARIABLE: str(VENV_CACHE_DIR), **os.environ}


def run(scenario: Scenario, log_dir: Path) -> tuple[Scenario, int, float]:
    log = log_dir / scenario.log_name
    info(f"==> {scenario.name} started (log: {shown(log)})")
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(
            ["molecule", *scenario.args], cwd=scenario.cwd, env=scenario_environment(),
            stdout=out, stderr=subprocess.STDOUT, check=False,
        ).returncode  # fmt: skip
    elapsed = time.monotonic() - started
    info(f"    {scenario.name} {'passed' if code == 0 else 'FAILED'} in {elapsed:.0f}s")
    return scenario, code, elapsed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli_parser("run_molecule.py", DESCRIPTION, EPILOG)
    parser.add_argument("names", nargs="*", help="role:<role> or scenario:<name> (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="scenarios at a time (default 2)")
    parser.add_argument(
        "--log-dir", type=Path, default=LAB_STATE_DIR / "molecule",
        help="folder of the logs (default .lab/molecule)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.jobs < 1:
        raise Failure("--jobs must be 1 or more", 2)
    scenarios = discover()
    if args.names:
        known = {s.name for s in scenarios}
        unknown = sorted(set(args.names) - known)
        if unknown:
            raise Failure(
                f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", 2
            )
        scenarios = [s for s in scenarios if s.name in args.names]
    args.log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda s: run(s, args.log_dir), scenarios))
    failed = [(s, code) for s, code, _ in results if code != 0]
    for scenario, code in failed:
        lines = (args.log_dir / scenario.log_name).read_text(errors="replace").splitlines()
        print(
            f"\n==== {scenario.name} failed (exit {code}); last {TAIL_LINES} lines:",
            file=sys.stderr,
        )
        print("\n".join(lines[-TAIL_LINES:]), file=sys.stderr)
    info(
        f"molecule: {len(results) - len(failed)} of {len(results)} scenarios passed in "
        f"{time.monotonic() - started:.0f}s ({args.jobs} at a time)"
    )
    return 1 if failed else 0
