"""Which encrypted values of Airflow's database the first key of [core] fernet_key decrypts.

    with-airflow-env python fernet-check.py

Prints one JSON object: how many encrypted values were read (connections' passwords and
extras, variables, triggers' arguments) and which ones the first key alone does not
decrypt (by table and id, never a value). playbooks/rotate_fernet_key.yml runs it after
`airflow rotate-fernet-key`, before the retired key may be dropped. Exit 0 when every value
decrypts, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import sys

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import create_engine, text

# Each table's encrypted columns, and the flag column saying whether a row's value is encrypted
# (None: always encrypted).
ENCRYPTED: dict[str, list[tuple[str, str | None]]] = {
    "connection": [("password", "is_encrypted"), ("extra", "is_extra_encrypted")],
    "variable": [("val", "is_encrypted")],
    "trigger": [("kwargs", None)],
}


def main() -> int:
    first = Fernet(os.environ["AIRFLOW__CORE__FERNET_KEY"].split(",")[0].encode())
    engine = create_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    checked, undecryptable = 0, []
    with engine.connect() as connection:
        for table, columns in ENCRYPTED.items():
            for column, flag in columns:
                where = f"{column} IS NOT NULL" + (f" AND {flag}" if flag else "")
                query = text(f"SELECT id, {column} FROM {table} WHERE {where}")  # noqa: S608 -- names above
                for row_id, value in connection.execute(query):
                    checked += 1
                    try:
                        first.decrypt(value.encode())
                    except InvalidToken:
                        undecryptable.append(f"{table}.{column} id {row_id}")
    print(json.dumps({"checked": checked, "undecryptable": undecryptable}))
    return 1 if undecryptable else 0


if __name__ == "__main__":
    sys.exit(main())
