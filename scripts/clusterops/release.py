"""The Airflow release the cluster runs, read from its one source: airflow_common's defaults.

roles/airflow_common/defaults/main.yml pins the version, the extras, the packages beside
Airflow and the hosts' Python; the constraints file's name is made from them there. The
scripts and tests read them here instead of writing them again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clusterops.console import Failure
from clusterops.paths import LAB_ROLES_DIR, ROLES_DIR

ROLE_DIR = ROLES_DIR / "airflow_common"


def role_defaults(role: str) -> dict[str, Any]:
    """A role's defaults/main.yml as written (Jinja left as it is), a deployed role's or a
    lab role's: for scripts and tests that need a role's default instead of typing it again."""
    path = next(
        (
            d / role / "defaults" / "main.yml"
            for d in (ROLES_DIR, LAB_ROLES_DIR)
            if (d / role).is_dir()
        ),
        ROLES_DIR / role / "defaults" / "main.yml",
    )
    values = yaml.safe_load(path.read_text())
    return dict(values or {})


@dataclass(frozen=True)
class Release:
    """What pip installs into every Airflow host's virtualenv."""

    version: str
    python: str  # the hosts' Python, major.minor
    extras: tuple[str, ...]
    extra_packages: tuple[str, ...]
    constraints: Path

    def resolved_for(self) -> str:
        """The exact Python version the constraints were resolved for (their header says).

        Markers such as `python_full_version < "3.11.3"` make it matter: Debian 12 has 3.11.2.
        """
        header = self.constraints.read_text().split("\n", 5)[:5]
        for line in header:
            if match := _RESOLVED_FOR.search(line):
                return match.group(1)
        raise Failure(
            f"{self.constraints} does not say which Python it was resolved for "
            "('# Constraints for ... on Python X.Y.Z.'): write it again with "
            "scripts/make_constraints.py"
        )

    def requirements(self) -> list[str]:
        """The requirements as the role gives them to pip (vars/main.yml)."""
        return [f"apache-airflow[{','.join(self.extras)}]=={self.version}", *self.extra_packages]


_RESOLVED_FOR = re.compile(r"^# Constraints for .* on Python (\d+\.\d+\.\d+)\.")
_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def render(template: str, context: dict[str, Any]) -> str:
    """The defaults' own Jinja where it only names other defaults, as Ansible renders it."""
    rendered = _VARIABLE.sub(lambda m: str(context[m.group(1)]), template)
    if "{{" in rendered or "{%" in rendered:
        raise ValueError(f"'{template}' is more than variables of the defaults")
    return rendered


def load(role_dir: Path = ROLE_DIR) -> Release:
    """The release pinned in `role_dir`/defaults/main.yml."""
    defaults_file = role_dir / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text())
    try:
        version = str(defaults["airflow_version"])
        python = str(defaults["airflow_python_version"])
        extras = tuple(str(e) for e in defaults["airflow_extras"])
        # Items may carry a trailing comment in YAML, never in the value.
        packages = tuple(str(p).split()[0] for p in defaults["airflow_extra_packages"])
        constraints = render(str(defaults["airflow_constraints_file"]), defaults)
    except (KeyError, TypeError, ValueError) as error:
        raise Failure(f"{defaults_file}: cannot read the Airflow release: {error}") from error
    return Release(version, python, extras, packages, role_dir / "files" / constraints)
