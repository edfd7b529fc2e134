// memory_store lookups and loading, against std::unordered_set<uint32_t> holding the
// same exact entries (the store also carries 10,000 networks the baseline lacks).
#include <benchmark/benchmark.h>
#include <grayroute/memory_store.hpp>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <set>
#include <thread>
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
    const std::size_t before = heap_in_use() + grayroute::bench::huge_pages_in_use().advised_bytes;
    grayroute::memory_store s(entries);
    // The large tables are mapped outside the heap (on Linux, for huge pages).
    bytes_per_host = static_cast<double>(heap_in_use() + grayroute::bench::huge_pages_in_use().advised_bytes - before) / kHosts;
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

// --- network updates (issue #10, section 2) -------------------------------------------

// `count` distinct random IPv4 networks from /16 to /24; `dense` packs them into
// 10.0.0.0/8 from /20 to /28, hundreds per /16, the worst case for a /16's chunk.
std::vector<ip_network> random_networks(std::size_t count, std::uint32_t seed, bool dense = false) {
  std::mt19937 rng(seed);
  std::set<std::pair<std::uint32_t, unsigned>> seen;
  std::vector<ip_network> out;
  out.reserve(count);
  while (out.size() < count) {
    const unsigned prefix = dense ? 20 + static_cast<unsigned>(rng() % 9) : 16 + static_cast<unsigned>(rng() % 9);
    std::uint32_t address = static_cast<std::uint32_t>(rng());
    if (dense) address = 0x0a000000u | (address & 0x00ffffffu);
    address &= ~0u << (32 - prefix);
    if (seen.insert({address, prefix}).second) out.push_back(*ip_network::make(ip_address::v4(address), prefix));
  }
  return out;
}

// `count` distinct random IPv6 networks from /32 to /64 in 2000::/3; `dense` packs
// them into 2001:db8::/32 from /48 to /64 (a provider's customers).
std::vector<ip_network> random_networks_v6(std::size_t count, std::uint32_t seed, bool dense = false) {
  std::mt19937_64 rng(seed);
  std::set<std::pair<std::uint64_t, unsigned>> seen;
  std::vector<ip_network> out;
  out.reserve(count);
  while (out.size() < count) {
    const unsigned prefix = dense ? 48 + static_cast<unsigned>(rng() % 17) : 32 + static_cast<unsigned>(rng() % 33);
    std::uint64_t high = dense ? 0x20010db800000000ull | (rng() & 0xffffffffull) : 0x2000000000000000ull | (rng() >> 3);
    high &= ~0ull << (64 - prefix);
    if (seen.insert({high, prefix}).second) out.push_back(*ip_network::make(ip_address::v6(high, 0), prefix));
  }
  return out;
}

// 100,000 networks inserted one at a time into an empty store (target: < 0.5 s),
// beside the same list loaded at once with replace().
void insert_networks(benchmark::State& state, bool dense, bool one_at_a_time, bool v6 = false) {
  const std::vector<ip_network> networks = v6 ? random_networks_v6(100000, 31, dense) : random_networks(100000, 31, dense);
  std::vector<grayroute::store_entry> entries;
  for (const auto& n : networks) entries.push_back({n, grayroute::kGray});
  double bytes_per_network = 0;
  for (auto _ : state) {
    grayroute::memory_store s;
    if (one_at_a_time) {
      for (const auto& n : networks) s.insert(n);
    } else {
      s.replace(entries);
    }
    grayroute::memory_store empty;
    bytes_per_network = static_cast<double>(s.memory_bytes() - empty.memory_bytes()) / static_cast<double>(networks.size());
    benchmark::DoNotOptimize(s.size());
  }
  state.counters["bytes_per_network"] = bytes_per_network;
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(networks.size()));
}
void BM_Store_InsertNetworks100K_OneByOne(benchmark::State& s) { insert_networks(s, false, true); }
void BM_Store_InsertNetworks100K_Replace(benchmark::State& s) { insert_networks(s, false, false); }
void BM_Store_InsertNetworks100K_Dense_OneByOne(benchmark::State& s) { insert_networks(s, true, true); }
void BM_Store_InsertNetworks100K_Dense_Replace(benchmark::State& s) { insert_networks(s, true, false); }
void BM_Store_InsertNetworks100K_V6_OneByOne(benchmark::State& s) { insert_networks(s, false, true, true); }
void BM_Store_InsertNetworks100K_V6_Replace(benchmark::State& s) { insert_networks(s, false, false, true); }
void BM_Store_InsertNetworks100K_V6Dense_OneByOne(benchmark::State& s) { insert_networks(s, true, true, true); }
void BM_Store_InsertNetworks100K_V6Dense_Replace(benchmark::State& s) { insert_networks(s, true, false, true); }

// Two threads look up continuously (1M hosts + 10,000 networks, half the probes
// listed; or the IPv6 fixture above), timing every lookup, for one second: once on an idle store, once while
// this thread applies 10,000 network inserts/erases per second (1% of them shorter
// than /16, which republish the directory). Reports each run's latency quantiles
// and the ratio of the churned p99 to the idle p99 (target: <= 2).
struct latencies {
  double p50, p99, p999, max;
  std::size_t lookups;
};

