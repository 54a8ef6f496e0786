#!/bin/sh
# Drops from a production node_modules what the image never loads (run in the image's deps stage, after npm ci):
# onnxruntime-node ships the binaries of every platform (darwin 86 MB, win32 134 MB, linux arm64 25 MB) and the
# process loads only its own; TypeScript sources and declarations, source maps and packages' own tests and examples
# are never read at run time (tsx compiles src/ only; no package's entry point is a .ts file).
set -eu
nm=${1:-node_modules}
bins=$nm/onnxruntime-node/bin/napi-v6
platform=$(node -p 'process.platform + "/" + process.arch')
[ -e "$bins/$platform/onnxruntime_binding.node" ] || { echo "prune-deps: no onnxruntime-node binding for $platform" >&2; exit 1; }
for dir in "$bins"/*/*; do
  [ "${dir#"$bins"/}" = "$platform" ] || rm -rf "$dir"
done
find "$bins" -mindepth 1 -type d -empty -delete
find "$nm" -type d \( -name test -o -name tests -o -name __tests__ -o -name example -o -name examples -o -name .github \) \
  -prune -exec rm -rf {} +
find "$nm" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \) -delete
