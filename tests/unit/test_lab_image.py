"""The base image is rebuilt exactly when its recipe changes."""

from __future__ import annotations

from pathlib import Path

from clusterops.lab.image import ImageRecipe, controller_mirrors


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
