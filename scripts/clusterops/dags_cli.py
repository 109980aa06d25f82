"""`scripts/publish_dags.py`: publish the project's dags/ folder to the lab's git server."""

from __future__ import annotations

import argparse
from pathlib import Path

from clusterops import dags_repo
from clusterops.console import add_inventory_option, cli_parser, info, step
from clusterops.paths import LAB_INVENTORY, PROJECT_ROOT, shown

DESCRIPTION = """\
Publish this project's dags/ folder to the DAG repository on the lab's git server (the
inventory's git_server host, set up by playbooks/lab/git_server.yml): the branch 'main' gets
one new commit whose dags/ is exactly the folder as it is now, uncommitted changes
included, files deleted here deleted there. Nothing is pushed when nothing changed.

The Airflow hosts fetch the repository every airflow_dag_bundle_refresh_interval seconds
(5 by default): a new or changed DAG is listed within about that time. DAG runs already
going on keep the commit they started with.

Outside the lab there is nothing to publish: push to your fork, the repository your
inventory's airflow_dags_repo_url names (docs/dags.md).
"""

EPILOG = """\
examples:
  scripts/publish_dags.py              publish dags/ (make dags does this; make lab too)
  scripts/publish_dags.py --source ~/team-dags

exit codes: 0 published or nothing to publish, 1 failure, 2 bad input
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli_parser("publish_dags.py", DESCRIPTION, EPILOG)
    add_inventory_option(parser, LAB_INVENTORY)
    parser.add_argument(
        "--source", type=Path, default=PROJECT_ROOT / "dags",
        help="folder to publish as the repository's dags/ (default: this project's dags/)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    remote = dags_repo.lab_remote(args.inventory)
    with step(f"Publishing {shown(args.source)} to {remote.url} ({dags_repo.BRANCH})"):
        commit, new = dags_repo.publish(remote, args.source)
    if new:
        info(f"published {commit[:12]}; the DAG processors fetch it within their refresh interval")
    else:
        info(f"nothing changed: {dags_repo.BRANCH} is already at {commit[:12]}")
    return 0
