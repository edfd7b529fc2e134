#!/usr/bin/env bash
# Builds and runs every test: unit tests, the tests against real redis-server / nginx /
# grayroute-proxy on loopback, the package-consumer test, the ASan+UBSan build, the
# TSan build of the concurrency tests, and short libFuzzer runs.
#   GRAYROUTE_FUZZ_SECONDS=30 (per target)   GRAYROUTE_SKIP="asan tsan fuzz" to skip stages
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages "${GRAYROUTE_BUILD_PACKAGES[@]}" "${GRAYROUTE_TEST_PACKAGES[@]}" "${GRAYROUTE_BENCH_PACKAGES[@]}"

skip() { [[ " ${GRAYROUTE_SKIP:-} " == *" $1 "* ]]; }
stage() { echo; echo "==> $*"; }

# Runs ctest in a build dir and adds its counts to the totals printed at the end.
passed=0
failed=0
run_ctest() {
  local dir=$1
  shift
  local log
  log=$(mktemp)
  local rc=0
  (cd "$dir" && ctest --output-on-failure "$@") 2>&1 | tee "$log" || rc=$?
  local summary
  summary=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -n 1)
  rm -f "$log"
  if [[ $summary =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed=$((failed + BASH_REMATCH[1]))
    passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  fi
  return $rc
}

stage "release build and all tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(build_jobs)"
run_ctest build -j "$(build_jobs)"

if ! skip asan; then
  stage "AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGRAYROUTE_BUILD_BENCHMARKS=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" >/dev/null
  cmake --build build-asan -j "$(build_jobs)"
  ASAN_OPTIONS=detect_leaks=1 run_ctest build-asan -j "$(build_jobs)" -LE no-sanitizer
fi

if ! skip tsan; then
  stage "ThreadSanitizer (tests labelled concurrency)"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAYROUTE_BUILD_BENCHMARKS=OFF \
    -DGRAYROUTE_BUILD_EXAMPLES=OFF -DCMAKE_CXX_FLAGS="-fsanitize=thread" >/dev/null
  cmake --build build-tsan -j "$(build_jobs)"
  TSAN_OPTIONS=halt_on_error=1 run_ctest build-tsan -L concurrency
fi

if ! skip fuzz; then
  stage "libFuzzer, ${GRAYROUTE_FUZZ_SECONDS:-20} s per target"
  cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DGRAYROUTE_BUILD_FUZZERS=ON -DGRAYROUTE_BUILD_BENCHMARKS=OFF -DGRAYROUTE_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build build-fuzz -j "$(build_jobs)" --target grayroute_fuzzers
  for target in build-fuzz/tests/fuzz/fuzz_*; do
    name=$(basename "$target")
    corpus=$(mktemp -d)
    log=$(mktemp)
    echo "--- $name"
    if ! "$target" -max_total_time="${GRAYROUTE_FUZZ_SECONDS:-20}" -print_final_stats=1 \
        -dict="tests/fuzz/${name#fuzz_}.dict" -artifact_prefix="build-fuzz/$name-" "$corpus" >"$log" 2>&1; then
      tail -n 40 "$log"
      echo "fuzzer $name failed; the crashing input is in build-fuzz/"
      exit 1
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true
    rm -rf "$corpus" "$log"
  done
fi

echo
echo "all test stages passed"
echo "tests: $passed passed, $failed failed"
