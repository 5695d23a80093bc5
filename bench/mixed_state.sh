#!/usr/bin/env bash
# Clients whose session state differs against clients that share it, on a busy pool (issue 9).
#
#   bench/mixed_state.sh
#
# N single-client pgbench processes (select-only, simple protocol) share one pool of POOL_SIZE
# servers, transaction pooling. "same": every client has the same application_name and
# startup options; "mixed": each its own application_name and `-c search_path=...`, so a
# server handed from one client to the next needs a sync query first; "mixed_app": only the
# application_name differs (PgBouncer 1.18 refuses the startup `options`, so this is the case
# it can run). Reports total TPS per case and target, the ratios to "same", and sluice's sync
# queries per transaction in the mixed case (SHOW STATS).
#
# Environment: SLUICE_BIN [build/sluice], PGBOUNCER_BIN [/usr/sbin/pgbouncer], N [16],
# POOL_SIZE [4], DURATION [10] seconds per run, HARNESS [../shared/bench], RUN_DIR.
# Uses the shared harness's throwaway Postgres (pg.sh) and pooler.sh; root once for its
# setup-deps.sh.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
: "${HARNESS:=$(cd "$REPO/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}"
: "${SLUICE_BIN:=$REPO/build/sluice}"
: "${PGBOUNCER_BIN:=/usr/sbin/pgbouncer}"
: "${N:=16}"
: "${DURATION:=10}"
export POOL_SIZE="${POOL_SIZE:-4}"
export RUN_DIR="${RUN_DIR:-/tmp/bench-mixed/$(date -u +%Y%m%dT%H%M%S)}"
. "$HARNESS/env.sh"
mkdir -p "$RUN_DIR"
[ "$(id -u)" = 0 ] && chown "$POOLER_OS_USER:" "$RUN_DIR" 2>/dev/null || true
SLUICE_COPY="$RUN_DIR/sluice"
cp "$SLUICE_BIN" "$SLUICE_COPY"
chmod 755 "$SLUICE_COPY"

started_pg=0
if [ ! -e "$PG_DATA_ROOT/data" ]; then "$HARNESS/pg.sh" init; started_pg=1
elif ! "$HARNESS/pg.sh" status >/dev/null 2>&1; then "$HARNESS/pg.sh" start; started_pg=1; fi
cleanup() {
    for t in sluice-w1 sluice-w2 pgb118; do "$HARNESS/pooler.sh" stop "$t" >/dev/null 2>&1 || true; done
    [ "$started_pg" = 1 ] && "$HARNESS/pg.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# run_case PORT CASE -> total TPS of N concurrent single-client pgbench runs
run_case() {
    local port="$1" kind="$2" i pids=() total=0
    for ((i = 0; i < N; i++)); do
        local app="bench" opts=""
        case "$kind" in
        mixed_app) app="client$i" ;;
        mixed) app="client$i" opts="-c search_path=s$i,public" ;;
        esac
        PGAPPNAME="$app" PGOPTIONS="$opts" "$PGBIN/pgbench" -n -S -M simple -c 1 -j 1 \
            -T "$DURATION" -h "$POOLER_HOST" -p "$port" -U "$PG_USER" "$PG_DB" \
            >"$RUN_DIR/$port-$kind-$i.out" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    for ((i = 0; i < N; i++)); do
        local t
        t=$(sed -nE 's/^tps = ([0-9.]+).*/\1/p' "$RUN_DIR/$port-$kind-$i.out" | head -1)
        total=$(awk -v a="$total" -v b="${t:-0}" 'BEGIN { printf "%.1f", a + b }')
    done
    echo "$total"
}

stats() { # PORT -> "syncs xacts" from SHOW STATS (sluice's extra columns)
    "$PGBIN/psql" -X -At -F ' ' -h "$POOLER_HOST" -p "$1" -U "$PG_USER" -d pgbouncer \
        -c "show stats" 2>/dev/null |
        awk -v db="$PG_DB" '$1 == db { print $(NF-5), $3 }'
}

report="$RUN_DIR/summary.md"
{
    echo "# Mixed vs same session state: $N clients, pool_size $POOL_SIZE, ${DURATION}s per run"
    echo
    echo "| target | same TPS | mixed_app TPS | mixed_app / same | mixed TPS | mixed / same | syncs per xact (mixed) |"
    echo "|---|---|---|---|---|---|---|"
} >"$report"

for target in sluice-w1 sluice-w2 pgb118; do
    case "$target" in
    sluice-w1) port=56447 bin="$SLUICE_COPY" extra=(workers=1) ;;
    sluice-w2) port=56448 bin="$SLUICE_COPY" extra=(workers=2) ;;
    pgb118) port=56449 bin="$PGBOUNCER_BIN" extra=() ;;
    esac
    [ -x "$bin" ] || { bench_log "skip $target: no $bin"; continue; }
    "$HARNESS/pooler.sh" start "$target" pgbouncer "$bin" "$port" "${extra[@]}" >/dev/null
    bench_wait_sql "$POOLER_HOST" "$port" || bench_die "$target does not answer"
    same=$(run_case "$port" same)
    mixed_app=$(run_case "$port" mixed_app)
    before=$(stats "$port" || true)
    mixed=$(run_case "$port" mixed)
    after=$(stats "$port" || true)
    "$HARNESS/pooler.sh" stop "$target" >/dev/null
    ratio=$(awk -v m="$mixed" -v s="$same" 'BEGIN { if (s > 0) printf "%.2f", m / s; else print "-" }')
    ratio_app=$(awk -v m="$mixed_app" -v s="$same" 'BEGIN { if (s > 0) printf "%.2f", m / s; else print "-" }')
    spx="-"
    if [ "$target" != pgb118 ] && [ -n "$before" ] && [ -n "$after" ]; then
        spx=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " ");
              dx = y[2] - x[2]; if (dx > 0) printf "%.3f", (y[1] - x[1]) / dx; else print "-" }')
    fi
    [ "$target" = pgb118 ] && mixed="refused" ratio="-"  # startup options: not supported
    echo "| $target | $same | $mixed_app | $ratio_app | $mixed | $ratio | $spx |" >>"$report"
    bench_log "$target: same $same, mixed_app $mixed_app ($ratio_app), mixed $mixed ($ratio), syncs/xact $spx"
done
echo >>"$report"
echo "Reproduce: \`N=$N POOL_SIZE=$POOL_SIZE DURATION=$DURATION bench/mixed_state.sh\`" >>"$report"
cat "$report"
