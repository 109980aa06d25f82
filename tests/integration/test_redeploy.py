"""A second `ansible-playbook site.yml` changes nothing, run last: after the fault tests
(hosts killed, cut off, failed over and started again), a deploy still finds every host as
it left it, and it never moves a leader of the data tier.
"""

from __future__ import annotations

import pytest

from clusterops import datatier, runner
from clusterops.lab.hosts import LabSpec
from clusterops.paths import LAB_INVENTORY

pytestmark = pytest.mark.lab


def test_second_deploy_changes_nothing_and_moves_no_leader(
    lab: LabSpec, vault: dict[str, str]
) -> None:
    members = [lab.host(name).address for name in lab.group("postgres")]
    brokers = [lab.host(name).address for name in lab.group("redis")]
    sentinel_password = vault["vault_redis_sentinel_password"]
    primary = datatier.leader(members)
    master = datatier.sentinel_master(brokers, sentinel_password)

    stats = runner.run_playbook(LAB_INVENTORY, "site.yml", quiet=True)

    changed = {host: counts.get("changed", 0) for host, counts in stats.items()}
    assert set(changed.values()) == {0}, changed
    after = datatier.leader(members)
    assert (after and after.name) == (primary and primary.name)
    assert datatier.sentinel_master(brokers, sentinel_password) == master
