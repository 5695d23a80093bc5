#!/usr/bin/env bash
# Benchmark driver: sluice (workers=1, 2) vs PgBouncer 1.18 vs direct Postgres, in one run,
# through the shared pooler harness (../shared/bench); writes a run directory and a summary.
#
#   bench/run.sh [--quick]
#
# --quick  smoke run: short durations, clients 8 and 1000, one repetition, 1000 idle clients.
#
# Environment (defaults in brackets; see bench/README.md for what each phase measures):
#   SLUICE_BIN      sluice binary [<repo>/build/sluice]; copied into the run dir before use
#   PGBOUNCER_BIN   PgBouncer to compare with [/usr/sbin/pgbouncer] (Debian's 1.18)
#   HARNESS         the shared harness [<repo>/../shared/bench, else /work/shared/bench]
#   RUN_DIR         run directory [/tmp/bench-sluice/<UTC date-time>]
#   PHASES          which phases ["tps cpucost cpusplit idlemem"]
#   PROTOS          pgbench -M modes ["simple extended"]
#   CLIENTS, DURATION, REPS, JOBS                     tps.sh   [8 64 256 1000 / 30 / 2 / 2]
#   CPU_CLIENTS, T1, T2                               cpucost  [8 / 250 / 1250]
#   SPLIT_CLIENTS, SPLIT_DURATION, SPLIT_T            cpusplit [8 / 10 / 500]
#   IDLE_COUNTS                                       idlemem  [2000,10000]
#   PREFLIGHT_TRIES  SELECT 1 attempts, 0.2 s apart, before a target counts as not working [50]
#   WRITE_RESULTS   1: also write bench/RESULTS.md; 0: never; auto: only for a full run in
#                   which both sluice targets ran [auto]
#   KEEP_PG         1: leave the throwaway Postgres running at the end [0]
# Postgres, ports and the pooler OS user come from the harness's env.sh (PG_PORT 55432,
# PG_DATA_ROOT /tmp/bench-pg, POOL_SIZE 20, POOL_MODE transaction, ...).
# Needs root once for "$HARNESS/setup-deps.sh" (Debian packages and the benchpool user).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
INVOKED_ARGS=("$@")

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }

QUICK=0
for arg in "$@"; do
    case "$arg" in
    --quick) QUICK=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

# ---- remember which knobs the caller set (for the reproduce command), then apply defaults
KNOBS=(SLUICE_BIN PGBOUNCER_BIN HARNESS PHASES PROTOS CLIENTS DURATION REPS JOBS CPU_CLIENTS T1 T2
       SPLIT_CLIENTS SPLIT_DURATION SPLIT_T IDLE_COUNTS POOL_SIZE POOL_MODE PG_SCALE)
REPRO_ENV=""
for k in "${KNOBS[@]}"; do
    if [ -n "${!k+x}" ]; then REPRO_ENV+="$k=$(printf '%q' "${!k}") "; fi
done

if [ -z "${HARNESS:-}" ]; then
    if [ -x "$REPO/../shared/bench/tps.sh" ]; then HARNESS="$(cd "$REPO/../shared/bench" && pwd)"
    else HARNESS=/work/shared/bench; fi
fi
[ -x "$HARNESS/tps.sh" ] || { echo "harness not found at $HARNESS (set HARNESS)" >&2; exit 1; }

: "${SLUICE_BIN:=$REPO/build/sluice}"
: "${PGBOUNCER_BIN:=/usr/sbin/pgbouncer}"
: "${PHASES:=tps cpucost cpusplit idlemem}"
: "${PROTOS:=simple extended}"
: "${PREFLIGHT_TRIES:=50}"
: "${WRITE_RESULTS:=auto}"
: "${KEEP_PG:=0}"
if [ "$QUICK" = 1 ]; then
    : "${CLIENTS:=8 1000}" "${DURATION:=5}" "${REPS:=1}"
    : "${T1:=50}" "${T2:=250}"
    : "${SPLIT_DURATION:=3}" "${SPLIT_T:=100}"
    : "${IDLE_COUNTS:=1000}"
else
    : "${CLIENTS:=8 64 256 1000}" "${DURATION:=30}" "${REPS:=2}"
    : "${T1:=250}" "${T2:=1250}"
    : "${SPLIT_DURATION:=10}" "${SPLIT_T:=500}"
    : "${IDLE_COUNTS:=2000,10000}"
