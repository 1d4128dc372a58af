#!/usr/bin/env bash
# The Redis of `make run`: reuse one already answering on REDIS_URL's port,
# otherwise start a private one (no persistence) in the foreground.
set -euo pipefail
url=${REDIS_URL:-redis://127.0.0.1:6379/0}
port=$(python3 -c "import sys,urllib.parse as u; print(u.urlsplit(sys.argv[1]).port or 6379)" "$url")
if redis-cli -p "$port" ping >/dev/null 2>&1; then
  echo "Redis already answers on port $port; using it."
  exec tail -f /dev/null
fi
mkdir -p instance/redis
exec redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir instance/redis
