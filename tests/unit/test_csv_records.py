"""dags/csv_records.py: CSV to records and JSON for csv_to_json_example, and its failures.

The module lives in the DAG folder (the workers import it from there), so it is loaded
from its path rather than as a package.
"""

from __future__ import annotations

import json

import pytest

from clusterops.paths import PROJECT_ROOT
from tests import dag_helpers

SOURCE = "s3://bucket/incoming/data.csv"
EXAMPLE_DATA = PROJECT_ROOT / "playbooks" / "lab" / "files" / "example-data.csv"


csv_records = dag_helpers.load("csv_records")


def parse(data: bytes, key_column: str = "Id") -> list[dict[str, str]]:
    records: list[dict[str, str]] = csv_records.parse_csv(
        data, source=SOURCE, key_column=key_column
    )
    return records


def error(data: bytes, key_column: str = "Id") -> str:
    with pytest.raises(csv_records.CsvError) as raised:
        parse(data, key_column)
    return str(raised.value)


def test_quoted_commas_quotes_and_line_breaks_are_kept_exactly() -> None:
    data = (
        b"Id,Name,Note\r\n"
        b'1,"Carter, Jamie","said ""hi"""\r\n'
        b'2,"two\nlines","a\r\nb"\r\n'
        b"3,plain,\r\n"
    )
    assert parse(data) == [
        {"Id": "1", "Name": "Carter, Jamie", "Note": 'said "hi"'},
        {"Id": "2", "Name": "two\nlines", "Note": "a\r\nb"},
        {"Id": "3", "Name": "plain", "Note": ""},
    ]


def test_values_stay_strings_in_column_order() -> None:
    records = parse(b"Name,Id,Enabled,Number\nx,007,true,1.50\n")
    assert records == [{"Name": "x", "Id": "007", "Enabled": "true", "Number": "1.50"}]
    assert list(records[0]) == ["Name", "Id", "Enabled", "Number"]


