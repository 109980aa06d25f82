"""publish_dags.py: the repository's dags/ becomes exactly the source folder, never forced."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from clusterops import dags_repo
from clusterops.console import Failure


@pytest.fixture
def remote(tmp_path: Path) -> dags_repo.Remote:
    bare = tmp_path / "dags.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    return dags_repo.Remote(bare.as_uri())


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "source"
    folder.mkdir()
    (folder / "a.py").write_text("a = 1\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    return folder


def bare_path(remote: dags_repo.Remote) -> Path:
    return Path(remote.url.removeprefix("file://"))


def tree(remote: dags_repo.Remote) -> list[str]:
    listing = remote.git("ls-tree", "-r", "--name-only", "main", cwd=bare_path(remote))
    return listing.splitlines()


def test_first_publish_creates_main_with_the_folder_as_dags(
    remote: dags_repo.Remote, source: Path, tmp_path: Path
) -> None:
    commit, new = dags_repo.publish(remote, source, tmp_path / "work")
    assert new
    assert tree(remote) == ["dags/a.py"]
    assert remote.git("rev-parse", "main", cwd=bare_path(remote)) == commit


def test_publishing_the_same_folder_again_pushes_nothing(
    remote: dags_repo.Remote, source: Path, tmp_path: Path
) -> None:
    first, _ = dags_repo.publish(remote, source, tmp_path / "work")
    again, new = dags_repo.publish(remote, source, tmp_path / "work")
    assert (again, new) == (first, False)


def test_publish_replaces_what_others_pushed_and_deletes_removed_files(
    remote: dags_repo.Remote, source: Path, tmp_path: Path
) -> None:
    first, _ = dags_repo.publish(remote, source, tmp_path / "work")
    other = tmp_path / "other"
    remote.git("clone", "-q", remote.url, str(other))
    (other / "dags" / "b.py").write_text("b = 2\n")
    remote.git("add", "--all", cwd=other)
    remote.git("commit", "-q", "-m", "b", cwd=other)
    remote.git("push", "-q", "origin", "HEAD:main", cwd=other)
    (source / "a.py").unlink()
    (source / "c.py").write_text("c = 3\n")

    commit, new = dags_repo.publish(remote, source, tmp_path / "work")
    assert new
    assert tree(remote) == ["dags/c.py"]
    # A fast-forward on top of the other push: history is kept, nothing was forced.
    bare = bare_path(remote)
    assert remote.git("merge-base", "--is-ancestor", first, commit, cwd=bare, check=False) == ""
    assert len(remote.git("rev-list", "main", cwd=bare).splitlines()) == 3


def test_an_emptied_repository_starts_a_new_history(
    remote: dags_repo.Remote, source: Path, tmp_path: Path
) -> None:
    dags_repo.publish(remote, source, tmp_path / "work")
    bare = bare_path(remote)
    shutil.rmtree(bare)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    _, new = dags_repo.publish(remote, source, tmp_path / "work")
    assert new
    assert tree(remote) == ["dags/a.py"]


def test_missing_source_is_refused(remote: dags_repo.Remote, tmp_path: Path) -> None:
    with pytest.raises(Failure, match="is not a folder"):
        dags_repo.publish(remote, tmp_path / "missing", tmp_path / "work")
