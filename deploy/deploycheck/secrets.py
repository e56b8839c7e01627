"""Scan text files for secret-like literals: passwords, tokens and keys that are not
placeholders (change-me) or references (${VAR}, $VAR, $(cmd), printf formats)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

PLACEHOLDERS = {"change-me", "changeme", "change_me", "placeholder", "xxx", "<secret>", "..."}
NOT_SECRETS = {"true", "false", "yes", "no", "null", "none", "~", "0", "1"}
ASSIGNMENT_RE = re.compile(
    r"(?i)(?<![\w${.-])([A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key"
    r"|fernet[_-]?key)[A-Za-z0-9_.-]*)[\"']?[ \t]*[:=][ \t]*[\"']?([^\s\"',}]+)"
)
URL_CREDENTIALS_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://([^\s/:@]*):([^\s@/]+)@")
TOKEN_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}"),
}
# Keys that name where a secret lives, not the secret itself.
REFERENCE_KEY_RE = re.compile(r"(?i)(_file|_path|_dir|secretname|secretref|secretkeyref|_ref|_user(name)?)$")
TEXT_SUFFIXES = {
    "",
    ".yaml",
    ".yml",
    ".json",
    ".sh",
    ".md",
    ".txt",
    ".py",
    ".mk",
    ".example",
    ".conf",
    ".toml",
}


def is_placeholder(value: str) -> bool:
    """A value that is obviously not a real secret."""
    v = value.strip("\"'`")
    return (
        v.lower() in PLACEHOLDERS | NOT_SECRETS
        or v.startswith(("$", "%", "<", "{{", "/"))  # ${VAR}, $VAR, $(cmd), printf, <fill-in>, template, path
        or any(c in v for c in "([{")  # an expression in code (a call, a set), not a literal
        or v.lower().startswith(("change-me", "changeme"))
    )


def scan_text(text: str, where: str = "<text>") -> list[str]:
    """Secret-like literals in one text, as `where:line: what`."""
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in ASSIGNMENT_RE.finditer(line):
            key, value = match.group(1), match.group(2)
            if not REFERENCE_KEY_RE.search(key) and not is_placeholder(value):
                findings.append(f"{where}:{number}: {key} has a literal value")
        for match in URL_CREDENTIALS_RE.finditer(line):
            if not is_placeholder(match.group(2)):
                findings.append(f"{where}:{number}: URL with a literal password")
        findings += [f"{where}:{number}: {label}" for label, rx in TOKEN_PATTERNS.items() if rx.search(line)]
    return findings


def text_files(paths: Iterable[Path]) -> Iterable[Path]:
    """Files under the given paths (recursively) that look like text; caches skipped."""
    for path in paths:
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in candidates:
            if "__pycache__" in p.parts:
                continue
            if p.suffix in TEXT_SUFFIXES or p.name.endswith("Dockerfile") or p.name == ".dockerignore":
                yield p


def scan_paths(paths: Iterable[Path], root: Path) -> list[str]:
    """scan_text over every text file under `paths`, reported relative to `root`."""
    findings = []
    for path in text_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        findings += scan_text(text, str(path.relative_to(root)))
    return findings
