"""The cluster's secrets: generated at random, kept in an Ansible Vault file per inventory.

The vault file is `<inventory>/group_vars/all/vault.yml`, encrypted as a whole (what
`ansible-vault encrypt` writes), holding one `vault_*` variable per secret. The roles' defaults
read them (e.g. airflow_jwt_secret: "{{ vault_airflow_jwt_secret }}"); the preflight play
refuses to run when one is missing or looks like a placeholder.
"""

from __future__ import annotations

import base64
import os
import secrets
import string
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.errors import AnsibleError
from ansible.parsing.vault import VaultLib, VaultSecret, is_encrypted
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clusterops import rules
from clusterops.console import Failure
from clusterops.files import write_atomic

# Letters and digits only: safe in URLs (broker and database URLs), systemd environment
# files, shell and YAML without quoting or escaping.
ALPHABET = string.ascii_letters + string.digits


def _random(length: int) -> Callable[[], str]:
    return lambda: "".join(secrets.choice(ALPHABET) for _ in range(length))


def _fernet_key() -> str:
    """A Fernet key as Airflow expects it: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _ssh_key() -> str:
    """A new ed25519 private key in OpenSSH's format, without passphrase."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )


def ssh_public_key(private_key: str, comment: str = "airflow-dags-deploy-key") -> str:
    """The authorized_keys line of an OpenSSH private key."""
    key = serialization.load_ssh_private_key(private_key.encode(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{public.decode()} {comment}"


@dataclass(frozen=True)
class Secret:
    name: str
    purpose: str
    generate: Callable[[], str]
    # Letters, digits, '-', '_', '=' only (what the preflight check demands); False for keys.
    plain: bool = True
    # Why --rotate must not replace it, when it must not (the old value is still needed).
    not_rotatable: str = ""
    # Where --rotate keeps the old value while the cluster still needs it (the Fernet key
    # decrypts until everything is re-encrypted); --drop-retired forgets it.
    retired_as: str = ""


# How each secret every inventory needs (rules.VAULT_SECRETS: names, purposes, and the rule
# the preflight play checks them with) is made.
_GENERATORS: dict[str, Callable[[], str]] = {
    "vault_postgresql_airflow_password": _random(32),
    "vault_redis_airflow_password": _random(32),
    "vault_postgresql_airflow_worker_password": _random(32),
    "vault_redis_airflow_worker_password": _random(32),
    "vault_redis_admin_password": _random(32),
    "vault_airflow_fernet_key": _fernet_key,
    "vault_airflow_api_secret_key": _random(48),
    "vault_airflow_jwt_secret": _random(64),
    "vault_airflow_admin_password": _random(24),
    "vault_airflow_flower_password": _random(24),
    "vault_postgresql_superuser_password": _random(32),
    "vault_postgresql_replication_password": _random(32),
    "vault_patroni_rest_password": _random(32),
    "vault_etcd_root_password": _random(32),
    "vault_etcd_patroni_password": _random(32),
    "vault_etcd_airflow_password": _random(32),
    "vault_keepalived_password": _random(32),
    "vault_redis_replication_password": _random(32),
    "vault_redis_sentinel_password": _random(32),
}

# The Fernet key's predecessor decrypts until playbooks/rotate_fernet_key.yml has
# re-encrypted every connection, variable and trigger with the new key.
_RETIRED_AS = {"vault_airflow_fernet_key": "vault_airflow_fernet_key_retired"}

SECRETS: tuple[Secret, ...] = (
    *(
        Secret(name, purpose, _GENERATORS[name], retired_as=_RETIRED_AS.get(name, ""))
        for name, purpose in rules.VAULT_SECRETS.items()
    ),
    Secret(
        "vault_airflow_dags_ssh_key",
        "SSH deploy key (private) the hosts fetch the DAG repository with",
        _ssh_key,
        plain=False,
    ),
)
NAMES = tuple(secret.name for secret in SECRETS)

# An AWS access key id as AWS prints them: AKIA and 16 of A-Z, 2-7.
_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"


def _access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


# Only for an inventory with the lab AWS emulator (group aws_emulator, its role in playbooks/lab):
# its accounts' keys are made here and seeded into the emulator. Against real AWS, the
# keys come from AWS (or the hosts use an instance profile): see docs/aws.md.
AWS_EMULATOR_GROUP = "aws_emulator"
AWS_EMULATOR_SECRETS: tuple[Secret, ...] = (
    Secret(
        "vault_airflow_aws_access_key_id",
        "AWS access key id of Airflow's IAM user (the lab's AWS emulator)",
        _access_key_id,
    ),
    Secret(
        "vault_airflow_aws_secret_access_key",
        "its secret access key",
        _random(40),
    ),
    Secret(
        "vault_aws_emulator_admin_secret_key",
        "secret key of the admin user of each lab AWS account (provisioning)",
        _random(40),
    ),
    Secret(
        "vault_aws_source_external_id",
        "ExternalId that the source account's role demands (AssumeRole)",
        _random(32),
    ),
    Secret(
        "vault_aws_target_external_id",
        "ExternalId that the target account's role demands (AssumeRole)",
        _random(32),
    ),
    Secret(
        "vault_pgbackrest_s3_key",
        "AWS access key id of pgBackRest's IAM user (the backups' bucket on the lab's emulator)",
        _access_key_id,
    ),
    Secret(
        "vault_pgbackrest_s3_key_secret",
        "its secret access key",
        _random(40),
    ),
)


# Only for an inventory with a backup repository (group pgbackrest_repo, roles/pgbackrest).
BACKUP_GROUP = "pgbackrest_repo"
BACKUP_SECRETS: tuple[Secret, ...] = (
    Secret(
        "vault_pgbackrest_cipher_pass",
        "passphrase of pgBackRest's encrypted repository (backups)",
        _random(40),
        not_rotatable=(
            "the backups already in the repository stay encrypted with the old passphrase, "
            "so a new one makes them unreadable; docs/backups.md says how to start a new "
            "repository instead"
        ),
    ),
)


def secrets_for(groups: set[str]) -> tuple[Secret, ...]:
    """The secrets an inventory with these groups needs."""
    return (
        SECRETS
        + (BACKUP_SECRETS if BACKUP_GROUP in groups else ())
        + (AWS_EMULATOR_SECRETS if AWS_EMULATOR_GROUP in groups else ())
    )


# Kept beside the secret they derive from, and renewed with it: (name, source, derive).
DERIVED: tuple[tuple[str, str, Callable[[str], str]], ...] = (
    ("vault_airflow_dags_ssh_public_key", "vault_airflow_dags_ssh_key", ssh_public_key),
)


def vault_file(inventory: Path) -> Path:
    return inventory / "group_vars" / "all" / "vault.yml"


class Vault:
    """One inventory's vault file, read and written with one password."""

    def __init__(self, path: Path, password: bytes) -> None:
        if not password.strip():
            raise Failure("the vault password is empty", 2)
        self.path = path
        self._lib = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password.strip()))])

    def read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        if not is_encrypted(data):
            raise Failure(
                f"{self.path} is not encrypted with Ansible Vault: refusing to touch it", 2
            )
        try:
            plain = self._lib.decrypt(data)
        except AnsibleError:
            raise Failure(f"cannot decrypt {self.path}: wrong vault password", 2) from None
        values = yaml.safe_load(plain) or {}
        if not isinstance(values, dict):
            raise Failure(f"{self.path} does not hold a mapping of variables", 2)
        return {str(key): str(value) for key, value in values.items()}

    def write(self, values: dict[str, str]) -> None:
        header = (
            "# Generated by scripts/init_secrets.py. Edit with: ansible-vault edit <this file>\n"
        )
        plain = header + yaml.safe_dump(dict(sorted(values.items())), default_flow_style=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, self._lib.encrypt(plain.encode()), mode=0o600)


