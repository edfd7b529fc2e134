// Addresses and networks: parsing (strict), canonical text, containment.
#include <grayroute/ip.hpp>

#include <doctest/doctest.h>

#include <string>
#include <random>
#include <unordered_set>

using grayroute::ip_address;
using grayroute::ip_network;
using grayroute::parse_ip;
using grayroute::parse_network;

namespace {
std::string canonical(std::string_view text) {
  const auto a = parse_ip(text);
  REQUIRE_MESSAGE(a.has_value(), "did not parse: ", std::string(text));
  return to_string(*a);
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
    CHECK(to_string(*parse_network("2001:db8::/32")) == "2001:db8::/32");
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
    // Built in code (a store may hold one), a mapped network is the IPv4 network it maps.
    const auto mapped = *grayroute::ip_network::make(*parse_ip("::ffff:10.0.0.0"), 104);
    CHECK(mapped.contains(*parse_ip("10.200.0.1")));
    CHECK(mapped.unmapped() == ten);
    // A v4-mapped host parses and matches as its IPv4 address.
    CHECK(parse_network("::ffff:10.0.0.1")->contains(*parse_ip("10.0.0.1")));
    CHECK(parse_network("::ffff:10.0.0.1/128")->contains(*parse_ip("10.0.0.1")));
  }

  TEST_CASE("an IPv4-mapped network in text is refused, and the message gives the IPv4 form") {
    struct row {
      const char* text;
      const char* message;
    };
    for (const row& r : std::vector<row>{
             {"::ffff:0:0/96", R"("::ffff:0:0/96" is an IPv4-mapped network, which would match IPv4 clients: write "0.0.0.0/0" instead)"},
             {"::ffff:0.0.0.0/96", R"("::ffff:0.0.0.0/96" is an IPv4-mapped network, which would match IPv4 clients: write "0.0.0.0/0" instead)"},
             {"::ffff:10.0.0.0/104", R"("::ffff:10.0.0.0/104" is an IPv4-mapped network, which would match IPv4 clients: write "10.0.0.0/8" instead)"},
             {"::FFFF:192.168.1.0/120", R"("::FFFF:192.168.1.0/120" is an IPv4-mapped network, which would match IPv4 clients: write "192.168.1.0/24" instead)"},
             {"::ffff:10.0.0.1/127", R"("::ffff:10.0.0.1/127" is not an address or network (a network must have no host bits set))"},
             {"::ffff:10.0.0.0/8", R"("::ffff:10.0.0.0/8" is not an address or network (a network must have no host bits set))"},
             {"10.0.0.1/8", R"("10.0.0.1/8" is not an address or network (a network must have no host bits set))"},
         }) {
      CAPTURE(r.text);
      CHECK_FALSE(parse_network(r.text).has_value());
      CHECK(grayroute::bad_network_message(r.text) == r.message);
    }
    // Networks that merely contain the mapped range stay ordinary IPv6 networks.
    CHECK(parse_network("::/80").has_value());
    CHECK(parse_network("::/0").has_value());
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

namespace {

// Addresses, near-addresses and noise: every parser path must agree on all of them.
std::string random_candidate(std::mt19937& rng) {
  static const std::string alphabet = "0123456789abcdefABCDEF:.:.%[] /x0";
  std::string text;
  switch (rng() % 4) {
    case 0: {  // noise
      const std::size_t n = rng() % 48;
      for (std::size_t i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
      return text;
    }
    case 1:
      text = to_string(ip_address::v4(static_cast<std::uint32_t>(rng() >> (rng() % 32))));
      break;
    default: {
      const std::uint64_t high = (static_cast<std::uint64_t>(rng()) << 32 | rng()) & (rng() % 2 ? ~0ull : 0xffff0000ffffull);
      const std::uint64_t low = (static_cast<std::uint64_t>(rng()) << 32 | rng()) & (rng() % 2 ? ~0ull : 0xffffull);
      text = to_string(ip_address::v6(high, rng() % 5 == 0 ? (0xffffull << 32 | (low & 0xffffffff)) : low));
      break;
    }
  }
  // Mutate some: drop, duplicate or replace a byte.
  if (!text.empty() && rng() % 2) {
    const std::size_t at = rng() % text.size();
    switch (rng() % 3) {
      case 0: text.erase(at, 1); break;
      case 1: text.insert(at, 1, text[at]); break;
      default: text[at] = alphabet[rng() % alphabet.size()]; break;
    }
  }
  return text;
}

}  // namespace

TEST_CASE("ip: the fast parsers agree with the reference parser") {
  std::mt19937 rng(20261121);
  std::size_t valid = 0, mismatches = 0;
  for (int i = 0; i < 300000; ++i) {
    const std::string text = random_candidate(rng);
    const auto reference = grayroute::detail::parse_ip_reference(text);
    const auto fast = grayroute::parse_ip(text);  // SIMD where the CPU has it
    std::optional<ip_address> scalar;
    std::uint32_t v4 = 0;
    std::uint64_t high = 0, low = 0;
    if (text.find(':') == std::string::npos) {
      if (grayroute::detail::parse_v4_fast(text.data(), text.size(), v4)) scalar = ip_address::v4(v4);
    } else if (grayroute::detail::parse_v6_fast(text.data(), text.size(), high, low)) {
      scalar = ip_address::v6(high, low);
    }
    valid += reference.has_value();
    if (reference != fast || reference != scalar) {
      ++mismatches;
      if (mismatches < 10) MESSAGE("disagreement on \"", text, "\"");
    }
    if (reference) {
      CHECK(parse_ip(to_string(*reference)) == reference);  // canonical text round-trips
    }
  }
  CHECK(mismatches == 0);
  CHECK(valid > 100000);  // the generator really exercises the accepting paths
}
