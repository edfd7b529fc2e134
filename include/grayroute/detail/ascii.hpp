// ASCII helpers for HTTP text: locale-free, constexpr, no allocation.
#ifndef GRAYROUTE_DETAIL_ASCII_HPP
#define GRAYROUTE_DETAIL_ASCII_HPP

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

constexpr char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

/// Eight bytes with 'A'..'Z' lowered, every other byte (UTF-8 included) unchanged.
constexpr std::uint64_t lower_word(std::uint64_t x) noexcept {
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  const std::uint64_t low7 = x & ~kHigh;
  const std::uint64_t at_least_a = low7 + 0x3f3f3f3f3f3f3f3full;  // high bit: byte >= 'A'
  const std::uint64_t past_z = low7 + 0x2525252525252525ull;      // high bit: byte > 'Z'
  const std::uint64_t upper = at_least_a & ~past_z & ~x & kHigh;
  return x | (upper >> 2);
}

inline std::uint64_t load_word(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

/// iequals for two strings of the same length; with `b_lowered`, b is known to be
/// lower case already (a configured name) and only a is folded.
constexpr bool iequals_same_size(std::string_view a, std::string_view b, bool b_lowered = false) noexcept {
  const std::size_t n = a.size();
#if defined(__GNUC__) || defined(__clang__)
  if (!__builtin_is_constant_evaluated() && n >= 8) {
    auto word_b = [&](std::size_t at) { return b_lowered ? load_word(b.data() + at) : lower_word(load_word(b.data() + at)); };
    // Whole words, then one last word overlapping the previous one.
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      if (lower_word(load_word(a.data() + i)) != word_b(i)) return false;
    }
    return i == n || lower_word(load_word(a.data() + n - 8)) == word_b(n - 8);
  }
#endif
  for (std::size_t i = 0; i < n; ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

/// Header names compare case-insensitively (RFC 9110 5.1), eight bytes at a time:
/// names are compared on every header of every request, and most differ in length,
/// which this inline check settles without a call.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && iequals_same_size(a, b);
}

/// iequals where `lowered` is already lower case: half the folding.
constexpr bool iequals_lowered(std::string_view text, std::string_view lowered) noexcept {
  return text.size() == lowered.size() && iequals_same_size(text, lowered, true);
}

inline std::string_view lowered_copy(std::string_view text, std::string& out) {
  out.assign(text);
  for (char& c : out) c = to_lower(c);
  return out;
}

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

/// Strips optional whitespace (SP / HTAB) from both ends.
constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

constexpr bool is_digit(char c) noexcept { return static_cast<unsigned char>(c - '0') < 10; }

/// RFC 9110 tchar: the characters of a token.
constexpr bool is_tchar(char c) noexcept {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

/// The lengths of a set of header names, as bits: a request header whose length is
/// not among them is skipped with one test instead of a comparison per name.
class name_lengths {
 public:
  constexpr void add(std::size_t length) noexcept { bits_ |= bit(length); }
  constexpr bool may_match(std::size_t length) const noexcept { return (bits_ & bit(length)) != 0; }

 private:
  static constexpr std::uint64_t bit(std::size_t length) noexcept { return std::uint64_t{1} << (length < 63 ? length : 63); }
  std::uint64_t bits_ = 0;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_ASCII_HPP
