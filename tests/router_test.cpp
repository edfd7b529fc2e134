// Route decisions: precedence, forced routes, percentages, more than two routes.
#include <grayroute/config_error.hpp>
#include <grayroute/memory_store.hpp>
#include <grayroute/router.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using grayroute::header;
using grayroute::memory_store;
using grayroute::parse_ip;
using grayroute::parse_network;
using grayroute::route_reason;
using grayroute::router;
using grayroute::router_config;

namespace {

std::string decide(const router<memory_store>& r, const char* peer, const std::vector<header>& headers = {}) {
  const auto d = r.decide(*parse_ip(peer), headers);
  return std::string(r.route_name(d.route)) + "/" + std::string(grayroute::to_string(d.reason));
}

router_config forcing_config() {
  router_config c;
  c.client_ip.trusted_proxies = {"127.0.0.1"};
  c.force_header = "X-Canary";
  c.force_cookie = "canary";
  return c;
}

}  // namespace

TEST_SUITE("router") {
  TEST_CASE("seed parity: listed goes gray, everyone else production") {
    memory_store store;
    router<memory_store> r(store, {});
    CHECK(decide(r, "127.0.0.1") == "production/default");
    store.insert(*parse_network("127.0.0.1"));
    CHECK(decide(r, "127.0.0.1") == "gray/list");
    store.erase(*parse_network("127.0.0.1"));
    CHECK(decide(r, "127.0.0.1") == "production/default");
  }

  TEST_CASE("precedence: header, cookie, list, percentage, default") {
    memory_store store;
    store.insert(*parse_network("192.0.2.0/24"));
    router_config c = forcing_config();
    c.percent = 100;
    router<memory_store> r(store, c);
    CHECK(decide(r, "192.0.2.1", {{"X-Canary", "never"}, {"Cookie", "canary=always"}}) == "production/header");
    CHECK(decide(r, "192.0.2.1", {{"Cookie", "a=b; canary=never"}}) == "production/cookie");
    CHECK(decide(r, "198.51.100.1", {{"Cookie", "canary=always"}}) == "gray/cookie");
    CHECK(decide(r, "192.0.2.1") == "gray/list");
    CHECK(decide(r, "198.51.100.1") == "gray/percentage");
    router_config none = forcing_config();
    router<memory_store> r0(store, none);
    CHECK(decide(r0, "198.51.100.1") == "production/default");
  }

  TEST_CASE("forced values: always, never, a route name; anything else is ignored") {
    memory_store store;
    router_config c = forcing_config();
    c.routes = {"production", "gray", "beta"};
    router<memory_store> r(store, c);
    CHECK(decide(r, "198.51.100.1", {{"x-canary", " always "}}) == "gray/header");
    CHECK(decide(r, "198.51.100.1", {{"X-Canary", "beta"}}) == "beta/header");
    CHECK(decide(r, "198.51.100.1", {{"X-Canary", "yes please"}}) == "production/default");
    CHECK(decide(r, "198.51.100.1", {{"Cookie", "canary=\"beta\""}}) == "beta/cookie");
    CHECK(decide(r, "198.51.100.1", {{"Cookie", "xcanary=always"}}) == "production/default");
    CHECK(decide(r, "198.51.100.1", {{"Cookie", "a=1"}, {"Cookie", "canary=always"}}) == "gray/cookie");
  }

  TEST_CASE("the list is matched on the resolved client, not a forged header") {
    memory_store store;
    store.insert(*parse_network("192.168.116.20"));
    router_config c;
    c.client_ip.trusted_proxies = {"10.0.0.0/8"};
    router<memory_store> r(store, c);
    CHECK(decide(r, "203.0.113.9", {{"X-Real-IP", "192.168.116.20"}}) == "production/default");
    CHECK(decide(r, "10.0.0.2", {{"X-Real-IP", "192.168.116.20"}}) == "gray/list");
    const auto d = r.decide(*parse_ip("10.0.0.2"), std::vector<header>{{"X-Forwarded-For", "192.168.116.20"}});
    CHECK(d.client.source_name == "X-Forwarded-For");
    CHECK(d.reason == route_reason::list);
  }

  TEST_CASE("percentage is sticky by key header, then cookie, then client IP") {
    memory_store store;
    router_config c;
    c.percent = 50;
    c.percent_key_header = "X-User-Id";
    c.percent_key_cookie = "uid";
    c.percent_seed = 7;
    router<memory_store> r(store, c);
    int gray = 0;
    for (int i = 0; i < 2000; ++i) {
      const std::string uid = "user" + std::to_string(i);
      const std::string first = decide(r, "198.51.100.1", {{"X-User-Id", uid}});
      CHECK(first == decide(r, "203.0.113.1", {{"X-User-Id", uid}}));  // the key decides, not the IP
      CHECK(first == decide(r, "203.0.113.1", {{"Cookie", "uid=" + uid}}));
      CHECK(first == (grayroute::percentage_rollout(50, 7).includes(uid) ? "gray/percentage" : "production/default"));
      gray += first == "gray/percentage";
    }
    CHECK(gray > 900);
    CHECK(gray < 1100);
    // No key header or cookie: the client address is the key.
    const auto a = *parse_ip("198.51.100.77");
    const bool in = grayroute::percentage_rollout(50, 7).includes(a);
    CHECK(decide(r, "198.51.100.77") == (in ? "gray/percentage" : "production/default"));
  }

  TEST_CASE("more than two routes come from the store's tags") {
    memory_store store;
    store.insert(*parse_network("10.1.0.0/16"), 2);
    store.insert(*parse_network("10.2.0.0/16"), 9);  // a tag with no route: ignored
    router_config c;
    c.routes = {"stable", "canary", "beta"};
    c.force_route = "canary";
    c.percent_route = "canary";
    c.default_route = "stable";
    router<memory_store> r(store, c);
    CHECK(decide(r, "10.1.2.3") == "beta/list");
    CHECK(decide(r, "10.2.2.3") == "stable/default");
    CHECK(r.find_route("beta") == grayroute::route_id{2});
    CHECK(r.route_name(7).empty());
  }

  TEST_CASE("configuration mistakes name the bad value") {
    memory_store store;
    router_config c;
    c.default_route = "prod";
    CHECK_THROWS_WITH_AS(router<memory_store>(store, c), doctest::Contains("\"prod\""), grayroute::config_error);
    router_config d;
    d.routes = {"only"};
    CHECK_THROWS_AS(router<memory_store>(store, d), grayroute::config_error);
    router_config e;
    e.routes = {"a", "b", "a"};
    e.default_route = "a";
    e.force_route = e.percent_route = "b";
    CHECK_THROWS_WITH_AS(router<memory_store>(store, e), doctest::Contains("\"a\" is listed twice"),
                         grayroute::config_error);
    router_config f;
    f.percent = 101;
    CHECK_THROWS_AS(router<memory_store>(store, f), grayroute::config_error);
    router_config g;
    g.client_ip.trusted_proxies = {"10.0.0.0/8", "bogus"};
    CHECK_THROWS_WITH_AS(router<memory_store>(store, g), doctest::Contains("\"bogus\""), grayroute::config_error);
  }

  TEST_CASE("hostile input gives the default route, never a crash") {
    memory_store store;
    router<memory_store> r(store, forcing_config());
    const std::string huge(64 * 1024, 'x');
    CHECK(decide(r, "127.0.0.1", {{"X-Canary", huge}, {"Cookie", huge}, {"X-Forwarded-For", huge}, {huge, huge}}) ==
          "production/default");
    CHECK(decide(r, "127.0.0.1", {{"", ""}, {"Cookie", ";;;==;"}, {"X-Real-IP", "\r\n"}}) == "production/default");
  }
}

