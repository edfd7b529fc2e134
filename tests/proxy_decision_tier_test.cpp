// grayroute-proxy's issue-13 steps without sockets: decision tokens between tiers
// (examples/asio_proxy/decision_tier.hpp), pinning, the ramp, and the PROXY-protocol
// preface (proxy_protocol_accept.hpp) over bytes as they arrive.
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <string>

#include <boost/beast/http/message.hpp>

#include <grayroute/policy_syntax.hpp>

#include "../examples/asio_proxy/decision_tier.hpp"
#include "../examples/asio_proxy/proxy_protocol_accept.hpp"
#include "support/process.hpp"
#include "support/proxy_protocol_bytes.hpp"

namespace http = boost::beast::http;
using namespace grayroute_proxy;

namespace {

constexpr const char* kKeyA = "000102030405060708090a0b0c0d0e0f";
constexpr const char* kKeyB = "f0e0d0c0b0a090807060504030201000";
constexpr std::int64_t kNow = 1796119200;

std::string field(const http::fields& f, const std::string& name) {
  const auto v = f[name];
  return std::string(v.data(), v.size());
}

http::request_header<> request(const std::vector<std::pair<std::string, std::string>>& headers) {
  http::request_header<> req;
  req.method(http::verb::get);
  req.target("/");
  req.set(http::field::host, "a.example");
  for (const auto& [n, v] : headers) req.insert(n, v);
  return req;
}

// production and gray, a 50% split keyed by X-User-Id; with_pin_key adds the pin cookie.
grayroute::policy_config two_routes_config(const std::string& pin_cookie, std::vector<grayroute::key_source>& keys) {
  grayroute::policy_config c;
  grayroute::rule_config& r = c.rules.emplace_back();
  r.name = "half";
  r.split.push_back({"gray", 50, {}});
  r.key.push_back({grayroute::key_source::kind::header, "X-User-Id"});
  keys = with_pin_key(c, pin_cookie);
  return c;
}

std::vector<grayroute::key_source> g_keys;
const grayroute::policy& two_routes() {
  static const grayroute::policy p(two_routes_config("", g_keys));
  return p;
}

std::string token_for(const std::string& key_hex, const char* route, std::int64_t expires, const char* rule = "edge") {
  const auto keys = grayroute::parse_decision_keys(key_hex, "test");
  return std::string(grayroute::encode_decision_token({route, grayroute::route_reason::percentage, rule, 1, expires}, keys)->view());
}

}  // namespace