fi
: "${JOBS:=2}" "${CPU_CLIENTS:=8}" "${SPLIT_CLIENTS:=8}"
: "${RUN_DIR:=/tmp/bench-sluice/$(date -u +%Y%m%d-%H%M%S)}"
RESULTS_DIR="$RUN_DIR/results"
TARGETS_FILE="$RUN_DIR/targets.conf"
export RUN_DIR RESULTS_DIR TARGETS_FILE PROTOS CLIENTS DURATION REPS JOBS CPU_CLIENTS T1 T2 \
    SPLIT_CLIENTS SPLIT_DURATION SPLIT_T IDLE_COUNTS
for v in POOL_SIZE POOL_MODE PG_SCALE; do [ -z "${!v+x}" ] || export "${v?}"; done

# shellcheck source=/dev/null
. "$HARNESS/env.sh" # PG_*, POOLER_*, bench_log, bench_die, bench_wait_sql

case "$SLUICE_BIN$PGBOUNCER_BIN$RUN_DIR" in *[[:space:]]*) bench_die "paths must not contain spaces" ;; esac
[ ! -e "$RUN_DIR/targets.conf" ] || bench_die "$RUN_DIR already holds a run; pick another RUN_DIR"
mkdir -p "$RESULTS_DIR" "$RUN_DIR/logs"
[ "$(id -u)" != 0 ] || id "$POOLER_OS_USER" >/dev/null 2>&1 ||
    bench_die "OS user $POOLER_OS_USER missing: run $HARNESS/setup-deps.sh once (as root)"
for tool in pgbench psql pg_ctl; do
    [ -x "$PGBIN/$tool" ] || bench_die "$PGBIN/$tool missing: run $HARNESS/setup-deps.sh"
done

