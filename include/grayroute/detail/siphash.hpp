// SipHash-2-4 (Aumasson and Bernstein, 2012) with a 128-bit key and a 64-bit output:
// the keyed MAC of decision tokens. Written from the paper and checked against its 64
// reference vectors (tests/decision_token_test.cpp). Little-endian reads on any host.
#ifndef GRAYROUTE_DETAIL_SIPHASH_HPP
#define GRAYROUTE_DETAIL_SIPHASH_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "convert.hpp"
#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

struct siphash_key {
  std::uint64_t k0 = 0, k1 = 0;
};

/// The key as the paper writes it: 16 bytes, k0 from bytes 0-7, k1 from 8-15, each little-endian.
constexpr siphash_key siphash_key_from_bytes(const std::uint8_t* bytes) noexcept {
  siphash_key key;
  for (int i = 7; i >= 0; --i) key.k0 = key.k0 << 8 | bytes[i];
  for (int i = 15; i >= 8; --i) key.k1 = key.k1 << 8 | bytes[i];
  return key;
}

constexpr std::uint64_t rotl64(std::uint64_t x, int r) noexcept { return (x << r) | (x >> (64 - r)); }

struct sip_state {
  std::uint64_t v0, v1, v2, v3;

  constexpr void round() noexcept {
    v0 += v1;
    v1 = rotl64(v1, 13);
    v1 ^= v0;
    v0 = rotl64(v0, 32);
    v2 += v3;
    v3 = rotl64(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl64(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl64(v1, 17);
    v1 ^= v2;
    v2 = rotl64(v2, 32);
  }

  constexpr void compress(std::uint64_t m) noexcept {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

constexpr std::uint64_t siphash24(const siphash_key& key, const unsigned char* data, std::size_t length) noexcept {
  sip_state s{key.k0 ^ 0x736f6d6570736575ull, key.k1 ^ 0x646f72616e646f6dull, key.k0 ^ 0x6c7967656e657261ull,
              key.k1 ^ 0x7465646279746573ull};
  const std::size_t whole = length & ~std::size_t{7};
  for (std::size_t i = 0; i < whole; i += 8) {
    std::uint64_t m = 0;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (!__builtin_is_constant_evaluated()) {
      std::memcpy(&m, data + i, 8);  // one load where the host is little-endian already
    } else
#endif
    {
      for (int b = 7; b >= 0; --b) m = m << 8 | data[i + static_cast<std::size_t>(b)];
    }
    s.compress(m);
  }
  // The last block: the remaining bytes and the length's low byte on top.
  std::uint64_t last = convert<std::uint64_t>(length & 0xff) << 56;
  for (std::size_t i = whole; i < length; ++i) last |= static_cast<std::uint64_t>(data[i]) << (8 * (i - whole));
  s.compress(last);
  s.v2 ^= 0xff;
  s.round();
  s.round();
  s.round();
  s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_SIPHASH_HPP
