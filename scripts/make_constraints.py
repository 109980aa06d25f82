#!/usr/bin/env python3
"""Resolve Airflow's dependencies once and write the constraints file every host installs with.

Every host must get the same versions of everything, and an unconstrained install is not
safe: today's resolver picks celery 5.7.0, which breaks apache-airflow-providers-celery
3.26 (the worker dies with "cannot import name 'retry' from 'celery.backends.database'").
Upstream publishes constraints files on GitHub; this script makes our own from PyPI:

1. create a throwaway virtualenv with the pip version the hosts will use;
2. `pip install --dry-run --report` the requirements below (nothing is installed) for the
   hosts' exact Python version (Debian 12: 3.11.2; some wheels need a newer 3.11.x), from
   the package index alone: this machine's pip configuration (extra indexes, local wheel
   folders the hosts cannot see) is ignored;
3. write every resolved `name==version` to roles/airflow_common/files/constraints/.

Run it after changing the Airflow version or the extras, then run the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from clusterops.console import Failure, info, run_main, step
from clusterops.files import write_atomic
from clusterops.paths import PROJECT_ROOT

AIRFLOW_VERSION = "3.3.2"
EXTRAS = "celery,postgres,redis,amazon,fab,git"
# Known-bad versions, with the reason. Keep each until a release fixes it.
EXCLUDE = [
    "celery<5.7",  # 5.7.0 breaks apache-airflow-providers-celery 3.26 (see above)
]
# pip itself is pinned too: the hosts install it first. Debian 12's pip (23.0.1) cannot
# resolve this set ("beautifulsoup4 depends on soupsieve>=1.6.1" against soupsieve==4.1.2).
PIP_VERSION = "25.3"
# Debian 12's python3. Some wheels require a later 3.11.x (soupsieve 4.1.2: >=3.11.5).
HOSTS_PYTHON = "3.11.2"
INDEX_URL = "https://pypi.org/simple"
OUTPUT_DIR = PROJECT_ROOT / "roles" / "airflow_common" / "files" / "constraints"


def _isolated_env(index_url: str) -> dict[str, str]:
    """This machine's environment without its pip settings, except the CA bundle."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    env.update(
        PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=index_url, PIP_DISABLE_PIP_VERSION_CHECK="1"
    )
    return env


def resolve(
    python: str, python_version: str, index_url: str, requirements: list[str]
) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="constraints-") as tmp:
        venv = Path(tmp) / "venv"
        with step(f"Creating a virtualenv with {python}"):
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "--quiet", f"pip=={PIP_VERSION}"], check=True
            )
        report = Path(tmp) / "report.json"
        with step(
            f"Resolving {' '.join(requirements)} for Python {python_version} (nothing is installed)"
        ):
            result = subprocess.run(
                [
                    str(venv / "bin" / "pip"),
                    "install",
                    "--quiet",
                    "--dry-run",
                    "--ignore-installed",
                    "--report",
                    str(report),
                    f"--python-version={python_version}",
                    "--only-binary=:all:",
                    f"--target={Path(tmp) / 'target'}",
                    *requirements,
                ],
                capture_output=True,
                text=True,
                check=False,
                env=_isolated_env(index_url),
            )
            if result.returncode != 0:
                raise Failure(f"pip could not resolve the requirements:\n{result.stderr}")
        data = json.loads(report.read_text())
    pins = [(item["metadata"]["name"], item["metadata"]["version"]) for item in data["install"]]
    return sorted([*pins, ("pip", PIP_VERSION)])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--python",
        default="python3.11",
        help="a local Python of the hosts' minor version (python3.11)",
    )
    parser.add_argument(
        "--python-version",
        default=HOSTS_PYTHON,
        help=f"the hosts' exact Python version (default {HOSTS_PYTHON}, Debian 12's)",
    )
    parser.add_argument(
        "--index-url", default=INDEX_URL, help=f"package index (default {INDEX_URL})"
    )
    parser.add_argument("--airflow-version", default=AIRFLOW_VERSION)
    args = parser.parse_args()
    minor = ".".join(args.python_version.split(".")[:2])
    requirements = [f"apache-airflow[{EXTRAS}]=={args.airflow_version}", *EXCLUDE]
    pins = resolve(args.python, args.python_version, args.index_url, requirements)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    output = OUTPUT_DIR / f"airflow-{args.airflow_version}-python{minor}.txt"
    header = [
        f"# Constraints for apache-airflow[{EXTRAS}]=={args.airflow_version}"
        f" on Python {args.python_version}.",
        f"# Generated by scripts/make_constraints.py from {args.index_url}; do not edit by hand.",
        f"# Excluded on purpose: {', '.join(EXCLUDE)}",
    ]
    write_atomic(output, "\n".join([*header, *(f"{n}=={v}" for n, v in pins)]) + "\n")
    info(f"wrote {len(pins)} pins to {output.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    run_main(main)
