# syntax=docker/dockerfile:1.7
# Batch-scoring image for Spark on Kubernetes: the same image runs the driver and the executors
# (deploy/spark/entrypoint.sh picks the role from the first argument, as Spark's own images do).
# Spark comes from the pyspark wheel (its jars include the Kubernetes scheduler); Java 17 from
# Debian. The executors score with the registered model, so the image holds what its code imports
# (the `vision` extra for models that use images, `deep-serve` for transformer models exported to ONNX).
# Build from the repository root:
#   docker build -f deploy/docker/spark.Dockerfile -t ghcr.io/rakuten-mlops/spark:0.1.0 .

# ---- builder: turn the project into a wheel; only the wheel leaves this stage ----
FROM python:3.11.13-slim-bookworm AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ ./src/
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

# ---- runtime ----
FROM python:3.11.13-slim-bookworm AS runtime
ARG TORCH_VERSION=2.13.0
ARG JRE_VERSION=17.0.21.1+2-1~deb12u1
LABEL org.opencontainers.image.title="rakuten-mlops-spark" \
      org.opencontainers.image.description="Rakuten France product-type classifier: catalog scoring on Spark" \
      org.opencontainers.image.source="https://github.com/rakuten-mlops/rakuten-mlops" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAKUTEN_ENV=production \
    RAKUTEN_HOME=/var/lib/rakuten \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/usr/local/bin/python \
    MPLCONFIGDIR=/tmp/matplotlib

# tini reaps the JVM's and the Python workers' children; procps gives Spark's scripts `ps`
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        "openjdk-17-jre-headless=${JRE_VERSION}" tini=0.19.0-1+b3 procps=2:4.0.2-3 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 rakuten \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/rakuten --create-home \
        --shell /usr/sbin/nologin rakuten \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/rakuten /opt/rakuten/work-dir

RUN --mount=type=bind,from=builder,source=/wheels,target=/tmp/wheels \
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \
    pip install --no-cache-dir --no-deps --index-url https://download.pytorch.org/whl/cpu \
        "torch==${TORCH_VERSION}" \
 && pip install --no-cache-dir -c /tmp/constraints.txt \
        "$(ls /tmp/wheels/rakuten_mlops-*.whl)[spark,vision,deep-serve]" \
 && pip check

COPY --chmod=0755 deploy/spark/entrypoint.sh /opt/rakuten/entrypoint.sh
# What spark-submit runs: local:///opt/rakuten/spark_job.py (the module of the installed package).
RUN ln -s /usr/local/lib/python3.11/site-packages/rakuten_mlops/pipelines/spark_job.py /opt/rakuten/spark_job.py

WORKDIR /opt/rakuten/work-dir
USER 10001:10001
# A batch image serves nothing: the check says that Spark and the project import.
HEALTHCHECK --interval=60s --timeout=30s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import pyspark, rakuten_mlops.pipelines.spark_scoring"]
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/rakuten/entrypoint.sh"]
CMD ["rakuten-mlops", "batch", "score", "--help"]
