// Addresses and networks: parsing (strict), canonical text, containment.
#include <grayroute/ip.hpp>

#include <doctest/doctest.h>

#include <string>
#include <unordered_set>

using grayroute::ip_address;
using grayroute::ip_network;
using grayroute::parse_ip;
using grayroute::parse_network;

namespace {
std::string canonical(std::string_view text) {
  const auto a = parse_ip(text);
  REQUIRE_MESSAGE(a.has_value(), "did not parse: ", std::string(text));
  return a->to_string();
}
}  // namespace

TEST_SUITE("ip") {
  TEST_CASE("IPv4 dotted quads parse to their value") {
    CHECK(parse_ip("0.0.0.0")->v4_value() == 0u);
    CHECK(parse_ip("10.1.2.3")->v4_value() == 0x0a010203u);
    CHECK(parse_ip("255.255.255.255")->v4_value() == 0xffffffffu);
    CHECK(parse_ip("192.168.116.1")->is_v4());
  }

  TEST_CASE("malformed IPv4 is rejected, leading zeros included") {
    for (const char* bad : {"", "1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "010.1.1.1", "1.02.3.4",
                            "00.1.2.3", "1..2.3", ".1.2.3", "1.2.3.", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n",
                            "1.2.3.-4", "0x1.2.3.4", "1.2.3.4/32", "1.2.3.04", "1234.1.1.1", "a.b.c.d"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_ip(bad).has_value());
    }
  }

  TEST_CASE("every RFC 4291 IPv6 form parses") {
    CHECK(canonical("2001:0db8:0000:0000:0008:0800:200c:417a") == "2001:db8::8:800:200c:417a");
    CHECK(canonical("2001:DB8::8:800:200C:417A") == "2001:db8::8:800:200c:417a");
    CHECK(canonical("::") == "::");
    CHECK(canonical("::1") == "::1");
    CHECK(canonical("1::") == "1::");
    CHECK(canonical("1:2:3:4:5:6:7::") == "1:2:3:4:5:6:7:0");
    CHECK(canonical("::2:3:4:5:6:7:8") == "0:2:3:4:5:6:7:8");
    CHECK(canonical("::ffff:1.2.3.4") == "::ffff:1.2.3.4");
    CHECK(canonical("::FFFF:129.144.52.38") == "::ffff:129.144.52.38");
    CHECK(canonical("0:0:0:0:0:0:13.1.68.3") == "::d01:4403");
    CHECK(canonical("1:2:3:4:5:6:1.2.3.4") == "1:2:3:4:5:6:102:304");
    CHECK(canonical("fe80::1") == "fe80::1");
  }

  TEST_CASE("RFC 5952 canonical text") {
    CHECK(canonical("2001:db8:0:0:1:0:0:1") == "2001:db8::1:0:0:1");  // first of equal runs
    CHECK(canonical("2001:db8:0:1:1:1:1:1") == "2001:db8:0:1:1:1:1:1");  // a lone zero stays
    CHECK(canonical("2001:0:0:1:0:0:0:1") == "2001:0:0:1::1");  // the longest run
    CHECK(canonical("0:0:0:0:0:0:0:0") == "::");
  }

  TEST_CASE("malformed IPv6 is rejected, zones and brackets included") {
    for (const char* bad : {":", ":::", "1:::2", ":1", "1:", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
                            "12345::", "g::", "fe80::1%eth0", "[::1]", "::1 ", " ::1", "1:2:3:4:5:6:7:8::",
                            "::1.2.3", "::1.2.3.4.5", "::256.1.1.1", "::01.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
                            "::1.2.3.4:5", "::ffff:1.2.3.4/96"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_ip(bad).has_value());
    }
  }

  TEST_CASE("networks parse strictly and reject host bits") {
    CHECK(parse_network("10.0.0.0/8")->prefix_length() == 8);
    CHECK(parse_network("10.1.2.3")->prefix_length() == 32);
    CHECK(parse_network("2001:db8::/32")->to_string() == "2001:db8::/32");
    CHECK(parse_network("::1")->prefix_length() == 128);
    CHECK(parse_network("0.0.0.0/0").has_value());
    CHECK(parse_network("::/0").has_value());
    for (const char* bad : {"10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "/8", "10.0.0.0/8/8",
                            "2001:db8::1/32", "::/129", "10.0.0.0/-1", "10.0.0.0/ 8", "10.0.0.0/1000"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_network(bad).has_value());
    }
  }

  TEST_CASE("v4-mapped v6 matches an IPv4 network, and the reverse") {
    const auto ten = *parse_network("10.0.0.0/8");
    CHECK(ten.contains(*parse_ip("10.1.2.3")));
    CHECK(ten.contains(*parse_ip("::ffff:10.1.2.3")));
    CHECK_FALSE(ten.contains(*parse_ip("11.0.0.1")));
    const auto mapped = *parse_network("::ffff:10.0.0.0/104");
    CHECK(mapped.contains(*parse_ip("10.200.0.1")));
    CHECK(mapped.unmapped() == ten);
  }

  TEST_CASE("an IPv6 network never matches IPv4, even ::/0") {
    const auto all6 = *parse_network("::/0");
    CHECK(all6.contains(*parse_ip("2001:db8::1")));
    CHECK_FALSE(all6.contains(*parse_ip("1.2.3.4")));
    CHECK_FALSE(all6.contains(*parse_ip("::ffff:1.2.3.4")));
  }

  TEST_CASE("addresses order, compare and hash as values") {
    const auto a = *parse_ip("1.2.3.4");
    const auto b = *parse_ip("::ffff:1.2.3.4");
    CHECK(a != b);
    CHECK(a < b);
    CHECK(b.unmapped() == a);
    std::unordered_set<ip_address> set{a, b, *parse_ip("1.2.3.4")};
    CHECK(set.size() == 2);
  }
}
