"""The emulator runs as a service on the cluster address, with authentication and IAM on:
a seeded key works in its own account, an unknown key and a key without a policy are refused.
Its HTTPS port is the same emulator, with a certificate of the host's CA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from testinfra.host import Host

ADMIN = ("AKIA111111111111ADMN", "molecule-admin-secret-key-0123456789")
READER = ("AKIAREADER2222222222", "molecule-reader-secret-key-0123456789")


def client(host: Host, service: str, key: tuple[str, str]) -> Any:  # noqa: ANN401 -- boto3
    address = host.ansible.get_variables()["ansible_host"]
    return boto3.client(
        service,
        endpoint_url=f"http://{address}:5000",
        region_name="eu-west-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
    )


def test_service_runs_as_its_user_on_the_cluster_address(host: Host) -> None:
    service = host.service("aws-emulator")
    assert service.is_running
    assert service.is_enabled
    address = host.ansible.get_variables()["ansible_host"]
    assert host.socket(f"tcp://{address}:5000").is_listening
    assert not host.socket("tcp://0.0.0.0:5000").is_listening
    assert host.process.get(comm="python").user == "aws-emulator"


def test_identities_file_is_not_world_readable(host: Host) -> None:
    with host.sudo():
        identities = host.file("/etc/aws-emulator/identities.json")
        assert identities.mode == 0o640
        assert identities.group == "aws-emulator"


def test_seeded_keys_belong_to_their_accounts(host: Host) -> None:
    identity = client(host, "sts", ADMIN).get_caller_identity()
    assert identity["Account"] == "111111111111"
    assert identity["Arn"] == "arn:aws:iam::111111111111:user/admin"
    assert client(host, "sts", READER).get_caller_identity()["Account"] == "222222222222"


def test_unknown_key_is_refused(host: Host) -> None:
    with pytest.raises(ClientError) as refused:
        client(host, "sts", ("AKIAUNKNOWN000000000", "x" * 40)).get_caller_identity()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_iam_policies_are_enforced(host: Host) -> None:
    name = "molecule-check"
    admin = client(host, "s3", ADMIN)
    admin.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        with pytest.raises(ClientError) as refused:
            client(host, "s3", READER).list_objects_v2(Bucket=name)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        admin.delete_bucket(Bucket=name)


def test_https_port_serves_the_same_emulator_with_the_hosts_ca(host: Host, tmp_path: Path) -> None:
    address = host.ansible.get_variables()["ansible_host"]
    assert host.socket(f"tcp://{address}:5443").is_listening
    with host.sudo():
        assert host.file("/etc/aws-emulator/tls/ca.key").mode == 0o600
        ca_file = tmp_path / "ca.crt"
        ca_file.write_text(host.file("/etc/aws-emulator/tls/ca.crt").content_string)
    name = "molecule-https"
    plain = client(host, "s3", ADMIN)
    plain.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        secure = boto3.client(
            "s3",
            endpoint_url=f"https://{address}:5443",
            region_name="eu-west-1",
            aws_access_key_id=ADMIN[0],
            aws_secret_access_key=ADMIN[1],
            verify=str(ca_file),
        )
        assert name in [bucket["Name"] for bucket in secure.list_buckets()["Buckets"]]
    finally:
        plain.delete_bucket(Bucket=name)
