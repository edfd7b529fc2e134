// ASCII helpers for HTTP text: locale-free, constexpr, no allocation.
#ifndef GRAYROUTE_DETAIL_ASCII_HPP
#define GRAYROUTE_DETAIL_ASCII_HPP

#include <string_view>

#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

constexpr char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

/// Header names compare case-insensitively (RFC 9110 5.1).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
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

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_ASCII_HPP
