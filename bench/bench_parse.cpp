// parse_ip against glibc's inet_pton, over a million distinct addresses per family.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <grayroute/ip.hpp>

#include "inputs.hpp"

namespace {

using grayroute::bench::kTableSize;

const std::vector<std::string>& v4_table() {
  static const auto table = grayroute::bench::v4_texts(kTableSize, 1);
  return table;
}
const std::vector<std::string>& v6_table() {
  static const auto table = grayroute::bench::v6_texts(kTableSize, 2);
  return table;
}

void BM_ParseIp_V4(benchmark::State& state) {
  const auto& table = v4_table();
  std::size_t i = 0;
  for (auto _ : state) {
    auto a = grayroute::parse_ip(table[i++ & (kTableSize - 1)]);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_InetPton_V4(benchmark::State& state) {
  const auto& table = v4_table();
  std::size_t i = 0;
  in_addr out;
  for (auto _ : state) {
    // inet_pton wants a NUL-terminated string; std::string provides one for free.
    benchmark::DoNotOptimize(inet_pton(AF_INET, table[i++ & (kTableSize - 1)].c_str(), &out));
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ParseIp_V6(benchmark::State& state) {
  const auto& table = v6_table();
  std::size_t i = 0;
  for (auto _ : state) {
    auto a = grayroute::parse_ip(table[i++ & (kTableSize - 1)]);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_InetPton_V6(benchmark::State& state) {
  const auto& table = v6_table();
  std::size_t i = 0;
  in6_addr out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(inet_pton(AF_INET6, table[i++ & (kTableSize - 1)].c_str(), &out));
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ParseNetwork_V4(benchmark::State& state) {
  static const auto table = [] {
    std::vector<std::string> t;
    for (std::uint32_t v : grayroute::bench::distinct_v4(kTableSize, 3)) {
      t.push_back(to_string(grayroute::ip_address::v4(v & 0xffffff00u)) + "/24");
    }
    return t;
  }();
  std::size_t i = 0;
  for (auto _ : state) {
    auto n = grayroute::parse_network(table[i++ & (kTableSize - 1)]);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_ParseIp_V4);
BENCHMARK(BM_InetPton_V4);
BENCHMARK(BM_ParseIp_V6);
BENCHMARK(BM_InetPton_V6);
BENCHMARK(BM_ParseNetwork_V4);

}  // namespace

BENCHMARK_MAIN();
