// The health of one route, fed by the outcomes the gateway reports: a sliding window of
// time-bucketed counters, a three-state breaker, totals and a latency histogram.
//
//   grayroute::health_config config;                 // on by default: 3 connect failures,
//   config.validate();                               // or >= 50% errors of >= 20 in 10 s
//   grayroute::route_health state;                   // or placed in caller memory (see below)
//
// The state is a plain struct of lock-free atomics with no pointer inside and all-zero
// bytes as its initial value (closed, empty window). So it can live in memory the caller
// owns and shares: nginx keeps one per route in a shared-memory zone and every worker
// records into the same counters (std::atomic of a lock-free type is address-free, so it
// works across processes that map the same pages). Everything that is per process - the
// configuration, the clock, the callback - lives in health_table (health_table.hpp),
// which reads and writes these states.
//
// Recording a success costs one compare-and-swap on the current window bucket and two
// relaxed fetch_adds (latency bucket, latency sum; one without the histogram); an error
// adds its total and a window sum. Reading the state is one load. The window is kWindowBuckets buckets of window/kWindowBuckets each; a bucket
// carries the number of the time slot it counts, so a stale bucket is reset by the first
// writer of a new slot and skipped by readers, without a timer.
#ifndef GRAYROUTE_ROUTE_HEALTH_HPP
#define GRAYROUTE_ROUTE_HEALTH_HPP

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config_error.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// What happened to one request the gateway sent to a route.
enum class outcome : std::uint8_t {
  success,          ///< a response that is not 5xx
  connect_failure,  ///< refused, reset or unreachable before any response byte
  timeout,          ///< connect or response timeout
  status_5xx,       ///< the upstream answered 500-599 (or the gateway made a 502/504 of it)
};
inline constexpr std::size_t kOutcomes = 4;

/// "success", "connect_failure", "timeout", "status_5xx": metric labels and logs.
constexpr std::string_view to_string(outcome o) noexcept {
  switch (o) {
    case outcome::success: return "success";
    case outcome::connect_failure: return "connect_failure";
    case outcome::timeout: return "timeout";
    case outcome::status_5xx: return "status_5xx";
  }
  return "success";
}

/// The outcome of an HTTP status (no response at all is connect_failure or timeout).
constexpr outcome outcome_of_status(unsigned status) noexcept {
  return status >= 500 && status <= 599 ? outcome::status_5xx : outcome::success;
}

/// closed: the route is used. open: the route is skipped (its decisions fall back).
/// half_open: a share of the route's traffic probes it.
enum class breaker_state : std::uint8_t { closed, open, half_open };
inline constexpr std::size_t kBreakerStates = 3;

/// "closed", "open", "half_open".
constexpr std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
  }
  return "closed";
}

/// When a route's breaker trips and how it recovers. The defaults are on: with nothing
/// configured, a failing gray route falls back to production.
struct health_config {
  /// false: outcomes are still counted (metrics), the breaker never leaves closed.
  bool enabled = true;
  /// Open after this many connect failures in a row (no success between); 0: off.
  std::uint32_t consecutive_connect_failures = 3;
  /// Open when errors (connect failures, timeouts, 5xx) are at least this share of the
  /// window's outcomes, in (0, 1]; 0: off.
  double error_ratio = 0.5;
  /// ... and the window holds at least this many outcomes (>= 1).
  std::uint32_t min_requests = 20;
  /// The sliding window: 100 ms to 1 h, a multiple of kWindowBuckets ms.
  std::chrono::milliseconds window{10000};
  /// Relative mode, when > 0: trip only when the route's error ratio exceeds the baseline
  /// route's (health_table's baseline, production by default) by at least this much, and
  /// connect failures trip only while the baseline's own run is below the threshold.
  /// A production-wide outage then does not fall back to an equally broken production.
  /// In [0, 1); 0: off.
  double relative_margin = 0.0;
  /// open -> half_open after this long (>= 1 ms).
  std::chrono::milliseconds cooldown{10000};
  /// While half_open, this percentage of the route's decisions probe it, in (0, 100]:
  /// every round(100 / probe_percent)-th decision for the route, counted across threads
  /// (and workers, when the state is shared).
  double probe_percent = 10.0;
  /// half_open -> closed after this many successful probes in a row (>= 1); any error
  /// while half_open reopens.
  std::uint32_t probe_successes = 5;
  /// Count latencies in the histogram of the metrics page (two atomic adds per outcome,
  /// about 10 ns); false: the page has no histogram and recording costs one add less.
  bool latency_histogram = true;