# ---- cleanup: stop what this run started, by recorded PID (pooler.sh stop reads $RUN_DIR/NAME/pid)
ALL_TARGETS=(pgb118 sluice-w1 sluice-w2)
STARTED_PG=0
cleanup() {
    local rc=$? name
    trap - EXIT INT TERM
    for name in "${ALL_TARGETS[@]}"; do "$HARNESS/pooler.sh" stop "$name" 2>/dev/null || true; done
    if [ "$STARTED_PG" = 1 ] && [ "$KEEP_PG" != 1 ]; then
        bench_log "stopping the throwaway Postgres"
        "$HARNESS/pg.sh" stop >/dev/null 2>&1 || bench_log "pg.sh stop failed"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the throwaway Postgres
if [ ! -d "$PG_DATA_ROOT/data" ]; then
    bench_log "initializing Postgres in $PG_DATA_ROOT (port $PG_PORT, scale $PG_SCALE)"
    STARTED_PG=1
    "$HARNESS/pg.sh" init >"$RUN_DIR/logs/pg-init.log" 2>&1 || bench_die "pg.sh init failed: see $RUN_DIR/logs/pg-init.log"
elif ! "$HARNESS/pg.sh" status >/dev/null 2>&1; then
    bench_log "starting Postgres in $PG_DATA_ROOT"
    STARTED_PG=1
    "$HARNESS/pg.sh" start >"$RUN_DIR/logs/pg-start.log" 2>&1 || bench_die "pg.sh start failed: see $RUN_DIR/logs/pg-start.log"
else
    bench_log "using the running Postgres in $PG_DATA_ROOT"
fi
bench_wait_sql "$PG_HOST" "$PG_PORT" 50 || bench_die "Postgres does not answer on $PG_HOST:$PG_PORT"
"$PGBIN/psql" -X -q -Atc 'select 1 from pgbench_branches limit 1' -h "$PG_HOST" -p "$PG_PORT" \
    -U "$PG_USER" -d "$PG_DB" >/dev/null 2>&1 || bench_die "database $PG_DB has no pgbench tables"

# ---- snapshot the sluice binary so that a rebuild during the run changes nothing
SLUICE_RUN_BIN="$SLUICE_BIN"
if [ -f "$SLUICE_BIN" ]; then
    mkdir -p "$RUN_DIR/bin"
    cp "$SLUICE_BIN" "$RUN_DIR/bin/sluice"
    chmod 755 "$RUN_DIR/bin/sluice"
    SLUICE_RUN_BIN="$RUN_DIR/bin/sluice"
fi

# ---- targets: name style binary protocols max_clients port [key=value ...]
protos_csv="${PROTOS// /,}"
declare -A LINE=(
    [direct]="direct     direct     -                 $protos_csv  190  -"
    [pgb118]="pgb118     pgbouncer  $PGBOUNCER_BIN    $protos_csv  0    56432"
    [sluice-w1]="sluice-w1  pgbouncer  $SLUICE_RUN_BIN   $protos_csv  0    56437  workers=1"
    [sluice-w2]="sluice-w2  pgbouncer  $SLUICE_RUN_BIN   $protos_csv  0    56438  workers=2"
)
ORDER=(direct pgb118 sluice-w1 sluice-w2)
declare -A OK=()
: >"$RUN_DIR/skipped.txt"

skip() { # name reason...
    local name="$1"; shift
    bench_log "SKIP $name: $*"
    printf '%s\t%s\n' "$name" "$*" >>"$RUN_DIR/skipped.txt"
}

# Start the target once, check SELECT 1 and a few pgbench transactions in every protocol.
preflight() { # name
    local name="$1" style bin port extra log="$RUN_DIR/logs/preflight-$1.log" proto plog
    read -r _ style bin _ _ port extra <<<"${LINE[$name]}"
    local shown="$bin"
    [ "$bin" != "$SLUICE_RUN_BIN" ] || shown="$SLUICE_BIN"
    [ -e "$bin" ] || { skip "$name" "binary $shown not found"; return 1; }
    [ -x "$bin" ] || { skip "$name" "binary $shown not executable"; return 1; }
    if [ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]; then
        skip "$name" "port $port already in use by another process"
        return 1
    fi
    # shellcheck disable=SC2086
    if ! POOLER_START_TRIES="$PREFLIGHT_TRIES" POOLER_START_RETRIES=0 \
        "$HARNESS/pooler.sh" start "$name" "$style" "$bin" "$port" $extra >"$log" 2>&1; then
        # pooler.sh kept the attempt's files; tasks.txt lists its threads (path comm wchan state)
        local kept said state="had exited"
        for kept in "$RUN_DIR/failed/$name"-*; do :; done # the newest
        if [ -n "$(awk '$1 ~ /task\/[0-9]+$/ && $NF != "Z"' "$kept/tasks.txt" 2>/dev/null)" ]; then
            state="was still running"
        fi
        said="$(cat "$kept/stdout.log" "$kept/pooler.log" 2>/dev/null | grep -v '^[[:space:]]*$' | tail -1 || true)"
        skip "$name" "$shown did not answer SELECT 1 on port $port within $((PREFLIGHT_TRIES / 5)) s" \
            "(it $state; its last output: ${said:-none}; files: $kept)"
        return 1
    fi
    for proto in $PROTOS; do
        plog="$RUN_DIR/logs/preflight-$name-$proto.log"
        if ! "$PGBIN/pgbench" -n -S -M "$proto" -c 4 -j 2 -t 25 -h "$POOLER_HOST" -p "$port" \
            -U "$PG_USER" "$PG_DB" >"$plog" 2>&1; then
            "$HARNESS/pooler.sh" stop "$name" >>"$log" 2>&1 || true
            skip "$name" "pgbench -M $proto failed: $(grep -m1 -i 'error' "$plog" || tail -1 "$plog") (log: $plog)"
            return 1
        fi
    done
    "$HARNESS/pooler.sh" stop "$name" >>"$log" 2>&1
    return 0
}

bench_log "run directory $RUN_DIR; harness $HARNESS"
OK[direct]=1
for name in pgb118 sluice-w1 sluice-w2; do
    if preflight "$name"; then OK[$name]=1; bench_log "$name: ok"; fi
done
{
    echo "# generated by bench/run.sh: name style binary protocols max_clients port [key=value ...]"
    for name in "${ORDER[@]}"; do
        if [ -n "${OK[$name]:-}" ]; then echo "${LINE[$name]}"; else echo "#skipped ${LINE[$name]}"; fi
    done
} >"$TARGETS_FILE"

# ---- machine facts and versions, for the report
git_rev="$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    git_rev+=" (work tree has uncommitted changes)"
fi
build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$(dirname "$SLUICE_BIN")/CMakeCache.txt" 2>/dev/null || true)"
{
    echo "date_utc=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "mode=$([ "$QUICK" = 1 ] && echo quick || echo full)"
    echo "command=cd $REPO && ${REPRO_ENV}bench/run.sh${INVOKED_ARGS[*]:+ ${INVOKED_ARGS[*]}}"
    echo "nproc=$(nproc)"
    echo "kernel=$(uname -r)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "memory=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    # shellcheck source=/dev/null
    echo "os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")"
    echo "postgres=$("$PGBIN/postgres" --version 2>/dev/null)"
    echo "pgbench=$("$PGBIN/pgbench" --version 2>/dev/null)"
    echo "pgbouncer=$("$PGBOUNCER_BIN" --version 2>/dev/null | head -1)"
    echo "sluice_bin=$SLUICE_BIN"
    echo "sluice_sha256=$(sha256sum "$SLUICE_RUN_BIN" 2>/dev/null | cut -c1-16)"
    echo "sluice_commit=$git_rev"
    echo "sluice_build_type=${build_type:-unknown}"
    echo "harness=$HARNESS"
    echo "pool=pool_mode=$POOL_MODE default_pool_size=$POOL_SIZE, TCP 127.0.0.1, Postgres max_connections=$PG_MAX_CONNECTIONS scale=$PG_SCALE"
    echo "tps_params=protocols: $PROTOS; clients: $CLIENTS; $DURATION s per run; $REPS repetition(s); pgbench -j $JOBS"
    echo "cpucost_params=$CPU_CLIENTS clients; -t $T1 and -t $T2"
    echo "cpusplit_params=$SPLIT_CLIENTS clients; $SPLIT_DURATION s timing run; strace over -t $SPLIT_T"
    echo "idlemem_params=idle clients: $IDLE_COUNTS"
} >"$RUN_DIR/meta.txt"

