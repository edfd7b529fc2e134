#!/usr/bin/env bash
# Runs every benchmark and prints medians with the ratio to each baseline.
#   ./scripts/bench.sh             core benchmarks (parse, store, decide) + any area benchmarks present
#   ./scripts/bench.sh core        only the core ones
#   ./scripts/bench.sh lookup      the lookup peer table: memory_store against unordered_set,
#                                  absl::flat_hash_set, DPDK rte_lpm/rte_fib (bench_lookup)
#   GRAYROUTE_BENCH_REPS=5         repetitions per benchmark (medians are reported)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages "${GRAYROUTE_BUILD_PACKAGES[@]}" "${GRAYROUTE_BENCH_PACKAGES[@]}"

reps=${GRAYROUTE_BENCH_REPS:-5}
# The default -O2 build a distribution would ship, with symbols for profiling.
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAYROUTE_BUILD_TESTS=OFF >/dev/null
if [ "${1:-}" = lookup ]; then
  cmake --build build-bench -j "$(build_jobs)" --target bench_lookup
else
  cmake --build build-bench -j "$(build_jobs)"
fi

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# Benchmarks that failed, by name; reported at the end, and the script then fails.
failures=()
bench_out=$(mktemp)
trap 'rm -f "$bench_out"' EXIT

# Runs one benchmark program into $bench_out; its stderr is shown as it comes. On
# failure, says which program (and which benchmark in it, when Google Benchmark
# reports one) failed.
run_benchmark() {
  local binary=$1
  shift
  local rc=0
  "$binary" "$@" >"$bench_out" || rc=$?
  local errors
  errors=$(grep -E 'ERROR OCCURRED' "$bench_out" | awk '{print $1}' | paste -sd' ' || true)
  if [ "$rc" -ne 0 ] || [ -n "$errors" ]; then
    echo "benchmark $(basename "$binary") failed (exit $rc)${errors:+: $errors}" >&2
    failures+=("$(basename "$binary")${errors:+ ($errors)}")
  fi
}

# Prints "| benchmark | median ns | items/s | baseline | ratio |" for one binary; a
# benchmark's baseline is the one named in the pairs below.
run_core() {
  local binary=$1
  shift
  local out
  run_benchmark "build-bench/bench/$binary" --benchmark_repetitions="$reps" \
    --benchmark_report_aggregates_only=true --benchmark_min_time=0.5 "$@"
  out=$(grep '_median' "$bench_out" || true)
  echo
  echo "### $binary (median of $reps, CPU time)"
  echo
  echo "| benchmark | ns/op | baseline | baseline ns/op | speed-up |"
  echo "|---|---:|---|---:|---:|"
  echo "$out" | awk '
    { name=$1; sub(/_median$/, "", name); sub(/\/iterations:[0-9]+/, "", name)
      t=$4; unit=$5; if (unit=="ms") t*=1e6; else if (unit=="us") t*=1e3; cpu[name]=t; order[++n]=name }
    END {
      base["BM_ParseIp_V4"]="BM_InetPton_V4"; base["BM_ParseIp_V6"]="BM_InetPton_V6"
      base["BM_Store_Contains_HalfListed"]="BM_UnorderedSet_Contains_HalfListed"
      base["BM_Store_Contains_1PctListed"]="BM_UnorderedSet_Contains_1PctListed"
      base["BM_Store_Load1M"]="BM_UnorderedSet_Load1M"
      base["BM_Resolve_Xff3Hops"]="BM_Resolve_Xff3Hops_Naive"
      base["BM_Decide_HalfListed"]="BM_Decide_HalfListed_Naive"
      base["BM_Decide_1PctListed"]="BM_Decide_1PctListed_Naive"
      base["BM_Policy_IssueExample"]="BM_Policy_Baseline_Router"
      base["BM_Policy_RouterShorthand"]="BM_Policy_Baseline_Router"
      for (i=1; i<=n; i++) { k=order[i]; if (k ~ /(InetPton|UnorderedSet|Naive)/) continue
        b=base[k]; if (b!="" && (b in cpu)) printf "| %s | %.1f | %s | %.1f | %.2fx |\n", k, cpu[k], b, cpu[b], cpu[b]/cpu[k]
        else printf "| %s | %.1f | | | |\n", k, cpu[k] }
      # A decision against the sum of its parts (parse each hop, one lookup, one hash).
      d="BM_Decide_HalfListed"; p="BM_DecideParts_"
      if ((d in cpu) && ((p "ParseHops") in cpu)) {
        sum=cpu[p "ParseHops"] + cpu[p "Lookup"] + cpu[p "RolloutHash"]
        chained=cpu[p "ParseHops"] + cpu[p "LookupChained"] + cpu[p "RolloutHash"]
        printf "| %s vs sum of parts (lookups overlapped) | %.1f | parse + lookup + hash | %.1f | %.2fx of the sum |\n", d, cpu[d], sum, cpu[d]/sum
        printf "| %s vs sum of parts (lookup latency) | %.1f | parse + chained lookup + hash | %.1f | %.2fx of the sum |\n", d, cpu[d], chained, cpu[d]/chained
      } }'
  # Memory counters, when the binary reports them.
  echo "$out" | grep -oE '^BM_[A-Za-z0-9_]+Load1M[^ ]*|[a-z_]+_per_host=[0-9.]+' | paste -sd' ' | sed 's/^/memory: /' || true
}