// A store of your own plugs in through lookup() alone.
struct everyone_gray {
  std::optional<grayroute::route_id> lookup(const grayroute::ip_address&) const noexcept { return grayroute::kGray; }
};
TEST_CASE("router: a user-defined store") {
  everyone_gray store;
  router<everyone_gray> r(store, {});
  CHECK(r.decide(*parse_ip("1.2.3.4"), std::vector<header>{}).route == grayroute::kGray);
}

TEST_CASE("router: a rollout key from the caller outranks header and cookie") {
  memory_store store;
  router_config c;
  c.percent = 50;
  c.percent_key_header = "X-User-Id";
  router<memory_store> r(store, c);
  int agree = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "k" + std::to_string(i);
    const auto d = r.decide(*parse_ip("198.51.100.1"), std::vector<header>{{"X-User-Id", "ignored"}}, key);
    const bool expected = grayroute::percentage_rollout(50, 0).includes(key);
    agree += (d.reason == route_reason::percentage) == expected;
  }
  CHECK(agree == 200);
}

TEST_CASE("router: empty route names mean the first and second routes") {
  memory_store store;
  store.insert(*parse_network("10.0.0.0/8"));
  router_config c;
  c.routes = {"stable", "canary"};
  c.force_header = "X-Canary";
  router<memory_store> r(store, c);
  CHECK(decide(r, "10.1.1.1") == "canary/list");
  CHECK(decide(r, "11.1.1.1") == "stable/default");
  CHECK(decide(r, "11.1.1.1", {{"X-Canary", "always"}}) == "canary/header");
}
