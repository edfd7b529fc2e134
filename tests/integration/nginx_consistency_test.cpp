// The nginx module's scheduled ramps and pinning of anonymous users (issue 13): a
// grayroute_rule whose split share is a schedule, read from the wall clock (steps chosen
// so the weight now is known: some already past, the next decades away), shown in
// grayroute_status; and grayroute_pin_cookie giving every request without a rollout key a
// random id and a Set-Cookie. Real nginx on loopback; the library's hash is the oracle.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include <grayroute/rollout.hpp>

#include "../support/nginx.hpp"
#include "../support/process.hpp"

using namespace grayroute::test;

namespace {

bool hashed_into(const std::string& key, std::uint32_t ppm) {
  return grayroute::percentage_rollout::fine_bucket(key, 0) < ppm;
}

}  // namespace

TEST_SUITE("nginx ramps and pinning") {
  TEST_CASE("a scheduled split's weight is the schedule's now, and grayroute_status shows it and the next step") {
    temp_dir dir;
    nginx_server nginx(dir, "", R"(
        location /ramp/ {
            grayroute_route client1 client2;
            grayroute_rule ramp key=header:X-User-Id split=gray:schedule schedule=2020-01-01T00:00:00Z/10%,+1h/30%,2099-01-01T00:00:00Z/100%;
            add_header X-Route "$grayroute_route $grayroute_reason $grayroute_rule" always;
            proxy_pass http://$grayroute_upstream;
        }
        location /future/ {
            grayroute_route client1 client2;
            grayroute_rule later key=header:X-User-Id split=gray:schedule schedule=2099-01-01T00:00:00Z/50% ramp=linear;
            add_header X-Route "$grayroute_route $grayroute_reason $grayroute_rule" always;
            proxy_pass http://$grayroute_upstream;
        }
        location /done/ {
            grayroute_route client1 client2;
            grayroute_rule done key=header:X-User-Id split=gray:schedule schedule=2020-01-01T00:00:00Z/1%,+1h/100% ramp=linear;
            add_header X-Route "$grayroute_route $grayroute_reason $grayroute_rule" always;
            proxy_pass http://$grayroute_upstream;
        }
        location = /status { grayroute_status; })");
    int gray = 0;
    for (int u = 0; u < 1000; ++u) {
      const std::string user = "user-" + std::to_string(u);
      const std::vector<std::pair<std::string, std::string>> id{{"X-User-Id", user}};
      // 30% now (the second step is past, the third decades away), stepwise.
      const http_reply ramp = http_get(nginx.port(), "/ramp/", id);
      REQUIRE(ramp.status == 200);
      const bool in = hashed_into(user, 300000);
      CHECK(header_value(ramp, "X-Route") == (in ? "gray percentage ramp" : "production default "));
      gray += in;
      // Nothing before the first step; everything after a finished ramp to 100%.
      CHECK(header_value(http_get(nginx.port(), "/future/", id), "X-Route") == "production default ");
      CHECK(header_value(http_get(nginx.port(), "/done/", id), "X-Route") == "gray percentage done");
    }
    CHECK(gray > 250);  // the oracle itself splits near 30%
    CHECK(gray < 350);

    const http_reply status = http_get(nginx.port(), "/status");
    REQUIRE(status.status == 200);
    CHECK(status.body.find(R"("ramps":[{"rule":"ramp","route":"gray","shape":"steps","weight_ppm":300000,)"
                           R"("next":{"at_ms":4070908800000,"weight_ppm":1000000}},)"
                           R"({"rule":"later","route":"gray","shape":"linear","weight_ppm":0,)"
                           R"("next":{"at_ms":4070908800000,"weight_ppm":500000}},)"
                           R"({"rule":"done","route":"gray","shape":"linear","weight_ppm":1000000,"next":null}])") !=
          std::string::npos);
  }

  TEST_CASE("schedule errors name the step and the rule's line; a ramp needs both halves") {
    temp_dir dir;
    const std::pair<const char*, const char*> cases[] = {
        {"split=gray:schedule schedule=2020-01-01T00:00:00Z/10%,+1h/5%", "the weight goes down"},
        {"split=gray:schedule schedule=2020-13-01T00:00:00Z/10%", "is not an RFC 3339 UTC time"},
        {"split=gray:schedule", "a ramp needs both split=ROUTE:schedule and schedule=STEPS"},
        {"split=gray:10 schedule=2020-01-01T00:00:00Z/10%", "a ramp needs both split=ROUTE:schedule and schedule=STEPS"},
        {"split=gray:schedule schedule=2020-01-01T00:00:00Z/10% ramp=smooth", "ramp=smooth is steps or linear"},
    };
    for (const auto& [words, message] : cases) {
      CAPTURE(words);
      nginx_server nginx(dir, "", std::string("location / { grayroute_route client1 client2; grayroute_rule r key=header:X-User-Id ") +
                                      words + "; proxy_pass http://$grayroute_upstream; }",
                         nginx_server::options{{"this 8080", "this 8090"}, 1, false});
      const auto [rc, output] = nginx.test_config();
      CHECK(rc != 0);
      CHECK(output.find(message) != std::string::npos);
      CHECK(output.find("nginx.conf:") != std::string::npos);  // the rule's line
    }
  }

  TEST_CASE("grayroute_pin_cookie: 10,000 anonymous clients split at the weight, and keep their route with the cookie") {
    temp_dir dir;
    nginx_server nginx(dir, "grayroute_pin_cookie name=gr_uid max_age=600 path=/ httponly samesite=lax;", R"(
        location / {
            grayroute_route client1 client2;
            grayroute_rule half key=header:X-User-Id split=gray:50;
            add_header X-Route "$grayroute_route" always;
            proxy_pass http://$grayroute_upstream;
        })");
    const std::string attributes = "; Max-Age=600; Path=/; HttpOnly; SameSite=Lax";
    std::map<std::string, int> seen;
    int gray = 0, clients = 0;
    for (int c = 0; c < 10000; ++c) {
      const http_reply first = http_get(nginx.port(), "/");
      REQUIRE(first.status == 200);
      const std::string cookie = header_value(first, "Set-Cookie");
      const std::string route = header_value(first, "X-Route");
      // Every anonymous client gets a pin, whichever route: gr_uid=<32 hex digits>.
      REQUIRE(cookie.size() == 7 + 32 + attributes.size());
      CHECK(cookie.rfind("gr_uid=", 0) == 0);
      CHECK(cookie.substr(39) == attributes);
      const std::string id = cookie.substr(7, 32);
      CHECK(++seen[id] == 1);
      // The id was the key: its hash put the client where it went.
      CHECK(route == (hashed_into(id, 500000) ? "gray" : "production"));
      gray += route == "gray";
      ++clients;
      if (c % 5 == 0) {  // a later request of this client, with its cookie: the same route, no new pin
        const http_reply later = http_get(nginx.port(), "/api", {{"Cookie", "theme=dark; gr_uid=" + id}});
        CHECK(header_value(later, "X-Route") == route);
        CHECK(header_value(later, "Set-Cookie").empty());
      }
    }
    MESSAGE("anonymous clients routed gray: " << gray << " of 10000");
    // 50% +- 2 points is four standard deviations of 10,000 fair draws.
    CHECK(clients == 10000);
    CHECK(gray > 4800);
    CHECK(gray < 5200);
    // A client with a rollout key of its own gets no pin.
    const http_reply keyed = http_get(nginx.port(), "/", {{"X-User-Id", "user-1"}});
    CHECK(header_value(keyed, "Set-Cookie").empty());
    CHECK(header_value(keyed, "X-Route") == (hashed_into("user-1", 500000) ? "gray" : "production"));
  }

  TEST_CASE("grayroute_pin_cookie errors name the word") {
    temp_dir dir;
    nginx_server nginx(dir, "grayroute_pin_cookie name=gr_uid colour=red;",
                       "location / { grayroute_route client1 client2; proxy_pass http://$grayroute_upstream; }",
                       nginx_server::options{{"this 8080", "this 8090"}, 1, false});
    const auto [rc, output] = nginx.test_config();
    CHECK(rc != 0);
    CHECK(output.find("grayroute_pin_cookie: \"colour=red\": not one of name=") != std::string::npos);
  }
}
