#!/usr/bin/env bash
# The one test command: deps, build, unit tests (plain and ASan/UBSan), integration suite, live
# fuzzer, fuzz smoke.
#
#   tools/test.sh
#
# Environment:
#   SKIP_DEPS=1      do not run tools/install-deps.sh
#   SKIP_ASAN=1      skip the ASan/UBSan build and its unit tests
#   SKIP_TSAN=1      skip the ThreadSanitizer build and its unit tests
#   SKIP_REGRESS=1   skip PostgreSQL's regression suite through sluice (tools/regress.sh)
#   SKIP_LIVE_FUZZ=1 skip the live-socket fuzzer (tests/fuzz/live/live_fuzz.py)
#   LIVE_FUZZ_SECONDS=N, LIVE_FUZZ_SEED=S  its duration (default 60) and seed (default ci)
#   JOBS=N           build parallelism (default 2)
#   SLUICE_BIN=PATH  pooler binary for the integration suite (default build/sluice)
#   PYTEST_ARGS=...  extra pytest arguments (e.g. "-k cancel" or "-x")
#   FUZZ_SECONDS=N   fuzz smoke duration (default 20), if tools/fuzz_smoke.sh exists
# Exit status is non-zero if any step failed. The last line sums the tests of every step.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-2}
LOGDIR=$(mktemp -d /tmp/sluice-test.XXXXXX)
export CTEST_OUTPUT_ON_FAILURE=1

names=() results=() times=()
passed=0 failed=0 skipped=0

# step NAME COMMAND... : run, show its output, record the result and time.
step() {
  local name=$1; shift
  local log="$LOGDIR/${name// /_}.log" t0=$SECONDS rc
  echo
  echo "==== $name"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  names+=("$name"); times+=($((SECONDS - t0)))
  if [ "$rc" -eq 0 ]; then results+=(PASS); else results+=("FAIL($rc)"); fi
  LAST_LOG=$log
  return "$rc"
}

skip_step() { names+=("$1"); results+=("SKIP: $2"); times+=(0); }

# count_ctest LOG: add "N tests failed out of M" to the totals (a step that died counts as 1 failure).
count_ctest() {
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n 1)
  if [ -z "$line" ]; then
    if grep -q "No tests were found" "$1"; then return; fi
    failed=$((failed + 1)); return
  fi
  local f t
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  passed=$((passed + t - f)); failed=$((failed + f))
}

# count_pytest LOG RC: add pytest's closing "N passed, N failed, N skipped, N error" line.
count_pytest() {
  local line n
  line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error|errors|deselected|xfailed|xpassed)' "$1" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  n=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+') && passed=$((passed + n))
  n=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+') && failed=$((failed + n))
  n=$(grep -oE '[0-9]+ errors?' <<<"$line" | grep -oE '[0-9]+') && failed=$((failed + n))
  n=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+') && skipped=$((skipped + n))
  # A failing exit code with no failure counted (e.g. an internal error) still fails the run.
  if [ "$2" -ne 0 ] && ! grep -qE '[0-9]+ (failed|errors?)' <<<"$line"; then failed=$((failed + 1)); fi
  return 0
}

build() { # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
    cmake --build "$ROOT/$dir" -j "$JOBS"
}

unit() { # unit DIR
  (cd "$ROOT/$1" && ctest --output-on-failure -j "$JOBS" --timeout 300)
}

# -- 1. dependencies ------------------------------------------------------------------------
if [ "${SKIP_DEPS:-0}" = 1 ]; then
  skip_step "deps" "SKIP_DEPS=1"
else
  step "deps" bash tools/install-deps.sh || failed=$((failed + 1))
fi

# -- 1b. formatting (clang-format with the repo's .clang-format; no changes made) -------------
if command -v clang-format >/dev/null; then
  step "format" bash -c 'find src tests \( -name "*.cc" -o -name "*.h" \) -print0 |
    xargs -0 clang-format --dry-run --Werror' || failed=$((failed + 1))
else
  skip_step "format" "no clang-format"
fi

# -- 2. build + unit tests ------------------------------------------------------------------
if step "build" build build; then
  step "unit tests" unit build
  count_ctest "$LAST_LOG"
else
  failed=$((failed + 1)); skip_step "unit tests" "build failed"
fi

# -- 3. sanitizer build + unit tests (-O1: the usual ASan level, and quicker to compile) ----------
if [ "${SKIP_ASAN:-0}" = 1 ]; then
  skip_step "asan build" "SKIP_ASAN=1"
elif step "asan build" build build-asan -DSLUICE_SANITIZE=ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g"; then
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    step "asan unit tests" unit build-asan
  count_ctest "$LAST_LOG"
else
  failed=$((failed + 1)); skip_step "asan unit tests" "asan build failed"
fi

# -- 3b. ThreadSanitizer build (clang) + unit tests -------------------------------------------
if [ "${SKIP_TSAN:-0}" = 1 ]; then
  skip_step "tsan build" "SKIP_TSAN=1"
