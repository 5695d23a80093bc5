#!/usr/bin/env bash
# Installs what sluice needs to build, test and demo on Debian 12; idempotent, quiet unless it fails.
#
#   tools/install-deps.sh          # as root, or as a user with sudo
#
# Debian packages (build, run, test) and, via npm, node-postgres for the integration tests.
# Package scripts are kept from starting services (PostgreSQL, PgBouncer) while installing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE_DIR="$ROOT/tests/integration/node"

PACKAGES=(
  # build
  cmake g++ clang clang-format libasio-dev libssl-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libpg-query-dev libpq-dev nlohmann-json3-dev pkg-config libc-ares-dev
  # run and test
  postgresql-15 postgresql-contrib pgbouncer python3-pytest python3-psycopg python3-asyncpg
  python3-pytest-timeout python3-prometheus-client socat strace valgrind ccache
  # PostgreSQL's regression suite (tools/regress.sh): its C module is built against the headers
  postgresql-server-dev-15 make bzip2
)
# Node may come from elsewhere (e.g. a nodesource build that bundles npm); only fill the gaps.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
  SUDO=(sudo)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  log=$(mktemp /tmp/install-deps.XXXXXX.log)
  # policy-rc.d exit 101 = "do not start services"; removed afterwards if we put it there.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    created_policy=1
  fi
  cleanup() { [ "$created_policy" = 1 ] && "${SUDO[@]}" rm -f "$policy"; return 0; }
  trap cleanup EXIT
  export DEBIAN_FRONTEND=noninteractive
  if ! { "${SUDO[@]}" apt-get update -qq && \
         "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Options::=--force-confold "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "install-deps: apt-get failed (full log: $log)" >&2
    exit 1
  fi
  rm -f "$log"
  cleanup
  trap - EXIT
fi

# node-postgres for tests/integration/test_drivers.py, pinned by package-lock.json.
if [ ! -f "$NODE_DIR/node_modules/.package-lock.json" ] || \
   [ "$NODE_DIR/package-lock.json" -nt "$NODE_DIR/node_modules/.package-lock.json" ]; then
  echo "install-deps: npm ci in tests/integration/node"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

echo "install-deps: ok"
