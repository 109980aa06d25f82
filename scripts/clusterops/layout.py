"""Where the roles put Airflow on a host and the ports the services listen on, from the
roles' defaults (roles/cluster_defaults and each role's defaults/main.yml): for the tests
and the scripts, which must not type a path or a port again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clusterops.paths import ROLES_DIR
from clusterops.release import render, role_defaults


def _cluster_defaults() -> dict[str, Any]:
    """cluster_defaults' defaults and vars, each rendered where it only names the others."""
    values = role_defaults("cluster_defaults")
    values.update(yaml.safe_load((ROLES_DIR / "cluster_defaults/vars/main.yml").read_text()))
    plain = {k: v for k, v in values.items() if "{{" not in str(v)}
    for _ in range(len(values)):  # resolve chains such as bin -> venv link -> install dir
        for key, value in values.items():
            if key not in plain:
                try:
                    plain[key] = render(str(value), plain)
                except (KeyError, ValueError):
                    continue
    return plain


@dataclass(frozen=True)
class Layout:
    user: str
    install_dir: Path
    home: Path
    config_dir: Path
    log_dir: Path
    venv: Path  # the link to the current virtualenv
    with_env: Path  # runs a command with the services' environment
    config_file: Path
    env_file: Path
    api_port: int
    api_proxy_port: int
    scheduler_health_port: int
    flower_port: int
    log_server_port: int
    database_port: int  # PostgreSQL on each member
    database_proxy_port: int  # the local HAProxy on each Airflow host, to the primary
    patroni_port: int
    etcd_port: int
    redis_port: int
    sentinel_port: int
    redis_master_name: str
    redis_user: str
    redis_admin_user: str  # every command: INFO, CONFIG, ACL (Airflow's users have none of them)
    admin_user: str
    flower_user: str

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def airflow(self) -> Path:
        return self.venv / "bin" / "airflow"

    @property
    def celery(self) -> Path:
        return self.venv / "bin" / "celery"

    @classmethod
    def from_roles(cls) -> Layout:
        common = _cluster_defaults()
        master = role_defaults("airflow_master")
        config = yaml.safe_load((ROLES_DIR / "airflow_common/vars/main.yml").read_text())
        return cls(
            user=str(common["airflow_user"]),
            install_dir=Path(common["airflow_install_dir"]),
            home=Path(common["airflow_home"]),
            config_dir=Path(common["airflow_config_dir"]),
            log_dir=Path(common["airflow_log_dir"]),
            venv=Path(common["airflow_venv_link"]),
            with_env=Path(common["airflow_with_env"]),
            config_file=Path(common["airflow_config_file"]),
            env_file=Path(common["airflow_env_file"]),
            api_port=int(common["airflow_api_port"]),
            api_proxy_port=int(common["airflow_api_proxy_port"]),
            scheduler_health_port=int(master["airflow_master_scheduler_health_port"]),
            flower_port=int(master["airflow_master_flower_port"]),
            log_server_port=int(
                config["__airflow_config_defaults"]["logging"]["worker_log_server_port"]
            ),
            database_port=int(common["airflow_database_member_port"]),
            database_proxy_port=int(common["airflow_database_port"]),
            patroni_port=int(common["airflow_patroni_port"]),
            etcd_port=int(common["airflow_etcd_client_port"]),
            redis_port=int(common["airflow_redis_port"]),
            sentinel_port=int(common["airflow_redis_sentinel_port"]),
            redis_master_name=str(common["airflow_redis_master_name"]),
            redis_user=str(common["airflow_redis_user"]),
            redis_admin_user=str(role_defaults("redis")["redis_admin_user"]),
            admin_user=str(master["airflow_master_admin_user"]),
            flower_user=str(master["airflow_master_flower_user"]),
        )


LAYOUT = Layout.from_roles()
