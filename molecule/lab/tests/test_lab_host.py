"""What every lab host must be before any role touches it: a small VM look-alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import testinfra

CONTROLLER_CAS = Path(os.environ.get("LAB_CA_CERTS", "/usr/local/share/ca-certificates"))
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")


def _other(host: testinfra.host.Host) -> testinfra.host.Host:
    me = host.backend.get_hostname()
    others = sorted({"node-a", "node-b"} - {me})
    return testinfra.get_host(f"ansible://{others[0]}?ansible_inventory={INVENTORY}")


def test_systemd_finished_booting(host: testinfra.host.Host) -> None:
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


def test_sshd_runs_with_keys_only(host: testinfra.host.Host) -> None:
    assert host.service("ssh").is_running
    assert host.service("ssh").is_enabled
    with host.sudo():
        config = host.run("sshd -T").stdout
    assert "passwordauthentication no" in config
    assert "permitrootlogin no" in config


def test_login_user_has_passwordless_sudo(host: testinfra.host.Host) -> None:
    assert host.run("sudo -n true").rc == 0


def test_each_host_has_its_own_identity(host: testinfra.host.Host) -> None:
    other = _other(host)
    for path in ("/etc/ssh/ssh_host_ed25519_key.pub", "/etc/machine-id"):
        mine = host.file(path).content_string.strip()
        assert mine, f"{path} is empty"
        assert mine != other.file(path).content_string.strip(), f"{path} is shared"


def test_hosts_resolve_and_reach_each_other(host: testinfra.host.Host) -> None:
    other = _other(host)
    name = other.backend.get_hostname()
    address = other.interface("eth0").addresses[0]
    assert host.addr(name).is_resolvable
    assert host.run(f"ping -c1 -W2 {address}").rc == 0


@pytest.mark.skipif(not CONTROLLER_CAS.is_dir(), reason="the controller has no extra CAs")
def test_controller_extra_cas_are_trusted(host: testinfra.host.Host) -> None:
    bundle = host.file("/etc/ssl/certs/ca-certificates.crt").content_string
    for cert in sorted(CONTROLLER_CAS.rglob("*.crt")):
        body = "".join(cert.read_text().split()[2:-2])  # between BEGIN/END lines
        assert body[:64] in "".join(bundle.split()), f"{cert.name} not in the CA bundle"


def test_apt_reaches_debian(host: testinfra.host.Host) -> None:
    with host.sudo():
        result = host.run("apt-get -q update")
    assert result.rc == 0, result.stderr
