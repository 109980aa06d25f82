"""The lab's DAG repository: where it is, and publishing the project's dags/ folder to it.

The lab's git server (inventory group git_server, role git_server) holds a bare repository
laid out like this project: the DAGs in dags/. Every Airflow host fetches it with the
read-only deploy key; publishing pushes with the lab's admin key, as the user 'git'.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from clusterops.console import Failure
from clusterops.lab import hosts
from clusterops.paths import LAB_STATE_DIR, PROJECT_ROOT
from clusterops.release import role_defaults
from clusterops.runner import inventory_hostvars

# The lab's repository as the git_server role creates it (its defaults), and the folder
# and branch the Airflow hosts read (airflow_common's airflow_dags_repo_* defaults).
_SERVER = role_defaults("git_server")
_DAGS = role_defaults("airflow_common")
REPOSITORY_PATH = f"{_SERVER['git_server_root']}/{_SERVER['git_server_repositories'][0]}.git"
PUSH_USER = str(_SERVER["git_server_user"])
BRANCH = str(_DAGS["airflow_dags_repo_ref"])
SUBDIR = str(_DAGS["airflow_dags_repo_subdir"])
# A work tree of the lab repository, kept between runs so a publish only fetches news.
WORK_TREE = LAB_STATE_DIR / "dags-publish"
# Left out of a publish: byte code and editor or tool leftovers (hidden files), except
# .airflowignore, which tells the DAG processor which files hold no DAG.
KEPT_HIDDEN = {".airflowignore"}


def _ignored(folder: str, names: list[str]) -> set[str]:
    """shutil.copytree's ignore: byte code and hidden files but .airflowignore."""
    skipped = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")(folder, names)
    return set(skipped) - KEPT_HIDDEN


AUTHOR = {
    "GIT_AUTHOR_NAME": "publish_dags.py",
    "GIT_AUTHOR_EMAIL": "publish-dags@lab.invalid",
    "GIT_COMMITTER_NAME": "publish_dags.py",
    "GIT_COMMITTER_EMAIL": "publish-dags@lab.invalid",
}


@dataclass(frozen=True)
class Remote:
    """A repository reachable over SSH with the lab's key and pinned host keys."""

    url: str

    def env(self) -> dict[str, str]:
        ssh = (
            f"ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i {hosts.SSH_KEY}"
            f" -o UserKnownHostsFile={hosts.KNOWN_HOSTS} -o StrictHostKeyChecking=yes"
        )
        return {**os.environ, **AUTHOR, "GIT_SSH_COMMAND": ssh, "GIT_TERMINAL_PROMPT": "0"}

    def git(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        """Run git with this remote's SSH settings; its stdout, or a Failure with git's error."""
        result = subprocess.run(
            ["git", *args], cwd=cwd, env=self.env(), capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise Failure(f"git {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout.strip()


def lab_remote(inventory: Path) -> Remote:
    """The push URL of the DAG repository on the lab inventory's git server."""
    hostvars, groups = inventory_hostvars(inventory)
    servers = groups.get("git_server", [])
    if not servers:
        raise Failure(f"inventory {inventory} has no host in group git_server", 2)
    address = hostvars.get(servers[0], {}).get("ansible_host")
    if not address:
        raise Failure(f"git server '{servers[0]}' has no ansible_host in {inventory}", 2)
    return Remote(f"ssh://{PUSH_USER}@{address}{REPOSITORY_PATH}")


def _project_state() -> str:
    """Which commit of this project the DAGs come from, for the commit message."""
    try:
        head = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--", SUBDIR],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "a folder outside git"
    return f"project commit {head}" + (" with uncommitted changes" if dirty else "")


def _init(remote: Remote, work: Path) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    remote.git("init", "--quiet", f"--initial-branch={BRANCH}", cwd=work)
    remote.git("remote", "add", "origin", remote.url, cwd=work)


def _checkout(remote: Remote, work: Path) -> None:
    """`work` holds the remote branch's tip (or no commit, for an empty repository)."""
    url = remote.git("remote", "get-url", "origin", cwd=work, check=False) if work.exists() else ""
    if url != remote.url:  # none yet, another lab's, or a broken one
        _init(remote, work)
    remote.git("fetch", "--quiet", "--prune", "origin", cwd=work)
    tip = remote.git("rev-parse", "--quiet", "--verify", f"origin/{BRANCH}", cwd=work, check=False)
    if tip:
        remote.git("checkout", "--quiet", "--force", "-B", BRANCH, tip, cwd=work)
    elif remote.git("rev-parse", "--quiet", "--verify", "HEAD", cwd=work, check=False):
        _init(remote, work)  # the repository is empty again (a new lab): a new history


def publish(remote: Remote, source: Path, work: Path = WORK_TREE) -> tuple[str, bool]:
    """Make the remote branch's dags/ exactly `source`; return its commit and whether it is new."""
    if not source.is_dir():
        raise Failure(f"{source} is not a folder", 2)
    _checkout(remote, work)
    target = work / SUBDIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=_ignored)
    remote.git("add", "--all", "--", SUBDIR, cwd=work)
    if remote.git("status", "--porcelain", cwd=work) == "":
        return remote.git("rev-parse", "HEAD", cwd=work, check=False), False
    remote.git("commit", "--quiet", "-m", f"Publish dags/ from {_project_state()}", cwd=work)
    remote.git("push", "--quiet", "origin", f"{BRANCH}:{BRANCH}", cwd=work)
    return remote.git("rev-parse", "HEAD", cwd=work), True
