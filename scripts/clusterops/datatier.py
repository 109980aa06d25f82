"""The data tier as the controller sees it: Patroni's REST API on each PostgreSQL member
and the Redis sentinels. Used by the tests and by operators' one-liners (docs/operations.md).

Patroni's GET endpoints need no credentials; the sentinels want the vault's
vault_redis_sentinel_password, Redis itself the Airflow user's password.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
import requests

from clusterops.layout import LAYOUT

TIMEOUT = 3.0


@dataclass(frozen=True)
class Member:
    name: str
    host: str
    role: str  # leader, sync_standby, replica
    state: str  # running, streaming, starting, stopped, ...
    lag: int | None  # bytes behind the leader (None on the leader or when unknown)
    timeline: int | None


def patroni_cluster(addresses: Iterable[str]) -> list[Member] | None:
    """The members as the first Patroni that answers sees them; None if none answers."""
    for address in addresses:
        try:
            response = requests.get(
                f"http://{address}:{LAYOUT.patroni_port}/cluster", timeout=TIMEOUT
            )
            response.raise_for_status()
        except requests.RequestException:
            continue
        return [_member(m) for m in response.json().get("members", [])]
    return None


def _member(data: dict[str, Any]) -> Member:
    lag = data.get("lag")
    return Member(
        name=str(data["name"]),
        host=str(data.get("host", "")),
        role=str(data.get("role", "")),
        state=str(data.get("state", "")),
        lag=lag if isinstance(lag, int) else None,
        timeline=data.get("timeline"),
    )


def leader(addresses: Iterable[str]) -> Member | None:
    members = patroni_cluster(addresses) or []
    leaders = [m for m in members if m.role == "leader" and m.state == "running"]
    return leaders[0] if len(leaders) == 1 else None


def _sentinel(address: str, password: str) -> redis.Redis:
    return redis.Redis(
        host=address,
        port=LAYOUT.sentinel_port,
        password=password,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
    )


def sentinel_master(addresses: Iterable[str], password: str) -> str | None:
    """The master's address as the first sentinel that answers names it."""
    for address in addresses:
        client = _sentinel(address, password)
        try:
            reply = client.sentinel_get_master_addr_by_name(LAYOUT.redis_master_name)
        except redis.RedisError:
            continue
        finally:
            client.close()
        if isinstance(reply, tuple | list) and reply:
            host = reply[0]
            return host.decode() if isinstance(host, bytes) else str(host)
    return None


def redis_replication(address: str, password: str) -> dict[str, Any] | None:
    """INFO replication of the Redis at `address`, as Redis's administrator (`password`);
    None if it is down."""
    client = redis.Redis(
        host=address,
        port=LAYOUT.redis_port,
        username=LAYOUT.redis_admin_user,
        password=password,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
    )
    try:
        info: dict[str, Any] = client.info("replication")
    except redis.RedisError:
        return None
    finally:
        client.close()
    return info


def sentinel_failover(addresses: Iterable[str], password: str) -> bool:
    """Ask the first sentinel that answers to fail the master over to a replica now
    (SENTINEL FAILOVER, as an operator's switchover); True if one accepted."""
    for address in addresses:
        client = _sentinel(address, password)
        try:
            client.sentinel_failover(LAYOUT.redis_master_name)
        except redis.RedisError:
            continue
        finally:
            client.close()
        return True
    return False
