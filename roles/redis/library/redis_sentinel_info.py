#!/usr/bin/python
"""Ansible module: which host the Sentinels of a group name as the master, if any."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.redis_sentinel_client import HAS_REDIS, login, monitored_master

DOCUMENTATION = r"""
---
module: redis_sentinel_info
short_description: Ask every Sentinel of a group which host is the master
description:
  - Asks each Sentinel in I(sentinels) for the master it knows as I(name)
    (SENTINEL MASTER). Sentinels that cannot be reached, refuse the password, or do not
    monitor I(name) (a new host, still with Debian's configuration) have no answer.
  - The master is the one named with the highest configuration epoch, that is the one
    of the latest failover; on a tie, the one most Sentinels name.
  - When a Sentinel refuses I(password), the module tries the sentinel-pass of
    I(config_file) (the local Sentinel's), which it still has while the password is
    being replaced.
  - Changes nothing. Needs the redis Python package on the host (Debian's python3-redis).
options:
  sentinels:
    description: Addresses of the Sentinels.
    type: list
    elements: str
    required: true
  port:
    description: Their port.
    type: int
    default: 26379
  password:
    description: Their password (the default user's).
    type: str
    required: true
  config_file:
    description: A Sentinel's configuration file with the password in use (read only).
    type: path
  name:
    description: Name of the master.
    type: str
    required: true
  timeout:
    description: Seconds to wait for each Sentinel.
    type: float
    default: 3.0
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Ask the Sentinels which host is the master
  redis_sentinel_info:
    sentinels: [10.0.0.21, 10.0.0.22, 10.0.0.23]
    password: "{{ vault_redis_sentinel_password }}"
    name: airflow
  register: redis_sentinels
  no_log: true
"""

RETURN = r"""
master_host:
  description: Address of the master, or null when no Sentinel knows one (a new group).
  returned: always
  type: str
master_port:
  description: Its port, or null.
  returned: always
  type: int
config_epoch:
  description: The configuration epoch of that answer, or null.
  returned: always
  type: int
sentinels:
  description: Each Sentinel's answer.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The Sentinel's address.
      type: str
    master_host:
      description: The master it names, or null.
      type: str
    master_port:
      description: Its port, or null.
      type: int
    config_epoch:
      description: Its configuration epoch, or null.
      type: int
    error:
      description: Why it has no answer, or null.
      type: str
"""


def ask(address: str, params: dict[str, Any]) -> dict[str, Any]:
    """One Sentinel's answer."""
    answer: dict[str, Any] = {
        "address": address, "master_host": None, "master_port": None, "config_epoch": None,
        "error": None,
    }  # fmt: skip
    try:
        client, _ = login(
            address, params["port"], params["password"], params["config_file"],
            params["timeout"],
        )  # fmt: skip
        master = monitored_master(client, params["name"])
    except Exception as error:  # (no answer; the reason is returned)
        answer["error"] = str(error)
        return answer
    if master is None:
        answer["error"] = f"does not monitor {params['name']}"
    else:
        answer.update(
            master_host=master["ip"],
            master_port=int(master["port"]),
            config_epoch=int(master.get("config-epoch", 0)),
        )
    return answer


def choose(answers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The answer of the latest epoch; on a tie, the master most Sentinels name."""
    named = [a for a in answers if a["master_host"] is not None]
    if not named:
        return None
    votes = Counter((a["master_host"], a["master_port"]) for a in named)
    return max(
        named,
        key=lambda a: (a["config_epoch"], votes[(a["master_host"], a["master_port"])]),
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "sentinels": {"type": "list", "elements": "str", "required": True},
            "port": {"type": "int", "default": 26379},
            "password": {"type": "str", "required": True, "no_log": True},
            "config_file": {"type": "path"},
            "name": {"type": "str", "required": True},
            "timeout": {"type": "float", "default": 3.0},
        },
        supports_check_mode=True,
    )
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis (Debian: python3-redis)"))
    answers = [ask(address, module.params) for address in module.params["sentinels"]]
    chosen = choose(answers) or {}
    module.exit_json(
        changed=False,
        master_host=chosen.get("master_host"),
        master_port=chosen.get("master_port"),
        config_epoch=chosen.get("config_epoch"),
        sentinels=answers,
    )


if __name__ == "__main__":
    main()
