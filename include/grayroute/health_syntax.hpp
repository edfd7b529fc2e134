// The one text spelling of a health_config, shared by every adapter (an nginx directive's
// arguments, a proxy flag, a policy-file value): words `name=value`, any order. Parsing
// throws config_error naming the word; an adapter adds the file and line.
//
//   grayroute::health_config c = grayroute::parse_health("error_ratio=25% min_requests=50 cooldown=30s");
//
// Words (each one optional; unnamed settings keep their defaults, see route_health.hpp):
//   on | off                      enabled (default on)
//   connect_failures=N            consecutive connect failures that open (0: off)
//   error_ratio=50% | 0.5         error share of the window that opens (0: off)
//   min_requests=N                outcomes the window needs before the ratio counts
//   window=10s                    the sliding window (ms, s or m)
//   relative_margin=20% | 0.2     relative mode against the baseline route (0: off)
//   cooldown=10s                  open -> half_open after this long
//   probe=10%                     share of the route's decisions that probe while half_open
//   probe_successes=N             successes that close a half_open breaker
//   latency_histogram=on|off      the metrics page's latency histogram
#ifndef GRAYROUTE_HEALTH_SYNTAX_HPP
#define GRAYROUTE_HEALTH_SYNTAX_HPP

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config_error.hpp"
#include "detail/ascii.hpp"
#include "route_health.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

namespace detail {

// "12" -> 12; digits only, at most 9 of them.
inline std::optional<std::uint32_t> parse_count(std::string_view text) noexcept {
  if (text.empty() || text.size() > 9) return std::nullopt;
  std::uint32_t n = 0;
  for (char c : text) {
    if (!is_digit(c)) return std::nullopt;
    n = n * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return n;
}

// "0.25" or "25%" -> 0.25; "12.5%" -> 0.125. Locale-free; at most 6 decimals.
inline std::optional<double> parse_share(std::string_view text) noexcept {
  const bool percent = !text.empty() && text.back() == '%';
  if (percent) text.remove_suffix(1);
  const std::size_t dot = text.find('.');
  const auto whole = parse_count(text.substr(0, dot));
  if (!whole) return std::nullopt;
  double value = *whole;
  if (dot != std::string_view::npos) {
    const std::string_view fraction = text.substr(dot + 1);
    if (fraction.empty() || fraction.size() > 6) return std::nullopt;
    double scale = 0.1;
    for (char c : fraction) {
      if (!is_digit(c)) return std::nullopt;
      value += (c - '0') * scale;
      scale /= 10;
    }
  }
  return percent ? value / 100.0 : value;
}

// "250ms", "10s", "2m" -> milliseconds.
inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept {
  std::uint32_t unit = 0;
  std::size_t suffix = 0;
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    unit = 1;
    suffix = 2;
  } else if (text.size() > 1 && text.back() == 's') {
    unit = 1000;
    suffix = 1;
  } else if (text.size() > 1 && text.back() == 'm') {
    unit = 60000;
    suffix = 1;
  }
  text.remove_suffix(suffix);
  const auto n = parse_count(text);
  if (!unit || !n) return std::nullopt;
  return std::chrono::milliseconds(std::int64_t{*n} * unit);
}

}  // namespace detail

/// Sets one `name=value` word (or `on` / `off`) on `config`; throws config_error naming
/// the word. Does not validate the whole (see health_config::validate).
inline void set_health_word(health_config& config, std::string_view word) {
  auto fail = [&](const char* why) {
    detail::throw_config_error("health: " + detail::quote_value(word) + ": " + why);
  };
  if (word == "on" || word == "off") {
    config.enabled = word == "on";
    return;
  }
  const std::size_t eq = word.find('=');
  if (eq == std::string_view::npos) fail("not name=value, on or off");
  const std::string_view name = word.substr(0, eq), value = word.substr(eq + 1);
  auto count = [&] {
    const auto n = detail::parse_count(value);
    if (!n) fail("not a whole number");
    return *n;
  };
  auto share = [&] {
    const auto s = detail::parse_share(value);
    if (!s) fail("not a share (50% or 0.5)");
    return *s;
  };
  auto duration = [&] {
    const auto d = detail::parse_duration(value);
    if (!d) fail("not a duration (250ms, 10s, 2m)");
    return *d;
  };
  if (name == "connect_failures") config.consecutive_connect_failures = count();
  else if (name == "error_ratio") config.error_ratio = share();
  else if (name == "min_requests") config.min_requests = count();
  else if (name == "window") config.window = duration();
  else if (name == "relative_margin") config.relative_margin = share();
  else if (name == "cooldown") config.cooldown = duration();
  else if (name == "probe") config.probe_percent = share() * 100.0;
  else if (name == "probe_successes") config.probe_successes = count();
  else if (name == "latency_histogram") {
    if (value != "on" && value != "off") fail("not on or off");
    config.latency_histogram = value == "on";
  } else {
    fail("unknown setting (on off connect_failures= error_ratio= min_requests= window= relative_margin= cooldown= "
         "probe= probe_successes= latency_histogram=)");
  }
}

/// A health_config from space-separated words over the defaults, validated; throws
/// config_error naming the word or the value.
inline health_config parse_health(std::string_view words) {
  health_config config;
  while (!words.empty()) {
    const std::size_t start = words.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    words.remove_prefix(start);
    const std::size_t end = words.find_first_of(" \t");
    set_health_word(config, words.substr(0, end));
    words.remove_prefix(end == std::string_view::npos ? words.size() : end);
  }
  config.validate();
  return config;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_HEALTH_SYNTAX_HPP
