"""The release is read from the role's defaults; the wheelhouse is built once per recipe."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest

from clusterops import release, wheelhouse
from clusterops.console import Failure


def fake_release(tmp_path: Path, header: str = "on Python 3.11.2.") -> release.Release:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(
        f"# Constraints for apache-airflow==9.9.9 {header}\npip==25.3\nuv==0.1\n"
    )
    return release.Release("9.9.9", "3.11", ("celery",), ("extra-pkg",), constraints)


def test_the_release_is_the_roles_defaults() -> None:
    pinned = release.load()
    defaults = release.role_defaults("airflow_common")
    assert pinned.version == defaults["airflow_version"]
    assert pinned.constraints.name == f"airflow-{pinned.version}-python{pinned.python}.txt"
    assert pinned.constraints.is_file()
    assert pinned.requirements()[0].endswith(f"=={pinned.version}")
    # Debian 12's Python: the markers of the constraints were evaluated for it.
    assert pinned.resolved_for() == "3.11.2"


def test_constraints_without_their_python_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Failure, match="does not say which Python"):
        fake_release(tmp_path, header="somewhere").resolved_for()


def test_platform_tags_cover_older_glibc_and_legacy_names() -> None:
    tags = wheelhouse.platform_tags("x86_64")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"} <= set(tags)
    assert "manylinux_2_37_x86_64" not in tags
    with pytest.raises(Failure, match="not one of"):
        wheelhouse.platform_tags("sparc")


def test_the_recipe_follows_the_constraints_and_the_architecture(tmp_path: Path) -> None:
    pinned = fake_release(tmp_path)
    first = wheelhouse.recipe(pinned, "x86_64")
    assert wheelhouse.recipe(pinned, "x86_64") == first
    assert wheelhouse.recipe(pinned, "aarch64") != first
    pinned.constraints.write_text(pinned.constraints.read_text() + "celery==5.6.3\n")
    assert wheelhouse.recipe(pinned, "x86_64") != first


def _fake_download(release: release.Release, arch: str, dest: Path, index_url: str) -> None:
    (dest / "pip-25.3-py3-none-any.whl").write_bytes(b"wheel")
    with zipfile.ZipFile(dest / "uv-0.1-py3-none-manylinux_2_17_x86_64.whl", "w") as wheel:
        wheel.writestr("uv-0.1.data/scripts/uv", b"#!/bin/sh\n")


def test_build_writes_one_archive_then_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def download(release: release.Release, arch: str, dest: Path, index_url: str) -> None:
        calls.append(arch)
        _fake_download(release, arch, dest, index_url)

    monkeypatch.setattr(wheelhouse, "_download", download)
    pinned = fake_release(tmp_path)
    out = tmp_path / "out"
    archive = wheelhouse.build(pinned, out, "x86_64", "https://index.invalid/simple")
    assert archive == out / "airflow-9.9.9-python3.11-x86_64.tar"
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    name = "airflow-9.9.9-python3.11-x86_64"
    assert f"{name}/pip-25.3-py3-none-any.whl" in members
    assert f"{name}/constraints.txt" in members
    assert members[f"{name}/uv"].mode & 0o111  # the binary, executable
    assert not [m for m in members if m.startswith(f"{name}/uv-")]  # not its wheel
    assert wheelhouse.build(pinned, out, "x86_64", "https://index.invalid/simple") == archive
    assert calls == ["x86_64"]
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.recipe", f"{name}.tar"]


def test_a_wheelhouse_without_uv_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def download(release: release.Release, arch: str, dest: Path, index_url: str) -> None:
        (dest / "pip-25.3-py3-none-any.whl").write_bytes(b"wheel")

    monkeypatch.setattr(wheelhouse, "_download", download)
    with pytest.raises(Failure, match="pins no uv"):
        wheelhouse.build(fake_release(tmp_path), tmp_path / "out", "x86_64", "https://x.invalid")
    assert not list((tmp_path / "out").glob("*.tar"))