# ---- phases
available() { # names... -> those that passed preflight
    local n out=()
    for n in "$@"; do [ -z "${OK[$n]:-}" ] || out+=("$n"); done
    echo "${out[*]}"
}

PHASE_FAILED=()
run_phase() { # phase script targets...
    local phase="$1" script="$2"; shift 2
    local only
    only="$(available "$@")"
    if [ -z "$only" ]; then
        bench_log "phase $phase: none of its targets ($*) is available; skipped"
        echo "$phase: skipped, none of $* available" >>"$RUN_DIR/phases.txt"
        return 0
    fi
    bench_log "phase $phase: $only"
    local t0=$SECONDS
    if ONLY="$only" "$HARNESS/$script" 2>&1 | tee "$RUN_DIR/logs/$phase.log"; then
        echo "$phase: ok ($only) in $((SECONDS - t0)) s" >>"$RUN_DIR/phases.txt"
    else
        bench_log "phase $phase failed (log: $RUN_DIR/logs/$phase.log); going on"
        echo "$phase: FAILED ($only) after $((SECONDS - t0)) s" >>"$RUN_DIR/phases.txt"
        PHASE_FAILED+=("$phase")
    fi
}

: >"$RUN_DIR/phases.txt"
for phase in $PHASES; do
    case "$phase" in
    tps)      run_phase tps tps.sh direct pgb118 sluice-w1 sluice-w2 ;;
    cpucost)  run_phase cpucost cpucost.sh pgb118 sluice-w1 ;;
    cpusplit) run_phase cpusplit cpusplit.sh pgb118 sluice-w1 ;;
    idlemem)  run_phase idlemem idlemem.sh pgb118 sluice-w1 sluice-w2 ;;
    *) bench_log "unknown phase $phase (known: tps cpucost cpusplit idlemem)"; PHASE_FAILED+=("$phase") ;;
    esac
done

# ---- report
/usr/bin/python3 "$BENCH_DIR/report.py" "$RUN_DIR" --out "$RUN_DIR/summary.md"
bench_log "summary: $RUN_DIR/summary.md"
why_not=""
case "$WRITE_RESULTS" in
1) ;;
auto)
    if [ "$QUICK" = 1 ]; then why_not="a --quick run"
    elif [ -z "${OK[sluice-w1]:-}" ] || [ -z "${OK[sluice-w2]:-}" ]; then why_not="a sluice target was skipped"
    elif [ "$PHASES" != "tps cpucost cpusplit idlemem" ]; then why_not="PHASES is not all four"
    fi ;;
*) why_not="WRITE_RESULTS=$WRITE_RESULTS" ;;
esac
if [ -z "$why_not" ]; then
    /usr/bin/python3 "$BENCH_DIR/report.py" "$RUN_DIR" --out "$BENCH_DIR/RESULTS.md"
    bench_log "wrote $BENCH_DIR/RESULTS.md"
else
    bench_log "bench/RESULTS.md not written ($why_not); to write it from this run:" \
        "bench/report.py $RUN_DIR --out bench/RESULTS.md"
fi
[ "${#PHASE_FAILED[@]}" = 0 ] || bench_die "failed phases: ${PHASE_FAILED[*]}"
