// parse_network: accepted networks have no host bits, contain their own address,
// and round-trip through to_string.
#include <grayroute/ip.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto network = grayroute::parse_network(text);
  if (!network) {
    if (grayroute::bad_network_message(text).empty()) std::abort();
    return 0;
  }
  // v4-mapped networks are refused in text (only a mapped host is an address).
  if (network->address().is_v4_mapped() && network->prefix_length() != 128) std::abort();
  if (network->prefix_length() > (network->address().is_v4() ? 32u : 128u)) std::abort();
  if (!network->contains(network->address())) std::abort();
  if (grayroute::ip_network::make(network->address(), network->prefix_length()) != network) std::abort();
  if (grayroute::parse_network(grayroute::to_string(*network)) != network) std::abort();
  return 0;
}