TEST_SUITE("proxy decision tier") {
  TEST_CASE("a valid token from a trusted peer is the decision, rule kept, and passed on unchanged") {
    grayroute::test::temp_dir dir;
    dir.write("k", std::string(kKeyA) + "\n");
    consistency_options o;
    o.decision_key_files = {dir.file("k")};
    const decision_tier tier(o);
    const std::string token = token_for(kKeyA, "gray", kNow + 30, "canary");
    auto req = request({{"Grayroute-Decision", token}});
    const tier_request t = tier.admit(req, true, kNow, two_routes(), g_keys);
    CHECK(t.honoured);
    CHECK(t.token_refusal.empty());
    CHECK(field(req, "Grayroute-Decision").empty());  // removed before anything else
    grayroute::decision d;
    const tier_request copy = t;  // the rule survives a copy (offsets, not views)
    tier.settle(d, copy);
    CHECK(d.route == grayroute::kGray);
    CHECK(d.reason == grayroute::route_reason::upstream);
    CHECK(d.rule == "canary");
    tier.forward(req, d, copy, two_routes(), kNow);
    CHECK(field(req, "Grayroute-Decision") == token);
  }

  TEST_CASE("forged, expired, untrusted, unknown-route and doubled tokens are ignored and stripped") {
    grayroute::test::temp_dir dir;
    dir.write("k", std::string(kKeyA) + "\n");
    consistency_options o;
    o.decision_key_files = {dir.file("k")};
    const decision_tier tier(o);
    struct row {
      const char* name;
      std::vector<std::string> tokens;
      bool trusted;
      const char* why;
    };
    const std::string good = token_for(kKeyA, "gray", kNow + 30);
    std::string forged = good;
    forged[forged.size() - 1] = forged.back() == '0' ? '1' : '0';
    const row rows[] = {
        {"forged tag", {forged}, true, "bad_mac"},
        {"another key", {token_for(kKeyB, "gray", kNow + 30)}, true, "bad_mac"},
        {"expired", {token_for(kKeyA, "gray", kNow)}, true, "expired"},
        {"untrusted peer", {good}, false, "untrusted_peer"},
        {"unknown route", {token_for(kKeyA, "beta", kNow + 30)}, true, "unknown_route"},
        {"not a token", {"gray"}, true, "malformed"},
        {"two headers", {good, good}, true, "several"},
        {"too long", {std::string(300, 'a')}, true, "malformed"},
    };
    for (const row& r : rows) {
      const std::string name = r.name;
      CAPTURE(name);
      auto req = request({});
      for (const auto& t : r.tokens) req.insert("grayroute-decision", t);  // any case
      const tier_request t = tier.admit(req, r.trusted, kNow, two_routes(), g_keys);
      CHECK_FALSE(t.honoured);
      CHECK(t.token_refusal == r.why);
      CHECK(req.count("Grayroute-Decision") == 0);
      grayroute::decision d;
      d.route = grayroute::kProduction;
      tier.settle(d, t);
      CHECK(d.reason == grayroute::route_reason::default_route);
      // This tier signs its own decision for the tier behind it.
      tier.forward(req, d, t, two_routes(), kNow);
      const std::string sent = field(req, "Grayroute-Decision");
      const auto v = grayroute::verify_decision_token(sent,
                                                      grayroute::parse_decision_keys(kKeyA, "test"),
                                                      grayroute::route_table(), kNow);
      CHECK(v.status == grayroute::token_status::valid);
      CHECK(v.claims.route == "production");
    }
  }

  TEST_CASE("a tier without keys strips every token and adds none") {
    const decision_tier tier(consistency_options{});
    auto req = request({{"Grayroute-Decision", token_for(kKeyA, "gray", kNow + 30)}});
    const tier_request t = tier.admit(req, true, kNow, two_routes(), g_keys);
    CHECK(t.token_refusal == "no_key");
    grayroute::decision d;
    tier.forward(req, d, t, two_routes(), kNow);
    CHECK(req.count("Grayroute-Decision") == 0);
  }

  TEST_CASE("rotation: two key files, the first signs, both are accepted") {
    grayroute::test::temp_dir dir;
    dir.write("new", std::string(kKeyB) + "\n");
    dir.write("old", std::string("# previous\n") + kKeyA + "\n");
    consistency_options o;
    o.decision_key_files = {dir.file("new"), dir.file("old")};
    const decision_tier tier(o);
    for (const char* key : {kKeyA, kKeyB}) {
      auto req = request({{"Grayroute-Decision", token_for(key, "gray", kNow + 30)}});
      CHECK(tier.admit(req, true, kNow, two_routes(), g_keys).honoured);
    }
    auto req = request({});
    grayroute::decision d;
    tier.forward(req, d, tier.admit(req, true, kNow, two_routes(), g_keys), two_routes(), kNow);
    const auto signed_by_new = grayroute::verify_decision_token(
        field(req, "Grayroute-Decision"), grayroute::parse_decision_keys(kKeyB, "t"), grayroute::route_table(), kNow);
    CHECK(signed_by_new.status == grayroute::token_status::valid);

    dir.write("both", std::string(kKeyB) + "\n" + kKeyA + "\n");
    o.decision_key_files = {dir.file("both"), dir.file("old")};
    CHECK_THROWS_WITH(decision_tier{o}, doctest::Contains("with two key files each holds one"));
    dir.write("bad", "not a key\n");
    o.decision_key_files = {dir.file("bad")};
    CHECK_THROWS_WITH(decision_tier{o}, doctest::Contains("line 1"));
  }

  TEST_CASE("pinning: a request without a key draws an id and gets it as a cookie; one with a key does not") {
    consistency_options o;
    o.pin_cookie = "name=gr_uid max_age=600 path=/ secure samesite=strict";
    const decision_tier tier(o);
    std::vector<grayroute::key_source> keys;
    const grayroute::policy pinned(two_routes_config(o.pin_cookie, keys));
    REQUIRE(keys.size() == 2);  // X-User-Id, then the pin cookie
    CHECK(keys[1].source == grayroute::key_source::kind::cookie);
    CHECK(keys[1].name == "gr_uid");
    std::set<std::string> ids;
    for (int i = 0; i < 100; ++i) {
      auto req = request({});
      const tier_request t = tier.admit(req, false, kNow, pinned, keys);
      REQUIRE(t.pin);
      CHECK(t.rollout_key() == t.pin->view());
      ids.insert(std::string(t.pin->view()));
      http::response_header<> res;
      tier.respond(res, t);
      CHECK(field(res, "Set-Cookie") ==
            "gr_uid=" + std::string(t.pin->view()) + "; Max-Age=600; Path=/; Secure; HttpOnly; SameSite=Strict");
    }
    CHECK(ids.size() == 100);
    for (const auto& headers : {std::vector<std::pair<std::string, std::string>>{{"X-User-Id", "u1"}},
                                std::vector<std::pair<std::string, std::string>>{{"Cookie", "a=b; gr_uid=abc"}}}) {
      auto req = request(headers);
      const tier_request t = tier.admit(req, false, kNow, pinned, keys);
      CHECK_FALSE(t.pin);
      CHECK((t.rollout_key() == "u1" || t.rollout_key() == "abc"));
      http::response_header<> res;
      tier.respond(res, t);
      CHECK(res.count(http::field::set_cookie) == 0);
    }
    o.pin_cookie = "name=gr_uid colour=red";
    CHECK_THROWS_WITH(decision_tier{o}, doctest::Contains("\"colour=red\""));
    o.pin_cookie = "name=__Host-x";
    CHECK_THROWS_WITH(decision_tier{o}, doctest::Contains("needs Secure"));
  }

  TEST_CASE("the pin cookie in the splits' key lists: where listed, else before the client address") {
    grayroute::policy_config c;
    for (const char* key : {"cookie:gr_uid,header:X-User-Id,ip", "header:X-User-Id,ip", ""}) {
      grayroute::rule_config& r = c.rules.emplace_back();
      r.name = std::string("r") + std::to_string(c.rules.size());
      r.split.push_back({"gray", 10, {}});
      if (*key != '\0') r.key = grayroute::parse_key_list(key);
    }
    const auto keys = with_pin_key(c, "name=gr_uid");
    const auto text = [](const std::vector<grayroute::key_source>& k) {
      std::string out;
      for (const auto& s : k) out += std::string(out.empty() ? "" : " ") + std::to_string(static_cast<int>(s.source)) + s.name;
      return out;
    };
    // kinds: 0 given, 1 header, 2 cookie, 4 ip
    CHECK(text(c.rules[0].key) == "0 2gr_uid 1X-User-Id 4");
    CHECK(text(c.rules[1].key) == "1X-User-Id 0 2gr_uid 4");
    CHECK(text(c.rules[2].key) == "0 2gr_uid 4");
    CHECK(text(keys) == "2gr_uid 1X-User-Id");
    const grayroute::policy p(c);  // still a valid policy
  }
}