  /// Throws config_error naming the bad value (`health: error_ratio 1.5 is not in [0, 1]`).
  void validate() const {
    auto fail = [](const char* name, const std::string& value, const char* rule) {
      detail::throw_config_error(std::string("health: ") + name + " " + value + " " + rule);
    };
    if (!(error_ratio >= 0.0 && error_ratio <= 1.0)) fail("error_ratio", std::to_string(error_ratio), "is not in [0, 1]");
    if (min_requests < 1) fail("min_requests", "0", "must be at least 1");
    const auto w = window.count();
    if (w < 100 || w > 3600000 || w % 10 != 0) {
      fail("window", std::to_string(w) + "ms", "is not 100 ms to 1 h in steps of 10 ms");
    }
    if (!(relative_margin >= 0.0 && relative_margin < 1.0)) {
      fail("relative_margin", std::to_string(relative_margin), "is not in [0, 1)");
    }
    if (cooldown.count() < 1) fail("cooldown", std::to_string(cooldown.count()) + "ms", "must be at least 1 ms");
    if (!(probe_percent > 0.0 && probe_percent <= 100.0)) {
      fail("probe_percent", std::to_string(probe_percent), "is not in (0, 100]");
    }
    if (probe_successes < 1 || probe_successes > 0x3fff) {
      fail("probe_successes", std::to_string(probe_successes), "is not in [1, 16383]");
    }
  }
};

/// Upper bounds of the latency histogram in microseconds (Prometheus' default buckets,
/// 5 ms to 10 s); a last bucket (+Inf) follows.
inline constexpr std::uint64_t kLatencyBoundsUs[] = {5000,   10000,   25000,   50000,   100000,  250000,
                                                      500000, 1000000, 2500000, 5000000, 10000000};
inline constexpr std::size_t kLatencyBuckets = sizeof(kLatencyBoundsUs) / sizeof(kLatencyBoundsUs[0]) + 1;

/// The window has this many time buckets.
inline constexpr std::size_t kWindowBuckets = 10;

/// One route's counters and breaker. Standard layout, no pointers, lock-free atomics
/// only, zero bytes = initial state: place it in caller memory (shared memory included)
/// with placement new or by zeroing it, aligned to alignof(route_health) (64). health_table is the API; the members are public
/// so the struct stays an aggregate of atomics, not for callers to write.
struct alignas(64) route_health {  // a cache line of its own: routes do not share one
  // Each bucket: slot number (20 bits) | errors (22 bits) | outcomes (22 bits). One word,
  // so a reset to a new slot and an increment cannot interleave.
  std::atomic<std::uint64_t> window[kWindowBuckets] = {};
  // breaker_state (2 bits) | half-open successes (14 bits) | since, in ms of the clock
  // (48 bits). One word, so a transition and its probe count change together.
  std::atomic<std::uint64_t> breaker{0};
  std::atomic<std::uint32_t> connect_failures_in_row{0};
  std::atomic<std::uint32_t> half_open_decisions{0};
  // Totals of the error outcomes, by outcome - 1. Successes are not counted apart: they
  // are the latency count minus these, which saves the common path one atomic add.
  std::atomic<std::uint64_t> errors[kOutcomes - 1] = {};
  std::atomic<std::uint64_t> transitions[kBreakerStates] = {};  // by the state entered
  std::atomic<std::uint64_t> latency[kLatencyBuckets] = {};     // not cumulative; all outcomes
                                                                // in the last without histogram
  std::atomic<std::uint64_t> latency_sum_us{0};
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free,
              "route_health must be lock-free to be shared between processes");

namespace detail {

struct window_word {
  static constexpr unsigned kCountBits = 22, kSlotBits = 20;
  static constexpr std::uint64_t kCountMask = (std::uint64_t{1} << kCountBits) - 1;
  static constexpr std::uint64_t kSlotMask = (std::uint64_t{1} << kSlotBits) - 1;

  static constexpr std::uint64_t slot(std::uint64_t w) noexcept { return w >> (2 * kCountBits); }
  static constexpr std::uint64_t errors(std::uint64_t w) noexcept { return (w >> kCountBits) & kCountMask; }
  static constexpr std::uint64_t requests(std::uint64_t w) noexcept { return w & kCountMask; }
  static constexpr std::uint64_t make(std::uint64_t slot, std::uint64_t errors, std::uint64_t requests) noexcept {
    return (slot & kSlotMask) << (2 * kCountBits) | errors << kCountBits | requests;
  }
};

struct breaker_word {
  static constexpr unsigned kSinceBits = 48, kProbeBits = 14;
  static constexpr std::uint64_t kSinceMask = (std::uint64_t{1} << kSinceBits) - 1;
  static constexpr std::uint64_t kProbeMask = (std::uint64_t{1} << kProbeBits) - 1;

  static constexpr breaker_state state(std::uint64_t w) noexcept {
    return static_cast<breaker_state>(w >> (kSinceBits + kProbeBits));
  }
  static constexpr std::uint32_t probes(std::uint64_t w) noexcept {
    return static_cast<std::uint32_t>((w >> kSinceBits) & kProbeMask);
  }
  static constexpr std::uint64_t since_ms(std::uint64_t w) noexcept { return w & kSinceMask; }
  static constexpr std::uint64_t make(breaker_state s, std::uint64_t probes, std::uint64_t since) noexcept {
    return std::uint64_t{static_cast<std::uint8_t>(s)} << (kSinceBits + kProbeBits) | (probes & kProbeMask) << kSinceBits |
           (since & kSinceMask);
  }
};

inline std::size_t latency_bucket(std::uint64_t us) noexcept {
  std::size_t i = 0;
  while (i < kLatencyBuckets - 1 && us > kLatencyBoundsUs[i]) ++i;
  return i;
}

}  // namespace detail

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_ROUTE_HEALTH_HPP
