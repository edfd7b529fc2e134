// The lookup peer benchmark's inputs, shared by bench_lookup.cpp and the DPDK peers
// (built in their own translation unit with DPDK's flags): 1M random IPv4 hosts,
// 10,000 random networks from /16 to /24, and two probe tables, half of each listed
// hosts and half unlisted addresses.
#ifndef GRAYROUTE_BENCH_LOOKUP_INPUTS_HPP
#define GRAYROUTE_BENCH_LOOKUP_INPUTS_HPP

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <unordered_set>
#include <utility>
#include <vector>

#include "inputs.hpp"

namespace grayroute::bench {

inline constexpr std::size_t kLookupHosts = 1000000;
inline constexpr std::size_t kLookupNetworks = 10000;
inline constexpr std::size_t kColdProbes = std::size_t{1} << 20;  // every probe a different client
inline constexpr std::size_t kHotProbes = std::size_t{1} << 16;   // 64K clients, queried over and over
inline constexpr std::size_t kBatch = 256;                         // addresses per batch call

struct v4_network {
  std::uint32_t address;
  unsigned prefix;
};

struct lookup_inputs {
  std::vector<std::uint32_t> hosts;
  std::vector<v4_network> networks;
  std::vector<std::uint32_t> cold;  // kColdProbes distinct addresses
  std::vector<std::uint32_t> hot;   // kHotProbes distinct addresses
};

/// `count` distinct probes, half from `listed` and half from `unlisted`, shuffled.
inline std::vector<std::uint32_t> distinct_probes(const std::vector<std::uint32_t>& listed,
                                                  const std::vector<std::uint32_t>& unlisted, std::size_t count,
                                                  std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint32_t> a = listed, b = unlisted;
  std::shuffle(a.begin(), a.end(), rng);
  std::shuffle(b.begin(), b.end(), rng);
  std::vector<std::uint32_t> out(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(count / 2));
  out.insert(out.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(count - count / 2));
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

inline const lookup_inputs& lookup_data() {
  static const lookup_inputs inputs = [] {
    lookup_inputs in;
    in.hosts = distinct_v4(kLookupHosts, 11);
    const std::vector<std::uint32_t> unlisted =
        distinct_v4(kColdProbes, 12, std::unordered_set<std::uint32_t>(in.hosts.begin(), in.hosts.end()));
    std::mt19937 rng(15);
    std::set<std::pair<std::uint32_t, unsigned>> seen;
    while (in.networks.size() < kLookupNetworks) {
      const unsigned prefix = 16 + static_cast<unsigned>(rng() % 9);
      const std::uint32_t address = static_cast<std::uint32_t>(rng()) & (~0u << (32 - prefix));
      if (seen.insert({address, prefix}).second) in.networks.push_back({address, prefix});
    }
    in.cold = distinct_probes(in.hosts, unlisted, kColdProbes, 13);
    in.hot = distinct_probes(in.hosts, unlisted, kHotProbes, 14);
    return in;
  }();
  return inputs;
}

inline const std::vector<std::uint32_t>& probes(bool hot) { return hot ? lookup_data().hot : lookup_data().cold; }

inline std::size_t heap_in_use() {
  const auto info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

/// One lookup per iteration over the probe table, cycling; `lookup` returns a route
/// code (0: not listed) so that no peer's answer can be optimised away.
template <class Lookup>
void run_probes(benchmark::State& state, const std::vector<std::uint32_t>& table, Lookup lookup) {
  const std::size_t mask = table.size() - 1;
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) sum += lookup(table[i++ & mask]);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}

/// kBatch lookups per iteration; `lookup` fills `codes` for `count` probes from `first`.
template <class Lookup>
void run_batches(benchmark::State& state, const std::vector<std::uint32_t>& table, Lookup lookup) {
  std::uint32_t codes[kBatch];
  std::size_t at = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    lookup(&table[at], codes, kBatch);
    sum += codes[0] + codes[kBatch - 1];
    at = (at + kBatch) & (table.size() - 1);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kBatch));
}

}  // namespace grayroute::bench

#endif  // GRAYROUTE_BENCH_LOOKUP_INPUTS_HPP
