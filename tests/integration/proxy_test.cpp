// grayroute-proxy as a client sees it: real proxy and backend processes on loopback.
// Routing, the trust model, header hygiene, errors and keep-alive.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "../support/proxy_fixture.hpp"

using namespace grayroute::test;

namespace {

const std::vector<std::string> kTrustLoopback = {"--trusted-proxy", "127.0.0.1/32", "--access-log", "-"};

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more = kTrustLoopback) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

http_reply get_as(int port, const std::string& client, const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  auto headers = extra;
  if (!client.empty()) headers.emplace_back("X-Forwarded-For", client);
  return http_get(port, "/", headers);
}

}  // namespace

TEST_SUITE("proxy routing") {
  TEST_CASE("a listed address or network goes to gray, everyone else to production") {
    temp_dir dir;
    proxy_setup s(dir, with({"--gray-list", "10.1.0.0/16", "--gray-list", "192.0.2.7"}));

    auto r = get_as(s.port(), "10.1.2.3");
    CHECK(r.status == 200);
    CHECK(header(r.headers, "X-Backend") == "gray");
    CHECK(header(r.headers, "X-Grayroute") == "gray; reason=list; rule=list");

    r = get_as(s.port(), "192.0.2.7");
    CHECK(header(r.headers, "X-Backend") == "gray");

    r = get_as(s.port(), "192.0.2.8");
    CHECK(r.status == 200);
    CHECK(header(r.headers, "X-Backend") == "production");
    CHECK(header(r.headers, "X-Grayroute") == "production; reason=default");

    const std::string log = s.front.log();
    CHECK(log.find("client=10.1.2.3 (X-Forwarded-For)") != std::string::npos);
    CHECK(log.find("route=gray reason=list status=200") != std::string::npos);
  }

  TEST_CASE("forwarded headers from an untrusted peer are ignored, and the upstream learns the real peer") {
    temp_dir dir;
    proxy_setup s(dir, with({"--gray-list", "10.1.0.0/16"}));
    // 127.0.0.2 is another loopback client, not in --trusted-proxy 127.0.0.1/32.
    auto r = http_get(s.port(), "/echo", {{"X-Forwarded-For", "10.1.2.3"}, {"X-Real-IP", "10.1.2.3"}},
                      std::chrono::seconds(5), "127.0.0.2");
    REQUIRE(r.status == 200);
    CHECK(header(r.headers, "X-Backend") == "production");
    CHECK(r.body.find("X-Real-IP: 127.0.0.2\n") != std::string::npos);
    CHECK(r.body.find("X-Forwarded-For: 10.1.2.3, 127.0.0.2\n") != std::string::npos);

    // The same headers from the trusted hop are believed.
    r = http_get(s.port(), "/echo", {{"X-Forwarded-For", "10.1.2.3"}});
    CHECK(header(r.headers, "X-Backend") == "gray");
    CHECK(r.body.find("X-Real-IP: 10.1.2.3\n") != std::string::npos);
    CHECK(r.body.find("X-Forwarded-For: 10.1.2.3, 127.0.0.1\n") != std::string::npos);
  }

  TEST_CASE("client-IP headers are read in the configured order") {
    temp_dir dir;
    proxy_setup s(dir, with({"--gray-list", "10.1.0.0/16", "--client-ip-headers", "X-Forwarded-For", "X-Real-IP"}));
    auto r = get_as(s.port(), "192.0.2.1", {{"X-Real-IP", "10.1.2.3"}});
    CHECK(header(r.headers, "X-Backend") == "production");  // X-Forwarded-For comes first
    r = http_get(s.port(), "/", {{"X-Real-IP", "10.1.2.3"}});
    CHECK(header(r.headers, "X-Backend") == "gray");
  }

  TEST_CASE("a percentage rollout is sticky per key and sends some keys to gray") {
    temp_dir dir;
    proxy_setup s(dir, with({"--percent", "50", "--percent-key", "X-User-Id"}));
    std::map<std::string, int> seen;
    for (int user = 0; user < 30; ++user) {
      const std::string id = "user-" + std::to_string(user);
      const auto first = http_get(s.port(), "/", {{"X-User-Id", id}});
      const auto second = http_get(s.port(), "/", {{"X-User-Id", id}});
      REQUIRE(first.status == 200);
      CHECK(header(first.headers, "X-Backend") == header(second.headers, "X-Backend"));
      ++seen[header(first.headers, "X-Grayroute")];
    }
    CHECK(seen["gray; reason=percentage; rule=percentage"] > 3);
    CHECK(seen["production; reason=default"] > 3);
  }

  TEST_CASE("a force header or cookie chooses the route, ahead of the list") {
    temp_dir dir;
    proxy_setup s(dir, with({"--gray-list", "10.1.0.0/16", "--force-header", "X-Canary", "--force-cookie", "canary"}));
    auto r = get_as(s.port(), "192.0.2.1", {{"X-Canary", "always"}});
    CHECK(header(r.headers, "X-Grayroute") == "gray; reason=header");
    r = get_as(s.port(), "192.0.2.1", {{"Cookie", "a=b; canary=always"}});
    CHECK(header(r.headers, "X-Grayroute") == "gray; reason=cookie");
    r = get_as(s.port(), "10.1.2.3", {{"X-Canary", "never"}});
    CHECK(header(r.headers, "X-Grayroute") == "production; reason=header");
    CHECK(header(r.headers, "X-Backend") == "production");
  }

  TEST_CASE("--no-route-header leaves responses without X-Grayroute") {
    temp_dir dir;
    proxy_setup s(dir, with({"--gray-list", "10.1.0.0/16", "--no-route-header"}));
    auto r = get_as(s.port(), "10.1.2.3");
    CHECK(header(r.headers, "X-Backend") == "gray");
    CHECK(header(r.headers, "X-Grayroute").empty());
  }
}

