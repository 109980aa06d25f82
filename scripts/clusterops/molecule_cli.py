"""`scripts/run_molecule.py`: run molecule scenarios side by side, each logged to a file."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from clusterops.console import Failure, cli_parser, info
from clusterops.paths import LAB_STATE_DIR, PROJECT_ROOT, shown

DESCRIPTION = """\
Run `molecule test` for every role that has a scenario (roles/*/molecule/default/) and
for the project's scenarios (molecule/*/), JOBS at a time. Each scenario has its own lab
hosts and network, so they do not meet. Each scenario's output goes to
LOG_DIR/<name>.log; this command prints when each starts and ends, and the end of the log
of each that failed.

The scenarios share a cache of built Airflow virtualenvs, .lab/venv-cache (the role
variable airflow_venv_cache_dir, from AIRFLOW_VENV_CACHE_DIR): a scenario that finds no
archive of its virtualenv there runs pip and leaves one, later scenarios unpack it instead
of running pip. Delete the folder to make them run pip again; set AIRFLOW_VENV_CACHE_DIR
to another folder, or to nothing to turn the cache off.

Order: without the cache, the slowest (those installing Airflow) start first, then the
others by name. With the cache, one scenario that installs Airflow starts first, the
quickest of those chosen (role:airflow_common if chosen), and the scenarios without
Airflow take the other places; the other Airflow scenarios wait until the cache folder
gets a new archive (the first one's pip run is over) or the first one has ended, so that
pip runs once. From then on the slowest waiting start first.
"""

EPILOG = """\
examples:
  scripts/run_molecule.py                      every scenario, 2 at a time (make molecule)
  scripts/run_molecule.py --jobs 1             one after the other
  scripts/run_molecule.py role:redis scenario:lab
  AIRFLOW_VENV_CACHE_DIR= scripts/run_molecule.py   without the virtualenv cache

exit codes: 0 all passed, 1 one or more failed, 2 bad input
"""

# Scenarios that are benchmarks, not tests (make bench runs them).
NOT_TESTS = {"bench_local_executor"}
# Scenarios that install Airflow, slowest first (on 2 cores: 14 and 11 minutes with pip,
# 5 from the cache). The last gets past its install soonest (its converge runs only the
# airflow_common role; the others set up PostgreSQL and Redis first) and ends soonest.
AIRFLOW = ("role:airflow_master", "role:airflow_worker", "role:airflow_common")
TAIL_LINES = 150
# The controller's cache of built Airflow virtualenvs (roles/airflow_common), read by the
# molecule configuration (.config/molecule/config.yml) from this environment variable.
VENV_CACHE_VARIABLE = "AIRFLOW_VENV_CACHE_DIR"
VENV_CACHE_DIR = LAB_STATE_DIR / "venv-cache"
# How the role's archives end (roles/airflow_common/vars/main.yml,
# __airflow_venv_cache_name). Half-written ones have other names: they lie in a hidden
# temporary folder, then in a temporary file without this ending.
VENV_ARCHIVE_SUFFIX = ".tar.gz"
# Seconds between looks into the cache folder while scenarios wait for it.
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Scenario:
    name: str  # role:<role> or scenario:<name>
    cwd: Path
    args: tuple[str, ...]

    @property
    def log_name(self) -> str:
        return self.name.replace(":", "-") + ".log"

    @property
    def installs_airflow(self) -> bool:
        return self.name in AIRFLOW


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
        key=lambda s: (
            not s.installs_airflow,
            AIRFLOW.index(s.name) if s.installs_airflow else 0,
            s.name,
        ),
    )


class Schedule:
    """Which scenarios start when: the decisions of main(), without processes or clocks.

    `scenarios` come slowest first (as from discover()). With `cached` (the virtualenv
    cache is on) and two or more scenarios that install Airflow, the last of those (the
    quickest) leads: it starts first, and the others that install Airflow are held back
    until it has ended or cache_filled() is called. The rest start in the given order
    whenever a place is free.
    """

    def __init__(self, scenarios: Sequence[Scenario], jobs: int, *, cached: bool) -> None:
        if jobs < 1:
            raise ValueError("jobs must be 1 or more")
        self.jobs = jobs
        airflow = [s for s in scenarios if s.installs_airflow]
        self.leader = airflow[-1] if cached and len(airflow) > 1 else None
        self.waiting = [s for s in scenarios if s == self.leader]
        self.waiting += [s for s in scenarios if s != self.leader]
        self.running: list[Scenario] = []
        self.released = self.leader is None

    def _may_start(self, scenario: Scenario) -> bool:
        return self.released or not scenario.installs_airflow or scenario == self.leader

    def start(self) -> list[Scenario]:
        """The scenarios to start now (counted as running from here on), in order."""
        started = []
        while len(self.running) < self.jobs:
            ready = next((s for s in self.waiting if self._may_start(s)), None)
            if ready is None:
                break
            self.waiting.remove(ready)
            self.running.append(ready)
            started.append(ready)
        return started

    def finished(self, scenario: Scenario) -> None:
        self.running.remove(scenario)
        if scenario == self.leader:
            self.released = True

    def cache_filled(self) -> None:
        """The leader has put its virtualenv into the cache: the rest may unpack it."""
        self.released = True

    @property
    def holding(self) -> bool:
        """Whether scenarios wait for the cache (and the cache folder is worth watching)."""
        return not self.released and any(s.installs_airflow for s in self.waiting)

    @property
    def done(self) -> bool:
        return not self.waiting and not self.running


def venv_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """The cache folder the scenarios will use, or None when the cache is off."""
    value = environ.get(VENV_CACHE_VARIABLE, str(VENV_CACHE_DIR))
    return Path(value).expanduser().absolute() if value else None


class CacheWatch:
    """Notices archives that appear in the cache folder after it was first looked at."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen = self._archives()

    def _archives(self) -> set[str]:
        try:
            entries = list(self.folder.iterdir())
        except FileNotFoundError:  # the role creates it
            return set()
        return {
            p.name
            for p in entries
            if p.name.endswith(VENV_ARCHIVE_SUFFIX) and not p.name.startswith(".") and p.is_file()
        }

    def new_archives(self) -> list[str]:
        return sorted(self._archives() - self.seen)


def scenario_environment() -> dict[str, str]:
    """This process's environment, with the virtualenv cache unless the caller chose one.

    A relative folder is made absolute: role scenarios run in their role's folder.
    """
    cache = venv_cache_dir(os.environ)
    return {**os.environ, VENV_CACHE_VARIABLE: str(cache) if cache else ""}


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


def run_all(scenarios: list[Scenario], jobs: int, log_dir: Path) -> dict[Scenario, int]:
    """Run the scenarios as Schedule says; their exit codes."""
    cache = venv_cache_dir(os.environ)
    schedule = Schedule(scenarios, jobs, cached=cache is not None)
    watch = CacheWatch(cache) if cache is not None and schedule.holding else None
    codes: dict[Scenario, int] = {}
    running: dict[Future[tuple[Scenario, int, float]], Scenario] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while not schedule.done:
            for scenario in schedule.start():
                running[pool.submit(run, scenario, log_dir)] = scenario
            if schedule.holding and not running:  # nothing left that could release them
                schedule.cache_filled()
                continue
            done, _ = wait(
                running,
                timeout=POLL_SECONDS if watch and schedule.holding else None,
                return_when=FIRST_COMPLETED,
            )
            for future in done:
                scenario, code, _ = future.result()
                codes[scenario] = code
                schedule.finished(running.pop(future))
            if watch and schedule.holding and (archives := watch.new_archives()):
                info(
                    f"    the cache has {', '.join(archives)}: the other Airflow scenarios "
                    "may start"
                )
                schedule.cache_filled()
    return codes


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
    codes = run_all(scenarios, args.jobs, args.log_dir)
    failed = [(s, codes[s]) for s in scenarios if codes[s] != 0]
    for scenario, code in failed:
        lines = (args.log_dir / scenario.log_name).read_text(errors="replace").splitlines()
        print(
            f"\n==== {scenario.name} failed (exit {code}); last {TAIL_LINES} lines:",
            file=sys.stderr,
        )
        print("\n".join(lines[-TAIL_LINES:]), file=sys.stderr)
    info(
        f"molecule: {len(scenarios) - len(failed)} of {len(scenarios)} scenarios passed in "
        f"{time.monotonic() - started:.0f}s ({args.jobs} at a time)"
    )
    return 1 if failed else 0
