#!/usr/bin/env python3
"""Resolve Airflow's dependencies once and write the constraints file every host installs with.

Every host must get the same versions of everything, and an unconstrained install is not
safe: today's resolver picks celery 5.7.0, which breaks apache-airflow-providers-celery
3.26 (the worker dies with "cannot import name 'retry' from 'celery.backends.database'").
Upstream publishes constraints files on GitHub; this script makes our own from PyPI:

1. create a throwaway virtualenv with uv (pinned below) in it;
2. `uv pip compile` the requirements of roles/airflow_common/defaults/main.yml (version,
   extras, packages) for the hosts' exact Python version and platform (Debian 12: CPython
   3.11.2 on Linux, glibc 2.36). Environment markers are evaluated for the hosts, not for
   this machine: redis needs async-timeout on Python < 3.11.3 only, so a resolution on this
   machine's newer 3.11.x would leave it unpinned. Only the index is asked: this machine's
   pip configuration (extra indexes, local wheel folders the hosts cannot see) is ignored;
3. write every resolved `name==version`, and the pins of pip and uv, to
   roles/airflow_common/files/constraints/airflow-<version>-python<major.minor>.txt.

Run it after changing the Airflow version, the extras or the packages (the role's
defaults), then build the wheelhouse again and run the tests (docs/operations.md).
--keep-pins resolves with the current file as constraints: it only adds what is missing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from clusterops import release
from clusterops.console import Failure, info, run_main, step
from clusterops.files import write_atomic
from clusterops.paths import PROJECT_ROOT
from clusterops.wheelhouse import DEFAULT_INDEX_URL, GLIBC_MINOR, isolated_pip_env

# Known-bad versions, with the reason. Keep each until a release fixes it.
EXCLUDE = [
    "celery<5.7",  # 5.7.0 breaks apache-airflow-providers-celery 3.26 (see above)
]
# pip itself is pinned too: the hosts install it first. Debian 12's pip (23.0.1) cannot
# resolve this set ("beautifulsoup4 depends on soupsieve>=1.6.1" against soupsieve==4.1.2).
PIP_VERSION = "25.3"
# uv: the resolver here (unlike `pip install --dry-run --python-version`, it evaluates
# environment markers for the target Python and platform), and pinned for the hosts too:
# with a wheelhouse, they install with it (roles/airflow_common/tasks/install.yml).
UV_VERSION = "0.13.9"
# Debian 12's python3. Some wheels require a later 3.11.x (soupsieve 4.1.2: >=3.11.5).
HOSTS_PYTHON = "3.11.2"


def _uv_settings() -> dict[str, str]:
    """uv reads the CA bundle from SSL_CERT_FILE where pip is told with PIP_CERT."""
    cert = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    return {"UV_NO_CACHE": "1", **({"SSL_CERT_FILE": cert} if cert else {})}


def resolve(
    python_version: str, arch: str, index_url: str, requirements: list[str], keep: Path | None
) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="constraints-") as tmp:
        venv = Path(tmp) / "venv"
        env = isolated_pip_env(index_url)
        with step(f"Creating a throwaway virtualenv with uv {UV_VERSION}"):
            subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "--quiet", f"uv=={UV_VERSION}"],
                check=True,
                env=env,
            )
        requirements_in = Path(tmp) / "requirements.in"
        requirements_in.write_text("\n".join(requirements) + "\n")
        pins = Path(tmp) / "pins.txt"
        with step(f"Resolving {' '.join(requirements)} for Python {python_version} on {arch}"):
            result = subprocess.run(
                [
                    str(venv / "bin" / "uv"), "pip", "compile", "--quiet", "--no-header",
                    "--no-annotate", "--no-config", f"--python-version={python_version}",
                    f"--python-platform={arch}-manylinux_2_{GLIBC_MINOR}",
                    f"--index-url={index_url}", "--output-file", str(pins),
                    *(["--constraint", str(keep)] if keep else []), str(requirements_in),
                ],
                capture_output=True, text=True, check=False,
                env={**env, **_uv_settings()},
            )  # fmt: skip
            if result.returncode != 0:
                raise Failure(f"uv could not resolve the requirements:\n{result.stderr}")
        lines = [line.strip() for line in pins.read_text().splitlines()]
    resolved = [tuple(line.split("==", 1)) for line in lines if "==" in line]
    installers = [("pip", PIP_VERSION), ("uv", UV_VERSION)]
    return sorted([*((n, v) for n, v in resolved if n not in {"pip", "uv"}), *installers])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--python-version",
        default=HOSTS_PYTHON,
        help=f"the hosts' exact Python version (default {HOSTS_PYTHON}, Debian 12's)",
    )
    parser.add_argument("--arch", default="x86_64", help="the hosts' architecture (x86_64)")
    parser.add_argument(
        "--index-url",
        default=DEFAULT_INDEX_URL,
        help=f"package index (default {DEFAULT_INDEX_URL})",
    )
    parser.add_argument(
        "--keep-pins",
        action="store_true",
        help="resolve within the current file's pins: only add what it misses",
    )
    args = parser.parse_args()
    pinned = release.load()
    if args.keep_pins and not pinned.constraints.is_file():
        raise Failure(f"--keep-pins: {pinned.constraints} does not exist", 2)
    requirements = [*pinned.requirements(), *EXCLUDE]
    pins = resolve(
        args.python_version,
        args.arch,
        args.index_url,
        requirements,
        pinned.constraints if args.keep_pins else None,
    )
    header = [
        f"# Constraints for {' '.join(pinned.requirements())} on Python {args.python_version}.",
        f"# Generated by scripts/make_constraints.py from {args.index_url}; do not edit by hand.",
        f"# Excluded on purpose: {', '.join(EXCLUDE)}",
    ]
    pinned.constraints.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(pinned.constraints, "\n".join([*header, *(f"{n}=={v}" for n, v in pins)]) + "\n")
    info(f"wrote {len(pins)} pins to {pinned.constraints.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    run_main(main)
