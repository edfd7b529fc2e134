// A policy split whose share is a weight_schedule (issue 13's ramps): the weight is read
// from the injected clock per decision, raising it only moves keys to gray, and the
// configuration is checked as fixed shares are.
#include <grayroute/config_error.hpp>
#include <grayroute/policy.hpp>
#include <grayroute/policy_syntax.hpp>
#include <grayroute/weight_schedule.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

using grayroute::header;
using grayroute::policy;
using grayroute::policy_config;

namespace {

constexpr std::int64_t kStart = 1796119200000;  // 2026-12-01T10:00:00Z
constexpr std::int64_t kHour = 3600000;
std::atomic<std::int64_t> g_now{0};
std::int64_t test_clock() noexcept { return g_now.load(); }

policy_config ramp_config(grayroute::ramp_shape shape) {
  policy_config c;
  c.routes = {"production", "gray"};
  c.clock_ms = &test_clock;
  grayroute::rule_config& r = c.rules.emplace_back();
  r.name = "ramp";
  grayroute::route_share share;
  share.route = "gray";
  share.schedule = grayroute::parse_weight_schedule("2026-12-01T10:00:00Z 1%, +1h 5%, +1h 25%, +2h 100%", shape);
  r.split.push_back(std::move(share));
  r.key.push_back({grayroute::key_source::kind::header, "X-User-Id"});
  return c;
}

bool gray(const policy& p, const std::string& user) {
  const std::vector<header> headers{{"X-User-Id", user}};
  grayroute::request_view view;
  view.peer = *grayroute::parse_ip("198.51.100.7");
  const grayroute::decision d = p.decide(view, headers);
  return d.route == grayroute::kGray && d.reason == grayroute::route_reason::percentage && d.rule == "ramp";
}

}  // namespace

