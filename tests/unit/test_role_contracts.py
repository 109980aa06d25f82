"""Each role's inputs are its documented defaults, and no role reads another's internals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from clusterops.paths import PROJECT_ROOT

ROLES = sorted(p.parents[1] for p in PROJECT_ROOT.glob("roles/*/defaults/main.yml"))


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
    return set(re.findall(r"\b__([a-z][a-z0-9]*(?:_[a-z0-9]+)*)", text))


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_a_role_reads_no_other_roles_internal_variables(role: Path) -> None:
    others = {r.name for r in ROLES if r != role}
    offending = set()
    for path in role.rglob("*"):
        if path.suffix not in {".yml", ".j2"} or "molecule" in path.parts:
            continue
        for name in _internal_names(path.read_text()):
            owner = next((o for o in others if name.startswith(o + "_")), None)
            # airflow_common's names start with "airflow_", as do airflow_master's: the
            # longest role name that prefixes the variable owns it.
            mine = name.startswith(role.name + "_") and len(role.name) >= len(owner or "")
            if owner and not mine:
                offending.add(f"{path.relative_to(PROJECT_ROOT)}: __{name}")
    assert sorted(offending) == []
