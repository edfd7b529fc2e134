// Consistent decisions: what a decision token costs beside the decision it carries, and
// the PROXY protocol parser beside the address parse a listener does anyway.
//
// Baselines in the same binary: BM_Decide_Split (the policy's own decision, a 50% split
// by X-User-Id, no token: what an inner tier does when none comes) for the token work,
// BM_ParseIp_V4Text for the PROXY header.
#include <benchmark/benchmark.h>
#include <grayroute/decision_token.hpp>
#include <grayroute/policy.hpp>
#include <grayroute/proxy_protocol.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kInputs = 4096;  // distinct users; tokens differ in every byte of the tag
constexpr std::int64_t kNow = 1796119200;

const grayroute::decision_keys& keys() {
  static const grayroute::decision_keys k(grayroute::decision_keys::key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
                                          grayroute::decision_keys::key{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9});
  return k;
}

struct fixture {
  grayroute::policy policy = [] {
    grayroute::policy_config config;
    grayroute::rule_config rule;
    rule.name = "canary";
    rule.split = {{"gray", 50}};
    rule.key = {{grayroute::key_source::kind::header, "X-User-Id"}};
    config.rules.push_back(rule);
    return grayroute::policy(config);
  }();
  std::vector<std::string> users;
  std::vector<std::vector<grayroute::header>> requests;
  std::vector<std::string> tokens;
  grayroute::route_table routes{{"production", "gray"}};
  grayroute::ip_address peer = *grayroute::parse_ip("10.0.0.3");

  fixture() {
    for (std::size_t i = 0; i < kInputs; ++i) users.push_back("user-" + std::to_string(i * 7919));
    for (const std::string& u : users) {
      requests.push_back({{"Host", "shop.example.com"}, {"Accept", "text/html"}, {"X-User-Id", u}});
    }
    for (const auto& r : requests) {
      const grayroute::decision d = policy.decide({peer, "", "/", "", ""}, r);
      const auto t = grayroute::encode_decision_token(
          {policy.route_name(d.route), d.reason, d.rule, 7, kNow + 60}, keys());
      tokens.emplace_back(t->view());
    }
  }
};

const fixture& inputs() {
  static const fixture f;
  return f;
}

void BM_Decide_Split(benchmark::State& state) {
  const fixture& f = inputs();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.policy.decide({f.peer, "", "/", "", ""}, f.requests[i++ % kInputs]));
  }
  state.SetItemsProcessed(state.iterations());
}

// The same split with its share a weight_schedule (linear, mid-ramp at 50% on the system
// clock): the cost of reading the clock and the schedule per decision, beside BM_Decide_Split.
void BM_Decide_Split_Scheduled(benchmark::State& state) {
  const fixture& f = inputs();
  static const grayroute::policy scheduled = [] {
    grayroute::policy_config config;
    grayroute::rule_config rule;
    rule.name = "canary";
    grayroute::route_share share;
    share.route = "gray";
    const std::int64_t now = grayroute::unix_ms(std::chrono::system_clock::now());
    share.schedule = grayroute::weight_schedule({{now - 3600000, 0}, {now + 3600000, 1000000}}, grayroute::ramp_shape::linear);
    rule.split.push_back(share);
    rule.key = {{grayroute::key_source::kind::header, "X-User-Id"}};
    config.rules.push_back(rule);
    return grayroute::policy(config);
  }();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(scheduled.decide({f.peer, "", "/", "", ""}, f.requests[i++ % kInputs]));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Token_Encode(benchmark::State& state) {
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t k = i++ % kInputs;
    benchmark::DoNotOptimize(grayroute::encode_decision_token(
        {k % 2 ? "gray" : "production", grayroute::route_reason::percentage, "canary", 7, kNow + static_cast<std::int64_t>(k)},
        keys()));
  }
  state.SetItemsProcessed(state.iterations());
}

// Signed with the current key: one SipHash per token (a token under the previous key costs two).
void BM_Token_Verify(benchmark::State& state) {
  const fixture& f = inputs();
  const grayroute::decision_keys current_only(
      grayroute::decision_keys::key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        grayroute::verify_decision_token(f.tokens[i++ % kInputs], current_only, f.routes, kNow));
  }
  state.SetItemsProcessed(state.iterations());
}

