"""Create the MLflow identities (idempotent), logged in as the admin of the basic-auth app.

    MLFLOW_TRACKING_URI=http://mlflow:5000 MLFLOW_AUTH_ADMIN_USERNAME=... MLFLOW_AUTH_ADMIN_PASSWORD=... \
    MLFLOW_TRAINER_USER=trainer MLFLOW_TRAINER_PASSWORD=... MLFLOW_API_USER=api MLFLOW_API_PASSWORD=... \
    python create-users.py

Identities: the trainer (MANAGE on the registered model RAKUTEN_MODEL_NAME: registers versions
and moves the champion alias) and the API (the server's default READ: it can read the registry,
never change it). The UI has none: it reads the registry through the API. An identity whose
variables are unset is skipped. Standard library only.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ.get("MLFLOW_TRACKING_URI", "http://mlflow:5000").rstrip("/")
ADMIN = (os.environ["MLFLOW_AUTH_ADMIN_USERNAME"], os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"])
MODEL = os.environ.get("RAKUTEN_MODEL_NAME", "rakuten-product-classifier")


def call(method: str, path: str, body: dict[str, str]) -> int:
    auth = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    request = urllib.request.Request(
        f"{URL}{path}", data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def main() -> int:
    for role in ("TRAINER", "API"):
        user, password = os.environ.get(f"MLFLOW_{role}_USER"), os.environ.get(f"MLFLOW_{role}_PASSWORD")
        if not user or not password:
            print(f"create-users: MLFLOW_{role}_USER/PASSWORD unset, skipped")
            continue
        identity = {"username": user, "password": os.environ[f"MLFLOW_{role}_PASSWORD"]}
        status = call("POST", "/api/2.0/mlflow/users/create", identity)
        if status not in (200, 400, 409):  # 400/409: the user exists already
            print(f"create-users: creating {user!r} failed with HTTP {status}", file=sys.stderr)
            return 1
        if role == "TRAINER":
            grant = {"name": MODEL, "username": user, "permission": "MANAGE"}
            status = call("POST", "/api/2.0/mlflow/registered-models/permissions/create", grant)
            if status not in (200, 400, 409):
                status = call("PATCH", "/api/2.0/mlflow/registered-models/permissions/update", grant)
            print(f"create-users: {user!r} may manage model {MODEL!r} (HTTP {status})")
        print(f"create-users: {user!r} ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
