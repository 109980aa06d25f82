"""Logging in to a Redis Sentinel and reading it, for the role's modules (library/).

A Sentinel's password is the same on every Sentinel of the group and is kept in each
one's sentinel.conf as `sentinel sentinel-pass` (it logs in to the others with it).
While the password is being replaced, the one given may not work yet: the client then
logs in with the one that file holds.
"""

from __future__ import annotations

import shlex
from pathlib import Path

try:
    import redis

    HAS_REDIS = True
except ImportError:  # reported by the modules, with the package to install
    HAS_REDIS = False

# Replies of a server that refuses a password (or wants one).
_AUTH_REFUSED = ("WRONGPASS", "NOAUTH", "WITHOUT ANY PASSWORD CONFIGURED", "INVALID PASSWORD")


def refused_login(error: Exception) -> bool:
    """Whether the error says the password was refused (or none was configured)."""
    return any(text in str(error).upper() for text in _AUTH_REFUSED)


def config_lines(path: str | None) -> list[list[str]]:
    """The words of each directive of a Redis or Sentinel configuration file.

    An unreadable or missing file has none.
    """
    if not path:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            lines.append(shlex.split(stripped))
        except ValueError:
            continue
    return lines


def sentinel_setting(lines: list[list[str]], *keys: str) -> str | None:
    """The value of the last `sentinel <keys...> <value>` line.

    For example ("auth-pass", "airflow") or ("sentinel-pass",).
    """
    found = None
    for words in lines:
        if (
            len(words) == len(keys) + 2
            and words[0].lower() == "sentinel"
            and words[1].lower() == keys[0]
            and words[2:-1] == list(keys[1:])
        ):
            found = words[-1]
    return found


def connect(host: str, port: int, password: str | None, timeout: float) -> redis.Redis:
    """A client logged in to host:port as the default user, checked with PING."""
    client = redis.Redis(
        host=host,
        port=port,
        password=password or None,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
    )
    client.ping()
    return client


def login(
    host: str, port: int, password: str, config_file: str | None, timeout: float
) -> tuple[redis.Redis, bool]:
    """A client logged in with the password, or else with the one in config_file.

    The second value is True when the password was refused and the file's worked: the
    Sentinel still has the password that is being replaced.
    """
    try:
        return connect(host, port, password, timeout), False
    except redis.RedisError as error:
        if not refused_login(error):
            raise
        previous = sentinel_setting(config_lines(config_file), "sentinel-pass")
        if not previous or previous == password:
            raise
        return connect(host, port, previous, timeout), True


def pairs(reply: list[str]) -> dict[str, str]:
    """A flat [key, value, key, value, ...] reply as a dict."""
    return dict(zip(reply[::2], reply[1::2], strict=True))


def monitored_master(client: redis.Redis, name: str) -> dict[str, str] | None:
    """SENTINEL MASTER <name> as a dict, or None when the Sentinel does not monitor it."""
    try:
        reply = client.execute_command("SENTINEL", "MASTER", name)  # type: ignore[no-untyped-call]
    except redis.ResponseError as error:
        if "NO SUCH MASTER" in str(error).upper():
            return None
        raise
    return pairs(list(reply))
