// Element parsers for X-Forwarded-For and RFC 7239 Forwarded, one header line at a time.
#include <grayroute/forwarded.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using grayroute::ip_address;

namespace {

// "1.2.3.4" for an address, "-" for a hop that names none.
std::string hops_of_xff(std::string_view line) {
  std::string out;
  grayroute::for_each_x_forwarded_for(line, [&](const std::optional<ip_address>& hop) {
    if (!out.empty()) out += ' ';
    out += hop ? to_string(*hop) : "-";
  });
  return out;
}

// The same hops, read from the right as the resolver reads them (the masked window
// for dotted quads), stopping after `limit` hops, then put back in line order.
std::string hops_of_xff_from_right(std::string_view line, std::size_t limit = ~std::size_t{0}) {
  std::vector<std::string> hops;
  const auto add = [&](std::string text) {
    hops.insert(hops.begin(), std::move(text));
    return hops.size() >= limit;
  };
  grayroute::detail::for_each_x_forwarded_for_hop_from_right(
      line, [&](const std::optional<ip_address>& hop) { return add(hop ? to_string(*hop) : "-"); },
      [&](std::uint32_t v4) { return add(to_string(ip_address::v4(v4))); });
  std::string out;
  for (const auto& hop : hops) out += (out.empty() ? "" : " ") + hop;
  return out;
}

std::string hops_of_forwarded(std::string_view line) {
  std::string out;
  grayroute::for_each_forwarded_for(line, [&](const std::optional<ip_address>& hop) {
    if (!out.empty()) out += ' ';
    out += hop ? to_string(*hop) : "-";
  });
  return out;
}

}  // namespace

