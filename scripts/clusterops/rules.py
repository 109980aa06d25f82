"""The cluster's rules, from the one place they are written: plugins/filter/airflow_cluster.py.

That file is an Ansible filter plugin (the preflight play and the roles call it); the
scripts load it here so that a worker's address, queues and concurrency and the vault's
secrets are checked against the same rules before anything runs.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

from clusterops.paths import PROJECT_ROOT

PLUGIN = PROJECT_ROOT / "plugins" / "filter" / "airflow_cluster.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("airflow_cluster_rules", PLUGIN)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is in the tree
        raise ImportError(f"cannot load {PLUGIN}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_RULES = _load()

VAULT_SECRETS: dict[str, str] = _RULES.VAULT_SECRETS
WORKER_CONCURRENCY_MAX: int = _RULES.WORKER_CONCURRENCY_MAX


def secret_problems(secrets: dict[str, str]) -> list[str]:
    """What is wrong with each of these secrets (by name), as the roles check them."""
    return list(_RULES.airflow_secret_problems(secrets))


def worker_problems(queues: list[str], concurrency: int) -> list[str]:
    """What is wrong with a worker's queues and concurrency, as the roles check them."""
    return list(_RULES.airflow_worker_problems(queues, concurrency))


def is_ip_address(address: str) -> bool:
    """Whether `address` is an IP address pg_hba.conf can admit, as the preflight checks it."""
    return not _RULES.airflow_address_problems(address)
