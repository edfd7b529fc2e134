// Issue 13 across adapters: an nginx edge deciding and a grayroute-proxy inner tier
// obeying its $grayroute_decision token. Real nginx (edge, and the backends: servers that
// echo the token they got) and a real grayroute-proxy, all on loopback; the same key
// file for both, the inner trusting 127.0.0.1 and having another policy.
#include <doctest/doctest.h>

#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include <grayroute/decision_token.hpp>

#include "../support/nginx.hpp"
#include "../support/process.hpp"

using namespace grayroute::test;

namespace {

constexpr const char* kKey = "00112233445566778899aabbccddeeff";

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string signed_token(const std::string& route, const char* key) {
  const auto k = grayroute::parse_decision_keys(key, "test");
  const auto t = grayroute::encode_decision_token({route, grayroute::route_reason::header, "forged", 0, now() + 30}, k);
  REQUIRE(t);
  return std::string(t->view());
}

// "gray; reason=upstream" -> "gray".
std::string route_of(const std::string& label) { return label.substr(0, label.find(';')); }

struct tiers {
  temp_dir dir;
  int echo_production = free_port();
  int echo_gray = free_port();
  int inner_port = free_port();
  process inner;

  tiers() {
    dir.write("decision.key", std::string("# the edge's and the inner's key\n") + kKey + "\n");
    // The inner tier's own policy differs from the edge's: 10% by X-User-Id, seed 7.
    inner = process({GRAYROUTE_PROXY_BIN, "--listen", "127.0.0.1:" + std::to_string(inner_port), "--production",
                     "127.0.0.1:" + std::to_string(echo_production), "--gray", "127.0.0.1:" + std::to_string(echo_gray),
                     "--threads", "1", "--percent", "10", "--percent-key", "X-User-Id", "--percent-seed", "7",
                     "--trusted-proxy", "127.0.0.1", "--decision-key-file", dir.file("decision.key"), "--access-log", "off"},
                    dir.file("inner.log"));
    if (!wait_for_port(inner_port)) throw std::runtime_error("grayroute-proxy did not start: " + inner.log());
  }

  // The edge at /: 50% by X-User-Id, its token sent to the inner proxy for either route.
  // The backends answer "<route> <token they got>".
  std::string http_extra() const {
    std::ostringstream c;
    c << "grayroute_decision_key_file " << dir.file("decision.key") << ";\n"
      << "server { listen 127.0.0.1:" << echo_production
      << "; location / { return 200 \"production $http_grayroute_decision\\n\"; } }\n"
      << "server { listen 127.0.0.1:" << echo_gray << "; location / { return 200 \"gray $http_grayroute_decision\\n\"; } }\n";
    return c.str();
  }
  std::string edge() const {
    return R"(
        location / {
            grayroute_route client1 client2;  # routing on; both routes go to the inner tier
            grayroute_percent 50 key=$http_x_user_id;
            add_header X-Edge "$grayroute_route" always;
            proxy_set_header Grayroute-Decision $grayroute_decision;
            proxy_pass http://127.0.0.1:)" + std::to_string(inner_port) + R"(;
        })";
  }
};

}  // namespace

TEST_SUITE("nginx edge, proxy inner") {
  TEST_CASE("for 1,000 users the proxy inner tier serves the route the nginx edge chose, on every request") {
    tiers t;
    nginx_server nginx(t.dir, t.http_extra(), t.edge());
    int gray = 0, own_policy_differs = 0;
    for (int user = 0; user < 1000; ++user) {
      const std::string id = "user-" + std::to_string(user);
      for (const char* path : {"/page", "/api/items"}) {  // the page, then its API call
        const http_reply r = http_get(nginx.port(), path, {{"X-User-Id", id}});
        REQUIRE(r.status == 200);
        const std::string edge = header_value(r, "X-Edge");
        REQUIRE((edge == "production" || edge == "gray"));
        CHECK(header_value(r, "X-Grayroute").rfind(edge + "; reason=upstream", 0) == 0);  // the edge's rule kept after it
        CHECK(r.body.rfind(edge + " gr1:" + edge + ":", 0) == 0);  // the backend seen, and the token relayed
        gray += edge == "gray";
      }
      // Without the edge's token the inner's own 10% decides: often not the edge's route.
      const http_reply direct = http_get(t.inner_port, "/page", {{"X-User-Id", id}});
      own_policy_differs += route_of(header_value(direct, "X-Grayroute")) != header_value(http_get(nginx.port(), "/page", {{"X-User-Id", id}}), "X-Edge");
    }
    CHECK(gray > 800);  // ~50% of 2,000 requests
    CHECK(gray < 1200);
    CHECK(own_policy_differs > 300);
  }

  TEST_CASE("a token the client sends to the edge is not what the inner tier obeys") {
    tiers t;
    nginx_server nginx(t.dir, t.http_extra(), t.edge());
    const std::string genuine_gray = signed_token("gray", kKey), genuine_production = signed_token("production", kKey);
    std::string forged = genuine_gray;
    forged.back() = forged.back() == '0' ? '1' : '0';
    int checked = 0;
    for (int user = 0; user < 200; ++user) {
      const std::string id = "user-" + std::to_string(user);
      const std::string edge = header_value(http_get(nginx.port(), "/page", {{"X-User-Id", id}}), "X-Edge");
      REQUIRE((edge == "production" || edge == "gray"));
      // The opposite route, signed with the right key (the edge does not trust its client,
      // and replaces the header), and a forged one.
      for (const std::string& sent : {edge == "gray" ? genuine_production : genuine_gray, forged}) {
        const http_reply r = http_get(nginx.port(), "/page", {{"X-User-Id", id}, {"Grayroute-Decision", sent}});
        REQUIRE(r.status == 200);
        CHECK(header_value(r, "X-Edge") == edge);
        CHECK(header_value(r, "X-Grayroute").rfind(edge + "; reason=upstream", 0) == 0);  // the edge's rule kept after it
        CHECK(r.body.rfind(edge + " gr1:" + edge + ":", 0) == 0);
        CHECK(r.body.find(sent) == std::string::npos);
        ++checked;
      }
    }
    CHECK(checked == 400);
  }
}