def complete(
    current: dict[str, str],
    rotate: tuple[str, ...] = (),
    wanted: tuple[Secret, ...] = SECRETS,
) -> tuple[dict[str, str], list[str]]:
    """The values with every missing secret of `wanted` (and those to rotate) newly generated.

    Returns the new values and the names that changed. Unknown names in the vault are kept.
    """
    names = [secret.name for secret in wanted]
    unknown = sorted(set(rotate) - set(names))
    if unknown:
        raise Failure(f"unknown secret(s) {', '.join(unknown)}; known: {', '.join(names)}", 2)
    refused = [s for s in wanted if s.name in rotate and s.not_rotatable and current.get(s.name)]
    if refused:
        raise Failure(
            "; ".join(f"{s.name} cannot be rotated: {s.not_rotatable}" for s in refused), 2
        )
    values = dict(current)
    changed = []
    for secret in wanted:
        if secret.name in rotate and secret.retired_as and current.get(secret.name):
            if current.get(secret.retired_as):
                raise Failure(
                    f"{secret.name}: a rotation is still under way ({secret.retired_as} is "
                    "set): finish it first (docs/operations.md, rotate the Fernet key)",
                    2,
                )
            values[secret.retired_as] = current[secret.name]
            changed.append(secret.retired_as)
        if secret.name in rotate or not values.get(secret.name):
            values[secret.name] = secret.generate()
            changed.append(secret.name)
    for name, source, derive in DERIVED:
        derived = derive(values[source])
        if values.get(name) != derived:
            values[name] = derived
            changed.append(name)
    return values, changed


def drop_retired(current: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The values without the retired ones a finished rotation no longer needs, and their names."""
    retired = [s.retired_as for s in SECRETS if s.retired_as and s.retired_as in current]
    return {k: v for k, v in current.items() if k not in retired}, retired


def read_password(path: Path) -> bytes:
    """A vault password file as Ansible reads it: its content, or an executable's output."""
    if not path.is_file():
        raise Failure(f"vault password file {path} does not exist", 2)
    if os.access(path, os.X_OK):
        result = subprocess.run([str(path)], capture_output=True, check=False)
        if result.returncode != 0:
            raise Failure(
                f"vault password script {path} failed: {result.stderr.decode().strip()}", 2
            )
        return result.stdout
    return path.read_bytes()


def ensure_password_file(path: Path) -> bytes:
    """The lab's vault password: read it, or create it (0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, _random(48)() + "\n", mode=0o600)
    return read_password(path)
