// Per-route health for one process: the configuration, the state-change callback and
// the route_health states (owned, or in memory the caller shares: one array, or one state
// per route that the next table of a reload takes over), and the decision side:
// apply_health() sends a decision whose route is open to its fallback route.
//
//   grayroute::health_table health(grayroute::health_config{}, policy.routes().size(),
//                                  [](const grayroute::health_event& e) { log(e); });
//   auto now = grayroute::health_clock::now_ms();
//   grayroute::decision d = grayroute::apply_health(policy.decide(request, headers), health, now);
//   ... forward to d.route, then:
//   health.record(d.route, grayroute::outcome_of_status(status), latency, now);
//
// Transitions are compare-and-swaps on the route's breaker word: of all the threads (or
// nginx workers sharing the states) that see the same reason to change the state, one
// wins and reports it, so every change reaches the callback exactly once, in the
// process that made it. The callback runs on the request path of that one request: it
// must not throw and should be quick (format a log line, bump a counter).
//
// Time is a parameter (milliseconds of a monotonic clock; health_clock::now_ms() reads
// CLOCK_MONOTONIC, which all processes of a host share), so tests drive it by hand.
#ifndef GRAYROUTE_HEALTH_TABLE_HPP
#define GRAYROUTE_HEALTH_TABLE_HPP

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "config_error.hpp"
#include "decision.hpp"
#include "route_health.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// The monotonic clock health_table expects; any other monotonic millisecond count works.
struct health_clock {
  static std::chrono::milliseconds now_ms() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch());
  }
};

/// Why a breaker changed state.
enum class health_cause : std::uint8_t {
  connect_failures,  ///< closed -> open: consecutive connect failures reached the threshold
  error_ratio,       ///< closed -> open: the window's error ratio reached the threshold
  cooldown_elapsed,  ///< open -> half_open
  probe_failed,      ///< half_open -> open: an error while probing
  probes_succeeded,  ///< half_open -> closed: probe_successes successes in a row
};

/// "connect_failures", "error_ratio", "cooldown_elapsed", "probe_failed", "probes_succeeded".
constexpr std::string_view to_string(health_cause cause) noexcept {
  switch (cause) {
    case health_cause::connect_failures: return "connect_failures";
    case health_cause::error_ratio: return "error_ratio";
    case health_cause::cooldown_elapsed: return "cooldown_elapsed";
    case health_cause::probe_failed: return "probe_failed";
    case health_cause::probes_succeeded: return "probes_succeeded";
  }
  return "error_ratio";
}

/// One state change, with the figures that made it.
struct health_event {
  route_id route = kProduction;
  breaker_state from = breaker_state::closed;
  breaker_state to = breaker_state::closed;
  health_cause cause = health_cause::error_ratio;
  std::chrono::milliseconds at{0};
  std::uint32_t window_requests = 0;   ///< outcomes in the window at the change
  std::uint32_t window_errors = 0;     ///< ... of which errors
  double error_ratio = 0.0;            ///< window_errors / window_requests (0 when empty)
  double baseline_error_ratio = 0.0;   ///< the baseline route's, in relative mode
  std::uint32_t connect_failures_in_row = 0;
  std::uint32_t probe_successes = 0;   ///< successes seen while half_open
};

/// A route's state for health pages and metrics.
struct health_snapshot {
  breaker_state state = breaker_state::closed;
  std::chrono::milliseconds since{0};  ///< when the state was entered (0: never changed)
  std::uint32_t window_requests = 0;
  std::uint32_t window_errors = 0;
  double error_ratio = 0.0;
  std::uint32_t connect_failures_in_row = 0;
  std::uint32_t probe_successes = 0;
  std::uint64_t outcomes[kOutcomes] = {};             ///< totals by outcome
  std::uint64_t transitions[kBreakerStates] = {};     ///< totals by the state entered
  std::uint64_t latency[kLatencyBuckets] = {};        ///< by kLatencyBoundsUs, not cumulative
  std::uint64_t latency_sum_us = 0;
};

class health_table {
 public:
  /// Called once per state change; must not throw.
  using event_handler = std::function<void(const health_event&)>;

