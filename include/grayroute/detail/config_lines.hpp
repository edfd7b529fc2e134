// Line-oriented configuration text (list files, key files): one reader for what counts
// as a line, a comment and a line number, so every file format reports errors alike.
#ifndef GRAYROUTE_DETAIL_CONFIG_LINES_HPP
#define GRAYROUTE_DETAIL_CONFIG_LINES_HPP

#include <cstddef>
#include <optional>
#include <string_view>

#include "../version.hpp"
#include "ascii.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

/// The next line of `text` with content: '#' to the end of the line, a CR before the LF
/// and surrounding blanks removed; consumes it from `text`. `number` counts every line
/// read, blank ones included (1-based, for error messages). nullopt at the end.
inline std::optional<std::string_view> next_config_line(std::string_view& text, std::size_t& number) noexcept {
  while (!text.empty()) {
    ++number;
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = trim_ows(line);
    if (!line.empty()) return line;
  }
  return std::nullopt;
}

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_CONFIG_LINES_HPP
