// grayroute-proxy --config: the policy file of examples/asio_proxy/policy.example.toml (the
// issue's example) with only its ports and paths changed, against real backends and a
// real redis-server (requirepass, seed-schema keys). Every response's X-Grayroute is
// held to what grayroute::policy decides for the same request, built here from the
// library's own rule syntax; then reloads (SIGHUP, a changed file, a bad file) and N routes
// with several servers.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <csignal>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grayroute/memory_store.hpp>
#include <grayroute/policy.hpp>
#include <grayroute/policy_syntax.hpp>

#include "../support/proxy_fixture.hpp"

using namespace grayroute::test;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (std::size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) text.replace(at, from.size(), to);
}

/// One GET with the Host it names; the response's headers.
http_reply get(int port, const std::string& host, const std::string& path, const header_list& headers = {}) {
  http_connection c(port);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  c.send(request + "Connection: close\r\n\r\n");
  return c.read_response();
}

/// The issue's example, its ports and paths replaced by the test's.
std::string example_policy(int listen, int production, int gray, int beta, int redis) {
  std::string text = read_text(GRAYROUTE_SOURCE_DIR "/examples/asio_proxy/policy.example.toml");
  REQUIRE(text.find("127.0.0.1:8000") != std::string::npos);
  replace_all(text, "127.0.0.1:8000", "127.0.0.1:" + std::to_string(listen));
  replace_all(text, "127.0.0.1:8080", "127.0.0.1:" + std::to_string(production));
  replace_all(text, "127.0.0.1:8090", "127.0.0.1:" + std::to_string(gray));
  replace_all(text, "127.0.0.1:8091", "127.0.0.1:" + std::to_string(beta));
  replace_all(text, "127.0.0.1:6379", "127.0.0.1:" + std::to_string(redis));
  return text;
}

/// "route; reason=why; rule=name" as grayroute::policy decides it.
std::string label(const grayroute::policy& p, const grayroute::decision& d) {
  std::string out = std::string(p.route_name(d.route)) + "; reason=" + std::string(grayroute::to_string(d.reason));
  if (!d.rule.empty()) out += "; rule=" + std::string(d.rule);
  return out;
}

}  // namespace