namespace {
std::atomic<std::int64_t> g_clock{0};
std::int64_t test_clock() noexcept { return g_clock.load(); }
}  // namespace

TEST_SUITE("proxy decision tier status") {
  TEST_CASE("the health page shows each scheduled share's weight now and its next step") {
    grayroute::policy_config c;
    c.clock_ms = &test_clock;
    grayroute::rule_config& r = c.rules.emplace_back();
    r.name = "ramp";
    grayroute::route_share share{"gray", 0, {}};
    share.schedule = grayroute::parse_weight_schedule("2026-12-01T10:00:00Z 1%, +1h 50%, +1h 100%", grayroute::ramp_shape::linear);
    r.split.push_back(std::move(share));
    const grayroute::policy p(c);
    const decision_tier tier{consistency_options{}};
    g_clock = 1796119200000 + 30 * 60 * 1000;  // 2026-12-01T10:30:00Z
    std::string json = "{\"status\":\"ok\"}";
    tier.append_status(json, p);
    CHECK(json ==
          "{\"status\":\"ok\",\"ramps\":[{\"rule\":\"ramp\",\"route\":\"gray\",\"shape\":\"linear\",\"weight_ppm\":255000,"
          "\"weight\":\"25.5%\",\"next\":{\"at\":\"2026-12-01T11:00:00.000Z\",\"weight_ppm\":500000,\"weight\":\"50%\"}}]}");
  }
}

