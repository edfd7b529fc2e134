// Scheduled ramps: a split's weight as steps of (time, weight) on the wall clock, so
// every worker and every tier computes the same weight at the same moment without an
// outside controller.
//
//   auto ramp = grayroute::parse_weight_schedule("2026-12-01T10:00:00Z 1%, +1h 5%, +1h 25%, +2h 100%",
//                                                grayroute::ramp_shape::linear);
//   std::uint32_t ppm = ramp.ppm_at(grayroute::unix_ms(std::chrono::system_clock::now()));
//   bool gray = grayroute::percentage_rollout::fine_bucket(user, seed) < ppm;
//
// Text: steps separated by ',' (or the arrow "→"), each `<when> <weight>` or, where a
// space is awkward (an nginx directive's word), `<when>/<weight>`:
// "2026-12-01T10:00:00Z/1%,+1h/5%,+1h/25%". The first
// `when` is an RFC 3339 UTC date-time ("2026-12-01T10:00:00Z", fractional seconds to the
// millisecond, 'T'/'Z' in either case, no numeric offset: a ramp's times are compared
// across machines and a UTC-only rule leaves nothing to get wrong); a later one is the
// same or `+` a duration after the previous step ("+1h", "+90s", "+1h30m": units d h m s,
// each at most once, largest first).
// A weight is a percentage in steps of 0.0001% ("0.0001%" .. "100%"), kept as parts per
// million so that fine_bucket() (1,000,000 buckets) resolves every step exactly.
//
// Before the first step the weight is 0; from a step on it is that step's weight
// (stepwise) or moves in a straight line to the next step's (linear, rounded down to the
// ppm); after the last step it stays. Times strictly increase and weights never decrease:
// with the sticky hash a key is in the share while fine_bucket(key) < weight, so a
// weight that only rises only ever moves keys from production to gray. (In a policy split
// of several shares, laid out cumulatively, that holds for the last share only: a growing
// earlier share would take keys from the shares after it.) Lowering a weight is a
// deliberate rollback, made by changing the policy, not by a schedule.
#ifndef GRAYROUTE_WEIGHT_SCHEDULE_HPP
#define GRAYROUTE_WEIGHT_SCHEDULE_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config_error.hpp"
#include "detail/ascii.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

enum class ramp_shape : std::uint8_t {
  steps,   ///< each step's weight holds until the next step
  linear,  ///< the weight moves in a straight line from one step to the next
};

