// Issue 13 end to end, with real grayroute-proxy and grayroute-backend processes on
// loopback: two proxy tiers chained (edge -> inner -> backends) agreeing through decision
// tokens, tokens a client forges or replays ignored and stripped, key rotation, pinning
// of anonymous users, a ramp on the wall clock, and the PROXY protocol on the listener.
#include <doctest/doctest.h>

#include <ctime>
#include <map>
#include <string>
#include <vector>

#include <grayroute/decision_token.hpp>
#include <grayroute/rollout.hpp>

#include "../support/proxy_fixture.hpp"
#include "../support/proxy_protocol_bytes.hpp"

using namespace grayroute::test;

namespace {

constexpr const char* kKeyOld = "000102030405060708090a0b0c0d0e0f";
constexpr const char* kKeyNew = "f0e0d0c0b0a090807060504030201000";

/// The lines of header `name` the backend's /echo saw (its body: "Name: value\n" each).
std::string echoed_line(const std::string& body, const std::string& name) {
  std::string out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t end = body.find('\n', pos);
    const std::string line = body.substr(pos, end - pos);
    if (line.size() > name.size() && ::strncasecmp(line.c_str(), name.c_str(), name.size()) == 0 && line[name.size()] == ':') {
      out += line + "\n";
    }
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}

/// The value of the first such line ("" when the backend saw none).
std::string echoed(const std::string& body, const std::string& name) {
  const std::string line = echoed_line(body, name);
  return line.empty() ? "" : line.substr(name.size() + 2, line.find('\n') - name.size() - 2);
}

std::string route_of(const http_reply& r) {
  const std::string label = header(r.headers, "X-Grayroute");
  return label.substr(0, label.find(';'));
}

std::string token(const char* key, const char* route, std::int64_t expires, const char* rule = "forged") {
  const auto keys = grayroute::parse_decision_keys(key, "test");
  return std::string(
      grayroute::encode_decision_token({route, grayroute::route_reason::header, rule, 1, expires}, keys)->view());
}

/// How many times `needle` stands in `text`: a log line is checked by its count rising,
/// as several cases log the same words.
std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

http_reply get(http_connection& c, const std::string& path, const std::vector<std::pair<std::string, std::string>>& h) {
  if (!c.send(get_request(path, h))) return {};
  return c.read_response();
}

/// Backends, an inner proxy in front of them, and an edge proxy whose both routes lead
/// to the inner one: the edge decides, the inner serves.
struct chain {
  chain(const temp_dir& dir, const std::vector<std::string>& inner_args, const std::vector<std::string>& edge_args)
      : production(dir, "production"),
        gray(dir, "gray"),
        inner(dir, production.port(), gray.port(), inner_args),
        edge(dir, inner.port(), inner.port(), edge_args) {}
  backend production, gray;
  proxy inner, edge;
};

std::vector<std::string> join(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_SUITE("proxy consistency") {
  TEST_CASE("two tiers: for 1,000 users the inner tier serves the route the edge chose, on every request") {
    temp_dir dir;
    dir.write("k", std::string(kKeyOld) + "\n");
    const std::vector<std::string> edge = {"--percent", "50", "--percent-key", "X-User-Id", "--decision-key-file",
                                           dir.file("k"), "--access-log", "off"};
    // The inner tier's own policy differs: 10% with another seed.
    const std::vector<std::string> inner = {"--percent", "10", "--percent-key", "X-User-Id", "--percent-seed", "7",
                                            "--access-log", "off"};
    chain trusting(dir, join(inner, {"--trusted-proxy", "127.0.0.1", "--decision-key-file", dir.file("k")}), edge);
    http_connection c(trusting.edge.port());
    std::map<std::string, int> routes;
    for (int u = 0; u < 1000; ++u) {
      const std::string user = "user-" + std::to_string(u);
      for (const char* path : {"/echo", "/echo?api=1"}) {  // the page, then its API call
        const http_reply r = get(c, path, {{"X-User-Id", user}});
        REQUIRE(r.status == 200);
        CHECK(header(r.headers, "X-Backend") == route_of(r));
        // The backend got the edge's token, as the inner tier obeyed it.
        const std::string sent = echoed(r.body, "Grayroute-Decision");
        CHECK(sent.rfind("gr1:" + route_of(r) + ":", 0) == 0);
        ++routes[route_of(r)];
      }
    }
    CHECK(routes["gray"] > 800);  // ~50% of 2,000
    CHECK(routes["production"] > 800);

    // Control: an inner tier that does not trust the edge decides by its own 10% policy,
    // so the same check fails for many users.
    chain distrusting(dir, join(inner, {"--decision-key-file", dir.file("k")}), edge);
    http_connection d(distrusting.edge.port());
    int differ = 0;
    for (int u = 0; u < 200; ++u) {
      const http_reply r = get(d, "/echo", {{"X-User-Id", "user-" + std::to_string(u)}});
      REQUIRE(r.status == 200);
      differ += header(r.headers, "X-Backend") != route_of(r) ? 1 : 0;
    }
    CHECK(differ > 40);
  }

  TEST_CASE("forged, expired, unknown-route and untrusted-peer tokens are ignored and stripped") {
    temp_dir dir;
    dir.write("k", std::string(kKeyOld) + "\n");
    // One tier in front of the backends, trusting 127.0.0.1 only; everything is production
    // unless a token is obeyed.
    proxy_setup s(dir, {"--trusted-proxy", "127.0.0.1", "--decision-key-file", dir.file("k")});
    const std::string forged_tag = [] {
      std::string t = token(kKeyOld, "gray", now() + 60);
      t.back() = t.back() == '0' ? '1' : '0';
      return t;
    }();
    struct row {
      const char* name;
      std::string value;
      const char* from;  // the client's source address
      const char* log;
    };
    const row rows[] = {
        {"forged tag", forged_tag, "127.0.0.1", "token_ignored=bad_mac"},
        {"signed with a key the tier does not hold", token(kKeyNew, "gray", now() + 60), "127.0.0.1", "token_ignored=bad_mac"},
        {"expired", token(kKeyOld, "gray", now() - 1), "127.0.0.1", "token_ignored=expired"},
        {"unknown route", token(kKeyOld, "beta", now() + 60), "127.0.0.1", "token_ignored=unknown_route"},
        {"valid, but from an untrusted peer", token(kKeyOld, "gray", now() + 60), "127.0.0.2", "token_ignored=untrusted_peer"},
        {"not a token", "gray", "127.0.0.1", "token_ignored=malformed"},
    };
    for (const row& r : rows) {
      const std::string name = r.name;
      CAPTURE(name);
      const std::size_t logged = occurrences(s.front.log(), r.log);
      const http_reply reply = http_get(s.port(), "/echo", {{"Grayroute-Decision", r.value}}, std::chrono::seconds(5), r.from);
      REQUIRE(reply.status == 200);
      CHECK(header(reply.headers, "X-Backend") == "production");
      CHECK(header(reply.headers, "X-Grayroute") == "production; reason=default");
      // The backend sees only the tier's own token, never the client's.
      const std::string seen = echoed_line(reply.body, "Grayroute-Decision");
      CHECK(seen.find(r.value) == std::string::npos);
      const std::string own = echoed(reply.body, "Grayroute-Decision");
      const auto v = grayroute::verify_decision_token(own, grayroute::parse_decision_keys(kKeyOld, "k"),
                                                      grayroute::route_table(), now());
      CHECK(v.status == grayroute::token_status::valid);
      CHECK(v.claims.reason == grayroute::route_reason::default_route);
      CHECK(eventually([&] { return occurrences(s.front.log(), r.log) == logged + 1; }));
    }
    // The genuine article from a trusted peer is obeyed, its rule kept.
    const http_reply ok = http_get(s.port(), "/echo", {{"Grayroute-Decision", token(kKeyOld, "gray", now() + 60, "canary")}});
    CHECK(header(ok.headers, "X-Backend") == "gray");
    CHECK(header(ok.headers, "X-Grayroute") == "gray; reason=upstream; rule=canary");

    // A tier without keys strips a token and sends none.
    proxy_setup keyless(dir, {"--trusted-proxy", "127.0.0.1"});
    const http_reply stripped = http_get(keyless.port(), "/echo", {{"Grayroute-Decision", token(kKeyOld, "gray", now() + 60)}});
    CHECK(header(stripped.headers, "X-Backend") == "production");
    CHECK(echoed_line(stripped.body, "Grayroute-Decision").empty());
  }

  TEST_CASE("key rotation: an edge signing with the new key and one still on the old are both obeyed") {
    temp_dir dir;
    dir.write("new", std::string(kKeyNew) + "\n");
    dir.write("old", std::string(kKeyOld) + "\n");
    const std::vector<std::string> inner = {"--trusted-proxy", "127.0.0.1", "--decision-key-file", dir.file("new"),
                                            "--decision-key-file", dir.file("old")};
    const std::vector<std::string> force = {"--force-header", "X-Canary"};
    for (const char* edge_key : {"new", "old"}) {
      CAPTURE(edge_key);
      chain c(dir, inner, join(force, {"--decision-key-file", dir.file(edge_key)}));
      const http_reply r = http_get(c.edge.port(), "/", {{"X-Canary", "always"}});
      CHECK(header(r.headers, "X-Backend") == "gray");
    }
    // Negative control: an inner tier that holds only the old key ignores the new one's tokens.
    chain stale(dir, {"--trusted-proxy", "127.0.0.1", "--decision-key-file", dir.file("old")},
                join(force, {"--decision-key-file", dir.file("new")}));
    const http_reply r = http_get(stale.edge.port(), "/", {{"X-Canary", "always"}});
    CHECK(header(r.headers, "X-Backend") == "production");
    CHECK(eventually([&] { return stale.inner.log().find("token_ignored=bad_mac") != std::string::npos; }));
  }

  TEST_CASE("pinning: 10,000 anonymous clients split at the weight, and keep their route with the cookie") {
    temp_dir dir;
    proxy_setup s(dir, {"--percent", "5", "--pin-cookie", "name=gr_uid max_age=3600 path=/ samesite=lax",
                        "--access-log", "off"});
    http_connection c(s.port());
    std::vector<std::pair<std::string, std::string>> first;  // cookie value, backend
    first.reserve(10000);
    int gray = 0;
    for (int i = 0; i < 10000; ++i) {
      const http_reply r = get(c, "/", {});
      REQUIRE(r.status == 200);
      const std::string cookie = header(r.headers, "Set-Cookie");
      REQUIRE(cookie.size() > 7);
      CHECK(cookie.find("; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax") != std::string::npos);
      first.emplace_back(cookie.substr(0, cookie.find(';')), header(r.headers, "X-Backend"));
      gray += first.back().second == "gray" ? 1 : 0;
    }
    const double share = 100.0 * gray / 10000;
    MESSAGE("pinned share on gray: " << share << "% (weight 5%)");
    CHECK(share >= 4.0);
    CHECK(share <= 6.0);
    int same = 0;
    for (const auto& [cookie, backend] : first) {
      const http_reply r = get(c, "/", {{"Cookie", "theme=dark; " + cookie}});
      REQUIRE(r.status == 200);
      CHECK(header(r.headers, "Set-Cookie").empty());  // pinned already: no new id
      same += header(r.headers, "X-Backend") == backend ? 1 : 0;
    }
    CHECK(same == 10000);
  }

  TEST_CASE("a ramp of a few seconds: the weight follows the wall clock and users only move to gray") {
    temp_dir dir;
    // Starts a second from now, 0.0001% -> 30% -> 100%, three seconds a step (a round of
    // requests takes far less, so some rounds fall within each step even under ASan).
    const std::time_t start = std::time(nullptr) + 1;
    std::tm tm{};
    gmtime_r(&start, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const std::string schedule = std::string(when) + " 0.0001%, +3s 30%, +3s 100%";
    proxy_setup s(dir, {"--percent-key", "X-User-Id", "--percent-schedule", schedule, "--access-log", "off"});
    http_connection c(s.port());
    auto weight = [&] {
      const http_reply r = get(c, "/-/grayroute/health", {});
      const std::size_t at = r.body.find("\"weight_ppm\":");
      return at == std::string::npos ? -1L : std::atol(r.body.c_str() + at + 13);
    };
    std::vector<bool> was_gray(200, false);
    std::map<long, int> rounds;  // weight -> rounds checked at it
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    long w = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      const long before = weight();
      std::vector<bool> gray(was_gray.size());
      for (std::size_t u = 0; u < gray.size(); ++u) {
        const std::string user = "ramp-user-" + std::to_string(u);
        gray[u] = header(get(c, "/", {{"X-User-Id", user}}).headers, "X-Backend") == "gray";
      }
      w = weight();
      if (before != w) continue;  // a step landed during the round: look again
      ++rounds[w];
      for (std::size_t u = 0; u < gray.size(); ++u) {
        const std::string user = "ramp-user-" + std::to_string(u);
        // Exactly the library's sticky buckets at that weight, and never back to production.
        CHECK(gray[u] == (grayroute::percentage_rollout::fine_bucket(user, 0) < static_cast<std::uint32_t>(w)));
        CHECK_FALSE((was_gray[u] && !gray[u]));
        was_gray[u] = gray[u];
      }
      if (w == 1000000) break;
    }
    CHECK(w == 1000000);
    CHECK(rounds.count(1) == 1);       // the first step (1 ppm) was seen
    CHECK(rounds.count(300000) == 1);  // and the middle one
    for (bool g : was_gray) CHECK(g);
  }
}

namespace {

long connections(const backend& b) { return std::atol(http_get(b.port(), "/-/connections").body.c_str()); }

}  // namespace

TEST_SUITE("proxy consistency") {
  TEST_CASE("PROXY protocol: only the balancer may name the client; malformed headers never reach an upstream") {
    temp_dir dir;
    dir.write("k", std::string(kKeyOld) + "\n");
    proxy_setup s(dir, {"--proxy-protocol-from", "127.0.0.1", "--gray-list", "203.0.113.0/24", "--gray-list",
                        "2001:db8::/32", "--client-timeout", "1000", "--trusted-proxy", "127.0.0.1",
                        "--decision-key-file", dir.file("k")});
    const std::string get_echo = get_request("/echo");
    // v2 over IPv4: 198.51.100.1:4000 -> 10.0.0.1:80.
    const std::string v2_inet = proxy_v2(1, 0x11, bytes({198, 51, 100, 1, 10, 0, 0, 1, 0x0f, 0xa0, 0, 80}));
    // v2 over IPv6: 2001:db8::9 -> 2001:db8::1, with an AUTHORITY TLV (0x02) and a NOOP (0x04).
    const std::string v6_addresses = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
                                            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                                            0x0f, 0xa0, 0, 80});
    const std::string v2_inet6 = proxy_v2(1, 0x21, v6_addresses, bytes({2, 0, 9}) + "a.example" + bytes({4, 0, 0}));

    SUBCASE("refusals: nothing reaches an upstream") {
      const long production_before = connections(s.production), gray_before = connections(s.gray);
      struct row {
        const char* name;
        std::string bytes;
        const char* from;
        const char* log;
      };
      const row rows[] = {
          {"no header from the balancer", get_echo, "", "no PROXY header from a --proxy-protocol-from peer"},
          {"a v1 header from elsewhere", "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" + get_echo, "127.0.0.2",
           "PROXY header from a peer not in --proxy-protocol-from"},
          {"a v2 header from elsewhere", v2_inet + get_echo, "127.0.0.2", "PROXY header from a peer not in"},
          {"v1 oversized (no CRLF in 107 bytes)", "PROXY TCP4 " + std::string(120, '1') + "\r\n" + get_echo, "",
           "malformed PROXY header"},
          {"v1 bad address", "PROXY TCP4 203.0.113.700 127.0.0.1 5555 80\r\n" + get_echo, "", "malformed PROXY header"},
          {"v2 bad command", proxy_v2(3, 0x11, std::string(12, '\1')) + get_echo, "", "malformed PROXY header"},
          {"v2 TLV past the end", proxy_v2(1, 0x11, std::string(12, '\1'), bytes({4, 0, 9, 0})) + get_echo, "",
           "malformed PROXY header"},
          {"truncated, then silence", "PROXY TCP4 203.0.113.7", "", "PROXY header not complete within --client-timeout"},
      };
      for (const row& r : rows) {
        const std::string name = r.name;
        CAPTURE(name);
        const std::size_t logged = occurrences(s.front.log(), r.log);
        http_connection c(s.port(), r.from);
        REQUIRE(c.connected());
        c.send(r.bytes);
        CHECK(c.closed_by_peer());
        CHECK(eventually([&] { return occurrences(s.front.log(), r.log) == logged + 1; }));
      }
      CHECK(connections(s.production) == production_before + 1);  // only our own count requests
      CHECK(connections(s.gray) == gray_before + 1);
    }

    SUBCASE("the balancer's v1, v2, IPv6 and LOCAL headers") {
      struct row {
        const char* name;
        std::string preface;
        const char* client;
        const char* backend;
      };
      const row rows[] = {
          {"v1 TCP4", "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n", "203.0.113.7", "gray"},
          {"v1 TCP6", "PROXY TCP6 2001:db8::7 ::1 5555 80\r\n", "2001:db8::7", "gray"},
          {"v1 UNKNOWN", "PROXY UNKNOWN\r\n", "127.0.0.1", "production"},
          {"v2 AF_INET", v2_inet, "198.51.100.1", "production"},
          {"v2 AF_INET6 with TLVs", v2_inet6, "2001:db8::9", "gray"},
          {"v2 LOCAL", proxy_v2(0, 0x00, ""), "127.0.0.1", "production"},
      };
      for (const row& r : rows) {
        const std::string name = r.name;
        CAPTURE(name);
        http_connection c(s.port());
        c.send(r.preface + get_echo);
        const http_reply reply = c.read_response();
        REQUIRE(reply.status == 200);
        CHECK(header(reply.headers, "X-Backend") == r.backend);
        CHECK(echoed(reply.body, "X-Real-IP") == r.client);
        CHECK(echoed(reply.body, "X-Forwarded-For") == r.client);
        // Keep-alive after the preface: the next request needs no header.
        c.send(get_echo);
        CHECK(echoed(c.read_response().body, "X-Real-IP") == r.client);
      }
      // Plain HTTP from a peer that is not a balancer is served as always.
      const http_reply plain = http_get(s.port(), "/echo", {}, std::chrono::seconds(5), "127.0.0.2");
      CHECK(plain.status == 200);
      CHECK(echoed(plain.body, "X-Real-IP") == "127.0.0.2");
    }

    SUBCASE("the PROXY source, not the balancer, is the peer a decision token must come from") {
      const std::string t = token(kKeyOld, "gray", now() + 60);
      for (const char* source : {"198.51.100.1", "127.0.0.1"}) {
        CAPTURE(source);
        http_connection c(s.port());
        c.send(std::string("PROXY TCP4 ") + source + " 127.0.0.1 5555 80\r\n" +
               get_request("/echo", {{"Grayroute-Decision", t}}));
        const http_reply reply = c.read_response();
        const bool trusted = std::string(source) == "127.0.0.1";
        CHECK(header(reply.headers, "X-Grayroute") == (trusted ? "gray; reason=upstream; rule=forged" : "production; reason=default"));
      }
    }
  }
}

