#!/usr/bin/env bash
# The replication tests start their own redis-server (Debian's package) on a free loopback port. Install it when
# missing, without leaving the package's own service running on 6379: the tests never use it, and a fresh CI
# machine should not carry a stray Redis.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
# policy-rc.d exit 101 = "do not start services" for the duration of the install (Debian's documented switch).
had_policy=0
[ -e /usr/sbin/policy-rc.d ] && had_policy=1
if [ "$had_policy" -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server
[ "$had_policy" -eq 0 ] && $SUDO rm -f /usr/sbin/policy-rc.d
# Where systemd started it anyway, stop it and keep it off.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
  $SUDO systemctl disable --now redis-server || true
fi
redis-server --version
