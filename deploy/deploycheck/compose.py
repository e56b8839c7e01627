"""docker compose file policy: pinned images, healthchecks, healthy dependencies, secrets only
as ${VAR} references, published ports bound to an explicit address, declared volumes."""

from __future__ import annotations

import re
from typing import Any

from deploycheck.dockerfiles import image_is_pinned

SECRET_KEY_RE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|FERNET_KEY|API_KEY|PRIVATE_KEY|ACCESS_KEY", re.I)
NOT_A_SECRET_RE = re.compile(r"_(FILE|PATH|DIR|USER|USERNAME)$", re.I)
URL_PASSWORD_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:([^@\s/]+)@")
REFERENCE_RE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which the images do not install.
DRIVERLESS_POSTGRES_RE = re.compile(r"\bpostgres(ql)?://")


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever syntax the file uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def dependencies(service: dict[str, Any]) -> dict[str, str]:
    """depends_on as {service: condition}."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def env_value_problems(where: str, key: str, value: str) -> list[str]:
    """A secret-looking variable must be a ${VAR} reference, and so must a password in a URL."""
    problems = []
    if SECRET_KEY_RE.search(key) and not NOT_A_SECRET_RE.search(key) and not REFERENCE_RE.match(value):
        problems.append(f"{where}: {key} must come from the environment as ${{VAR}}, not a literal")
    for password in URL_PASSWORD_RE.findall(value):
        if not password.startswith("${"):
            problems.append(f"{where}: {key} embeds a literal password in a URL")
    if DRIVERLESS_POSTGRES_RE.search(value):
        problems.append(f"{where}: {key} needs an explicit driver: postgresql+psycopg2://")
    return problems


def one_shot_services(services: dict[str, Any]) -> set[str]:
    """Services others wait on to *finish* (service_completed_successfully) and never restart."""
    waited = {
        name
        for service in services.values()
        for name, condition in dependencies(service).items()
        if condition == "service_completed_successfully"
    }
    return {name for name in waited if str(services.get(name, {}).get("restart", "no")) == "no"}


def compose_problems(data: dict[str, Any]) -> list[str]:
    """Every policy problem of a parsed compose file."""
    problems: list[str] = []
    services: dict[str, Any] = data.get("services") or {}
    if not services:
        return ["no services"]
    declared_volumes = set((data.get("volumes") or {}).keys())
    one_shot = one_shot_services(services)
    for name, service in services.items():
        where = f"service {name}"
        image = service.get("image")
        if not image:
            problems.append(f"{where}: name a pinned image (also when it is built, so the tag is known)")
        elif not image_is_pinned(image):
            problems.append(f"{where}: image {image!r} is not pinned to a version")
        health = service.get("healthcheck") or {}
        if name not in one_shot and (not health.get("test") or health.get("disable")):
            problems.append(f"{where}: no healthcheck")
        for dep, condition in dependencies(service).items():
            if dep not in services:
                problems.append(f"{where}: depends on unknown service {dep}")
                continue
            if condition not in CONDITIONS:
                problems.append(f"{where}: unknown depends_on condition {condition!r}")
            if condition == "service_started" and dep not in one_shot:
                problems.append(f"{where}: wait for {dep} with condition service_healthy")
            if condition == "service_healthy" and not (services[dep].get("healthcheck") or {}).get("test"):
                problems.append(f"{where}: waits for {dep} to be healthy, but {dep} has no healthcheck")
        for key, value in environment(service).items():
            problems += env_value_problems(where, key, value)
        for arg in service.get("command") or []:
            problems += env_value_problems(where, "command", str(arg))
        for port in service.get("ports") or []:
            if isinstance(port, str) and port.count(":") < 2:
                problems.append(f"{where}: port {port!r} listens on every interface; bind an address")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "$", "~")) and source not in declared_volumes:
                problems.append(f"{where}: named volume {source!r} is not declared")
        if "env_file" in service:
            problems.append(f"{where}: env_file loads every variable; list what the service needs instead")
    return problems
