# syntax=docker/dockerfile:1.7
# Prediction API: FastAPI + uvicorn serving the champion model of the MLflow registry.
# Build from the repository root (the context must hold pyproject.toml, README.md, src/, constraints.txt):
#   docker build -f deploy/docker/api.Dockerfile -t ghcr.io/rakuten-mlops/api:0.1.0 .

# ---- builder: turn the project into a wheel; only the wheel leaves this stage ----
FROM python:3.11.13-slim-bookworm AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ ./src/
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

# ---- runtime ----
FROM python:3.11.13-slim-bookworm AS runtime
ARG TORCH_VERSION=2.13.0
LABEL org.opencontainers.image.title="rakuten-mlops-api" \
      org.opencontainers.image.description="Rakuten France product-type classifier: prediction API" \
      org.opencontainers.image.source="https://github.com/rakuten-mlops/rakuten-mlops" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAKUTEN_ENV=production \
    RAKUTEN_HOME=/var/lib/rakuten \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/.cache

# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 rakuten \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/rakuten --create-home \
        --shell /usr/sbin/nologin rakuten \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/rakuten

# torch comes from PyTorch's CPU index without its dependencies (the PyPI wheel pulls
# several GB of CUDA libraries); the project install then resolves torch's own
# dependencies and everything else from PyPI under the repository's constraints.
# The wheel and constraints are bind-mounted, so neither stays in a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/tmp/wheels \
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \
    pip install --no-cache-dir --no-deps --index-url https://download.pytorch.org/whl/cpu \
        "torch==${TORCH_VERSION}" \
 && pip install --no-cache-dir -c /tmp/constraints.txt \
        "$(ls /tmp/wheels/rakuten_mlops-*.whl)[serve,vision,deep-serve]" \
 && pip check

WORKDIR /home/rakuten
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["rakuten-mlops", "serve", "--host", "0.0.0.0", "--port", "8000"]
