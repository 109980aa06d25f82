#!/usr/bin/env python3
"""The lab's AWS endpoint: moto in server mode, with IAM authentication and authorisation on.

moto keeps everything in memory and hands out access keys of its own choosing. Before it
serves, this seeds the IAM users of a JSON file (--identities) with the access keys written
there, which come from the inventory's vault: the lab's Airflow hosts and the provisioning
playbook use those keys, as they would use keys of real AWS accounts. Everything else
(roles, policies, buckets, tables) is created through the AWS APIs afterwards.

Identities file: a list of {"account_id", "user", "access_key_id", "secret_access_key",
"admin"}; an admin gets an inline policy allowing every action in its account.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

# Every request is authenticated (the access key must exist) and authorised (the caller's
# IAM policies must allow the action): read by moto.settings at import.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"

from moto.iam.models import iam_backends
from moto.server import main as serve

PARTITION = "aws"
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
FIELDS = ("account_id", "user", "access_key_id", "secret_access_key")


def seed(identity: dict[str, Any]) -> None:
    """Create the IAM user with exactly the access key of the identity."""
    missing = [field for field in FIELDS if not str(identity.get(field) or "")]
    if missing:
        sys.exit(f"identity {identity.get('user', '?')}: missing {', '.join(missing)}")
    backend = iam_backends[str(identity["account_id"])][PARTITION]
    backend.create_user("us-east-1", identity["user"])
    key = backend.create_access_key(identity["user"])
    # moto indexes keys by id: move the generated key to the wanted id and secret.
    del backend.access_keys[key.physical_resource_id]
    key.access_key_id = identity["access_key_id"]
    key.secret_access_key = identity["secret_access_key"]
    backend.access_keys[key.physical_resource_id] = key
    if identity.get("admin"):
        backend.put_user_policy(identity["user"], "admin", json.dumps(ADMIN_POLICY))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=Path, required=True, help="JSON file (above)")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on")
    args = parser.parse_args()
    for identity in json.loads(args.identities.read_text()):
        seed(identity)
    # moto's own server (werkzeug, threaded) in this process, so the seeded users are there.
    serve(["--host", args.address, "--port", str(args.port)])


if __name__ == "__main__":
    main()
