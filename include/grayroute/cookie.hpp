// Reading one cookie out of a Cookie header line (RFC 6265 5.4), without copying.
#ifndef GRAYROUTE_COOKIE_HPP
#define GRAYROUTE_COOKIE_HPP

#include <optional>
#include <string_view>

#include "detail/ascii.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

namespace detail {

// The value of the pair whose "=" is at line[equals]: up to the next ';', trimmed,
// without surrounding double quotes.
constexpr std::string_view cookie_value_after(std::string_view line, std::size_t equals) noexcept {
  const std::string_view rest = line.substr(equals + 1);
  std::string_view value = trim_ows(rest.substr(0, rest.find(';')));
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
  return value;
}

// The plain reading: split at ';', trim, compare each pair's name.
constexpr std::optional<std::string_view> find_cookie_by_pairs(std::string_view line, std::string_view name) noexcept {
  std::size_t start = 0;
  while (start <= line.size()) {
    const std::size_t semicolon = line.find(';', start);
    const std::size_t end = semicolon == std::string_view::npos ? line.size() : semicolon;
    const std::string_view pair = line.substr(start, end - start);
    const std::size_t equals = pair.find('=');
    if (equals != std::string_view::npos && trim_ows(pair.substr(0, equals)) == name) {
      return cookie_value_after(line, start + equals);
    }
    if (semicolon == std::string_view::npos) break;
    start = semicolon + 1;
  }
  return std::nullopt;
}

}  // namespace detail

/// The value of cookie `name` in one Cookie header line ("a=1; b=2"), without
/// surrounding double quotes; nullopt if absent. Names are case-sensitive. The first
/// occurrence wins, as browsers send the most specific cookie first.
[[nodiscard]] constexpr std::optional<std::string_view> find_cookie(std::string_view line,
                                                                    std::string_view name) noexcept {
  // Search for the name itself (memchr-fast) and accept an occurrence that starts a
  // pair (only whitespace back to ';' or the start) and is followed by '=': the same
  // first pair the plain reading finds, without walking every pair. Names that could
  // straddle the separators take the plain reading.
  if (name.empty() || name.find_first_of("; \t=") != std::string_view::npos) {
    return detail::find_cookie_by_pairs(line, name);
  }
  for (std::size_t at = line.find(name); at != std::string_view::npos; at = line.find(name, at + 1)) {
    std::size_t before = at;
    while (before > 0 && detail::is_ows(line[before - 1])) --before;
    if (before != 0 && line[before - 1] != ';') continue;
    std::size_t after = at + name.size();
    while (after < line.size() && detail::is_ows(line[after])) ++after;
    if (after == line.size() || line[after] != '=') continue;
    return detail::cookie_value_after(line, after);
  }
  return std::nullopt;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_COOKIE_HPP