# The peer table: one row per structure, CPU ns per lookup in both regimes (median of
# $reps, repetitions interleaved at random so that a noisy neighbour hits all alike).
run_lookup() {
  local out
  out=$(build-bench/bench/bench_lookup --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
        --benchmark_enable_random_interleaving=true --benchmark_min_time=0.5 | grep '_median') || {
    echo "bench_lookup failed" >&2
    return 1
  }
  echo
  echo "### bench_lookup (median of $reps, CPU ns per lookup; 1M hosts, 10K networks /16-/24, half the probes listed)"
  echo
  echo "| structure | holds | hot: 64K clients | cold: 1M clients | bytes per entry |"
  echo "|---|---|---:|---:|---:|"
  echo "$out" | awk '
    { name=$1; sub(/_median$/, "", name); split(name, p, "_"); regime=p[3]; key=p[4] "_" p[5]
      t=$4; unit=$5; if (unit=="us") t*=1e3; if (p[4] ~ /Batch|Bulk/) t/=256
      ns[key, regime]=t; for (i=6; i<=NF; i++) if ($i ~ /^bytes_per_entry=/) { b=$i; sub(/.*=/, "", b); bytes[key]=b }
      if (!(key in seen)) { seen[key]=1; order[++n]=key } }
    function scale(b) { if (b ~ /k$/) { sub(/k$/, "", b); return b*1000 } return b+0 }
    END {
      label["Store_Mixed"]="grayroute memory_store | hosts + networks"
      label["StoreBatch_Mixed"]="grayroute memory_store, lookup_batch (256) | hosts + networks"
      label["Store_Hosts"]="grayroute memory_store | hosts"
      label["Store_Networks"]="grayroute memory_store | networks"
      label["UnorderedSet_Hosts"]="std::unordered_set<uint32_t> | hosts"
      label["AbslSet_Hosts"]="absl::flat_hash_set<uint32_t> | hosts"
      label["RteLpm_Networks"]="DPDK rte_lpm | networks"
      label["RteLpmBulk_Networks"]="DPDK rte_lpm_lookup_bulk (256) | networks"
      label["RteFibBulk_Networks"]="DPDK rte_fib_lookup_bulk (256) | networks"
      label["AbslSetRteLpm_Mixed"]="absl::flat_hash_set + rte_lpm, back to back | hosts + networks"
      for (i=1; i<=n; i++) { k=order[i]
        printf "| %s | %.1f | %.1f | %.1f |\n", (k in label ? label[k] : k), ns[k, "Hot"], ns[k, "Cold"], scale(bytes[k]) }
      print ""
      split("Hot Cold", r, " ")
      for (j=1; j<=2; j++) { g=r[j]
        if (ns["AbslSetRteLpm_Mixed", g] > 0) printf "%s: memory_store (hosts + networks) is %.2fx faster than absl + rte_lpm back to back; %.2fx the time of absl alone\n", g, ns["AbslSetRteLpm_Mixed", g]/ns["Store_Mixed", g], ns["Store_Mixed", g]/ns["AbslSet_Hosts", g]
        if (ns["UnorderedSet_Hosts", g] > 0) printf "%s: memory_store (hosts + networks) is %.2fx faster than std::unordered_set (hosts only)\n", g, ns["UnorderedSet_Hosts", g]/ns["Store_Mixed", g] } }'
}

if [ "${1:-}" = lookup ]; then
  run_lookup
  exit 0
fi

run_core bench_parse
run_core bench_store
run_core bench_decide
run_core bench_policy --benchmark_enable_random_interleaving=true

# Ends the run: names every benchmark that failed, and fails if any did.
finish() {
  if [ ${#failures[@]} -ne 0 ]; then
    echo
    echo "failed benchmarks: ${failures[*]}" >&2
    exit 1
  fi
  exit 0
}

[ "${1:-}" = core ] && finish

# Area benchmarks: the Redis store and the proxy's decision (Google Benchmark, their
# own baselines inside), then the servers under wrk (medians of several runs).
for binary in bench_redis bench_proxy; do
  if [ -x "build-bench/bench/$binary" ]; then
    echo
    echo "### $binary"
    run_benchmark "build-bench/bench/$binary" --benchmark_min_time=0.5
    grep -E '^(BM_|---|Benchmark)' "$bench_out" || true
  fi
done
if [ -x build-bench/examples/asio_proxy/grayroute-proxy ]; then
  echo
  echo "### grayroute-proxy vs nginx (wrk)"
  bench/proxy_wrk.sh build-bench/examples/asio_proxy/grayroute-proxy build-bench/examples/asio_proxy/grayroute-backend ||
    { echo "benchmark proxy_wrk.sh failed" >&2; failures+=(proxy_wrk.sh); }
fi
if [ -f build-bench/examples/nginx/ngx_http_grayroute_module.so ]; then
  echo
  echo "### nginx module (wrk)"
  bench/nginx_wrk.sh --module build-bench/examples/nginx/ngx_http_grayroute_module.so ||
    { echo "benchmark nginx_wrk.sh failed" >&2; failures+=(nginx_wrk.sh); }
fi

finish