elif CC=clang CXX=clang++ step "tsan build" build build-tsan -DSLUICE_TSAN=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g"; then
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
    step "tsan unit tests" unit build-tsan
  count_ctest "$LAST_LOG"
else
  failed=$((failed + 1)); skip_step "tsan unit tests" "tsan build failed"
fi

# -- 4. integration suite -------------------------------------------------------------------
# The stress test runs against the sanitizer builds below, not here.
export SLUICE_BIN=${SLUICE_BIN:-$ROOT/build/sluice}
if [ -x "$SLUICE_BIN" ]; then
  # shellcheck disable=SC2086 # PYTEST_ARGS is word-split on purpose
  step "integration" timeout 1500 /usr/bin/python3 -m pytest tests/integration -q -ra \
    --ignore=tests/integration/test_stress.py \
    -o junit_family=xunit2 --junitxml="$LOGDIR/integration.xml" ${PYTEST_ARGS:-}
  count_pytest "$LAST_LOG" "$?"
else
  failed=$((failed + 1)); skip_step "integration" "no binary at $SLUICE_BIN"
fi

# -- 4b. the pooler under sanitizers: multi-worker stress (TSan, ASan/UBSan) and the protocol,
# session-state, prepared-statement, contention, robustness and TLS tests (ASan/UBSan). The
# harness fails a test on any sanitizer report the pooler printed.
if [ -x "$ROOT/build-tsan/sluice" ]; then
  SLUICE_BIN=$ROOT/build-tsan/sluice TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1} \
    step "stress (tsan)" timeout 900 /usr/bin/python3 -m pytest tests/integration/test_stress.py -q -ra
  count_pytest "$LAST_LOG" "$?"
else
  skip_step "stress (tsan)" "no build-tsan/sluice"
fi
if [ -x "$ROOT/build-asan/sluice" ]; then
  SLUICE_BIN=$ROOT/build-asan/sluice ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    step "integration (asan)" timeout 1500 /usr/bin/python3 -m pytest -q -ra \
    tests/integration/test_stress.py tests/integration/test_protocol.py \
    tests/integration/test_session_state.py tests/integration/test_contention.py \
    tests/integration/test_robustness.py tests/integration/test_tls_client.py \
    tests/integration/test_tls_server.py tests/integration/test_fuzz_found.py
  count_pytest "$LAST_LOG" "$?"
else
  skip_step "integration (asan)" "no build-asan/sluice"
fi

# -- 4b'. live-socket fuzzer (tests/fuzz/live): mutated recordings of real clients against the
# ASan/UBSan pooler with a real Postgres; a failing batch is saved under the log directory.
if [ "${SKIP_LIVE_FUZZ:-0}" = 1 ]; then
  skip_step "live fuzz (asan)" "SKIP_LIVE_FUZZ=1"
elif [ -x "$ROOT/build-asan/sluice" ]; then
  if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1} \
      UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
      step "live fuzz (asan)" timeout 600 /usr/bin/python3 tests/fuzz/live/live_fuzz.py \
      --binary "$ROOT/build-asan/sluice" --seconds "${LIVE_FUZZ_SECONDS:-60}" \
      --seed "${LIVE_FUZZ_SEED:-ci}" --isolate-seconds 120 --out "$LOGDIR/live-fuzz"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
else
  skip_step "live fuzz (asan)" "no build-asan/sluice"
fi

# -- 4c. PostgreSQL's regression suite, direct and through sluice (docs/REGRESS.md) ------------
# Exit 2: the suite could not be fetched (no Debian source mirror): reported as skipped.
if [ "${SKIP_REGRESS:-0}" = 1 ]; then
  skip_step "regress" "SKIP_REGRESS=1"
elif [ -x "$SLUICE_BIN" ]; then
  step "regress" timeout 1500 bash tools/regress.sh --ci
  rc=$?
  if [ "$rc" -eq 2 ]; then
    results[${#results[@]}-1]="SKIP: suite unavailable"
  elif [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
fi

# -- 5. fuzz smoke --------------------------------------------------------------------------
if [ -f tools/fuzz_smoke.sh ]; then
  if FUZZ_SECONDS=${FUZZ_SECONDS:-20} step "fuzz smoke" bash tools/fuzz_smoke.sh; then :; else
    failed=$((failed + 1))
  fi
else
  skip_step "fuzz smoke" "no tools/fuzz_smoke.sh"
fi

# -- summary --------------------------------------------------------------------------------
echo
echo "==== summary (logs in $LOGDIR)"
for i in "${!names[@]}"; do
  printf '  %-18s %-28s %4ss\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
done
echo "total: $passed passed, $failed failed, $skipped skipped"
if [ "$failed" -eq 0 ] && ! printf '%s\n' "${results[@]}" | grep -q '^FAIL'; then exit 0; fi
exit 1
