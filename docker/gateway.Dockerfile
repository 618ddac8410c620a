# syntax=docker/dockerfile:1.7
# tailorline gateway: `tailorline gateway` (gRPC 50051, metrics 9464). Build from the repo root:
#   docker build -f docker/gateway.Dockerfile -t tailorline-gateway:0.1.0 .
# Bases are pinned by tag; pin by digest in your registry (--build-arg PYTHON_IMAGE=python@sha256:...).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: a wheel of the project (pure Python; generated gRPC code is committed) ----------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m pip install --no-cache-dir "pip==25.3" "setuptools==80.9.0" "wheel==0.45.1"
COPY pyproject.toml README.md ./
COPY services ./services
COPY optimizer ./optimizer
COPY gen ./gen
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .
# Every dependency is installed from wheels into a venv that the final stage copies.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir /wheels/tailorline-*.whl

# ---- final: the venv and a non-root user, no compilers, no pip cache ------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TAILORLINE_HOME=/var/lib/tailorline
RUN groupadd --gid 10001 tailorline \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/tailorline \
      --shell /usr/sbin/nologin tailorline \
 && mkdir -p /var/lib/tailorline && chown 10001:10001 /var/lib/tailorline
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/tailorline
EXPOSE 50051 9464
ENTRYPOINT ["tailorline"]
CMD ["gateway"]
