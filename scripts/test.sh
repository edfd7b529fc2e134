#!/usr/bin/env bash
# Builds and runs every test: unit tests, the tests against real redis-server / nginx /
# grayroute-proxy on loopback, the package-consumer test, the ASan+UBSan build, the
# TSan build of the concurrency tests, and short libFuzzer runs.
#   GRAYROUTE_FUZZ_SECONDS=30 (per target)   GRAYROUTE_SKIP="asan tsan fuzz" to skip stages
# Every stage runs even when an earlier one failed; the closing line gives the true
# totals (a stage that fails to configure or build, or a fuzzer that fails, counts
# as one failed test) and the script exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

passed=0
failed=0
failures=()
fail() {
  failed=$((failed + 1))
  failures+=("$1")
  echo "FAILED: $1"
}
# Prints the closing line and exits: non-zero when anything failed.
finish() {
  echo
  if [ "$failed" -ne 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
  else
    echo "all test stages passed"
  fi
  echo "tests: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

if ! ensure_packages "${GRAYROUTE_BUILD_PACKAGES[@]}" "${GRAYROUTE_TEST_PACKAGES[@]}" "${GRAYROUTE_BENCH_PACKAGES[@]}"; then
  fail "installing packages"
  finish
fi

skip() { [[ " ${GRAYROUTE_SKIP:-} " == *" $1 "* ]]; }
stage() { echo; echo "==> $*"; }
# Runs one step of a stage (configure, build); a failure is counted under `name`.
step() {
  local name=$1
  shift
  "$@" || { fail "$name"; return 1; }
}

# Runs ctest in a build dir and adds its counts to the totals. A ctest that fails
# without its summary line (a crash, a timeout of ctest itself) counts as one failure.
run_ctest() {
  local name=$1 dir=$2
  shift 2
  local log
  log=$(mktemp)
  local rc=0
  (cd "$dir" && ctest --output-on-failure "$@") 2>&1 | tee "$log" || rc=$?
  local summary
  summary=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -n 1)
  rm -f "$log"
  if [[ $summary =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    local stage_failed=${BASH_REMATCH[1]}
    passed=$((passed + BASH_REMATCH[2] - stage_failed))
    failed=$((failed + stage_failed))
    [ "$stage_failed" -ne 0 ] && failures+=("$name: $stage_failed of ${BASH_REMATCH[2]} tests")
    [ "$stage_failed" -eq 0 ] && [ "$rc" -ne 0 ] && fail "$name: ctest exited $rc"
  elif [ "$rc" -ne 0 ]; then
    fail "$name: ctest exited $rc without a summary"
  fi
  return 0
}

stage "release build and all tests"
if step "release: configure" cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
   step "release: build" cmake --build build -j "$(build_jobs)"; then
  run_ctest release build -j "$(build_jobs)"
fi

if ! skip asan; then
  stage "AddressSanitizer + UndefinedBehaviorSanitizer"
  if step "asan: configure" cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGRAYROUTE_BUILD_BENCHMARKS=OFF \
       -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" >/dev/null &&
     step "asan: build" cmake --build build-asan -j "$(build_jobs)"; then
    ASAN_OPTIONS=detect_leaks=1 run_ctest asan build-asan -j "$(build_jobs)" -LE no-sanitizer
  fi
fi

if ! skip tsan; then
  stage "ThreadSanitizer (tests labelled concurrency)"
  if step "tsan: configure" cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAYROUTE_BUILD_BENCHMARKS=OFF \
       -DGRAYROUTE_BUILD_EXAMPLES=OFF -DCMAKE_CXX_FLAGS="-fsanitize=thread" >/dev/null &&
     step "tsan: build" cmake --build build-tsan -j "$(build_jobs)"; then
    TSAN_OPTIONS=halt_on_error=1 run_ctest tsan build-tsan -L concurrency
  fi
fi

if ! skip fuzz; then
  stage "libFuzzer, ${GRAYROUTE_FUZZ_SECONDS:-20} s per target (each fuzzer counts as one test)"
  if step "fuzz: configure" cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
       -DGRAYROUTE_BUILD_FUZZERS=ON -DGRAYROUTE_BUILD_BENCHMARKS=OFF -DGRAYROUTE_BUILD_EXAMPLES=OFF >/dev/null &&
     step "fuzz: build" cmake --build build-fuzz -j "$(build_jobs)" --target grayroute_fuzzers; then
    for target in build-fuzz/tests/fuzz/fuzz_*; do
      name=$(basename "$target")
      corpus=$(mktemp -d)
      log=$(mktemp)
      echo "--- $name"
      if "$target" -max_total_time="${GRAYROUTE_FUZZ_SECONDS:-20}" -print_final_stats=1 \
          -dict="tests/fuzz/${name#fuzz_}.dict" -artifact_prefix="build-fuzz/$name-" "$corpus" >"$log" 2>&1; then
        passed=$((passed + 1))
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true
      else
        tail -n 40 "$log"
        fail "fuzzer $name (the crashing input is in build-fuzz/)"
      fi
      rm -rf "$corpus" "$log"
    done
  fi
fi

finish
