"""Edits of YAML inventories that keep comments and order, written atomically."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from clusterops.console import Failure
from clusterops.files import write_atomic

# Inventory host names double as DNS names and Celery hostnames: RFC 1123 labels.
HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _yaml(explicit_start: bool = True) -> YAML:
    yaml = YAML()
    yaml.explicit_start = explicit_start
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def validate_host_name(name: str) -> None:
    if not HOST_NAME.match(name):
        raise Failure(
            f"invalid host name '{name}': use lowercase letters, digits and '-' "
            "(at most 63, not starting or ending with '-')",
            2,
        )


class Inventory:
    """A YAML inventory file loaded for a round trip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text()
            self.explicit_start = text.lstrip().startswith("---")
            self.data: CommentedMap = _yaml().load(text)
        except OSError as error:
            raise Failure(f"cannot read inventory {path}: {error.strerror}") from error
        if not isinstance(self.data, CommentedMap) or "all" not in self.data:
            raise Failure(f"{path} is not a YAML inventory with an 'all' group")

    def _find_group(self, node: CommentedMap, group: str) -> CommentedMap | None:
        children = node.get("children") or {}
        for name in list(children):
            if name == group:
                # A group written as `name:` (no hosts yet) gets a mapping only when it is
                # the one asked for; other empty groups stay as they are written.
                if children[name] is None:
                    children[name] = CommentedMap()
                child: CommentedMap = children[name]
                return child
            if children[name] is None:
                continue
            found = self._find_group(children[name], group)
            if found is not None:
                return found
        return None

    def group(self, group: str) -> CommentedMap:
        found = self._find_group(self.data["all"], group)
        if found is None:
            raise Failure(f"inventory {self.path} has no group '{group}'", 2)
        return found

    def groups(self) -> set[str]:
        """The name of every group, at any depth."""
        found: set[str] = set()

        def walk(node: CommentedMap) -> None:
            for name, child in (node.get("children") or {}).items():
                found.add(str(name))
                walk(child or CommentedMap())

        walk(self.data["all"])
        return found

    def hosts(self) -> set[str]:
        names: set[str] = set()

        def walk(node: CommentedMap) -> None:
            names.update((node.get("hosts") or {}).keys())
            for child in (node.get("children") or {}).values():
                if child:
                    walk(child)

        walk(self.data["all"])
        return names

    def addresses(self) -> dict[str, str]:
        """Host name -> ansible_host, for every host that sets one in this file."""
        found: dict[str, str] = {}

        def walk(node: CommentedMap) -> None:
            for name, variables in (node.get("hosts") or {}).items():
                if isinstance(variables, dict) and variables.get("ansible_host"):
                    found[name] = str(variables["ansible_host"])
            for child in (node.get("children") or {}).values():
                if child:
                    walk(child)

        walk(self.data["all"])
        return found

    def group_hosts(self, group: str) -> list[str]:
        return list((self.group(group).get("hosts") or {}).keys())

    def add_host(self, group: str, name: str, variables: dict[str, Any]) -> None:
        validate_host_name(name)
        if name in self.hosts():
            raise Failure(f"host '{name}' is already in inventory {self.path}", 2)
        node = self.group(group)
        if node.get("hosts") is None:
            node["hosts"] = CommentedMap()
        node["hosts"][name] = CommentedMap(variables)

    def remove_host(self, group: str, name: str) -> None:
        hosts = self.group(group).get("hosts") or {}
        if name not in hosts:
            raise Failure(f"host '{name}' is not in group '{group}' of {self.path}", 2)
        del hosts[name]

    def render(self) -> str:
        buffer = StringIO()
        _yaml(self.explicit_start).dump(self.data, buffer)
        return buffer.getvalue()

    def save(self) -> None:
        """Write through a temporary file and rename, so readers never see half a file."""
        write_atomic(self.path, self.render())
