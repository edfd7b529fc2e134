// Gray lists as text: one address or network per line, an optional route name
// after it, '#' starts a comment.
//
//   # QA office and two testers
//   192.168.116.0/24
//   10.1.2.3
//   2001:db8::/48   beta
//
// A bad line rejects the whole text with its line number, so a typo never
// half-applies a list: callers keep the list they had.
//
// A file is applied only when it is complete and stable (list_file_watch): it ends in a
// newline (or is empty) and two looks some time apart read the same bytes, so a file
// rewritten in place (truncated, then written) is never applied empty or half-written.
// Writing a new file and renaming it over the old one is still the way to update a
// list: the rename is atomic, and the next two looks apply it.
#ifndef GRAYROUTE_LIST_FILE_HPP
#define GRAYROUTE_LIST_FILE_HPP

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config_error.hpp"
#include "detail/ascii.hpp"
#include "ip.hpp"
#include "memory_store.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

struct list_error {
  std::size_t line = 0;  ///< 1-based; 0 when the file itself could not be read
  std::string message;   ///< names the bad value

  std::string to_string() const { return line ? "line " + std::to_string(line) + ": " + message : message; }
};

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
  while (!text.empty()) {
    ++number;
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = detail::trim_ows(line);
    if (line.empty()) continue;
    std::size_t space = 0;
    while (space < line.size() && !detail::is_ows(line[space])) ++space;
    const std::string_view network_text = line.substr(0, space);
    const std::string_view route_text = detail::trim_ows(line.substr(space));
    const auto network = parse_network(network_text);
    if (!network) {
      out.error = list_error{number, detail::quote_value(network_text) +
                                         " is not an address or network (a network must have no host bits set)"};
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

/// Reads a list file whole into `text`; false with an error (line 0) when the path is
/// missing, unreadable or not a regular file (a directory is not an empty list).
[[nodiscard]] inline bool read_list_file(const std::string& path, std::string& text, list_error& error) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!ec && status.type() == std::filesystem::file_type::directory) {
    error = list_error{0, detail::quote_value(path) + " is a directory, not a list file"};
    return false;
  }
  std::ifstream file(path, std::ios::binary);
  if (ec || !file) {
    error = list_error{0, "cannot read " + detail::quote_value(path)};
    return false;
  }
  std::ostringstream content;
  content << file.rdbuf();
  if (file.bad()) {
    error = list_error{0, "cannot read " + detail::quote_value(path)};
    return false;
  }
  text = std::move(content).str();
  return true;
}

/// Reads and parses a list file; an unreadable file (or a directory) is an error with line 0.
[[nodiscard]] inline parsed_list load_list_file(const std::string& path,
                                                const std::vector<std::string>& routes = {"production", "gray"}) {
  parsed_list out;
  std::string text;
  list_error error;
  if (!read_list_file(path, text, error)) {
    out.error = std::move(error);
    return out;
  }
  return parse_list(text, routes);
}

/// Watches a list file and hands out a version only once it is complete and stable:
/// it ends in a newline (or is empty), and the previous look read the same bytes. An
/// emptied file is applied only after it has stayed empty for a look. Call check() at
/// an interval (the proxy's --watch-interval); the interval is how long a writer may
/// pause mid-file without its half being applied.
///
///   grayroute::list_file_watch watch("/etc/gray.list");
///   auto look = watch.check();
///   if (look.state == grayroute::list_file_watch::ready) store.replace(look.list.entries);
class list_file_watch {
 public:
  enum state_type : unsigned char {
    unchanged,  ///< the version already handed out
    settling,   ///< changed or incomplete since the previous look: look again later
    ready,      ///< a new complete, stable version: `list` holds it, parsed
    failed      ///< unreadable, not a file, or a bad line: `list.error` says which
  };
  struct look {
    state_type state = unchanged;
    parsed_list list;
  };

  explicit list_file_watch(std::string path, std::vector<std::string> routes = {"production", "gray"})
      : path_(std::move(path)), routes_(std::move(routes)) {}

  const std::string& path() const noexcept { return path_; }

  /// Looks at the file once.
  [[nodiscard]] look check() {
    new_error_ = false;
    look out;
    std::string text;
    list_error error;
    if (!read_list_file(path_, text, error)) {
      have_previous_ = false;
      out.state = failed;
      out.list.error = std::move(error);
      return report(std::move(out));
    }
    const bool complete = text.empty() || text.back() == '\n';
    const bool stable = have_previous_ && text == previous_;
    previous_ = std::move(text);
    have_previous_ = true;
    if (!complete || !stable) {
      out.state = settling;
      return out;
    }
    if (have_applied_ && previous_ == applied_) return out;  // unchanged
    out.list = parse_list(previous_, routes_);
    if (!out.list) {
      out.state = failed;
      return report(std::move(out));
    }
    applied_ = previous_;
    have_applied_ = true;
    reported_error_.clear();
    out.state = ready;
    return out;
  }

  /// Looks until the file is complete and stable, `settle` apart, at most `looks` times
  /// — for start-up and configuration time, when there is no interval to wait for.
  /// Returns the list, or an error (a file that never settled is one).
  [[nodiscard]] parsed_list load(std::chrono::milliseconds settle = std::chrono::milliseconds(50), int looks = 20) {
    have_previous_ = false;
    have_applied_ = false;
    for (int i = 0; i < looks; ++i) {
      if (i > 0) std::this_thread::sleep_for(settle);
      look l = check();
      if (l.state == ready || l.state == failed) return std::move(l.list);
    }
    parsed_list out;
    out.error = list_error{0, detail::quote_value(path_) +
                                  " kept changing or does not end in a newline (still being written?)"};
    return out;
  }

  /// True once per distinct error: a caller logs failed looks only when this is true.
  [[nodiscard]] bool new_error() const noexcept { return new_error_; }

 private:
  look report(look out) {
    const std::string message = out.list.error ? out.list.error->to_string() : std::string();
    new_error_ = message != reported_error_;
    reported_error_ = message;
    // A failed version is not applied; the next good one must differ from it or from
    // the applied one to be handed out, which it does.
    return out;
  }

  std::string path_;
  std::vector<std::string> routes_;
  std::string previous_, applied_, reported_error_;
  bool have_previous_ = false, have_applied_ = false, new_error_ = false;
};

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_LIST_FILE_HPP
