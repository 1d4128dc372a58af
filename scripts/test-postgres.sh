#!/usr/bin/env bash
# Start the machine's PostgreSQL cluster with pg_ctlcluster and make sure the
# test role and database exist. Prints the SQLAlchemy URL on stdout.
# PG_TEST_DB names the database (default bmm_test): two checkouts on one
# machine can each run the PostgreSQL suite at once with their own.
set -euo pipefail
# Suites started side by side (make -j3) run this at the same instant: one at
# a time, or both would start the cluster (the second fails on its lock file)
# and both would create the role.
exec 9>"${TMPDIR:-/tmp}/bmm-test-postgres.lock"
flock 9
# A cluster created without a locale in the environment (a bare container)
# would be SQL_ASCII; the database below asks for UTF-8 whatever the cluster.
export LANG="${LANG:-C.UTF-8}"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  # Another program may be starting it at this moment: then waiting for it
  # below is enough.
  pg_ctlcluster "$version" main start >&2 9>&- || echo "(pg_ctlcluster start failed; waiting for the server)" >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
ready=
for _ in $(seq 1 100); do
  if as_postgres pg_isready -q -p "$port"; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { echo "PostgreSQL did not become ready on port $port" >&2; exit 1; }

user=bmm_test
pass=bmm_test
db="${PG_TEST_DB:-bmm_test}"
case "$db" in *[!a-z0-9_]*|"") echo "PG_TEST_DB must be lower-case letters, digits and _" >&2; exit 2;; esac
as_postgres psql -q -p "$port" -tAc "SELECT 1 FROM pg_roles WHERE rolname='$user'" | grep -q 1 \
  || as_postgres psql -q -p "$port" -c "CREATE ROLE $user LOGIN PASSWORD '$pass'" >&2
as_postgres psql -q -p "$port" -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
  || as_postgres psql -q -p "$port" -c "CREATE DATABASE $db OWNER $user ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0" >&2
echo "postgresql+psycopg://$user:$pass@127.0.0.1:$port/$db"
