"""Dockerfile policy (pinned slim base, multi-stage, non-root, healthcheck, no secrets),
hadolint, and the .dockerignore rules that decide what reaches the build context."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from deploycheck.tools import require_tool, run

BASE_IMAGE_RE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SECRET_NAME_RE = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|FERNET)", re.IGNORECASE)
SECRET_FILE_RE = re.compile(r"(^|/)(\.env(\..*)?|.*\.pem|.*\.key|id_rsa.*|secrets?)(/|$)")
EXTRAS_RE = re.compile(r"rakuten_mlops-[^\s\"')]*\.whl\)?\[([a-z0-9_,\s-]+)\]")


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    value: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and parser directives dropped."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue  # comments inside a continuation are ignored by Docker too
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        joined = " ".join(part for part in buf if part)
        keyword, _, value = joined.partition(" ")
        out.append(Instruction(start, keyword.upper(), value.strip()))
        buf = []
    return out


def stages(instructions: list[Instruction]) -> list[Stage]:
    """Split into build stages (`FROM base [AS name]`)."""
    result: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.value.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            result.append(Stage(words[0], name))
        elif result:
            result[-1].instructions.append(ins)
    return result


def image_is_pinned(ref: str) -> bool:
    """True for `name:tag` (tag not latest) or `name@sha256:...`."""
    if "@sha256:" in ref:
        return True
    tag = ref.rsplit("/", 1)[-1].partition(":")[2]
    return bool(tag) and tag != "latest" and "$" not in tag


def installed_extras(text: str) -> set[str]:
    """Extras of the project wheel installed by the Dockerfile (`...whl)[serve,vision]`)."""
    extras: set[str] = set()
    for match in EXTRAS_RE.finditer(text):
        extras.update(e.strip() for e in match.group(1).split(",") if e.strip())
    return extras


def copy_sources(text: str) -> list[str]:
    """Paths of the build context that the Dockerfile reads (COPY/ADD and RUN bind mounts)."""
    sources: list[str] = []
    for ins in parse_dockerfile(text):
        if ins.keyword in {"COPY", "ADD"}:
            args = shlex.split(ins.value)
            if any(a.startswith("--from=") for a in args):
                continue
            paths = [a for a in args if not a.startswith("--")]
            sources.extend(paths[:-1])
        elif ins.keyword == "RUN":
            for mount in re.findall(r"--mount=(\S+)", ins.value):
                opts = dict(kv.partition("=")[::2] for kv in mount.split(","))
                if opts.get("type") == "bind" and "from" not in opts and "source" in opts:
                    sources.append(opts["source"])
    return sources


def dockerfile_problems(text: str) -> list[str]:
    """Project policy for an image Dockerfile; hadolint covers general good practice."""
    problems: list[str] = []
    instructions = parse_dockerfile(text)
    all_stages = stages(instructions)
    names = {s.name for s in all_stages if s.name}
    if len(all_stages) < 2:
        problems.append("not multi-stage: build the wheel in a builder stage")
    for stage in all_stages:
        if stage.base in names:
            continue
        if not image_is_pinned(stage.base):
            problems.append(f"FROM {stage.base}: pin an explicit version tag (never latest)")
        elif stage.base.startswith("python:") and not BASE_IMAGE_RE.match(stage.base):
            problems.append(f"FROM {stage.base}: use python:3.11.<patch>-slim-bookworm")
    if not all_stages:
        return [*problems, "no FROM instruction"]
    final = all_stages[-1].instructions
    users = [i.value.split(":")[0] for i in final if i.keyword == "USER"]
    if not users or users[-1] in {"root", "0"}:
        problems.append("the final stage must switch to a non-root USER")
    checks = [i for i in final if i.keyword == "HEALTHCHECK"]
    if not checks or checks[-1].value.upper().startswith("NONE"):
        problems.append("no HEALTHCHECK in the final stage")
    cmds = [i for i in final if i.keyword == "CMD"]
    if not cmds or not cmds[-1].value.startswith("["):
        problems.append("the final stage needs a CMD in exec (JSON) form")
    for ins in instructions:
        if ins.keyword in {"COPY", "ADD"}:
            for src in copy_sources(f"{ins.keyword} {ins.value}"):
                if SECRET_FILE_RE.search(src):
                    problems.append(f"line {ins.line}: {ins.keyword} {src} would put a secret in the image")
        if ins.keyword == "ADD" and re.search(r"https?://", ins.value):
            problems.append(f"line {ins.line}: ADD from a URL; download in a RUN with a checksum instead")
        if ins.keyword in {"ENV", "ARG"}:
            for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", ins.value):
                if SECRET_NAME_RE.search(name) and not value.startswith("$"):
                    problems.append(f"line {ins.line}: {ins.keyword} {name} holds a literal secret")
    if "vision" in installed_extras(text) and not any(
        i.keyword == "RUN" and "torch" in i.value and TORCH_CPU_INDEX in i.value for i in instructions
    ):
        problems.append(f"installs torch (vision extra) without the CPU index {TORCH_CPU_INDEX}")
    if installed_extras(text) and not re.search(r"pip install[^&]*\s-c\s+\S*constraints\.txt", text):
        problems.append("installs the project without `-c constraints.txt`")
    return problems


def hadolint_findings(path: Path, config: Path | None = None) -> list[str]:
    """hadolint's findings at warning level or above (`CODE level line: message`)."""
    args = [require_tool("hadolint"), "--no-color", "-f", "json"]
    if config is not None:
        args += ["-c", str(config)]
    result = run([*args, str(path)])
    try:
        findings = json.loads(result.output or "[]")
    except json.JSONDecodeError:
        return [f"hadolint failed: {result.output.strip()}"]
    return [
        f"{f['code']} {f['level']} line {f['line']}: {f['message']}"
        for f in findings
        if f["level"] in {"error", "warning"}
    ]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore pattern syntax (Go filepath.Match plus `**`) as a regex."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith(("!", "^")) else body) + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per non-comment line, in file order."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line[1:].strip() if exception else line
        pattern = pattern.strip("/") or "."
        rules.append((exception, _pattern_regex(pattern)))
    return rules


def is_ignored(rules: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """Whether Docker leaves `path` (relative, `/`-separated) out of the build context.

    As in moby's patternmatcher: a rule matches a path or any of its parent folders, and the
    last matching rule wins.
    """
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for exception, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            ignored = not exception
    return ignored
