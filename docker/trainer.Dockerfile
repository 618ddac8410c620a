# syntax=docker/dockerfile:1.7
# tailorline trainer: the Ray image of retraining RayJobs (`tailorline retrain`: Ray Tune over the
# Keras models), on Ray's CUDA base so a GPU worker group can train on GPUs. Build from the root:
#   docker build -f docker/trainer.Dockerfile -t tailorline-trainer:0.1.0 .
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu

FROM ${RAY_IMAGE} AS build
WORKDIR /tmp/src
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 services ./services
COPY --chown=1000:100 optimizer ./optimizer
COPY --chown=1000:100 gen ./gen
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels .

FROM ${RAY_IMAGE}
COPY --from=build /tmp/wheels /tmp/wheels
# tensorflow[and-cuda] brings the CUDA/cuDNN wheels TensorFlow links against.
RUN pip install --no-cache-dir /tmp/wheels/tailorline-*.whl \
      "tensorflow[and-cuda]==2.21.0" \
 && rm -rf /tmp/wheels \
 && python -c "import tensorflow, ray.tune, services.cli"
ENV PYTHONDONTWRITEBYTECODE=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TAILORLINE_HOME=/var/lib/tailorline
USER 1000