  /// Owns `routes` states. `baseline` is the route relative mode compares with.
  /// Throws config_error naming a bad value.
  health_table(const health_config& config, std::size_t routes, event_handler on_change = {},
               route_id baseline = kProduction)
      : owned_(std::make_unique<route_health[]>(routes)) {
    init(config, owned_.get(), routes, std::move(on_change), baseline);
  }

  /// Uses `routes` states in caller memory (e.g. an nginx shared-memory zone), which the
  /// caller constructed (or zeroed) and keeps alive and in place longer than this table.
  /// Every process builds its own table over the same states, with the same config.
  health_table(const health_config& config, route_health* states, std::size_t routes, event_handler on_change = {},
               route_id baseline = kProduction) {
    init(config, states, routes, std::move(on_change), baseline);
  }

  /// Uses `*states[i]` as route i's state: each in caller memory that outlives the table,
  /// any of them possibly another table's too. This is how a reload keeps a route's
  /// health: the new table gets the states of the routes it keeps (by name, whatever
  /// their new ids), so an outcome the old table records later - a request still in
  /// flight, a probe finishing - lands in the state both read: no count is lost and a
  /// breaker stays one breaker (its transitions are CASes on the one word, so each is
  /// still reported once, by the table whose outcome made it). A copy of the states
  /// would lose every late outcome. `states` itself is copied.
  ///
  ///   std::vector<route_health*> kept = {cells["production"]->health, cells["gray"]->health};
  ///   health_table next(config, kept.data(), kept.size());
  health_table(const health_config& config, route_health* const* states, std::size_t routes,
               event_handler on_change = {}, route_id baseline = kProduction) {
    init(config, states, routes, std::move(on_change), baseline);
  }

  /// Counts one outcome of a request sent to `route` and moves the breaker when a
  /// threshold is reached. Never throws, never allocates; an unknown route is ignored.
  void record(route_id route, outcome o, std::chrono::microseconds latency, std::chrono::milliseconds now) noexcept {
    if (route >= size_) return;
    route_health& h = at(route);
    const bool error = o != outcome::success;
    count_in_window(h, error, now);
    if (error) h.errors[static_cast<std::size_t>(o) - 1].fetch_add(1, std::memory_order_relaxed);
    if (config_.latency_histogram) {
      const std::uint64_t us = latency.count() > 0 ? static_cast<std::uint64_t>(latency.count()) : 0;
      h.latency[detail::latency_bucket(us)].fetch_add(1, std::memory_order_relaxed);
      h.latency_sum_us.fetch_add(us, std::memory_order_relaxed);
    } else {
      h.latency[kLatencyBuckets - 1].fetch_add(1, std::memory_order_relaxed);  // the total, for successes
    }
    std::uint32_t run = 0;
    if (o == outcome::connect_failure) {
      run = h.connect_failures_in_row.fetch_add(1, std::memory_order_relaxed) + 1;
    } else if (o == outcome::success && h.connect_failures_in_row.load(std::memory_order_relaxed) != 0) {
      h.connect_failures_in_row.store(0, std::memory_order_relaxed);
    }
    if (!config_.enabled) return;

    std::uint64_t word = h.breaker.load(std::memory_order_acquire);
    if (detail::breaker_word::state(word) == breaker_state::open) {
      // An outcome after the cool-down (an active probe, a straggler) is a probe.
      if (!cooled_down(word, now)) return;
      advance_to_half_open(route, word, now);
      word = h.breaker.load(std::memory_order_acquire);
    }
    switch (detail::breaker_word::state(word)) {
      case breaker_state::closed:
        if (error) maybe_trip(route, word, o, run, now);
        return;
      case breaker_state::half_open:
        if (error) {
          change(route, word, breaker_state::open, health_cause::probe_failed, now);
        } else {
          count_probe_success(route, word, now);
        }
        return;
      case breaker_state::open: return;
    }
  }

  /// Whether a decision for `route` may use it now: closed - yes; open - no (until the
  /// cool-down has passed, which makes it half_open); half_open - one decision in
  /// round(100 / probe_percent), by a counter shared by all threads using the state.
  bool admit(route_id route, std::chrono::milliseconds now) noexcept {
    if (route >= size_ || !config_.enabled) return true;
    route_health& h = at(route);
    std::uint64_t word = h.breaker.load(std::memory_order_acquire);
    switch (detail::breaker_word::state(word)) {
      case breaker_state::closed: return true;
      case breaker_state::open:
        if (!cooled_down(word, now)) return false;
        advance_to_half_open(route, word, now);
        word = h.breaker.load(std::memory_order_acquire);
        if (detail::breaker_word::state(word) != breaker_state::half_open) {
          return detail::breaker_word::state(word) == breaker_state::closed;
        }
        break;
      case breaker_state::half_open: break;
    }
    return h.half_open_decisions.fetch_add(1, std::memory_order_relaxed) % probe_period_ == 0;
  }

