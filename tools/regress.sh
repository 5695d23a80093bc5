#!/usr/bin/env bash
# PostgreSQL 15's own regression suite (src/test/regress) as a yardstick of "behaves like a direct
# connection": runs it direct and through sluice in several pool modes, all in one run, and reports
# passes per mode and the diffs. Nothing of PostgreSQL is kept in the project: the suite is taken
# at run time from the Debian source package (apt-get source, with a private apt configuration, so
# the system's sources are not touched) into a cache directory, and its C test module (regress.c)
# is built there against the installed server headers (PGXS).
#
#   tools/regress.sh                 # full parallel_schedule, modes direct,session,tx20,tx4bg
#   tools/regress.sh --ci            # CI: the same, then fail if a mode passes fewer tests than
#                                    #     tools/regress-baseline.txt records
#   tools/regress.sh --modes direct,tx4bg --tests "boolean char"    # a quick look
#   tools/regress.sh --help          # every option (tools/regress.py)
#
# Environment:
#   SLUICE_BIN=PATH       pooler binary (default build/sluice)
#   REGRESS_CACHE=DIR     where the source is kept between runs (default /var/tmp/sluice-regress)
#   REGRESS_PG_SRC=DIR    use this PostgreSQL source tree instead (needs src/test/regress)
#
# Needs (tools/install-deps.sh installs them): postgresql-15, postgresql-server-dev-15 (headers,
# PGXS), dpkg-dev (dpkg-source), make, gcc, python3-psycopg; a reachable Debian mirror the first time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${REGRESS_CACHE:-/var/tmp/sluice-regress}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PKG=postgresql-15

log() { echo "regress.sh: $*" >&2; }

# -- 1. the source: src/test/regress of the installed minor version (or the nearest available) ----
# The suite and psql must be of the same minor version (psql's handling of a failed COPY FROM STDIN
# changed between 15.18 and 15.20): when the mirror lacks the installed version's source, psql and
# pg_regress of the version used are taken from its postgresql-client-15 .deb (extracted into the
# cache; nothing is installed). The server stays the installed one.
SRC_TREE="" CLIENT_DIR="" APT_DIR="" APT_OPTS=()

# apt_private DIR: a private apt configuration for Debian 12 in DIR (nothing under /etc changes).
apt_private() {
  local d=$1
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/dl"
  {
    echo "deb http://deb.debian.org/debian bookworm main"
    echo "deb http://deb.debian.org/debian-security bookworm-security main"
    echo "deb-src http://deb.debian.org/debian bookworm main"
    echo "deb-src http://deb.debian.org/debian bookworm-updates main"
    echo "deb-src http://deb.debian.org/debian-security bookworm-security main"
  } >"$d/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/none"
            -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o Debug::NoLocking=1
            -o "APT::Sandbox::User=$(id -un)" -o Acquire::Retries=3)
  if ! apt-get "${APT_OPTS[@]}" update -qq >"$d/update.log" 2>&1; then
    log "apt-get update (private sources) failed:"; tail -n 5 "$d/update.log" >&2
  fi
}

