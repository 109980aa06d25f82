"""The base image is rebuilt exactly when its recipe changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterops.console import Failure
from clusterops.lab.image import ImageRecipe, controller_mirrors, recipe_for, role_packages


def test_same_recipe_same_tag(tmp_path: Path) -> None:
    assert ImageRecipe(ca_dir=tmp_path).tag == ImageRecipe(ca_dir=tmp_path).tag


def test_ca_certificates_are_part_of_the_recipe(tmp_path: Path) -> None:
    recipe = ImageRecipe(ca_dir=tmp_path)
    before = (recipe.tag, recipe.rootfs_tag)
    (tmp_path / "corp.crt").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n")
    after = (recipe.tag, recipe.rootfs_tag)
    assert before[0] != after[0]
    assert before[1] == after[1]  # debootstrap is not redone for a CA
    (tmp_path / "corp.crt").write_text("-----BEGIN CERTIFICATE-----\nBBBB\n")
    assert recipe.tag != after[0]


def test_mirror_changes_both_layers(tmp_path: Path) -> None:
    a = ImageRecipe(ca_dir=tmp_path)
    b = ImageRecipe(ca_dir=tmp_path, mirror="http://mirror.example/debian")
    assert a.rootfs_tag != b.rootfs_tag
    assert a.tag != b.tag


def test_no_ca_folder_means_no_extra_certificates(tmp_path: Path) -> None:
    assert ImageRecipe(ca_dir=tmp_path / "missing").ca_files() == []
    assert ImageRecipe(ca_dir=None).ca_files() == []


def test_mirrors_are_read_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://ignored.example/debian bookworm main\n"
        "deb http://mirror.example/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
    )
    assert controller_mirrors(tmp_path) == (
        "http://mirror.example/debian",
        "http://security.example/debian-security",
    )


def test_the_prepared_image_has_the_roles_leaf_packages_and_no_server() -> None:
    packages = role_packages()
    # From airflow_common, airflow_worker, postgresql and redis: their own vars/main.yml.
    assert {"python3-venv", "git", "haproxy", "socat", "python3-psycopg2"} <= set(packages)
    assert not {p for p in packages if p.startswith(("postgresql", "redis-server"))}
    prepared, bare = recipe_for("none", "prepared"), recipe_for("none", "bare")
    assert set(packages) <= set(prepared.extra_packages) | set(prepared.packages)
    assert bare.extra_packages == ()
    # One debootstrap serves both; the layer above differs.
    assert prepared.tag != bare.tag and prepared.rootfs_tag == bare.rootfs_tag


def test_a_role_list_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    (tmp_path / "demo" / "vars").mkdir(parents=True)
    (tmp_path / "demo" / "vars" / "main.yml").write_text("__demo_packages: git\n")
    with pytest.raises(Failure, match="__demo_packages must be a list"):
        role_packages((tmp_path,))
    (tmp_path / "demo" / "vars" / "main.yml").write_text(
        "__demo_packages: [git, 'pkg-{{ v }}']\n__demo_server_packages: [redis-server]\n"
    )
    assert role_packages((tmp_path,)) == ("git",)
