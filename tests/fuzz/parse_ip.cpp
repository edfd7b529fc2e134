// parse_ip: the SIMD, scalar and reference parsers agree with each other and with
// glibc's inet_pton, and canonical text round-trips.
#include <arpa/inet.h>
#include <grayroute/ip.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto fast = grayroute::parse_ip(text);
  const auto reference = grayroute::detail::parse_ip_reference(text);
  if (fast != reference) std::abort();

  std::optional<grayroute::ip_address> scalar;
  std::uint32_t v4 = 0;
  std::uint64_t high = 0, low = 0;
  if (text.find(':') == std::string::npos) {
    if (grayroute::detail::parse_v4_fast(text.data(), text.size(), v4)) scalar = grayroute::ip_address::v4(v4);
  } else if (grayroute::detail::parse_v6_fast(text.data(), text.size(), high, low)) {
    scalar = grayroute::ip_address::v6(high, low);
  }
  if (scalar != reference) std::abort();

  // inet_pton reads a C string: compare only inputs without NUL bytes.
  if (std::memchr(text.data(), '\0', text.size()) == nullptr) {
    unsigned char bytes[16];
    const bool glibc_v4 = inet_pton(AF_INET, text.c_str(), bytes) == 1;
    const bool glibc_v6 = !glibc_v4 && inet_pton(AF_INET6, text.c_str(), bytes) == 1;
    if ((glibc_v4 || glibc_v6) != fast.has_value()) std::abort();
    if (fast) {
      const auto from_glibc = grayroute::ip_address::from_bytes(bytes, glibc_v4 ? 4 : 16);
      if (from_glibc != fast) std::abort();
    }
  }
  if (fast && grayroute::parse_ip(grayroute::to_string(*fast)) != fast) std::abort();
  return 0;
}
