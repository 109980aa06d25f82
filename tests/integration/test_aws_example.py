"""The example DAG across two AWS accounts, on the lab's AWS emulator.

csv_to_json_example reads a CSV in account A (through the role airflow-csv-source) and
writes its rows to a DynamoDB table in account B (through airflow-csv-target). The emulator
checks every call against IAM policies, so calls without the roles can be shown refused.
The task logs go to an S3 bucket in Airflow's own account.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clusterops.cluster import AirflowAPI, wait_for
from clusterops.lab.hosts import LabSpec
from clusterops.layout import LAYOUT
from tests import dag_helpers

from .conftest import lab_host
from .lab_aws import LabAws

pytestmark = pytest.mark.lab

DAG_ID = "csv_to_json_example"
KEY_COLUMN = "Id"


@pytest.fixture(scope="module")
def aws(lab: LabSpec) -> LabAws:
    return LabAws.load(lab)


@pytest.fixture(scope="module")
def expected(aws: LabAws) -> dict[str, dict[str, str]]:
    """The CSV's rows by key, read from account A's bucket as its admin."""
    bucket, key = aws.settings["lab_aws_source_bucket"], aws.settings["lab_aws_source_key"]
    body = aws.admin("s3", "source").get_object(Bucket=bucket, Key=key)["Body"].read()
    csv_records = dag_helpers.load("csv_records")
    rows = csv_records.parse_csv(body, source=f"s3://{bucket}/{key}", key_column=KEY_COLUMN)
    assert rows, "the example CSV has no rows"
    return {row[KEY_COLUMN]: row for row in rows}


def _succeeded(api: AirflowAPI, run_id: str) -> None:
    run = api.wait_for_run(DAG_ID, run_id, timeout=300)
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG_ID, run_id)}
    assert run["state"] == "success", f"run {run_id}: {run['state']}, tasks {states}"


@pytest.fixture(scope="module")
def first_run(api: AirflowAPI) -> str:
    wait_for(f"DAG {DAG_ID} to be parsed", lambda: api.dag(DAG_ID), timeout=120)
    run_id = api.trigger(DAG_ID)
    _succeeded(api, run_id)
    return run_id


def table_items(aws: LabAws) -> list[dict[str, str]]:
    """Every item of the target table (account B), as {attribute: string}."""
    client = aws.admin("dynamodb", "target")
    table = aws.settings["lab_aws_target_table"]
    items: list[dict[str, str]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        items += [{name: value["S"] for name, value in item.items()} for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def staged_objects(aws: LabAws) -> list[str]:
    bucket, prefix = aws.settings["lab_aws_source_bucket"], aws.settings["lab_aws_staging_prefix"]
    page = aws.admin("s3", "source").list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    return [obj["Key"] for obj in page.get("Contents", [])]


# How a refusal by IAM reads. S3 says AccessDenied. DynamoDB says AccessDeniedException on
# AWS; the emulator sends that refusal as XML, which botocore's JSON parser reports as the
# bare HTTP status.
REFUSED = {"AccessDenied", "AccessDeniedException", "403"}


def error_code(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def refused(call: Callable[[], object]) -> bool:
    code = error_code(call)
    assert code in REFUSED | {"ResourceNotFoundException"}, code
    return code in REFUSED


def test_a_run_loads_exactly_the_rows_of_the_csv(
    first_run: str, aws: LabAws, expected: dict[str, dict[str, str]]
) -> None:
    items = table_items(aws)
    assert len(items) == len(expected)
    assert {item[KEY_COLUMN]: item for item in items} == expected
    assert staged_objects(aws) == [], "the intermediate JSON was not cleaned up"


def test_running_again_and_clearing_a_task_leave_the_same_items(
    api: AirflowAPI, first_run: str, aws: LabAws, expected: dict[str, dict[str, str]]
) -> None:
    _succeeded(api, api.trigger(DAG_ID))
    # `load` alone, after cleanup removed the JSON it read: it must rebuild it, not fail.
    api.clear(DAG_ID, first_run, ["load"])
    _succeeded(api, first_run)
    loads = [ti for ti in api.task_instances(DAG_ID, first_run) if ti["task_id"] == "load"]
    assert [ti["try_number"] for ti in loads] == [2], "load did not run again"
    items = table_items(aws)
    assert len(items) == len(expected)
    assert {item[KEY_COLUMN]: item for item in items} == expected
    assert staged_objects(aws) == []


def test_the_data_is_in_two_accounts_reached_only_through_the_roles(
    first_run: str, aws: LabAws
) -> None:
    bucket, key = aws.settings["lab_aws_source_bucket"], aws.settings["lab_aws_source_key"]
    table = aws.settings["lab_aws_target_table"]
    # Where things are: the CSV in account A, the table in account B (and not in A).
    aws.admin("s3", "source").head_object(Bucket=bucket, Key=key)
    aws.admin("dynamodb", "target").describe_table(TableName=table)
    missing = error_code(lambda: aws.admin("dynamodb", "source").describe_table(TableName=table))
    assert missing == "ResourceNotFoundException"
    # Airflow's own key, without the roles: refused.
    user = aws.airflow_user
    assert refused(lambda: user("s3").get_object(Bucket=bucket, Key=key))
    assert refused(lambda: user("dynamodb").scan(TableName=table))
    # Through the roles: allowed what the DAG needs, no more.
    assert aws.assumed("sts", "source").get_caller_identity()["Account"] == aws.accounts["source"]
    assert aws.assumed("s3", "source").get_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    overwrite = lambda: aws.assumed("s3", "source").put_object(Bucket=bucket, Key=key, Body=b"")  # noqa: E731
    assert refused(overwrite)
    target = aws.assumed("dynamodb", "target")
    assert target.describe_table(TableName=table)["Table"]["TableName"] == table
    assert refused(lambda: target.delete_table(TableName=table))


def test_task_logs_are_in_s3_and_readable_once_the_local_copies_are_gone(
    api: AirflowAPI, first_run: str, aws: LabAws, lab: LabSpec
) -> None:
    bucket = aws.settings["lab_aws_log_bucket"]
    prefix = f"task-logs/dag_id={DAG_ID}/run_id={first_run}/task_id=convert/"
    page = aws.admin("s3", "airflow").list_objects_v2(Bucket=bucket, Prefix=prefix)
    keys = [obj["Key"] for obj in page.get("Contents", [])]
    assert keys, f"no log under s3://{bucket}/{prefix}"
    stored = aws.admin("s3", "airflow").get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    for name in lab.group("airflow"):
        folder = f"{LAYOUT.log_dir}/dag_id={DAG_ID}/run_id={first_run}"
        result = lab_host(lab, name).run(f"sudo rm -rf '{folder}' && ! sudo test -e '{folder}'")
        assert result.rc == 0, f"{name}: {result.stderr}"
    (convert,) = [ti for ti in api.task_instances(DAG_ID, first_run) if ti["task_id"] == "convert"]
    text = api.task_log(convert)
    # The API names where it read the log from (the "Log message source details" group).
    assert f"s3://{bucket}/{keys[0]}" in text, text[:2000]
    converted = [event for event in _events(stored) if event.startswith("converted ")]
    assert converted, stored.decode()[-2000:]
    assert converted[0] in text


def _events(stored: bytes) -> list[str]:
    """The messages of a stored log (JSON lines), as the API returns them."""
    events = []
    for line in stored.decode().splitlines():
        try:
            events.append(str(json.loads(line).get("event", "")))
        except (ValueError, AttributeError):
            continue
    return events
