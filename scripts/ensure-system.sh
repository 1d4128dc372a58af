#!/usr/bin/env bash
# Install the Debian packages a target needs, only when they are missing.
#   scripts/ensure-system.sh run    -> redis-server; Pango, HarfBuzz's subsetter and a font (WeasyPrint: PDF reports)
#   scripts/ensure-system.sh test   -> the same, postgresql, chromium, nginx (deploy/nginx.conf's test)
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

need=()
want() { command -v "$1" >/dev/null 2>&1 || [ -x "${2:-/nonexistent}" ] || need+=("$3"); }

want_lib() { ldconfig -p 2>/dev/null | grep -q "$1" || need+=("$2"); }

want redis-server "" redis-server
# WeasyPrint (the DJ analytics PDF report) loads these with ctypes/cffi at run time.
want_lib libpango-1.0.so.0 libpango-1.0-0
want_lib libpangoft2-1.0.so.0 libpangoft2-1.0-0
want_lib libharfbuzz-subset.so.0 libharfbuzz-subset0
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ "${1:-run}" = test ]; then
  { command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; } \
    || need+=(postgresql)
  want chromium /usr/bin/chromium chromium
  want nginx /usr/sbin/nginx nginx
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need+=(python3-venv); fi

if [ ${#need[@]} -gt 0 ]; then
  echo "Installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
