#!/usr/bin/env bash
# Entrypoint of the Spark image (deploy/docker/spark.Dockerfile). Spark on Kubernetes starts
# the driver pod with `driver <spark-submit args>` and each executor pod with `executor`, the
# executor's settings in SPARK_* variables set by the driver; anything else runs as given.
set -euo pipefail

spark_home="${SPARK_HOME:?SPARK_HOME must point at the pyspark installation}"
java="${JAVA_HOME:?JAVA_HOME must point at a Java 17 runtime}/bin/java"

case "${1:-}" in
  driver)
    shift
    # In the driver pod spark-submit runs in client mode: the pod is the cluster-mode driver.
    exec "$spark_home/bin/spark-submit" \
      --deploy-mode client \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:-0.0.0.0}" \
      "$@"
    ;;
  executor)
    shift
    java_opts=()
    # SPARK_JAVA_OPT_0, _1, ...: the executor's JVM options, one per variable
    while IFS='=' read -r name value; do
      [[ "$name" == SPARK_JAVA_OPT_* ]] && java_opts+=("$value")
    done < <(env)
    exec "$java" "${java_opts[@]}" \
      -Xms"${SPARK_EXECUTOR_MEMORY:?}" -Xmx"${SPARK_EXECUTOR_MEMORY:?}" \
      -cp "$spark_home/jars/*" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "${SPARK_DRIVER_URL:?}" \
      --executor-id "${SPARK_EXECUTOR_ID:?}" \
      --cores "${SPARK_EXECUTOR_CORES:?}" \
      --app-id "${SPARK_APPLICATION_ID:?}" \
      --hostname "${SPARK_EXECUTOR_POD_IP:?}" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:?}"
    ;;
  *)
    exec "$@"
    ;;
esac
