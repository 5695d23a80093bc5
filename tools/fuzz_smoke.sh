#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz and runs each for a while on a copy of
# its seed corpus; exits non-zero if any target crashes or fails to build.
#
#   tools/fuzz_smoke.sh                 all targets in tests/fuzz/*_fuzz.cc, 30 s each
#   FUZZ_SECONDS=5 tools/fuzz_smoke.sh scram_fuzz frame_fuzz
#
# Environment: FUZZ_SECONDS (default 30), BUILD_DIR (default <repo>/build-fuzz), JOBS (default 2),
# FUZZ_SHORT_SECONDS (default 7): the cap for the small text parsers listed in short_targets
# below, which saturate within seconds (six of them add well under a minute to CI),
# FUZZ_DIRECT=1 to skip CMake and always use the direct build described below.
# The CMake fuzz targets link the layers they need; if that does not configure or compile with
# clang at the moment (another layer mid-edit), the targets are compiled directly from src/core,
# src/proto, src/config and the console's parsers in src/admin instead (sql_scan_fuzz needs
# src/sql and libpg_query, so it only builds through CMake).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$repo/build-fuzz}"
seconds="${FUZZ_SECONDS:-30}"
short_seconds="${FUZZ_SHORT_SECONDS:-7}"
short_targets=" ini_fuzz auth_file_fuzz connstring_fuzz startup_options_fuzz http_request_fuzz \
console_command_fuzz "
jobs="${JOBS:-2}"

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for f in "$repo"/tests/fuzz/*_fuzz.cc; do
    targets+=("$(basename "$f" .cc)")
  done
fi

mkdir -p "$build"
log="$build/fuzz_smoke.build.log"

# Fallback: compile the layers below src/sql straight into the targets, without CMake.
build_direct() {
  bin_dir="$build/fuzz-direct"
  local obj="$bin_dir/obj"
  mkdir -p "$obj"
  local common=(-std=c++20 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter
                -Wno-missing-field-initializers -fsanitize=address,undefined
                -fno-sanitize-recover=undefined -fno-sanitize=function -fno-omit-frame-pointer
                -DSLUICE_VERSION=\"fuzz\" -I"$repo/src")
  local objs=() src o
  for src in "$repo"/src/core/*.cc "$repo"/src/proto/*.cc "$repo"/src/proto/*/*.cc \
             "$repo"/src/config/*.cc "$repo"/src/admin/command.cc "$repo"/src/admin/http_request.cc; do
    [[ -e "$src" ]] || continue
    o="$obj/$(echo "${src#"$repo"/src/}" | tr / _).o"
    clang++ "${common[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$o" || return 1
    objs+=("$o")
  done
  for t in "${targets[@]}"; do
    clang++ "${common[@]}" -fsanitize=fuzzer "$repo/tests/fuzz/$t.cc" "${objs[@]}" \
      -o "$bin_dir/$t" -lfmt -lcrypto -pthread || return 1
  done
}

bin_dir="$build"
if [[ "${FUZZ_DIRECT:-0}" == 1 ]]; then
  if ! build_direct >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "fuzz_smoke: the fuzz targets do not build" >&2
    exit 1
  fi
elif ! { CXX=clang++ cmake -S "$repo" -B "$build" -DSLUICE_FUZZ=ON -DSLUICE_TESTS=OFF \
         -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$build" --target "${targets[@]}" -j"$jobs"; } >"$log" 2>&1; then
  echo "fuzz_smoke: the CMake fuzz build failed (see $log); building the targets directly" \
       "from src/core and src/proto" >&2
  if ! build_direct >>"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "fuzz_smoke: the fuzz targets do not build" >&2
    exit 1
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  corpus="$work/$t"
  mkdir -p "$corpus"
  if [[ -d "$repo/tests/fuzz/corpus/$t" ]]; then
    cp "$repo/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  fi
  run_log="$work/$t.log"
  t_seconds="$seconds"
  if [[ "$short_targets" == *" $t "* && "$short_seconds" -lt "$seconds" ]]; then
    t_seconds="$short_seconds"
  fi
  echo "fuzz_smoke: $t for ${t_seconds}s"
  if (cd "$work" && "$bin_dir/$t" -max_total_time="$t_seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus" >"$run_log" 2>&1); then
    grep -E "^stat::(number_of_executed_units|new_units_added)" "$run_log" | sed "s/^/  /" || true
  else
    echo "fuzz_smoke: $t FAILED; last lines of its log:" >&2
    tail -40 "$run_log" >&2
    # Keep the reproducer next to the build so it survives the temp dir.
    for crash in "$work"/crash-* "$work"/timeout-* "$work"/oom-* "$work"/leak-*; do
      [[ -e "$crash" ]] && cp "$crash" "$build/" && echo "  reproducer: $build/$(basename "$crash")" >&2
    done
    rm -f "$work"/crash-* "$work"/timeout-* "$work"/oom-* "$work"/leak-*
    failed+=("$t")
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz_smoke: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz_smoke: all ${#targets[@]} targets ran (${seconds}s each, at most ${short_seconds}s for the" \
     "small text parsers) without a crash"
