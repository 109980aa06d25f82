#!/usr/bin/python
"""Ansible module: keep one Redis Sentinel monitoring a master with the given settings."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.redis_sentinel_client import (
    HAS_REDIS,
    config_lines,
    login,
    monitored_master,
    pairs,
    sentinel_setting,
)

DOCUMENTATION = r"""
---
module: redis_sentinel
short_description: Keep a Redis Sentinel monitoring a master, with the given settings
description:
  - Logs in to one Sentinel as its default user.
  - When the Sentinel does not monitor I(name), makes it monitor I(master_host) and
    I(master_port) (SENTINEL MONITOR). A master it already monitors is never moved:
    Sentinel follows failovers itself, and moving it back would undo one.
  - Sets quorum, down-after-milliseconds, failover-timeout, parallel-syncs, auth-user and
    auth-pass with SENTINEL SET where they differ. Sentinel does not show auth-user and
    auth-pass, so they are compared with the lines it wrote into I(config_file).
  - Keeps the Sentinel's own password, I(login_password), which it also uses to log in
    to the other Sentinels (sentinel-pass). When the Sentinel refuses it, the module logs
    in with the sentinel-pass in I(config_file) and replaces the password (ACL SETUSER
    default), without a restart.
  - Saves the Sentinel's configuration (SENTINEL FLUSHCONFIG) after a change.
  - Needs the redis Python package on the host (Debian's python3-redis).
options:
  login_host:
    description: Address of the Sentinel.
    type: str
    default: 127.0.0.1
  login_port:
    description: Port of the Sentinel.
    type: int
    default: 26379
  login_password:
    description: The Sentinel's password, which the module makes it have.
    type: str
    required: true
  config_file:
    description: The Sentinel's configuration file (read only).
    type: path
    default: /etc/redis/sentinel.conf
  name:
    description: Name of the master.
    type: str
    required: true
  master_host:
    description: Address of the master to monitor if the Sentinel does not monitor I(name).
    type: str
    required: true
  master_port:
    description: Port of that master.
    type: int
    default: 6379
  quorum:
    description: Sentinels that must agree the master is down.
    type: int
    required: true
  down_after_milliseconds:
    description: How long the master may not answer before it is thought down. Unset, unchanged.
    type: int
  failover_timeout:
    description: Failover timeout in milliseconds. Unset, unchanged.
    type: int
  parallel_syncs:
    description: Replicas that resynchronise with a new master at once. Unset, unchanged.
    type: int
  auth_user:
    description: ACL user the Sentinel logs in to the master and its replicas with.
    type: str
  auth_pass:
    description: Its password.
    type: str
  timeout:
    description: Seconds to wait for the Sentinel.
    type: float
    default: 5.0
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Monitor the master and keep the Sentinel settings
  redis_sentinel:
    login_password: "{{ vault_redis_sentinel_password }}"
    name: airflow
    master_host: 10.0.0.21
    quorum: 2
    down_after_milliseconds: 5000
    failover_timeout: 60000
    parallel_syncs: 1
    auth_user: sentinel
    auth_pass: "{{ vault_redis_sentinel_password }}"
  no_log: true
"""

RETURN = r"""
changes:
  description: What the module changed (names only, never a value).
  returned: always
  type: list
  elements: str
  sample: [monitor, quorum, auth-pass]
master_host:
  description: The master's address as the Sentinel knows it now.
  returned: always
  type: str
master_port:
  description: The master's port as the Sentinel knows it now.
  returned: always
  type: int
"""


# Module option -> the SENTINEL SET name; SENTINEL MASTER shows these.
SHOWN_SETTINGS = {
    "quorum": "quorum",
    "down_after_milliseconds": "down-after-milliseconds",
    "failover_timeout": "failover-timeout",
    "parallel_syncs": "parallel-syncs",
}
# Module option -> the SENTINEL SET name; only sentinel.conf shows these.
HIDDEN_SETTINGS = {"auth_user": "auth-user", "auth_pass": "auth-pass"}


def wanted_changes(params: dict[str, Any], master: dict[str, str] | None) -> dict[str, str]:
    """The SENTINEL SET pairs that differ from what the Sentinel has."""
    lines = config_lines(params["config_file"])
    changes = {}
    for option, setting in SHOWN_SETTINGS.items():
        value = params[option]
        if value is not None and (master is None or master.get(setting) != str(value)):
            changes[setting] = str(value)
    for option, setting in HIDDEN_SETTINGS.items():
        value = params[option]
        if value is not None and sentinel_setting(lines, setting, params["name"]) != value:
            changes[setting] = value
    return changes


def converge(module: Any, client: Any, replaced: bool) -> tuple[list[str], dict[str, str] | None]:  # noqa: ANN401
    """Make the Sentinel match the module's options; what changed and the master it knows."""
    params = module.params
    name = params["name"]
    password = params["login_password"]
    changes: list[str] = []

    def run(*command: str) -> None:
        if not module.check_mode:
            client.execute_command(*command)

    if replaced:
        changes.append("password")
        run("ACL", "SETUSER", "default", "on", "resetpass", f">{password}")
    own = pairs(list(client.execute_command("SENTINEL", "CONFIG", "GET", "sentinel-pass")))
    if own.get("sentinel-pass") != password:
        changes.append("sentinel-pass")
        run("SENTINEL", "CONFIG", "SET", "sentinel-pass", password)

    master = monitored_master(client, name)
    if master is None:
        changes.append("monitor")
        run(
            "SENTINEL", "MONITOR", name, params["master_host"], str(params["master_port"]),
            str(params["quorum"]),
        )  # fmt: skip
        master = None if module.check_mode else monitored_master(client, name)
    settings = wanted_changes(params, master)
    if settings:
        changes.extend(settings)
        run("SENTINEL", "SET", name, *(word for pair in settings.items() for word in pair))
    if changes:
        run("SENTINEL", "FLUSHCONFIG")
    return changes, master


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "login_host": {"type": "str", "default": "127.0.0.1"},
            "login_port": {"type": "int", "default": 26379},
            "login_password": {"type": "str", "required": True, "no_log": True},
            "config_file": {"type": "path", "default": "/etc/redis/sentinel.conf"},
            "name": {"type": "str", "required": True},
            "master_host": {"type": "str", "required": True},
            "master_port": {"type": "int", "default": 6379},
            "quorum": {"type": "int", "required": True},
            "down_after_milliseconds": {"type": "int"},
            "failover_timeout": {"type": "int"},
            "parallel_syncs": {"type": "int"},
            "auth_user": {"type": "str"},
            "auth_pass": {"type": "str", "no_log": True},
            "timeout": {"type": "float", "default": 5.0},
        },
        supports_check_mode=True,
    )
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis (Debian: python3-redis)"))
    params = module.params
    try:
        client, replaced = login(
            params["login_host"], params["login_port"], params["login_password"],
            params["config_file"], params["timeout"],
        )  # fmt: skip
        changes, master = converge(module, client, replaced)
    except Exception as error:  # (every failure is reported, without secrets)
        module.fail_json(msg=f"Sentinel {params['login_host']}:{params['login_port']}: {error}")
    known = master or {}
    module.exit_json(
        changed=bool(changes),
        changes=changes,
        master_host=known.get("ip", params["master_host"]),
        master_port=int(known.get("port", params["master_port"])),
    )


if __name__ == "__main__":
    main()