// During a rotation both keys are always tried (constant time): the worst case.
void BM_Token_VerifyRotating(benchmark::State& state) {
  const fixture& f = inputs();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(grayroute::verify_decision_token(f.tokens[i++ % kInputs], keys(), kNow,
                                                              [&](std::string_view name) { return f.policy.find_route(name); }));
  }
  state.SetItemsProcessed(state.iterations());
}

// The edge: decide, then sign the decision.
void BM_Decide_Split_ThenEncode(benchmark::State& state) {
  const fixture& f = inputs();
  std::size_t i = 0;
  for (auto _ : state) {
    const grayroute::decision d = f.policy.decide({f.peer, "", "/", "", ""}, f.requests[i++ % kInputs]);
    benchmark::DoNotOptimize(
        grayroute::encode_decision_token({f.policy.route_name(d.route), d.reason, d.rule, 7, kNow + 60}, keys()));
  }
  state.SetItemsProcessed(state.iterations());
}

// The inner tier (what grayroute-proxy does per request): the decision header verified,
// the policy still asked (it resolves the client address for X-Real-IP and the log),
// then a valid token replaces the route. Baseline: BM_Decide_Split, no token.
void decide_with_token(benchmark::State& state, bool forged) {
  const fixture& f = inputs();
  std::vector<std::string> tokens = f.tokens;
  if (forged) {
    for (std::string& t : tokens) t.back() = t.back() == '0' ? '1' : '0';
  }
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t k = i++ % kInputs;
    const auto v = grayroute::verify_decision_token(tokens[k], keys(), kNow,
                                                    [&](std::string_view name) { return f.policy.find_route(name); });
    grayroute::decision d = f.policy.decide({f.peer, "", "/", "", ""}, f.requests[k]);
    if (v.status == grayroute::token_status::valid) {
      d.route = v.route;
      d.reason = grayroute::route_reason::upstream;
      d.rule = v.claims.rule;
    }
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Decide_Split_TokenPresent(benchmark::State& state) { decide_with_token(state, false); }
void BM_Decide_Split_TokenForged(benchmark::State& state) { decide_with_token(state, true); }

const std::vector<std::string>& proxy_headers(bool v2) {
  static const std::vector<std::string> v1_lines = [] {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < kInputs; ++i) {
      out.push_back("PROXY TCP4 192.0." + std::to_string(i % 250) + "." + std::to_string(i / 250 % 250) +
                    " 10.0.0.1 " + std::to_string(1024 + i) + " 443\r\n");
    }
    return out;
  }();
  static const std::vector<std::string> v2_headers = [] {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < kInputs; ++i) {
      std::string s("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
      for (int b : {192, 0, static_cast<int>(i % 250), static_cast<int>(i / 250 % 250), 10, 0, 0, 1, 4, 0, 1, 187}) {
        s += static_cast<char>(b);
      }
      out.push_back(s);
    }
    return out;
  }();
  return v2 ? v2_headers : v1_lines;
}

void BM_ParseIp_V4Text(benchmark::State& state) {
  std::vector<std::string> texts;
  for (const std::string& line : proxy_headers(false)) texts.push_back(line.substr(11, line.find(' ', 11) - 11));
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(grayroute::parse_ip(texts[i++ % kInputs]));
  state.SetItemsProcessed(state.iterations());
}

void BM_ProxyProtocol_V1(benchmark::State& state) {
  const auto& lines = proxy_headers(false);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& s = lines[i++ % kInputs];
    benchmark::DoNotOptimize(grayroute::parse_proxy_protocol(s.data(), s.size()));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ProxyProtocol_V2(benchmark::State& state) {
  const auto& headers = proxy_headers(true);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& s = headers[i++ % kInputs];
    benchmark::DoNotOptimize(grayroute::parse_proxy_protocol(s.data(), s.size()));
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_Decide_Split);
BENCHMARK(BM_Decide_Split_Scheduled);
BENCHMARK(BM_Token_Encode);
BENCHMARK(BM_Token_Verify);
BENCHMARK(BM_Token_VerifyRotating);
BENCHMARK(BM_Decide_Split_ThenEncode);
BENCHMARK(BM_Decide_Split_TokenPresent);
BENCHMARK(BM_Decide_Split_TokenForged);
BENCHMARK(BM_ParseIp_V4Text);
BENCHMARK(BM_ProxyProtocol_V1);
BENCHMARK(BM_ProxyProtocol_V2);

BENCHMARK_MAIN();