TEST_SUITE("proxy protocol") {
  TEST_CASE("hop-by-hop headers are removed before the proxy adds its own") {
    temp_dir dir;
    proxy_setup s(dir, kTrustLoopback);
    // A client naming the proxy's own headers in Connection must not strip them.
    auto r = http_get(s.port(), "/echo",
                      {{"Connection", "X-Real-IP, X-Forwarded-For, Foo"}, {"Foo", "bar"}, {"Keep-Alive", "timeout=5"},
                       {"Proxy-Connection", "keep-alive"}, {"TE", "trailers"}, {"Upgrade", "h2c"}, {"X-Kept", "yes"}});
    REQUIRE(r.status == 200);
    CHECK(r.body.find("Foo:") == std::string::npos);
    CHECK(r.body.find("Keep-Alive:") == std::string::npos);
    CHECK(r.body.find("Proxy-Connection:") == std::string::npos);
    CHECK(r.body.find("TE:") == std::string::npos);
    CHECK(r.body.find("Upgrade:") == std::string::npos);
    CHECK(r.body.find("Connection:") == std::string::npos);
    CHECK(r.body.find("X-Kept: yes\n") != std::string::npos);
    CHECK(r.body.find("X-Real-IP: 127.0.0.1\n") != std::string::npos);
    CHECK(r.body.find("X-Forwarded-For: 127.0.0.1\n") != std::string::npos);
    CHECK(r.body.find("Host: 127.0.0.1:" + std::to_string(s.port()) + "\n") != std::string::npos);
  }

  TEST_CASE("malformed requests get 400 and the proxy keeps serving") {
    temp_dir dir;
    proxy_setup s(dir, kTrustLoopback);
    const std::vector<std::string> bad = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",  // HTTP/1.1 without Host
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    };
    for (const auto& request : bad) {
      CAPTURE(request);
      http_connection c(s.port());
      REQUIRE(c.send(request));
      const auto r = c.read_response();
      CHECK(r.status == 400);
      CHECK(c.closed_by_peer());
    }
    {
      http_connection c(s.port());
      REQUIRE(c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n"));
      CHECK(c.read_response().status == 431);
    }
    CHECK(http_get(s.port(), "/").status == 200);
    CHECK(s.front.log().find("reason=malformed status=400") != std::string::npos);
  }

  TEST_CASE("an upstream that is down gives 502, and the proxy recovers when it is back") {
    temp_dir dir;
    backend production(dir, "production");
    const int gray_port = free_port();  // nothing listens here yet
    // --health off: no fallback to production (proxy_health_test.cpp has the default).
    proxy p(dir, production.port(), gray_port, with({"--gray-list", "10.1.0.0/16", "--health", "off"}));

    auto r = get_as(p.port(), "10.1.2.3");
    CHECK(r.status == 502);
    CHECK(r.body.find("gray upstream 127.0.0.1:" + std::to_string(gray_port) + " is unreachable") != std::string::npos);
    CHECK(r.body.size() < 200);
    CHECK(get_as(p.port(), "192.0.2.1").status == 200);  // production is unaffected

    backend gray(dir, "gray", gray_port);
    r = get_as(p.port(), "10.1.2.3");
    CHECK(r.status == 200);
    CHECK(header(r.headers, "X-Backend") == "gray");

    gray.stop();  // its pooled connection is now dead: the next request must notice, not hang
    r = get_as(p.port(), "10.1.2.3");
    CHECK(r.status == 502);
  }

  TEST_CASE("a slow upstream gives 504 after --upstream-timeout") {
    temp_dir dir;
    proxy_setup s(dir, with({"--upstream-timeout", "300"}));
    const auto started = std::chrono::steady_clock::now();
    const auto r = http_get(s.port(), "/?delay=3000");
    CHECK(r.status == 504);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
  }

  TEST_CASE("keep-alive on both sides: one upstream connection carries many requests") {
    temp_dir dir;
    proxy_setup s(dir, kTrustLoopback);
    // The backend numbers its TCP connections (wait_for_port's probe was one of them).
    std::string first;
    {
      http_connection c(s.port());
      for (int i = 0; i < 20; ++i) {
        REQUIRE(c.send(get_request("/")));
        const auto r = c.read_response();
        REQUIRE(r.status == 200);
        if (first.empty()) first = header(r.headers, "X-Backend-Connection");
        CHECK(header(r.headers, "X-Backend-Connection") == first);
      }
    }
    // New client connections, still the pooled upstream connection.
    for (int i = 0; i < 10; ++i) CHECK(header(http_get(s.port(), "/").headers, "X-Backend-Connection") == first);
    CHECK(http_get(s.port(), "/-/connections").body == first + "\n");
  }

  TEST_CASE("the health endpoint reports the list as JSON") {
    temp_dir dir;
    dir.write("gray.txt", "# QA\n10.1.0.0/16\n192.0.2.7\n");
    proxy_setup s(dir, with({"--gray-list", "198.51.100.1", "--gray-list-file", dir.file("gray.txt")}));
    const auto r = http_get(s.port(), "/-/grayroute/health");
    REQUIRE(r.status == 200);
    CHECK(header(r.headers, "Content-Type") == "application/json");
    CHECK(r.body.find("\"entries\":3") != std::string::npos);
    CHECK(r.body.find("\"source\":\"file " + dir.file("gray.txt") + "\"") != std::string::npos);
    CHECK(r.body.find("\"last_sync\":\"20") != std::string::npos);
    CHECK(r.body.find("\"redis_connected\":null") != std::string::npos);
  }

  TEST_CASE("a bad list at start-up is refused with the line number") {
    temp_dir dir;
    dir.write("gray.txt", "10.1.0.0/16\n10.1.2.300\n");
    process p({GRAYROUTE_PROXY_BIN, "--listen", "127.0.0.1:" + std::to_string(free_port()), "--gray-list-file",
               dir.file("gray.txt")},
              dir.file("bad.log"));
    CHECK(eventually([&] { return !p.running(); }));
    CHECK(p.log().find("line 2: \"10.1.2.300\"") != std::string::npos);
  }
}