@pytest.mark.parametrize("data", [b"", b"\n", b"  \r\n\t\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_an_error(data: bytes) -> None:
    assert error(data) == f"{SOURCE}: empty file: no header row"


def test_a_header_without_rows_gives_no_records() -> None:
    assert parse(b"Id,Name\n") == []
    assert parse(b"Id,Name") == []


def test_blank_lines_are_skipped() -> None:
    assert parse(b"Id,Name\n\n1,a\n\n\n2,b\n\n") == [
        {"Id": "1", "Name": "a"},
        {"Id": "2", "Name": "b"},
    ]


def test_a_byte_order_mark_is_not_part_of_the_first_column_name() -> None:
    records = parse(b"\xef\xbb\xbfId,Name\n1,a\n")
    assert records == [{"Id": "1", "Name": "a"}]
    assert next(iter(records[0])) == "Id"


def test_unicode_survives_csv_json_and_back() -> None:
    data = "Id,Name\n1,Zoë\n2,Łukasz\n3,渡辺\n4,🙂 ok\n".encode()
    records = parse(data)
    assert [record["Name"] for record in records] == ["Zoë", "Łukasz", "渡辺", "🙂 ok"]
    staged = csv_records.to_json(records)
    assert "Zoë".encode() in staged  # UTF-8 as is, not \u escapes
    assert b"\\u" not in staged
    assert csv_records.from_json(staged, source="s3://bucket/staged.json") == records


@pytest.mark.parametrize(
    ("row", "got"),
    [(b"2,b", 2), (b"2,b,c,d", 4), (b"2", 1)],
)
def test_a_row_with_another_number_of_fields_names_its_line(row: bytes, got: int) -> None:
    data = b"Id,Name,Note\n1,a,x\n" + row + b"\n3,c,z\n"
    assert error(data) == f"{SOURCE}: line 3: expected 3 fields, got {got}"


def test_line_numbers_count_from_where_a_record_starts() -> None:
    # Record 1 spans lines 2-4; the short record starts on line 6 (after a blank line).
    data = b'Id,Note\n1,"one\ntwo\nthree"\n\n2\n'
    assert error(data) == f"{SOURCE}: line 6: expected 2 fields, got 1"


def test_an_unterminated_quote_names_the_line_it_starts_on() -> None:
    data = b'Id,Name\n1,a\n2,"never closed\n3,c\n'
    assert error(data) == f"{SOURCE}: line 3: bad CSV: unexpected end of data"


def test_text_after_a_closing_quote_is_an_error() -> None:
    data = b'Id,Name\n1,"a"b\n'
    assert error(data) == f"{SOURCE}: line 2: bad CSV: ',' expected after '\"'"


def test_invalid_utf8_names_line_and_byte_offset() -> None:
    data = b"Id,Name\n1,a\n2,caf\xe9\n"
    assert error(data) == f"{SOURCE}: line 3: not UTF-8 (byte offset 17)"


def test_invalid_utf8_offset_counts_the_byte_order_mark() -> None:
    assert error(b"\xef\xbb\xbfId\n\xff\n") == f"{SOURCE}: line 2: not UTF-8 (byte offset 6)"


def test_a_duplicate_key_names_both_lines() -> None:
    data = b"Id,Name\n1,a\n2,b\n1,c\n"
    assert error(data) == f"{SOURCE}: line 4: duplicate Id '1' (also on line 2)"


@pytest.mark.parametrize("key", [b"", b"  ", b'""'])
def test_an_empty_key_is_an_error(key: bytes) -> None:
    data = b"Name,Id\na,1\nb," + key + b"\n"
    assert error(data) == f"{SOURCE}: line 3: empty value in key column 'Id'"


def test_a_missing_key_column_lists_the_columns() -> None:
    data = b"id,Name,Enabled\n1,a,true\n"
    assert error(data) == (
        f"{SOURCE}: line 1: no key column 'Id' in the header; columns: id, Name, Enabled"
    )


def test_a_duplicate_column_name_is_an_error() -> None:
    assert error(b"Id,Name,Name\n1,a,b\n") == f"{SOURCE}: line 1: header names column 'Name' twice"


def test_an_empty_column_name_is_an_error() -> None:
    assert error(b"Id,,Note\n1,a,b\n") == f"{SOURCE}: line 1: header column 2 has no name"


def test_to_json_is_deterministic_and_keeps_column_order() -> None:
    records = [{"Id": "2", "B": "x"}, {"Id": "1", "A": 'q"\n'}]
    first = csv_records.to_json(records)
    assert first == csv_records.to_json([dict(record) for record in records])
    assert first == b'[\n{"Id": "2", "B": "x"},\n{"Id": "1", "A": "q\\"\\n"}\n]\n'
    assert json.loads(first) == records
    assert csv_records.to_json([]) == b"[]\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{}", "expected a JSON array, got dict"),
        (b'[{"Id": "1"}, ["x"]]', "item 2: expected an object, got list"),
        (b'[{"Id": 1}]', "item 1: 'Id' is int, not a string"),
        (b'[{"Id": null}]', "item 1: 'Id' is NoneType, not a string"),
        (b"[", "not JSON: Expecting value: line 1 column 2 (char 1)"),
        (b'["\xff"]', "not UTF-8 (byte offset 2)"),
    ],
)
def test_from_json_accepts_only_records_of_strings(data: bytes, message: str) -> None:
    with pytest.raises(csv_records.StagedJsonError) as raised:
        csv_records.from_json(data, source="s3://bucket/staged.json")
    assert str(raised.value) == f"s3://bucket/staged.json: {message}"


def test_staging_key_is_derived_from_the_run() -> None:
    run_id = "manual__2026-01-02T03:04:05.678+00:00"
    key = csv_records.staging_key("staging", "csv_to_json_example", run_id, "in/data.csv")
    assert key == "staging/csv_to_json_example/manual__2026-01-02T03_04_05.678_00_00/data.json"
    assert csv_records.staging_key("staging/", "csv_to_json_example", run_id, "in/data.csv") == key
    assert csv_records.staging_key("staging", "csv_to_json_example", run_id, "in/data.csv") == key


@pytest.mark.parametrize(
    ("prefix", "run_id", "source_key", "expected"),
    [
        ("", "run 1", "data.csv", "d/run_1/data.json"),
        ("/a/b/", "r", "x/y/Export File.CSV", "a/b/d/r/Export_File.json"),
        ("p", "scheduled__2026+x", "no-suffix", "p/d/scheduled__2026_x/no-suffix.json"),
    ],
)
def test_staging_key_sanitizes_awkward_characters(
    prefix: str, run_id: str, source_key: str, expected: str
) -> None:
    assert csv_records.staging_key(prefix, "d", run_id, source_key) == expected


def test_staging_key_needs_a_file_name() -> None:
    with pytest.raises(ValueError, match="names no file"):
        csv_records.staging_key("p", "d", "r", "folder/")


def test_the_lab_example_data_parses() -> None:
    records = parse(EXAMPLE_DATA.read_bytes())
    assert len(records) == 25
    assert list(records[0]) == ["Id", "Name", "Enabled", "FavouriteNumber"]
    names = {record["Name"] for record in records}
    assert {"Carter, Jamie", 'Dana "Dee" Lindqvist', "Zoë Fontaine", "渡辺 健"} <= names
    assert any(record["FavouriteNumber"] == "" for record in records)
