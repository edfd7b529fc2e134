// Client-IP resolution: the trust model, nginx realip semantics, adversarial input.
#include <grayroute/client_ip.hpp>
#include <grayroute/config_error.hpp>

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

using grayroute::client_ip_resolver;
using grayroute::header;
using grayroute::parse_ip;
using grayroute::resolver_config;

namespace {

std::string resolve(const client_ip_resolver& r, const char* peer, const std::vector<header>& headers) {
  const auto who = r.resolve(*parse_ip(peer), headers);
  return to_string(who.address) + " from " + std::string(who.source_name);
}

}  // namespace

TEST_SUITE("client_ip") {
  TEST_CASE("with no trusted proxies only the peer counts") {
    client_ip_resolver r;
    CHECK(resolve(r, "203.0.113.9", {{"X-Real-IP", "192.168.116.20"}}) == "203.0.113.9 from peer");
    CHECK(resolve(r, "203.0.113.9", {{"X-Forwarded-For", "192.168.116.20"}}) == "203.0.113.9 from peer");
    CHECK(resolve(r, "127.0.0.1", {{"Forwarded", "for=192.168.116.20"}}) == "127.0.0.1 from peer");
  }

  TEST_CASE("an untrusted peer can never choose its address") {
    client_ip_resolver r({{"10.0.0.0/8"}, {"X-Real-IP", "X-Forwarded-For", "Forwarded"}, true});
    const std::vector<header> spoof = {{"X-Real-IP", "10.9.9.9"},
                                       {"X-Forwarded-For", "192.168.116.20, 10.0.0.5"},
                                       {"Forwarded", "for=192.168.116.20"}};
    CHECK(resolve(r, "203.0.113.9", spoof) == "203.0.113.9 from peer");
    CHECK(resolve(r, "::ffff:203.0.113.9", spoof) == "203.0.113.9 from peer");
  }

  TEST_CASE("headers are tried in the configured order, the first present decides") {
    client_ip_resolver r({{"127.0.0.1"}, {"X-Real-IP", "X-Forwarded-For"}, true});
    CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "1.1.1.1"}, {"X-Real-IP", "2.2.2.2"}}) ==
          "2.2.2.2 from X-Real-IP");
    CHECK(resolve(r, "127.0.0.1", {{"x-forwarded-for", "1.1.1.1"}}) == "1.1.1.1 from X-Forwarded-For");
    CHECK(resolve(r, "127.0.0.1", {{"X-REAL-IP", "  "}, {"X-Forwarded-For", "1.1.1.1"}}) ==
          "1.1.1.1 from X-Forwarded-For");
    CHECK(resolve(r, "127.0.0.1", {{"Host", "example.com"}}) == "127.0.0.1 from peer");
  }

  TEST_CASE("X-Real-IP holding a list, repeated, or garbage is not believed") {
    client_ip_resolver r({{"127.0.0.1"}, {"X-Real-IP", "X-Forwarded-For"}, true});
    CHECK(resolve(r, "127.0.0.1", {{"X-Real-IP", "1.1.1.1, 2.2.2.2"}}) == "127.0.0.1 from peer");
    CHECK(resolve(r, "127.0.0.1", {{"X-Real-IP", "1.1.1.1"}, {"X-Real-IP", "2.2.2.2"}}) == "127.0.0.1 from peer");
    CHECK(resolve(r, "127.0.0.1", {{"X-Real-IP", "010.1.1.1"}}) == "127.0.0.1 from peer");
    // A broken first choice does not fall through to a header the client may control.
    CHECK(resolve(r, "127.0.0.1", {{"X-Real-IP", "garbage"}, {"X-Forwarded-For", "1.1.1.1"}}) ==
          "127.0.0.1 from peer");
  }

  // Cases after nginx-tests realip.t, with `real_ip_recursive on` / `off`.
  TEST_CASE("realip: recursive on walks from the right past trusted hops") {
    client_ip_resolver r({{"127.0.0.1", "10.0.0.0/8"}, {"X-Forwarded-For"}, true});
    CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "192.0.2.1, 10.0.0.2, 10.0.0.3"}}) ==
          "192.0.2.1 from X-Forwarded-For");
    CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "198.51.100.7, 192.0.2.1, 10.0.0.2"}}) ==
          "192.0.2.1 from X-Forwarded-For");
    SUBCASE("every hop trusted: the leftmost wins") {
      CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "10.0.0.9, 10.0.0.2"}}) == "10.0.0.9 from X-Forwarded-For");
    }
    SUBCASE("repeated header lines are one list, in order") {
      CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "192.0.2.1"}, {"X-Forwarded-For", "10.0.0.2, 10.0.0.3"}}) ==
            "192.0.2.1 from X-Forwarded-For");
      CHECK(resolve(r, "127.0.0.1",
                    {{"X-Forwarded-For", "198.51.100.7"}, {"Host", "x"}, {"X-Forwarded-For", "192.0.2.1"}}) ==
            "192.0.2.1 from X-Forwarded-For");
    }
    SUBCASE("an invalid hop stops the walk at the last trusted hop") {
      CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "192.0.2.1, garbage, 10.0.0.2"}}) ==
            "10.0.0.2 from X-Forwarded-For");
      CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "192.0.2.1, 10.0.0.2, unknown"}}) == "127.0.0.1 from peer");
      CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "192.0.2.1, 010.0.0.2"}}) == "127.0.0.1 from peer");
    }
  }

  TEST_CASE("realip: recursive off takes the last address") {
    client_ip_resolver r({{"127.0.0.1", "10.0.0.0/8"}, {"X-Forwarded-For"}, false});
    CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "192.0.2.1, 10.0.0.2"}}) == "10.0.0.2 from X-Forwarded-For");
    CHECK(resolve(r, "127.0.0.1", {{"X-Forwarded-For", "192.0.2.1, junk"}}) == "127.0.0.1 from peer");
  }

  TEST_CASE("Forwarded: a quote the client opened cannot swallow the proxy's line") {
    client_ip_resolver r({{"127.0.0.1", "10.0.0.0/8"}, {"Forwarded"}, true});
    // The client sent the first line; our proxy 10.0.0.2 appended its own line.
    CHECK(resolve(r, "10.0.0.2", {{"Forwarded", "for=\"10.0.0.7"}, {"Forwarded", "for=192.0.2.1"}}) ==
          "192.0.2.1 from Forwarded");
    CHECK(resolve(r, "10.0.0.2", {{"Forwarded", "for=\"[2001:db8::5]:4711\""}}) == "2001:db8::5 from Forwarded");
    CHECK(resolve(r, "10.0.0.2", {{"Forwarded", "for=_hidden, for=10.0.0.3"}}) == "10.0.0.3 from Forwarded");
  }

  TEST_CASE("v4-mapped peers and hops match IPv4 trusted networks and come out unmapped") {
    client_ip_resolver r({{"10.0.0.0/8"}, {"X-Forwarded-For"}, true});
    CHECK(resolve(r, "::ffff:10.0.0.2", {{"X-Forwarded-For", "::ffff:192.0.2.1, ::ffff:10.0.0.3"}}) ==
          "192.0.2.1 from X-Forwarded-For");
    CHECK(resolve(r, "::ffff:203.0.113.1", {}) == "203.0.113.1 from peer");
  }

  TEST_CASE("mixed IPv4 and IPv6 hops") {
    client_ip_resolver r({{"10.0.0.0/8", "2001:db8:ffff::/48"}, {"X-Forwarded-For"}, true});
    CHECK(resolve(r, "2001:db8:ffff::1", {{"X-Forwarded-For", "2001:db8:1::7, 10.0.0.1, 2001:db8:ffff::2"}}) ==
          "2001:db8:1::7 from X-Forwarded-For");
    CHECK(resolve(r, "10.0.0.1", {{"X-Forwarded-For", "192.0.2.9, 2001:db8:ffff::2"}}) ==
          "192.0.2.9 from X-Forwarded-For");
  }

  TEST_CASE("the seed's trust-everyone behaviour needs both families spelled out") {
    client_ip_resolver v4_only({{"0.0.0.0/0"}, {"X-Real-IP"}, true});
    CHECK(resolve(v4_only, "2001:db8::1", {{"X-Real-IP", "1.2.3.4"}}) == "2001:db8::1 from peer");
    client_ip_resolver both({{"0.0.0.0/0", "::/0"}, {"X-Real-IP"}, true});
    CHECK(resolve(both, "2001:db8::1", {{"X-Real-IP", "1.2.3.4"}}) == "1.2.3.4 from X-Real-IP");
    CHECK(resolve(both, "203.0.113.5", {{"X-Real-IP", "1.2.3.4"}}) == "1.2.3.4 from X-Real-IP");
  }

  TEST_CASE("custom single-address headers read like X-Real-IP") {
    client_ip_resolver r({{"127.0.0.1"}, {"CF-Connecting-IP"}, true});
    CHECK(resolve(r, "127.0.0.1", {{"cf-connecting-ip", "2001:db8::9"}}) == "2001:db8::9 from CF-Connecting-IP");
  }

  TEST_CASE("a 64 KiB X-Forwarded-For with 10,000 hops resolves in bounded time") {
    client_ip_resolver r({{"10.0.0.0/8"}, {"X-Forwarded-For"}, true});
    std::string hops;
    for (int i = 0; i < 10000; ++i) hops += "10.0.0." + std::to_string(i % 250 + 1) + ", ";
    hops += "10.0.0.1";
    CHECK(hops.size() > 64 * 1024 - 1024);
    CHECK(resolve(r, "10.0.0.9", {{"X-Forwarded-For", "192.0.2.77, " + hops}}) == "192.0.2.77 from X-Forwarded-For");
    std::string garbage(64 * 1024, ',');
    CHECK(resolve(r, "10.0.0.9", {{"X-Forwarded-For", garbage}}) == "10.0.0.9 from peer");
    std::string quotes(64 * 1024, '"');
    client_ip_resolver f({{"10.0.0.0/8"}, {"Forwarded"}, true});
    CHECK(resolve(f, "10.0.0.9", {{"Forwarded", quotes}}) == "10.0.0.9 from peer");
  }

  TEST_CASE("headers come from any range of name/value pairs") {
    client_ip_resolver r({{"127.0.0.1"}, {"X-Real-IP"}, true});
    std::map<std::string, std::string> owned{{"X-Real-IP", "192.0.2.4"}};
    CHECK(to_string(r.resolve(*parse_ip("127.0.0.1"), owned).address) == "192.0.2.4");
    std::vector<std::pair<std::string, std::string>> strings{{"X-Real-IP", "192.0.2.5"}};
    CHECK(to_string(r.resolve(*parse_ip("127.0.0.1"), strings).address) == "192.0.2.5");
  }

  TEST_CASE("X-Forwarded-For and X-Real-IP with ports and brackets, as balancers write them") {
    client_ip_resolver r({{"10.0.0.0/8", "2001:db8:ffff::/48"}, {"X-Real-IP", "X-Forwarded-For"}, true});
    struct row {
      const char* name;
      const char* value;
      const char* client;
    };
    for (const row& c : std::vector<row>{
             {"X-Forwarded-For", "203.0.113.9:51234", "203.0.113.9 from X-Forwarded-For"},
             {"X-Forwarded-For", "[2001:db8::9]:51234", "2001:db8::9 from X-Forwarded-For"},
             {"X-Forwarded-For", "[2001:db8::9]", "2001:db8::9 from X-Forwarded-For"},
             {"X-Forwarded-For", "203.0.113.9:51234, 10.0.0.7:443, [2001:db8:ffff::1]:8443",
              "203.0.113.9 from X-Forwarded-For"},
             {"X-Forwarded-For", "203.0.113.9, 10.0.0.7:0", "10.0.0.2 from peer"},
             {"X-Forwarded-For", "203.0.113.9, 10.0.0.7:65536, 10.0.0.8", "10.0.0.8 from X-Forwarded-For"},
             {"X-Forwarded-For", "203.0.113.9 :80", "10.0.0.2 from peer"},
             {"X-Real-IP", "203.0.113.9:51234", "203.0.113.9 from X-Real-IP"},
             {"X-Real-IP", "[2001:db8::9]:51234", "2001:db8::9 from X-Real-IP"},
             {"X-Real-IP", " [2001:db8::9] ", "2001:db8::9 from X-Real-IP"},
             {"X-Real-IP", "[::ffff:192.0.2.1]:80", "192.0.2.1 from X-Real-IP"},
             {"X-Real-IP", "203.0.113.9:080", "10.0.0.2 from peer"},
             {"X-Real-IP", "[203.0.113.9]", "10.0.0.2 from peer"},
         }) {
      CAPTURE(c.value);
      CHECK(resolve(r, "10.0.0.2", {{c.name, c.value}}) == c.client);
    }
  }

  TEST_CASE("Forwarded is read strictly: unquoted values are tokens, quoted-pairs unescape") {
    client_ip_resolver r({{"10.0.0.0/8"}, {"Forwarded"}, true});
    CHECK(resolve(r, "10.0.0.2", {{"Forwarded", "for=192.0.2.60:8080"}}) == "10.0.0.2 from peer");
    CHECK(resolve(r, "10.0.0.2", {{"Forwarded", "for=[2001:db8::1]"}}) == "10.0.0.2 from peer");
    CHECK(resolve(r, "10.0.0.2", {{"Forwarded", R"(for="192.0.2.60:8080")"}}) == "192.0.2.60 from Forwarded");
    CHECK(resolve(r, "10.0.0.2", {{"Forwarded", R"(for="192.0.2\.60")"}}) == "192.0.2.60 from Forwarded");
  }

  // The resolver parses lazily from the right and keeps only a few lines per header;
  // this holds it to the plain reading: every hop of every line, walked from the right.
  TEST_CASE("the lazy walk gives the answer of the plain walk, however the lines are split") {
    const std::vector<std::string> hops = {"192.0.2.1", "10.0.0.1", "garbage", "10.0.0.2:80", "198.51.100.4",
                                           "[2001:db8::1]", "10.0.0.3", "", "unknown", "10.1.2.3"};
    for (bool recursive : {true, false}) {
      client_ip_resolver r({{"10.0.0.0/8"}, {"X-Forwarded-For"}, recursive});
      std::uint32_t state = 12345;
      auto next = [&] { return (state = state * 1103515245u + 12345u) >> 16; };
      for (int round = 0; round < 3000; ++round) {
        // Up to 9 lines of up to 3 elements each.
        std::vector<std::string> lines(1 + next() % 9);
        std::vector<std::string> elements;
        for (auto& line : lines) {
          const unsigned count = next() % 4;
          for (unsigned k = 0; k < count; ++k) {
            const std::string& hop = hops[next() % hops.size()];
            line += (k ? ", " : "") + hop;
            if (!hop.empty()) elements.push_back(hop);
          }
        }
        // The plain walk.
        std::string expected = "10.0.0.9 from peer";
        std::string last_trusted;
        for (auto it = elements.rbegin(); it != elements.rend(); ++it) {
          const auto a = grayroute::parse_forwarded_address(*it);
          if (!a) {
            if (!last_trusted.empty()) expected = last_trusted;
            last_trusted.clear();
            break;
          }
          const std::string text = to_string(*a) + " from X-Forwarded-For";
          if (!recursive || !r.is_trusted(*a)) {
            expected = text;
            last_trusted.clear();
            break;
          }
          last_trusted = text;
        }
        if (!last_trusted.empty()) expected = last_trusted;
        std::vector<header> headers;
        for (const auto& line : lines) headers.push_back({"X-Forwarded-For", line});
        std::string joined;
        for (const auto& line : lines) joined += line + " | ";
        CAPTURE(joined);
        CAPTURE(recursive);
        REQUIRE(resolve(r, "10.0.0.9", headers) == expected);
      }
    }
  }

  TEST_CASE("configuration mistakes are reported once, naming the value") {
    CHECK_THROWS_WITH_AS(client_ip_resolver({{"::ffff:10.0.0.0/104"}, {"X-Real-IP"}, true}),
                         doctest::Contains("write \"10.0.0.0/8\""), grayroute::config_error);
    CHECK_THROWS_WITH_AS(client_ip_resolver({{"10.0.0.1/8"}, {"X-Real-IP"}, true}),
                         doctest::Contains("\"10.0.0.1/8\""), grayroute::config_error);
    CHECK_THROWS_WITH_AS(client_ip_resolver({{}, {"X Real IP"}, true}), doctest::Contains("\"X Real IP\""),
                         grayroute::config_error);
    CHECK_THROWS_WITH_AS(client_ip_resolver({{}, {"X-Real-IP", "x-real-ip"}, true}), doctest::Contains("twice"),
                         grayroute::config_error);
  }
}
