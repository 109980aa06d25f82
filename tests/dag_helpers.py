"""Load plain-Python helper modules of dags/ (the DAG folder is on the workers' sys.path,
not a package of this project)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from clusterops.paths import PROJECT_ROOT


def load(name: str) -> ModuleType:
    """dags/<name>.py as a module."""
    path = PROJECT_ROOT / "dags" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