TEST_SUITE("proxy policy file") {
  TEST_CASE("the issue's example policy decides as grayroute::policy does, request by request") {
    temp_dir dir;
    redis_server redis(dir, {/*password=*/"foobared"});
    REQUIRE(redis.cli({"SET", "203.0.113.7", "203.0.113.7"}) == "OK");  // the seed's schema: SET ip ip
    backend production(dir, "production"), gray(dir, "gray"), beta(dir, "beta");
    dir.write("qa.txt", "# QA office\n10.1.0.0/16\n");
    const int port = free_port();
    dir.write("policy.toml", example_policy(port, production.port(), gray.port(), beta.port(), redis.port()));
    config_proxy proxy(dir, dir.file("policy.toml"), port);  // --config alone: listen comes from the file

    // The same policy through the library: the rules in its text syntax, the lists as memory stores.
    grayroute::memory_store qa({{*grayroute::parse_network("10.1.0.0/16"), grayroute::kGray}});
    grayroute::memory_store seed({{*grayroute::parse_network("203.0.113.7"), grayroute::kGray}});
    grayroute::policy_config config;
    config.routes = {"production", "gray", "beta"};
    config.client_ip.trusted_proxies = {"127.0.0.1/32"};
    config.client_ip.headers = {"X-Forwarded-For"};
    config.lists.push_back({"qa", {grayroute::store_ref(qa)}});
    config.lists.push_back({"seed", {grayroute::store_ref(seed)}});
    for (const char* rule : {"beta-api host=api.example.com path=/v2/ header:X-Beta=1,yes route=beta", "qa-office list=qa",
                             "seed list=seed",
                             "rollout host=www.example.com split=gray:10 key=header:X-User-Id,cookie:uid,ip"}) {
      config.rules.push_back(grayroute::parse_rule(rule));
    }
    config.default_route = "production";
    const grayroute::policy expected_policy(config);

    // The Redis list is synced in the background: wait for the seed client to move.
    REQUIRE(eventually([&] {
      return header(get(port, "a.example", "/", {{"X-Forwarded-For", "203.0.113.7"}}).headers, "X-Grayroute") ==
             "gray; reason=list; rule=seed";
    }));

    SUBCASE("representative requests") {
      auto route_of = [&](const std::string& host, const std::string& path, const header_list& headers) {
        const auto r = get(port, host, path, headers);
        REQUIRE(r.status == 200);
        return header(r.headers, "X-Grayroute") + " @" + header(r.headers, "X-Backend");
      };
      CHECK(route_of("api.example.com", "/v2/items", {{"X-Beta", "yes"}}) == "beta; reason=match; rule=beta-api @beta");
      CHECK(route_of("API.example.com:8000", "/v2/?q=1", {{"X-Beta", "1"}}) == "beta; reason=match; rule=beta-api @beta");
      CHECK(route_of("api.example.com", "/v2/items", {{"X-Beta", "no"}}) == "production; reason=default @production");
      CHECK(route_of("api.example.com", "/v1/items", {{"X-Beta", "1"}}) == "production; reason=default @production");
      CHECK(route_of("a.example", "/", {{"X-Forwarded-For", "10.1.2.3"}}) == "gray; reason=list; rule=qa-office @gray");
      CHECK(route_of("a.example", "/", {{"X-Forwarded-For", "203.0.113.7"}}) == "gray; reason=list; rule=seed @gray");
      CHECK(route_of("a.example", "/", {{"X-Forwarded-For", "203.0.113.8"}}) == "production; reason=default @production");
      // The split is sticky: a user id's route does not change between requests.
      std::map<std::string, int> seen;
      for (int i = 0; i < 200; ++i) {
        const header_list h = {{"X-User-Id", "u-" + std::to_string(i)}};
        const std::string first = route_of("www.example.com", "/", h);
        CHECK(route_of("www.example.com", "/cart", h) == first);
        ++seen[first];
      }
      CHECK(seen["gray; reason=percentage; rule=rollout @gray"] > 5);
      CHECK(seen["production; reason=default @production"] > 100);
      CHECK(seen.size() == 2);
    }

    SUBCASE("generated requests: route, reason and rule as the library decides") {
      const std::vector<std::string> hosts = {"api.example.com", "www.example.com", "WWW.example.com:8000", "other.example"};
      const std::vector<std::string> paths = {"/", "/v2/", "/v2/x?y=1", "/v1/", "/cart"};
      const std::vector<std::string> clients = {"10.1.2.3", "10.2.0.1", "203.0.113.7", "203.0.113.8", "198.51.100.4"};
      const std::vector<std::string> betas = {"", "1", "yes", "no"};
      for (int i = 0; i < 300; ++i) {
        const std::string host = hosts[i % hosts.size()];
        const std::string path = paths[(i / 4) % paths.size()];
        header_list h;
        const std::string& client = clients[(i / 3) % clients.size()];
        if (i % 7 != 0) h.emplace_back("X-Forwarded-For", client);
        if (const std::string& b = betas[(i / 5) % betas.size()]; !b.empty()) h.emplace_back("X-Beta", b);
        if (i % 2 == 0) h.emplace_back("X-User-Id", "user-" + std::to_string(i * 7919 % 1000));
        if (i % 3 == 0) h.emplace_back("Cookie", "a=b; uid=c" + std::to_string(i));
        std::vector<grayroute::header> view = {{"Host", host}};
        for (const auto& [name, value] : h) view.emplace_back(name, value);
        const auto d = expected_policy.decide(grayroute::request_view{*grayroute::parse_ip("127.0.0.1"), "", path}, view);
        const auto r = get(port, host, path, h);
        INFO("request " << i << ": " << host << path);
        REQUIRE(r.status == 200);
        CHECK(header(r.headers, "X-Grayroute") == label(expected_policy, d));
        CHECK(header(r.headers, "X-Backend") == std::string(expected_policy.route_name(d.route)));
      }
    }
  }

  TEST_CASE("SIGHUP reloads the whole policy; a bad file is refused with file:line:column and the old one serves") {
    temp_dir dir;
    redis_server redis(dir, {/*password=*/"foobared"});
    backend production(dir, "production"), gray(dir, "gray"), beta(dir, "beta");
    dir.write("qa.txt", "10.1.0.0/16\n");
    const int port = free_port();
    const std::string good = example_policy(port, production.port(), gray.port(), beta.port(), redis.port());
    dir.write("policy.toml", good);
    config_proxy proxy(dir, dir.file("policy.toml"), port, {"--watch-interval", "0"});
    const auto beta_api = [&] {
      return header(get(port, "api.example.com", "/v2/", {{"X-Beta", "1"}}).headers, "X-Grayroute");
    };
    REQUIRE(beta_api() == "beta; reason=match; rule=beta-api");

    // A typo in a route name: the line and column of "betaa" in the file.
    std::string bad = good;
    replace_all(bad, "route = \"beta\"", "route = \"betaa\"");
    std::size_t line = 1;
    const std::size_t at = bad.find("\"betaa\"");
    for (std::size_t i = 0; i < at; ++i) line += bad[i] == '\n';
    const std::size_t column = at - bad.rfind('\n', at);
    dir.write("policy.toml", bad);
    proxy.proc().signal(SIGHUP);
    const std::string expected = "policy NOT reloaded (SIGHUP): " + dir.file("policy.toml") + ":" + std::to_string(line) +
                                 ":" + std::to_string(column) + ": rule \"beta-api\": route: unknown route \"betaa\"";
    CHECK(eventually([&] { return proxy.log().find(expected) != std::string::npos; }));
    CHECK(beta_api() == "beta; reason=match; rule=beta-api");
    CHECK(http_get(port, "/-/grayroute/health").body.find("\"rejected\":1") != std::string::npos);

    // A good file: everything is new at once (the beta rule now to gray, all of www to
    // gray); a request in flight finishes with the policy it started with.
    http_reply in_flight;
    std::thread slow([&] { in_flight = get(port, "api.example.com", "/v2/?delay=1500", {{"X-Beta", "1"}}); });
    REQUIRE(eventually([&] { return beta.log().find("delaying /v2/?delay=1500") != std::string::npos; }));
    std::string next = good;
    replace_all(next, "route = \"beta\"", "route = \"gray\"");
    replace_all(next, "split = { gray = 10 }", "split = { gray = 100 }");
    dir.write("policy.toml", next);
    proxy.proc().signal(SIGHUP);
    CHECK(eventually([&] { return proxy.log().find("policy reloaded (SIGHUP)") != std::string::npos; }));
    CHECK(beta_api() == "gray; reason=match; rule=beta-api");
    slow.join();
    CHECK(in_flight.status == 200);
    CHECK(header(in_flight.headers, "X-Grayroute") == "beta; reason=match; rule=beta-api");
    CHECK(header(in_flight.headers, "X-Backend") == "beta");
    CHECK(header(get(port, "www.example.com", "/", {{"X-User-Id", "u-1"}}).headers, "X-Grayroute") ==
          "gray; reason=percentage; rule=rollout");
  }

  TEST_CASE("a changed policy file or list file is applied without a signal") {
    temp_dir dir;
    backend production(dir, "production"), gray(dir, "gray");
    dir.write("qa.txt", "10.1.0.0/16\n");
    const int port = free_port();
    const std::string head = "listen = \"127.0.0.1:" + std::to_string(port) + "\"\n" +
                             "[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\nheaders = [\"X-Forwarded-For\"]\n" +
                             "[routes]\nproduction = \"127.0.0.1:" + std::to_string(production.port()) + "\"\n" +
                             "gray = \"127.0.0.1:" + std::to_string(gray.port()) + "\"\n" +
                             "[lists]\nqa = { file = \"qa.txt\" }\n";
    dir.write("policy.toml", head + "[[rules]]\nname = \"qa\"\nlist = \"qa\"\n");
    config_proxy proxy(dir, dir.file("policy.toml"), port, {"--watch-interval", "20"});
    const auto label_of = [&](const char* client) {
      return header(get(port, "a.example", "/", {{"X-Forwarded-For", client}}).headers, "X-Grayroute");
    };
    CHECK(label_of("10.1.0.1") == "gray; reason=list; rule=qa");
    dir.write("qa.txt", "10.2.0.0/16\n");
    CHECK(eventually([&] { return label_of("10.2.0.1") == "gray; reason=list; rule=qa"; }));
    CHECK(label_of("10.1.0.1") == "production; reason=default");
    dir.write("policy.toml", head + "[[rules]]\nname = \"office\"\nclient = \"10.9.0.0/16\"\nroute = \"gray\"\n");
    CHECK(eventually([&] { return label_of("10.9.0.1") == "gray; reason=match; rule=office"; }));
    CHECK(label_of("10.2.0.1") == "production; reason=default");
  }

  TEST_CASE("three routes, two servers on one: round robin, and a forced route") {
    temp_dir dir;
    backend production(dir, "production"), gray_a(dir, "gray-a"), gray_b(dir, "gray-b"), beta(dir, "beta");
    const int port = free_port();
    auto at = [](const backend& b) { return "\"127.0.0.1:" + std::to_string(b.port()) + "\""; };
    dir.write("policy.toml", "listen = \"127.0.0.1:" + std::to_string(port) + "\"\nforce_header = \"X-Route\"\n" +
                                 "[routes]\nproduction = [" + at(production) + "]\ngray = [" + at(gray_a) + ", " +
                                 at(gray_b) + "]\nbeta = [" + at(beta) + "]\n" +
                                 "[[rules]]\nname = \"canary-path\"\npaths = [\"/canary/\"]\nroute = \"gray\"\n");
    config_proxy proxy(dir, dir.file("policy.toml"), port);
    std::vector<std::string> backends;
    for (int i = 0; i < 6; ++i) backends.push_back(header(get(port, "a.example", "/canary/x").headers, "X-Backend"));
    CHECK(backends == std::vector<std::string>{"gray-a", "gray-b", "gray-a", "gray-b", "gray-a", "gray-b"});
    const auto forced = get(port, "a.example", "/", {{"X-Route", "beta"}});
    CHECK(header(forced.headers, "X-Grayroute") == "beta; reason=header");
    CHECK(header(forced.headers, "X-Backend") == "beta");
    CHECK(header(get(port, "a.example", "/").headers, "X-Backend") == "production");
    // The health page shows the policy being served.
    const std::string health = http_get(port, "/-/grayroute/health").body;
    CHECK(health.find("\"routes\":[{\"name\":\"production\",\"servers\":[" + at(production) + "]},{\"name\":\"gray\","
                      "\"servers\":[" + at(gray_a) + "," + at(gray_b) + "]},{\"name\":\"beta\"") != std::string::npos);
    CHECK(health.find("\"rules\":[\"canary-path\"],\"default\":\"production\"") != std::string::npos);
  }

  TEST_CASE("every kind of error names file:line:column, and a bad file at start-up exits 1") {
    // The TOML's own errors, its shape, and the library's validation placed on the node.
    const std::string base = "[routes]\nproduction = \"127.0.0.1:1\"\ngray = \"127.0.0.1:2\"\n"
                             "[lists]\nqa = { addresses = [\"10.0.0.0/8\"] }\n[[rules]]\nname = \"r\"\n";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"route = \"beta\"\n", ":8:9: rule \"r\": route: unknown route \"beta\""},
        {"route = gray\n", ":8:9: "},  // TOML: a bare word is no value
        {"rout = \"gray\"\n", ":8:1: rule 1: unknown key \"rout\""},
        {"route = [\"gray\"]\n", ":8:9: rule 1: route is a string"},
        {"list = \"qb\"\n", ":8:8: rule \"r\": unknown list \"qb\""},
        {"header = { \"X Beta\" = \"1\" }\n", ":8:12: rule \"r\": header: header name \"X Beta\" is not a token"},
        {"cookie = { uid = [] }\n", ":8:18: rule 1: cookie \"uid\": an empty array matches nothing"},
        {"client = \"10.0.0.1/8\"\nroute = \"gray\"\n", ":8:10: rule \"r\": client \"10.0.0.1/8\": not an address or network"},
        {"split = { gray = 10.00001 }\n", ":8:11: rule \"r\": split \"gray:10.00001\": a share is a percentage"},
        {"split = { gray = 10 }\nkey = \"header\"\n", ":9:7: key \"header\": \"header\" is not header:NAME"},
        {"hosts = \"api.example.com/x\"\nroute = \"gray\"\n", ":8:9: rule \"r\": host \"api.example.com/x\" is not a host name"},
        {"route = \"gray\"\ndefault = \"beta\"\n", ":9:11: default_route: unknown route \"beta\""},
    };
    for (const auto& [rule, expected] : cases) {
      temp_dir dir;
      dir.write("policy.toml", base + rule);
      process p({GRAYROUTE_PROXY_BIN, "--config", dir.file("policy.toml"), "--listen",
                 "127.0.0.1:" + std::to_string(free_port())},
                dir.file("bad.log"));
      REQUIRE(eventually([&] { return !p.running(); }));
      const int status = p.stop();
      INFO(rule << "-> " << p.log());
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 1);
      CHECK(p.log().find(dir.file("policy.toml") + expected) != std::string::npos);
    }
  }

  TEST_CASE("a bad policy file at start-up: exit status 1 and file:line:column") {
    temp_dir dir;
    dir.write("policy.toml", "[routes]\nproduction = \"127.0.0.1:1\"\ngray = \"127.0.0.1:2\"\n[[rules]]\nname = \"r\"\n"
                             "split = { gray = 10, production = 95 }\n");
    process p({GRAYROUTE_PROXY_BIN, "--config", dir.file("policy.toml"), "--listen", "127.0.0.1:" + std::to_string(free_port())},
              dir.file("bad.log"));
    REQUIRE(eventually([&] { return !p.running(); }));
    const int status = p.stop();
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
    CHECK(p.log().find(dir.file("policy.toml") + ":6:1: rule \"r\": split shares add up to more than 100%") !=
          std::string::npos);
  }
}
