"""Least privilege in docker compose and Kubernetes: each service receives only the secrets it
uses, and the MLflow registry requires a login (separate trainer, API and admin identities; the UI
talks to the API only)."""

from __future__ import annotations

import configparser
import re
from typing import Any

import pytest
import yaml
from deploycheck import DEPLOY_DIR, REPO_ROOT, compose, kube

ENV_REFERENCE_RE = re.compile(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)(?::?[-?][^}]*)?\}")
# Which compose service may receive which secret of .env, and why (what it does with it).
EXPECTED_SECRETS: dict[str, set[str]] = {
    "postgres": {  # creates the roles
        "POSTGRES_PASSWORD",
        "MLFLOW_DB_PASSWORD",
        "APP_DB_PASSWORD",
        "APP_RW_DB_PASSWORD",
        "APP_READER_DB_PASSWORD",
        "AIRFLOW_DB_PASSWORD",
    },
    "redis": {"REDIS_PASSWORD"},
    "mlflow": {"MLFLOW_DB_PASSWORD", "MLFLOW_ADMIN_PASSWORD"},
    "mlflow-init": {  # creates the identities
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_TRAINER_PASSWORD",
        "MLFLOW_API_PASSWORD",
    },
    "app-migrate": {"APP_DB_PASSWORD"},  # the owner role: DDL
    "api": {
        "RAKUTEN_JWT_SECRET",
        "APP_RW_DB_PASSWORD",
        "RAKUTEN_BOOTSTRAP_ADMIN_PASSWORD",
        "RAKUTEN_SERVICE_ACCOUNT_PASSWORD",
        "RAKUTEN_MODEL_SIGNING_KEY",
        "REDIS_PASSWORD",
        "MLFLOW_API_PASSWORD",
    },
    "ui": set(),  # models, monitoring and data through the API, with the user's own token
    "grafana": {"GRAFANA_ADMIN_PASSWORD"},
    "prometheus": set(),
}
AIRFLOW_CORE = {
    "AIRFLOW_FERNET_KEY", "AIRFLOW_DB_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
}  # fmt: skip
EXPECTED_SECRETS.update(
    {
        "airflow-init": AIRFLOW_CORE | {"AIRFLOW_ADMIN_PASSWORD"},
        "airflow-apiserver": AIRFLOW_CORE,
        "airflow-scheduler": AIRFLOW_CORE,
        "airflow-dag-processor": AIRFLOW_CORE,
        # Only the worker runs tasks: training (trainer login, signing key), monitoring
        # (read-only app role) and the champion reload (API account).
        "airflow-worker": AIRFLOW_CORE
        | {
            "MLFLOW_TRAINER_PASSWORD",
            "RAKUTEN_MODEL_SIGNING_KEY",
            "APP_READER_DB_PASSWORD",
            "RAKUTEN_SERVICE_ACCOUNT_PASSWORD",
        },
    }
)


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY_DIR / "compose.yaml").read_text())