  /// The breaker state now, moving open to half_open when the cool-down has passed.
  breaker_state state(route_id route, std::chrono::milliseconds now) noexcept {
    if (route >= size_) return breaker_state::closed;
    std::uint64_t word = at(route).breaker.load(std::memory_order_acquire);
    if (config_.enabled && detail::breaker_word::state(word) == breaker_state::open && cooled_down(word, now)) {
      advance_to_half_open(route, word, now);
      word = at(route).breaker.load(std::memory_order_acquire);
    }
    return detail::breaker_word::state(word);
  }

  /// Moves every route whose cool-down has passed to half_open (a timer, a status page).
  void poll(std::chrono::milliseconds now) noexcept {
    for (std::size_t r = 0; r < size_; ++r) (void)state(static_cast<route_id>(r), now);
  }

  /// Counters and state of `route` as stored (no transition); zeros for an unknown route.
  health_snapshot snapshot(route_id route, std::chrono::milliseconds now) const noexcept {
    health_snapshot s;
    if (route >= size_) return s;
    const route_health& h = at(route);
    const std::uint64_t word = h.breaker.load(std::memory_order_acquire);
    s.state = detail::breaker_word::state(word);
    s.since = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(detail::breaker_word::since_ms(word)));
    s.probe_successes = detail::breaker_word::probes(word);
    const window_sum w = sum_window(h, now);
    s.window_requests = w.requests;
    s.window_errors = w.errors;
    s.error_ratio = w.ratio();
    s.connect_failures_in_row = h.connect_failures_in_row.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < kBreakerStates; ++i) s.transitions[i] = h.transitions[i].load(std::memory_order_relaxed);
    std::uint64_t total = 0, errors = 0;
    for (std::size_t i = 0; i < kLatencyBuckets; ++i) total += s.latency[i] = h.latency[i].load(std::memory_order_relaxed);
    for (std::size_t i = 1; i < kOutcomes; ++i) errors += s.outcomes[i] = h.errors[i - 1].load(std::memory_order_relaxed);
    // Read one after the other while others record: never let successes go negative.
    s.outcomes[0] = total > errors ? total - errors : 0;
    s.latency_sum_us = h.latency_sum_us.load(std::memory_order_relaxed);
    return s;
  }

  std::size_t size() const noexcept { return size_; }
  const health_config& config() const noexcept { return config_; }
  route_id baseline() const noexcept { return baseline_; }

 private:
  struct window_sum {
    std::uint32_t requests = 0, errors = 0;
    double ratio() const noexcept { return requests == 0 ? 0.0 : static_cast<double>(errors) / requests; }
  };

  void init(const health_config& config, route_health* states, std::size_t routes, event_handler on_change,
            route_id baseline) {
    if (states == nullptr && routes != 0) detail::throw_config_error("health: no memory for the route states");
    index_ = std::make_unique<route_health*[]>(routes);
    for (std::size_t r = 0; r < routes; ++r) index_[r] = states + r;
    init_index(config, routes, std::move(on_change), baseline);
  }

  void init(const health_config& config, route_health* const* states, std::size_t routes, event_handler on_change,
            route_id baseline) {
    if (states == nullptr && routes != 0) detail::throw_config_error("health: no memory for the route states");
    index_ = std::make_unique<route_health*[]>(routes);
    for (std::size_t r = 0; r < routes; ++r) {
      if (states[r] == nullptr) detail::throw_config_error("health: no memory for the state of route " + std::to_string(r));
      index_[r] = states[r];
    }
    init_index(config, routes, std::move(on_change), baseline);
  }

  void init_index(const health_config& config, std::size_t routes, event_handler on_change, route_id baseline) {
    config.validate();
    if (routes > 0xffff) detail::throw_config_error("health: " + std::to_string(routes) + " routes is too many");
    if (baseline >= routes && routes != 0) {
      detail::throw_config_error("health: baseline route " + std::to_string(baseline) + " is not one of the " +
                                 std::to_string(routes) + " routes");
    }
    config_ = config;
    size_ = routes;
    on_change_ = std::move(on_change);
    baseline_ = baseline;
    bucket_ms_ = static_cast<std::uint64_t>(config.window.count()) / kWindowBuckets;
    probe_period_ = static_cast<std::uint32_t>(std::lround(100.0 / config.probe_percent));
    if (probe_period_ == 0) probe_period_ = 1;
  }

  static std::uint64_t ms_of(std::chrono::milliseconds t) noexcept {
    return t.count() > 0 ? static_cast<std::uint64_t>(t.count()) : 0;
  }

  void count_in_window(route_health& h, bool error, std::chrono::milliseconds now) const noexcept {
    using w = detail::window_word;
    const std::uint64_t absolute = ms_of(now) / bucket_ms_;
    const std::uint64_t slot = absolute & w::kSlotMask;
    std::atomic<std::uint64_t>& bucket = h.window[absolute % kWindowBuckets];
    std::uint64_t old = bucket.load(std::memory_order_relaxed);
    for (;;) {
      std::uint64_t next;
      if (w::slot(old) == slot) {
        next = old;
        if (w::requests(old) < w::kCountMask) next += 1;
        if (error && w::errors(old) < w::kCountMask) next += std::uint64_t{1} << w::kCountBits;
      } else if (((slot - w::slot(old)) & w::kSlotMask) < (w::kSlotMask >> 1) || old == 0) {
        next = w::make(slot, error ? 1 : 0, 1);  // the bucket's slot has passed: start it over
      } else {
        return;  // a writer whose clock lags: the bucket already counts a newer slot
      }
      if (bucket.compare_exchange_weak(old, next, std::memory_order_relaxed)) return;
    }
  }

  window_sum sum_window(const route_health& h, std::chrono::milliseconds now) const noexcept {
    using w = detail::window_word;
    const std::uint64_t current = (ms_of(now) / bucket_ms_) & w::kSlotMask;
    window_sum sum;
    for (const auto& bucket : h.window) {
      const std::uint64_t word = bucket.load(std::memory_order_relaxed);
      if (word == 0 || ((current - w::slot(word)) & w::kSlotMask) >= kWindowBuckets) continue;
      sum.requests += static_cast<std::uint32_t>(w::requests(word));
      sum.errors += static_cast<std::uint32_t>(w::errors(word));
    }
    return sum;
  }

  bool cooled_down(std::uint64_t word, std::chrono::milliseconds now) const noexcept {
    return ms_of(now) >= detail::breaker_word::since_ms(word) + static_cast<std::uint64_t>(config_.cooldown.count());
  }

  bool advance_to_half_open(route_id route, std::uint64_t word, std::chrono::milliseconds now) noexcept {
    return change(route, word, breaker_state::half_open, health_cause::cooldown_elapsed, now);
  }

  void maybe_trip(route_id route, std::uint64_t word, outcome o, std::uint32_t run, std::chrono::milliseconds now) noexcept {
    const bool relative = config_.relative_margin > 0.0 && route != baseline_ && baseline_ < size_;
    const std::uint32_t threshold = config_.consecutive_connect_failures;
    if (o == outcome::connect_failure && threshold != 0 && run >= threshold) {
      const bool baseline_failing =
          relative && at(baseline_).connect_failures_in_row.load(std::memory_order_relaxed) >= threshold;
      if (!baseline_failing) {
        change(route, word, breaker_state::open, health_cause::connect_failures, now);
        return;
      }
    }
    if (config_.error_ratio <= 0.0) return;
    const window_sum w = sum_window(at(route), now);
    if (w.requests < config_.min_requests || w.ratio() < config_.error_ratio) return;
    if (relative && w.ratio() - baseline_ratio(now) < config_.relative_margin) return;
    change(route, word, breaker_state::open, health_cause::error_ratio, now);
  }

  // The baseline's ratio; 0 when its window is too small to say (gray is then judged alone).
  double baseline_ratio(std::chrono::milliseconds now) const noexcept {
    const window_sum b = sum_window(at(baseline_), now);
    return b.requests < config_.min_requests ? 0.0 : b.ratio();
  }

  void count_probe_success(route_id route, std::uint64_t word, std::chrono::milliseconds now) noexcept {
    using b = detail::breaker_word;
    route_health& h = at(route);
    while (b::state(word) == breaker_state::half_open) {
      const std::uint32_t probes = b::probes(word) + 1;
      if (probes >= config_.probe_successes) {
        if (change(route, word, breaker_state::closed, health_cause::probes_succeeded, now, probes)) return;
      } else if (h.breaker.compare_exchange_weak(word, b::make(breaker_state::half_open, probes, b::since_ms(word)),
                                                 std::memory_order_acq_rel, std::memory_order_acquire)) {
        return;
      }
      word = h.breaker.load(std::memory_order_acquire);
    }
  }

  // One CAS from the observed word; the winner resets what the new state starts from,
  // counts the transition and reports it.
  bool change(route_id route, std::uint64_t word, breaker_state to, health_cause cause, std::chrono::milliseconds now,
              std::uint32_t probes = 0) noexcept {
    using b = detail::breaker_word;
    route_health& h = at(route);
    if (!h.breaker.compare_exchange_strong(word, b::make(to, 0, ms_of(now)), std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
      return false;
    }
    health_event e;
    e.route = route;
    e.from = b::state(word);
    e.to = to;
    e.cause = cause;
    e.at = now;
    const window_sum w = sum_window(h, now);
    e.window_requests = w.requests;
    e.window_errors = w.errors;
    e.error_ratio = w.ratio();
    if (config_.relative_margin > 0.0 && baseline_ < size_) e.baseline_error_ratio = baseline_ratio(now);
    e.connect_failures_in_row = h.connect_failures_in_row.load(std::memory_order_relaxed);
    e.probe_successes = probes != 0 ? probes : b::probes(word);
    if (to == breaker_state::half_open) h.half_open_decisions.store(0, std::memory_order_relaxed);
    if (to == breaker_state::closed) {
      // A closed breaker judges what happens from now on, not the failures that opened it.
      for (auto& bucket : h.window) bucket.store(0, std::memory_order_relaxed);
      h.connect_failures_in_row.store(0, std::memory_order_relaxed);
    }
    h.transitions[static_cast<std::size_t>(to)].fetch_add(1, std::memory_order_relaxed);
    if (on_change_) on_change_(e);
    return true;
  }

  route_health& at(route_id route) const noexcept { return *index_[route]; }

  std::unique_ptr<route_health[]> owned_;
  // Route id -> its state: one array for every constructor, so a route's state can sit
  // anywhere (contiguous, in a zone, or one allocation per route shared across tables).
  std::unique_ptr<route_health*[]> index_;
  std::size_t size_ = 0;
  health_config config_;
  event_handler on_change_;
  route_id baseline_ = kProduction;
  std::uint64_t bucket_ms_ = 1000;
  std::uint32_t probe_period_ = 10;
};

