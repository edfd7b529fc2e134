// Test support: PROXY protocol headers as bytes, for the tests of a listener that reads them.
//
//   grayroute::test::proxy_v2(1, 0x11, grayroute::test::bytes({192, 0, 2, 7, 10, 0, 0, 1, 0xc3, 0x50, 1, 0xbb}));
#ifndef GRAYROUTE_TESTS_SUPPORT_PROXY_PROTOCOL_BYTES_HPP
#define GRAYROUTE_TESTS_SUPPORT_PROXY_PROTOCOL_BYTES_HPP

#include <initializer_list>
#include <string>

namespace grayroute::test {

/// Bytes from their values (so that a 0 byte is one, unlike in a string literal).
inline std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

/// A v2 header: the signature, version 2 with `command` (0 LOCAL, 1 PROXY), the
/// family/transport byte, the length, then the address block and any TLVs.
inline std::string proxy_v2(unsigned char command, unsigned char family, const std::string& addresses,
                            const std::string& tlvs = "") {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  const std::string body = addresses + tlvs;
  h += static_cast<char>(0x20 | command);
  h += static_cast<char>(family);
  h += static_cast<char>(body.size() >> 8);
  h += static_cast<char>(body.size() & 0xff);
  return h + body;
}

}  // namespace grayroute::test

#endif  // GRAYROUTE_TESTS_SUPPORT_PROXY_PROTOCOL_BYTES_HPP
