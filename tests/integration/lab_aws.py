"""Clients of the lab's AWS emulator, for the tests: as each account's admin, and as Airflow's
own IAM user with or without the roles it may assume.

Names and accounts come from inventories/lab/group_vars/all/aws.yml, keys from the vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml

from clusterops import secrets
from clusterops.lab.hosts import LabSpec
from clusterops.paths import LAB_INVENTORY, LAB_STATE_DIR, LAB_VAULT_PASSWORD

SETTINGS_FILE = LAB_INVENTORY / "group_vars" / "all" / "aws.yml"
EMULATOR_SETTINGS_FILE = LAB_INVENTORY / "group_vars" / "aws_emulator.yml"
EMULATOR_PORT = 5000
# The CA of the emulator's HTTPS port, copied here by playbooks/lab/aws.yml.
EMULATOR_CA_FILE = LAB_STATE_DIR / "aws-emulator-ca.crt"


@dataclass(frozen=True)
class LabAws:
    endpoint_url: str
    https_endpoint_url: str
    region: str
    accounts: dict[str, str]
    settings: dict[str, Any]
    vault: dict[str, str]

    @classmethod
    def load(cls, lab: LabSpec, settings_file: Path = SETTINGS_FILE) -> LabAws:
        settings = yaml.safe_load(settings_file.read_text())
        address = lab.host(lab.group("aws_emulator")[0]).address
        tls_port = yaml.safe_load(EMULATOR_SETTINGS_FILE.read_text())["aws_emulator_tls_port"]
        vault = secrets.Vault(
            secrets.vault_file(LAB_INVENTORY), secrets.read_password(LAB_VAULT_PASSWORD)
        ).read()
        return cls(
            endpoint_url=f"http://{address}:{EMULATOR_PORT}",
            https_endpoint_url=f"https://{address}:{tls_port}",
            region=settings["lab_aws_region"],
            accounts=dict(settings["lab_aws_accounts"]),
            settings=settings,
            vault=vault,
        )

    def role_arn(self, which: str) -> str:
        return f"arn:aws:iam::{self.accounts[which]}:role/airflow-csv-{which}"

    def external_id(self, which: str) -> str:
        return self.vault[f"vault_aws_{which}_external_id"]

    def _client(self, service: str, key_id: str, secret: str, token: str | None = None) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
        )

    def admin(self, service: str, account: str) -> Any:
        """A client acting as the admin of one of the lab's accounts (airflow, source, target)."""
        key_id = f"AKIA{self.accounts[account]}ADMN"
        return self._client(service, key_id, self.vault["vault_aws_emulator_admin_secret_key"])

    def airflow_user(self, service: str) -> Any:
        """A client with Airflow's own key, without any role."""
        return self._client(
            service,
            self.vault["vault_airflow_aws_access_key_id"],
            self.vault["vault_airflow_aws_secret_access_key"],
        )

    def assumed(self, service: str, which: str) -> Any:
        """A client with Airflow's key after AssumeRole into account `which` (source, target)."""
        credentials = self.airflow_user("sts").assume_role(
            RoleArn=self.role_arn(which),
            RoleSessionName="lab-test",
            ExternalId=self.external_id(which),
        )["Credentials"]
        return self._client(
            service,
            credentials["AccessKeyId"],
            credentials["SecretAccessKey"],
            credentials["SessionToken"],
        )

    def pgbackrest_user(self) -> Any:
        """An S3 client with pgBackRest's key, through the HTTPS port, checking its CA."""
        return boto3.client(
            "s3",
            endpoint_url=self.https_endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.vault["vault_pgbackrest_s3_key"],
            aws_secret_access_key=self.vault["vault_pgbackrest_s3_key_secret"],
            verify=str(EMULATOR_CA_FILE),
        )
