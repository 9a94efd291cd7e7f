# syntax=docker/dockerfile:1
# One image recipe for the five services, built from the repository root (libs/common is shared):
#   docker build --build-arg SERVICE=ai-fusion -t depthflow/ai-fusion .
# The image holds the service, libs/common and their locked third-party wheels: no dev server
# (libs/devstack), no test or dev tool (tests/deploy/test_image.py checks the same uv selection).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ARG UV_VERSION=0.13.10
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
# every workspace member's pyproject.toml is needed for --frozen; only SERVICE's are installed
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY services services
COPY tools tools
RUN test -n "${SERVICE}" && uv sync --frozen --no-dev --no-editable --package "depthflow-${SERVICE}"
# warm numba's cache at build: kernels compiled at import are written under NUMBA_CACHE_DIR, so
# a new pod does not spend its first seconds compiling (the runtime stage copies the cache)
ENV NUMBA_CACHE_DIR=/app/numba-cache
COPY deploy/docker/warm.py /app/warm.py
RUN mkdir -p /app/numba-cache && /app/.venv/bin/python /app/warm.py "${SERVICE}"

FROM ${PYTHON_IMAGE}
ARG SERVICE
RUN groupadd --system --gid 10001 depthflow \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin depthflow
WORKDIR /app
# the code stays root's (read-only to the service); only numba's cache is the service's to write
COPY --from=build /app/.venv /app/.venv
COPY --from=build --chown=10001:10001 /app/numba-cache /app/numba-cache
# the service's console script (depthflow-<service>) under one name, so ENTRYPOINT is the same
RUN ln -s "/app/.venv/bin/depthflow-${SERVICE}" /app/.venv/bin/depthflow-service
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/app/numba-cache \
    DEPTHFLOW_HTTP_HOST=0.0.0.0 \
    DEPTHFLOW_HTTP_PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["depthflow-service"]
