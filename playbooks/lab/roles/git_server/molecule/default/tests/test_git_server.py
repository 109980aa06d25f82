"""Bare repositories over SSH: the push key may push, the read (deploy) key may only fetch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from testinfra.host import Host

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def git(
    host: Host, key: str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """git on the controller, over SSH to the instance with one of the scenario's keys."""
    known_hosts = EPHEMERAL / "known_hosts"
    address = host.ansible.get_variables()["ansible_host"]
    with host.sudo():
        host_key = host.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string.split()[:2]
    known_hosts.write_text(f"{address} {' '.join(host_key)}\n")
    ssh = (
        f"ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i {EPHEMERAL / key}"
        f" -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
    )
    env = {**os.environ, "GIT_SSH_COMMAND": ssh, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def url(host: Host, user: str, repo: str = "dags") -> str:
    return f"ssh://{user}@{host.ansible.get_variables()['ansible_host']}/srv/git/{repo}.git"


@pytest.mark.parametrize("repo", ["dags", "team-a"])
def test_repositories_are_bare_and_owned_by_git(host: Host, repo: str) -> None:
    head = host.file(f"/srv/git/{repo}.git/HEAD")
    assert head.user == "git"
    assert head.content_string.strip() == "ref: refs/heads/main"


def test_push_key_pushes_and_read_key_fetches(host: Host, tmp_path: Path) -> None:
    work = tmp_path / "work"
    assert git(host, "push_key", "clone", url(host, "git"), str(work)).returncode == 0
    (work / "a.txt").write_text("a\n")
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    assert git(host, "push_key", "add", "a.txt", cwd=work).returncode == 0
    assert git(host, "push_key", *identity, "commit", "-m", "a", cwd=work).returncode == 0
    pushed = git(host, "push_key", "push", "origin", "HEAD:refs/heads/main", cwd=work)
    assert pushed.returncode == 0, pushed.stderr
    head = git(host, "push_key", "rev-parse", "HEAD", cwd=work).stdout.strip()

    listed = git(host, "read_key", "ls-remote", url(host, "git-read"), "main")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[0] == head


def test_read_key_cannot_push(host: Host, tmp_path: Path) -> None:
    work = tmp_path / "work"
    assert git(host, "read_key", "clone", url(host, "git-read"), str(work)).returncode == 0
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    git(host, "read_key", *identity, "commit", "--allow-empty", "-m", "x", cwd=work)
    pushed = git(host, "read_key", "push", "origin", "HEAD:refs/heads/main", cwd=work)
    assert pushed.returncode != 0
    assert "rejected" in pushed.stderr or "denied" in pushed.stderr.lower()


def test_read_key_is_not_a_push_key(host: Host) -> None:
    refused = git(host, "read_key", "ls-remote", url(host, "git"))
    assert refused.returncode != 0
    assert "Permission denied" in refused.stderr


def test_users_get_no_shell(host: Host) -> None:
    for user in ("git", "git-read"):
        assert host.user(user).shell == "/usr/bin/git-shell"
