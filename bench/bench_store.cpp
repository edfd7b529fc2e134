// memory_store lookups and loading, against std::unordered_set<uint32_t> holding the
// same exact entries (the store also carries 10,000 networks the baseline lacks).
#include <benchmark/benchmark.h>
#include <grayroute/memory_store.hpp>
#include <malloc.h>

#include <memory>
#include <unordered_set>

#include "inputs.hpp"

namespace {

using grayroute::ip_address;
using grayroute::ip_network;
using grayroute::bench::kTableSize;

constexpr std::size_t kHosts = 1000000;
constexpr std::size_t kNetworks = 10000;

struct fixture {
  std::vector<std::uint32_t> listed = grayroute::bench::distinct_v4(kHosts, 11);
  std::vector<std::uint32_t> unlisted =
      grayroute::bench::distinct_v4(kHosts, 12, std::unordered_set<std::uint32_t>(listed.begin(), listed.end()));
  std::vector<grayroute::store_entry> entries = [this] {
    std::vector<grayroute::store_entry> e;
    e.reserve(kHosts + kNetworks);
    for (auto v : listed) e.push_back({ip_network::host(ip_address::v4(v)), grayroute::kGray});
    // /24s in 100.64.0.0/10 (shared address space), away from the random hosts' hits.
    for (std::uint32_t i = 0; i < kNetworks; ++i) {
      e.push_back({*ip_network::make(ip_address::v4(0x64400000u + (i << 8)), 24), grayroute::kGray});
    }
    return e;
  }();
  std::vector<std::uint32_t> mixed = grayroute::bench::queries(listed, unlisted, 0.5, kTableSize, 13);
  std::vector<std::uint32_t> mostly_misses = grayroute::bench::queries(listed, unlisted, 0.01, kTableSize, 14);
};

const fixture& data() {
  static const fixture f;
  return f;
}

std::size_t heap_in_use() {
  const auto info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Each lookup benchmark builds its own structure and drops it afterwards, so the
// store and the baseline never share the caches during a run.
std::unique_ptr<grayroute::memory_store> make_store() { return std::make_unique<grayroute::memory_store>(data().entries); }
std::unique_ptr<std::unordered_set<std::uint32_t>> make_baseline() {
  return std::make_unique<std::unordered_set<std::uint32_t>>(data().listed.begin(), data().listed.end());
}

template <class Lookup>
void run_lookups(benchmark::State& state, const std::vector<std::uint32_t>& queries, Lookup lookup) {
  std::size_t i = 0, found = 0;
  for (auto _ : state) {
    found += lookup(queries[i++ & (kTableSize - 1)]);
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(state.iterations());
}

void BM_Store_Contains_HalfListed(benchmark::State& state) {
  const auto s = make_store();
  run_lookups(state, data().mixed, [&](std::uint32_t v) { return s->contains(ip_address::v4(v)); });
}

void BM_UnorderedSet_Contains_HalfListed(benchmark::State& state) {
  const auto s = make_baseline();
  run_lookups(state, data().mixed, [&](std::uint32_t v) { return s->count(v) != 0; });
}

void BM_Store_Contains_1PctListed(benchmark::State& state) {
  const auto s = make_store();
  run_lookups(state, data().mostly_misses, [&](std::uint32_t v) { return s->contains(ip_address::v4(v)); });
}

void BM_UnorderedSet_Contains_1PctListed(benchmark::State& state) {
  const auto s = make_baseline();
  run_lookups(state, data().mostly_misses, [&](std::uint32_t v) { return s->count(v) != 0; });
}

// Loading and memory: build a fresh structure per iteration, and report heap bytes per
// exact entry as a counter.
void BM_Store_Load1M(benchmark::State& state) {
  const auto& entries = data().entries;
  double bytes_per_host = 0;
  for (auto _ : state) {
    const std::size_t before = heap_in_use();
    grayroute::memory_store s(entries);
    bytes_per_host = static_cast<double>(heap_in_use() - before) / kHosts;
    benchmark::DoNotOptimize(s.size());
    state.counters["lookup_bytes_per_host"] = static_cast<double>(s.memory_bytes()) / kHosts;
  }
  state.counters["heap_bytes_per_host"] = bytes_per_host;
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(entries.size()));
}

void BM_UnorderedSet_Load1M(benchmark::State& state) {
  const auto& listed = data().listed;
  double bytes_per_host = 0;
  for (auto _ : state) {
    const std::size_t before = heap_in_use();
    std::unordered_set<std::uint32_t> s(listed.begin(), listed.end());
    bytes_per_host = static_cast<double>(heap_in_use() - before) / kHosts;
    benchmark::DoNotOptimize(s.size());
  }
  state.counters["heap_bytes_per_host"] = bytes_per_host;
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(listed.size()));
}

// A single insert + erase of a new host into the 1M store: amortised O(1).
void BM_Store_InsertErase(benchmark::State& state) {
  grayroute::memory_store s(data().entries);
  const auto& fresh = data().unlisted;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto n = ip_network::host(ip_address::v4(fresh[i++ % fresh.size()]));
    s.insert(n);
    s.erase(n);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Store_Contains_HalfListed);
BENCHMARK(BM_UnorderedSet_Contains_HalfListed);
BENCHMARK(BM_Store_Contains_1PctListed);
BENCHMARK(BM_UnorderedSet_Contains_1PctListed);
BENCHMARK(BM_Store_Load1M)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_UnorderedSet_Load1M)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_Store_InsertErase);

}  // namespace

BENCHMARK_MAIN();
