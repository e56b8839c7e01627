#!/usr/bin/env bash
# Apply a kustomize overlay (deploy/k8s/overlays/<dev|prod>) to the current kubectl context
# and wait until every workload has rolled out. Works on any cluster; made for kind and k3s.
#
#   deploy/scripts/k8s-apply.sh dev  [--create-dev-secrets] [--load-images kind|k3s]
#   deploy/scripts/k8s-apply.sh prod --yes
#   deploy/scripts/k8s-apply.sh dev  --render          # print the manifests, touch nothing
#
# Environment: KUBECTL (default kubectl), ROLLOUT_TIMEOUT (default 300s),
#              KIND_CLUSTER (default kind), for --load-images kind.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
kubectl_bin="${KUBECTL:-kubectl}"
timeout="${ROLLOUT_TIMEOUT:-300s}"
# Workloads of the base, in the order they depend on each other.
workloads=(statefulset/postgres deployment/mlflow deployment/rakuten-api deployment/prometheus)
required_secrets=(rakuten-postgres rakuten-mlflow rakuten-app-owner rakuten-api)

usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "k8s-apply: $*" >&2; exit 1; }
kc() { "$kubectl_bin" "$@"; }

overlay="${1:-}"
[[ -n "$overlay" && "$overlay" != -* ]] || { usage >&2; exit 2; }
shift
overlay_dir="$root/deploy/k8s/overlays/$overlay"
[[ -f "$overlay_dir/kustomization.yaml" ]] || die "no overlay '$overlay' (have: $(cd "$root/deploy/k8s/overlays" && echo *))"

create_dev_secrets=0 render=0 confirmed=0 load_images=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --create-dev-secrets) create_dev_secrets=1 ;;
    --render) render=1 ;;
    --yes) confirmed=1 ;;
    --load-images) load_images="${2:-}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1" ;;
  esac
  shift
done

command -v "$kubectl_bin" >/dev/null || die "kubectl not found (https://kubernetes.io/docs/tasks/tools/)"

if [[ "$render" == 1 ]]; then
  exec "$kubectl_bin" kustomize "$overlay_dir"
fi

namespace="$(sed -n 's/^namespace:[[:space:]]*//p' "$overlay_dir/kustomization.yaml")"
[[ -n "$namespace" ]] || die "$overlay_dir/kustomization.yaml sets no namespace"
context="$(kc config current-context 2>/dev/null || echo '?')"
echo "k8s-apply: overlay '$overlay' -> namespace '$namespace' in context '$context'"

if [[ "$overlay" == prod && "$confirmed" != 1 ]]; then
  die "refusing to touch production without --yes"
fi
if [[ "$create_dev_secrets" == 1 && "$overlay" == prod ]]; then
  die "--create-dev-secrets is for development clusters; create production secrets by hand (deploy/README.md)"
fi

images() {
  # The images the overlay runs, as name:tag.
  kc kustomize "$overlay_dir" | sed -n 's/^[[:space:]]*image:[[:space:]]*//p' | sort -u
}

case "$load_images" in
  "") ;;
  kind)
    for image in $(images); do kind load docker-image --name "${KIND_CLUSTER:-kind}" "$image"; done ;;
  k3s)
    for image in $(images); do docker save "$image" | sudo k3s ctr images import -; done ;;
  *) die "--load-images takes kind or k3s" ;;
esac

# The namespace first, so the secrets can exist before the pods that read them.
kc apply -f "$overlay_dir/namespace.yaml"

secret_exists() { kc -n "$namespace" get secret "$1" >/dev/null 2>&1; }

create_secret_from_env() {
  # kubectl create secret generic NAME from KEY=VALUE lines on stdin (never on the command line).
  local name="$1" env_file
  env_file="$(mktemp)"
  chmod 600 "$env_file"
  cat >"$env_file"
  kc -n "$namespace" create secret generic "$name" --from-env-file="$env_file"
  rm -f "$env_file"
}

