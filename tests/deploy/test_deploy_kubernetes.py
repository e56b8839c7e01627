"""Kubernetes: both overlays render, validate against the API schemas (strict), pass the
hardening policy and hold what issue 6 asks for; broken copies fail each check."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploycheck import DEPLOY_DIR, REPO_ROOT, kube

OVERLAYS = ("dev", "prod")
PROJECT_VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def api_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return kube.find(docs, "Deployment", "rakuten-api")["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(overlay: str, rendered: dict[str, str], tool) -> None:
    tool("kubernetes-validate")
    assert kube.schema_problems(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_the_hardening_policy(overlay: str, docs) -> None:
    assert kube.policy_problems(docs[overlay]) == []


@pytest.mark.parametrize(
    ("overlay", "namespace", "min_replicas"), [("dev", "rakuten-dev", 1), ("prod", "rakuten", 2)]
)
def test_overlay_namespace_and_autoscaling(overlay: str, namespace: str, min_replicas: int, docs) -> None:
    objects = docs[overlay]
    ns = kube.find(objects, "Namespace", namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(d["metadata"].get("namespace") == namespace for d in objects if d["kind"] != "Namespace")
    hpa = kube.find(objects, "HorizontalPodAutoscaler", "rakuten-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == min_replicas
    assert hpa["spec"]["maxReplicas"] > min_replicas
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert set(hpa["spec"]["behavior"]) == {"scaleUp", "scaleDown"}
    assert "replicas" not in kube.find(objects, "Deployment", "rakuten-api")["spec"], "the HPA owns the count"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_deployment(overlay: str, docs) -> None:
    deployment = kube.find(docs[overlay], "Deployment", "rakuten-api")
    pod = deployment["spec"]["template"]["spec"]
    container = api_container(docs[overlay])
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["automountServiceAccountToken"] is False
    assert {"topology.kubernetes.io/zone", "kubernetes.io/hostname"} == {
        c["topologyKey"] for c in pod["topologySpreadConstraints"]
    }
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp", "/var/lib/rakuten"}
    emptydirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert {m["name"] for m in container["volumeMounts"]} <= emptydirs
    assert container["image"] == f"ghcr.io/rakuten-mlops/api:{PROJECT_VERSION}"
    refs = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert any(r.startswith("rakuten-config") for r in refs) and "rakuten-api" in refs
    assert kube.find(docs[overlay], "ServiceAccount", "rakuten-api")["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_network_policy(overlay: str, docs) -> None:
    spec = kube.find(docs[overlay], "NetworkPolicy", "rakuten-api")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    sources = spec["ingress"][0]["from"]
    namespaces = {
        s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for s in sources
        if "namespaceSelector" in s
    }
    assert "ingress-nginx" in namespaces
    assert all(
        s.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "prometheus"
        for s in sources if "podSelector" in s
    )  # fmt: skip
    egress_ports = sorted((p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"])
    assert egress_ports == [(53, "TCP"), (53, "UDP"), (5000, "TCP"), (5432, "TCP")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_pdb_and_services(overlay: str, docs) -> None:
    objects = docs[overlay]
    ingress = kube.find(objects, "Ingress", "rakuten-api")["spec"]
    assert ingress["tls"][0]["hosts"] == [ingress["rules"][0]["host"]]
    paths = {p["path"] for p in ingress["rules"][0]["http"]["paths"]}
    assert "/v1" in paths and "/metrics" not in paths
    assert kube.find(objects, "PodDisruptionBudget", "rakuten-api")["spec"]["maxUnavailable"] == 1
    assert kube.find(objects, "Service", "postgres")["spec"]["clusterIP"] == "None"
    statefulset = kube.find(objects, "StatefulSet", "postgres")
    assert statefulset["spec"]["serviceName"] == "postgres"
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert kube.find(objects, "Service", "mlflow")["spec"]["ports"][0]["port"] == 5000


def test_prod_gets_a_certificate_and_bigger_volumes(docs) -> None:
    prod, dev = docs["prod"], docs["dev"]
    annotations = kube.find(prod, "Ingress", "rakuten-api")["metadata"]["annotations"]
    assert "cert-manager.io/cluster-issuer" in annotations
    size = lambda objs: kube.find(objs, "StatefulSet", "postgres")["spec"]["volumeClaimTemplates"][0]["spec"][  # noqa: E731
        "resources"]["requests"]["storage"]  # fmt: skip
    assert (size(dev), size(prod)) == ("2Gi", "50Gi")


def test_prometheus_configmaps_carry_the_repository_files(docs) -> None:
    configmaps = {
        d["metadata"]["name"].rsplit("-", 1)[0]: d for d in docs["prod"] if d["kind"] == "ConfigMap"
    }
    rules = (DEPLOY_DIR / "prometheus" / "rules" / "rakuten-alerts.yml").read_text()
    assert configmaps["prometheus-rules"]["data"]["rakuten-alerts.yml"] == rules
    config = (DEPLOY_DIR / "prometheus" / "prometheus-k8s.yml").read_text()
    assert configmaps["prometheus-config"]["data"]["prometheus.yml"] == config
    init = (DEPLOY_DIR / "postgres" / "init-databases.sh").read_text()
    assert configmaps["postgres-init"]["data"]["init-databases.sh"] == init


def test_secret_template_is_documentation_only() -> None:
    base = DEPLOY_DIR / "k8s" / "base"
    resources = yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
    assert "secret.example.yaml" not in resources
    secrets = list(yaml.safe_load_all((base / "secret.example.yaml").read_text()))
    assert {s["metadata"]["name"] for s in secrets} == kube.EXTERNAL_SECRETS - {"rakuten-api-tls"}
    for secret in secrets:
        assert "data" not in secret
        for key, value in secret["stringData"].items():
            assert "change-me" in value or key.endswith(("_USER", "_USERNAME")), (key, value)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_image_is_latest(overlay: str, rendered: dict[str, str]) -> None:
    images = re.findall(r"^\s*image:\s*(\S+)", rendered[overlay], re.M)
    assert images and all(kube.image_is_pinned(i) for i in images), images


# ------------------------------------------------------------------ broken copies fail


def swap(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def one_document(rendered: str, kind: str, name: str) -> str:
    """One rendered object as YAML, so a broken-copy test validates only what it broke."""
    return yaml.safe_dump(kube.find(kube.load_documents(rendered), kind, name))


def test_an_invalid_field_fails_schema_validation(rendered: dict[str, str], tool) -> None:
    tool("kubernetes-validate")
    deployment = one_document(rendered["dev"], "Deployment", "rakuten-api")
    broken = swap(deployment, "revisionHistoryLimit: 5", "revisionHistoryLimit: 5\n  replica: 3")
    problems = kube.schema_problems(broken)
    assert any("replica" in p for p in problems), problems
    assert kube.schema_problems(deployment) == []


def test_a_wrong_type_fails_schema_validation(rendered: dict[str, str], tool) -> None:
    tool("kubernetes-validate")
    deployment = one_document(rendered["dev"], "Deployment", "rakuten-api")
    assert kube.schema_problems(swap(deployment, "containerPort: 8000", "containerPort: http-port"))


def test_a_removed_api_version_fails_schema_validation(rendered: dict[str, str], tool) -> None:
    tool("kubernetes-validate")
    hpa = one_document(rendered["dev"], "HorizontalPodAutoscaler", "rakuten-api")
    problems = kube.schema_problems(
        swap(hpa, "apiVersion: autoscaling/v2", "apiVersion: autoscaling/v2beta2")
    )
    assert any("v2beta2" in p for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("image: ghcr.io/rakuten-mlops/api:0.1.0", "image: ghcr.io/rakuten-mlops/api:latest", "not pinned"),
        ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"),
        ("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"),
        (
            "automountServiceAccountToken: false\nkind: ServiceAccount",
            "kind: ServiceAccount",
            "automountServiceAccountToken",
        ),
        ("secretName: rakuten-api-tls", "secretName: rakuten-api-tls-x", None),
    ],
    ids=["latest", "writable-root", "escalation", "sa-token", "harmless"],
)
def test_policy_catches_a_weakened_manifest(
    old: str, new: str, expected: str | None, rendered: dict[str, str]
) -> None:
    problems = kube.policy_problems(kube.load_documents(swap(rendered["dev"], old, new)))
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_a_rendered_secret_is_refused(rendered: dict[str, str]) -> None:
    secret = "\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: oops\nstringData:\n  a: b\n"
    assert any(
        "Secret/oops" in p for p in kube.policy_problems(kube.load_documents(rendered["dev"] + secret))
    )


def test_a_broken_overlay_does_not_render(deploy_copy: Path, tool) -> None:
    tool("kubectl")
    patch = deploy_copy / "k8s" / "overlays" / "dev" / "patches" / "hpa.yaml"
    patch.write_text(patch.read_text().replace("name: rakuten-api", "name: no-such-hpa"))
    with pytest.raises(RuntimeError, match="kustomize"):
        kube.render_overlay(deploy_copy / "k8s" / "overlays" / "dev")
