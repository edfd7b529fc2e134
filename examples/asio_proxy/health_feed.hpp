// The proxy's side of route health (issue #12): one grayroute::health_table for all
// worker threads over the routes of one policy, fed with the outcome of every upstream
// attempt, consulted by every decision, and the figures of the metrics page that the
// library does not keep (requests by route, reason and status class; fallback retries;
// probes).
//
//   --health "error_ratio=50% min_requests=20 window=10s"   (health_syntax.hpp words; "off")
//   --fallback-route production                              (default: the first route)
//   health = "..." or [health], fallback = "production"     (the policy file)
//
// A feed belongs to a policy snapshot (live_policy.hpp). A reload that keeps the routes,
// the health settings and the fallback keeps the feed itself; otherwise the new policy
// gets a new feed that SHARES, by route name, the state and counters of every route it
// still has (one cell per route, held by every feed that has the route). Not a copy:
// requests still in flight on the old policy record their outcomes and counts through
// the old feed after the reload, and a copy taken at the reload would lose them (and
// could show a breaker closed that they opened). So a reload loses no count and never
// closes an open breaker; a route the new policy drops keeps its cell only as long as
// the old policy lives (a later policy that brings it back starts it afresh).
//
// Everything here is lock-free on the request path: the table is atomics, the counters
// are relaxed atomic adds into arrays sized at start-up. A breaker change is logged once,
// by the thread whose outcome made it, with the figures that made it.
#ifndef GRAYROUTE_PROXY_HEALTH_FEED_HPP
#define GRAYROUTE_PROXY_HEALTH_FEED_HPP

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grayroute/decision.hpp>
#include <grayroute/health_table.hpp>
#include <grayroute/route_table.hpp>

namespace grayroute_proxy {

class health_feed {
 public:
  /// `config`: parse_health's (disabled: counted only, never falls back, never
  /// retries). `fallback`: nullopt for the first route. `previous` (a reload): the feed
  /// whose route cells this one shares for the routes it has by name. Throws config_error.
  health_feed(const grayroute::route_table& routes, const grayroute::health_config& config,
              std::optional<grayroute::route_id> fallback, const health_feed* previous = nullptr);
  health_feed(const health_feed&) = delete;
  health_feed& operator=(const health_feed&) = delete;

  /// Whether a reload may keep this feed for a policy with these routes and settings.
  bool same_as(const grayroute::route_table& routes, const std::string& words,
               std::optional<grayroute::route_id> fallback) const;
  std::string words;  // the settings as parse_health's words, to compare across reloads

  /// The decision with the breakers applied (reason `fallback` when its route is open).
  grayroute::decision apply(const grayroute::decision& d, std::chrono::steady_clock::time_point now) noexcept {
    return grayroute::apply_health(d, table_, ms(now), fallback_);
  }

  /// Counts one attempt's outcome for `route`; `started`: when the attempt began.
  void record(grayroute::route_id route, grayroute::outcome o, std::chrono::steady_clock::time_point started,
              std::chrono::steady_clock::time_point now) noexcept {
    table_.record(route, o, std::chrono::duration_cast<std::chrono::microseconds>(now - started), ms(now));
  }

  /// Where a request whose attempt on `d.route` failed before any response byte may be
  /// sent once more: the fallback route (the rule's, else `fallback`, else the first
  /// route: grayroute::fallback_for), unless health is off, `d` already is on it, or
  /// the route was forced by header or cookie (whoever forces a route wants to see it
  /// fail). Counts the retry.
  std::optional<grayroute::route_id> retry_route(const grayroute::decision& d) noexcept;

  /// Counts a routed request that got `status` (0: none at all) on the client side.
  void count_request(const grayroute::decision& d, unsigned status) noexcept;

  /// Counts an active probe's result (probes.hpp).
  void count_probe(grayroute::route_id route, bool ok) noexcept;

  /// The Prometheus text of the library's health metrics and this file's counters.
  void write_metrics(std::string& out, std::chrono::steady_clock::time_point now) const;

  /// `{"gray":{"state":"open","since_ms":..,"window_outcomes":..,...},...}` (JSON) for
  /// GET /-/grayroute/health (since_ms: how long ago the state was entered).
  std::string routes_json(std::chrono::steady_clock::time_point now) const;

  /// One line for the start-up log.
  std::string describe() const;

  bool enabled() const noexcept { return table_.config().enabled; }
  const grayroute::route_table& routes() const noexcept { return routes_; }

  static std::chrono::milliseconds ms(std::chrono::steady_clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  }

 private:
  static constexpr std::size_t kReasons = 8;       // grayroute::route_reason's enumerators
  static constexpr std::size_t kStatusClasses = 6;  // none, 1xx .. 5xx

  // One route's health and this file's counters of it, shared by every feed that has the
  // route (see the top of the file).
  struct route_cell {
    grayroute::route_health health;
    std::atomic<std::uint64_t> requests[kReasons * kStatusClasses] = {};  // [reason][status class]
    std::atomic<std::uint64_t> retries{0};      // attempts on this route that went to the fallback
    std::atomic<std::uint64_t> probes[2] = {};  // failed, ok
  };
  using cells = std::vector<std::shared_ptr<route_cell>>;
  static cells cells_for(const grayroute::route_table& routes, const health_feed* previous);
  static std::vector<grayroute::route_health*> states_of(const cells& c);

  grayroute::route_table routes_;
  std::optional<grayroute::route_id> fallback_;  // nullopt: the library's default (the first route)
  cells cells_;                                  // by route id
  grayroute::health_table table_;                // over the cells' health
};

/// Prints one health_event as a log line: "health: route gray closed -> open
/// (connect_failures): 3 connect failures in a row; window 3 outcomes, 3 errors (100.0%)".
std::string event_line(const grayroute::health_event& e, const grayroute::route_table& routes);

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_HEALTH_FEED_HPP
