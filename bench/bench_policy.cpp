// The policy's decision beside today's router in the same binary: the issue's example
// policy (four rules, two lists) against router<memory_store> with a 5% rollout, over
// the same million requests; then the cost of one more rule that does not match, per
// kind of rule (the slope between 0 and 32 such rules in front of the example).
#include <benchmark/benchmark.h>
#include <grayroute/grayroute.hpp>
#include <grayroute/policy.hpp>

#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "inputs.hpp"

namespace {

using grayroute::header;
using grayroute::ip_address;
using grayroute::bench::kTableSize;

constexpr std::size_t kHosts = 1000000;

// A request as a gateway sees it: ordinary headers, X-Forwarded-For with the client and
// two of our proxies, a host and path, and for some a user id, a uid cookie, X-Beta.
// Its text lives in one buffer, as in a gateway's parsed request (nginx's header
// buffer, Beast's flat fields), so both deciders read the same few cache lines.
struct request {
  std::string text;
  std::vector<header> headers;
  grayroute::request_view view;
};

struct fixture {
  std::vector<std::uint32_t> listed = grayroute::bench::distinct_v4(kHosts, 31);
  std::vector<std::uint32_t> unlisted =
      grayroute::bench::distinct_v4(kHosts, 32, std::unordered_set<std::uint32_t>(listed.begin(), listed.end()));
  grayroute::memory_store seed{[this] {
    std::vector<grayroute::store_entry> e;
    for (auto v : listed) e.push_back({grayroute::ip_network::host(ip_address::v4(v)), grayroute::kGray});
    return e;
  }()};
  grayroute::memory_store qa{std::vector<grayroute::store_entry>{
      {*grayroute::parse_network("192.168.116.0/24"), grayroute::kGray},
      {*grayroute::parse_network("10.1.2.3"), grayroute::kGray},
      {*grayroute::parse_network("2001:db8:7::/48"), grayroute::kGray}}};
  ip_address peer = *grayroute::parse_ip("10.0.0.3");
  std::vector<request> requests = make_requests(0.01, 33);

