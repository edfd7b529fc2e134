// Branch-light address parsers for the request path.
//
// Real client addresses have octets and groups of random length, so a parser that
// branches on every digit mispredicts several times per address; that, not the
// arithmetic, is what inet_pton spends its time on. These parsers copy the text
// into a zero-padded buffer (so they can look ahead without bounds checks), decode
// a whole octet or group at once from a fixed window of bytes, and fold every
// validity check into one flag tested at the end. They accept exactly what the
// reference parsers in ip.hpp accept; tests/ip_test.cpp and the parse_ip fuzzer
// check the two against each other.
#ifndef GRAYROUTE_DETAIL_IP_PARSE_FAST_HPP
#define GRAYROUTE_DETAIL_IP_PARSE_FAST_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

// Hex digit values; 0x10 marks every other byte (including the padding NUL).
inline constexpr std::array<std::uint8_t, 256> kHexDigit = [] {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = 0x10;
  for (std::size_t c = '0'; c <= '9'; ++c) t[c] = static_cast<std::uint8_t>(c - '0');
  for (std::size_t c = 'a'; c <= 'f'; ++c) t[c] = static_cast<std::uint8_t>(c - 'a' + 10);
  for (std::size_t c = 'A'; c <= 'F'; ++c) t[c] = static_cast<std::uint8_t>(c - 'A' + 10);
  return t;
}();

// Selects b where `take` is 1 and a where it is 0, without a branch.
constexpr std::uint32_t select(std::uint32_t take, std::uint32_t a, std::uint32_t b) noexcept {
  return a ^ ((a ^ b) & (0u - take));
}

/// Expands the "::" standing at group `gap` (-1: none) and packs eight groups into
/// two 64-bit halves; false when the group count does not make 128 bits.
template <class Group>
constexpr bool pack_v6_groups(Group (&groups)[8], int count, int gap, std::uint64_t& high,
                              std::uint64_t& low) noexcept {
  if (gap >= 0) {
    if (count > 7) return false;
    const int zeros = 8 - count;
    for (int i = count - 1; i >= gap; --i) groups[i + zeros] = groups[i];
    for (int i = gap; i < gap + zeros; ++i) groups[i] = 0;
  } else if (count != 8) {
    return false;
  }
  high = 0;
  low = 0;
  for (int i = 0; i < 4; ++i) high = high << 16 | groups[i];
  for (int i = 4; i < 8; ++i) low = low << 16 | groups[i];
  return true;
}

// Copies 7..16 bytes with two fixed-size, overlapping 8-byte moves instead of a
// variable-length memcpy call.
inline void copy_short(unsigned char* out, const char* text, std::size_t length) noexcept {
  if (length >= 8) {
    std::memcpy(out, text, 8);
    std::memcpy(out + length - 8, text + length - 8, 8);
  } else {
    std::memcpy(out, text, length);
  }
}

// Longest text parse_ip accepts, plus room for the look-ahead windows.
inline constexpr std::size_t kPaddedText = 64;

/// Decodes the dotted quad at buf[pos...]; `bad` collects any violation. Returns the
/// position after it. The buffer must be zero-padded for 4 bytes past the text.
inline std::size_t decode_dotted_quad(const unsigned char* buf, std::size_t pos, std::uint32_t& value,
                                      std::uint32_t& bad) noexcept {
  std::uint32_t v4 = 0;
  for (int i = 0; i < 4; ++i) {
    const std::uint32_t d0 = buf[pos] - 48u, d1 = buf[pos + 1] - 48u, d2 = buf[pos + 2] - 48u;
    const std::uint32_t g0 = d0 < 10, g1 = g0 & (d1 < 10), g2 = g1 & (d2 < 10);
    const std::uint32_t two = d0 * 10 + d1;
    const std::uint32_t octet = select(g2, select(g1, d0, two), two * 10 + d2);
    // No digit, a leading zero, or more than 255.
    bad |= (g0 ^ 1) | (g1 & (d0 == 0)) | (octet > 255);
    v4 = v4 << 8 | (octet & 0xff);
    pos += g0 + g1 + g2;
    if (i < 3) bad |= buf[pos++] != '.';
  }
  value = v4;
  return pos;
}

inline bool parse_v4_fast(const char* text, std::size_t length, std::uint32_t& out) noexcept {
  if (length < 7 || length > 15) return false;
  unsigned char buf[20] = {};
  copy_short(buf, text, length);
  std::uint32_t bad = 0;
  const std::size_t end = decode_dotted_quad(buf, 0, out, bad);
  return !bad && end == length;
}

// One IPv6 group at buf[pos...]: 1-4 hex digits. Returns the digit count (0-4) and
// flags a fifth digit as bad.
inline std::uint32_t decode_group(const unsigned char* buf, std::size_t pos, std::uint32_t& group,
                                  std::uint32_t& bad) noexcept {
  const std::uint32_t h0 = kHexDigit[buf[pos]], h1 = kHexDigit[buf[pos + 1]], h2 = kHexDigit[buf[pos + 2]],
                      h3 = kHexDigit[buf[pos + 3]], h4 = kHexDigit[buf[pos + 4]];
  const std::uint32_t g0 = h0 < 16, g1 = g0 & (h1 < 16), g2 = g1 & (h2 < 16), g3 = g2 & (h3 < 16);
  bad |= g3 & (h4 < 16);
  const std::uint32_t n = g0 + g1 + g2 + g3;
  const std::uint32_t all = (h0 & 15) << 12 | (h1 & 15) << 8 | (h2 & 15) << 4 | (h3 & 15);
  group = (all >> (16 - 4 * n)) & (0u - (n != 0));
  return n;
}

inline bool parse_v6_fast(const char* text, std::size_t length, std::uint64_t& high, std::uint64_t& low) noexcept {
  if (length < 2 || length > 45) return false;
  unsigned char buf[kPaddedText] = {};
  std::memcpy(buf, text, length);
  std::uint32_t groups[8] = {};
  std::uint32_t bad = 0;
  int count = 0;
  int gap = -1;
  std::size_t pos = 0;
  if (buf[0] == ':') {
    bad |= buf[1] != ':';
    pos = 2;
    gap = 0;
  }
  while (pos < length) {
    std::uint32_t group = 0;
    const std::uint32_t digits = decode_group(buf, pos, group, bad);
    const unsigned char next = buf[pos + digits];
    if (next == '.') {
      // An IPv4 tail: the last 32 bits, decimal.
      std::uint32_t v4 = 0;
      const std::size_t end = decode_dotted_quad(buf, pos, v4, bad);
      if (bad || end != length || count > 6) return false;
      groups[count++] = v4 >> 16;
      groups[count++] = v4 & 0xffff;
      pos = length;
      break;
    }
    if (digits == 0 || count == 8) return false;
    groups[count++] = group;
    pos += digits;
    if (pos == length) break;
    if (next != ':' || ++pos == length) return false;  // a stray byte, or a single trailing colon
    if (buf[pos] == ':') {
      if (gap >= 0) return false;
      gap = count;
      ++pos;
    }
  }
  if (bad) return false;
  return pack_v6_groups(groups, count, gap, high, low);
}

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_IP_PARSE_FAST_HPP
