# syntax=docker/dockerfile:1.7
# Streamlit UI: talks to the prediction API only (RAKUTEN_API_URL); no model, no torch.
# Build from the repository root:
#   docker build -f deploy/docker/ui.Dockerfile -t ghcr.io/rakuten-mlops/ui:0.1.0 .

# ---- builder: turn the project into a wheel; only the wheel leaves this stage ----
FROM python:3.11.13-slim-bookworm AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ ./src/
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

# ---- runtime ----
FROM python:3.11.13-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="rakuten-mlops-ui" \
      org.opencontainers.image.description="Rakuten France product-type classifier: Streamlit UI" \
      org.opencontainers.image.source="https://github.com/rakuten-mlops/rakuten-mlops" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAKUTEN_ENV=production \
    RAKUTEN_HOME=/var/lib/rakuten \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    MPLCONFIGDIR=/tmp/matplotlib

RUN groupadd --system --gid 10001 rakuten \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/rakuten --create-home \
        --shell /usr/sbin/nologin rakuten \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/rakuten

RUN --mount=type=bind,from=builder,source=/wheels,target=/tmp/wheels \
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \
    pip install --no-cache-dir -c /tmp/constraints.txt \
        "$(ls /tmp/wheels/rakuten_mlops-*.whl)[ui]" \
 && pip check

WORKDIR /home/rakuten
USER 10001:10001
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["rakuten-mlops", "ui", "--host", "0.0.0.0", "--port", "8501"]