TEST_SUITE("forwarded") {
  TEST_CASE("X-Forwarded-For elements are trimmed, empty ones skipped, bad ones marked") {
    struct row {
      const char* line;
      const char* hops;
    };
    for (const row& r : std::vector<row>{
             {"1.2.3.4", "1.2.3.4"},
             {"1.2.3.4, 10.0.0.1", "1.2.3.4 10.0.0.1"},
             {" 1.2.3.4 ,\t10.0.0.1 ", "1.2.3.4 10.0.0.1"},
             {"1.2.3.4,,10.0.0.1", "1.2.3.4 10.0.0.1"},
             {"", ""},
             {" , ", ""},
             {"unknown, 10.0.0.1", "- 10.0.0.1"},
             {"010.1.1.1", "-"},              // never octal
             {"2001:db8::1, ::ffff:1.2.3.4", "2001:db8::1 ::ffff:1.2.3.4"},
         }) {
      CAPTURE(r.line);
      CHECK(hops_of_xff(r.line) == r.hops);
    }
  }

  // The resolver's walk classifies the last 64 bytes of a line at once and reads
  // dotted quads off the masks; anything else, and elements that begin before those
  // 64 bytes, take the plain path. Both must agree with the plain left-to-right reading.
  TEST_CASE("reading X-Forwarded-For from the right gives the hops of the plain reading") {
    const std::vector<std::string> elements = {
        "1.2.3.4", "10.0.0.1", "255.255.255.255", "0.0.0.0", "192.168.100.200", "256.1.1.1", "1.2.3.999",
        "01.2.3.4", "1.2.3.04", "1.0.3.0", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3.4", "1.2.3.4.", "1234.1.1.1",
        "203.0.113.9:51234", "[2001:db8::9]:80", "2001:db8::1", "::ffff:10.1.2.3", "unknown", "1.2.3.4x", "x1.2.3.4",
        "1.2.3.4 5", "\t1.2.3.4", "1.2.3.-4", "1.2.3.4/8", "١.2.3.4"};
    std::uint32_t state = 2024;
    auto next = [&] { return (state = state * 1103515245u + 12345u) >> 16; };
    for (int round = 0; round < 20000; ++round) {
      std::string line;
      const unsigned count = next() % 9;
      for (unsigned k = 0; k < count; ++k) {
        if (k) line += next() % 4 == 0 ? ",," : ",";
        const unsigned spaces = next() % 3;
        line += std::string(spaces, next() % 2 ? ' ' : '\t');
        if (next() % 10 != 0) line += elements[next() % elements.size()];
        line += std::string(next() % 2, ' ');
      }
      CAPTURE(line);
      const std::string expected = hops_of_xff(line);
      REQUIRE(hops_of_xff_from_right(line) == expected);
      // Stopped early, the hops seen are the rightmost ones.
      const std::string two = hops_of_xff_from_right(line, 2);
      REQUIRE(expected.size() >= two.size());
      REQUIRE(expected.compare(expected.size() - two.size(), two.size(), two) == 0);
    }
  }

  TEST_CASE("X-Forwarded-For elements with a port or brackets, as balancers write them") {
    struct row {
      const char* element;
      const char* address;  // "-": not an address
    };
    for (const row& r : std::vector<row>{
             {"203.0.113.9:51234", "203.0.113.9"},
             {"203.0.113.9:1", "203.0.113.9"},
             {"203.0.113.9:65535", "203.0.113.9"},
             {"[2001:db8::9]:51234", "2001:db8::9"},
             {"[2001:db8::9]", "2001:db8::9"},
             {"[::ffff:1.2.3.4]:80", "::ffff:1.2.3.4"},
             {"2001:db8::9", "2001:db8::9"},
             {"::1:80", "::1:80"},                // bare IPv6 is all address: no port after it
             {"203.0.113.9:0", "-"},              // ports are 1-65535
             {"203.0.113.9:65536", "-"},
             {"203.0.113.9:080", "-"},            // no leading zeros
             {"203.0.113.9:", "-"},
             {"203.0.113.9:+80", "-"},
             {"203.0.113.9:80:80", "-"},
             {"203.0.113.9:_hidden", "-"},        // obfuscated ports are Forwarded's, not XFF's
             {"[203.0.113.9]", "-"},              // brackets are for IPv6
             {"[203.0.113.9]:80", "-"},
             {"[2001:db8::9", "-"},
             {"[2001:db8::9]:", "-"},
             {"[2001:db8::9]80", "-"},
             {"[2001:db8::9]:0", "-"},
             {"[2001:db8::9]:123456", "-"},
             {"[[2001:db8::9]]", "-"},
             {"[ 2001:db8::9]", "-"},
             {"[fe80::1%eth0]", "-"},
             {"2001:db8::9:51234:1", "-"},
             {"unknown", "-"},
         }) {
      CAPTURE(r.element);
      const auto a = grayroute::parse_forwarded_address(r.element);
      CHECK((a ? to_string(*a) : std::string("-")) == r.address);
      CHECK(hops_of_xff(std::string("192.0.2.1:80, ") + r.element) == std::string("192.0.2.1 ") + r.address);
    }
  }

  TEST_CASE("RFC 7239 section 4 and 7 examples") {
    CHECK(hops_of_forwarded(R"(for="_gazonk")") == "-");
    CHECK(hops_of_forwarded(R"(For="[2001:db8:cafe::17]:4711")") == "2001:db8:cafe::17");
    CHECK(hops_of_forwarded("for=192.0.2.60;proto=http;by=203.0.113.43") == "192.0.2.60");
    CHECK(hops_of_forwarded("for=192.0.2.43, for=198.51.100.17") == "192.0.2.43 198.51.100.17");
    CHECK(hops_of_forwarded(R"(for=192.0.2.43,for="[2001:db8:cafe::17]",for=unknown)") ==
          "192.0.2.43 2001:db8:cafe::17 -");
    CHECK(hops_of_forwarded(R"(for="192.0.2.43:47011")") == "192.0.2.43");
    CHECK(hops_of_forwarded(R"(for="192.0.2.43:_hidden")") == "192.0.2.43");
  }

  TEST_CASE("malformed Forwarded elements name no address") {
    struct row {
      const char* line;
      const char* hops;
    };
    for (const row& r : std::vector<row>{
             {"proto=https", "-"},                              // no for=
             {"for=1.2.3.4;for=5.6.7.8", "-"},                  // two for= in one element
             {R"(for="2001:db8::1")", "-"},                     // IPv6 must be bracketed
             {R"(for="[1.2.3.4]")", "-"},                       // brackets are for IPv6
             {R"(for="[2001:db8::1")", "-"},                    // no closing bracket
             {R"(for="1.2.3.4:99999")", "-"},                   // port out of range
             {R"(for="1.2.3.4:")", "-"},
             {R"(for="01.2.3.4")", "-"},
             {"for=192.0.2.60:8080", "-"},                      // an unquoted value is a token
             {"for=[2001:db8::1]", "-"},
             {"for=[2001:db8::1]:4711", "-"},
             {"for=", "-"},                                     // a token has at least one char
             {"for=;proto=http", "-"},
             {R"(for="1.2.3.4\")", "-"},                          // the escape swallows the closing quote
             {"for=\"1.2.3.4\x01\"", "-"},                      // control bytes are not qdtext
             {"for=\"1.2.3.4\\\x01\"", "-"},                    // nor quoted-pair
             {"for=1.2.3.4 junk", "-"},
             {"=1.2.3.4", "-"},
             {"for", "-"},
             {"", ""},
             {" , ", ""},
         }) {
      CAPTURE(r.line);
      CHECK(hops_of_forwarded(r.line) == r.hops);
    }
  }

  TEST_CASE("quoted-pairs stand for the octet they escape (RFC 9110 5.6.4)") {
    struct row {
      const char* line;
      const char* hops;
    };
    for (const row& r : std::vector<row>{
             {R"(for="1.2.3\.4")", "1.2.3.4"},
             {R"(for="\1\.\2\.\3\.\4")", "1.2.3.4"},
             {R"(for="\[2001:db8::1\]:4711")", "2001:db8::1"},
             {R"(for="[2001:db8::1]:\_hidden", for=10.0.0.1)", "2001:db8::1 10.0.0.1"},
             {R"(for="1.2.3.4\"")", "-"},                       // the escaped quote is part of the node
             {R"(for="1.2.3.4\\")", "-"},                       // so is an escaped backslash
             {R"(for="1.2.3.4", by="a\"b", for=10.0.0.1)", "1.2.3.4 - 10.0.0.1"},
             {R"(for="1.2.3.4";by="a\"b,c", for=10.0.0.1)", "1.2.3.4 10.0.0.1"},
         }) {
      CAPTURE(r.line);
      CHECK(hops_of_forwarded(r.line) == r.hops);
    }
    // Nodes longer than any address: an obfuscated port may run on.
    const std::string long_port = "_" + std::string(200, 'x');
    CHECK(hops_of_forwarded("for=\"1.2.3.4:" + long_port + "\"") == "1.2.3.4");
    CHECK(hops_of_forwarded("for=\"1.2.3.4:\\" + long_port + "\"") == "1.2.3.4");
    CHECK(hops_of_forwarded("for=\"1.2.3.4:\\" + long_port + ":\"") == "-");
    CHECK(hops_of_forwarded("for=\"1.2.3.4:\\1" + std::string(200, '0') + "\"") == "-");
  }

  TEST_CASE("an unterminated quote ends its own line only") {
    // The client opened a quote; within this line nothing after it can be trusted.
    CHECK(hops_of_forwarded(R"(for=1.2.3.4, for="5.6.7.8, for=9.9.9.9)") == "1.2.3.4 -");
  }

  TEST_CASE("whitespace around separators is tolerated, case of parameter names ignored") {
    CHECK(hops_of_forwarded("for=192.0.2.1 ; proto=https , FOR=192.0.2.2") == "192.0.2.1 192.0.2.2");
  }

  TEST_CASE("the node parser accepts exactly RFC 7239 nodes") {
    CHECK(grayroute::to_string(*grayroute::parse_forwarded_node("[::1]:8080")) == "::1");
    CHECK(grayroute::to_string(*grayroute::parse_forwarded_node("[::1]:_x-y.z")) == "::1");
    CHECK_FALSE(grayroute::parse_forwarded_node("[::1]:").has_value());
    CHECK_FALSE(grayroute::parse_forwarded_node("[::1]x").has_value());
    CHECK_FALSE(grayroute::parse_forwarded_node("unknown").has_value());
    CHECK_FALSE(grayroute::parse_forwarded_node("_").has_value());
    CHECK_FALSE(grayroute::parse_forwarded_node("").has_value());
  }
}
