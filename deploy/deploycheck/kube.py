"""Kubernetes manifests: render an overlay with `kubectl kustomize`, validate it against the
API schemas (`kubernetes-validate --strict`), and check the project's hardening policy."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from deploycheck.dockerfiles import image_is_pinned
from deploycheck.tools import require_tool, run

# Oldest and newest Kubernetes minors whose schemas kubernetes-validate ships offline.
K8S_VERSIONS = ("1.33.0", "1.37.0")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
# Created with `kubectl create secret`, never rendered (deploy/k8s/base/secret.example.yaml).
EXTERNAL_SECRETS = {
    "rakuten-api", "rakuten-app-owner", "rakuten-mlflow", "rakuten-postgres", "rakuten-api-tls",
}  # fmt: skip


def render_overlay(overlay_dir: Path) -> str:
    """`kubectl kustomize <overlay>`; raises RuntimeError with kustomize's message on failure."""
    result = run([require_tool("kubectl"), "kustomize", str(overlay_dir)])
    if not result.ok:
        raise RuntimeError(f"kubectl kustomize {overlay_dir} failed:\n{result.output}")
    return result.output


def load_documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def schema_problems(manifests: str, versions: tuple[str, ...] = K8S_VERSIONS) -> list[str]:
    """`kubernetes-validate --strict` on the rendered manifests; unknown kinds count as errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(manifests)
        path = Path(handle.name)
    try:
        args = [require_tool("kubernetes-validate"), "--strict", "--quiet"]
        for version in versions:
            args += ["-k", version]
        result = run([*args, str(path)])
    finally:
        path.unlink()
    problems = [
        line.replace(str(path), "<manifests>")
        for line in result.output.splitlines()
        if line.startswith(("ERROR", "WARN", "FATAL"))
    ]
    if not result.ok and not problems:
        problems.append(f"kubernetes-validate exited {result.returncode}: {result.output.strip()}")
    return problems


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.get("spec", {}).get("template", {}).get("spec", {})


def _container_problems(
    where: str, pod: dict[str, Any], container: dict[str, Any], init: bool = False
) -> list[str]:
    problems = []
    image = container.get("image", "")
    if not image_is_pinned(image):
        problems.append(f"{where}: image {image!r} is not pinned to a version")
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in resources.get(kind, {}):
                problems.append(f"{where}: no resources.{kind}.{res}")
    sc = container.get("securityContext", {})
    psc = pod.get("securityContext", {})
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem must be true")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problems.append(f"{where}: capabilities must drop ALL")
    if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
        problems.append(f"{where}: runAsNonRoot must be true")
    seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
    if seccomp.get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile must be RuntimeDefault")
    for probe in ("readinessProbe", "livenessProbe"):
        if not init and probe not in container:  # init containers run to completion: no probes
            problems.append(f"{where}: no {probe}")
    return problems


def policy_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Hardening and consistency rules for a rendered overlay."""
    problems: list[str] = []
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    configmaps = {n for k, n in names if k == "ConfigMap"}
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "Secret":
            problems.append(f"Secret/{name} is rendered: secrets are created with kubectl, not kept in git")
        if kind == "ServiceAccount" and doc.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{name}: automountServiceAccountToken must be false")
        if kind == "Ingress" and not doc.get("spec", {}).get("tls"):
            problems.append(f"Ingress/{name}: no TLS")
        if kind == "HorizontalPodAutoscaler":
            spec = doc.get("spec", {})
            if doc["apiVersion"] != "autoscaling/v2" or "behavior" not in spec:
                problems.append(f"HorizontalPodAutoscaler/{name}: use autoscaling/v2 with a behavior")
            target = spec.get("scaleTargetRef", {})
            if (target.get("kind"), target.get("name")) not in names:
                problems.append(f"HorizontalPodAutoscaler/{name}: scales a missing {target}")
        if kind not in WORKLOAD_KINDS:
            continue
        pod = _pod_spec(doc)
        selector = doc["spec"].get("selector", {}).get("matchLabels", {})
        labels = doc["spec"]["template"]["metadata"].get("labels", {})
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{kind}/{name}: selector does not match the pod template labels")
        inits = {c["name"] for c in pod.get("initContainers", [])}
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            where = f"{kind}/{name}/{container['name']}"
            problems += _container_problems(where, pod, container, container["name"] in inits)
            for source in container.get("envFrom", []):
                if "configMapRef" in source and source["configMapRef"]["name"] not in configmaps:
                    problems.append(
                        f"{kind}/{name}: envFrom a missing ConfigMap {source['configMapRef']['name']}"
                    )
                if "secretRef" in source and source["secretRef"]["name"] not in EXTERNAL_SECRETS:
                    problems.append(
                        f"{kind}/{name}: envFrom an undocumented Secret {source['secretRef']['name']}"
                    )
        for volume in pod.get("volumes", []):
            sources = [volume.get("configMap")] + [
                s.get("configMap") for s in volume.get("projected", {}).get("sources", [])
            ]
            for cm in filter(None, sources):
                if cm["name"] not in configmaps:
                    problems.append(
                        f"{kind}/{name}: volume {volume['name']} mounts a missing ConfigMap {cm['name']}"
                    )
    return problems


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one document of that kind and name; KeyError if absent."""
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise KeyError(f"{kind}/{name} not in the rendered manifests")