# use_tree TREE VERSION INSTALLED: take TREE (Debian version VERSION) and, if VERSION is not the
# installed one, that version's psql and pg_regress.
use_tree() {
  local tree=$1 version=$2 installed=$3 x
  SRC_TREE=$tree
  [ "$version" = "$installed" ] && return 0
  CLIENT_DIR="$CACHE/client_$version"
  [ -x "$CLIENT_DIR/bin/psql" ] && return 0
  if [ -z "$APT_DIR" ]; then APT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/regress-apt.XXXXXX"); apt_private "$APT_DIR"; fi
  rm -f "$APT_DIR"/dl/*
  if ! (cd "$APT_DIR/dl" && apt-get "${APT_OPTS[@]}" download -qq "postgresql-client-15=$version") \
      >"$APT_DIR/download.log" 2>&1; then
    log "cannot download postgresql-client-15 $version (psql of the suite's version):"
    tail -n 5 "$APT_DIR/download.log" >&2; return 1
  fi
  x="$APT_DIR/x"
  rm -rf "$x" && dpkg-deb -x "$APT_DIR"/dl/postgresql-client-15_*.deb "$x"
  rm -rf "$CLIENT_DIR.tmp" && mkdir -p "$CLIENT_DIR.tmp"
  cp -a "$x/usr/lib/postgresql/15/bin" "$CLIENT_DIR.tmp/bin"
  cp "$x/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress" "$CLIENT_DIR.tmp/bin/"
  rm -rf "$CLIENT_DIR" && mv "$CLIENT_DIR.tmp" "$CLIENT_DIR"
}

# fetch_source: sets SRC_TREE (a tree with src/test/regress) and, if needed, CLIENT_DIR.
fetch_source() {
  if [ -n "${REGRESS_PG_SRC:-}" ]; then
    [ -f "$REGRESS_PG_SRC/src/test/regress/parallel_schedule" ] ||
      { log "REGRESS_PG_SRC=$REGRESS_PG_SRC has no src/test/regress/parallel_schedule"; return 1; }
    SRC_TREE=$REGRESS_PG_SRC; return 0
  fi
  local installed v tree
  installed=$(dpkg-query -W -f='${Version}' "$PKG" 2>/dev/null) || { log "$PKG is not installed"; return 1; }
  mkdir -p "$CACHE"
  tree="$CACHE/${PKG}_$installed"
  if [ -f "$tree/src/test/regress/parallel_schedule" ]; then use_tree "$tree" "$installed" "$installed"; return; fi
  # An earlier run settled on another version (the mirror lacks the installed one's source).
  if [ -f "$CACHE/fallback_$installed" ]; then
    v=$(cat "$CACHE/fallback_$installed"); tree="$CACHE/${PKG}_$v"
    if [ -f "$tree/src/test/regress/parallel_schedule" ] && use_tree "$tree" "$v" "$installed"; then
      log "source of $PKG $installed not on the mirror; using $v with its psql (cached)"
      return 0
    fi
  fi

  APT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/regress-apt.XXXXXX")
  apt_private "$APT_DIR"
  # The installed version first, then whatever else the index lists, newest first (a mirror may
  # list a security upload whose files it does not carry).
  local versions=("$installed")
  while read -r v; do [ "$v" != "$installed" ] && versions+=("$v"); done < <(
    apt-cache "${APT_OPTS[@]}" showsrc "$PKG" 2>/dev/null | sed -n 's/^Version: //p' | sort -rV | uniq)
  for v in "${versions[@]}"; do
    tree="$CACHE/${PKG}_$v"
    if [ ! -f "$tree/src/test/regress/parallel_schedule" ]; then
      rm -f "$APT_DIR"/dl/*
      (cd "$APT_DIR/dl" && apt-get "${APT_OPTS[@]}" source --download-only -qq "$PKG=$v") \
        >"$APT_DIR/source.log" 2>&1 || continue
      rm -rf "$tree.tmp" && mkdir -p "$tree.tmp"
      # Only the regression suite is needed; Debian's patches do not touch it.
      tar -xf "$APT_DIR"/dl/"${PKG}_${v%-*}".orig.tar.* -C "$tree.tmp" --strip-components=1 \
        --wildcards "*/src/test/regress/*"
      rm -rf "$tree" && mv "$tree.tmp" "$tree"
    fi
    use_tree "$tree" "$v" "$installed" || continue
    if [ "$v" != "$installed" ]; then
      log "source of $PKG $installed not on the mirror; using $v with its psql"
      echo "$v" >"$CACHE/fallback_$installed"
    fi
    rm -rf "$APT_DIR"; return 0
  done
  log "could not download the source of $PKG:"; tail -n 5 "$APT_DIR/source.log" >&2
  rm -rf "$APT_DIR"
  return 1
}

# -- 2. the C test module regress.so, built with PGXS; autoinc/refint come with postgresql-15 ----
# build_dlpath SRC OUT: OUT holds regress.so, autoinc.so and refint.so (the tests' :libdir).
build_dlpath() {
  local src=$1 out=$2 libdir
  mkdir -p "$out/build"
  cp "$src/src/test/regress/regress.c" "$out/build/"
  printf 'MODULES = regress\nPG_CONFIG = %s\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n' \
    "$PG_CONFIG" >"$out/build/Makefile"
  if ! make -s -C "$out/build" with_llvm=no >"$out/build/make.log" 2>&1; then
    cat "$out/build/make.log" >&2; log "building regress.so failed (postgresql-server-dev-15 installed?)"
    return 1
  fi
  cp "$out/build/regress.so" "$out/"
  libdir=$("$PG_CONFIG" --pkglibdir)
  for m in autoinc refint; do ln -sf "$libdir/$m.so" "$out/$m.so"; done
}

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  exec /usr/bin/python3 "$ROOT/tools/regress.py" --help
fi

fetch_source || { log "no PostgreSQL source"; exit 2; }
src=$SRC_TREE
client_args=()
[ -z "$CLIENT_DIR" ] || client_args=(--client-bindir "$CLIENT_DIR/bin" --pg-regress "$CLIENT_DIR/bin/pg_regress")
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-regress.XXXXXX")
chmod 755 "$work"
build_dlpath "$src" "$work/lib" || exit 2
log "suite from $src, work directory $work"
exec /usr/bin/python3 "$ROOT/tools/regress.py" --srcdir "$src/src/test/regress" --dlpath "$work/lib" \
  --workdir "$work" --sluice "${SLUICE_BIN:-$ROOT/build/sluice}" "${client_args[@]}" "$@"
