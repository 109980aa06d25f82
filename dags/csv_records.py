"""CSV to JSON records for csv_to_json_example: plain Python, no I/O, tested on its own.

A CSV file becomes a list of records, one per row: column name -> value, all strings (CSV
has no types, so nothing is guessed), in the header's column order. Anything that does not
read as a clean table fails with CsvError, whose message names the file and the line:
rows are never dropped, padded or merged behind the user's back.

The DAG processor skips this file (.airflowignore); tasks import it from the bundle root.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator

_UNSAFE_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


class CsvError(ValueError):
    """A CSV file that cannot be turned into records; the message names the file and line."""


class StagedJsonError(ValueError):
    """Staged JSON that is not a list of records with string values."""


def parse_csv(data: bytes, *, source: str, key_column: str) -> list[dict[str, str]]:
    """The rows of `data` (UTF-8 CSV with a header) as records; `source` names it in errors.

    Every row needs a non-empty `key_column` value, unique in the file. A file with a
    header and no rows gives []; a file without even a header is an error.
    """
    text = _decode(data, source)
    rows = _rows(text, source)
    # An empty export is a broken export: nothing but white space is not a header.
    first = next(rows, None) if text.strip() else None
    if first is None:
        raise CsvError(f"{source}: empty file: no header row")
    header_line, header = first
    key_index = _key_index(header, header_line, key_column, source)
    records: list[dict[str, str]] = []
    first_seen: dict[str, int] = {}
    for line, row in rows:
        if len(row) != len(header):
            raise CsvError(f"{source}: line {line}: expected {len(header)} fields, got {len(row)}")
        key = row[key_index]
        if not key.strip():
            raise CsvError(f"{source}: line {line}: empty value in key column {key_column!r}")
        if key in first_seen:
            raise CsvError(
                f"{source}: line {line}: duplicate {key_column} {key!r} "
                f"(also on line {first_seen[key]})"
            )
        first_seen[key] = line
        records.append(dict(zip(header, row, strict=True)))
    return records


def _decode(data: bytes, source: str) -> str:
    """UTF-8 text without a leading byte order mark."""
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = bom + err.start
        line = data[:offset].count(b"\n") + 1
        raise CsvError(f"{source}: line {line}: not UTF-8 (byte offset {offset})") from err


def _rows(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, fields) for every record; blank lines are left out."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        # line_num counts the physical lines read so far, so after a record with a quoted
        # line break it is that record's last line: note the start before reading.
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise CsvError(f"{source}: line {line}: bad CSV: {err}") from err
        if row:
            yield line, row


def _key_index(header: list[str], line: int, key_column: str, source: str) -> int:
    """Where `key_column` is in a header that names every column once."""
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise CsvError(f"{source}: line {line}: header column {position} has no name")
        if name in seen:
            raise CsvError(f"{source}: line {line}: header names column {name!r} twice")
        seen.add(name)
    if key_column not in seen:
        raise CsvError(
            f"{source}: line {line}: no key column {key_column!r} in the header; "
            f"columns: {', '.join(header)}"
        )
    return header.index(key_column)


def to_json(records: list[dict[str, str]]) -> bytes:
    """`records` as a UTF-8 JSON array, one record a line; equal input gives equal bytes."""
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    if not lines:
        return b"[]\n"
    return ("[\n" + ",\n".join(lines) + "\n]\n").encode("utf-8")


def from_json(data: bytes, *, source: str) -> list[dict[str, str]]:
    """The records that to_json wrote; anything else raises StagedJsonError naming `source`."""
    try:
        loaded = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise StagedJsonError(f"{source}: not UTF-8 (byte offset {err.start})") from err
    except json.JSONDecodeError as err:
        raise StagedJsonError(f"{source}: not JSON: {err}") from err
    if not isinstance(loaded, list):
        raise StagedJsonError(f"{source}: expected a JSON array, got {type(loaded).__name__}")
    records: list[dict[str, str]] = []
    for number, record in enumerate(loaded, start=1):
        if not isinstance(record, dict):
            raise StagedJsonError(
                f"{source}: item {number}: expected an object, got {type(record).__name__}"
            )
        for name, value in record.items():
            if not isinstance(value, str):
                raise StagedJsonError(
                    f"{source}: item {number}: {name!r} is {type(value).__name__}, not a string"
                )
        records.append(record)
    return records


def staging_key(prefix: str, dag_id: str, run_id: str, source_key: str) -> str:
    """Where a run stages the JSON of `source_key`: the same run always gets the same key.

    <prefix>/<dag_id>/<run_id>/<file name without .csv>.json, with characters that are
    awkward in S3 keys (':', '+', spaces, ...) replaced by '_' in the last three parts.
    """
    name = source_key.rsplit("/", 1)[-1]
    if name.lower().endswith(".csv"):
        name = name[: -len(".csv")]
    if not name:
        raise ValueError(f"source key {source_key!r} names no file")
    parts = [prefix.strip("/"), _safe(dag_id), _safe(run_id), _safe(name) + ".json"]
    return "/".join(part for part in parts if part)


def _safe(part: str) -> str:
    return _UNSAFE_KEY_CHARACTERS.sub("_", part)
