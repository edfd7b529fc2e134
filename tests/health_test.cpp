// Route health: every breaker transition, the thresholds, relative mode, the probe share,
// the fallback decision, the metrics page, and recording from several threads. The clock
// is a number the test moves.
#include <grayroute/config_error.hpp>
#include <grayroute/health_metrics.hpp>
#include <grayroute/health_syntax.hpp>
#include <grayroute/health_table.hpp>
#include <grayroute/route_table.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

using grayroute::breaker_state;
using grayroute::health_cause;
using grayroute::health_config;
using grayroute::health_event;
using grayroute::health_table;
using grayroute::kGray;
using grayroute::kProduction;
using grayroute::outcome;
using std::chrono::microseconds;
using std::chrono::milliseconds;

namespace {

constexpr microseconds kLatency{2000};

// A table over production, gray and beta that keeps every event it reports.
struct fixture {
  explicit fixture(health_config config = {}, grayroute::route_id baseline = kProduction)
      : health(config, 3, [this](const health_event& e) { events.push_back(e); }, baseline) {}

  void record(grayroute::route_id route, outcome o, int times = 1) {
    for (int i = 0; i < times; ++i) health.record(route, o, kLatency, now);
  }
  breaker_state state(grayroute::route_id route) { return health.state(route, now); }

  std::vector<health_event> events;
  health_table health;
  milliseconds now{1000000};
};

grayroute::decision decided(grayroute::route_id route, grayroute::route_reason reason = grayroute::route_reason::list) {
  grayroute::decision d;
  d.route = route;
  d.reason = reason;
  d.rule = "beta-testers";
  return d;
}

}  // namespace