TEST_SUITE("proxy consistency") {
  TEST_CASE("the policy file's keys: [decision], pin_cookie, a rule's schedule; errors at file:line:column") {
    temp_dir dir;
    backend production(dir, "production"), gray(dir, "gray");
    dir.write("decision.key", std::string(kKeyNew) + "\n");
    const int port = free_port();
    const std::string head = "listen = \"127.0.0.1:" + std::to_string(port) + "\"\n" +
                             "pin_cookie = { name = \"gr_uid\", max_age = \"1h\", samesite = \"strict\" }\n"
                             "[routes]\nproduction = \"127.0.0.1:" + std::to_string(production.port()) + "\"\n" +
                             "gray = \"127.0.0.1:" + std::to_string(gray.port()) + "\"\n" +
                             "[decision]\nkey_files = \"decision.key\"\nttl = \"2m\"\npolicy_version = 9\n";
    // A ramp that reached 100% long ago: everyone is gray by the schedule's rule.
    const std::string rule = "[[rules]]\nname = \"ramp\"\nsplit = { gray = \"schedule\" }\n"
                             "schedule = \"2020-01-01T00:00:00Z 1%, +1h 100%\"\nramp = \"linear\"\n";
    dir.write("policy.toml", head + rule);
    {
      config_proxy proxy(dir, dir.file("policy.toml"), port);
      const http_reply anonymous = http_get(port, "/echo");
      CHECK(header(anonymous.headers, "X-Grayroute") == "gray; reason=percentage; rule=ramp");
      const std::string cookie = header(anonymous.headers, "Set-Cookie");
      CHECK(cookie.rfind("gr_uid=", 0) == 0);
      CHECK(cookie.find("Max-Age=3600") != std::string::npos);
      CHECK(cookie.find("SameSite=Strict") != std::string::npos);
      // The token it signs for the tier behind it: its route and rule, valid under the file's key.
      const std::string token = echoed(anonymous.body, "Grayroute-Decision");  // the claims view it
      const auto v = grayroute::verify_decision_token(token,
                                                      grayroute::parse_decision_keys(kKeyNew, "test"),
                                                      grayroute::route_table({"production", "gray"}), now());
      CHECK(v.status == grayroute::token_status::valid);
      CHECK(v.claims.rule == "ramp");
      CHECK(v.claims.policy_version == 9);
      const std::string health = http_get(port, "/-/grayroute/health").body;
      CHECK(health.find("\"ramps\":[{\"rule\":\"ramp\",\"route\":\"gray\",\"shape\":\"linear\",\"weight_ppm\":1000000,"
                        "\"weight\":\"100%\",\"next\":null}]") != std::string::npos);
      CHECK(health.find("\"decision_tokens\":{\"header\":\"Grayroute-Decision\",\"keys\":1,\"ttl_s\":120}") !=
            std::string::npos);
    }
    // A bad ramp word: refused at start-up with its place.
    std::string bad = head + rule;
    const std::size_t at = bad.find("\"linear\"");
    bad.replace(at, 8, "\"curvy\"");
    std::size_t line = 1;
    for (std::size_t i = 0; i < at; ++i) line += bad[i] == '\n';
    const std::size_t column = at - bad.rfind('\n', at);
    dir.write("bad.toml", bad);
    process p({GRAYROUTE_PROXY_BIN, "--config", dir.file("bad.toml")}, dir.file("bad.log"));
    CHECK(eventually([&] { return !p.running(); }));  // refused: it exits by itself
    CHECK(p.log().find(dir.file("bad.toml") + ":" + std::to_string(line) + ":" + std::to_string(column) +
                       ": rule 1: ramp \"curvy\" is steps or linear") != std::string::npos);
  }
}
