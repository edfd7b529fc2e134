// The PROXY protocol parser on arbitrary bytes: never a crash or a read past the input,
// a parsed header's length never exceeds the input, and parsing is incremental: every
// prefix of a parsed header asks for more, never a different answer.
#include <grayroute/proxy_protocol.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A copy of exactly `size` bytes, so ASan sees any read past the end.
  std::unique_ptr<std::uint8_t[]> copy(new std::uint8_t[size ? size : 1]);
  if (size) std::memcpy(copy.get(), data, size);
  const auto r = grayroute::parse_proxy_protocol(copy.get(), size);
  switch (r.status) {
    case grayroute::proxy_status::parsed:
      if (r.length == 0 || r.length > size) std::abort();
      if (r.header.version == 1 && r.length > grayroute::kProxyV1MaxLength) std::abort();
      if (r.header.tlv_offset + r.header.tlv_length > r.length) std::abort();
      for (std::size_t n = 0; n < r.length; ++n) {
        if (grayroute::parse_proxy_protocol(copy.get(), n).status != grayroute::proxy_status::need_more) std::abort();
      }
      if (grayroute::starts_with_proxy_protocol(copy.get(), size) != true) std::abort();
      break;
    case grayroute::proxy_status::need_more:
      if (r.length <= size) std::abort();
      break;
    case grayroute::proxy_status::invalid:
      break;
  }
  return 0;
}
