// Reloading a whole policy while other threads decide: every decision comes from one
// policy (route, reason, rule and route name agree), and old policies are freed.
// Labelled `concurrency`: the ThreadSanitizer build runs it.
#include <grayroute/memory_store.hpp>
#include <grayroute/policy.hpp>
#include <grayroute/policy_syntax.hpp>
#include <grayroute/shared_policy.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using grayroute::header;
using grayroute::parse_rule;
using grayroute::policy;
using grayroute::policy_config;

namespace {

// Generation n routes everything to route n % 3 through rule "gen-n", whose route name
// carries n too: a decision mixing two generations would show.
std::shared_ptr<const policy> generation(int n) {
  policy_config c;
  const std::string tag = std::to_string(n);
  c.routes = {"production-" + tag, "gray-" + tag, "beta-" + tag};
  const char* routes[] = {"production-", "gray-", "beta-"};
  c.rules.push_back(parse_rule("gen-" + tag + " header:X-Go route=" + routes[n % 3] + tag));
  return std::make_shared<const policy>(c);
}

}  // namespace

TEST_SUITE("shared_policy") {
  TEST_CASE("readers keep deciding with whole policies while a writer swaps them") {
    grayroute::shared_policy live(generation(0));
    std::weak_ptr<const policy> first = live.load();
    std::atomic<bool> stop{false};
    std::atomic<long> decisions{0}, mixed{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
      readers.emplace_back([&] {
        const std::vector<header> headers = {{"X-Go", "1"}};
        const grayroute::ip_address peer = *grayroute::parse_ip("192.0.2.1");
        while (!stop.load(std::memory_order_relaxed)) {
          const std::shared_ptr<const policy> p = live.load();
          const grayroute::decision d = p->decide(peer, headers);
          const std::string rule(d.rule);
          const std::string route(p->route_name(d.route));
          const std::string tag = rule.substr(4);
          const char* expected[] = {"production-", "gray-", "beta-"};
          if (d.reason != grayroute::route_reason::match || route != expected[std::stoi(tag) % 3] + tag) ++mixed;
          ++decisions;
        }
      });
    }
    // Swap for a bounded number of generations, each after readers made progress.
    for (int n = 1; n <= 300; ++n) {
      const long before = decisions.load();
      while (decisions.load() == before) std::this_thread::yield();
      live.store(generation(n));
    }
    stop = true;
    for (auto& t : readers) t.join();
    CHECK(mixed.load() == 0);
    CHECK(decisions.load() >= 300);
    CHECK(first.expired());  // the first policy was freed once no reader held it
    const auto last = live.load();
    CHECK(last->rule_names() == std::vector<std::string_view>{"gen-300"});
  }

  TEST_CASE("a bad configuration throws before store(): the old policy keeps serving") {
    grayroute::shared_policy live(generation(1));
    policy_config bad;
    bad.rules.push_back(parse_rule("broken route=nowhere"));
    CHECK_THROWS_AS(live.store(std::make_shared<const policy>(bad)), grayroute::config_error);
    CHECK(live.load()->rule_names() == std::vector<std::string_view>{"gen-1"});
  }
}