def secret_names() -> set[str]:
    """The variables .env.example holds as `change-me`: every secret of the deployment."""
    text = (REPO_ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=change-me$", text, re.M))


def received(service: dict[str, Any]) -> set[str]:
    """The secrets a service receives, through its environment or its command line."""
    text = yaml.safe_dump({"environment": service.get("environment"), "command": service.get("command")})
    return set(ENV_REFERENCE_RE.findall(text)) & secret_names()


def test_every_service_receives_exactly_the_secrets_it_uses(data: dict[str, Any]) -> None:
    services = data["services"]
    assert set(services) == set(EXPECTED_SECRETS)
    for name, service in services.items():
        assert received(service) == EXPECTED_SECRETS[name], name


def test_the_policy_table_names_only_real_secrets() -> None:
    assert set().union(*EXPECTED_SECRETS.values()) <= secret_names()


@pytest.mark.parametrize(
    ("secret", "holders"),
    [
        ("RAKUTEN_JWT_SECRET", {"api"}),
        ("APP_DB_PASSWORD", {"postgres", "app-migrate"}),
        ("RAKUTEN_MODEL_SIGNING_KEY", {"api", "airflow-worker"}),
        ("MLFLOW_TRAINER_PASSWORD", {"airflow-worker", "mlflow-init"}),
    ],
)
def test_the_most_sensitive_secrets_stay_with_their_users(data: dict[str, Any], secret, holders) -> None:
    assert {n for n, s in data["services"].items() if secret in received(s)} == holders


def test_a_secret_given_to_one_more_service_is_caught(data: dict[str, Any]) -> None:
    ui = {**data["services"]["ui"]}
    ui["environment"] = {**ui["environment"], "RAKUTEN_JWT_SECRET": "${RAKUTEN_JWT_SECRET:?set it}"}
    assert received(ui) != EXPECTED_SECRETS["ui"]


def _auth_ini() -> configparser.ConfigParser:
    ini = configparser.ConfigParser()
    ini.read(DEPLOY_DIR / "mlflow" / "basic_auth.ini")
    return ini


def test_mlflow_runs_the_basic_auth_app_in_compose(data: dict[str, Any]) -> None:
    mlflow = data["services"]["mlflow"]
    assert "--app-name=basic-auth" in mlflow["command"]
    env = mlflow["environment"]
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow-auth/basic_auth.ini"
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    assert "./mlflow/basic_auth.ini:/etc/mlflow-auth/basic_auth.ini:ro" in mlflow["volumes"]
    ini = _auth_ini()["mlflow"]
    assert ini["default_permission"] == "READ"
    assert ini["database_uri"].startswith("sqlite:////var/lib/mlflow-auth/")  # not in the artifact store
    assert "admin_password" not in ini
    assert "mlflow-auth:/var/lib/mlflow-auth" in mlflow["volumes"]
    # Every client logs in with its own identity.
    for service, user in (("api", "MLFLOW_API_USER"), ("airflow-worker", "MLFLOW_TRAINER_USER")):
        env = data["services"][service]["environment"]
        assert env["MLFLOW_TRACKING_USERNAME"].startswith("${" + user)
    assert (
        data["services"]["api"]["depends_on"]["mlflow-init"]["condition"] == "service_completed_successfully"
    )


def test_mlflow_image_has_the_auth_app() -> None:
    requirements = (DEPLOY_DIR / "docker" / "mlflow-requirements.txt").read_text()
    assert re.search(r"^Flask-WTF==\d", requirements, re.M)


def test_the_identity_script_is_mounted_and_creates_two_identities(data: dict[str, Any]) -> None:
    init = data["services"]["mlflow-init"]
    assert init["command"] == ["python", "/etc/mlflow-auth/create-users.py"]
    script = (DEPLOY_DIR / "mlflow" / "create-users.py").read_text()
    assert '("TRAINER", "API")' in script and "registered-models/permissions/create" in script
    # Every identity the script reads is one that mlflow-init receives, and none is left over.
    roles = set(re.findall(r'"([A-Z]+)"', script.split("for role in", 1)[1].split(":", 1)[0]))
    given = {
        k.removeprefix("MLFLOW_").removesuffix("_USER") for k in init["environment"] if k.endswith("_USER")
    }
    assert roles == given == {"TRAINER", "API"}


# Variables that give a container the database, the MLflow registry or the model files.
BACKEND_VARIABLES = {
    "RAKUTEN_DATABASE_URL",
    "RAKUTEN_MLFLOW_TRACKING_URI",
    "RAKUTEN_MLFLOW_REGISTRY_URI",
    "RAKUTEN_MODEL_NAME",
    "RAKUTEN_WORKER_HOME",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
}


def ui_backend_access(ui: dict[str, Any]) -> list[str]:
    """What the UI service could reach besides the API: backend variables, volumes, dependencies."""
    problems = sorted(set(ui.get("environment") or {}) & BACKEND_VARIABLES)
    problems += [f"volume {v}" for v in ui.get("volumes", [])]
    problems += [f"depends on {d}" for d in ui.get("depends_on", {}) if d != "api"]
    return problems


def test_the_ui_reaches_the_api_only(data: dict[str, Any]) -> None:
    ui = data["services"]["ui"]
    assert ui_backend_access(ui) == []
    assert ui["environment"]["RAKUTEN_API_URL"] == "http://api:8000"
    assert ui["read_only"] is True and set(ui["tmpfs"]) == {"/tmp", "/home/rakuten"}  # no home volume


@pytest.mark.parametrize(
    ("change", "caught"),
    [
        ({"environment": {"RAKUTEN_DATABASE_URL": "postgresql://x"}}, "RAKUTEN_DATABASE_URL"),
        ({"environment": {"MLFLOW_TRACKING_USERNAME": "ui"}}, "MLFLOW_TRACKING_USERNAME"),
        ({"volumes": ["worker-home:/var/lib/rakuten:ro"]}, "volume worker-home:/var/lib/rakuten:ro"),
        ({"depends_on": {"mlflow": {"condition": "service_healthy"}}}, "depends on mlflow"),
    ],
)
def test_a_backend_given_back_to_the_ui_is_caught(data: dict[str, Any], change, caught: str) -> None:
    ui = {**data["services"]["ui"]}
    for key, value in change.items():
        old = ui.get(key) or ({} if isinstance(value, dict) else [])
        ui[key] = {**old, **value} if isinstance(value, dict) else [*old, *value]
    assert caught in ui_backend_access(ui)


def test_the_api_reads_the_worker_home_read_only(data: dict[str, Any]) -> None:
    api = data["services"]["api"]
    worker_home = api["environment"]["RAKUTEN_WORKER_HOME"]
    assert f"worker-home:{worker_home}:ro" in api["volumes"]
    assert api["environment"]["RAKUTEN_HOME"] != worker_home  # its own home stays writable
    assert "api-home:/var/lib/rakuten" in api["volumes"]
    # The same volume the worker writes its pipeline and monitoring runs to.
    worker = data["services"]["airflow-worker"]
    assert f"worker-home:{compose.environment(worker)['RAKUTEN_HOME']}" in worker["volumes"]


# ------------------------------------------------------------------ Kubernetes


def _pod(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return kube.find(docs, kind, name)["spec"]["template"]["spec"]


def _secrets_of(container: dict[str, Any]) -> set[str]:
    names = {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
    names |= {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    return names


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kubernetes_workloads_get_only_their_secrets(overlay: str, docs) -> None:
    objects = docs[overlay]
    api = _pod(objects, "Deployment", "rakuten-api")
    assert [_secrets_of(c) for c in api["containers"]] == [{"rakuten-api"}]
    assert [_secrets_of(c) for c in api["initContainers"]] == [{"rakuten-app-owner"}]  # owner: migrate only
    assert [_secrets_of(c) for c in _pod(objects, "Deployment", "mlflow")["containers"]] == [
        {"rakuten-mlflow"}
    ]
    assert [_secrets_of(c) for c in _pod(objects, "StatefulSet", "postgres")["containers"]] == [
        {"rakuten-postgres"}
    ]
    assert [_secrets_of(c) for c in _pod(objects, "Deployment", "prometheus")["containers"]] == [set()]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kubernetes_mlflow_runs_the_basic_auth_app(overlay: str, docs) -> None:
    objects = docs[overlay]
    pod = _pod(objects, "Deployment", "mlflow")
    [container] = pod["containers"]
    assert container["command"][:4] == ["mlflow", "server", "--app-name", "basic-auth"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow-auth/basic_auth.ini"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/var/lib/mlflow-auth"]]["persistentVolumeClaim"]["claimName"] == "mlflow-auth"
    config = kube.find(objects, "ConfigMap", volumes[mounts["/etc/mlflow-auth"]]["configMap"]["name"])
    assert config["data"]["basic_auth.ini"] == (DEPLOY_DIR / "mlflow" / "basic_auth.ini").read_text()


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kubernetes_network_is_default_deny_with_explicit_allows(overlay: str, docs) -> None:
    objects = docs[overlay]
    deny = kube.find(objects, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    policies = [
        d for d in objects if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] != "default-deny"
    ]
    for kind, name in (
        ("Deployment", "rakuten-api"), ("Deployment", "mlflow"), ("StatefulSet", "postgres"),
        ("Deployment", "prometheus"),
    ):  # fmt: skip
        labels = kube.find(objects, kind, name)["spec"]["template"]["metadata"]["labels"]
        own = [
            p for p in policies
            if all(labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())
        ]  # fmt: skip
        assert own, f"{kind}/{name} has no NetworkPolicy of its own"
        assert all(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in own), name
    postgres = kube.find(objects, "NetworkPolicy", "postgres")["spec"]
    assert [p["port"] for rule in postgres["egress"] for p in rule["ports"]] == [53, 53]  # DNS only


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kubernetes_ingress_rate_limits(overlay: str, docs) -> None:
    objects = docs[overlay]
    api = kube.find(objects, "Ingress", "rakuten-api")["metadata"]["annotations"]
    login = kube.find(objects, "Ingress", "rakuten-api-login")
    notes = login["metadata"]["annotations"]
    assert int(api["nginx.ingress.kubernetes.io/limit-rps"]) > 0
    assert int(api["nginx.ingress.kubernetes.io/limit-connections"]) > 0
    assert int(notes["nginx.ingress.kubernetes.io/limit-rpm"]) < 60 * int(
        api["nginx.ingress.kubernetes.io/limit-rps"]
    )
    assert [p["path"] for p in login["spec"]["rules"][0]["http"]["paths"]] == ["/v1/auth/token"]
    main = kube.find(objects, "Ingress", "rakuten-api")["spec"]
    assert login["spec"]["rules"][0]["host"] == main["rules"][0]["host"]
    assert login["spec"]["tls"] == main["tls"]