TEST_SUITE("policy schedule") {
  TEST_CASE("the share's weight follows the clock; a rising weight only moves users to gray") {
    for (const auto shape : {grayroute::ramp_shape::steps, grayroute::ramp_shape::linear}) {
      const policy p(ramp_config(shape));
      constexpr int kUsers = 20000;
      std::vector<bool> was_gray(kUsers, false);
      int previous_count = 0;
      for (std::int64_t t = kStart - kHour; t <= kStart + 5 * kHour; t += kHour / 4) {
        g_now = t;
        int count = 0;
        for (int u = 0; u < kUsers; ++u) {
          const bool now_gray = gray(p, "user-" + std::to_string(u));
          CHECK_MESSAGE(!(was_gray[static_cast<std::size_t>(u)] && !now_gray), "user moved back at t=" << t);
          was_gray[static_cast<std::size_t>(u)] = now_gray;
          count += now_gray;
        }
        CHECK(count >= previous_count);
        previous_count = count;
        const double share = 100.0 * count / kUsers;
        const double expected = grayroute::parse_weight_schedule("2026-12-01T10:00:00Z 1%, +1h 5%, +1h 25%, +2h 100%", shape)
                                    .ppm_at(t) / 10000.0;
        CHECK_MESSAGE(std::abs(share - expected) < 1.0, "t=" << t << " share " << share << " expected " << expected);
      }
      CHECK(previous_count == kUsers);  // 100% after the last step
    }
  }

  TEST_CASE("before the first step nobody is in the share: the next rule decides") {
    policy_config c = ramp_config(grayroute::ramp_shape::steps);
    c.default_route = "production";
    const policy p(c);
    g_now = kStart - 1;
    CHECK_FALSE(gray(p, "anyone"));
    const auto shares = p.scheduled_shares();
    REQUIRE(shares.size() == 1);
    CHECK(shares[0].rule == "ramp");
    CHECK(shares[0].route == grayroute::kGray);
    const auto status = shares[0].schedule->status(p.clock_now_ms());
    CHECK(status.ppm == 0);
    REQUIRE(status.next);
    CHECK(status.next->at_ms == kStart);
  }

  TEST_CASE("a fixed share before a scheduled one keeps its keys") {
    policy_config c = ramp_config(grayroute::ramp_shape::steps);
    c.routes = {"production", "gray", "beta"};
    auto& split = c.rules[0].split;
    split[0].schedule = grayroute::parse_weight_schedule("2026-12-01T10:00:00Z 1%, +1h 90%", grayroute::ramp_shape::linear);
    split.insert(split.begin(), grayroute::route_share{"beta", 10, {}});
    const policy p(c);
    std::vector<std::string> beta;
    for (int u = 0; u < 2000; ++u) {
      g_now = kStart - kHour;
      const std::string id = "u" + std::to_string(u);  // a header holds views: the id must outlive it
      const std::vector<header> headers{{"X-User-Id", id}};
      grayroute::request_view view;
      view.peer = *grayroute::parse_ip("198.51.100.7");
      const bool was_beta = p.decide(view, headers).route == 2;
      g_now = kStart + 5 * kHour;
      CHECK((p.decide(view, headers).route == 2) == was_beta);
    }
  }

  TEST_CASE("configuration errors") {
    policy_config both = ramp_config(grayroute::ramp_shape::steps);
    both.rules[0].split[0].percent = 5;
    CHECK_THROWS_WITH_AS(policy{both}, doctest::Contains("a percent and a schedule"), grayroute::config_error);

    policy_config over = ramp_config(grayroute::ramp_shape::steps);
    over.rules[0].split.insert(over.rules[0].split.begin(), grayroute::route_share{"production", 1, {}});
    CHECK_THROWS_WITH_AS(policy{over}, doctest::Contains("more than 100% (a schedule counts at its last step)"),
                         grayroute::config_error);
  }

  TEST_CASE("rule words: split=ROUTE:schedule schedule=<when>/<weight>,... ramp=, the same schedule as the spaced text") {
    const grayroute::rule_config r = grayroute::parse_rule(
        "ramp key=header:X-User-Id split=gray:schedule ramp=linear "
        "schedule=2026-12-01T10:00:00Z/1%,+1h/5%,+1h/25%,+2h/100%");
    REQUIRE(r.split.size() == 1);
    CHECK(r.split[0].route == "gray");
    CHECK(r.split[0].percent == 0.0);
    REQUIRE(r.split[0].schedule);
    const auto spaced = grayroute::parse_weight_schedule("2026-12-01T10:00:00Z 1%, +1h 5%, +1h 25%, +2h 100%",
                                                         grayroute::ramp_shape::linear);
    REQUIRE(r.split[0].schedule->steps().size() == spaced.steps().size());
    for (std::size_t i = 0; i < spaced.steps().size(); ++i) {
      CHECK(r.split[0].schedule->steps()[i].at_ms == spaced.steps()[i].at_ms);
      CHECK(r.split[0].schedule->steps()[i].ppm == spaced.steps()[i].ppm);
    }
    CHECK(r.split[0].schedule->shape() == grayroute::ramp_shape::linear);
    // A fixed share beside the scheduled one; steps by default.
    const grayroute::rule_config two = grayroute::parse_rule("two split=beta:2.5,gray:schedule schedule=2026-12-01T10:00:00Z/1%");
    REQUIRE(two.split.size() == 2);
    CHECK(two.split[0].percent == 2.5);
    CHECK(!two.split[0].schedule);
    CHECK(two.split[1].schedule->shape() == grayroute::ramp_shape::steps);
    // The parsed rule builds a policy that ramps on the clock.
    policy_config c;
    c.routes = {"production", "gray"};
    c.clock_ms = &test_clock;
    c.rules.push_back(r);
    const policy p(c);
    g_now = kStart + 2 * kHour;  // 25% now
    int in = 0;
    for (int u = 0; u < 1000; ++u) in += gray(p, "user-" + std::to_string(u)) ? 1 : 0;
    CHECK(in > 200);
    CHECK(in < 300);

    for (const char* bad : {"r split=gray:schedule", "r split=gray:10 schedule=2026-12-01T10:00:00Z/1%",
                            "r split=gray:schedule,beta:schedule schedule=2026-12-01T10:00:00Z/1%",
                            "r split=gray:schedule schedule=2026-12-01T10:00:00Z/1% ramp=fast",
                            "r split=gray:schedule schedule=2026-12-01T10:00:00Z/1% schedule=2026-12-01T10:00:00Z/2%",
                            "r split=gray:schedule schedule=2026-12-01T10:00:00Z/x%"}) {
      CAPTURE(bad);
      CHECK_THROWS_AS((void)grayroute::parse_rule(bad), grayroute::config_error);
    }
  }
}
