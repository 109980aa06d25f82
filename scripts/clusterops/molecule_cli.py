"""`scripts/run_molecule.py`: run molecule scenarios side by side, each logged to a file."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from clusterops import release, wheelhouse
from clusterops.console import Failure, cli_parser, info
from clusterops.paths import LAB_STATE_DIR, PROJECT_ROOT, shown

DESCRIPTION = """\
Run `molecule test` for every role that has a scenario (roles/*/molecule/default/, and the
lab's own roles in playbooks/lab/roles/) and for the project's scenarios (molecule/*/),
JOBS at a time. Each scenario has its own lab
hosts and network, so they do not meet. Each scenario's output goes to
LOG_DIR/<name>.log; this command prints when each starts and ends, and the end of the log
of each that failed.

Before any starts, the wheelhouse the Airflow hosts install from is built (or found up to
date) in .lab/wheelhouse, as `scripts/build_wheelhouse.py` does; the scenarios get it in
AIRFLOW_WHEELHOUSE_DIR (the role variable airflow_wheelhouse_dir). Set
AIRFLOW_WHEELHOUSE_DIR to another folder to use that one, or to nothing to make the hosts
install from PyPI.

Order: the slowest first, as measured (those installing Airflow, then the data tier's
roles), then the others by name; with 2 at a time the last to start are
the short ones, so neither job idles long at the end.
"""

EPILOG = """\
examples:
  scripts/run_molecule.py                      every scenario, 2 at a time (make molecule)
  scripts/run_molecule.py --jobs 1             one after the other
  scripts/run_molecule.py role:redis scenario:lab
  AIRFLOW_WHEELHOUSE_DIR= scripts/run_molecule.py   hosts install from PyPI

exit codes: 0 all passed, 1 one or more failed, 2 bad input
"""

# Scenarios that are benchmarks, not tests (make bench runs them).
NOT_TESTS = {"bench_local_executor"}
LAB_ROLE_SCENARIOS = "playbooks/lab/roles/*/molecule/default/molecule.yml"
# Scenarios that install Airflow.
AIRFLOW = ("role:airflow_master", "role:airflow_worker", "role:airflow_common")
# Slowest first, by the durations of a full run (docs/benchmarks.md); the others follow.
SLOWEST = (
    "role:airflow_master", "role:airflow_worker", "role:airflow_common", "role:postgresql",
    "role:redis", "role:aws_emulator",
)  # fmt: skip
TAIL_LINES = 150
# The wheelhouse of the Airflow hosts (roles/airflow_common), read by the molecule
# configuration (.config/molecule/config.yml) from this environment variable.
WHEELHOUSE_VARIABLE = "AIRFLOW_WHEELHOUSE_DIR"
WHEELHOUSE_DIR = LAB_STATE_DIR / "wheelhouse"


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
    """Every test scenario, the slowest first (SLOWEST), then by name."""
    found = [
        Scenario(f"role:{path.parents[2].name}", path.parents[2], ("test",))
        for pattern in ("roles/*/molecule/default/molecule.yml", LAB_ROLE_SCENARIOS)
        for path in root.glob(pattern)
    ] + [
        Scenario(f"scenario:{path.parent.name}", root, ("test", "-s", path.parent.name))
        for path in root.glob("molecule/*/molecule.yml")
        if path.parent.name not in NOT_TESTS
    ]
    return sorted(
        found,
        key=lambda s: (SLOWEST.index(s.name) if s.name in SLOWEST else len(SLOWEST), s.name),
    )


def wheelhouse_dir(environ: Mapping[str, str]) -> Path | None:
    """The wheelhouse folder the scenarios will use, or None for PyPI.

    A relative folder is made absolute: role scenarios run in their role's folder.
    """
    value = environ.get(WHEELHOUSE_VARIABLE, str(WHEELHOUSE_DIR))
    return Path(value).expanduser().absolute() if value else None


def scenario_environment(wheels: Path | None) -> dict[str, str]:
    return {**os.environ, WHEELHOUSE_VARIABLE: str(wheels) if wheels else ""}


def run(scenario: Scenario, log_dir: Path, env: dict[str, str]) -> tuple[Scenario, int, float]:
    log = log_dir / scenario.log_name
    info(f"==> {scenario.name} started (log: {shown(log)})")
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(
            ["molecule", *scenario.args], cwd=scenario.cwd, env=env,
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


def run_all(
    scenarios: list[Scenario], jobs: int, log_dir: Path, env: dict[str, str]
) -> dict[Scenario, int]:
    """Run the scenarios in order, `jobs` at a time; their exit codes."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda s: run(s, log_dir, env), scenarios))
    return {scenario: code for scenario, code, _ in results}


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
    wheels = wheelhouse_dir(os.environ)
    if wheels is not None and any(s.installs_airflow for s in scenarios):
        wheelhouse.build(release.load(), wheels, platform.machine(), wheelhouse.DEFAULT_INDEX_URL)
    codes = run_all(scenarios, args.jobs, args.log_dir, scenario_environment(wheels))
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
