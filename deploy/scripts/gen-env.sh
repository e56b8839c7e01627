#!/usr/bin/env bash
# Write .env for docker compose from .env.example, replacing every `change-me` with a fresh
# random value (hex, URL-safe; a Fernet key for AIRFLOW_FERNET_KEY). The file is created
# with mode 600 and is git-ignored. Refuses to overwrite an existing file unless --force.
#
#   deploy/scripts/gen-env.sh [--force] [EXAMPLE [OUTPUT]]   (defaults: .env.example .env)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
force=0
if [[ "${1:-}" == "--force" ]]; then
  force=1
  shift
fi
example="${1:-$root/.env.example}"
output="${2:-$root/.env}"

die() { echo "gen-env: $*" >&2; exit 1; }
command -v openssl >/dev/null || die "openssl is needed to draw random values"
[[ -f "$example" ]] || die "no template at $example"
[[ ! -e "$output" || "$force" == 1 ]] || die "$output exists; pass --force to overwrite it"

random_value() {
  if [[ "$1" == AIRFLOW_FERNET_KEY ]]; then
    # Fernet: urlsafe base64 of 32 random bytes.
    openssl rand -base64 32 | tr '+/' '-_'
  else
    openssl rand -hex 24
  fi
}

umask 077
tmp="$(mktemp "${output}.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line || [[ -n "$line" ]]; do
  if [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=change-me$ ]]; then
    printf '%s=%s\n' "${BASH_REMATCH[1]}" "$(random_value "${BASH_REMATCH[1]}")"
  else
    printf '%s\n' "$line"
  fi
done <"$example" >"$tmp"
chmod 600 "$tmp"
mv "$tmp" "$output"
trap - EXIT
echo "gen-env: wrote $output ($(grep -c '^[A-Za-z_]' "$output") settings); keep it out of git"
