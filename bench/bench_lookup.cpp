// The lookup hot path against the structures people pick for it, on the same inputs
// (lookup_inputs.hpp) in both cache regimes: memory_store with hosts, networks or
// both; std::unordered_set and absl::flat_hash_set for the hosts; DPDK's rte_lpm and
// rte_fib for the networks (bench_lookup_dpdk.cpp), and absl + rte_lpm back to back,
// the honest peer of a gray list that answers both questions.
#include <benchmark/benchmark.h>
#include <grayroute/memory_store.hpp>

#include <memory>
#include <optional>
#include <unordered_set>

#if GRAYROUTE_BENCH_ABSL
#include <absl/container/flat_hash_set.h>
#endif

#include "lookup_inputs.hpp"

namespace {

namespace gb = grayroute::bench;
using grayroute::ip_address;
using grayroute::ip_network;

enum class contents { hosts, networks, mixed };

std::unique_ptr<grayroute::memory_store> make_store(contents c) {
  const auto& in = gb::lookup_data();
  std::vector<grayroute::store_entry> entries;
  entries.reserve(in.hosts.size() + in.networks.size());
  if (c != contents::networks) {
    for (auto v : in.hosts) entries.push_back({ip_network::host(ip_address::v4(v)), grayroute::kGray});
  }
  if (c != contents::hosts) {
    for (auto n : in.networks) entries.push_back({*ip_network::make(ip_address::v4(n.address), n.prefix), grayroute::kGray});
  }
  return std::make_unique<grayroute::memory_store>(entries);
}

// What every peer reports per probe: listed or not, consumed without a branch
// (`sum += answer`). A branch on the answer would wait for the lookup's cache miss,
// and its mispredictions would serialise the misses of consecutive lookups, making
// the benchmark measure the compiler's choice instead of the structure.
std::uint32_t code_of(std::optional<grayroute::route_id> r) { return r.has_value(); }

void store_lookups(benchmark::State& state, bool hot, contents c) {
  const auto store = make_store(c);
  const double entries = c == contents::hosts      ? gb::kLookupHosts
                         : c == contents::networks ? gb::kLookupNetworks
                                                   : gb::kLookupHosts + gb::kLookupNetworks;
  state.counters["bytes_per_entry"] = static_cast<double>(store->memory_bytes()) / entries;
  gb::count_huge_pages(state);
  gb::run_probes(state, gb::probes(hot), [&](std::uint32_t v) { return code_of(store->lookup(ip_address::v4(v))); });
}

void store_batches(benchmark::State& state, bool hot) {
  const auto store = make_store(contents::mixed);
  state.counters["bytes_per_entry"] =
      static_cast<double>(store->memory_bytes()) / (gb::kLookupHosts + gb::kLookupNetworks);
  gb::run_batches(state, gb::probes(hot), [&](const std::uint32_t* in, std::uint32_t* codes, std::size_t n) {
    ip_address addresses[gb::kBatch];
    std::optional<grayroute::route_id> routes[gb::kBatch];
    for (std::size_t i = 0; i < n; ++i) addresses[i] = ip_address::v4(in[i]);
    store->lookup_batch(addresses, routes, n);
    for (std::size_t i = 0; i < n; ++i) codes[i] = code_of(routes[i]);
  });
}

template <class Set>
void set_lookups(benchmark::State& state, bool hot) {
  const auto& hosts = gb::lookup_data().hosts;
  const std::size_t before = gb::heap_in_use();
  const auto set = std::make_unique<Set>(hosts.begin(), hosts.end());
  state.counters["bytes_per_entry"] = static_cast<double>(gb::heap_in_use() - before) / gb::kLookupHosts;
  gb::run_probes(state, gb::probes(hot), [&](std::uint32_t v) { return static_cast<std::uint32_t>(set->count(v)); });
}

void BM_Lookup_Hot_Store_Mixed(benchmark::State& s) { store_lookups(s, true, contents::mixed); }
void BM_Lookup_Cold_Store_Mixed(benchmark::State& s) { store_lookups(s, false, contents::mixed); }
void BM_Lookup_Hot_Store_Hosts(benchmark::State& s) { store_lookups(s, true, contents::hosts); }
void BM_Lookup_Cold_Store_Hosts(benchmark::State& s) { store_lookups(s, false, contents::hosts); }
void BM_Lookup_Hot_Store_Networks(benchmark::State& s) { store_lookups(s, true, contents::networks); }
void BM_Lookup_Cold_Store_Networks(benchmark::State& s) { store_lookups(s, false, contents::networks); }
void BM_Lookup_Hot_StoreBatch_Mixed(benchmark::State& s) { store_batches(s, true); }
void BM_Lookup_Cold_StoreBatch_Mixed(benchmark::State& s) { store_batches(s, false); }
void BM_Lookup_Hot_UnorderedSet_Hosts(benchmark::State& s) { set_lookups<std::unordered_set<std::uint32_t>>(s, true); }
void BM_Lookup_Cold_UnorderedSet_Hosts(benchmark::State& s) { set_lookups<std::unordered_set<std::uint32_t>>(s, false); }

BENCHMARK(BM_Lookup_Hot_Store_Mixed);
BENCHMARK(BM_Lookup_Cold_Store_Mixed);
BENCHMARK(BM_Lookup_Hot_Store_Hosts);
BENCHMARK(BM_Lookup_Cold_Store_Hosts);
BENCHMARK(BM_Lookup_Hot_Store_Networks);
BENCHMARK(BM_Lookup_Cold_Store_Networks);
BENCHMARK(BM_Lookup_Hot_StoreBatch_Mixed);
BENCHMARK(BM_Lookup_Cold_StoreBatch_Mixed);
BENCHMARK(BM_Lookup_Hot_UnorderedSet_Hosts);
BENCHMARK(BM_Lookup_Cold_UnorderedSet_Hosts);

#if GRAYROUTE_BENCH_ABSL
void BM_Lookup_Hot_AbslSet_Hosts(benchmark::State& s) { set_lookups<absl::flat_hash_set<std::uint32_t>>(s, true); }
void BM_Lookup_Cold_AbslSet_Hosts(benchmark::State& s) { set_lookups<absl::flat_hash_set<std::uint32_t>>(s, false); }
BENCHMARK(BM_Lookup_Hot_AbslSet_Hosts);
BENCHMARK(BM_Lookup_Cold_AbslSet_Hosts);
#endif

}  // namespace

BENCHMARK_MAIN();
