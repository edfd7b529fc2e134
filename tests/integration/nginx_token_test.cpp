// The nginx module's consistent decisions (issue 13): $grayroute_decision between an edge
// and an inner tier with different policies, tokens that must be ignored (forged,
// expired, unknown route, foreign key, untrusted peer), key rotation, and the PROXY
// protocol as the client's source. Real nginx on loopback; tokens made by the library.
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

constexpr const char* kKey1 = "00112233445566778899aabbccddeeff";
constexpr const char* kKey2 = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
constexpr const char* kForeignKey = "ffeeddccbbaa99887766554433221100";

grayroute::decision_keys keys(const std::string& text) { return grayroute::parse_decision_keys(text, "test"); }

std::string token(const std::string& route, std::int64_t expires, const grayroute::decision_keys& k) {
  const auto t = grayroute::encode_decision_token({route, grayroute::route_reason::percentage, "", 0, expires}, k);
  REQUIRE(t);
  return std::string(t->view());
}

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// Backends that echo the token they received: production answers "production <token>".
struct token_setup {
  temp_dir dir;
  int echo_production = free_port();
  int echo_gray = free_port();

  token_setup() { dir.write("decision.key", std::string("# signing key, then the previous one\n") + kKey1 + "\n" + kKey2 + "\n"); }

  std::string http_extra(const std::string& extra = "") const {
    std::ostringstream c;
    c << "grayroute_decision_key_file " << dir.file("decision.key") << " ttl=30s;\n"
      << "grayroute_trusted_proxies 127.0.0.1;\n" << extra << "\n"
      << "upstream echo_production { server 127.0.0.1:" << echo_production << "; }\n"
      << "upstream echo_gray { server 127.0.0.1:" << echo_gray << "; }\n"
      << "server { listen 127.0.0.1:" << echo_production
      << "; location / { return 200 \"production $http_grayroute_decision\\n\"; } }\n"
      << "server { listen 127.0.0.1:" << echo_gray << "; location / { return 200 \"gray $http_grayroute_decision\\n\"; } }\n";
    return c.str();
  }
};

// The inner tier at `/`: its own policy (50% by X-User-Id with another seed), forwarding
// its decision. The edge at `/edge/`: 50% by X-User-Id, sending its token to the inner.
const char* const kTiers = R"(
        location / {
            grayroute_route echo_production echo_gray;
            grayroute_percent 50 key=$http_x_user_id seed=99;
            add_header X-Inner "$grayroute_route $grayroute_reason" always;
            proxy_set_header Grayroute-Decision $grayroute_decision;
            proxy_pass http://$grayroute_upstream;
        }
        location /edge/ {
            grayroute_route client1 client2;
            grayroute_percent 50 key=$http_x_user_id;
            add_header X-Edge "$grayroute_route" always;
            proxy_set_header Grayroute-Decision $grayroute_decision;
            proxy_pass http://127.0.0.1:$server_port/;
        })";

// A raw request after a PROXY v1 line, from `source`; the response headers.
std::string proxied_request(int port, const std::string& proxy_line, const std::string& source = "",
                            const std::string& extra_headers = "") {
  const int fd = connect_loopback(port, std::chrono::seconds(5), source);
  REQUIRE(fd >= 0);
  const std::string request = proxy_line + "GET / HTTP/1.1\r\nHost: x\r\n" + extra_headers + "Connection: close\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string raw;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) raw.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  return raw.substr(0, raw.find("\r\n\r\n"));
}

// A `listen ... proxy_protocol` server whose client source is the PROXY line, then
// X-Forwarded-For; 203.0.113.7 and 2001:db8::7 are listed.
std::string proxy_protocol_server(int port, const std::string& trusted) {
  return "grayroute_list 203.0.113.7 2001:db8::7;\n"
         "grayroute_trusted_proxies " + trusted + ";\n"
         "grayroute_client_ip_headers proxy_protocol X-Forwarded-For;\n"
         "server { listen 127.0.0.1:" + std::to_string(port) + R"( proxy_protocol;
  location / { grayroute_route client1 client2;
               add_header X-Grayroute "$grayroute_route $grayroute_reason $grayroute_client_ip";
               proxy_pass http://$grayroute_upstream; } })";
}

}  // namespace

