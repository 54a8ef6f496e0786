#!/usr/bin/env bash
# Mesa lavapipe, a software Vulkan driver, so that the WebGPU EP tests run on a machine without a GPU.
# Debian 12's own Mesa (22.3) is too old for Dawn ("No supported adapters"); its backports suite has Mesa 25.
# Idempotent: does nothing when a recent enough lavapipe and the Vulkan loader are already installed.
set -euo pipefail

MIN_MESA=24
installed() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge "$MIN_MESA" && ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 \
    && dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'install ok installed'
}

if installed; then
  echo "lavapipe: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "lavapipe: not installed and not root (no sudo): run this script as root" >&2; exit 1; }
  SUDO=sudo
fi
. /etc/os-release
[ "${ID:-}" = debian ] || { echo "lavapipe: this script knows Debian only (found ${ID:-unknown}); install Mesa >= $MIN_MESA's Vulkan drivers yourself" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  sources=/etc/apt/sources.list.d/debian.sources
  if [ -f "$sources" ] && ! grep -q 'bookworm-backports' "$sources"; then
    $SUDO sed -i 's/^Suites: bookworm bookworm-updates$/Suites: bookworm bookworm-updates bookworm-backports/' "$sources"
  fi
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers
else
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q mesa-vulkan-drivers
fi
$SUDO apt-get install -y -q libvulkan1
installed || { echo "lavapipe: installed packages are still older than Mesa $MIN_MESA" >&2; exit 1; }
echo "lavapipe: installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
