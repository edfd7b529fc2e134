// DPDK's longest-prefix-match tables as peers of memory_store's networks, on the
// inputs of bench_lookup.cpp: rte_lpm (DIR-24-8, one lookup at a time or in bulk) and
// rte_fib (DIR-24-8, bulk only), plus absl::flat_hash_set + rte_lpm back to back, the
// pair a gray list would otherwise be built from. Built with DPDK's own flags
// (pkg-config libdpdk: -march=corei7), so these peers get SSE4.2 and memory_store,
// in bench_lookup.cpp, the plain x86-64 baseline.
//
// The EAL starts without hugepages or PCI (--no-huge --no-pci --no-shconf): the
// tables live in ordinary anonymous memory, as they would in a test process.
#include <benchmark/benchmark.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_lcore.h>
#include <rte_lpm.h>
#include <rte_malloc.h>

#include <cstdio>
#include <memory>
#include <string>

#if GRAYROUTE_BENCH_ABSL
#include <absl/container/flat_hash_set.h>
#endif

#include "lookup_inputs.hpp"

namespace {

namespace gb = grayroute::bench;

// Empty when the EAL started, else why it did not.
const std::string& eal_error() {
  static const std::string error = [] {
    const char* args[] = {"bench_lookup", "--no-huge", "--no-pci", "--no-shconf", "-m", "512",
                          "--no-telemetry", "--log-level=lib.eal:error"};
    if (rte_eal_init(static_cast<int>(std::size(args)), const_cast<char**>(args)) < 0) {
      return std::string("rte_eal_init(--no-huge --no-pci) failed: ") + rte_strerror(rte_errno);
    }
    return std::string();
  }();
  return error;
}

// False, with the reason on the benchmark, when the EAL did not start.
bool eal_ready(benchmark::State& state) {
  if (eal_error().empty()) return true;
  state.SkipWithError(eal_error().c_str());
  return false;
}

std::size_t dpdk_heap_in_use() {
  rte_malloc_socket_stats stats{};
  rte_malloc_get_socket_stats(static_cast<int>(rte_socket_id_by_idx(0)), &stats);
  return stats.heap_allocsz_bytes;
}

constexpr std::uint32_t kGrayCode = 2;  // the next hop stored for every network: route_id kGray + 1

struct lpm_deleter {
  void operator()(rte_lpm* lpm) const { rte_lpm_free(lpm); }
};
struct fib_deleter {
  void operator()(rte_fib* fib) const { rte_fib_free(fib); }
};

// Builds an rte_lpm of the networks, or says why it could not.
std::unique_ptr<rte_lpm, lpm_deleter> make_lpm(benchmark::State& state) {
  if (!eal_ready(state)) return nullptr;
  const std::size_t before = dpdk_heap_in_use();
  rte_lpm_config config{};
  config.max_rules = 2 * gb::kLookupNetworks;
  config.number_tbl8s = 256;
  std::unique_ptr<rte_lpm, lpm_deleter> lpm(rte_lpm_create("grayroute_bench", SOCKET_ID_ANY, &config));
  if (!lpm) {
    state.SkipWithError((std::string("rte_lpm_create: ") + rte_strerror(rte_errno)).c_str());
    return nullptr;
  }
  for (const auto& n : gb::lookup_data().networks) rte_lpm_add(lpm.get(), n.address, static_cast<std::uint8_t>(n.prefix), kGrayCode);
  state.counters["bytes_per_entry"] = static_cast<double>(dpdk_heap_in_use() - before) / gb::kLookupNetworks;
  return lpm;
}

std::unique_ptr<rte_fib, fib_deleter> make_fib(benchmark::State& state) {
  if (!eal_ready(state)) return nullptr;
  const std::size_t before = dpdk_heap_in_use();
  rte_fib_conf config{};
  config.type = RTE_FIB_DIR24_8;
  config.default_nh = 0;
  config.max_routes = 2 * static_cast<int>(gb::kLookupNetworks);
  config.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
  config.dir24_8.num_tbl8 = 256;
  std::unique_ptr<rte_fib, fib_deleter> fib(rte_fib_create("grayroute_bench", SOCKET_ID_ANY, &config));
  if (!fib) {
    state.SkipWithError((std::string("rte_fib_create: ") + rte_strerror(rte_errno)).c_str());
    return nullptr;
  }
  for (const auto& n : gb::lookup_data().networks) rte_fib_add(fib.get(), n.address, static_cast<std::uint8_t>(n.prefix), kGrayCode);
  state.counters["bytes_per_entry"] = static_cast<double>(dpdk_heap_in_use() - before) / gb::kLookupNetworks;
  return fib;
}

// Listed or not (see code_of() in bench_lookup.cpp).
std::uint32_t lpm_code(const rte_lpm* lpm, std::uint32_t v) {
  std::uint32_t hop = 0;
  return rte_lpm_lookup(lpm, v, &hop) == 0;
}

void lpm_lookups(benchmark::State& state, bool hot) {
  const auto lpm = make_lpm(state);
  if (!lpm) return;
  gb::run_probes(state, gb::probes(hot), [&](std::uint32_t v) { return lpm_code(lpm.get(), v); });
}

void lpm_batches(benchmark::State& state, bool hot) {
  const auto lpm = make_lpm(state);
  if (!lpm) return;
  gb::run_batches(state, gb::probes(hot), [&](const std::uint32_t* in, std::uint32_t* codes, std::size_t n) {
    rte_lpm_lookup_bulk(lpm.get(), in, codes, static_cast<unsigned>(n));
    for (std::size_t i = 0; i < n; ++i) codes[i] = (codes[i] & RTE_LPM_LOOKUP_SUCCESS) != 0;
  });
}

void fib_batches(benchmark::State& state, bool hot) {
  const auto fib = make_fib(state);
  if (!fib) return;
  gb::run_batches(state, gb::probes(hot), [&](const std::uint32_t* in, std::uint32_t* codes, std::size_t n) {
    std::uint64_t hops[gb::kBatch];
    rte_fib_lookup_bulk(fib.get(), const_cast<std::uint32_t*>(in), hops, static_cast<unsigned>(n));
    for (std::size_t i = 0; i < n; ++i) codes[i] = hops[i] != 0;
  });
}

void BM_Lookup_Hot_RteLpm_Networks(benchmark::State& s) { lpm_lookups(s, true); }
void BM_Lookup_Cold_RteLpm_Networks(benchmark::State& s) { lpm_lookups(s, false); }
void BM_Lookup_Hot_RteLpmBulk_Networks(benchmark::State& s) { lpm_batches(s, true); }
void BM_Lookup_Cold_RteLpmBulk_Networks(benchmark::State& s) { lpm_batches(s, false); }
void BM_Lookup_Hot_RteFibBulk_Networks(benchmark::State& s) { fib_batches(s, true); }
void BM_Lookup_Cold_RteFibBulk_Networks(benchmark::State& s) { fib_batches(s, false); }
BENCHMARK(BM_Lookup_Hot_RteLpm_Networks);
BENCHMARK(BM_Lookup_Cold_RteLpm_Networks);
BENCHMARK(BM_Lookup_Hot_RteLpmBulk_Networks);
BENCHMARK(BM_Lookup_Cold_RteLpmBulk_Networks);
BENCHMARK(BM_Lookup_Hot_RteFibBulk_Networks);
BENCHMARK(BM_Lookup_Cold_RteFibBulk_Networks);

#if GRAYROUTE_BENCH_ABSL
// A listed host answers first (exact beats any prefix), as memory_store does.
void absl_lpm_lookups(benchmark::State& state, bool hot) {
  const auto& hosts = gb::lookup_data().hosts;
  const std::size_t before = gb::heap_in_use();
  const auto set = std::make_unique<absl::flat_hash_set<std::uint32_t>>(hosts.begin(), hosts.end());
  const double set_bytes = static_cast<double>(gb::heap_in_use() - before);
  const auto lpm = make_lpm(state);
  if (!lpm) return;
  state.counters["bytes_per_entry"] = (set_bytes + state.counters["bytes_per_entry"] * gb::kLookupNetworks) /
                                      (gb::kLookupHosts + gb::kLookupNetworks);
  gb::run_probes(state, gb::probes(hot), [&](std::uint32_t v) {
    // Both lookups always, no branch on either answer (see code_of()).
    return static_cast<std::uint32_t>(set->contains(v)) | lpm_code(lpm.get(), v);
  });
}
void BM_Lookup_Hot_AbslSetRteLpm_Mixed(benchmark::State& s) { absl_lpm_lookups(s, true); }
void BM_Lookup_Cold_AbslSetRteLpm_Mixed(benchmark::State& s) { absl_lpm_lookups(s, false); }
BENCHMARK(BM_Lookup_Hot_AbslSetRteLpm_Mixed);
BENCHMARK(BM_Lookup_Cold_AbslSetRteLpm_Mixed);
#endif

}  // namespace
