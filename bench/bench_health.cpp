// What route health adds to a request: apply_health() after the decision and record()
// after the response, beside the same decision without health, in one binary. The clock
// is an argument (adapters already have a time: nginx's ngx_current_msec, the proxy's
// latency measurement); reading steady_clock is measured on its own.
#include <benchmark/benchmark.h>
#include <grayroute/grayroute.hpp>
#include <grayroute/health_table.hpp>
#include <grayroute/policy.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "inputs.hpp"

namespace {

using grayroute::header;
using grayroute::ip_address;
using grayroute::outcome;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr std::size_t kHosts = 100000;
constexpr std::size_t kRequests = 1 << 16;

struct request {
  std::string xff;
  std::vector<header> headers;
};

struct fixture {
  std::vector<std::uint32_t> listed = grayroute::bench::distinct_v4(kHosts, 31);
  grayroute::policy policy{[this] {
    std::vector<grayroute::store_entry> e;
    for (auto v : listed) e.push_back({grayroute::ip_network::host(ip_address::v4(v)), grayroute::kGray});
    grayroute::router_config c;
    c.client_ip.trusted_proxies = {"10.0.0.0/8"};
    c.client_ip.headers = {"X-Forwarded-For"};
    c.percent = 5;
    return grayroute::to_policy_config(c, grayroute::store_ref(std::make_shared<grayroute::memory_store>(e)));
  }()};
  std::vector<request> requests = [this] {
    const auto unlisted = grayroute::bench::distinct_v4(kHosts, 32);
    const auto clients = grayroute::bench::queries(listed, unlisted, 0.5, kRequests, 33);
    std::vector<request> out(kRequests);
    for (std::size_t i = 0; i < kRequests; ++i) {
      out[i].xff = to_string(ip_address::v4(clients[i])) + ", 10.0.0.2";
      out[i].headers = {{"Host", "shop.example.com"},
                        {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"},
                        {"Accept", "text/html,application/xhtml+xml"},
                        {"X-Forwarded-For", out[i].xff}};
    }
    return out;
  }();
  // 1% of the responses are 5xx: the error path (a window sum) is taken, the breaker stays closed.
  std::vector<outcome> outcomes = [] {
    std::vector<outcome> out(kRequests, outcome::success);
    for (std::size_t i = 0; i < kRequests; i += 100) out[i] = outcome::status_5xx;
    return out;
  }();
  ip_address peer = *grayroute::parse_ip("10.0.0.3");
};

const fixture& data() {
  static const fixture f;
  return f;
}

// A millisecond clock that advances one ms every 1024 requests, so window buckets turn over.
milliseconds tick(std::size_t i) { return milliseconds(1000000 + static_cast<milliseconds::rep>(i >> 10)); }

void BM_Decide_NoHealth(benchmark::State& state) {
  const fixture& f = data();
  std::size_t i = 0, gray = 0;
  for (auto _ : state) {
    // The same inputs as below (the time, the outcome), which an adapter has anyway.
    const std::size_t k = i & (kRequests - 1);
    const milliseconds now = tick(i++);
    benchmark::DoNotOptimize(now);
    benchmark::DoNotOptimize(f.outcomes[k]);
    gray += f.policy.decide(f.peer, f.requests[k].headers).route;
  }
  benchmark::DoNotOptimize(gray);
  state.SetItemsProcessed(state.iterations());
}

void run_with_health(benchmark::State& state, const grayroute::health_config& config) {
  const fixture& f = data();
  grayroute::health_table health(config, f.policy.routes().size());
  std::size_t i = 0, gray = 0;
  for (auto _ : state) {
    const std::size_t k = i & (kRequests - 1);
    const milliseconds now = tick(i++);
    const grayroute::decision d = grayroute::apply_health(f.policy.decide(f.peer, f.requests[k].headers), health, now);
    health.record(d.route, f.outcomes[k], microseconds(1500), now);
    gray += d.route;
  }
  benchmark::DoNotOptimize(gray);
  state.SetItemsProcessed(state.iterations());
}

void BM_Decide_WithHealth(benchmark::State& state) { run_with_health(state, grayroute::health_config{}); }

void BM_Decide_WithHealth_NoHistogram(benchmark::State& state) {
  grayroute::health_config config;
  config.latency_histogram = false;
  run_with_health(state, config);
}

// The health part alone: one admit (closed) and one record per request.
void BM_Health_AdmitAndRecord(benchmark::State& state) {
  // One table for all the benchmark's threads, as in a gateway.
  static grayroute::health_table health(grayroute::health_config{}, 2);
  const fixture& f = data();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    const std::size_t k = i & (kRequests - 1);
    const milliseconds now = tick(i++);
    benchmark::DoNotOptimize(health.admit(grayroute::kGray, now));
    health.record(grayroute::kGray, f.outcomes[k], microseconds(1500), now);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Health_Admit(benchmark::State& state) {
  grayroute::health_table health(grayroute::health_config{}, 2);
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(health.admit(grayroute::kGray, tick(i++)));
  state.SetItemsProcessed(state.iterations());
}

void BM_Health_ClockRead(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(grayroute::health_clock::now_ms());
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Decide_NoHealth);
BENCHMARK(BM_Decide_WithHealth);
BENCHMARK(BM_Decide_WithHealth_NoHistogram);
BENCHMARK(BM_Health_Admit);
BENCHMARK(BM_Health_AdmitAndRecord)->Threads(1)->Threads(2);
BENCHMARK(BM_Health_ClockRead);

}  // namespace

BENCHMARK_MAIN();
