// Fixed, seeded input tables for the benchmarks: large enough (>= 1M distinct
// entries) that branch predictors and caches cannot memorise them.
#ifndef GRAYROUTE_BENCH_INPUTS_HPP
#define GRAYROUTE_BENCH_INPUTS_HPP

#include <benchmark/benchmark.h>
#include <grayroute/ip.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

namespace grayroute::bench {

inline constexpr std::size_t kTableSize = 1 << 20;  // 1,048,576

/// `count` distinct random IPv4 values; never 0 (kept out of the marker path).
inline std::vector<std::uint32_t> distinct_v4(std::size_t count, std::uint32_t seed,
                                              const std::unordered_set<std::uint32_t>& avoid = {}) {
  std::mt19937 rng(seed);
  std::unordered_set<std::uint32_t> seen;
  seen.reserve(count * 2);
  std::vector<std::uint32_t> out;
  out.reserve(count);
  while (out.size() < count) {
    const std::uint32_t v = static_cast<std::uint32_t>(rng());
    if (v == 0 || avoid.count(v) || !seen.insert(v).second) continue;
    out.push_back(v);
  }
  return out;
}

/// Distinct IPv4 texts, mixing short and long octets like real traffic.
inline std::vector<std::string> v4_texts(std::size_t count, std::uint32_t seed) {
  std::vector<std::string> out;
  out.reserve(count);
  for (std::uint32_t v : distinct_v4(count, seed)) out.push_back(to_string(ip_address::v4(v)));
  return out;
}

/// Distinct IPv6 texts: canonical compressed forms, full forms, upper case and
/// v4-mapped, in the proportions a gateway might see.
inline std::vector<std::string> v6_texts(std::size_t count, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t high = 0x20010db800000000ull | (rng() & 0xffffffffull);
    std::uint64_t low = rng();
    switch (i % 4) {
      case 0: low &= 0xffffull; break;                                     // 2001:db8:x:y::z
      case 1: break;                                                       // all eight groups
      case 2: out.push_back(to_string(ip_address::v4(static_cast<std::uint32_t>(low)))); continue;
      default: low &= 0x0000ffff0000ffffull; break;                        // some zero groups
    }
    std::string text = to_string(ip_address::v6(high, low));
    if (i % 8 == 1) std::transform(text.begin(), text.end(), text.begin(), ::toupper);
    out.push_back(text);
  }
  // Replace the IPv4 stand-ins with v4-mapped IPv6 texts.
  for (auto& t : out) {
    if (t.find(':') == std::string::npos) t = "::ffff:" + t;
  }
  return out;
}

/// A shuffled query table: `hits` taken from `listed`, the rest from `unlisted`.
inline std::vector<std::uint32_t> queries(const std::vector<std::uint32_t>& listed,
                                          const std::vector<std::uint32_t>& unlisted, double hit_share,
                                          std::size_t count, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint32_t> out;
  out.reserve(count);
  const std::size_t hits = static_cast<std::size_t>(count * hit_share);
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(i < hits ? listed[rng() % listed.size()] : unlisted[rng() % unlisted.size()]);
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

/// The process's mappings advised for transparent huge pages (the store's large
/// tables, which are mapped outside the heap on Linux) and how much of them the
/// kernel backs with 2 MiB pages, from /proc/self/smaps; zeros elsewhere.
struct huge_pages {
  std::size_t advised_bytes = 0;
  std::size_t huge_bytes = 0;
};

inline huge_pages huge_pages_in_use() {
  huge_pages out;
  std::ifstream smaps("/proc/self/smaps");
  std::size_t size = 0, huge = 0;
  for (std::string field; smaps >> field;) {
    std::size_t kib = 0;
    if (field == "Size:") {
      smaps >> size;
    } else if (field == "AnonHugePages:") {
      smaps >> huge;
    } else if (field == "THPeligible:" && smaps >> kib && kib == 1) {  // a flag, not kB
      out.advised_bytes += size << 10;
      out.huge_bytes += huge << 10;
    }
    smaps.ignore(1 << 12, '\n');
  }
  return out;
}

/// Counters for a benchmark over a store: how much of its advised memory is on
/// huge pages (1: all of it), and how many bytes that is.
inline void count_huge_pages(benchmark::State& state) {
  const huge_pages h = huge_pages_in_use();
  state.counters["huge_page_share"] = h.advised_bytes == 0 ? 0.0 : static_cast<double>(h.huge_bytes) / static_cast<double>(h.advised_bytes);
  state.counters["huge_page_MiB"] = static_cast<double>(h.huge_bytes) / (1 << 20);
}

}  // namespace grayroute::bench

#endif  // GRAYROUTE_BENCH_INPUTS_HPP
