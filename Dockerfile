# syntax=docker/dockerfile:1
#
# One image for every BOS service. The command picks the service, e.g.
#   uvicorn checkout.app:app --host 0.0.0.0 --port 8003 --no-access-log --no-server-header
#   python -m bos_common.migrate checkout
#   python -m stripe_sim --host 0.0.0.0 --port 12111          (dev/test only)
# docker-compose.yml and deploy/k8s set the command per service.
ARG PYTHON_IMAGE=python:3.11-slim

# --------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install "uv==${UV_VERSION}"

WORKDIR /app

# 1) Third-party dependencies only: this layer is rebuilt only when the lock file or a
#    member's pyproject.toml changes, not on every source edit.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/tokens/pyproject.toml services/tokens/
COPY services/catalog/pyproject.toml services/catalog/
COPY services/checkout/pyproject.toml services/checkout/
COPY services/subscriptions/pyproject.toml services/subscriptions/
COPY services/webhooks/pyproject.toml services/webhooks/
COPY tools/stripe-sim/pyproject.toml tools/stripe-sim/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --all-packages --no-dev --no-install-workspace

# 2) The workspace members. They stay at their repository paths (installed editable) so that
#    each service's migrations/ directory, which lives beside src/, ships in the image too.
COPY libs ./libs
COPY services ./services
COPY tools ./tools
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --all-packages --no-dev \
 && python -m compileall -q -j 0 libs services tools

# --------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="bos" \
      org.opencontainers.image.description="BOS checkout and subscription platform (all services)" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    PORT=8080

# Fixed numeric ids, so Kubernetes' runAsNonRoot can verify them.
RUN groupadd --system --gid 10001 bos \
 && useradd --system --uid 10001 --gid bos --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin bos

WORKDIR /app
# Code and venv stay owned by root: the service user can read but never modify them,
# which also makes a read-only root filesystem work (bytecode is compiled at build time).
COPY --from=builder /app /app

USER 10001:10001
EXPOSE 8080 8001 8002 8003 8004 8005 12111

CMD ["uvicorn", "gateway.app:app", "--host", "0.0.0.0", "--port", "8080", "--no-access-log", "--no-server-header"]