// The IPv6 counterpart: 10,000 random /32-/64 networks and 100,000 hosts inside
// them, probed half inside a network, half at random in 2000::/3.
struct v6_fixture {
  std::vector<ip_network> networks = random_networks_v6(10000, 51);
  std::vector<grayroute::store_entry> entries;
  std::vector<ip_address> queries;
  v6_fixture() {
    std::mt19937_64 rng(52);
    for (const auto& n : networks) entries.push_back({n, grayroute::kGray});
    auto inside = [&](const ip_network& n) {
      const unsigned p = n.prefix_length();
      return ip_address::v6(n.address().v6_high() | (rng() >> p), rng());
    };
    for (std::size_t i = 0; i < 100000; ++i) {
      entries.push_back({ip_network::host(inside(networks[i % networks.size()])), grayroute::kGray});
    }
    for (std::size_t i = 0; i < kTableSize; ++i) {
      queries.push_back(i % 2 ? inside(networks[rng() % networks.size()]) : ip_address::v6(0x2000000000000000ull | (rng() >> 3), rng()));
    }
  }
};

const v6_fixture& data_v6() {
  static const v6_fixture f;
  return f;
}

latencies lookups_during(const grayroute::memory_store& s, bool churn, grayroute::memory_store* writable, bool v6 = false) {
  constexpr int kReaders = 2;
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::uint32_t>> samples(kReaders);
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&, t] {
      auto& mine = samples[static_cast<std::size_t>(t)];
      mine.reserve(std::size_t{1} << 23);
      const auto& q = data().mixed;
      std::size_t i = static_cast<std::size_t>(t) * 7919;
      while (!stop.load(std::memory_order_relaxed) && mine.size() < mine.capacity()) {
        const std::size_t at = i++ & (kTableSize - 1);
        const ip_address a = v6 ? data_v6().queries[at] : ip_address::v4(q[at]);
        const auto t0 = std::chrono::steady_clock::now();
        benchmark::DoNotOptimize(s.lookup(a));
        const auto t1 = std::chrono::steady_clock::now();
        mine.push_back(static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(1);
  if (churn) {
    const std::vector<ip_network> pool = v6 ? random_networks_v6(20000, 41) : random_networks(20000, 41);
    std::mt19937 rng(43);
    std::size_t next = 0;
    for (auto due = start; due < end; due += std::chrono::microseconds(100)) {
      std::this_thread::sleep_until(due);
      if (rng() % 100 == 0) {
        const auto wide = v6 ? *ip_network::make(ip_address::v6((0x2000000000000000ull | std::uint64_t{rng()} << 29) & ~0ull << 44, 0), 20)
                             : *ip_network::make(ip_address::v4(static_cast<std::uint32_t>(rng()) & 0xfff00000u), 12);
        writable->insert(wide);
        writable->erase(wide);
        continue;
      }
      const ip_network& n = pool[next++ % pool.size()];
      if (!writable->erase(n)) writable->insert(n);
    }
  } else {
    std::this_thread::sleep_until(end);
  }
  stop = true;
  for (auto& r : readers) r.join();
  std::vector<std::uint32_t> all;
  for (const auto& v : samples) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto at = [&](double q) { return static_cast<double>(all[static_cast<std::size_t>(q * static_cast<double>(all.size() - 1))]); };
  return {at(0.5), at(0.99), at(0.999), static_cast<double>(all.back()), all.size()};
}

void lookup_latency(benchmark::State& state, bool v6) {
  grayroute::memory_store s(v6 ? data_v6().entries : data().entries);
  latencies idle{}, churned{};
  for (auto _ : state) {
    idle = lookups_during(s, false, nullptr, v6);
    churned = lookups_during(s, true, &s, v6);
  }
  state.counters["idle_p50_ns"] = idle.p50;
  state.counters["idle_p99_ns"] = idle.p99;
  state.counters["idle_p999_ns"] = idle.p999;
  state.counters["churn_p50_ns"] = churned.p50;
  state.counters["churn_p99_ns"] = churned.p99;
  state.counters["churn_p999_ns"] = churned.p999;
  state.counters["churn_max_ns"] = churned.max;
  state.counters["idle_max_ns"] = idle.max;
  state.counters["p99_ratio"] = churned.p99 / idle.p99;
  state.counters["churn_lookups"] = static_cast<double>(churned.lookups);
}
void BM_Store_LookupLatency_IdleVsChurn(benchmark::State& state) { lookup_latency(state, false); }
void BM_Store_LookupLatency_IdleVsChurn_V6(benchmark::State& state) { lookup_latency(state, true); }

BENCHMARK(BM_Store_InsertNetworks100K_OneByOne)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Store_InsertNetworks100K_Replace)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Store_InsertNetworks100K_Dense_OneByOne)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Store_InsertNetworks100K_Dense_Replace)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Store_InsertNetworks100K_V6_OneByOne)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Store_InsertNetworks100K_V6_Replace)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Store_InsertNetworks100K_V6Dense_OneByOne)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Store_InsertNetworks100K_V6Dense_Replace)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Store_LookupLatency_IdleVsChurn)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK(BM_Store_LookupLatency_IdleVsChurn_V6)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

BENCHMARK(BM_Store_Contains_HalfListed);
BENCHMARK(BM_UnorderedSet_Contains_HalfListed);
BENCHMARK(BM_Store_Contains_1PctListed);
BENCHMARK(BM_UnorderedSet_Contains_1PctListed);
BENCHMARK(BM_Store_Load1M)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_UnorderedSet_Load1M)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_Store_InsertErase);

}  // namespace

BENCHMARK_MAIN();
