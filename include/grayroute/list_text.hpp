// Gray lists as text: one address or network per line, an optional route name
// after it, '#' starts a comment.
//
//   # QA office and two testers
//   192.168.116.0/24
//   10.1.2.3
//   2001:db8::/48   beta
//
// A bad line rejects the whole text with its line number, so a typo never
// half-applies a list: callers keep the list they had. Reading a file is in
// list_file.hpp, so that the core needs no file I/O.
#ifndef GRAYROUTE_LIST_TEXT_HPP
#define GRAYROUTE_LIST_TEXT_HPP

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config_error.hpp"
#include "detail/ascii.hpp"
#include "detail/config_lines.hpp"
#include "ip.hpp"
#include "memory_store.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

struct list_error {
  std::size_t line = 0;  ///< 1-based; 0 when the file itself could not be read
  std::string message;   ///< names the bad value
};

/// "line 3: \"10.0.0.1/8\" is not an address or network ...", or the message alone for line 0.
inline std::string to_string(const list_error& error) {
  return error.line ? "line " + std::to_string(error.line) + ": " + error.message : error.message;
}

struct parsed_list {
  std::vector<store_entry> entries;  ///< empty when there is an error
  std::optional<list_error> error;

  explicit operator bool() const noexcept { return !error; }
};

/// Parses list text. `routes` are the route names a line may name (index = route_id);
/// a line without one is on `routes[1]` (gray).
[[nodiscard]] inline parsed_list parse_list(std::string_view text,
                                            const std::vector<std::string>& routes = {"production", "gray"}) {
  parsed_list out;
  std::size_t number = 0;
  while (const auto next = detail::next_config_line(text, number)) {
    const std::string_view line = *next;
    std::size_t space = 0;
    while (space < line.size() && !detail::is_ows(line[space])) ++space;
    const std::string_view network_text = line.substr(0, space);
    const std::string_view route_text = detail::trim_ows(line.substr(space));
    const auto network = parse_network(network_text);
    if (!network) {
      out.error = list_error{number, bad_network_message(network_text)};
      out.entries.clear();
      return out;
    }
    route_id route = kGray;
    if (!route_text.empty()) {
      std::size_t i = 0;
      while (i < routes.size() && routes[i] != route_text) ++i;
      if (i == routes.size()) {
        out.error = list_error{number, "unknown route " + detail::quote_value(route_text)};
        out.entries.clear();
        return out;
      }
      route = static_cast<route_id>(i);
    }
    out.entries.push_back({*network, route});
  }
  return out;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_LIST_TEXT_HPP