TEST_SUITE("health") {
  TEST_CASE("three connect failures in a row open the route, once") {
    fixture f;
    f.record(kGray, outcome::connect_failure, 2);
    CHECK(f.state(kGray) == breaker_state::closed);
    f.record(kGray, outcome::success);  // a success breaks the run
    f.record(kGray, outcome::connect_failure, 2);
    CHECK(f.state(kGray) == breaker_state::closed);
    CHECK(f.events.empty());
    f.record(kGray, outcome::connect_failure);
    CHECK(f.state(kGray) == breaker_state::open);
    f.record(kGray, outcome::connect_failure, 5);  // stragglers while open change nothing
    REQUIRE(f.events.size() == 1);
    const health_event& e = f.events[0];
    CHECK(e.route == kGray);
    CHECK(e.from == breaker_state::closed);
    CHECK(e.to == breaker_state::open);
    CHECK(e.cause == health_cause::connect_failures);
    CHECK(e.connect_failures_in_row == 3);
    CHECK(e.window_requests == 6);
    CHECK(e.window_errors == 5);
    CHECK(e.at == f.now);
    CHECK(f.state(kProduction) == breaker_state::closed);
  }

  TEST_CASE("timeouts and 5xx neither count as nor break a connect-failure run") {
    fixture f;
    f.record(kGray, outcome::connect_failure, 2);
    f.record(kGray, outcome::timeout);
    f.record(kGray, outcome::status_5xx);
    f.record(kGray, outcome::connect_failure);
    CHECK(f.state(kGray) == breaker_state::open);
    CHECK(f.events.at(0).cause == health_cause::connect_failures);
  }

  TEST_CASE("the error ratio opens at the threshold with enough outcomes") {
    fixture f;
    SUBCASE("19 outcomes are too few, the 20th decides") {
      f.record(kGray, outcome::success, 9);
      f.record(kGray, outcome::status_5xx, 10);
      CHECK(f.state(kGray) == breaker_state::closed);
      f.record(kGray, outcome::timeout);
      CHECK(f.state(kGray) == breaker_state::open);
      REQUIRE(f.events.size() == 1);
      CHECK(f.events[0].cause == health_cause::error_ratio);
      CHECK(f.events[0].window_requests == 20);
      CHECK(f.events[0].window_errors == 11);
      CHECK(f.events[0].error_ratio == doctest::Approx(0.55));
    }
    SUBCASE("below the ratio stays closed") {
      f.record(kGray, outcome::success, 11);
      f.record(kGray, outcome::status_5xx, 9);
      CHECK(f.state(kGray) == breaker_state::closed);
      f.record(kGray, outcome::success);
      f.record(kGray, outcome::status_5xx);  // 10 of 22
      CHECK(f.state(kGray) == breaker_state::closed);
      CHECK(f.events.empty());
    }
    SUBCASE("errors older than the window no longer count") {
      f.record(kGray, outcome::status_5xx, 15);
      f.now += milliseconds(10000);  // the window has moved past them
      f.record(kGray, outcome::success, 10);
      f.record(kGray, outcome::status_5xx, 9);
      CHECK(f.state(kGray) == breaker_state::closed);
      CHECK(f.health.snapshot(kGray, f.now).window_requests == 19);
      f.record(kGray, outcome::status_5xx);  // 10 of 20: the threshold is inclusive
      CHECK(f.state(kGray) == breaker_state::open);
    }
    SUBCASE("the window slides bucket by bucket") {
      f.record(kGray, outcome::status_5xx, 10);
      f.now += milliseconds(5000);
      f.record(kGray, outcome::success, 9);
      CHECK(f.health.snapshot(kGray, f.now).window_requests == 19);
      f.now += milliseconds(5000);  // the first 10 fall out, the 9 stay
      const auto s = f.health.snapshot(kGray, f.now);
      CHECK(s.window_requests == 9);
      CHECK(s.window_errors == 0);
      CHECK(s.outcomes[static_cast<int>(outcome::status_5xx)] == 10);  // totals stay
    }
  }

  TEST_CASE("open -> half_open after the cool-down -> closed after the probes") {
    fixture f;
    f.record(kGray, outcome::connect_failure, 3);
    REQUIRE(f.state(kGray) == breaker_state::open);
    f.now += milliseconds(9999);
    CHECK(f.state(kGray) == breaker_state::open);
    CHECK_FALSE(f.health.admit(kGray, f.now));
    f.now += milliseconds(1);
    CHECK(f.state(kGray) == breaker_state::half_open);
    REQUIRE(f.events.size() == 2);
    CHECK(f.events[1].from == breaker_state::open);
    CHECK(f.events[1].to == breaker_state::half_open);
    CHECK(f.events[1].cause == health_cause::cooldown_elapsed);
    f.record(kGray, outcome::success, 4);
    CHECK(f.state(kGray) == breaker_state::half_open);
    CHECK(f.health.snapshot(kGray, f.now).probe_successes == 4);
    f.record(kGray, outcome::success);
    CHECK(f.state(kGray) == breaker_state::closed);
    REQUIRE(f.events.size() == 3);
    CHECK(f.events[2].cause == health_cause::probes_succeeded);
    CHECK(f.events[2].probe_successes == 5);
    // Closed starts afresh: the failures that opened it are forgotten.
    const auto s = f.health.snapshot(kGray, f.now);
    CHECK(s.window_requests == 0);
    CHECK(s.connect_failures_in_row == 0);
    CHECK(s.transitions[static_cast<int>(breaker_state::open)] == 1);
    CHECK(s.transitions[static_cast<int>(breaker_state::half_open)] == 1);
    CHECK(s.transitions[static_cast<int>(breaker_state::closed)] == 1);
    f.record(kGray, outcome::connect_failure, 2);
    CHECK(f.state(kGray) == breaker_state::closed);
  }

  TEST_CASE("a failed probe reopens and restarts the cool-down") {
    fixture f;
    f.record(kGray, outcome::connect_failure, 3);
    f.now += milliseconds(10000);
    REQUIRE(f.state(kGray) == breaker_state::half_open);
    f.record(kGray, outcome::success, 2);
    f.record(kGray, outcome::timeout);
    CHECK(f.state(kGray) == breaker_state::open);
    REQUIRE(f.events.size() == 3);
    CHECK(f.events[2].from == breaker_state::half_open);
    CHECK(f.events[2].cause == health_cause::probe_failed);
    CHECK(f.events[2].probe_successes == 2);
    f.now += milliseconds(9999);
    CHECK(f.state(kGray) == breaker_state::open);
    f.now += milliseconds(1);
    CHECK(f.state(kGray) == breaker_state::half_open);
    f.record(kGray, outcome::success, 5);  // the earlier 2 successes do not count
    CHECK(f.state(kGray) == breaker_state::closed);
    CHECK(f.events.back().probe_successes == 5);
  }

  TEST_CASE("an outcome after the cool-down is a probe even if nobody asked the state") {
    fixture f;  // an active probe reports while no traffic reads the state
    f.record(kGray, outcome::connect_failure, 3);
    f.now += milliseconds(10000);
    f.record(kGray, outcome::success);
    CHECK(f.health.snapshot(kGray, f.now).state == breaker_state::half_open);
    CHECK(f.health.snapshot(kGray, f.now).probe_successes == 1);
    REQUIRE(f.events.size() == 2);
    CHECK(f.events[1].cause == health_cause::cooldown_elapsed);
  }

  TEST_CASE("relative mode: both failing stays closed, gray failing alone opens") {
    health_config config;
    config.relative_margin = 0.2;
    SUBCASE("both answer 5xx") {
      fixture f(config);
      f.record(kProduction, outcome::status_5xx, 30);
      f.record(kGray, outcome::status_5xx, 30);
      CHECK(f.state(kGray) == breaker_state::closed);
      // The baseline is judged alone; its open state shows on the health page, and
      // production does not fall back by default.
      CHECK(f.state(kProduction) == breaker_state::open);
      CHECK(grayroute::apply_health(decided(kProduction), f.health, f.now).route == kProduction);
      REQUIRE(f.events.size() == 1);
      CHECK(f.events[0].route == kProduction);
    }
    SUBCASE("both refuse connections") {
      fixture f(config);
      f.record(kProduction, outcome::connect_failure, 3);
      f.record(kGray, outcome::connect_failure, 3);
      CHECK(f.state(kGray) == breaker_state::closed);
    }
    SUBCASE("gray worse than production by the margin") {
      fixture f(config);
      f.record(kProduction, outcome::success, 14);
      f.record(kProduction, outcome::status_5xx, 6);  // 30%
      f.record(kGray, outcome::success, 10);
      f.record(kGray, outcome::status_5xx, 10);  // 50%: 20 points worse
      CHECK(f.state(kGray) == breaker_state::open);
      REQUIRE(f.events.size() == 1);
      CHECK(f.events[0].baseline_error_ratio == doctest::Approx(0.3));
    }
    SUBCASE("gray worse, but by less than the margin") {
      fixture f(config);
      f.record(kProduction, outcome::success, 13);
      f.record(kProduction, outcome::status_5xx, 7);  // 35%
      f.record(kGray, outcome::success, 10);
      f.record(kGray, outcome::status_5xx, 10);  // 50%
      CHECK(f.state(kGray) == breaker_state::closed);
    }
    SUBCASE("production too quiet to compare: gray is judged alone") {
      fixture f(config);
      f.record(kProduction, outcome::status_5xx, 5);
      f.record(kGray, outcome::status_5xx, 20);
      CHECK(f.state(kGray) == breaker_state::open);
    }
  }

  TEST_CASE("half_open lets one decision in round(100 / probe_percent) through") {
    health_config config;
    config.probe_percent = 25;
    fixture f(config);
    f.record(kGray, outcome::connect_failure, 3);
    f.now += milliseconds(10000);
    int admitted = 0;
    std::string pattern;
    for (int i = 0; i < 12; ++i) {
      const bool in = f.health.admit(kGray, f.now);
      admitted += in ? 1 : 0;
      pattern += in ? 'x' : '.';
    }
    CHECK(admitted == 3);
    CHECK(pattern == "x...x...x...");  // the first decision after the cool-down probes
    CHECK(f.health.admit(kProduction, f.now));
  }

  TEST_CASE("apply_health: open gray falls back to production, keeping the rule and the route") {
    fixture f;
    const grayroute::decision closed = grayroute::apply_health(decided(kGray), f.health, f.now);
    CHECK(closed.route == kGray);
    CHECK(closed.reason == grayroute::route_reason::list);
    f.record(kGray, outcome::connect_failure, 3);
    const grayroute::decision d = grayroute::apply_health(decided(kGray), f.health, f.now);
    CHECK(d.route == kProduction);
    CHECK(d.reason == grayroute::route_reason::fallback);
    CHECK(to_string(d.reason) == "fallback");
    CHECK(d.original_route == kGray);
    CHECK(d.rule == "beta-testers");
    SUBCASE("forced decisions keep their route") {
      CHECK(grayroute::apply_health(decided(kGray, grayroute::route_reason::header), f.health, f.now).route == kGray);
      CHECK(grayroute::apply_health(decided(kGray, grayroute::route_reason::cookie), f.health, f.now).route == kGray);
    }
    SUBCASE("a configured fallback route") {
      const auto beta = grayroute::apply_health(decided(kGray), f.health, f.now, grayroute::route_id{2});
      CHECK(beta.route == 2);
      CHECK(beta.original_route == kGray);
    }
  }

  TEST_CASE("apply_health: the rule's fallback comes before the configured one and the first route") {
    fixture f;
    f.record(kGray, outcome::connect_failure, 3);
    grayroute::decision ruled = decided(kGray);
    ruled.fallback_route = grayroute::route_id{2};
    const auto beta = grayroute::apply_health(ruled, f.health, f.now, kProduction);
    CHECK(beta.route == 2);
    CHECK(beta.reason == grayroute::route_reason::fallback);
    CHECK(beta.original_route == kGray);
    CHECK(grayroute::fallback_for(ruled, kProduction) == grayroute::route_id{2});
    // Without one, the configured fallback, then the first route.
    CHECK(grayroute::fallback_for(decided(kGray), grayroute::route_id{2}) == grayroute::route_id{2});
    CHECK(grayroute::fallback_for(decided(kGray)) == kProduction);
    // A rule may make production fall back (configured), and a route never falls back to itself.
    f.record(kProduction, outcome::connect_failure, 3);
    grayroute::decision production = decided(kProduction);
    production.fallback_route = kGray;
    CHECK(grayroute::apply_health(production, f.health, f.now).route == kGray);
    grayroute::decision on_it = decided(2);
    on_it.fallback_route = grayroute::route_id{2};
    CHECK(grayroute::fallback_for(on_it) == std::nullopt);
    grayroute::decision forced = decided(kGray, grayroute::route_reason::header);
    forced.fallback_route = grayroute::route_id{2};
    CHECK(grayroute::apply_health(forced, f.health, f.now).route == kGray);
  }

  TEST_CASE("apply_health: production never falls back unless configured") {
    fixture f;
    f.record(kProduction, outcome::connect_failure, 3);
    REQUIRE(f.state(kProduction) == breaker_state::open);
    CHECK(grayroute::apply_health(decided(kProduction), f.health, f.now).route == kProduction);
    const auto configured = grayroute::apply_health(decided(kProduction), f.health, f.now, kGray);
    CHECK(configured.route == kGray);
    CHECK(configured.reason == grayroute::route_reason::fallback);
  }

  TEST_CASE("disabled: counted, never opened") {
    health_config config;
    config.enabled = false;
    fixture f(config);
    f.record(kGray, outcome::connect_failure, 30);
    CHECK(f.state(kGray) == breaker_state::closed);
    CHECK(grayroute::apply_health(decided(kGray), f.health, f.now).route == kGray);
    CHECK(f.health.snapshot(kGray, f.now).outcomes[static_cast<int>(outcome::connect_failure)] == 30);
    CHECK(f.events.empty());
  }

  TEST_CASE("thresholds can be switched off one by one") {
    health_config config;
    config.consecutive_connect_failures = 0;
    fixture f(config);
    f.record(kGray, outcome::connect_failure, 19);
    CHECK(f.state(kGray) == breaker_state::closed);
    f.record(kGray, outcome::connect_failure);  // the ratio still applies
    CHECK(f.state(kGray) == breaker_state::open);
    CHECK(f.events.at(0).cause == health_cause::error_ratio);
  }

  TEST_CASE("configuration errors name the value") {
    auto message = [](health_config c) -> std::string {
      try {
        health_table t(c, 2);
      } catch (const grayroute::config_error& e) {
        return e.what();
      }
      return "";
    };
    health_config c;
    c.error_ratio = 1.5;
    CHECK(message(c) == "grayroute: health: error_ratio 1.500000 is not in [0, 1]");
    c = {};
    c.window = milliseconds(1234);
    CHECK(message(c) == "grayroute: health: window 1234ms is not 100 ms to 1 h in steps of 10 ms");
    c = {};
    c.probe_percent = 0;
    CHECK(message(c).find("probe_percent 0.000000") != std::string::npos);
    c = {};
    c.min_requests = 0;
    CHECK(message(c).find("min_requests 0") != std::string::npos);
    c = {};
    c.relative_margin = 1.0;
    CHECK(message(c).find("relative_margin 1.000000") != std::string::npos);
    c = {};
    c.cooldown = milliseconds(0);
    CHECK(message(c).find("cooldown 0ms") != std::string::npos);
    c = {};
    c.probe_successes = 0;
    CHECK(message(c).find("probe_successes 0") != std::string::npos);
    CHECK(message(health_config{}).empty());
    CHECK_THROWS_WITH_AS(health_table(health_config{}, 2, {}, grayroute::route_id{2}),
                         "grayroute: health: baseline route 2 is not one of the 2 routes", grayroute::config_error);
  }

  TEST_CASE("states in caller memory: zeroed bytes are a valid closed state, shared by two tables") {
    alignas(grayroute::route_health) unsigned char memory[2 * sizeof(grayroute::route_health)];
    std::memset(memory, 0, sizeof memory);  // what an nginx slab allocation gives
    auto* states = std::launder(reinterpret_cast<grayroute::route_health*>(memory));
    int reported_a = 0, reported_b = 0;
    health_table a(health_config{}, states, 2, [&](const health_event&) { ++reported_a; });
    health_table b(health_config{}, states, 2, [&](const health_event&) { ++reported_b; });
    const milliseconds now{5000};
    a.record(kGray, outcome::connect_failure, kLatency, now);
    b.record(kGray, outcome::connect_failure, kLatency, now);
    a.record(kGray, outcome::connect_failure, kLatency, now);
    CHECK(b.state(kGray, now) == breaker_state::open);
    CHECK(reported_a == 1);  // the change is reported by the one that made it
    CHECK(reported_b == 0);
  }

  // A reload: the next table takes over the states of the routes it keeps, under new ids.
  // The old table records after the new one exists (a request still in flight): the new
  // table sees it, and the breaker it opens is the new table's too.
  TEST_CASE("states one per route, taken over by the next table: late outcomes of the old one count") {
    grayroute::route_health production, gray, beta;
    std::vector<grayroute::route_health*> before = {&production, &gray};
    std::vector<grayroute::route_health*> after = {&production, &beta, &gray};  // beta is new, gray is now route 2
    health_config config;
    config.consecutive_connect_failures = 2;
    int reported_old = 0, reported_new = 0;
    health_table old_table(config, before.data(), before.size(), [&](const health_event&) { ++reported_old; });
    const milliseconds now{5000};
    old_table.record(kGray, outcome::connect_failure, kLatency, now);
    health_table new_table(config, after.data(), after.size(), [&](const health_event&) { ++reported_new; });
    old_table.record(kGray, outcome::connect_failure, kLatency, now);  // late: after the reload
    old_table.record(kProduction, outcome::success, kLatency, now);
    const grayroute::route_id gray_now{2};
    CHECK(new_table.state(gray_now, now) == breaker_state::open);
    CHECK(new_table.admit(gray_now, now) == false);
    CHECK(new_table.state(grayroute::route_id{1}, now) == breaker_state::closed);
    CHECK(reported_old == 1);
    CHECK(reported_new == 0);
    const auto s = new_table.snapshot(gray_now, now);
    CHECK(s.outcomes[static_cast<std::size_t>(outcome::connect_failure)] == 2);
    CHECK(s.transitions[static_cast<std::size_t>(breaker_state::open)] == 1);
    CHECK(new_table.snapshot(kProduction, now).outcomes[0] == 1);
    CHECK(new_table.snapshot(grayroute::route_id{1}, now).window_requests == 0);
    grayroute::route_health* missing[] = {&production, nullptr};
    CHECK_THROWS_WITH_AS(health_table(config, missing, 2), "grayroute: health: no memory for the state of route 1",
                         grayroute::config_error);
  }

  TEST_CASE("the metrics page") {
    fixture f;
    f.health.record(kGray, outcome::success, microseconds(3000), f.now);
    f.health.record(kGray, outcome::status_5xx, microseconds(120000), f.now);
    f.record(kGray, outcome::connect_failure, 3);
    std::string page;
    grayroute::write_health_metrics(page, f.health, grayroute::route_table({"production", "gray", "beta"}), f.now);
    CHECK(page.find("# TYPE grayroute_breaker_state gauge\n") != std::string::npos);
    CHECK(page.find("grayroute_breaker_state{route=\"gray\",state=\"open\"} 1\n") != std::string::npos);
    CHECK(page.find("grayroute_breaker_state{route=\"gray\",state=\"closed\"} 0\n") != std::string::npos);
    CHECK(page.find("grayroute_breaker_transitions_total{route=\"gray\",to=\"open\"} 1\n") != std::string::npos);
    CHECK(page.find("grayroute_upstream_outcomes_total{route=\"gray\",outcome=\"connect_failure\"} 3\n") !=
          std::string::npos);
    CHECK(page.find("grayroute_upstream_duration_seconds_bucket{route=\"gray\",le=\"0.005\"} 4\n") != std::string::npos);
    CHECK(page.find("grayroute_upstream_duration_seconds_bucket{route=\"gray\",le=\"0.1\"} 4\n") != std::string::npos);
    CHECK(page.find("grayroute_upstream_duration_seconds_bucket{route=\"gray\",le=\"0.25\"} 5\n") != std::string::npos);
    CHECK(page.find("grayroute_upstream_duration_seconds_bucket{route=\"gray\",le=\"+Inf\"} 5\n") != std::string::npos);
    CHECK(page.find("grayroute_upstream_duration_seconds_sum{route=\"gray\"} 0.129\n") != std::string::npos);
    CHECK(page.find("grayroute_upstream_duration_seconds_count{route=\"gray\"} 5\n") != std::string::npos);
    CHECK(page.find("grayroute_health_window_errors{route=\"gray\"} 4\n") != std::string::npos);
    CHECK(page.find("grayroute_breaker_state{route=\"beta\",state=\"closed\"} 1\n") != std::string::npos);
  }

  TEST_CASE("without the latency histogram outcomes are still counted, the page has no histogram") {
    health_config config;
    config.latency_histogram = false;
    fixture f(config);
    f.record(kGray, outcome::success, 7);
    f.record(kGray, outcome::timeout, 2);
    const auto s = f.health.snapshot(kGray, f.now);
    CHECK(s.outcomes[static_cast<int>(outcome::success)] == 7);
    CHECK(s.outcomes[static_cast<int>(outcome::timeout)] == 2);
    CHECK(s.latency_sum_us == 0);
    std::string page;
    grayroute::write_health_metrics(page, f.health, grayroute::route_table({"production", "gray", "beta"}), f.now);
    CHECK(page.find("grayroute_upstream_outcomes_total{route=\"gray\",outcome=\"success\"} 7\n") != std::string::npos);
    CHECK(page.find("duration_seconds") == std::string::npos);
  }
}

