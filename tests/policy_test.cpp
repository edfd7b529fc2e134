// Routing policies: scopes, conditions, actions, precedence, the text syntax, and the
// router_config shorthand deciding exactly as router<Store> does.
#include <grayroute/config_error.hpp>
#include <grayroute/layered_store.hpp>
#include <grayroute/memory_store.hpp>
#include <grayroute/policy.hpp>
#include <grayroute/policy_syntax.hpp>
#include <grayroute/router.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

using grayroute::header;
using grayroute::memory_store;
using grayroute::parse_ip;
using grayroute::parse_network;
using grayroute::parse_rule;
using grayroute::policy;
using grayroute::policy_config;
using grayroute::request_view;
using grayroute::store_ref;

namespace {

struct request {
  request(std::string peer_ = "198.51.100.7", std::string host_ = {}, std::string path_ = "/",
          std::vector<header> headers_ = {}, std::string key_ = {})
      : peer(std::move(peer_)), host(std::move(host_)), path(std::move(path_)), headers(std::move(headers_)),
        key(std::move(key_)) {}

  std::string peer, host, path;
  std::vector<header> headers;
  std::string key;
};

// "route/reason/rule" for one request.
std::string decide(const policy& p, const request& r) {
  request_view view;
  view.peer = *parse_ip(r.peer);
  view.host = r.host;
  view.path = r.path;
  view.key = r.key;
  const grayroute::decision d = p.decide(view, r.headers);
  std::string out = std::string(p.route_name(d.route)) + "/" + std::string(to_string(d.reason));
  if (!d.rule.empty()) out += "/" + std::string(d.rule);
  return out;
}

policy_config three_routes() {
  policy_config c;
  c.routes = {"production", "gray", "beta"};
  return c;
}

policy one_rule(const char* line) {
  policy_config c = three_routes();
  c.rules.push_back(parse_rule(line));
  return policy(c);
}

std::string error_of(const std::function<void()>& build) {
  try {
    build();
  } catch (const grayroute::config_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_SUITE("policy scope") {
  TEST_CASE("exact hosts: case-insensitive, port and one trailing dot ignored") {
    const policy p = one_rule("r host=api.example.com route=beta");
    for (const char* host : {"api.example.com", "API.Example.COM", "api.example.com:8080", "api.example.com."}) {
      CHECK_MESSAGE(decide(p, {"198.51.100.7", host}) == "beta/match/r", host);
    }
    for (const char* host : {"www.example.com", "api.example.com.evil", "xapi.example.com", ""}) {
      CHECK_MESSAGE(decide(p, {"198.51.100.7", host}) == "production/default", host);
    }
  }

  TEST_CASE("the Host header is read when the gateway passes no host") {
    const policy p = one_rule("r host=api.example.com route=beta");
    CHECK(decide(p, {"198.51.100.7", "", "/", {{"host", "Api.Example.com:443"}}}) == "beta/match/r");
    CHECK(decide(p, {"198.51.100.7", "", "/", {{"Host", "www.example.com"}}}) == "production/default");
    // the gateway's host wins over the header
    CHECK(decide(p, {"198.51.100.7", "www.example.com", "/", {{"Host", "api.example.com"}}}) == "production/default");
  }

  TEST_CASE("wildcards match one or more labels, not the bare domain (nginx server_name)") {
    const policy p = one_rule("r host=*.example.com route=beta");
    CHECK(decide(p, {"198.51.100.7", "a.example.com"}) == "beta/match/r");
    CHECK(decide(p, {"198.51.100.7", "a.b.Example.com:80"}) == "beta/match/r");
    CHECK(decide(p, {"198.51.100.7", "example.com"}) == "production/default");
    CHECK(decide(p, {"198.51.100.7", "badexample.com"}) == "production/default");
  }

  TEST_CASE("IPv6 literal hosts keep their brackets and lose the port") {
    const policy p = one_rule("r host=[2001:db8::1] route=beta");
    CHECK(decide(p, {"198.51.100.7", "[2001:DB8::1]:8443"}) == "beta/match/r");
  }

  TEST_CASE("path prefixes compare byte for byte; the query is not part of the path") {
    const policy p = one_rule("r path=/v2/,/beta route=beta");
    CHECK(decide(p, {"198.51.100.7", "", "/v2/users"}) == "beta/match/r");
    CHECK(decide(p, {"198.51.100.7", "", "/v2/"}) == "beta/match/r");
    CHECK(decide(p, {"198.51.100.7", "", "/betamax"}) == "beta/match/r");
    CHECK(decide(p, {"198.51.100.7", "", "/v2"}) == "production/default");
    CHECK(decide(p, {"198.51.100.7", "", "/V2/users"}) == "production/default");
    CHECK(decide(p, {"198.51.100.7", "", "/x?next=/v2/"}) == "production/default");
  }

  TEST_CASE("host and path must both hold") {
    const policy p = one_rule("r host=api.example.com path=/v2/ route=beta");
    CHECK(decide(p, {"198.51.100.7", "api.example.com", "/v2/x"}) == "beta/match/r");
    CHECK(decide(p, {"198.51.100.7", "api.example.com", "/v1/x"}) == "production/default");
    CHECK(decide(p, {"198.51.100.7", "www.example.com", "/v2/x"}) == "production/default");
  }
}

TEST_SUITE("policy conditions") {
  TEST_CASE("header present, absent, equals one of (value trimmed, case-sensitive)") {
    const policy present = one_rule("r header:X-Beta route=beta");
    const policy absent = one_rule("r !header:X-Beta route=beta");
    const policy equals = one_rule("r header:X-Beta=1,yes route=beta");
    const request with_yes{"198.51.100.7", "", "/", {{"x-beta", " yes "}}};
    const request with_no{"198.51.100.7", "", "/", {{"X-Beta", "no"}}};
    const request with_empty{"198.51.100.7", "", "/", {{"X-Beta", ""}}};
    const request without{};
    CHECK(decide(present, with_yes) == "beta/match/r");
    CHECK(decide(present, with_empty) == "beta/match/r");
    CHECK(decide(present, without) == "production/default");
    CHECK(decide(absent, without) == "beta/match/r");
    CHECK(decide(absent, with_no) == "production/default");
    CHECK(decide(equals, with_yes) == "beta/match/r");
    CHECK(decide(equals, {"198.51.100.7", "", "/", {{"X-Beta", "1"}}}) == "beta/match/r");
    CHECK(decide(equals, with_no) == "production/default");
    CHECK(decide(equals, {"198.51.100.7", "", "/", {{"X-Beta", "YES"}}}) == "production/default");
    CHECK(decide(equals, without) == "production/default");
    // the first line carrying the header is the one compared
    CHECK(decide(equals, {"198.51.100.7", "", "/", {{"X-Beta", "no"}, {"X-Beta", "yes"}}}) == "production/default");
  }

  TEST_CASE("cookie present, absent, equals one of, over several Cookie lines") {
    const policy present = one_rule("r cookie:uid route=beta");
    const policy absent = one_rule("r !cookie:uid route=beta");
    const policy equals = one_rule("r cookie:tier=vip,staff route=beta");
    const request split_lines{"198.51.100.7", "", "/", {{"Cookie", "a=1"}, {"cookie", "tier=staff; uid=9"}}};
    CHECK(decide(present, split_lines) == "beta/match/r");
    CHECK(decide(absent, split_lines) == "production/default");
    CHECK(decide(absent, {"198.51.100.7", "", "/", {{"Cookie", "UID=9"}}}) == "beta/match/r");
    CHECK(decide(equals, split_lines) == "beta/match/r");
    CHECK(decide(equals, {"198.51.100.7", "", "/", {{"Cookie", "tier=\"vip\""}}}) == "beta/match/r");
    CHECK(decide(equals, {"198.51.100.7", "", "/", {{"Cookie", "tier=gold"}}}) == "production/default");
  }

  TEST_CASE("query argument present, absent, equals one of (names case-insensitive as nginx's $arg_)") {
    const policy present = one_rule("r arg:preview route=beta");
    const policy absent = one_rule("r !arg:preview route=beta");
    const policy equals = one_rule("r arg:lang=de,fr route=beta");
    CHECK(decide(present, {"198.51.100.7", "", "/x?a=1&preview"}) == "beta/match/r");
    CHECK(decide(present, {"198.51.100.7", "", "/x?a=1&PREVIEW=1"}) == "beta/match/r");
    CHECK(decide(present, {"198.51.100.7", "", "/x?previewx=1"}) == "production/default");
    CHECK(decide(absent, {"198.51.100.7", "", "/x"}) == "beta/match/r");
    CHECK(decide(equals, {"198.51.100.7", "", "/x?lang=fr"}) == "beta/match/r");
    CHECK(decide(equals, {"198.51.100.7", "", "/x?lang=en&lang=de"}) == "production/default");
    CHECK(decide(equals, {"198.51.100.7", "", "/x?lang=FR"}) == "production/default");
  }

  TEST_CASE("the query can also come on its own") {
    const policy p = one_rule("r arg:lang=de route=beta");
    request_view view;
    view.peer = *parse_ip("198.51.100.7");
    view.path = "/x";
    view.query = "lang=de";
    CHECK(p.decide(view, std::vector<header>{}).route == 2);
  }

  TEST_CASE("client inside networks, v4-mapped peers included") {
    const policy p = one_rule("r client=10.0.0.0/8,2001:db8::/32 route=beta");
    CHECK(decide(p, {"10.1.2.3"}) == "beta/match/r");
    CHECK(decide(p, {"::ffff:10.1.2.3"}) == "beta/match/r");
    CHECK(decide(p, {"2001:db8::5"}) == "beta/match/r");
    CHECK(decide(p, {"11.0.0.1"}) == "production/default");
  }

  TEST_CASE("on a named list, on any route") {
    memory_store qa;
    qa.insert(*parse_network("192.0.2.0/24"), grayroute::kProduction);
    policy_config c = three_routes();
    c.lists.push_back({"qa", {store_ref(qa)}});
    c.rules.push_back(parse_rule("r list=qa route=beta"));
    const policy p(c);
    CHECK(decide(p, {"192.0.2.9"}) == "beta/match/r");
    CHECK(decide(p, {"198.51.100.7"}) == "production/default");
  }

  TEST_CASE("every condition must hold") {
    const policy p = one_rule("r client=10.0.0.0/8 header:X-Beta=1 cookie:uid !arg:off route=beta");
    const std::vector<header> all = {{"X-Beta", "1"}, {"Cookie", "uid=7"}};
    CHECK(decide(p, {"10.0.0.1", "", "/", all}) == "beta/match/r");
    CHECK(decide(p, {"11.0.0.1", "", "/", all}) == "production/default");
    CHECK(decide(p, {"10.0.0.1", "", "/?off", all}) == "production/default");
    CHECK(decide(p, {"10.0.0.1", "", "/", {{"X-Beta", "1"}}}) == "production/default");
    CHECK(decide(p, {"10.0.0.1", "", "/", {{"Cookie", "uid=7"}}}) == "production/default");
  }
}

TEST_SUITE("policy actions") {
  TEST_CASE("what the list says: the longest-prefix entry's route") {
    memory_store seed;
    seed.insert(*parse_network("10.0.0.0/8"));                      // gray
    seed.insert(*parse_network("10.1.0.0/16"), 2);                  // beta
    seed.insert(*parse_network("10.1.2.3"), grayroute::kProduction);
    seed.insert(*parse_network("10.9.9.9"), 7);                     // an unknown route
    policy_config c = three_routes();
    c.lists.push_back({"seed", {store_ref(seed)}});
    c.rules.push_back(parse_rule("seed list=seed"));
    c.rules.push_back(parse_rule("rest route=gray"));
    const policy p(c);
    CHECK(decide(p, {"10.200.0.1"}) == "gray/list/seed");
    CHECK(decide(p, {"10.1.9.9"}) == "beta/list/seed");
    CHECK(decide(p, {"10.1.2.3"}) == "production/list/seed");
    CHECK(decide(p, {"10.9.9.9"}) == "gray/match/rest");  // unknown route: falls through
    CHECK(decide(p, {"11.0.0.1"}) == "gray/match/rest");
  }

  TEST_CASE("split: shares per route, sticky, falling through outside every share") {
    policy_config c = three_routes();
    c.rules.push_back(parse_rule("rollout split=gray:10,beta:5 key=header:X-User-Id"));
    c.rules.push_back(parse_rule("after route=production"));
    const policy p(c);
    int gray = 0, beta = 0, after = 0;
    for (int i = 0; i < 20000; ++i) {
      const std::string id = "user-" + std::to_string(i);
      const request r{"198.51.100.7", "", "/", {{"X-User-Id", id}}};
      const std::string d = decide(p, r);
      CHECK(decide(p, r) == d);  // sticky
      gray += d == "gray/percentage/rollout";
      beta += d == "beta/percentage/rollout";
      after += d == "production/match/after";
    }
    CHECK(gray + beta + after == 20000);
    CHECK(gray > 1700);
    CHECK(gray < 2300);
    CHECK(beta > 800);
    CHECK(beta < 1200);
    // no key source present: the split does not decide
    CHECK(decide(p, {}) == "production/match/after");
  }

  TEST_CASE("split: the first present key source is used (given, header, cookie, arg, ip)") {
    const policy by_key = one_rule("r split=gray:50 key=given,header:X-User-Id,cookie:uid,arg:u,ip");
    const policy by_ip = one_rule("r split=gray:50 key=ip");
    const policy by_arg = one_rule("r split=gray:50 key=arg:u");
    const policy by_header = one_rule("r split=gray:50 key=header:X-User-Id");
    const policy by_cookie = one_rule("r split=gray:50 key=cookie:uid");
    for (int i = 0; i < 200; ++i) {
      const std::string v = std::to_string(i * 7919);
      const std::string arg_path = "/?u=" + v;
      const std::string uid_cookie = "uid=" + v;  // header views point into it
      request given{"198.51.100.7", "", arg_path, {{"X-User-Id", "other"}, {"Cookie", "uid=other"}}, v};
      request header_only{"198.51.100.7", "", arg_path, {{"X-User-Id", v}, {"Cookie", "uid=other"}}};
      request cookie_only{"198.51.100.7", "", arg_path, {{"X-User-Id", " "}, {"Cookie", uid_cookie}}};
      request arg_only{"198.51.100.7", "", arg_path, {{"Cookie", "uid="}}};
      const std::string address = "10.0." + std::to_string(i) + ".1";
      request ip_only{address, "", "/"};
      CHECK(decide(by_key, given) == decide(by_header, {"1.1.1.1", "", "/", {{"X-User-Id", v}}}));
      CHECK(decide(by_key, header_only) == decide(by_header, {"1.1.1.1", "", "/", {{"X-User-Id", v}}}));
      CHECK(decide(by_key, cookie_only) == decide(by_cookie, {"1.1.1.1", "", "/", {{"Cookie", uid_cookie}}}));
      CHECK(decide(by_key, arg_only) == decide(by_arg, {"1.1.1.1", "", arg_path}));
      CHECK(decide(by_key, ip_only) == decide(by_ip, {address}));
    }
  }

  TEST_CASE("split: a 0.01%-multiple share picks the same keys as percentage_rollout") {
    const policy p = one_rule("r split=gray:12.34 key=header:K seed=99");
    const grayroute::percentage_rollout rollout(12.34, 99);
    for (int i = 0; i < 5000; ++i) {
      const std::string k = "k" + std::to_string(i);
      const bool in = decide(p, {"198.51.100.7", "", "/", {{"K", k}}}) == "gray/percentage/r";
      CHECK(in == rollout.includes(k));
    }
  }

  TEST_CASE("split: 0.0001% steps and 100%") {
    const policy all = one_rule("r split=beta:100");
    CHECK(decide(all, {"203.0.113.1"}) == "beta/percentage/r");
    const policy tiny = one_rule("r split=gray:0.0001 key=header:K");
    int in = 0;
    for (int i = 0; i < 100000; ++i) in += decide(tiny, {"198.51.100.7", "", "/", {{"K", std::to_string(i)}}}) != "production/default";
    CHECK(in < 10);
  }
}

TEST_SUITE("policy precedence") {
  TEST_CASE("forced header, then forced cookie, then rules in order, then the default") {
    memory_store qa;
    qa.insert(*parse_network("192.0.2.0/24"));
    policy_config c = three_routes();
    c.force_header = "X-Canary";
    c.force_cookie = "canary";
    c.default_route = "gray";
    c.lists.push_back({"qa", {store_ref(qa)}});
    c.rules.push_back(parse_rule("first header:X-Beta route=beta"));
    c.rules.push_back(parse_rule("second header:X-Beta route=production"));
    c.rules.push_back(parse_rule("qa list=qa"));
    const policy p(c);
    CHECK(decide(p, {"192.0.2.1", "", "/", {{"X-Canary", "never"}, {"Cookie", "canary=beta"}, {"X-Beta", "1"}}}) ==
          "production/header");
    CHECK(decide(p, {"192.0.2.1", "", "/", {{"X-Canary", "bogus"}, {"Cookie", "canary=beta"}}}) == "beta/cookie");
    CHECK(decide(p, {"192.0.2.1", "", "/", {{"X-Canary", "always"}}}) == "gray/header");
    CHECK(decide(p, {"192.0.2.1", "", "/", {{"X-Beta", "1"}}}) == "beta/match/first");
    CHECK(decide(p, {"192.0.2.1"}) == "gray/list/qa");
    CHECK(decide(p, {"198.51.100.1"}) == "gray/default");
  }

  TEST_CASE("layers: the first layer that lists the address answers") {
    memory_store configured, file, redis;
    configured.insert(*parse_network("10.1.2.3"), grayroute::kProduction);  // pinned
    file.insert(*parse_network("10.0.0.0/8"), 2);
    redis.insert(*parse_network("10.1.2.3"));
    redis.insert(*parse_network("10.2.0.0/16"));
    redis.insert(*parse_network("172.16.0.1"));
    grayroute::layered_store layers;
    layers.add(configured).add(file).add(redis);
    CHECK(layers.lookup(*parse_ip("10.1.2.3")) == grayroute::kProduction);
    CHECK(layers.lookup(*parse_ip("10.2.0.1")) == grayroute::route_id{2});  // the file's /8 before Redis's /16
    CHECK(layers.lookup(*parse_ip("172.16.0.1")) == grayroute::kGray);
    CHECK_FALSE(layers.lookup(*parse_ip("172.16.0.2")));
    auto shared = std::make_shared<memory_store>();
    shared->insert(*parse_network("203.0.113.0/24"));
    policy_config c;
    c.lists.push_back({"l", {store_ref(layers), store_ref(shared)}});
    c.rules.push_back(parse_rule("l list=l"));
    shared.reset();  // the policy keeps it alive
    const policy p(c);
    CHECK(decide(p, {"203.0.113.9"}) == "gray/list/l");
    CHECK(decide(p, {"10.1.2.3"}) == "production/list/l");
  }

  TEST_CASE("the client is resolved before conditions: forged headers are not believed") {
    policy_config c = three_routes();
    c.client_ip.trusted_proxies = {"127.0.0.1"};
    c.client_ip.headers = {"X-Forwarded-For"};
    c.rules.push_back(parse_rule("office client=192.0.2.0/24 route=beta"));
    const policy p(c);
    CHECK(decide(p, {"127.0.0.1", "", "/", {{"X-Forwarded-For", "192.0.2.4"}}}) == "beta/match/office");
    CHECK(decide(p, {"127.0.0.2", "", "/", {{"X-Forwarded-For", "192.0.2.4"}}}) == "production/default");
    request_view view;
    view.peer = *parse_ip("127.0.0.1");
    const std::vector<header> h = {{"X-Forwarded-For", "192.0.2.4"}};
    CHECK(p.decide(view, h).client.address == *parse_ip("192.0.2.4"));
  }
}

TEST_SUITE("policy: the issue's example") {
  TEST_CASE("beta-api, qa-office, seed, rollout, default") {
    memory_store qa, seed;
    qa.insert(*parse_network("192.168.116.0/24"));
    seed.insert(*parse_network("10.3.3.3"));
    policy_config c;
    c.routes = {"production", "gray", "beta"};
    c.client_ip.trusted_proxies = {"127.0.0.1/32"};
    c.client_ip.headers = {"X-Forwarded-For"};
    c.lists.push_back({"qa", {store_ref(qa)}});
    c.lists.push_back({"seed", {store_ref(seed)}});
    c.rules.push_back(parse_rule("beta-api host=api.example.com path=/v2/ header:X-Beta=1,yes route=beta"));
    c.rules.push_back(parse_rule("qa-office list=qa"));
    c.rules.push_back(parse_rule("seed list=seed"));
    c.rules.push_back(parse_rule("rollout host=www.example.com split=gray:10 key=header:X-User-Id,cookie:uid,ip"));
    c.default_route = "production";
    const policy p(c);
    auto via = [](const char* client, std::vector<header> h) {
      h.push_back({"X-Forwarded-For", client});
      return h;
    };
    CHECK(decide(p, {"127.0.0.1", "api.example.com", "/v2/x", via("192.168.116.5", {{"X-Beta", "yes"}})}) ==
          "beta/match/beta-api");
    CHECK(decide(p, {"127.0.0.1", "api.example.com", "/v1/x", via("192.168.116.5", {{"X-Beta", "yes"}})}) ==
          "gray/list/qa-office");
    CHECK(decide(p, {"127.0.0.1", "www.example.com", "/", via("10.3.3.3", {})}) == "gray/list/seed");
    CHECK(decide(p, {"127.0.0.1", "api.example.com", "/", via("10.4.4.4", {{"X-User-Id", "u1"}})}) ==
          "production/default");
    int gray = 0;
    for (int i = 0; i < 10000; ++i) {
      const std::string d = decide(p, {"127.0.0.1", "www.example.com", "/", via("10.4.4.4", {{"X-User-Id", std::to_string(i)}})});
      CHECK((d == "gray/percentage/rollout" || d == "production/default"));
      gray += d == "gray/percentage/rollout";
    }
    CHECK(gray > 850);
    CHECK(gray < 1150);
  }
}

TEST_SUITE("policy: router_config shorthand") {
  TEST_CASE("to_policy_config decides as router<Store> does") {
    memory_store store;
    store.insert(*parse_network("10.0.0.0/9"));
    store.insert(*parse_network("10.64.0.0/10"), 2);
    store.insert(*parse_network("10.66.0.0/16"), 9);  // an unknown route: ignored by both
    grayroute::router_config rc;
    rc.routes = {"production", "gray", "beta"};
    rc.client_ip.trusted_proxies = {"127.0.0.0/8"};
    rc.client_ip.headers = {"X-Real-IP", "X-Forwarded-For"};
    rc.force_header = "X-Canary";
    rc.force_cookie = "canary";
    rc.force_route = "beta";
    rc.percent = 7.5;
    rc.percent_key_header = "X-User-Id";
    rc.percent_key_cookie = "uid";
    rc.percent_seed = 3;
    const grayroute::router<memory_store> router(store, rc);
    const policy p(grayroute::to_policy_config(rc, store_ref(store)));
    std::mt19937 rng(7);
    const char* forced[] = {"always", "never", "beta", "gray", "nope"};
    for (int i = 0; i < 20000; ++i) {
      const std::string client = "10." + std::to_string(rng() % 128) + "." + std::to_string(rng() % 256) + ".1";
      const std::string xff = client + ", 127.0.0.5";
      const std::string user = std::to_string(rng());
      const std::string cookie = "uid=" + std::to_string(rng()) + (rng() % 8 == 0 ? std::string("; canary=") + forced[rng() % 5] : "");
      std::vector<header> h;
      if (rng() % 2) h.push_back({"X-Forwarded-For", xff});
      if (rng() % 2) h.push_back({"X-User-Id", user});
      if (rng() % 2) h.push_back({"Cookie", cookie});
      if (rng() % 10 == 0) h.push_back({"X-Canary", forced[rng() % 5]});
      const std::string peer = rng() % 4 ? "127.0.0.1" : client;
      const std::string key = rng() % 5 == 0 ? std::to_string(rng()) : std::string();
      const auto a = router.decide(*parse_ip(peer), h, key);
      request_view view;
      view.peer = *parse_ip(peer);
      view.key = key;
      const auto b = p.decide(view, h);
      REQUIRE(a.route == b.route);
      REQUIRE(a.reason == b.reason);
      REQUIRE(a.client.address == b.client.address);
    }
  }
}

TEST_SUITE("policy configuration errors") {
  TEST_CASE("each mistake is named") {
    memory_store s;
    struct error_case {
      const char* rule;
      const char* message;
    };
    const error_case cases[] = {
        {"r route=nowhere", "rule \"r\": route: unknown route \"nowhere\""},
        {"r list=nolist", "rule \"r\": unknown list \"nolist\""},
        {"r header:X-Beta", "rule \"r\": no action (a route, a split, or a list to follow)"},
        {"r route=beta split=gray:1", "rule \"r\": route and split together"},
        {"r split=gray:60,beta:50", "rule \"r\": split shares add up to more than 100%"},
        {"r split=gray:5,gray:5", "rule \"r\": split names route \"gray\" twice"},
        {"r split=nowhere:5", "rule \"r\": split: unknown route \"nowhere\""},
        {"r split=gray:0", "rule \"r\": split \"gray:0\": a share is a percentage in (0, 100]"},
        {"r split=gray:101", "rule \"r\": split \"gray:101\": a share"},
        {"r route=beta key=ip", "rule \"r\": a key or seed without a split"},
        {"r host=api.example.com:80 route=beta", "rule \"r\": host \"api.example.com:80\" is not a host name"},
        {"r host=a.*.com route=beta", "host \"a.*.com\" is not a host name"},
        {"r host=*. route=beta", "host \"*.\" is not a host name"},
        {"r host=.example.com route=beta", "host \".example.com\" is not a host name or *.wildcard"},
        {"r path=v2/ route=beta", "rule \"r\": path \"v2/\" is not a path prefix"},
        {"r header:X(Beta route=beta", "rule \"r\": header: header name \"X(Beta\" is not a token"},
        {"r cookie:a;b route=beta", "cookie name \"a;b\" is not a token"},
        {"r split=gray:5 key=header:X(Y", "rule \"r\": key: header name \"X(Y\" is not a token"},
        {"r route=gray fallback=nowhere", "rule \"r\": fallback: unknown route \"nowhere\""},
        {"r route=beta fallback=beta", "rule \"r\": fallback \"beta\" is the rule's own route"},
    };
    for (const auto& c : cases) {
      policy_config config = three_routes();
      config.lists.push_back({"qa", {store_ref(s)}});
      const std::string message = error_of([&] {
        config.rules.push_back(parse_rule(c.rule));
        policy p(config);
      });
      CHECK_MESSAGE(message.find(c.message) != std::string::npos, c.rule, " -> ", message);
    }
  }

  TEST_CASE("a rule's fallback travels with its decisions; without one, none") {
    memory_store s;
    s.insert(*parse_network("10.0.0.0/8"), 1);
    policy_config c = three_routes();
    c.lists.push_back({"qa", {store_ref(s)}});
    c.rules.push_back(parse_rule("listed list=qa fallback=beta"));
    c.rules.push_back(parse_rule("api path=/api/ route=gray"));
    c.rules.push_back(parse_rule("rollout split=beta:100 fallback=gray"));
    const policy p(c);
    auto fallback_of = [&](const char* peer, const char* path) {
      request_view view;
      view.peer = *parse_ip(peer);
      view.path = path;
      return p.decide(view, std::vector<header>{}).fallback_route;
    };
    CHECK(fallback_of("10.1.2.3", "/") == grayroute::route_id{2});   // listed -> gray, falls back to beta
    CHECK(fallback_of("192.0.2.1", "/api/x") == std::nullopt);       // the adapter's, or the first route
    CHECK(fallback_of("192.0.2.1", "/") == grayroute::route_id{1});  // split -> beta, falls back to gray
    // A split or list rule may name a route it can also choose: those decisions keep it.
    CHECK(parse_rule("r split=gray:5 fallback=gray").fallback == "gray");
  }

  TEST_CASE("policy-level mistakes") {
    memory_store s;
    auto with = [&](const std::function<void(policy_config&)>& change) {
      policy_config c = three_routes();
      change(c);
      return error_of([&] { policy p(c); });
    };
    CHECK(with([](policy_config& c) { c.routes = {"production"}; }) ==
          "grayroute: at least two routes are needed (production and gray)");
    CHECK(with([](policy_config& c) { c.routes = {"a", "b", "a"}; }) == "grayroute: route \"a\" is listed twice");
    CHECK(with([](policy_config& c) { c.routes = {"a", "b c"}; }) == "grayroute: route \"b c\" is not a token");
    CHECK(with([](policy_config& c) { c.default_route = "prod"; }) == "grayroute: default_route: unknown route \"prod\"");
    CHECK(with([](policy_config& c) { c.force_route = "x"; }) == "grayroute: force_route: unknown route \"x\"");
    CHECK(with([](policy_config& c) { c.force_header = "X Canary"; }) ==
          "grayroute: force_header: header name \"X Canary\" is not a token");
    CHECK(with([&](policy_config& c) { c.lists = {{"qa", {store_ref(s)}}, {"qa", {store_ref(s)}}}; }) ==
          "grayroute: list \"qa\" is defined twice");
    CHECK(with([](policy_config& c) { c.lists = {{"qa", {}}}; }) == "grayroute: list \"qa\" has no store");
    CHECK(with([&](policy_config& c) {
            c.rules = {parse_rule("a route=gray"), parse_rule("a route=beta")};
          }) == "grayroute: rule \"a\" is defined twice");
    CHECK(with([&](policy_config& c) { c.rules.emplace_back(); }) == "grayroute: rule 1 has no name");
    CHECK(with([&](policy_config& c) { c.lists = {{"", {store_ref(s)}}}; }) == "grayroute: a list has no name");
    CHECK(with([](policy_config& c) { c.force_cookie = "can ary"; }) ==
          "grayroute: force_cookie: cookie name \"can ary\" is not a token");
    CHECK(with([](policy_config& c) { c.rules = {parse_rule("r arg:a&b route=beta")}; }) ==
          "grayroute: rule \"r\": arg: argument name \"a&b\" is not a query name");
    CHECK(with([](policy_config& c) { c.rules = {parse_rule("r path=/a?b route=beta")}; }) ==
          "grayroute: rule \"r\": path \"/a?b\" is not a path prefix (starts with /, no ?)");
    CHECK(with([](policy_config& c) {
            grayroute::rule_config r;
            r.name = "r";
            r.route = "beta";
            r.fields.push_back({grayroute::field_kind::cookie, "uid", grayroute::field_test::present, {"1"}});
            c.rules = {r};
          }) == "grayroute: rule \"r\": cookie:uid: values given to a presence test");
    CHECK(with([](policy_config& c) {
            grayroute::rule_config r;
            r.name = "r";
            r.route = "beta";
            r.fields.push_back({grayroute::field_kind::header, "X-Beta", grayroute::field_test::equals, {}});
            c.rules = {r};
          }) == "grayroute: rule \"r\": header:X-Beta: no value to compare with");
    CHECK(with([](policy_config& c) {
            grayroute::rule_config r;
            r.name = "r";
            r.split = {{"gray", 0.00001}};
            c.rules = {r};
          }).find("a share is a percentage in (0, 100] in steps of 0.0001") != std::string::npos);
    CHECK(with([](policy_config& c) {
            grayroute::rule_config r;
            r.name = "r";
            r.split = {{"gray", 5}};
            r.key = {{grayroute::key_source::kind::header, ""}};
            c.rules = {r};
          }) == "grayroute: rule \"r\": key: empty header name");
    CHECK(with([](policy_config& c) { c.client_ip.trusted_proxies = {"10.0.0.1/8"}; }).find("trusted proxy \"10.0.0.1/8\"") !=
          std::string::npos);
    CHECK(with([](policy_config& c) {
            for (int i = 0; i < 17; ++i) c.rules.push_back(parse_rule("r" + std::to_string(i) + " header:H" + std::to_string(i) + " route=beta"));
          }).find("at most 16 distinct header names") != std::string::npos);
  }

  TEST_CASE("spelling mistakes name the word") {
    CHECK(error_of([] { (void)parse_rule("r hots=a route=beta"); }) ==
          "grayroute: rule \"r\": unknown word \"hots=a\" (host= path= list= client= header: cookie: arg: route= split= key= seed= fallback= schedule= ramp=)");
    CHECK(error_of([] { (void)parse_rule("r route=a route=b"); }) ==
          "grayroute: rule \"r\": \"route=b\" repeats a word that may appear once");
    CHECK(error_of([] { (void)parse_rule("r route="); }) == "grayroute: rule \"r\": \"route=\" has no value");
    CHECK(error_of([] { (void)parse_rule("r route=gray fallback=a fallback=b"); }) ==
          "grayroute: rule \"r\": \"fallback=b\" repeats a word that may appear once");
    CHECK(error_of([] { (void)parse_rule("r client=10.0.0.1/8 route=gray"); }) ==
          "grayroute: rule \"r\": client \"10.0.0.1/8\": not an address or network (a network must have no host bits set)");
    CHECK(error_of([] { (void)parse_rule("r seed=x split=gray:1"); }) ==
          "grayroute: rule \"r\": \"seed=x\": the seed is a number below 2^32");
    CHECK(error_of([] { (void)parse_rule("r seed=4294967296 split=gray:1"); }) ==
          "grayroute: rule \"r\": \"seed=4294967296\": the seed is a number below 2^32");
    CHECK(error_of([] { (void)parse_rule(""); }) == "grayroute: a rule needs a name");
    CHECK(error_of([] { (void)grayroute::parse_condition("header:X-Beta="); }) ==
          "grayroute: condition \"header:X-Beta=\" has an empty value");
    CHECK(error_of([] { (void)grayroute::parse_condition("header:X-Beta=1,,2"); }) ==
          "grayroute: condition \"header:X-Beta=1,,2\" has an empty value");
    CHECK(error_of([] { (void)grayroute::parse_condition("!header:X-Beta=1"); }) ==
          "grayroute: condition \"!header:X-Beta=1\": ! tests absence, it takes no values");
    CHECK(error_of([] { (void)grayroute::parse_condition("header:=1"); }) ==
          "grayroute: condition \"header:=1\" has no name");
    CHECK(error_of([] { (void)grayroute::parse_condition("heder:X"); }).find("is not header:NAME") != std::string::npos);
    CHECK(error_of([] { (void)grayroute::parse_key_list("header:X-User-Id,,ip"); }) ==
          "grayroute: key \"header:X-User-Id,,ip\": \"\" is not header:NAME, cookie:NAME, arg:NAME, given or ip");
    CHECK(error_of([] { (void)grayroute::parse_key_list("cookie:"); }).find("\"cookie:\" is not") != std::string::npos);
    CHECK(error_of([] { (void)grayroute::parse_split("gray:10.00001"); }) ==
          "grayroute: split \"gray:10.00001\" is not ROUTE:PERCENT (a number with at most four decimals)");
    CHECK(error_of([] { (void)grayroute::parse_split("gray"); }).find("\"gray\" is not ROUTE:PERCENT") != std::string::npos);
    CHECK(error_of([] { (void)grayroute::parse_split("gray:1e3"); }).find("is not ROUTE:PERCENT") != std::string::npos);
    CHECK(error_of([] { (void)grayroute::parse_split(":5"); }).find("is not ROUTE:PERCENT") != std::string::npos);
  }

  TEST_CASE("the syntax reads what the structures hold") {
    const auto r = parse_rule("  beta-api\thost=api.example.com,*.example.org host=x.test path=/v2/ client=10.0.0.0/8 "
                              "list=qa header:X-Beta=1,yes !cookie:off arg:lang split=gray:10,beta:0.0001 "
                              "key=given,header:X-User-Id,cookie:uid,arg:u,ip seed=42 ");
    CHECK(r.name == "beta-api");
    CHECK(r.hosts == std::vector<std::string>{"api.example.com", "*.example.org", "x.test"});
    CHECK(r.paths == std::vector<std::string>{"/v2/"});
    CHECK(r.clients == std::vector<std::string>{"10.0.0.0/8"});
    CHECK(r.list == "qa");
    REQUIRE(r.fields.size() == 3);
    CHECK(r.fields[0].field == grayroute::field_kind::header);
    CHECK(r.fields[0].test == grayroute::field_test::equals);
    CHECK(r.fields[0].values == std::vector<std::string>{"1", "yes"});
    CHECK(r.fields[1].field == grayroute::field_kind::cookie);
    CHECK(r.fields[1].test == grayroute::field_test::absent);
    CHECK(r.fields[2].field == grayroute::field_kind::arg);
    CHECK(r.fields[2].test == grayroute::field_test::present);
    REQUIRE(r.split.size() == 2);
    CHECK(r.split[1].route == "beta");
    CHECK(r.split[1].percent == doctest::Approx(0.0001));
    REQUIRE(r.key.size() == 5);
    CHECK(r.key[0].source == grayroute::key_source::kind::given);
    CHECK(r.key[3].source == grayroute::key_source::kind::arg);
    CHECK(r.key[3].name == "u");
    CHECK(r.seed == 42);
    const std::vector<std::string> words = {"host=a.test", "route=beta"};
    CHECK(parse_rule("from-words", words).hosts == std::vector<std::string>{"a.test"});
  }
}

TEST_SUITE("policy: hostile input") {
  TEST_CASE("garbage hosts, paths, queries and headers give defined answers") {
    const policy p = one_rule("r host=*.example.com path=/v2/ arg:x=1 header:X-Beta split=gray:50 key=arg:k,cookie:c");
    const std::string big(70000, 'a');
    const std::vector<header> hostile = {{"X-Beta", big}, {"Cookie", big}, {"Cookie", "c"}, {"Host", ":::"}, {"", ""}};
    for (const std::string& host : {std::string(":"), std::string("["), std::string("]"), big, std::string(".")}) {
      for (const std::string& path : {std::string("?"), std::string("/v2/?&&=&x"), std::string("/v2/?x=1&k="), big}) {
        const std::string d = decide(p, {"198.51.100.7", host, path, hostile});
        CHECK(d == "production/default");
      }
    }
    CHECK(decide(p, {"198.51.100.7", "a.example.com", "/v2/?x=1&k=5", hostile}) != "");
  }
}

TEST_SUITE("cookie") {
  TEST_CASE("find_cookie's name search agrees with reading pair by pair") {
    std::mt19937 rng(11);
    const char alphabet[] = {'u', 'i', 'd', '=', ';', ' ', '\t', '"', 'a', 'x'};
    const char* names[] = {"uid", "ui", "d", "a", "uid\"", "xuid", "u"};
    for (int i = 0; i < 200000; ++i) {
      std::string line;
      const std::size_t length = rng() % 24;
      for (std::size_t j = 0; j < length; ++j) line += alphabet[rng() % sizeof(alphabet)];
      for (const char* name : names) {
        const auto fast = grayroute::find_cookie(line, name);
        const auto plain = grayroute::detail::find_cookie_by_pairs(line, name);
        REQUIRE_MESSAGE(fast == plain, "line [", line, "] name ", name);
      }
    }
    CHECK(grayroute::find_cookie("session=7d1f0c; theme=dark; uid=\"42\"", "uid") == std::string_view("42"));
    CHECK(grayroute::find_cookie("a=uid=1; xuid=2;uid =3", "uid") == std::string_view("3"));
    CHECK_FALSE(grayroute::find_cookie("uid; a=b uid=5", "uid"));
  }
}
