// Element parsers for the headers that carry client addresses through proxies:
// X-Forwarded-For (a comma list of bare addresses) and RFC 7239 Forwarded
// (elements of `for=`/`by=`/... pairs, quoted strings, bracketed IPv6, ports).
//
// Each parser reports the hops of ONE header line, left to right, as
// std::optional<ip_address>: nullopt marks a hop that names no usable address
// ("unknown", "_hidden", garbage), which stops a trust walk. They never throw,
// never allocate and run in time linear in the line.
#ifndef GRAYROUTE_FORWARDED_HPP
#define GRAYROUTE_FORWARDED_HPP

#include <cstddef>
#include <optional>
#include <string_view>

#include "detail/ascii.hpp"
#include "ip.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

namespace detail {

// RFC 7239 6: node-port = port / obfport; port = 1*5DIGIT; obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")
constexpr bool is_node_port(std::string_view port) noexcept {
  if (port.empty()) return false;
  if (port[0] == '_') {
    if (port.size() == 1) return false;
    for (char c : port.substr(1)) {
      const bool ok = is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '.' || c == '_' || c == '-';
      if (!ok) return false;
    }
    return true;
  }
  if (port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

}  // namespace detail

/// The address in one RFC 7239 node ("192.0.2.43", "192.0.2.43:47011",
/// "[2001:db8::1]", "[2001:db8::1]:4711"), already unquoted. "unknown" and
/// obfuscated identifiers ("_hidden") give nullopt, as does anything malformed.
[[nodiscard]] constexpr std::optional<ip_address> parse_forwarded_node(std::string_view node) noexcept {
  if (node.empty()) return std::nullopt;
  if (node[0] == '[') {
    const std::size_t close = node.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const auto address = parse_ip(node.substr(1, close - 1));
    if (!address || !address->is_v6()) return std::nullopt;
    const std::string_view rest = node.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || !detail::is_node_port(rest.substr(1)))) return std::nullopt;
    return address;
  }
  const std::size_t colon = node.find(':');
  const auto address = parse_ip(node.substr(0, colon));
  if (!address || !address->is_v4()) return std::nullopt;  // bare IPv6 must be bracketed
  if (colon != std::string_view::npos && !detail::is_node_port(node.substr(colon + 1))) return std::nullopt;
  return address;
}

/// Calls on_hop(std::optional<ip_address>) for each element of one X-Forwarded-For
/// line. Elements are trimmed of whitespace; empty elements (",,") are skipped.
template <class OnHop>
constexpr void for_each_x_forwarded_for(std::string_view line, OnHop&& on_hop) noexcept {
  while (true) {
    const std::size_t comma = line.find(',');
    const std::string_view element = detail::trim_ows(line.substr(0, comma));
    if (!element.empty()) on_hop(parse_ip(element));
    if (comma == std::string_view::npos) return;
    line.remove_prefix(comma + 1);
  }
}

/// Calls on_hop(std::optional<ip_address>) with the `for=` node of each element of
/// one Forwarded line. An element without exactly one `for` gives nullopt. A syntax
/// error (an unterminated quote, a stray character) gives one nullopt for the element
/// it is in and ends the line: what follows it cannot be told apart reliably.
/// Parse each header line on its own, so a quote a client leaves open cannot
/// swallow the element that a trusted proxy appended on its own line.
template <class OnHop>
constexpr void for_each_forwarded_for(std::string_view line, OnHop&& on_hop) noexcept {
  using detail::is_ows;
  using detail::is_tchar;
  const std::size_t n = line.size();
  std::size_t i = 0;
  auto skip_ows = [&] {
    while (i < n && is_ows(line[i])) ++i;
  };
  while (true) {
    std::optional<ip_address> hop;
    int for_count = 0;
    bool has_pair = false;
    bool broken = false;
    bool line_over = false;
    skip_ows();
    while (i < n && line[i] != ',') {
      if (line[i] == ';') {
        ++i;
        skip_ows();
        continue;
      }
      const std::size_t name_start = i;
      while (i < n && is_tchar(line[i])) ++i;
      const std::string_view name = line.substr(name_start, i - name_start);
      if (name.empty() || i >= n || line[i] != '=') {
        broken = line_over = true;
        break;
      }
      ++i;
      std::string_view value;
      bool escaped = false;
      if (i < n && line[i] == '"') {
        const std::size_t value_start = ++i;
        while (i < n && line[i] != '"') {
          if (line[i] == '\\') {
            escaped = true;
            ++i;
          }
          ++i;
        }
        if (i >= n) {
          broken = line_over = true;
          break;
        }
        value = line.substr(value_start, i - value_start);
        ++i;
      } else {
        const std::size_t value_start = i;
        // Tokens per RFC 7239, plus ':' '[' ']' seen in the wild unquoted.
        while (i < n && (is_tchar(line[i]) || line[i] == ':' || line[i] == '[' || line[i] == ']')) ++i;
        value = line.substr(value_start, i - value_start);
      }
      has_pair = true;
      if (detail::iequals(name, "for")) {
        ++for_count;
        hop = escaped ? std::nullopt : parse_forwarded_node(value);
      }
      skip_ows();
      if (i < n && line[i] != ';' && line[i] != ',') {
        broken = line_over = true;
        break;
      }
    }
    if (broken || has_pair) on_hop(broken || for_count != 1 ? std::nullopt : hop);
    if (line_over || i >= n) return;
    ++i;  // the ',' between elements
  }
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_FORWARDED_HPP
