#!/usr/bin/env bash
# Try sluice: build it, start a throwaway PostgreSQL, put sluice in front on port 6432, run pgbench.
#
#   tools/demo.sh                 # keeps running until Ctrl-C, then cleans everything up
#
# Environment:
#   SKIP_DEPS=1        do not run tools/install-deps.sh
#   SLUICE_BIN=PATH    pooler to run (default build/sluice, built by this script)
#   DEMO_PORT=6432     where sluice listens
#   DEMO_SECONDS=N     stop by itself after N seconds instead of waiting for Ctrl-C
#   DEMO_POOLER_USER=U run the pooler as OS user U (default: ourselves; `postgres` for a
#                      PgBouncer binary started as root, since PgBouncer refuses root)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PORT=${DEMO_PORT:-6432}

say() { printf '\033[1m%s\033[0m\n' "$*"; }

if [ "${SKIP_DEPS:-0}" != 1 ]; then
  say "Installing dependencies (Debian packages, npm)..."
  bash "$ROOT/tools/install-deps.sh"
fi

if [ -z "${SLUICE_BIN:-}" ]; then
  say "Building sluice (build/, RelWithDebInfo)..."
  cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$ROOT/build" -j "${JOBS:-2}" --target sluice >/dev/null
  SLUICE_BIN=$ROOT/build/sluice
fi

# Postgres must not run as root: use the `postgres` OS user then. sluice runs as whoever we are.
PG_USER=$(id -un)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  PG_USER=postgres
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi

POOLER_USER=${DEMO_POOLER_USER:-}
if [ -z "$POOLER_USER" ] && [ "$(id -u)" -eq 0 ] && "$SLUICE_BIN" --version 2>/dev/null | grep -q '^PgBouncer'; then
  POOLER_USER=postgres
fi
as_pooler=()
[ -n "$POOLER_USER" ] && as_pooler=(setpriv --reuid="$POOLER_USER" --regid="$POOLER_USER" --init-groups)

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if listening "$PORT"; then
  echo "demo: port $PORT is already in use (set DEMO_PORT)" >&2
  exit 1
fi

DIR=$(mktemp -d /tmp/sluice-demo.XXXXXX)
chmod 755 "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
PGPORT=$(free_port)
SLUICE_PID=""

cleanup() {
  trap - EXIT INT TERM
  echo
  say "Stopping..."
  if [ -n "$SLUICE_PID" ] && kill -0 "$SLUICE_PID" 2>/dev/null; then
    kill -INT "$SLUICE_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SLUICE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SLUICE_PID" 2>/dev/null || true
  fi
  if [ -f "$DIR/data/postmaster.pid" ]; then
    (cd / && "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$DIR"
  say "Cleaned up."
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Starting PostgreSQL 15 on 127.0.0.1:$PGPORT (data in $DIR/data)..."
(cd / && "${as_pg[@]}" "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C \
  --no-sync >"$DIR/initdb.log" 2>&1)
cat >>"$DIR/data/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 100
fsync = off
synchronous_commit = off
CONF
(cd / && "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w start >/dev/null)
psql -X -q -h "$DIR" -p "$PGPORT" -U postgres -d postgres -c "create database demo"
pgbench -i -s 5 -q -h "$DIR" -p "$PGPORT" -U postgres demo 2>&1 | tail -n 1

say "Starting sluice on 127.0.0.1:$PORT (transaction pooling, pool of 5 server connections)..."
mkdir -p "$DIR/sluice"
[ -n "$POOLER_USER" ] && chown "$POOLER_USER:" "$DIR/sluice"
printf '"postgres" ""\n' >"$DIR/sluice/userlist.txt"
cat >"$DIR/sluice/sluice.ini" <<INI
[databases]
demo = host=127.0.0.1 port=$PGPORT dbname=demo

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir = $DIR/sluice
auth_type = trust
auth_file = $DIR/sluice/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = 5
max_client_conn = 200
logfile = $DIR/sluice/sluice.log
INI
(cd "$DIR/sluice" && exec "${as_pooler[@]}" "$SLUICE_BIN" "$DIR/sluice/sluice.ini") >"$DIR/sluice/stdout.log" 2>&1 &
SLUICE_PID=$!
for _ in $(seq 200); do
  listening "$PORT" && break
  kill -0 "$SLUICE_PID" 2>/dev/null || { cat "$DIR/sluice/stdout.log" "$DIR/sluice/sluice.log" 2>/dev/null; exit 1; }
  sleep 0.05
done
listening "$PORT" || { echo "demo: sluice did not start listening" >&2; exit 1; }

say "pgbench: 16 clients, select-only, 5 seconds, through sluice (5 server connections)..."
pgbench -n -S -c 16 -j 2 -T 5 -h 127.0.0.1 -p "$PORT" -U postgres demo 2>&1 |
  grep -E 'number of (clients|transactions actually processed|failed)|latency average|tps ='

echo
say "sluice is running (pid $SLUICE_PID, log $DIR/sluice/sluice.log). Try:"
echo "  psql -h 127.0.0.1 -p $PORT -U postgres demo"
echo "  psql -h 127.0.0.1 -p $PORT -U postgres pgbouncer -c 'SHOW POOLS'"
if [ -n "${DEMO_SECONDS:-}" ]; then
  say "Stopping in $DEMO_SECONDS s (DEMO_SECONDS)."
  sleep "$DEMO_SECONDS"
else
  say "Press Ctrl-C to stop and clean up."
  wait "$SLUICE_PID" || true
  echo "demo: sluice exited" >&2
fi
