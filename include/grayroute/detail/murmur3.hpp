// MurmurHash3 x86_32 (Austin Appleby, public domain), as Unleash and many feature-flag
// systems use for sticky percentage rollouts. Written from the published algorithm
// and checked against its published test vectors.
#ifndef GRAYROUTE_DETAIL_MURMUR3_HPP
#define GRAYROUTE_DETAIL_MURMUR3_HPP

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

constexpr std::uint32_t rotl32(std::uint32_t x, int r) noexcept { return (x << r) | (x >> (32 - r)); }

constexpr std::uint32_t murmur3_x86_32(const unsigned char* data, std::size_t length, std::uint32_t seed) noexcept {
  constexpr std::uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
  std::uint32_t h = seed;
  const std::size_t blocks = length / 4;
  for (std::size_t i = 0; i < blocks; ++i) {
    const unsigned char* p = data + i * 4;
    // Little-endian block reads, whatever the host order, so hashes agree everywhere.
    std::uint32_t k = static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                      static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
    k *= c1;
    k = rotl32(k, 15);
    k *= c2;
    h ^= k;
    h = rotl32(h, 13);
    h = h * 5 + 0xe6546b64u;
  }
  const unsigned char* tail = data + blocks * 4;
  std::uint32_t k = 0;
  switch (length & 3) {
    case 3:
      k ^= static_cast<std::uint32_t>(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      k ^= static_cast<std::uint32_t>(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      k ^= tail[0];
      k *= c1;
      k = rotl32(k, 15);
      k *= c2;
      h ^= k;
  }
  h ^= static_cast<std::uint32_t>(length);
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

inline std::uint32_t murmur3_x86_32(std::string_view text, std::uint32_t seed) noexcept {
  return murmur3_x86_32(reinterpret_cast<const unsigned char*>(text.data()), text.size(), seed);
}

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_MURMUR3_HPP
