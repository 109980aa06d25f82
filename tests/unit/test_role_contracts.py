"""Each role's inputs are its documented defaults, and no role reads another's internals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from clusterops.paths import PROJECT_ROOT

ROLES = sorted(
    p.parents[1]
    for pattern in ("roles/*/defaults/main.yml", "playbooks/lab/roles/*/defaults/main.yml")
    for p in PROJECT_ROOT.glob(pattern)
)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_list_exactly_the_defaults(role: Path) -> None:
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"].get("options", {})
    assert sorted(set(defaults) - set(options)) == [], "defaults without argument spec"
    assert sorted(set(options) - set(defaults)) == [], "argument specs without a default"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_spec_defaults_equal_the_plain_defaults(role: Path) -> None:
    """Where a spec gives a default, it is the default's value; one made with Jinja is
    described in words instead, never given as `default:`."""
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    for name, option in specs["argument_specs"]["main"].get("options", {}).items():
        if "default" in option:
            assert option["default"] == defaults[name], name


def _internal_names(text: str) -> set[str]:
    return set(re.findall(r"\b(__[a-z][a-z0-9_]*)", text))


def _role_files(role: Path) -> list[Path]:
    return [p for p in role.rglob("*") if p.suffix in {".yml", ".j2"} and "molecule" not in p.parts]


def _defined(role: Path) -> set[str]:
    """The internal names a role defines: its vars/, its registers and set_facts."""
    names: set[str] = set()
    vars_file = role / "vars" / "main.yml"
    if vars_file.is_file():
        names |= {n for n in (yaml.safe_load(vars_file.read_text()) or {}) if n.startswith("__")}
    for path in _role_files(role):
        text = path.read_text()
        names |= set(re.findall(r"^\s*register:\s*(__\w+)", text, flags=re.M))
        for block in re.findall(r"set_fact:\n((?:\s{6,}\w+:.*\n)+)", text):
            names |= set(re.findall(r"^\s+(__\w+):", block, flags=re.M))
        # Task and loop variables of the role's own (vars: blocks) count as its own.
        names |= set(re.findall(r"^\s+(__\w+):", text, flags=re.M))
    return names


DEFINED = {role.name: _defined(role) for role in ROLES}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_a_role_reads_no_other_roles_internal_variables(role: Path) -> None:
    """No role uses a `__name` that only another role defines (its vars/ or facts)."""
    mine = DEFINED[role.name]
    theirs = {n: r for r, names in DEFINED.items() if r != role.name for n in names}
    offending = sorted(
        f"{path.relative_to(PROJECT_ROOT)}: {name} (from {theirs[name]})"
        for path in _role_files(role)
        for name in _internal_names(path.read_text())
        if name in theirs and name not in mine
    )
    assert offending == []


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_the_readme_documents_every_default(role: Path) -> None:
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    readme = (role / "README.md").read_text()
    undocumented = [name for name in defaults if f"`{name}`" not in readme]
    assert undocumented == [], f"{role.name}/README.md does not name them"
