"""A real failover: the master's Redis is killed; the Sentinels elect a new master within a
bounded time, a replicated message survives, and the old master, started again, rejoins
as a replica of the new one."""

from __future__ import annotations

import shlex

from sentinel_group import (
    MASTER_NAME,
    PORT,
    SENTINEL_PASSWORD,
    SENTINEL_PORT,
    Node,
    agreed_master,
    cli_command,
    node_at,
    nodes,
    settled_master,
    wait_for,
)

SETTLE = 60  # seconds
# down-after-milliseconds (5 s), the vote and the promotion: about 6-8 s.
FAILOVER_BOUND = 15.0
# How long the watcher polls before it gives up. A split vote is retried only after twice
# the failover timeout; the test then still reports how long the failover really took.
FAILOVER_POLL = 150
QUEUE = "molecule-failover"


def _watch_for_a_new_master(old: str) -> str:
    """A shell loop for a surviving host: ask its Sentinel every 0.1 s until it names a
    master other than `old`; print the time then (the hosts share one clock) and the new
    master's address."""
    ask = cli_command(
        "sentinel", "get-master-addr-by-name", MASTER_NAME, password=SENTINEL_PASSWORD,
        where="127.0.0.1", port=SENTINEL_PORT,
    )  # fmt: skip
    script = (
        f"end=$((SECONDS + {FAILOVER_POLL})); while [ $SECONDS -lt $end ]; do "
        f"m=$({ask} | head -n 1); "
        f'if [ -n "$m" ] && [ "$m" != {shlex.quote(old)} ]; then echo "$(date +%s.%N) $m"; '
        "exit 0; fi; sleep 0.1; done; exit 1"
    )
    return f"bash -c {shlex.quote(script)}"


def _kill_redis(node: Node) -> float:
    """SIGKILL the node's Redis and keep it down (its unit restarts it otherwise): the time."""
    with node.host.sudo():
        out = node.host.check_output(
            "date +%s.%N && systemctl kill --signal=KILL redis-server"
            " && systemctl stop redis-server"
        )
    return float(out.split()[0])


def test_a_killed_master_is_replaced_and_rejoins_as_a_replica() -> None:
    old, _ = wait_for("a settled master", settled_master, SETTLE)
    wait_for("every Sentinel naming the same master", agreed_master, SETTLE)
    survivors = [n for n in nodes() if n is not old]

    # A message every replica has acknowledged must be on the new master.
    old.redis("del", QUEUE)
    assert old.redis("lpush", QUEUE, "before-failover") == "1"
    assert old.redis("wait", str(len(survivors)), "5000") == str(len(survivors))

    killed_at = _kill_redis(old)
    watched = survivors[0].host.run(_watch_for_a_new_master(old.address))
    assert watched.rc == 0, f"no new master within {FAILOVER_POLL} s of the kill"
    seen_at, address = watched.stdout.split()
    elapsed = float(seen_at) - killed_at
    print(
        f"\nfailover: the Sentinels named {address} master {elapsed:.1f} s after the Redis of "
        f"{old.name} ({old.address}) was killed"
    )
    new = node_at(address)
    assert new in survivors
    assert elapsed <= FAILOVER_BOUND, f"the failover took {elapsed:.1f} s"

    other = next(n for n in survivors if n is not new)

    def promoted() -> bool | None:
        replication = other.replication()
        return (
            new.replication().get("role") == "master"
            and replication.get("master_host") == new.address
            and replication.get("master_link_status") == "up"
        ) or None

    wait_for("the new master, with the other survivor replicating it", promoted, SETTLE)
    assert new.redis("lrange", QUEUE, "0", "-1") == "before-failover"
    # The new master takes writes at once (redis_min_replicas_to_write is 0 by default).
    assert new.redis("lpush", QUEUE, "after-failover") == "2"

    with old.host.sudo():
        old.host.check_output("systemctl start redis-server")
    _, rejoined = wait_for(
        "the old master replicating the new one",
        lambda: new if settled_master() is new else None,
        SETTLE * 2,
    )
    print(f"rejoin: {old.name} replicates {new.address} {rejoined:.1f} s after its Redis started")
    assert old.redis("lrange", QUEUE, "0", "-1").split() == ["after-failover", "before-failover"]
    wait_for(
        "every Sentinel naming the new master",
        lambda: new.address if agreed_master() == new.address else None,
        SETTLE,
    )
    # Sentinel wrote the failover into the old master's redis.conf: a restart keeps it.
    with old.host.sudo():
        config = old.host.file("/etc/redis/redis.conf").content_string
    assert f"replicaof {new.address} {PORT}" in config
