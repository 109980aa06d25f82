"""The vault of secrets: generated strong, encrypted, completed without losing values."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clusterops import secrets
from clusterops.console import Failure
from clusterops.secrets_cli import main


def test_every_secret_is_strong_and_plain() -> None:
    values, changed = secrets.complete({})
    derived = [name for name, _, _ in secrets.DERIVED]
    assert changed == list(secrets.NAMES) + derived
    for secret in secrets.SECRETS:
        value = values[secret.name]
        assert len(value) >= 24, secret.name
        if secret.plain:
            assert value.replace("-", "").replace("_", "").replace("=", "").isalnum(), secret.name


def test_deploy_key_pair_matches_and_follows_a_rotation() -> None:
    values, _ = secrets.complete({})
    private = values["vault_airflow_dags_ssh_key"]
    loaded = serialization.load_ssh_private_key(private.encode(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    public = values["vault_airflow_dags_ssh_public_key"]
    assert public.startswith("ssh-ed25519 ")
    assert public == secrets.ssh_public_key(private)
    again, changed = secrets.complete(values)
    assert again == values and changed == []
    rotated, changed = secrets.complete(values, ("vault_airflow_dags_ssh_key",))
    assert changed == ["vault_airflow_dags_ssh_key", "vault_airflow_dags_ssh_public_key"]
    assert rotated["vault_airflow_dags_ssh_public_key"] != public


def test_generated_secrets_differ() -> None:
    first, _ = secrets.complete({})
    second, _ = secrets.complete({})
    assert all(first[name] != second[name] for name in secrets.NAMES)


def test_fernet_key_decodes_to_32_bytes() -> None:
    values, _ = secrets.complete({})
    assert len(base64.urlsafe_b64decode(values["vault_airflow_fernet_key"])) == 32


def test_complete_keeps_existing_and_unknown_values() -> None:
    current = {"vault_airflow_jwt_secret": "kept-as-is", "vault_extra": "mine"}
    values, changed = secrets.complete(current)
    assert values["vault_airflow_jwt_secret"] == "kept-as-is"
    assert values["vault_extra"] == "mine"
    assert "vault_airflow_jwt_secret" not in changed


def test_rotate_replaces_only_the_named_secret() -> None:
    current, _ = secrets.complete({})
    values, changed = secrets.complete(current, ("vault_airflow_admin_password",))
    assert changed == ["vault_airflow_admin_password"]
    assert values["vault_airflow_admin_password"] != current["vault_airflow_admin_password"]
    assert values["vault_airflow_jwt_secret"] == current["vault_airflow_jwt_secret"]


def test_rotating_the_fernet_key_keeps_the_old_one_until_dropped() -> None:
    current, _ = secrets.complete({})
    old = current["vault_airflow_fernet_key"]
    values, changed = secrets.complete(current, ("vault_airflow_fernet_key",))
    assert changed == ["vault_airflow_fernet_key_retired", "vault_airflow_fernet_key"]
    assert values["vault_airflow_fernet_key_retired"] == old
    assert values["vault_airflow_fernet_key"] != old
    # A second rotation before the first is finished would lose the key still in use.
    with pytest.raises(Failure, match="a rotation is still under way"):
        secrets.complete(values, ("vault_airflow_fernet_key",))
    kept, dropped = secrets.drop_retired(values)
    assert dropped == ["vault_airflow_fernet_key_retired"]
    assert "vault_airflow_fernet_key_retired" not in kept
    assert kept["vault_airflow_fernet_key"] == values["vault_airflow_fernet_key"]
    assert secrets.drop_retired(kept) == (kept, [])


def test_rotating_an_unknown_name_is_refused() -> None:
    with pytest.raises(Failure, match="unknown secret"):
        secrets.complete({}, ("vault_nope",))


def test_vault_round_trip_is_encrypted_and_private(tmp_path: Path) -> None:
    vault = secrets.Vault(tmp_path / "vault.yml", b"a password")
    values, _ = secrets.complete({})
    vault.write(values)
    raw = vault.path.read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT;")
    assert all(value.encode() not in raw for value in values.values())
    assert stat.S_IMODE(vault.path.stat().st_mode) == 0o600
    assert vault.read() == values


def test_wrong_password_names_the_file(tmp_path: Path) -> None:
    secrets.Vault(tmp_path / "vault.yml", b"right").write({"a": "b"})
    with pytest.raises(Failure, match=r"cannot decrypt .*vault\.yml: wrong vault password"):
        secrets.Vault(tmp_path / "vault.yml", b"wrong").read()


def test_a_plain_file_is_not_overwritten(tmp_path: Path) -> None:
    plain = tmp_path / "vault.yml"
    plain.write_text("vault_airflow_jwt_secret: typed-by-hand\n")
    with pytest.raises(Failure, match="not encrypted"):
        secrets.Vault(plain, b"pw").read()
    assert plain.read_text() == "vault_airflow_jwt_secret: typed-by-hand\n"


def test_cli_creates_then_leaves_the_vault_alone(lab_inventory: Path, tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("correct horse\n")
    args = ["-i", str(lab_inventory), "--vault-password-file", str(password)]
    assert main(args) == 0
    vault = secrets.vault_file(lab_inventory)
    first = vault.read_bytes()
    assert main(args) == 0
    assert vault.read_bytes() == first


def test_cli_rotates_the_fernet_key_then_drops_the_old_one(
    lab_inventory: Path, tmp_path: Path
) -> None:
    password = tmp_path / "pw"
    password.write_text("correct horse\n")
    args = ["-i", str(lab_inventory), "--vault-password-file", str(password)]
    assert main(args) == 0
    vault = secrets.Vault(secrets.vault_file(lab_inventory), b"correct horse")
    old = vault.read()["vault_airflow_fernet_key"]
    assert main([*args, "--rotate", "vault_airflow_fernet_key"]) == 0
    assert vault.read()["vault_airflow_fernet_key_retired"] == old
    before = secrets.vault_file(lab_inventory).read_bytes()
    with pytest.raises(Failure, match="a rotation is still under way"):
        main([*args, "--rotate", "vault_airflow_fernet_key"])
    with pytest.raises(Failure, match="one at a time"):
        main([*args, "--drop-retired", "--rotate", "vault_airflow_jwt_secret"])
    assert secrets.vault_file(lab_inventory).read_bytes() == before  # refused: untouched
    assert main([*args, "--drop-retired"]) == 0
    values = vault.read()
    assert "vault_airflow_fernet_key_retired" not in values
    assert values["vault_airflow_fernet_key"] != old


def test_cli_needs_a_password_for_other_inventories(lab_inventory: Path) -> None:
    with pytest.raises(Failure, match="give --vault-password-file"):
        main(["-i", str(lab_inventory)])


def test_aws_emulator_keys_only_for_an_inventory_with_the_emulator() -> None:
    names = {secret.name for secret in secrets.secrets_for({"airflow", "aws_emulator"})}
    assert {s.name for s in secrets.AWS_EMULATOR_SECRETS} <= names
    plain = {secret.name for secret in secrets.secrets_for({"airflow", "postgres"})}
    assert plain == set(secrets.NAMES)
    with pytest.raises(Failure, match="unknown secret"):
        secrets.complete({}, ("vault_airflow_aws_access_key_id",))


def test_aws_emulator_keys_look_like_aws_keys() -> None:
    wanted = secrets.secrets_for({"aws_emulator"})
    values, changed = secrets.complete({}, (), wanted)
    assert set(changed) >= {s.name for s in secrets.AWS_EMULATOR_SECRETS}
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", values["vault_airflow_aws_access_key_id"])
    assert re.fullmatch(r"[A-Za-z0-9]{40}", values["vault_airflow_aws_secret_access_key"])
    again, _ = secrets.complete({}, (), wanted)
    assert again["vault_airflow_aws_access_key_id"] != values["vault_airflow_aws_access_key_id"]


def test_backup_passphrase_only_for_an_inventory_with_a_repository() -> None:
    names = {secret.name for secret in secrets.secrets_for({"postgres", "pgbackrest_repo"})}
    assert "vault_pgbackrest_cipher_pass" in names
    plain = {secret.name for secret in secrets.secrets_for({"postgres"})}
    assert "vault_pgbackrest_cipher_pass" not in plain
    values, _ = secrets.complete({}, (), secrets.secrets_for({"pgbackrest_repo"}))
    assert re.fullmatch(r"[A-Za-z0-9]{40}", values["vault_pgbackrest_cipher_pass"])


def test_backup_passphrase_is_never_rotated() -> None:
    wanted = secrets.secrets_for({"pgbackrest_repo"})
    current, _ = secrets.complete({}, (), wanted)
    with pytest.raises(Failure, match="vault_pgbackrest_cipher_pass cannot be rotated"):
        secrets.complete(current, ("vault_pgbackrest_cipher_pass",), wanted)
    # Missing, it is generated: there is no repository it could belong to yet.
    del current["vault_pgbackrest_cipher_pass"]
    values, changed = secrets.complete(current, ("vault_pgbackrest_cipher_pass",), wanted)
    assert changed == ["vault_pgbackrest_cipher_pass"]
    assert values["vault_pgbackrest_cipher_pass"]
