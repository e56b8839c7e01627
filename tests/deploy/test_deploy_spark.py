"""deploy/spark: the Spark scoring job on Kubernetes (account, role, network policy, the Spark
Operator's SparkApplication, the plain spark-submit script, the image's entrypoint), checked
offline: schemas where Kubernetes has one, fields of the SparkApplication CRD, and the scripts
run against fake binaries."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploycheck import DEPLOY_DIR, REPO_ROOT, dockerfiles, kube

from rakuten_mlops.pipelines.spark_job import parse_args
from tests.helpers import constraint_pin

SPARK_DIR = DEPLOY_DIR / "spark"
PROJECT_VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"ghcr.io/rakuten-mlops/spark:{PROJECT_VERSION}"
LABEL = ("app.kubernetes.io/name", "rakuten-batch-scoring")
ACCOUNT = "rakuten-spark"


@pytest.fixture(scope="module")
def rendered(tool) -> str:
    return kube.render_overlay(SPARK_DIR)


@pytest.fixture(scope="module")
def app() -> dict[str, Any]:
    return yaml.safe_load((SPARK_DIR / "sparkapplication.yaml").read_text())


def test_the_namespace_objects_validate_strictly(rendered: str, tool) -> None:
    tool("kubernetes-validate")
    assert kube.schema_problems(rendered) == []
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in kube.load_documents(rendered))
    assert kinds == [
        ("NetworkPolicy", "rakuten-batch-scoring"),
        ("Role", "rakuten-spark-driver"),
        ("RoleBinding", "rakuten-spark-driver"),
        ("ServiceAccount", ACCOUNT),
    ]


def test_the_driver_role_is_namespaced_and_minimal(rendered: str) -> None:
    docs = kube.load_documents(rendered)
    role = kube.find(docs, "Role", "rakuten-spark-driver")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert {r for r, _ in granted} == {"pods", "services", "configmaps", "persistentvolumeclaims"}
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])  # core kinds, no secrets
    assert not {v for _, v in granted} & {"*", "escalate", "bind", "impersonate"}
    binding = kube.find(docs, "RoleBinding", "rakuten-spark-driver")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": ACCOUNT}]


def test_the_network_policy_selects_the_job_pods_and_opens_only_what_they_use(
    rendered: str, app: dict[str, Any]
) -> None:
    policy = kube.find(kube.load_documents(rendered), "NetworkPolicy", "rakuten-batch-scoring")["spec"]
    assert policy["podSelector"]["matchLabels"] == dict([LABEL])
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [{"from": [{"podSelector": {"matchLabels": dict([LABEL])}}]}]
    ports = sorted(p["port"] for rule in policy["egress"] for p in rule.get("ports", []))
    assert ports == [53, 53, 443, 5000, 6443]
    for role in ("driver", "executor"):  # the SparkApplication labels its pods so that the policy applies
        assert app["spec"][role]["labels"][LABEL[0]] == LABEL[1]


def test_the_spark_application(app: dict[str, Any]) -> None:
    assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2" and app["kind"] == "SparkApplication"
    spec = app["spec"]
    assert spec["type"] == "Python" and spec["mode"] == "cluster"
    assert spec["sparkVersion"] == constraint_pin("pyspark")
    assert spec["image"] == IMAGE
    assert spec["mainApplicationFile"] == "local:///opt/rakuten/spark_job.py"
    assert spec["driver"]["serviceAccount"] == ACCOUNT
    args = parse_args(spec["arguments"])  # what the job accepts
    assert args.input.startswith("s3a://") and args.output.startswith("s3a://") and args.master is None
    for role in ("driver", "executor"):
        sc = spec[role]["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec[role]["envFrom"] == [{"secretRef": {"name": ACCOUNT}}]  # created with kubectl


@pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None, reason="pyspark missing: pip install 'rakuten-mlops[spark]'"
)
def test_hadoop_aws_matches_the_hadoop_client_inside_pyspark(app: dict[str, Any]) -> None:
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    client = (
        next(jars.glob("hadoop-client-api-*.jar"))
        .name.removeprefix("hadoop-client-api-")
        .removesuffix(".jar")
    )
    assert app["spec"]["sparkConf"]["spark.jars.packages"] == f"org.apache.hadoop:hadoop-aws:{client}"
    script = (SPARK_DIR / "spark-submit-k8s.sh").read_text()
    assert f"spark.jars.packages=org.apache.hadoop:hadoop-aws:{client}" in script


def test_the_image_runs_the_job_file_through_its_entrypoint() -> None:
    text = (DEPLOY_DIR / "docker" / "spark.Dockerfile").read_text()
    assert "rakuten_mlops/pipelines/spark_job.py /opt/rakuten/spark_job.py" in text
    assert "COPY --chmod=0755 deploy/spark/entrypoint.sh /opt/rakuten/entrypoint.sh" in text
    assert '"/opt/rakuten/entrypoint.sh"' in text and "openjdk-17-jre-headless" in text
    rules = dockerfiles.dockerignore_rules((REPO_ROOT / ".dockerignore").read_text())
    assert not dockerfiles.is_ignored(rules, "deploy/spark/entrypoint.sh")
    assert dockerfiles.is_ignored(rules, "deploy/spark/sparkapplication.yaml")


# ------------------------------------------------------------------ scripts
SCRIPTS = sorted(SPARK_DIR.glob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_shellcheck(script: Path, tool) -> None:
    result = subprocess.run([tool("shellcheck"), str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def run_script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        ["bash", str(SPARK_DIR / name), *args], env={**base, **env}, capture_output=True, text=True
    )


def test_spark_submit_script_builds_the_cluster_mode_command() -> None:
    result = run_script(
        "spark-submit-k8s.sh", "--print", "--input", "s3a://b/listings/", "--output", "s3a://b/scores/1/",
        K8S_API="https://10.0.0.1:6443", NAMESPACE="catalog", EXECUTORS="8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cmd = result.stdout
    for part in (
        "--master k8s://https://10.0.0.1:6443", "--deploy-mode cluster",
        "spark.kubernetes.namespace=catalog", f"spark.kubernetes.container.image={IMAGE}",
        f"spark.kubernetes.authenticate.driver.serviceAccountName={ACCOUNT}",
        f"spark.kubernetes.driver.label.{LABEL[0]}={LABEL[1]}",
        f"spark.kubernetes.executor.label.{LABEL[0]}={LABEL[1]}",
        "spark.executor.instances=8",
        "local:///opt/rakuten/spark_job.py --input s3a://b/listings/ --output s3a://b/scores/1/",
    ):  # fmt: skip
        assert part in cmd, part
    for role in ("driver", "executor"):  # credentials come from the secret, by reference
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD"):
            assert f"spark.kubernetes.{role}.secretKeyRef.{key}={ACCOUNT}:{key}" in cmd


def test_spark_submit_script_refuses_incomplete_arguments() -> None:
    result = run_script("spark-submit-k8s.sh", "--print", "--input", "s3a://b/l/", K8S_API="https://k")
    assert result.returncode == 2 and "--output is required" in result.stderr
    result = run_script("spark-submit-k8s.sh", "--print", "--inputs", "x", K8S_API="https://k")
    assert result.returncode == 2 and "unknown option --inputs" in result.stderr


def fake(path: Path, name: str) -> Path:
    """An executable that prints its name and arguments, one per line."""
    path.mkdir(parents=True, exist_ok=True)
    exe = path / name
    exe.write_text(f'#!/usr/bin/env bash\necho {name}\nprintf "%s\\n" "$@"\n')
    exe.chmod(0o755)
    return exe


def test_entrypoint_starts_an_executor_as_spark_on_kubernetes_asks(tmp_path: Path) -> None:
    fake(tmp_path / "jdk" / "bin", "java")
    env = {
        "JAVA_HOME": str(tmp_path / "jdk"), "SPARK_HOME": str(tmp_path / "spark"),
        "SPARK_EXECUTOR_MEMORY": "4g", "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@driver-svc:7078",
        "SPARK_EXECUTOR_ID": "3", "SPARK_EXECUTOR_CORES": "2", "SPARK_APPLICATION_ID": "spark-app-1",
        "SPARK_EXECUTOR_POD_IP": "10.1.2.3", "SPARK_EXECUTOR_POD_NAME": "scoring-exec-3",
        "SPARK_JAVA_OPT_0": "-Dspark.driver.port=7078",
    }  # fmt: skip
    result = run_script("entrypoint.sh", "executor", **env)
    assert result.returncode == 0, result.stderr
    args = result.stdout.splitlines()
    assert args[0] == "java" and "-Dspark.driver.port=7078" in args and "-Xmx4g" in args
    assert "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend" in args
    pairs = dict(itertools.pairwise(args))
    assert pairs["--executor-id"] == "3" and pairs["--hostname"] == "10.1.2.3"
    assert pairs["--driver-url"] == env["SPARK_DRIVER_URL"] and pairs["--podName"] == "scoring-exec-3"
    assert pairs["-cp"] == f"{tmp_path / 'spark'}/jars/*"


def test_entrypoint_runs_the_driver_in_client_mode_inside_its_pod(tmp_path: Path) -> None:
    fake(tmp_path / "spark" / "bin", "spark-submit")
    env = {
        "JAVA_HOME": str(tmp_path),
        "SPARK_HOME": str(tmp_path / "spark"),
        "SPARK_DRIVER_BIND_ADDRESS": "10.9.8.7",
    }
    result = run_script(
        "entrypoint.sh", "driver", "--properties-file", "/opt/spark/conf/spark.properties", **env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "spark-submit", "--deploy-mode", "client", "--conf", "spark.driver.bindAddress=10.9.8.7",
        "--properties-file", "/opt/spark/conf/spark.properties",
    ]  # fmt: skip
    other = run_script("entrypoint.sh", "echo", "hello", **env)
    assert other.stdout == "hello\n"