TEST_SUITE("health syntax") {
  TEST_CASE("words set what they name, the rest keeps the defaults") {
    const health_config c = grayroute::parse_health(
        "  connect_failures=5 error_ratio=25% min_requests=50\twindow=30s relative_margin=0.2 "
        "cooldown=1500ms probe=12.5% probe_successes=3 latency_histogram=off ");
    CHECK(c.enabled);
    CHECK(c.consecutive_connect_failures == 5);
    CHECK(c.error_ratio == doctest::Approx(0.25));
    CHECK(c.min_requests == 50);
    CHECK(c.window == milliseconds(30000));
    CHECK(c.relative_margin == doctest::Approx(0.2));
    CHECK(c.cooldown == milliseconds(1500));
    CHECK(c.probe_percent == doctest::Approx(12.5));
    CHECK(c.probe_successes == 3);
    CHECK_FALSE(c.latency_histogram);
    const health_config d = grayroute::parse_health("");
    CHECK(d.enabled);
    CHECK(d.consecutive_connect_failures == 3);
    CHECK(d.window == milliseconds(10000));
    CHECK_FALSE(grayroute::parse_health("off").enabled);
    CHECK(grayroute::parse_health("window=2m").window == milliseconds(120000));
    CHECK(grayroute::parse_health("error_ratio=0.5").error_ratio == doctest::Approx(0.5));
  }

  TEST_CASE("mistakes name the word") {
    struct bad {
      const char* text;
      const char* message;
    };
    const bad cases[] = {
        {"error_ratio=half", "grayroute: health: \"error_ratio=half\": not a share (50% or 0.5)"},
        {"window=10", "grayroute: health: \"window=10\": not a duration (250ms, 10s, 2m)"},
        {"connect_failures=-1", "grayroute: health: \"connect_failures=-1\": not a whole number"},
        {"probe", "grayroute: health: \"probe\": not name=value, on or off"},
        {"latency_histogram=yes", "grayroute: health: \"latency_histogram=yes\": not on or off"},
        {"error_ratio=150%", "grayroute: health: error_ratio 1.500000 is not in [0, 1]"},
        {"window=1s5", "grayroute: health: \"window=1s5\": not a duration (250ms, 10s, 2m)"},
    };
    for (const bad& b : cases) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(grayroute::parse_health(b.text), b.message, grayroute::config_error);
    }
    CHECK_THROWS_WITH_AS(grayroute::parse_health("treshold=3"),
                         doctest::Contains("\"treshold=3\": unknown setting"), grayroute::config_error);
  }
}

