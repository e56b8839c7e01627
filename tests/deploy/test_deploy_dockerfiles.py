"""The images: hadolint and the project's Dockerfile policy, the build context (.dockerignore),
and each check shown failing on a broken copy."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploycheck import DEPLOY_DIR, REPO_ROOT, dockerfiles

from tests.helpers import constraint_pin

DOCKER_DIR = DEPLOY_DIR / "docker"
HADOLINT_CONFIG = DOCKER_DIR / ".hadolint.yaml"
DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
# Image -> extras of rakuten-mlops it installs (issue 6).
EXPECTED_EXTRAS = {
    "api": {"serve", "vision", "deep-serve"},  # deep-serve: a transformer champion on ONNX Runtime
    "worker": {"vision", "airflow", "monitor", "dvc", "serve"},
    "ui": {"ui"},  # the API client only: no FastAPI, SQLAlchemy or database driver
    "spark": {"spark", "vision", "deep-serve"},  # executors run the registered model, image models included
}
EXPECTED_CMD = {
    "api": '["rakuten-mlops", "serve", "--host", "0.0.0.0", "--port", "8000"]',
    "ui": '["rakuten-mlops", "ui", "--host", "0.0.0.0", "--port", "8501"]',
    "worker": '["airflow", "celery", "worker"]',
    "spark": '["rakuten-mlops", "batch", "score", "--help"]',  # the entrypoint runs driver/executor
}


def read(name: str) -> str:
    return (DOCKER_DIR / f"{name}.Dockerfile").read_text()


def test_every_image_has_a_dockerfile() -> None:
    assert {p.name.removesuffix(".Dockerfile") for p in DOCKERFILES} >= {"api", "worker", "ui", "mlflow"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(path: Path, tool) -> None:
    tool("hadolint")
    assert dockerfiles.hadolint_findings(path, HADOLINT_CONFIG) == []


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_policy(path: Path) -> None:
    assert dockerfiles.dockerfile_problems(path.read_text()) == []


@pytest.mark.parametrize("image", sorted(EXPECTED_EXTRAS))
def test_image_installs_its_extras_and_runs_one_process(image: str) -> None:
    text = read(image)
    assert dockerfiles.installed_extras(text) == EXPECTED_EXTRAS[image]
    final = dockerfiles.stages(dockerfiles.parse_dockerfile(text))[-1]
    cmds = [i.value for i in final.instructions if i.keyword == "CMD"]
    assert cmds[-1] == EXPECTED_CMD[image]


def test_healthchecks_probe_the_right_endpoints() -> None:
    assert "http://127.0.0.1:8000/healthz" in read("api")
    assert "http://127.0.0.1:8501/_stcore/health" in read("ui")
    assert "http://127.0.0.1:5000/health" in read("mlflow")
    assert "inspect ping" in read("worker")


def test_all_images_share_one_pinned_base() -> None:
    bases = {
        stage.base
        for path in DOCKERFILES
        for stage in dockerfiles.stages(dockerfiles.parse_dockerfile(path.read_text()))
        if ":" in stage.base
    }
    assert len(bases) == 1, bases
    assert dockerfiles.BASE_IMAGE_RE.match(bases.pop())


def test_mlflow_server_matches_the_client_version() -> None:
    pins = dict(
        line.split("==")
        for line in (DOCKER_DIR / "mlflow-requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["mlflow"] == constraint_pin("mlflow")
    assert "psycopg2-binary" in pins


# ------------------------------------------------------------------ broken copies fail


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.replace(
                "FROM python:3.11.13-slim-bookworm AS runtime", "FROM python:latest AS runtime"
            ),
            "DL3007",
        ),
        (lambda t: t.replace("pip install --no-cache-dir -c", "pip install -c"), "DL3042"),
        (lambda t: t.replace("USER 10001:10001", "USER root"), "DL3002"),
        (lambda t: t.replace("WORKDIR /home/rakuten", "WORKDIR home"), "DL3000"),
    ],
    ids=["latest-tag", "pip-cache", "root-user", "relative-workdir"],
)
def test_hadolint_rejects_a_broken_dockerfile(change, expected: str, tmp_path: Path, tool) -> None:
    tool("hadolint")
    broken = tmp_path / "api.Dockerfile"
    broken.write_text(change(read("api")))
    findings = dockerfiles.hadolint_findings(broken, HADOLINT_CONFIG)
    assert any(f.startswith(expected) for f in findings), findings


RUNTIME_FROM = "FROM python:3.11.13-slim-bookworm AS runtime"
SINGLE_STAGE_TAIL = 'USER 10001\nHEALTHCHECK CMD ["true"]\nCMD ["true"]\n'
POLICY_BREAKS = {
    # id: (old, new, expected problem)
    "latest": (RUNTIME_FROM, "FROM python:latest AS runtime", "pin an explicit version"),
    "unpinned-patch": (
        "python:3.11.13-slim-bookworm",
        "python:3.11-slim",
        "python:3.11.<patch>-slim-bookworm",
    ),
    "no-user": ("USER 10001:10001\n", "", "non-root USER"),
    "no-healthcheck": ("HEALTHCHECK", "# HEALTHCHECK", "no HEALTHCHECK"),
    "copies-env": ("COPY src/ ./src/", "COPY src/ ./src/\nCOPY .env /app/.env", "secret in the image"),
    "cuda-torch": ("--index-url https://download.pytorch.org/whl/cpu ", "", "CPU index"),
    "no-constraints": ("-c /tmp/constraints.txt", "", "constraints.txt"),
    "env-secret": ("ENV PYTHONDONTWRITEBYTECODE=1", "ENV RAKUTEN_JWT_SECRET=hunter22 X=1", "literal secret"),
}


@pytest.mark.parametrize(("old", "new", "expected"), POLICY_BREAKS.values(), ids=POLICY_BREAKS.keys())
def test_policy_rejects_a_broken_dockerfile(old: str, new: str, expected: str) -> None:
    text = read("api")
    assert old in text
    problems = dockerfiles.dockerfile_problems(text.replace(old, new))
    assert any(expected in p for p in problems), problems


def test_policy_rejects_a_single_stage_dockerfile() -> None:
    single = read("api").split("# ---- runtime ----")[0] + SINGLE_STAGE_TAIL
    assert "not multi-stage: build the wheel in a builder stage" in dockerfiles.dockerfile_problems(single)


# ------------------------------------------------------------------ build context


def dockerignore_rules(text: str | None = None):
    return dockerfiles.dockerignore_rules(text or (REPO_ROOT / ".dockerignore").read_text())


@pytest.mark.parametrize(
    "path",
    [".env", ".env.local", ".venv/bin/python", ".rakuten/mlflow.db", "data/X_train_update.csv",
     "sample/images/a.jpg", ".git/HEAD", "src/rakuten_mlops/__pycache__/cli.cpython-311.pyc",
     ".pytest_cache/v/x", ".mypy_cache/3.11/x.json", ".ruff_cache/x", "src/.env", "mlruns/0/meta.yaml",
     "tests/api/test_predict.py", "deploy/k8s/base/secret.example.yaml", "key.pem"],
)  # fmt: skip
def test_dockerignore_keeps_out(path: str) -> None:
    assert dockerfiles.is_ignored(dockerignore_rules(), path)


@pytest.mark.parametrize(
    "path", ["pyproject.toml", "src/rakuten_mlops/data/schema.py", "src/rakuten_mlops/cli.py"]
)
def test_dockerignore_lets_in_the_package(path: str) -> None:
    assert not dockerfiles.is_ignored(dockerignore_rules(), path)


def test_every_copy_source_is_in_the_build_context() -> None:
    rules = dockerignore_rules()
    for path in DOCKERFILES:
        for source in dockerfiles.copy_sources(path.read_text()):
            assert not dockerfiles.is_ignored(rules, source.rstrip("/")), f"{path.name}: {source} is ignored"


def test_every_copy_source_exists() -> None:
    """The images build only when these exist (constraints.txt, README.md, the DAG files, params.yaml)."""
    missing = sorted(
        {
            src
            for path in DOCKERFILES
            for src in dockerfiles.copy_sources(path.read_text())
            if not (REPO_ROOT / src).exists()
        }
    )
    assert not missing, f"files the Dockerfiles copy are missing from the repository: {missing}"


def test_a_broken_dockerignore_is_caught() -> None:
    text = (REPO_ROOT / ".dockerignore").read_text()
    leaky = dockerignore_rules(text.replace("*\n", "", 1).replace("**/.env\n", "").replace(".env\n", ""))
    assert not dockerfiles.is_ignored(leaky, ".env")
    assert not dockerfiles.is_ignored(leaky, "tests/api/test_predict.py")
    too_strict = dockerignore_rules(text + "\nsrc\n")
    assert dockerfiles.is_ignored(too_strict, "src/rakuten_mlops/cli.py")


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [("*", "a/b", True), ("!a", "a/b", False), ("**/x", "a/b/x/c", True), ("a/*.py", "a/b.py", True),
     ("a/*.py", "a/b/c.py", False), ("**/*.py[cod]", "a/b.pyc", True), ("/data", "data/x", True),
     ("data", "src/data/x", False)],
)  # fmt: skip
def test_dockerignore_pattern_semantics(pattern: str, path: str, ignored: bool) -> None:
    rules = dockerfiles.dockerignore_rules("*\n" + pattern if pattern.startswith("!") else pattern)
    assert dockerfiles.is_ignored(rules, path) is ignored
