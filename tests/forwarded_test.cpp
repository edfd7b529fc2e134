// Element parsers for X-Forwarded-For and RFC 7239 Forwarded, one header line at a time.
#include <grayroute/forwarded.hpp>

#include <doctest/doctest.h>

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
             {"1.2.3.4:80", "-"},             // no ports in XFF
             {"2001:db8::1, ::ffff:1.2.3.4", "2001:db8::1 ::ffff:1.2.3.4"},
             {"[2001:db8::1]", "-"},
         }) {
      CAPTURE(r.line);
      CHECK(hops_of_xff(r.line) == r.hops);
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
             {R"(for="1.2.3\.4")", "-"},                        // escapes never make an address
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
