"""CSV in S3 (account A) to items in DynamoDB (account B), through JSON.

1. **convert** reads the CSV file `source_key` from `source_bucket`, checks it (a header,
   the same number of fields on every line, a unique non-empty `key_column`) and writes its
   rows as JSON to the same bucket, under `staging_prefix`. A malformed file fails the task
   at once, without retries, with the file and line in the message.
2. **load** reads that JSON and writes one item per row to the DynamoDB table
   `target_table`, whose partition key is `key_column`.
3. **cleanup** deletes the JSON once the items are written.

The settings are the JSON Variable `csv_to_json_example` (keys `source_bucket`,
`source_key`, `staging_prefix`, `target_table`, `key_column`), read when a task runs. S3 is
reached through the connection `aws_source` (a role in account A), DynamoDB through
`aws_target` (a role in account B).

**Running a task again changes nothing.** The JSON's key comes from the DAG run
(`<staging_prefix>/csv_to_json_example/<run id>/<file>.json`), so a second try overwrites
the same object. DynamoDB puts replace the item with the same key, so the table holds each
row once however often `load` runs. A `load` cleared after `cleanup` finds no JSON and
converts the CSV again; deleting JSON that is already gone is not an error. The role in
account A needs `s3:ListBucket` on the bucket: without it S3 answers a missing object with
"access denied", not "not found".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Variable, dag, task
from airflow.sdk.exceptions import AirflowFailException
from csv_records import (
    CsvError,
    StagedJsonError,
    from_json,
    parse_csv,
    staging_key,
    to_json,
)

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.dynamodb import DynamoDBHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

DAG_ID = "csv_to_json_example"
SETTINGS_VARIABLE = "csv_to_json_example"
SOURCE_CONN_ID = "aws_source"  # S3 in account A: the CSV files and the staged JSON
TARGET_CONN_ID = "aws_target"  # DynamoDB in account B: the items

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """The Variable csv_to_json_example. Only staging_prefix may be empty (bucket root)."""

    source_bucket: str
    source_key: str
    staging_prefix: str
    target_table: str
    key_column: str

    @property
    def source_url(self) -> str:
        return f"s3://{self.source_bucket}/{self.source_key}"


def load_settings() -> Settings:
    """The settings as they are now; a missing or broken Variable fails without retries."""
    value = Variable.get(SETTINGS_VARIABLE, default=None, deserialize_json=True)
    if value is None:
        raise AirflowFailException(f"Airflow Variable {SETTINGS_VARIABLE!r} is not set")
    if not isinstance(value, dict):
        raise AirflowFailException(
            f"Airflow Variable {SETTINGS_VARIABLE!r} must be a JSON object, "
            f"not {type(value).__name__}"
        )
    found: dict[str, str] = {}
    for field in fields(Settings):
        setting = value.get(field.name)
        if not isinstance(setting, str) or (not setting and field.name != "staging_prefix"):
            raise AirflowFailException(
                f"Airflow Variable {SETTINGS_VARIABLE!r} has no {field.name!r} "
                f"(a non-empty string); it has: {', '.join(sorted(value)) or 'nothing'}"
            )
        found[field.name] = setting
    return Settings(**found)


# --- S3 and DynamoDB. The provider and boto3 are imported, and hooks made, when a task
# runs: parsing the file stays fast and never touches the network.


def source_s3() -> S3Hook:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: PLC0415

    return S3Hook(aws_conn_id=SOURCE_CONN_ID)


def read_object(bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when there is no such object."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    try:
        response = source_s3().get_conn().get_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    data: bytes = response["Body"].read()
    log.info("read s3://%s/%s: %d bytes", bucket, key, len(data))
    return data


def write_object(bucket: str, key: str, data: bytes) -> None:
    source_s3().load_bytes(data, key=key, bucket_name=bucket, replace=True)
    log.info("wrote s3://%s/%s: %d bytes", bucket, key, len(data))


def delete_object(bucket: str, key: str) -> None:
    # One DeleteObject: S3 answers it the same whether or not the object exists.
    source_s3().get_conn().delete_object(Bucket=bucket, Key=key)
    log.info("deleted s3://%s/%s (if it was there)", bucket, key)


def target_table(settings: Settings) -> DynamoDBHook:
    from airflow.providers.amazon.aws.hooks.dynamodb import DynamoDBHook  # noqa: PLC0415

    return DynamoDBHook(
        aws_conn_id=TARGET_CONN_ID,
        table_name=settings.target_table,
        table_keys=[settings.key_column],
    )


def read_source_records(settings: Settings) -> list[dict[str, str]]:
    """The rows of the source CSV; a malformed file fails without retries."""
    data = read_object(settings.source_bucket, settings.source_key)
    if data is None:
        raise FileNotFoundError(f"{settings.source_url} does not exist")
    try:
        return parse_csv(data, source=settings.source_url, key_column=settings.key_column)
    except CsvError as err:
        raise AirflowFailException(f"malformed CSV: {err}") from err


def run_staging_key(settings: Settings, run_id: str | None) -> str:
    if not run_id:
        raise RuntimeError("the task context has no run_id")
    return staging_key(settings.staging_prefix, DAG_ID, run_id, settings.source_key)


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        # A multiplier since Airflow 3.1 (True still works and means 2.0): 30 s, 60 s, 120 s.
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["example", "aws"],
    doc_md=__doc__,
)
def csv_to_json_example() -> None:
    @task
    def convert(run_id: str | None = None) -> dict[str, Any]:
        settings = load_settings()
        records = read_source_records(settings)
        key = run_staging_key(settings, run_id)
        write_object(settings.source_bucket, key, to_json(records))
        log.info("converted %d rows of %s", len(records), settings.source_url)
        return {"staging_key": key, "rows": len(records)}

    @task
    def load(staged: dict[str, Any]) -> dict[str, Any]:
        settings = load_settings()
        key = str(staged["staging_key"])
        url = f"s3://{settings.source_bucket}/{key}"
        data = read_object(settings.source_bucket, key)
        if data is None:
            # cleanup ran already and only this task was cleared: convert again.
            log.warning("%s is gone; reading %s again", url, settings.source_url)
            records = read_source_records(settings)
        else:
            try:
                records = from_json(data, source=url)
            except StagedJsonError as err:
                raise AirflowFailException(f"{err}; clear convert to write it again") from err
        target_table(settings).write_batch_data(records)
        log.info("wrote %d items to DynamoDB table %s", len(records), settings.target_table)
        return {"staging_key": key, "items": len(records)}

    @task
    def cleanup(loaded: dict[str, Any]) -> None:
        settings = load_settings()
        delete_object(settings.source_bucket, str(loaded["staging_key"]))

    cleanup(load(convert()))


csv_to_json_example()
