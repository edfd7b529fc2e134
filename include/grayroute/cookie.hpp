// Reading one cookie out of a Cookie header line (RFC 6265 5.4), without copying.
#ifndef GRAYROUTE_COOKIE_HPP
#define GRAYROUTE_COOKIE_HPP

#include <optional>
#include <string_view>

#include "detail/ascii.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// The value of cookie `name` in one Cookie header line ("a=1; b=2"), without
/// surrounding double quotes; nullopt if absent. Names are case-sensitive. The first
/// occurrence wins, as browsers send the most specific cookie first.
[[nodiscard]] constexpr std::optional<std::string_view> find_cookie(std::string_view line,
                                                                    std::string_view name) noexcept {
  while (!line.empty()) {
    const std::size_t semicolon = line.find(';');
    const std::string_view pair = detail::trim_ows(line.substr(0, semicolon));
    const std::size_t equals = pair.find('=');
    if (equals != std::string_view::npos && detail::trim_ows(pair.substr(0, equals)) == name) {
      std::string_view value = detail::trim_ows(pair.substr(equals + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      return value;
    }
    if (semicolon == std::string_view::npos) break;
    line.remove_prefix(semicolon + 1);
  }
  return std::nullopt;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_COOKIE_HPP