TEST_SUITE("health concurrency") {
  TEST_CASE("threads recording at once: every outcome counted, each change reported once") {
    health_config config;
    config.min_requests = 1000000;  // only the probes and the cool-down move the breaker here
    config.consecutive_connect_failures = 0;
    std::atomic<int> opened{0}, half_opened{0}, closed{0};
    health_table health(config, 2, [&](const health_event& e) {
      if (e.to == breaker_state::open) ++opened;
      if (e.to == breaker_state::half_open) ++half_opened;
      if (e.to == breaker_state::closed) ++closed;
    });
    constexpr int kThreads = 4, kEach = 20000;
    const milliseconds start{100000};
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ++ready;
        while (ready.load() < kThreads) std::this_thread::yield();
        for (int i = 0; i < kEach; ++i) {
          const milliseconds now = start + milliseconds(i / 4);  // 5 s over the run, in order per thread
          health.record(kGray, (i + t) % 4 == 0 ? outcome::status_5xx : outcome::success, kLatency, now);
          (void)health.admit(kGray, now);
        }
      });
    }
    for (auto& th : threads) th.join();
    const auto s = health.snapshot(kGray, start + milliseconds(kEach / 4 - 1));
    std::uint64_t total = 0;
    for (auto n : s.outcomes) total += n;
    CHECK(total == std::uint64_t{kThreads} * kEach);
    CHECK(s.outcomes[static_cast<int>(outcome::status_5xx)] == std::uint64_t{kThreads} * kEach / 4);
    CHECK(s.window_requests == std::uint64_t{kThreads} * kEach);
    CHECK(s.window_errors == std::uint64_t{kThreads} * kEach / 4);
    CHECK(opened == 0);
    CHECK(s.latency[0] == std::uint64_t{kThreads} * kEach);  // 2 ms each: the <= 5 ms bucket
  }

  TEST_CASE("many threads tripping the same route report one change") {
    std::atomic<int> reported{0};
    health_table health(health_config{}, 2, [&](const health_event& e) {
      if (e.to == breaker_state::open) ++reported;
    });
    constexpr int kThreads = 4;
    const milliseconds now{100000};
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        ++ready;
        while (ready.load() < kThreads) std::this_thread::yield();
        for (int i = 0; i < 1000; ++i) health.record(kGray, outcome::connect_failure, kLatency, now);
      });
    }
    for (auto& th : threads) th.join();
    CHECK(reported == 1);
    CHECK(health.state(kGray, now) == breaker_state::open);
    CHECK(health.snapshot(kGray, now).transitions[static_cast<int>(breaker_state::open)] == 1);
  }

  TEST_CASE("threads probing a recovered route: one half_open, one closed") {
    std::atomic<int> to_half_open{0}, to_closed{0}, to_open{0};
    health_table health(health_config{}, 2, [&](const health_event& e) {
      if (e.to == breaker_state::half_open) ++to_half_open;
      if (e.to == breaker_state::closed) ++to_closed;
      if (e.to == breaker_state::open) ++to_open;
    });
    const milliseconds opened_at{100000};
    for (int i = 0; i < 3; ++i) health.record(kGray, outcome::connect_failure, kLatency, opened_at);
    REQUIRE(to_open == 1);
    const milliseconds later = opened_at + milliseconds(10000);
    constexpr int kThreads = 4;
    std::atomic<int> ready{0}, admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        ++ready;
        while (ready.load() < kThreads) std::this_thread::yield();
        for (int i = 0; i < 500; ++i) {
          if (!health.admit(kGray, later)) continue;
          ++admitted;
          health.record(kGray, outcome::success, kLatency, later);
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(to_half_open == 1);
    CHECK(to_closed == 1);
    CHECK(to_open == 1);
    CHECK(health.state(kGray, later) == breaker_state::closed);
    CHECK(admitted >= 5);
  }
}
