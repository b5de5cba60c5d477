# syntax=docker/dockerfile:1
# Li2 Lab images, two targets from one file:
#
#   docker build --target api    -t li2lab-api:0.1.0    .   # Flask API under gunicorn; no torch
#   docker build --target worker -t li2lab-worker:0.1.0 .   # Celery GPU worker; CUDA build of torch
#
# Both install through requirements/constraints.txt with the same `pip install -c ...` command that
# CI and `make install` use, so the versions CI tests are the versions the images run. The only
# difference for the worker is that torch comes first from the PyTorch CUDA index; the constraints
# pin (torch==2.13.0) is then already satisfied by 2.13.0+cuXXX and pip leaves it alone.
#
# Both targets use the same Python (3.11, as CI) on Debian slim. The worker needs no CUDA base
# image: the CUDA wheels carry the CUDA runtime libraries, and the NVIDIA Container Toolkit on the
# host mounts the driver into the container when compose reserves a GPU.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------------
# base: interpreter, an unprivileged user, the virtualenv location. Nothing project-specific.
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/li2 \
    PATH=/opt/li2/bin:$PATH \
    HOME=/srv/li2
# /srv/li2/var: where relative defaults (./var, the embedded SQLite files) land, writable.
RUN groupadd --system --gid 10001 li2 \
 && useradd --system --uid 10001 --gid li2 --home-dir /srv/li2 --create-home --shell /usr/sbin/nologin li2 \
 && install -d -o li2 -g li2 /srv/li2/var
WORKDIR /srv/li2

# ---------------------------------------------------------------------------------------------
# source: only what `pip install .` needs (see .dockerignore for what never enters the context).
FROM base AS source
WORKDIR /build
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY core core
COPY store store
COPY service service
COPY worker worker
COPY cli cli

# ---------------------------------------------------------------------------------------------
# build-api: the base dependencies only (flask, sqlalchemy, celery client, gunicorn, numpy ...).
FROM source AS build-api
RUN python -m venv /opt/li2 \
 && pip install --no-cache-dir -c requirements/constraints.txt .

# ---------------------------------------------------------------------------------------------
# build-worker: CUDA torch first, then the worker extra through the same constraints file.
# TORCH_CUDA picks the PyTorch wheel index: cu128 (CUDA 12.8) runs on Hopper (H100/H200), Ada,
# Ampere and Blackwell with an NVIDIA driver >= 570. Use e.g. cu126 for older drivers.
FROM source AS build-worker
ARG TORCH_CUDA=cu128
RUN python -m venv /opt/li2 \
 && pip install --no-cache-dir -c requirements/constraints.txt \
        --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}" torch \
 && pip install --no-cache-dir -c requirements/constraints.txt '.[worker]'

# ---------------------------------------------------------------------------------------------
# api: gunicorn serving li2_service.wsgi:app on port 8000 as user li2.
FROM base AS api
COPY --from=build-api /opt/li2 /opt/li2
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8", "--worker-class", "gthread", \
     "--timeout", "60", "--access-logfile", "-", "li2_service.wsgi:app"]

# ---------------------------------------------------------------------------------------------
# worker: one Celery worker per GPU (`li2lab worker --device cuda`) as user li2.
# The toolkit variables ask for compute + nvidia-smi only; compose narrows the visible GPUs.
FROM base AS worker
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    MPLBACKEND=Agg
# torch.compile (on by default on CUDA, see LI2_COMPILE) has Triton build a small C launcher at run
# time, which needs a C compiler and the libc headers. Not version-pinned (DL3008): Debian security
# updates replace exact versions, and the pinned base image already fixes the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build-worker /opt/li2 /opt/li2
USER 10001:10001
# Alive = this container's Celery node (li2-<pid>@<hostname>) answers a broker ping; the main
# process answers while a pool child trains, so a long run does not make it unhealthy.
HEALTHCHECK --interval=60s --timeout=30s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import socket, sys; from li2_worker.celery_app import app; replies = app.control.ping(timeout=5); sys.exit(0 if any(n.endswith('@' + socket.gethostname()) for r in replies for n in r) else 1)"]
CMD ["li2lab", "worker", "--device", "cuda"]