TEST_SUITE("proxy protocol preface") {
  const auto tcp_peer = *grayroute::parse_ip("10.0.0.5");

  preface_step feed(const std::string& bytes, bool balancer) {
    // Byte by byte, as a slow balancer would send it: the decision never changes once made.
    preface_step s;
    for (std::size_t n = 1; n <= bytes.size(); ++n) {
      s = examine_preface(bytes.data(), n, balancer, tcp_peer);
      if (s.what != preface_step::kind::need_more) break;
    }
    return s;
  }

  TEST_CASE("a balancer's v1 and v2 headers name the peer; the HTTP bytes after them stay") {
    const std::string v1 = "PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\nGET / HTTP/1.1\r\n";
    auto s = feed(v1, true);
    CHECK(s.what == preface_step::kind::accept);
    CHECK(s.consumed == v1.find("GET"));
    CHECK(grayroute::to_string(s.peer) == "203.0.113.7");

    s = feed("PROXY TCP6 2001:db8::7 2001:db8::1 5555 443\r\nGET", true);
    CHECK(grayroute::to_string(s.peer) == "2001:db8::7");

    std::string v6(36, '\0');
    v6[0] = 0x20, v6[1] = 0x01, v6[2] = 0x0d, v6[3] = static_cast<char>(0xb8), v6[15] = 9;
    s = feed(grayroute::test::proxy_v2(1, 0x21, v6 + std::string("\x04\x00\x01x", 4)) + "GET", true);  // a TLV after the addresses
    CHECK(s.what == preface_step::kind::accept);
    CHECK(grayroute::to_string(s.peer) == "2001:db8::9");

    // LOCAL (a balancer's health check): the TCP peer stands.
    s = feed(grayroute::test::proxy_v2(0, 0x00, "") + "GET", true);
    CHECK(s.what == preface_step::kind::accept);
    CHECK(s.peer == tcp_peer);
  }

  TEST_CASE("refused: no header from a balancer, a header from anyone else, malformed and oversized") {
    CHECK(feed("GET / HTTP/1.1\r\n", true).what == preface_step::kind::refuse);
    CHECK(feed("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", false).what == preface_step::kind::refuse);
    CHECK(feed(grayroute::test::proxy_v2(1, 0x11, std::string(12, '\1')), false).what == preface_step::kind::refuse);
    CHECK(feed("PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", true).what == preface_step::kind::refuse);
    CHECK(feed("PROXY TCP4 " + std::string(120, '1') + "\r\n", true).what == preface_step::kind::refuse);
    CHECK(feed(grayroute::test::proxy_v2(3, 0x11, std::string(12, '\1')), true).what == preface_step::kind::refuse);
    // Not a balancer, plain HTTP (even a POST, which starts like "PROXY"): accepted, nothing consumed.
    for (const char* http : {"GET / HTTP/1.1\r\n", "POST / HTTP/1.1\r\n", "PUT /x HTTP/1.1\r\n"}) {
      const auto s = feed(http, false);
      CHECK(s.what == preface_step::kind::accept);
      CHECK(s.consumed == 0);
    }
    // A truncated header waits for more (the session's timeout or the close ends it).
    CHECK(examine_preface("PROXY TCP4 1.2.3.4", 18, true, tcp_peer).what == preface_step::kind::need_more);
  }

  TEST_CASE("the gate: networks, IPv4-mapped peers, and errors naming the value") {
    const proxy_protocol_gate gate({"10.0.0.0/8", "::1"});
    CHECK(gate.enabled());
    CHECK(gate.from_balancer(*grayroute::parse_ip("10.2.3.4")));
    CHECK(gate.from_balancer(*grayroute::parse_ip("::ffff:10.2.3.4")));
    CHECK(gate.from_balancer(*grayroute::parse_ip("::1")));
    CHECK_FALSE(gate.from_balancer(*grayroute::parse_ip("127.0.0.1")));
    CHECK_FALSE(proxy_protocol_gate({}).enabled());
    CHECK_THROWS_WITH(proxy_protocol_gate({"10.0.0.1/8"}), doctest::Contains("\"10.0.0.1/8\""));
  }
}
