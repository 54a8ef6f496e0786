# syntax=docker/dockerfile:1
# CPU image (default):   docker build -t lookahead-proxy .
# CUDA image:            docker build --target cuda -t lookahead-proxy:cuda .
#   (offline: put the NuGet package `node deploy/docker/ort-cuda/ort-cuda.cjs url` names in deploy/docker/ort-cuda/)
# Run:                   docker run -p 8000:8000 -v lookahead-cache:/cache [-v /models:/models -e LOOKAHEAD_MODEL=/models/x] lookahead-proxy
# Checked without a Docker daemon by deploy/docker/check.sh (podman: build, health, serve, drain, writes, size).
# Node 22 LTS: Node 20 reached end of life in April 2026 (CI still tests on 20, the oldest the code supports).
ARG NODE_IMAGE=node:22-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# --- dependencies without onnxruntime-node's CUDA download (the CPU provider ships inside the package) ---
FROM ${NODE_IMAGE} AS deps-cpu
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
COPY deploy/docker/prune-deps.sh /tmp/
# Pruned in the same layer: of onnxruntime-node's 288 MB only this platform's 45 MB is ever loaded.
RUN npm ci --omit=dev --no-audit --no-fund && sh /tmp/prune-deps.sh node_modules

# --- dependencies with the CUDA provider libraries (onnxruntime-node's install script fetches them from NuGet) ---
# No .npmrc here: the repository's .npmrc says "skip", which is what this stage must not do unless the package is
# given. Offline: ORT_CUDA_DIR (a folder of the build context) holds the .nupkg that `ort-cuda.cjs url` names.
FROM ${NODE_IMAGE} AS deps-cuda
WORKDIR /app
ARG ORT_CUDA_DIR=deploy/docker/ort-cuda
COPY package.json package-lock.json ./
COPY deploy/docker/prune-deps.sh /tmp/
COPY ${ORT_CUDA_DIR}/ /tmp/ort-cuda/
COPY deploy/docker/ort-cuda/ort-cuda.cjs /tmp/
RUN if ls /tmp/ort-cuda/*.nupkg >/dev/null 2>&1; then \
      ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --no-audit --no-fund && node /tmp/ort-cuda.cjs install /tmp/ort-cuda; \
    else \
      ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --omit=dev --no-audit --no-fund; \
    fi \
 && node /tmp/ort-cuda.cjs verify && sh /tmp/prune-deps.sh node_modules

# --- CUDA runtime: CUDA 12 + cuDNN 9 from NVIDIA's image, Node copied from the official one ---
FROM ${NODE_IMAGE} AS node-bin
FROM ${CUDA_IMAGE} AS cuda
COPY --from=node-bin /usr/local/bin/node /usr/local/bin/node
RUN useradd --create-home --uid 10001 lookahead && mkdir -p /cache && chown lookahead /cache
WORKDIR /app
COPY --from=deps-cuda /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY config ./config
COPY models ./models
ENV NODE_ENV=production \
    LOOKAHEAD_HOST=0.0.0.0 \
    LOOKAHEAD_PORT=8000 \
    LOOKAHEAD_CACHE_DIR=/cache \
    LOOKAHEAD_EXECUTION_PROVIDER=cuda \
    TSX_DISABLE_CACHE=1 \
    ORT_DISABLE_TELEMETRY=1
USER lookahead
VOLUME ["/cache"]
EXPOSE 8000
# Healthy once the model is loaded (/ready 200), and while busy (503 "saturated"); not while loading or draining.
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.LOOKAHEAD_PORT||8000)+'/ready').then(async r=>process.exit(r.ok||(await r.json()).status==='saturated'?0:1),()=>process.exit(1))"]
CMD ["node", "--import", "tsx", "src/main.ts"]

# --- CPU runtime (the default target, so it comes last) ---
FROM ${NODE_IMAGE} AS cpu
WORKDIR /app
RUN mkdir -p /cache && chown node:node /cache
COPY --from=deps-cpu /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY config ./config
COPY models ./models
# The process writes nothing outside /cache (a read-only root file system works): tsx keeps its compile cache in memory
# (a new container has none to reuse anyway), and onnxruntime's telemetry, which on Linux writes a device id and an
# event database under ~/.cache/Microsoft and logs in /tmp and would upload events where it can, is off.
ENV NODE_ENV=production \
    LOOKAHEAD_HOST=0.0.0.0 \
    LOOKAHEAD_PORT=8000 \
    LOOKAHEAD_CACHE_DIR=/cache \
    TSX_DISABLE_CACHE=1 \
    ORT_DISABLE_TELEMETRY=1
# The official image's unprivileged user.
USER node
VOLUME ["/cache"]
EXPOSE 8000
# Healthy once the model is loaded (/ready 200), and while busy (503 "saturated"); not while loading or draining.
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.LOOKAHEAD_PORT||8000)+'/ready').then(async r=>process.exit(r.ok||(await r.json()).status==='saturated'?0:1),()=>process.exit(1))"]
# node directly (not npm) so SIGTERM reaches the server and it shuts down cleanly.
CMD ["node", "--import", "tsx", "src/main.ts"]
