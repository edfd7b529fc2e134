#include <grayroute/proxy_protocol.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using grayroute::parse_proxy_protocol;
using grayroute::proxy_command;
using grayroute::proxy_status;

namespace {

std::string v2(unsigned char ver_cmd, unsigned char family, const std::string& body) {
  std::string s("\r\n\r\n\0\r\nQUIT\n", 12);
  s += static_cast<char>(ver_cmd);
  s += static_cast<char>(family);
  s += static_cast<char>(body.size() >> 8);
  s += static_cast<char>(body.size() & 0xff);
  return s + body;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

const std::string kV4Block = bytes({192, 0, 2, 7, 10, 0, 0, 1, 0xc3, 0x50, 0x01, 0xbb});  // :50000 -> :443

std::string v6_block() {
  std::string s = bytes({0x20, 0x01, 0x0d, 0xb8}) + std::string(11, '\0') + bytes({1});   // 2001:db8::1
  s += bytes({0x20, 0x01, 0x0d, 0xb8}) + std::string(11, '\0') + bytes({2});               // 2001:db8::2
  return s + bytes({0x04, 0xd2, 0x00, 0x50});                                              // 1234 -> 80
}

grayroute::proxy_parse_result parse(const std::string& s) { return parse_proxy_protocol(s.data(), s.size()); }

}  // namespace

TEST_SUITE("proxy_protocol") {
  TEST_CASE("v1 lines from the spec and around it") {
    struct row {
      const char* name;
      std::string input;
      proxy_status status;
      const char* source;
      int source_port;
    };
    const std::string longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                "65535 65535\r\n";
    const std::vector<row> rows = {
        {"spec: TCP4", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /", proxy_status::parsed, "192.168.0.1", 56324},
        {"TCP6", "PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n", proxy_status::parsed, "2001:db8::1", 1234},
        {"the longest line, 107 bytes", longest, proxy_status::parsed, nullptr, 0},
        {"the longest TCP6 line", longest.substr(0, 6) + "TCP6" + longest.substr(13), proxy_status::parsed,
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535},
        {"spec: UNKNOWN alone", "PROXY UNKNOWN\r\n", proxy_status::parsed, nullptr, 0},
        {"spec: UNKNOWN with anything after", "PROXY UNKNOWN ffff::1 whatever\r\n", proxy_status::parsed, nullptr, 0},
        {"truncated before CRLF", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443", proxy_status::need_more, nullptr, 0},
        {"truncated prefix", "PRO", proxy_status::need_more, nullptr, 0},
        {"truncated after CR", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r", proxy_status::need_more, nullptr, 0},
        {"oversized: no CRLF in 107 bytes", "PROXY UNKNOWN " + std::string(100, 'x'), proxy_status::invalid, nullptr, 0},
        {"oversized: CRLF at byte 109", "PROXY UNKNOWN " + std::string(93, 'x') + "\r\n", proxy_status::invalid, nullptr, 0},
        {"not PROXY", "GET / HTTP/1.1\r\n", proxy_status::invalid, nullptr, 0},
        {"lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", proxy_status::invalid, nullptr, 0},
        {"LF without CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", proxy_status::invalid, nullptr, 0},
        {"TCP4 with an IPv6 source", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", proxy_status::invalid, nullptr, 0},
        {"TCP6 with IPv4 addresses", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", proxy_status::invalid, nullptr, 0},
        {"port above 65535", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", proxy_status::invalid, nullptr, 0},
        {"port with a leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", proxy_status::invalid, nullptr, 0},
        {"a field missing", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", proxy_status::invalid, nullptr, 0},
        {"a field too many", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", proxy_status::invalid, nullptr, 0},
        {"two spaces", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", proxy_status::invalid, nullptr, 0},
        {"unknown protocol", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", proxy_status::invalid, nullptr, 0},
        {"a control byte", std::string("PROXY TCP4 1.2.3.4\0", 19), proxy_status::invalid, nullptr, 0},
    };
    for (const row& r : rows) {
      CAPTURE(r.name);
      const auto result = parse(r.input);
      CHECK(result.status == r.status);
      if (r.status == proxy_status::parsed) {
        CHECK(result.header.version == 1);
        CHECK(result.length == r.input.find('\n') + 1);
        CHECK(result.header.has_addresses == (r.source != nullptr));
        if (r.source) {
          CHECK(result.header.source == *grayroute::parse_ip(r.source));
          CHECK(result.header.source_port == r.source_port);
        }
      }
    }
    CHECK(longest.size() == grayroute::kProxyV1MaxLength);
  }

  TEST_CASE("v2 headers: families, commands, TLVs") {
    SUBCASE("PROXY over TCP/IPv4, with bytes after the header left alone") {
      const std::string h = v2(0x21, 0x11, kV4Block);
      const auto r = parse(h + "GET / HTTP/1.1\r\n");
      REQUIRE(r.status == proxy_status::parsed);
      CHECK(r.length == 28);
      CHECK(r.header.version == 2);
      CHECK(r.header.command == proxy_command::proxy);
      CHECK(r.header.has_addresses);
      CHECK(r.header.source == *grayroute::parse_ip("192.0.2.7"));
      CHECK(r.header.destination == *grayroute::parse_ip("10.0.0.1"));
      CHECK(r.header.source_port == 50000);
      CHECK(r.header.destination_port == 443);
      CHECK(r.header.tlv_length == 0);
    }
    SUBCASE("PROXY over UDP/IPv6") {
      const auto r = parse(v2(0x21, 0x22, v6_block()));
      REQUIRE(r.status == proxy_status::parsed);
      CHECK(r.length == 16 + 36);
      CHECK(r.header.source == *grayroute::parse_ip("2001:db8::1"));
      CHECK(r.header.destination == *grayroute::parse_ip("2001:db8::2"));
      CHECK(r.header.source_port == 1234);
      CHECK(r.header.destination_port == 80);
    }
    SUBCASE("LOCAL: no client, the address block ignored whatever it holds") {
      for (const std::string& body : {std::string(), kV4Block, std::string("\x01\xff\xff", 3)}) {
        const auto r = parse(v2(0x20, 0x00, body));
        REQUIRE(r.status == proxy_status::parsed);
        CHECK(r.header.command == proxy_command::local);
        CHECK_FALSE(r.header.has_addresses);
        CHECK(r.length == 16 + body.size());
      }
    }
    SUBCASE("AF_UNSPEC and AF_UNIX carry no IP client") {
      CHECK_FALSE(parse(v2(0x21, 0x00, "")).header.has_addresses);
      CHECK(parse(v2(0x21, 0x00, "")).status == proxy_status::parsed);
      const auto unix_socket = parse(v2(0x21, 0x31, std::string(216, '\0')));
      CHECK(unix_socket.status == proxy_status::parsed);
      CHECK_FALSE(unix_socket.header.has_addresses);
    }
    SUBCASE("TLVs are bounds-checked and skipped") {
      const std::string tlvs = bytes({0x02, 0x00, 0x0b}) + "example.com" + bytes({0x04, 0x00, 0x00});  // AUTHORITY, NOOP
      const auto r = parse(v2(0x21, 0x11, kV4Block + tlvs));
      REQUIRE(r.status == proxy_status::parsed);
      CHECK(r.header.tlv_offset == 28);
      CHECK(r.header.tlv_length == tlvs.size());
      CHECK(parse(v2(0x21, 0x11, kV4Block + bytes({0x02, 0x00, 0x0c}) + "example.com")).status == proxy_status::invalid);
      CHECK(parse(v2(0x21, 0x11, kV4Block + bytes({0x02, 0x00}))).status == proxy_status::invalid);
    }
    SUBCASE("malformed") {
      CHECK(parse(v2(0x11, 0x11, kV4Block)).status == proxy_status::invalid);  // version 1 nibble
      CHECK(parse(v2(0x22, 0x11, kV4Block)).status == proxy_status::invalid);  // command 2
      CHECK(parse(v2(0x21, 0x41, kV4Block)).status == proxy_status::invalid);  // family 4
      CHECK(parse(v2(0x21, 0x13, kV4Block)).status == proxy_status::invalid);  // transport 3
      CHECK(parse(v2(0x21, 0x11, kV4Block.substr(0, 11))).status == proxy_status::invalid);  // short IPv4 block
      CHECK(parse(v2(0x21, 0x21, kV4Block)).status == proxy_status::invalid);  // IPv6 needs 36 bytes
      std::string bad_signature = v2(0x21, 0x11, kV4Block);
      bad_signature[7] = 'q';
      CHECK(parse(bad_signature).status == proxy_status::invalid);
    }
    SUBCASE("truncated at every length: need more, never a wrong answer") {
      const std::string h = v2(0x21, 0x21, v6_block() + bytes({0x04, 0x00, 0x01, 0x00}));
      for (std::size_t n = 0; n < h.size(); ++n) {
        CAPTURE(n);
        const auto r = parse_proxy_protocol(h.data(), n);
        CHECK(r.status == proxy_status::need_more);
        CHECK(r.length > n);
        CHECK(r.length <= h.size());
      }
      CHECK(parse(h).status == proxy_status::parsed);
    }
    SUBCASE("a bad version byte is refused before the rest arrives") {
      const std::string h = v2(0x31, 0x11, kV4Block);
      CHECK(parse_proxy_protocol(h.data(), 13).status == proxy_status::invalid);
    }
  }

  TEST_CASE("v1 truncated at every length asks for more") {
    const std::string line = "PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n";
    for (std::size_t n = 0; n < line.size(); ++n) {
      CAPTURE(n);
      CHECK(parse_proxy_protocol(line.data(), n).status == proxy_status::need_more);
    }
  }

  TEST_CASE("telling a PROXY header from a request") {
    CHECK(grayroute::starts_with_proxy_protocol("PROXY TCP4", 10) == true);
    CHECK(grayroute::starts_with_proxy_protocol("PROX", 4) == std::nullopt);
    CHECK(grayroute::starts_with_proxy_protocol("GET / HTTP/1.1", 14) == false);
    const std::string h = v2(0x21, 0x11, kV4Block);
    CHECK(grayroute::starts_with_proxy_protocol(h.data(), 12) == true);
    CHECK(grayroute::starts_with_proxy_protocol(h.data(), 5) == std::nullopt);
    CHECK(grayroute::starts_with_proxy_protocol("\r\n\r\nX", 5) == false);
  }
}
