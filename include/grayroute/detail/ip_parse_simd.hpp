// SSSE3 dotted-quad parser, chosen at run time when the CPU has SSSE3 (any x86-64
// since 2006); the scalar parsers stay the fallback and the reference.
//
// The idea is the one Lemire and Muła published for IPv4: classify 16 bytes at once
// (digit / dot), read the octet lengths off the dot positions, and let one shuffle
// move each octet's digits into its own 4-byte lane, where two multiply-adds give
// the four octet values. Validation is bit arithmetic on the masks: no branch
// depends on the digits, so random input costs the same as repeated input.
#ifndef GRAYROUTE_DETAIL_IP_PARSE_SIMD_HPP
#define GRAYROUTE_DETAIL_IP_PARSE_SIMD_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../version.hpp"
#include "ip_parse_fast.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define GRAYROUTE_HAS_SSSE3_PATH 1
#include <tmmintrin.h>  // SSSE3 and the SSE2 it builds on; not the whole <immintrin.h>
#else
#define GRAYROUTE_HAS_SSSE3_PATH 0
#endif

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

#if GRAYROUTE_HAS_SSSE3_PATH

// For each octet-length pattern (L1..L4 in 1..3, index (L1-1)*27 + (L2-1)*9 +
// (L3-1)*3 + (L4-1)), the shuffle that puts octet i's digits right-aligned in bytes
// 4i..4i+2 of lane i; 0x80 fills with zero.
inline constexpr std::array<std::array<std::uint8_t, 16>, 81> kQuadShuffles = [] {
  std::array<std::array<std::uint8_t, 16>, 81> table{};
  for (std::size_t id = 0; id < 81; ++id) {
    const std::size_t lengths[4] = {id / 27 + 1, id / 9 % 3 + 1, id / 3 % 3 + 1, id % 3 + 1};
    auto& mask = table[id];
    for (auto& b : mask) b = 0x80;
    std::size_t start = 0;
    for (std::size_t octet = 0; octet < 4; ++octet) {
      const std::size_t length = lengths[octet];
      for (std::size_t k = 0; k < length; ++k) mask[octet * 4 + (3 - length) + k] = static_cast<std::uint8_t>(start + k);
      start += length + 1;
    }
  }
  return table;
}();

inline std::uint64_t load_u64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian on every x86
}

__attribute__((target("ssse3"))) inline bool parse_v4_ssse3(const char* text, std::size_t length,
                                                             std::uint32_t& out) noexcept {
  if (length < 8 || length > 15) return false;  // "1.2.3.4" (7 bytes) goes to the scalar path
  // Two overlapping 8-byte loads cover the text exactly; no byte past it is read.
  const std::uint64_t low = load_u64(text);
  const std::uint64_t high = length == 8 ? 0 : load_u64(text + length - 8) >> ((16 - length) * 8);
  const __m128i in = _mm_set_epi64x(static_cast<long long>(high), static_cast<long long>(low));
  const __m128i values = _mm_sub_epi8(in, _mm_set1_epi8('0'));
  const __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(values, _mm_set1_epi8(9)), values);
  const std::uint32_t valid = (1u << length) - 1;
  const std::uint32_t digits = static_cast<std::uint32_t>(_mm_movemask_epi8(is_digit)) & valid;
  const std::uint32_t dots = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(in, _mm_set1_epi8('.')))) & valid;
  // Exactly three dots, and nothing but digits elsewhere.
  const std::uint32_t rest = dots & (dots - 1), last = rest & (rest - 1);
  if ((digits | dots) != valid || last == 0 || (last & (last - 1)) != 0 || (dots & (dots >> 1)) != 0) return false;
  const unsigned p1 = static_cast<unsigned>(__builtin_ctz(dots));
  const unsigned p2 = static_cast<unsigned>(__builtin_ctz(rest));
  const unsigned p3 = static_cast<unsigned>(__builtin_ctz(last));
  const unsigned l1 = p1, l2 = p2 - p1 - 1, l3 = p3 - p2 - 1, l4 = static_cast<unsigned>(length) - p3 - 1;
  // Lengths 1..3 each (0 is impossible: no adjacent dots, none at either end).
  if (p1 == 0 || p3 + 1 == length || l1 > 3 || l2 > 3 || l3 > 3 || l4 > 3) return false;
  // A leading zero: a '0' that starts an octet and is followed by a digit.
  const std::uint32_t zeros = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(in, _mm_set1_epi8('0'))));
  const std::uint32_t starts = 1u | (dots << 1);
  if (zeros & starts & (digits >> 1)) return false;
  const auto& shuffle = kQuadShuffles[(l1 - 1) * 27 + (l2 - 1) * 9 + (l3 - 1) * 3 + (l4 - 1)];
  const __m128i lanes = _mm_shuffle_epi8(values, _mm_loadu_si128(reinterpret_cast<const __m128i*>(shuffle.data())));
  // Per lane: 100*h + 10*t and 1*o, then their sum.
  const __m128i pairs = _mm_maddubs_epi16(lanes, _mm_set1_epi32(0x00010a64));
  const __m128i octets = _mm_madd_epi16(pairs, _mm_set1_epi16(1));
  if (_mm_movemask_epi8(_mm_cmpgt_epi32(octets, _mm_set1_epi32(255))) != 0) return false;
  // Gather the low byte of each lane: bytes 0, 4, 8, 12 -> the value, most significant first.
  const __m128i packed = _mm_shuffle_epi8(octets, _mm_setr_epi8(12, 8, 4, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
  out = static_cast<std::uint32_t>(_mm_cvtsi128_si32(packed));
  return true;
}

// pshufb masks that shift a vector right by s bytes, filling with zeros.
inline constexpr std::array<std::array<std::uint8_t, 16>, 17> kShiftRight = [] {
  std::array<std::array<std::uint8_t, 16>, 17> table{};
  for (std::size_t shift = 0; shift <= 16; ++shift) {
    for (std::size_t i = 0; i < 16; ++i) table[shift][i] = static_cast<std::uint8_t>(i + shift < 16 ? i + shift : 0x80);
  }
  return table;
}();

// Bytes [16k, 16k + 16) of the text, zero past its end, read without touching a
// byte outside it: whole chunks load directly, the last one loads the text's final
// 16 bytes and shifts, and texts under 16 bytes are assembled from 8-byte loads.
__attribute__((target("ssse3"))) inline __m128i load_chunk(const char* text, std::size_t length,
                                                            std::size_t k) noexcept {
  const std::size_t start = 16 * k;
  if (start >= length) return _mm_setzero_si128();
  if (start + 16 <= length) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(text + start));
  const std::size_t rest = length - start;
  if (length >= 16) {
    const __m128i last = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text + length - 16));
    return _mm_shuffle_epi8(last, _mm_loadu_si128(reinterpret_cast<const __m128i*>(kShiftRight[16 - rest].data())));
  }
  std::uint64_t low = 0, high = 0;
  if (length >= 8) {
    low = load_u64(text);
    high = length == 8 ? 0 : load_u64(text + length - 8) >> ((16 - length) * 8);
  } else {
    std::memcpy(&low, text, length);
  }
  return _mm_set_epi64x(static_cast<long long>(high), static_cast<long long>(low));
}

