# syntax=docker/dockerfile:1.7
# tailorline optimizer: the Ray image of the KubeRay RayService (head and workers) with the
# project installed, so `optimizer.serving.serve:build_app` and the gRPC servicer named in
# optimizer/serving/serve_config.yaml import on every node. Build from the repo root:
#   docker build -f docker/optimizer.Dockerfile -t tailorline-optimizer:0.1.0 .
# The Ray version must equal the pinned ray in pyproject.toml and optimizer.rayVersion in the chart.
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311

FROM ${RAY_IMAGE} AS build
WORKDIR /tmp/src
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 services ./services
COPY --chown=1000:100 optimizer ./optimizer
COPY --chown=1000:100 gen ./gen
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels .

FROM ${RAY_IMAGE}
# Installed from the wheel built above (no source tree, no compilers in this stage); the base's
# ray is already the pinned version, so pip keeps it.
COPY --from=build /tmp/wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/tailorline-*.whl \
 && rm -rf /tmp/wheels \
 && python -c "import optimizer.serving.serve, ray; assert ray.__version__ == '2.60.0', ray.__version__"
ENV PYTHONDONTWRITEBYTECODE=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    TAILORLINE_HOME=/var/lib/tailorline
# The base image's non-root user `ray` (uid 1000), which the chart's securityContext expects.
USER 1000
