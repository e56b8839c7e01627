#!/usr/bin/env bash
# Debian tools used by some tests: promtool (prometheus), chromium + chromedriver (browser test),
# the shellcheck linter (deployment scripts) and a Java 17 runtime (the Spark batch-scoring engine).
# Installs what is missing when running as root with apt-get; otherwise says what the tests will skip.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
# Debian 12's default JRE is OpenJDK 17, the version Spark 4 runs on
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} (install them with your package manager); the tests that need them will skip" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# --no-install-recommends keeps it small; policy-rc.d stops the prometheus service from starting
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# a Prometheus service started by the package would hold port 9090
service prometheus stop >/dev/null 2>&1 || true
