# syntax=docker/dockerfile:1.7
# Training + Airflow image: the same image runs the Celery worker (default command), the
# scheduler, the DAG processor and the API server (compose overrides the command), and the
# `rakuten-mlops` CLI for one-off training runs.
# Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile -t ghcr.io/rakuten-mlops/worker:0.1.0 .

# ---- builder: turn the project into a wheel; only the wheel leaves this stage ----
FROM python:3.11.13-slim-bookworm AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ ./src/
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

# ---- runtime ----
FROM python:3.11.13-slim-bookworm AS runtime
ARG TORCH_VERSION=2.13.0
LABEL org.opencontainers.image.title="rakuten-mlops-worker" \
      org.opencontainers.image.description="Rakuten France product-type classifier: training and Airflow worker" \
      org.opencontainers.image.source="https://github.com/rakuten-mlops/rakuten-mlops" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAKUTEN_ENV=production \
    RAKUTEN_HOME=/var/lib/rakuten \
    RAKUTEN_PARAMS_PATH=/opt/rakuten/params.yaml \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=false \
    MPLCONFIGDIR=/tmp/matplotlib

RUN groupadd --system --gid 10001 rakuten \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/rakuten --create-home \
        --shell /usr/sbin/nologin rakuten \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/rakuten /opt/airflow /opt/airflow/logs /opt/airflow/auth

RUN --mount=type=bind,from=builder,source=/wheels,target=/tmp/wheels \
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \
    pip install --no-cache-dir --no-deps --index-url https://download.pytorch.org/whl/cpu \
        "torch==${TORCH_VERSION}" \
 && pip install --no-cache-dir -c /tmp/constraints.txt \
        "$(ls /tmp/wheels/rakuten_mlops-*.whl)[vision,airflow,monitor,dvc,serve]" \
 && pip check

# DAG files hold scheduling only; the ML logic comes from the installed package.
COPY --chown=10001:10001 src/rakuten_mlops/orchestration/dags/ /opt/airflow/dags/
COPY --chown=10001:10001 params.yaml /opt/rakuten/params.yaml

WORKDIR /opt/rakuten
USER 10001:10001
# 8793: the Celery worker's task-log server, read by the Airflow API server.
EXPOSE 8793
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=5 \
    CMD ["sh", "-c", "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping -d \"celery@${HOSTNAME}\""]
CMD ["airflow", "celery", "worker"]