TEST_SUITE("nginx decision tokens") {
  TEST_CASE("the inner tier follows the edge's decision for every one of 1000 users") {
    token_setup s;
    nginx_server nginx(s.dir, s.http_extra(), kTiers);
    int disagreements_without_token = 0, gray = 0;
    for (int user = 0; user < 1000; ++user) {
      const std::vector<std::pair<std::string, std::string>> id{{"X-User-Id", "user-" + std::to_string(user)}};
      const http_reply chained = http_get(nginx.port(), "/edge/", id);
      REQUIRE(chained.status == 200);
      const std::string edge = header_value(chained.headers, "X-Edge");
      REQUIRE((edge == "production" || edge == "gray"));
      CHECK(header_value(chained.headers, "X-Inner") == edge + " upstream");
      // ... and forwards its own, keeping the edge's rule: the shorthand's "percentage" for
      // gray; none for production, where the split fell through to the default.
      const std::string rule = edge == "gray" ? "percentage" : "";
      CHECK(chained.body.rfind(edge + " gr1:" + edge + ":upstream:" + rule + ":0:", 0) == 0);
      gray += edge == "gray";
      // The inner's own policy alone would often disagree: the token is what makes them agree.
      const http_reply alone = http_get(nginx.port(), "/", id);
      disagreements_without_token += header_value(alone.headers, "X-Inner").rfind(edge + " ", 0) != 0;
    }
    CHECK(gray > 400);
    CHECK(gray < 600);
    CHECK(disagreements_without_token > 300);
  }

  TEST_CASE("a grayroute_rule's name travels in the token: the inner tier keeps it as $grayroute_rule") {
    token_setup s;
    nginx_server nginx(s.dir, s.http_extra(), R"(
        location / {
            grayroute_route echo_production echo_gray;
            add_header X-Inner "$grayroute_route $grayroute_reason $grayroute_rule" always;
            proxy_set_header Grayroute-Decision $grayroute_decision;
            proxy_pass http://$grayroute_upstream;
        }
        location /edge/ {
            grayroute_route client1 client2;
            grayroute_rule canary header:X-Canary-Group=a,b route=gray;
            add_header X-Edge "$grayroute_route $grayroute_reason $grayroute_rule" always;
            proxy_set_header Grayroute-Decision $grayroute_decision;
            proxy_pass http://127.0.0.1:$server_port/;
        })");
    const http_reply canary = http_get(nginx.port(), "/edge/", {{"X-Canary-Group", "b"}});
    CHECK(header_value(canary.headers, "X-Edge") == "gray match canary");
    CHECK(header_value(canary.headers, "X-Inner") == "gray upstream canary");
    CHECK(canary.body.rfind("gray gr1:gray:upstream:canary:0:", 0) == 0);
    const http_reply other = http_get(nginx.port(), "/edge/", {{"X-Canary-Group", "c"}});
    CHECK(header_value(other.headers, "X-Edge") == "production default ");
    CHECK(header_value(other.headers, "X-Inner") == "production upstream");  // relayed by the edge: trimmed
    CHECK(other.body.rfind("production gr1:production:upstream::0:", 0) == 0);
  }

  TEST_CASE("forged, expired, foreign, unknown-route, repeated and untrusted tokens are ignored and replaced") {
    token_setup s;
    nginx_server nginx(s.dir, s.http_extra(), kTiers);
    const auto both = keys(std::string(kKey1) + "\n" + kKey2);
    auto ask = [&](const std::vector<std::pair<std::string, std::string>>& headers, const std::string& source = "") {
      return http_get(nginx.port(), "/", headers, std::chrono::seconds(5), source);
    };

    const std::string genuine = token("gray", now() + 25, both);  // not what this tier would emit (ttl 30 s)
    const http_reply honoured = ask({{"Grayroute-Decision", genuine}});
    CHECK(header_value(honoured.headers, "X-Inner") == "gray upstream");
    CHECK(honoured.body.rfind("gray gr1:gray:upstream::0:", 0) == 0);

    std::string forged = genuine;
    forged.back() = forged.back() == '0' ? '1' : '0';
    std::string promoted = genuine;  // the route changed, the tag kept
    promoted.replace(4, 4, "production");
    const std::vector<std::pair<std::string, std::string>> ignored[] = {
        {{"Grayroute-Decision", forged}},
        {{"Grayroute-Decision", promoted}},
        {{"Grayroute-Decision", token("gray", now() - 1, both)}},                   // expired
        {{"Grayroute-Decision", token("gray", now() + 30, keys(kForeignKey))}},     // another key
        {{"Grayroute-Decision", token("beta", now() + 30, both)}},                  // a route this tier lacks
        {{"Grayroute-Decision", genuine}, {"Grayroute-Decision", genuine}},         // repeated
        {{"Grayroute-Decision", "gray"}},
    };
    for (const auto& headers : ignored) {
      CAPTURE(headers.front().second);
      const http_reply r = ask(headers);
      CHECK(header_value(r.headers, "X-Inner") == "production default");
      // proxy_set_header replaced the client's token by this tier's own.
      CHECK(r.body.rfind("production gr1:production:default::0:", 0) == 0);
      CHECK(r.body.find(headers.front().second + "\n") == std::string::npos);
    }
    // A genuine token from a peer that is not a trusted proxy (127.0.0.5) is not believed:
    // the inner's own policy decides (that address falls in its 50%), and says so upstream.
    const http_reply untrusted = ask({{"Grayroute-Decision", genuine}}, "127.0.0.5");
    CHECK(header_value(untrusted.headers, "X-Inner") == "gray percentage");
    CHECK(untrusted.body.rfind("gray gr1:gray:percentage:percentage:0:", 0) == 0);
    CHECK(untrusted.body.find(genuine) == std::string::npos);
    const http_reply untrusted_production = ask({{"Grayroute-Decision", token("production", now() + 30, both)}}, "127.0.0.5");
    CHECK(header_value(untrusted_production.headers, "X-Inner") == "gray percentage");
  }

  TEST_CASE("key rotation: tokens of either key in the file are honoured, the first key signs") {
    token_setup s;
    nginx_server nginx(s.dir, s.http_extra(), kTiers);
    const http_reply by_previous = http_get(nginx.port(), "/", {{"Grayroute-Decision", token("gray", now() + 30, keys(kKey2))}});
    CHECK(header_value(by_previous.headers, "X-Inner") == "gray upstream");
    const std::string emitted = by_previous.body.substr(5, by_previous.body.size() - 6);  // "gray <token>\n"
    const grayroute::route_table routes({"production", "gray"});
    CHECK(grayroute::verify_decision_token(emitted, keys(kKey1), routes, now()).status == grayroute::token_status::valid);
    CHECK(grayroute::verify_decision_token(emitted, keys(kKey2), routes, now()).status == grayroute::token_status::bad_mac);
    // Past the ttl=30s the emitted token is dead.
    CHECK(grayroute::verify_decision_token(emitted, keys(kKey1), routes, now() + 31).status == grayroute::token_status::expired);
  }

  TEST_CASE("without a key file no token is read or sent") {
    temp_dir dir;
    const int echo = free_port();
    nginx_server nginx(dir,
                       "grayroute_trusted_proxies 127.0.0.1;\nupstream echo { server 127.0.0.1:" + std::to_string(echo) +
                           "; }\nserver { listen 127.0.0.1:" + std::to_string(echo) +
                           "; location / { return 200 \"[$http_grayroute_decision]\\n\"; } }",
                       R"(location / { grayroute_route client1 echo; add_header X-Inner "$grayroute_route $grayroute_reason";
                                       proxy_set_header Grayroute-Decision $grayroute_decision; proxy_pass http://$grayroute_upstream; })");
    const http_reply r = http_get(nginx.port(), "/", {{"Grayroute-Decision", token("gray", now() + 30, keys(kKey1))}});
    CHECK(header_value(r.headers, "X-Inner") == "production default");
    CHECK(r.body == "this 8080\n");
  }

  TEST_CASE("nginx -t names the key file and line, never the key") {
    token_setup s;
    s.dir.write("decision.key", std::string(kKey1) + "\n0123456789abcdef0123456789abcdeZ\n");
    nginx_server::options o;
    o.start = false;
    nginx_server nginx(s.dir, s.http_extra(), kTiers, o);
    const auto [status, out] = nginx.test_config();
    CHECK(status != 0);
    CHECK(out.find("decision.key\" line 2") != std::string::npos);
    CHECK(out.find("nginx.conf:") != std::string::npos);
    CHECK(out.find(kKey1) == std::string::npos);
    CHECK(out.find("0123456789abcdef") == std::string::npos);
  }
}

TEST_SUITE("nginx PROXY protocol source") {
  TEST_CASE("the PROXY source of a trusted balancer is the client; elsewhere the peer is") {
    temp_dir dir;
    const int port = free_port();
    nginx_server nginx(dir, proxy_protocol_server(port, "127.0.0.1"), "");
    REQUIRE(wait_for_port(port));
    auto seen = [&](const std::string& line, const std::string& source = "", const std::string& headers = "") {
      return header_value(proxied_request(port, line, source, headers), "X-Grayroute");
    };
    CHECK(seen("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n") == "gray list 203.0.113.7");
    CHECK(seen("PROXY TCP6 2001:db8::7 ::1 40000 80\r\n") == "gray list 2001:db8::7");
    CHECK(seen("PROXY TCP4 198.51.100.1 127.0.0.1 40000 80\r\n") == "production default 198.51.100.1");
    // From a peer that is not a trusted balancer the PROXY line is not believed.
    CHECK(seen("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n", "127.0.0.9") == "production default 127.0.0.9");
    // The walk starts at the PROXY source: an untrusted client's X-Forwarded-For is not believed...
    CHECK(seen("PROXY TCP4 198.51.100.1 127.0.0.1 40000 80\r\n", "", "X-Forwarded-For: 203.0.113.7\r\n") ==
          "production default 198.51.100.1");
    // ... UNKNOWN carries no source: the peer is used.
    CHECK(seen("PROXY UNKNOWN\r\n") == "production default 127.0.0.1");
  }

  TEST_CASE("a PROXY source behind a trusted balancer may itself be a trusted proxy") {
    temp_dir dir;
    const int port = free_port();
    nginx_server nginx(dir, proxy_protocol_server(port, "127.0.0.1 10.0.0.0/8"), "");
    REQUIRE(wait_for_port(port));
    const std::string headers =
        proxied_request(port, "PROXY TCP4 10.1.2.3 127.0.0.1 40000 80\r\n", "", "X-Forwarded-For: 203.0.113.7\r\n");
    CHECK(header_value(headers, "X-Grayroute") == "gray list 203.0.113.7");
  }

  TEST_CASE("proxy_protocol must come first in grayroute_client_ip_headers") {
    temp_dir dir;
    nginx_server::options o;
    o.start = false;
    nginx_server nginx(dir, "grayroute_client_ip_headers X-Real-IP proxy_protocol;", "", o);
    const auto [status, out] = nginx.test_config();
    CHECK(status != 0);
    CHECK(out.find("proxy_protocol must come first") != std::string::npos);
  }
}