/// Unix milliseconds of a system_clock time: the clock every tier agrees on.
inline std::int64_t unix_ms(std::chrono::system_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

struct ramp_step {
  std::int64_t at_ms = 0;  ///< Unix milliseconds
  std::uint32_t ppm = 0;   ///< weight in parts per million (10000 is 1%)
};

/// What a status page or metrics endpoint shows for a ramp at one moment.
struct ramp_status {
  std::uint32_t ppm = 0;           ///< the weight now
  std::optional<ramp_step> next;   ///< the next step; nullopt once the ramp is done
};

class weight_schedule {
 public:
  static constexpr std::uint32_t kMillion = 1000000;
  static constexpr std::size_t kMaxSteps = 1000;
  /// Steps at most this far apart (100 years), so interpolation cannot overflow.
  static constexpr std::int64_t kMaxGapMs = 100LL * 366 * 24 * 3600 * 1000;

  /// Steps with strictly increasing times and non-decreasing weights (at most 1,000,000
  /// ppm, at most 100 years apart); throws config_error otherwise.
  weight_schedule(std::vector<ramp_step> steps, ramp_shape shape) : steps_(std::move(steps)), shape_(shape) {
    if (steps_.empty()) detail::throw_config_error("a weight schedule needs at least one step");
    if (steps_.size() > kMaxSteps) detail::throw_config_error("a weight schedule has more than 1000 steps");
    for (std::size_t i = 0; i < steps_.size(); ++i) {
      const std::string what = "weight schedule step " + std::to_string(i + 1);
      if (steps_[i].ppm > kMillion) detail::throw_config_error(what + ": weight above 100%");
      if (i == 0) continue;
      if (steps_[i].at_ms <= steps_[i - 1].at_ms) detail::throw_config_error(what + ": not after the step before it");
      if (steps_[i].at_ms - steps_[i - 1].at_ms > kMaxGapMs) {
        detail::throw_config_error(what + ": more than 100 years after the step before it");
      }
      if (steps_[i].ppm < steps_[i - 1].ppm) {
        detail::throw_config_error(what + ": the weight goes down (a schedule only ramps up; roll back by changing the policy)");
      }
    }
  }

  /// The weight at `now_ms` (Unix milliseconds), in parts per million.
  std::uint32_t ppm_at(std::int64_t now_ms) const noexcept {
    if (now_ms < steps_.front().at_ms) return 0;
    std::size_t i = 0;
    while (i + 1 < steps_.size() && steps_[i + 1].at_ms <= now_ms) ++i;
    if (shape_ == ramp_shape::steps || i + 1 == steps_.size()) return steps_[i].ppm;
    const ramp_step& from = steps_[i];
    const ramp_step& to = steps_[i + 1];
    // Integer arithmetic so every machine rounds alike: rise <= 10^6, elapsed < span
    // <= 100 years in ms (~3.2 * 10^12), the product stays below 2^63.
    const auto elapsed = static_cast<std::uint64_t>(now_ms - from.at_ms);
    const auto span = static_cast<std::uint64_t>(to.at_ms - from.at_ms);
    return from.ppm + static_cast<std::uint32_t>(static_cast<std::uint64_t>(to.ppm - from.ppm) * elapsed / span);
  }

  /// The first step after `now_ms`, for status output; nullopt once the ramp is done.
  std::optional<ramp_step> next_step(std::int64_t now_ms) const noexcept {
    for (const ramp_step& s : steps_) {
      if (s.at_ms > now_ms) return s;
    }
    return std::nullopt;
  }

  ramp_status status(std::int64_t now_ms) const noexcept { return {ppm_at(now_ms), next_step(now_ms)}; }

  const std::vector<ramp_step>& steps() const noexcept { return steps_; }
  ramp_shape shape() const noexcept { return shape_; }

 private:
  std::vector<ramp_step> steps_;
  ramp_shape shape_;
};

namespace detail {

constexpr bool all_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

constexpr std::int64_t decimal_value(std::string_view s) noexcept {
  std::int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// Days since 1970-01-01 of a proleptic Gregorian date: Howard Hinnant's days_from_civil,
// which counts in 400-year eras from March so that leap days fall at the end of a year.
constexpr std::int64_t days_from_civil(std::int64_t y, std::int64_t m, std::int64_t d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/// "YYYY-MM-DDTHH:MM:SS[.fff]Z" as Unix milliseconds; nullopt if not exactly that.
constexpr std::optional<std::int64_t> parse_rfc3339_utc(std::string_view t) noexcept {
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' ||
      t[16] != ':' || (t.back() != 'Z' && t.back() != 'z')) {
    return std::nullopt;
  }
  const std::string_view fields[6] = {t.substr(0, 4), t.substr(5, 2), t.substr(8, 2),
                                      t.substr(11, 2), t.substr(14, 2), t.substr(17, 2)};
  for (std::string_view f : fields) {
    if (!all_digits(f)) return std::nullopt;
  }
  const std::int64_t year = decimal_value(fields[0]), month = decimal_value(fields[1]), day = decimal_value(fields[2]);
  const std::int64_t hour = decimal_value(fields[3]), minute = decimal_value(fields[4]), second = decimal_value(fields[5]);
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  constexpr std::int64_t kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return std::nullopt;
  if (day > kDays[month - 1] + (month == 2 && leap ? 1 : 0)) return std::nullopt;
  // A leap second (":60") has no Unix time; a schedule has no need of one.
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  std::int64_t ms = 0;
  const std::string_view rest = t.substr(19, t.size() - 20);
  if (!rest.empty()) {
    if (rest[0] != '.' || !all_digits(rest.substr(1)) || rest.size() > 10) return std::nullopt;
    for (std::size_t i = 1; i <= 3; ++i) ms = ms * 10 + (i < rest.size() ? rest[i] - '0' : 0);
  }
  return ((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60000 + second * 1000 + ms;
}

/// "+1h", "+90s", "+1h30m", "+2d": milliseconds; nullopt if not that or zero.
constexpr std::optional<std::int64_t> parse_ramp_offset(std::string_view text) noexcept {
  if (text.size() < 3 || text[0] != '+') return std::nullopt;
  text.remove_prefix(1);
  std::int64_t total = 0;
  std::int64_t previous_unit = INT64_MAX;
  while (!text.empty()) {
    std::size_t n = 0;
    while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
    if (n == 0 || n > 6 || n == text.size()) return std::nullopt;
    std::int64_t unit = 0;
    switch (text[n]) {
      case 'd': unit = 86400000; break;
      case 'h': unit = 3600000; break;
      case 'm': unit = 60000; break;
      case 's': unit = 1000; break;
      default: return std::nullopt;
    }
    // Each unit once, largest first ("+1h30m", not "+30m1h" or "+1h1h"): one spelling
    // per duration, and a bounded sum.
    if (unit >= previous_unit) return std::nullopt;
    previous_unit = unit;
    total += decimal_value(text.substr(0, n)) * unit;
    text.remove_prefix(n + 1);
  }
  if (total <= 0) return std::nullopt;
  return total;
}

/// "1%", "0.0001%", "100%": parts per million; nullopt if not that or above 100%.
constexpr std::optional<std::uint32_t> parse_ppm_percent(std::string_view text) noexcept {
  if (text.size() < 2 || text.back() != '%') return std::nullopt;
  text.remove_suffix(1);
  const std::size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (!all_digits(whole) || whole.size() > 3 || (dot != std::string_view::npos && !all_digits(fraction)) ||
      fraction.size() > 4) {
    return std::nullopt;
  }
  std::int64_t ten_thousandths = 0;  // of a percent, i.e. ppm: the fraction padded to 4 digits
  for (std::size_t i = 0; i < 4; ++i) ten_thousandths = ten_thousandths * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
  const std::int64_t ppm = decimal_value(whole) * 10000 + ten_thousandths;
  if (ppm > 1000000) return std::nullopt;
  return static_cast<std::uint32_t>(ppm);
}

}  // namespace detail

/// Parses "2026-12-01T10:00:00Z 1%, +1h 5%, +1h 25%, +2h 100%" (see the file comment);
/// throws config_error naming the step and the bad value.
[[nodiscard]] inline weight_schedule parse_weight_schedule(std::string_view text, ramp_shape shape) {
  std::vector<ramp_step> steps;
  static constexpr std::string_view kArrow = "\xe2\x86\x92";  // U+2192, as the issue writes ramps
  while (true) {
    std::size_t end = text.find(',');
    const std::size_t arrow = text.find(kArrow);
    std::size_t skip = 1;
    if (arrow < end) {
      end = arrow;
      skip = kArrow.size();
    }
    const std::string_view step = detail::trim_ows(text.substr(0, end));
    const std::string what = "weight schedule step " + std::to_string(steps.size() + 1) + " " + detail::quote_value(step);
    std::size_t space = 0;
    while (space < step.size() && !detail::is_ows(step[space]) && step[space] != '/') ++space;
    const std::string_view when = step.substr(0, space);
    const std::string_view weight = detail::trim_ows(step.substr(space < step.size() && step[space] == '/' ? space + 1 : space));
    ramp_step s;
    if (step.empty()) detail::throw_config_error(what + ": empty (a step is `<time> <weight>`)");
    if (steps.size() == weight_schedule::kMaxSteps) detail::throw_config_error(what + ": more than 1000 steps");
    if (!steps.empty() && !when.empty() && when[0] == '+') {
      const auto offset = detail::parse_ramp_offset(when);
      if (!offset) detail::throw_config_error(what + ": " + detail::quote_value(when) + " is not an offset like +1h, +30m, +1h30m");
      if (*offset > weight_schedule::kMaxGapMs) detail::throw_config_error(what + ": more than 100 years after the step before it");
      s.at_ms = steps.back().at_ms + *offset;
    } else {
      const auto at = detail::parse_rfc3339_utc(when);
      if (!at) {
        detail::throw_config_error(what + ": " + detail::quote_value(when) +
                                   (steps.empty() ? " is not an RFC 3339 UTC time like 2026-12-01T10:00:00Z"
                                                  : " is neither an RFC 3339 UTC time nor an offset like +1h"));
      }
      s.at_ms = *at;
    }
    const auto ppm = detail::parse_ppm_percent(weight);
    if (!ppm) {
      detail::throw_config_error(what + ": " + detail::quote_value(weight) +
                                 " is not a weight in 0%..100% in steps of 0.0001%");
    }
    s.ppm = *ppm;
    if (!steps.empty() && s.at_ms <= steps.back().at_ms) detail::throw_config_error(what + ": not after the step before it");
    if (!steps.empty() && s.ppm < steps.back().ppm) {
      detail::throw_config_error(what + ": the weight goes down (a schedule only ramps up; roll back by changing the policy)");
    }
    steps.push_back(s);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + skip);
  }
  return weight_schedule(std::move(steps), shape);
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_WEIGHT_SCHEDULE_HPP