__attribute__((target("ssse3"))) inline std::uint64_t byte_mask(__m128i a, __m128i b, __m128i c) noexcept {
  return static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm_movemask_epi8(a))) |
         static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm_movemask_epi8(b))) << 16 |
         static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm_movemask_epi8(c))) << 32;
}

// The value of the hex group in text[end - digits, end): the 4 bytes before `end`
// are read at once and turned into nibbles with SWAR arithmetic (the caller has
// checked they are hex digits), so groups of random length cost no branches.
inline std::uint32_t group_value(const char* text, std::size_t end, std::size_t digits) noexcept {
  std::uint32_t window = 0;
  if (end >= 4) {
    std::memcpy(&window, text + end - 4, 4);
  } else {
    for (std::size_t i = 0; i < end; ++i) window |= static_cast<std::uint32_t>(static_cast<unsigned char>(text[i])) << (8 * (4 - end + i));
  }
  window &= ~0u << (8 * (4 - digits));
  // '0'-'9' -> low nibble; 'a'-'f' and 'A'-'F' -> low nibble + 9 (bit 6 marks letters).
  const std::uint32_t n = (window & 0x0f0f0f0fu) + 9 * ((window >> 6) & 0x01010101u);
  // Nibbles a b c d (a first) -> bytes ab and cd -> abcd.
  const std::uint32_t pairs = (n << 4 | n >> 8) & 0x00ff00ffu;
  return (pairs & 0xff) << 8 | pairs >> 16;
}

