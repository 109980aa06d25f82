"""`scripts/build_wheelhouse.py`: fetch every wheel the Airflow hosts install, once."""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

from clusterops import release, wheelhouse
from clusterops.console import cli_parser, info
from clusterops.paths import LAB_STATE_DIR, shown

DESCRIPTION = """\
Download every wheel an Airflow host's virtualenv needs into one archive on this machine:
the Airflow version, extras and packages pinned in roles/airflow_common/defaults/main.yml,
resolved exactly by the shipped constraints file, for the hosts' platform (Debian 12:
CPython 3.11, glibc 2.36) rather than this machine's.

Point the inventory's airflow_wheelhouse_dir at the output folder and the hosts install
from the archive with no package index: for hosts that cannot reach PyPI (offline or
behind a strict proxy), and to make every new host quicker. Only this machine needs to
reach the index (--index-url, e.g. your mirror).

Building again is a no-op until the constraints, the requirements or the architecture
change; after an upgrade of Airflow (docs/operations.md), run it again.
"""

EPILOG = """\
examples:
  scripts/build_wheelhouse.py           the lab's, in .lab/wheelhouse (make lab does this)
  scripts/build_wheelhouse.py -o ~/airflow-wheels --arch aarch64 \\
      --index-url https://pypi.example.com/simple     for Graviton hosts, from a mirror

then, in inventories/<env>/group_vars/all/cluster.yml:
  airflow_wheelhouse_dir: ~/airflow-wheels

exit codes: 0 built or up to date, 1 failure (pip's error is shown), 2 bad input
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli_parser("build_wheelhouse.py", DESCRIPTION, EPILOG)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=LAB_STATE_DIR / "wheelhouse",
        help="folder on this machine for the archive (default: .lab/wheelhouse, the lab's)",
    )
    parser.add_argument(
        "--arch",
        default=platform.machine(),
        choices=wheelhouse.ARCHITECTURES,
        help="the hosts' architecture (default: this machine's)",
    )
    parser.add_argument(
        "--index-url", default=wheelhouse.DEFAULT_INDEX_URL,
        help=f"package index to download from (default {wheelhouse.DEFAULT_INDEX_URL});"
        " this machine's other pip settings are not used",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pinned = release.load()
    archive = wheelhouse.build(pinned, args.output.expanduser(), args.arch, args.index_url)
    info(f"set airflow_wheelhouse_dir: {shown(archive.parent)} to install from {archive.name}")
    return 0