  std::vector<request> make_requests(double hit_share, std::uint32_t seed_value) const {
    std::vector<request> out(kTableSize);
    const auto clients = grayroute::bench::queries(listed, unlisted, hit_share, kTableSize, seed_value);
    std::mt19937 rng(seed_value);
    const char* hosts[] = {"www.example.com", "api.example.com", "shop.example.com", "www.example.com:443"};
    const char* paths[] = {"/", "/v2/orders/17", "/static/app.js", "/v1/cart?item=3"};
    for (std::size_t i = 0; i < kTableSize; ++i) {
      request& r = out[i];
      const std::string xff = to_string(ip_address::v4(clients[i])) + ", 10.0.0." + std::to_string(1 + i % 200) + ", 10.0.0.2";
      const std::string user = rng() % 2 ? "user-" + std::to_string(rng() % 100000) : "";
      const std::string cookie = "session=7d1f0c; theme=dark" + (rng() % 2 ? "; uid=" + std::to_string(rng()) : std::string());
      const std::string beta = rng() % 10 == 0 ? (rng() % 2 ? "yes" : "no") : "";
      std::vector<std::pair<std::string, std::string>> fields = {{"Host", hosts[rng() % 4]},
                                                                 {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"},
                                                                 {"Accept", "text/html,application/xhtml+xml"},
                                                                 {"Accept-Encoding", "gzip, deflate, br"},
                                                                 {"X-Forwarded-For", xff},
                                                                 {"Cookie", cookie}};
      if (!user.empty()) fields.push_back({"X-User-Id", user});
      if (!beta.empty()) fields.push_back({"X-Beta", beta});
      const std::string path = paths[rng() % 4];
      std::size_t length = path.size();
      for (const auto& [name, value] : fields) length += name.size() + value.size();
      r.text.reserve(length);  // no reallocation below: the views stay valid
      auto add = [&r](const std::string& piece) {
        const std::size_t at = r.text.size();
        r.text += piece;
        return std::string_view(r.text.data() + at, piece.size());
      };
      r.view.peer = peer;
      r.view.path = add(path);
      for (const auto& [name, value] : fields) r.headers.push_back({add(name), add(value)});
      r.view.host = r.headers.front().second;
    }
    return out;
  }
};

const fixture& data() {
  static const fixture f;
  return f;
}

// Today's decision, as bench_decide.cpp configures it.
grayroute::router_config router_config() {
  grayroute::router_config c;
  c.client_ip.trusted_proxies = {"10.0.0.0/8"};
  c.client_ip.headers = {"X-Real-IP", "X-Forwarded-For"};
  c.percent = 5;
  return c;
}

// The issue's example policy; `extra` rules that never match go in front of it.
grayroute::policy_config example_policy(const std::vector<std::string>& extra = {}) {
  grayroute::policy_config c;
  c.routes = {"production", "gray", "beta"};
  c.client_ip.trusted_proxies = {"10.0.0.0/8"};
  c.client_ip.headers = {"X-Real-IP", "X-Forwarded-For"};
  c.lists.push_back({"qa", {grayroute::store_ref(data().qa)}});
  c.lists.push_back({"seed", {grayroute::store_ref(data().seed)}});
  for (const std::string& line : extra) c.rules.push_back(grayroute::parse_rule(line));
  c.rules.push_back(grayroute::parse_rule("beta-api host=api.example.com path=/v2/ header:X-Beta=1,yes route=beta"));
  c.rules.push_back(grayroute::parse_rule("qa-office list=qa"));
  c.rules.push_back(grayroute::parse_rule("seed list=seed"));
  c.rules.push_back(grayroute::parse_rule("rollout host=www.example.com split=gray:10 key=header:X-User-Id,cookie:uid,ip"));
  c.default_route = "production";
  return c;
}

void run_router(benchmark::State& state, const grayroute::router_config& config) {
  const grayroute::router<grayroute::memory_store> router(data().seed, config);
  const auto& requests = data().requests;
  std::size_t i = 0, routed = 0;
  for (auto _ : state) {
    const request& r = requests[i++ & (kTableSize - 1)];
    routed += router.decide(r.view.peer, r.headers).route;
  }
  benchmark::DoNotOptimize(routed);
  state.SetItemsProcessed(state.iterations());
}

void BM_Policy_Baseline_Router(benchmark::State& state) { run_router(state, router_config()); }

// The closest router_config to the example: the same list, a 10% rollout keyed by
// X-User-Id, then the uid cookie, then the client address (no hosts, paths, second list).
void BM_Policy_Baseline_RouterUserKey(benchmark::State& state) {
  grayroute::router_config c = router_config();
  c.percent = 10;
  c.percent_key_header = "X-User-Id";
  c.percent_key_cookie = "uid";
  run_router(state, c);
}

void run_policy(benchmark::State& state, const grayroute::policy& policy) {
  const auto& requests = data().requests;
  std::size_t i = 0, routed = 0;
  for (auto _ : state) {
    const request& r = requests[i++ & (kTableSize - 1)];
    routed += policy.decide(r.view, r.headers).route;
  }
  benchmark::DoNotOptimize(routed);
  state.SetItemsProcessed(state.iterations());
}

void BM_Policy_IssueExample(benchmark::State& state) { run_policy(state, grayroute::policy(example_policy())); }

// The router's own configuration as a policy (to_policy_config): what the shorthand costs.
void BM_Policy_RouterShorthand(benchmark::State& state) {
  run_policy(state, grayroute::policy(grayroute::to_policy_config(router_config(), grayroute::store_ref(data().seed))));
}

// N rules of one kind that never match, in front of the example: the slope is the per-rule cost.
template <class Rule>
void run_extra_rules(benchmark::State& state, Rule rule) {
  std::vector<std::string> extra;
  for (int n = 0; n < state.range(0); ++n) extra.push_back(rule(n));
  run_policy(state, grayroute::policy(example_policy(extra)));
}

void BM_Policy_PerRule_HostScope(benchmark::State& state) {
  run_extra_rules(state, [](int n) { return "r" + std::to_string(n) + " host=svc" + std::to_string(n) + ".example.com route=beta"; });
}
void BM_Policy_PerRule_PathScope(benchmark::State& state) {
  run_extra_rules(state, [](int n) { return "r" + std::to_string(n) + " path=/svc" + std::to_string(n) + "/ route=beta"; });
}
void BM_Policy_PerRule_HeaderEquals(benchmark::State& state) {
  run_extra_rules(state, [](int n) { return "r" + std::to_string(n) + " header:X-User-Id=nobody" + std::to_string(n) + " route=beta"; });
}
void BM_Policy_PerRule_CookieEquals(benchmark::State& state) {
  run_extra_rules(state, [](int n) { return "r" + std::to_string(n) + " cookie:tier=gold" + std::to_string(n) + " route=beta"; });
}
void BM_Policy_PerRule_ListLookup(benchmark::State& state) {
  run_extra_rules(state, [](int n) { return "r" + std::to_string(n) + " list=qa route=beta"; });
}
void BM_Policy_PerRule_SplitMiss(benchmark::State& state) {
  run_extra_rules(state, [](int n) { return "r" + std::to_string(n) + " split=beta:0.0001 seed=" + std::to_string(n); });
}

BENCHMARK(BM_Policy_Baseline_Router);
BENCHMARK(BM_Policy_Baseline_RouterUserKey);
BENCHMARK(BM_Policy_IssueExample);
BENCHMARK(BM_Policy_RouterShorthand);
BENCHMARK(BM_Policy_PerRule_HostScope)->Arg(0)->Arg(32);
BENCHMARK(BM_Policy_PerRule_PathScope)->Arg(0)->Arg(32);
BENCHMARK(BM_Policy_PerRule_HeaderEquals)->Arg(0)->Arg(32);
BENCHMARK(BM_Policy_PerRule_CookieEquals)->Arg(0)->Arg(32);
BENCHMARK(BM_Policy_PerRule_ListLookup)->Arg(0)->Arg(32);
BENCHMARK(BM_Policy_PerRule_SplitMiss)->Arg(0)->Arg(32);

}  // namespace

BENCHMARK_MAIN();
