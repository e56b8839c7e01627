# syntax=docker/dockerfile:1.7
# MLflow tracking server + model registry, with the PostgreSQL driver and boto3 for S3 artifacts
# (the upstream image ships neither). The version matches the client pinned by the project.
# Build from the repository root:
#   docker build -f deploy/docker/mlflow.Dockerfile -t ghcr.io/rakuten-mlops/mlflow:3.17.2 .

# ---- builder: a virtual environment with the pinned server packages ----
FROM python:3.11.13-slim-bookworm AS builder
COPY deploy/docker/mlflow-requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/mlflow \
 && /opt/mlflow/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt

# ---- runtime ----
FROM python:3.11.13-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="rakuten-mlops-mlflow" \
      org.opencontainers.image.description="MLflow 3.17.2 tracking server with PostgreSQL and S3 support" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/mlflow/bin:$PATH
RUN groupadd --system --gid 10001 mlflow \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/mlflow --create-home \
        --shell /usr/sbin/nologin mlflow \
 && install -d -o 10001 -g 10001 -m 0750 /mlartifacts
COPY --from=builder /opt/mlflow /opt/mlflow
WORKDIR /home/mlflow
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
# The backend store comes from MLFLOW_BACKEND_STORE_URI (a secret), never from the image.
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--serve-artifacts", "--artifacts-destination", "/mlartifacts"]
