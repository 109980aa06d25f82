"""Checks that run before any container is made, and the lab's SSH bookkeeping."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from clusterops.console import Failure
from clusterops.lab import hosts
from clusterops.lab.hosts import HostSpec, LabSpec

SUBNET = ipaddress.IPv4Network("172.30.89.0/24")


def spec(*members: tuple[str, str]) -> LabSpec:
    return LabSpec("t", SUBNET, tuple(HostSpec(n, a) for n, a in members), "admin")


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ((("a", "172.30.89.10"), ("a", "172.30.89.11")), "'a' is listed twice"),
        ((("a", "172.30.89.10"), ("b", "172.30.89.10")), "172.30.89.10 is given to two"),
        ((("a", "172.30.90.10"),), "not a usable address of the lab subnet"),
        ((("a", "172.30.89.1"),), "not a usable address"),  # the gateway
        ((("a", "172.30.89.255"),), "not a usable address"),  # broadcast
    ],
)
def test_bad_topologies_are_refused(members: tuple[tuple[str, str], ...], message: str) -> None:
    with pytest.raises(Failure, match=message) as caught:
        hosts._validate(spec(*members))
    assert caught.value.exit_code == 2


def test_known_hosts_replaces_only_this_labs_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("10.0.0.5,other ssh-ed25519 KEEP\n172.30.89.10,a ssh-ed25519 OLD\n")
    monkeypatch.setattr(hosts, "KNOWN_HOSTS", known)
    hosts._write_known_hosts({"172.30.89.10,a": "ssh-ed25519 NEW"})
    assert known.read_text().splitlines() == [
        "10.0.0.5,other ssh-ed25519 KEEP",
        "172.30.89.10,a ssh-ed25519 NEW",
    ]


def test_known_hosts_keeps_another_labs_host_of_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A molecule scenario's redis-1 must not drop the lab's redis-1 (another address)."""
    known = tmp_path / "known_hosts"
    known.write_text("172.30.89.21,redis-1 ssh-ed25519 LAB\n")
    monkeypatch.setattr(hosts, "KNOWN_HOSTS", known)
    hosts._write_known_hosts({"172.30.186.10,redis-1": "ssh-ed25519 SCENARIO"})
    assert known.read_text().splitlines() == [
        "172.30.186.10,redis-1 ssh-ed25519 SCENARIO",
        "172.30.89.21,redis-1 ssh-ed25519 LAB",
    ]


def test_ssh_keeps_host_key_checking_on() -> None:
    lab = spec(("a", "172.30.89.10"))
    argv = hosts.ssh_argv(lab, lab.host("a"), "true")
    assert "StrictHostKeyChecking=yes" in argv
    assert argv[-2:] == ["admin@172.30.89.10", "true"]


def test_concurrent_callers_get_one_key_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Molecule scenarios start together on a fresh checkout: one key for all of them."""
    monkeypatch.setattr(hosts, "SSH_KEY", tmp_path / "ssh" / "id_ed25519")
    with ThreadPoolExecutor(4) as pool:
        keys = set(
            pool.map(lambda _: hosts.ensure_ssh_key().with_suffix(".pub").read_text(), range(4))
        )
    assert len(keys) == 1


class _Labelled:
    def __init__(self, **labels: str) -> None:
        self.labels = labels


def test_hosts_of_another_checkout_are_foreign() -> None:
    """A fresh clone must not deploy onto hosts that hold another vault's secrets."""
    mine = hosts.checkout_id(b"ssh-ed25519 AAAA mine\n")
    existing = {
        "kept": _Labelled(**{hosts.LABEL_CHECKOUT: mine}),
        "other": _Labelled(**{hosts.LABEL_CHECKOUT: hosts.checkout_id(b"ssh-ed25519 BBBB")}),
        "unlabelled": _Labelled(),
    }
    assert hosts._foreign(existing, mine) == ["other", "unlabelled"]
    assert mine == hosts.checkout_id(b"ssh-ed25519 AAAA mine")  # trailing newline ignored