// IPv6: classify all 45 bytes at once (hex digit, colon, dot), then walk the colon
// mask; each group's value comes from a fixed 4-byte window, so groups of random
// length cost no mispredictions beyond the walk itself.
__attribute__((target("ssse3"))) inline bool parse_v6_ssse3(const char* text, std::size_t length,
                                                             std::uint64_t& high, std::uint64_t& low) noexcept {
  if (length < 2 || length > 45) return false;
  // "::ffff:a.b.c.d" is how an IPv4 client reaches a dual-stack listener, so it is
  // the IPv6 form a gateway sees most: parse the dotted quad directly. Anything
  // else after the prefix ("::ffff:1:2") takes the general path below.
  if (length >= 14 && length <= 22) {
    std::uint64_t head = 0;
    std::memcpy(&head, text, 7);
    std::uint32_t v4 = 0;
    const bool mapped_prefix = (head | 0x0000202020200000ull) == 0x003a666666663a3aull;  // "::ffff:", any case
    if (mapped_prefix && (length >= 15 ? parse_v4_ssse3(text + 7, length - 7, v4)
                                       : parse_v4_fast(text + 7, length - 7, v4))) {
      high = 0;
      low = 0xffffull << 32 | v4;
      return true;
    }
  }
  __m128i colon_v[3], dot_v[3], hex_v[3];
  for (std::size_t i = 0; i < 3; ++i) {
    const __m128i x = load_chunk(text, length, i);
    const __m128i digit = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    const __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(digit, _mm_set1_epi8(9)), digit);
    const __m128i letter = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
    const __m128i is_letter = _mm_cmpeq_epi8(_mm_min_epu8(letter, _mm_set1_epi8(5)), letter);
    colon_v[i] = _mm_cmpeq_epi8(x, _mm_set1_epi8(':'));
    dot_v[i] = _mm_cmpeq_epi8(x, _mm_set1_epi8('.'));
    hex_v[i] = _mm_or_si128(is_digit, is_letter);
  }
  const std::uint64_t valid = (std::uint64_t{1} << length) - 1;
  const std::uint64_t colons = byte_mask(colon_v[0], colon_v[1], colon_v[2]) & valid;
  const std::uint64_t dots = byte_mask(dot_v[0], dot_v[1], dot_v[2]) & valid;
  const std::uint64_t hex = byte_mask(hex_v[0], hex_v[1], hex_v[2]) & valid;
  if (colons == 0) return false;

  std::uint32_t groups[8] = {};
  int count = 0;
  std::size_t groups_end = length;  // where the hex groups stop (before an IPv4 tail)
  std::uint32_t tail = 0;
  if (dots != 0) {
    const std::size_t last_colon = 63 - static_cast<std::size_t>(__builtin_clzll(colons));
    groups_end = last_colon + 1;
    const std::size_t tail_length = length - groups_end;
    const bool ok = tail_length >= 8 ? parse_v4_ssse3(text + groups_end, tail_length, tail)
                                     : parse_v4_fast(text + groups_end, tail_length, tail);
    if (!ok) return false;
  }
  const std::uint64_t head = (std::uint64_t{1} << groups_end) - 1;
  if (((hex | colons) & head) != head) return false;
  const std::uint64_t doubles = colons & (colons >> 1);
  if (doubles & (doubles - 1)) return false;  // two "::", or ":::"

  int gap = -1;
  std::size_t pos = 0;
  if (colons & 1) {
    if (!(doubles & 1)) return false;  // one leading colon
    gap = 0;
    pos = 2;
  }
  while (pos < groups_end) {
    const std::uint64_t ahead = colons >> pos;
    const std::size_t end = ahead ? pos + static_cast<std::size_t>(__builtin_ctzll(ahead)) : length;
    const std::size_t digits = end - pos;
    if (digits == 0 || digits > 4 || count == 8) return false;
    groups[count++] = group_value(text, end, digits);
    if (end == length) break;
    if (end + 1 == groups_end) {
      if (dots == 0) return false;  // a single trailing colon
      break;                         // the colon before the IPv4 tail
    }
    if (colons >> (end + 1) & 1) {
      if (gap >= 0) return false;
      gap = count;
      pos = end + 2;
    } else {
      pos = end + 1;
    }
  }
  if (dots != 0) {
    if (count > 6) return false;
    groups[count++] = tail >> 16;
    groups[count++] = tail & 0xffff;
  }
  return pack_v6_groups(groups, count, gap, high, low);
}

// Built for SSSE3 (-mssse3, -march=x86-64-v2 or later), the choice is made at compile
// time and the CPU is never asked.
#if defined(__SSSE3__)
inline constexpr bool kSsse3AtCompileTime = true;
#else
inline constexpr bool kSsse3AtCompileTime = false;
#endif

// Otherwise it is made at run time, on first use, without a global constructor: a
// byte that is 0 until the first parse, then 1 (no SSSE3) or 2. Threads racing on
// the first parse each ask the CPU and store the same answer, so relaxed atomic
// accesses are enough, and every later parse reads one byte (no guard variable, no
// lock). The builtins (this path is GCC/Clang-only anyway) spare ip.hpp <atomic>.
inline unsigned char cpu_ssse3_state = 0;

inline bool cpu_has_ssse3() noexcept {
  if (kSsse3AtCompileTime) return true;
  unsigned char state = __atomic_load_n(&cpu_ssse3_state, __ATOMIC_RELAXED);
  if (state == 0) {
    __builtin_cpu_init();  // may run before libgcc's own constructor has
    state = __builtin_cpu_supports("ssse3") ? 2 : 1;
    __atomic_store_n(&cpu_ssse3_state, state, __ATOMIC_RELAXED);
  }
  return state == 2;
}

#endif  // GRAYROUTE_HAS_SSSE3_PATH

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_IP_PARSE_SIMD_HPP