/// Where `d` goes when its route fails: the deciding rule's fallback (d.fallback_route),
/// else `configured` (the adapter's fallback setting), else the first route; nullopt when
/// `d` never falls back: it is on that route already (so the first route falls back only
/// where a fallback is configured), or it was forced by header or cookie (whoever forces a
/// route wants to see it, broken or not).
inline std::optional<route_id> fallback_for(const decision& d, std::optional<route_id> configured = std::nullopt) noexcept {
  if (d.reason == route_reason::header || d.reason == route_reason::cookie) return std::nullopt;
  const route_id to = d.fallback_route ? *d.fallback_route : configured.value_or(kProduction);
  if (d.route == to) return std::nullopt;
  return to;
}

/// The decision with the route's health applied: when `d.route` is open (or half_open
/// and this decision is not a probe) and fallback_for(d, fallback) names a route,
/// route = that route, reason = fallback, original_route = the route the rules chose;
/// d.rule is kept. The fallback route is used even if it is open too (there is nothing
/// better). Never throws or allocates.
inline decision apply_health(decision d, health_table& health, std::chrono::milliseconds now,
                             std::optional<route_id> fallback = std::nullopt) noexcept {
  const std::optional<route_id> to = fallback_for(d, fallback);
  if (!to || health.admit(d.route, now)) return d;
  d.original_route = d.route;
  d.route = *to;
  d.reason = route_reason::fallback;
  return d;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_HEALTH_TABLE_HPP
