#!/usr/bin/env bash
# Wait (up to 15 s) until Redis answers, then run the given command.
url=${REDIS_URL:-redis://127.0.0.1:6379/0}
for _ in $(seq 1 75); do
  redis-cli -u "$url" ping >/dev/null 2>&1 && exec "$@"
  sleep 0.2
done
echo "Redis at $url did not answer" >&2
exit 1
