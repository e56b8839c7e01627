#!/usr/bin/env bash
# Score the catalog with the champion on Kubernetes with plain spark-submit (no Spark Operator):
# the driver runs in a pod of the cluster (cluster mode) from the image of
# deploy/docker/spark.Dockerfile, with the account and network policy of deploy/spark.
#
#   deploy/spark/spark-submit-k8s.sh --input s3a://bucket/listings/ --output s3a://bucket/scores/2026-12-04/ \
#       [--images s3a://bucket/images/] [--model-uri models:/rakuten-product-classifier@champion]
#   deploy/spark/spark-submit-k8s.sh --print ...     # print the spark-submit command, run nothing
#
# Environment: K8S_API (default: the current kubectl context's server), NAMESPACE (rakuten),
#   IMAGE (ghcr.io/rakuten-mlops/spark:0.1.0), EXECUTORS (4), EXECUTOR_CORES (2),
#   EXECUTOR_MEMORY (4g), MLFLOW_URI (http://mlflow:5000), S3_ENDPOINT (http://minio:9000),
#   SPARK_SUBMIT (default: spark-submit on PATH, e.g. the one pip installs with pyspark).
# The secret rakuten-spark (S3 and MLflow credentials) must exist in the namespace.
set -euo pipefail

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "spark-submit-k8s: $*" >&2; exit 2; }

print_only=0
job_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --print) print_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --input|--output|--images|--model-uri|--chunk-size)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      job_args+=("$1" "$2"); shift 2 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ " ${job_args[*]-} " == *" --input "* ]] || die "--input is required"
[[ " ${job_args[*]-} " == *" --output "* ]] || die "--output is required"

api="${K8S_API:-}"
if [[ -z "$api" ]]; then
  api="$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null)" \
    || die "set K8S_API (no kubectl context to read the API server from)"
fi
namespace="${NAMESPACE:-rakuten}"
image="${IMAGE:-ghcr.io/rakuten-mlops/spark:0.1.0}"
label="app.kubernetes.io/name=rakuten-batch-scoring"
# Credentials reach the pods as environment variables read from the secret, never as values here.
secret_env=()
for key in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD; do
  for role in driver executor; do
    secret_env+=(--conf "spark.kubernetes.$role.secretKeyRef.$key=rakuten-spark:$key")
  done
done

cmd=(
  "${SPARK_SUBMIT:-spark-submit}"
  --master "k8s://$api"
  --deploy-mode cluster
  --name rakuten-batch-scoring
  --conf "spark.kubernetes.namespace=$namespace"
  --conf "spark.kubernetes.container.image=$image"
  --conf "spark.kubernetes.authenticate.driver.serviceAccountName=rakuten-spark"
  --conf "spark.kubernetes.driver.label.${label%%=*}=${label#*=}"
  --conf "spark.kubernetes.executor.label.${label%%=*}=${label#*=}"
  "${secret_env[@]}"
  --conf "spark.kubernetes.driverEnv.RAKUTEN_MLFLOW_TRACKING_URI=${MLFLOW_URI:-http://mlflow:5000}"
  --conf "spark.executorEnv.RAKUTEN_MLFLOW_TRACKING_URI=${MLFLOW_URI:-http://mlflow:5000}"
  --conf "spark.executor.instances=${EXECUTORS:-4}"
  --conf "spark.executor.cores=${EXECUTOR_CORES:-2}"
  --conf "spark.executor.memory=${EXECUTOR_MEMORY:-4g}"
  --conf "spark.hadoop.fs.s3a.endpoint=${S3_ENDPOINT:-http://minio:9000}"
  --conf "spark.hadoop.fs.s3a.path.style.access=true"
  --conf "spark.jars.packages=org.apache.hadoop:hadoop-aws:3.5.0"
  --conf "spark.jars.ivy=/tmp/.ivy2"
  local:///opt/rakuten/spark_job.py
  "${job_args[@]}"
)

if [[ "$print_only" == 1 ]]; then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
exec "${cmd[@]}"
