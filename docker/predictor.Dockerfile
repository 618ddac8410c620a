# syntax=docker/dockerfile:1.7
# tailorline predictor: a KServe custom predictor container (V2 protocol, REST 8080, gRPC 8081)
#   tailorline predictor --models /mnt/models --http-port 8080 --grpc-port 8081
# on the TensorFlow GPU base (CUDA + cuDNN; runs on CPU too). Build from the repo root:
#   docker build -f docker/predictor.Dockerfile -t tailorline-predictor:0.1.0 .
# The venv sees the base's TensorFlow (--system-site-packages), so pip does not install it twice.
ARG TF_IMAGE=tensorflow/tensorflow:2.21.0-gpu

FROM ${TF_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY optimizer ./optimizer
COPY gen ./gen
RUN python3 -m venv --system-site-packages /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir "pip==25.3" "setuptools==80.9.0" "wheel==0.45.1" \
 && /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-cache-dir /wheels/tailorline-*.whl \
 && /opt/venv/bin/python -c "import tensorflow, kserve, services.cli"

FROM ${TF_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TAILORLINE_HOME=/var/lib/tailorline \
    TAILORLINE_MODELS_DIR=/mnt/models
RUN groupadd --gid 10001 tailorline \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/tailorline \
      --shell /usr/sbin/nologin tailorline \
 && mkdir -p /var/lib/tailorline /mnt/models && chown 10001:10001 /var/lib/tailorline
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/tailorline
EXPOSE 8080 8081
ENTRYPOINT ["tailorline"]
CMD ["predictor", "--models", "/mnt/models", "--http-port", "8080", "--grpc-port", "8081"]
