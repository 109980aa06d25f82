"""`scripts/init_secrets.py`: create, complete or rotate an inventory's vault of secrets."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from clusterops import secrets
from clusterops.console import Failure, add_inventory_option, cli_parser, info
from clusterops.inventory import Inventory
from clusterops.paths import LAB_INVENTORY, LAB_VAULT_PASSWORD, shown

DESCRIPTION = """\
Generate every secret the cluster needs, strongly at random, and keep them encrypted in
<inventory>/group_vars/all/vault.yml (Ansible Vault). Secrets already in the vault are
kept; missing ones are added; --rotate replaces the named ones. Values are never printed,
except the one asked for with --show.

The lab inventory's vault password is generated into .lab/vault-password on first use
(ansible.cfg tells Ansible to read it). For any other inventory, give the password file
with --vault-password-file or ANSIBLE_VAULT_PASSWORD_FILE, and keep it out of git.
"""


def _epilog() -> str:
    rows = "\n".join(f"  {s.name:<36} {s.purpose}" for s in secrets.SECRETS)
    backup = "\n".join(f"  {s.name:<36} {s.purpose}" for s in secrets.BACKUP_SECRETS)
    aws = "\n".join(f"  {s.name:<36} {s.purpose}" for s in secrets.AWS_EMULATOR_SECRETS)
    return f"""\
secrets:
{rows}

for an inventory with a backup repository (group {secrets.BACKUP_GROUP}; never rotated):
{backup}

and, for an inventory with the lab's AWS emulator (group {secrets.AWS_EMULATOR_GROUP}):
{aws}

examples:
  scripts/init_secrets.py                                  the lab (make lab runs this)
  scripts/init_secrets.py -i inventories/prod --vault-password-file ~/.airflow-prod-vault
  scripts/init_secrets.py --rotate vault_airflow_admin_password   then: ansible-playbook site.yml
  scripts/init_secrets.py --show vault_airflow_admin_password
  scripts/init_secrets.py --rotate vault_airflow_fernet_key
      keeps the old key as vault_airflow_fernet_key_retired; then
      ansible-playbook playbooks/rotate_fernet_key.yml   (re-encrypts with the new key)
      scripts/init_secrets.py --drop-retired
      ansible-playbook playbooks/master.yml               (the new key alone)

Rotating a secret changes it in the vault only; the next site.yml deploys it. The Fernet
key needs the steps above: docs/operations.md, "Rotate the Fernet key".

exit codes: 0 ok, 1 failure, 2 bad input (wrong vault password, unknown secret, bad file)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli_parser("init_secrets.py", DESCRIPTION, _epilog())
    add_inventory_option(parser, LAB_INVENTORY)
    parser.add_argument(
        "--vault-password-file",
        type=Path,
        default=os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"),
        help="file (or executable) with the vault password (the lab's: .lab/vault-password)",
    )
    parser.add_argument(
        "--rotate", nargs="+", default=(), metavar="NAME", help="generate these anew"
    )
    parser.add_argument(
        "--drop-retired",
        action="store_true",
        help="forget the old Fernet key once playbooks/rotate_fernet_key.yml re-encrypted all",
    )
    parser.add_argument("--show", metavar="NAME", help="print one secret's value and exit")
    return parser.parse_args(argv)


def _password(args: argparse.Namespace) -> bytes:
    if args.vault_password_file is not None:
        return secrets.read_password(Path(args.vault_password_file))
    if args.inventory.resolve() == LAB_INVENTORY.resolve():
        return secrets.ensure_password_file(LAB_VAULT_PASSWORD)
    raise Failure(f"inventory {args.inventory} is not the lab's: give --vault-password-file", 2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.inventory / "hosts.yml").is_file():
        raise Failure(f"{args.inventory} is not an inventory folder (no hosts.yml)", 2)
    vault = secrets.Vault(shown(secrets.vault_file(args.inventory)), _password(args))
    current = vault.read()
    if args.show:
        if args.show not in current:
            raise Failure(
                f"{args.show} is not in {vault.path}; known: {', '.join(sorted(current))}", 2
            )
        print(current[args.show])
        return 0
    if args.drop_retired:
        if args.rotate:
            raise Failure("--drop-retired and --rotate: one at a time", 2)
        kept, dropped = secrets.drop_retired(current)
        if dropped:
            vault.write(kept)
        for name in dropped:
            info(f"{vault.path}: dropped {name}")
        if not dropped:
            info(f"{vault.path}: no retired secret, nothing changed")
        return 0
    wanted = secrets.secrets_for(Inventory(args.inventory / "hosts.yml").groups())
    values, changed = secrets.complete(current, tuple(args.rotate), wanted)
    if not changed:
        info(f"{vault.path}: all {len(wanted)} secrets present, nothing changed")
        return 0
    vault.write(values)
    for name in changed:
        info(f"{vault.path}: {'rotated' if name in current else 'generated'} {name}")
    return 0