if [[ "$create_dev_secrets" == 1 ]]; then
  rand() { openssl rand -hex "${1:-24}"; }
  if ! secret_exists rakuten-postgres; then
    mlflow_pw="$(rand)" app_pw="$(rand)" app_rw_pw="$(rand)"
    mlflow_admin_pw="$(rand)" mlflow_api_pw="$(rand)"
    printf 'POSTGRES_PASSWORD=%s\nMLFLOW_DB_PASSWORD=%s\nAPP_DB_PASSWORD=%s\nAPP_RW_DB_PASSWORD=%s\n' \
      "$(rand)" "$mlflow_pw" "$app_pw" "$app_rw_pw" | create_secret_from_env rakuten-postgres
    secret_exists rakuten-mlflow && kc -n "$namespace" delete secret rakuten-mlflow
    printf 'MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://mlflow:%s@postgres:5432/mlflow\nMLFLOW_AUTH_ADMIN_USERNAME=mlflow-admin\nMLFLOW_AUTH_ADMIN_PASSWORD=%s\n' \
      "$mlflow_pw" "$mlflow_admin_pw" | create_secret_from_env rakuten-mlflow
    secret_exists rakuten-app-owner && kc -n "$namespace" delete secret rakuten-app-owner
    printf 'RAKUTEN_DATABASE_URL=postgresql+psycopg2://app:%s@postgres:5432/app\n' "$app_pw" |
      create_secret_from_env rakuten-app-owner
    secret_exists rakuten-api && kc -n "$namespace" delete secret rakuten-api
    printf 'RAKUTEN_JWT_SECRET=%s\nRAKUTEN_DATABASE_URL=postgresql+psycopg2://app_rw:%s@postgres:5432/app\nRAKUTEN_BOOTSTRAP_ADMIN_USER=rakuten-admin\nRAKUTEN_BOOTSTRAP_ADMIN_PASSWORD=%s\nRAKUTEN_MODEL_SIGNING_KEY=%s\nMLFLOW_TRACKING_USERNAME=api\nMLFLOW_TRACKING_PASSWORD=%s\n' \
      "$(rand 32)" "$app_rw_pw" "$(rand 12)" "$(rand 32)" "$mlflow_api_pw" | create_secret_from_env rakuten-api
    echo "k8s-apply: created dev secrets; read the admin password with kubectl -n $namespace get secret rakuten-api -o jsonpath='{.data.RAKUTEN_BOOTSTRAP_ADMIN_PASSWORD}' | base64 -d"
    echo "k8s-apply: then create the MLflow identities (the API's password is in the rakuten-api secret): deploy/README.md \"MLflow identities\""
  fi
  if ! secret_exists rakuten-api-tls; then
    host="$(kc kustomize "$overlay_dir" | sed -n 's/^[[:space:]]*- host:[[:space:]]*//p' | head -n 1)"
    tls_dir="$(mktemp -d)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$host" \
      -addext "subjectAltName=DNS:$host" -keyout "$tls_dir/tls.key" -out "$tls_dir/tls.crt" 2>/dev/null
    kc -n "$namespace" create secret tls rakuten-api-tls --cert="$tls_dir/tls.crt" --key="$tls_dir/tls.key"
    rm -rf "$tls_dir"
    echo "k8s-apply: created a self-signed certificate for $host (30 days)"
  fi
fi

missing=()
for secret in "${required_secrets[@]}"; do
  secret_exists "$secret" || missing+=("$secret")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  die "missing secret(s) in $namespace: ${missing[*]}. Create them with 'kubectl create secret' \
(deploy/k8s/base/secret.example.yaml, deploy/README.md)$([[ "$overlay" == dev ]] && echo ' or rerun with --create-dev-secrets')"
fi
secret_exists rakuten-api-tls || echo "k8s-apply: warning: no rakuten-api-tls secret yet; the Ingress serves TLS once it exists (cert-manager or kubectl create secret tls)" >&2

kc apply -k "$overlay_dir"

for workload in "${workloads[@]}"; do
  echo "k8s-apply: waiting for $workload"
  if ! kc -n "$namespace" rollout status "$workload" --timeout="$timeout"; then
    if [[ "$workload" == deployment/rakuten-api ]]; then
      echo "k8s-apply: the API pods run but are not ready. They turn ready once the MLflow registry" >&2
      echo "  has a champion model (they poll it): train and promote one, see deploy/README.md." >&2
    fi
    die "$workload did not roll out within $timeout"
  fi
done
echo "k8s-apply: '$overlay' is rolled out in namespace '$namespace'"
