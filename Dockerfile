# syntax=docker/dockerfile:1
# CPU image (default):   docker build -t lookahead-proxy .
# CUDA image:            docker build --target cuda -t lookahead-proxy:cuda .
# Run:                   docker run -p 8000:8000 -v lookahead-cache:/cache [-v /models:/models -e LOOKAHEAD_MODEL=/models/x] lookahead-proxy
# Node 22 LTS: Node 20 reached end of life in April 2026 (CI still tests on 20, the oldest the code supports).
ARG NODE_IMAGE=node:22-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# --- dependencies without onnxruntime-node's CUDA download (the CPU provider ships inside the package) ---
FROM ${NODE_IMAGE} AS deps-cpu
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- dependencies with the CUDA provider libraries, fetched by onnxruntime-node's install script ---
# No .npmrc here: the repository's .npmrc says "skip", which is exactly what this stage must not do.
FROM ${NODE_IMAGE} AS deps-cuda
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

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
    LOOKAHEAD_EXECUTION_PROVIDER=cuda
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
ENV NODE_ENV=production \
    LOOKAHEAD_HOST=0.0.0.0 \
    LOOKAHEAD_PORT=8000 \
    LOOKAHEAD_CACHE_DIR=/cache
# The official image's unprivileged user.
USER node
VOLUME ["/cache"]
EXPOSE 8000
# Healthy once the model is loaded (/ready 200), and while busy (503 "saturated"); not while loading or draining.
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.LOOKAHEAD_PORT||8000)+'/ready').then(async r=>process.exit(r.ok||(await r.json()).status==='saturated'?0:1),()=>process.exit(1))"]
# node directly (not npm) so SIGTERM reaches the server and it shuts down cleanly.
CMD ["node", "--import", "tsx", "src/main.ts"]
