// Route health in the proxy; see health_feed.hpp.
#include "health_feed.hpp"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include <grayroute/health_metrics.hpp>

namespace grayroute_proxy {

namespace {

std::string percent(double share) {
  char text[16];
  std::snprintf(text, sizeof text, "%.1f%%", share * 100.0);
  return text;
}

void append_counter_header(std::string& out, const char* name, const char* help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" counter\n");
}

}  // namespace

std::string event_line(const grayroute::health_event& e, const grayroute::route_table& routes) {
  std::string line = "health: route ";
  line += routes.name(e.route);
  line += ' ';
  line += grayroute::to_string(e.from);
  line += " -> ";
  line += grayroute::to_string(e.to);
  line += " (";
  line += grayroute::to_string(e.cause);
  line += "): ";
  switch (e.cause) {
    case grayroute::health_cause::connect_failures:
      line += std::to_string(e.connect_failures_in_row) + " connect failures in a row; ";
      break;
    case grayroute::health_cause::probes_succeeded:
      line += std::to_string(e.probe_successes) + " probes succeeded in a row; ";
      break;
    case grayroute::health_cause::probe_failed:
      line += "a probe failed after " + std::to_string(e.probe_successes) + " successes; ";
      break;
    case grayroute::health_cause::cooldown_elapsed:
    case grayroute::health_cause::error_ratio:
      break;
  }
  line += "window " + std::to_string(e.window_requests) + " outcomes, " + std::to_string(e.window_errors) +
          " errors (" + percent(e.error_ratio) + ")";
  if (e.baseline_error_ratio > 0.0) line += ", baseline " + percent(e.baseline_error_ratio);
  return line;
}

health_feed::health_feed(const grayroute::route_table& routes, const grayroute::health_config& config,
                         std::optional<grayroute::route_id> fallback)
    : routes_(routes),
      fallback_(fallback),
      states_(std::make_unique<grayroute::route_health[]>(routes.size())),
      table_(config, states_.get(), routes.size(),
             [this](const grayroute::health_event& e) {
               // On the request path of the one request that made the change: one line, once.
               const std::string line = event_line(e, routes_) + "\n";
               std::fwrite(line.data(), 1, line.size(), stdout);
               std::fflush(stdout);
             },
             fallback_.value_or(grayroute::kProduction)),
      requests_(std::make_unique<std::atomic<std::uint64_t>[]>(routes.size() * kReasons * kStatusClasses)),
      retries_(std::make_unique<std::atomic<std::uint64_t>[]>(routes.size())),
      probes_(std::make_unique<std::atomic<std::uint64_t>[]>(routes.size() * 2)) {}

namespace {

template <typename T, std::size_t N>
void copy_atomics(std::atomic<T> (&to)[N], const std::atomic<T> (&from)[N]) noexcept {
  for (std::size_t i = 0; i < N; ++i) to[i].store(from[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void copy_atomics(std::atomic<std::uint64_t>* to, const std::atomic<std::uint64_t>* from, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) to[i].store(from[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
}

}  // namespace

// The library has no "move a route's state" call: route_health is an aggregate of
// atomics whose words are self-contained (the breaker's `since` is a time of the shared
// monotonic clock), so copying every word gives the new table the same state.
void health_feed::carry_over(const health_feed& old) noexcept {
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    const auto from = old.routes_.find(routes_.name(static_cast<grayroute::route_id>(r)));
    if (!from) continue;
    grayroute::route_health& to = states_[r];
    const grayroute::route_health& was = old.states_[*from];
    copy_atomics(to.window, was.window);
    to.breaker.store(was.breaker.load(std::memory_order_acquire), std::memory_order_release);
    to.connect_failures_in_row.store(was.connect_failures_in_row.load(std::memory_order_relaxed), std::memory_order_relaxed);
    to.half_open_decisions.store(was.half_open_decisions.load(std::memory_order_relaxed), std::memory_order_relaxed);
    copy_atomics(to.errors, was.errors);
    copy_atomics(to.transitions, was.transitions);
    copy_atomics(to.latency, was.latency);
    to.latency_sum_us.store(was.latency_sum_us.load(std::memory_order_relaxed), std::memory_order_relaxed);
    copy_atomics(&requests_[r * kReasons * kStatusClasses], &old.requests_[std::size_t{*from} * kReasons * kStatusClasses],
                 kReasons * kStatusClasses);
    copy_atomics(&retries_[r], &old.retries_[*from], 1);
    copy_atomics(&probes_[r * 2], &old.probes_[std::size_t{*from} * 2], 2);
  }
}

bool health_feed::same_as(const grayroute::route_table& routes, const std::string& other_words,
                          std::optional<grayroute::route_id> fallback) const {
  if (other_words != words || fallback != fallback_ || routes.size() != routes_.size()) return false;
  for (std::size_t r = 0; r < routes.size(); ++r) {
    if (routes.name(static_cast<grayroute::route_id>(r)) != routes_.name(static_cast<grayroute::route_id>(r))) return false;
  }
  return true;
}

std::optional<grayroute::route_id> health_feed::retry_route(const grayroute::decision& d) noexcept {
  if (!enabled()) return std::nullopt;
  // The rule's fallback, else --fallback-route / `fallback`, else the first route (which
  // itself falls back only where one of those says so).
  const auto to = grayroute::fallback_for(d, fallback_);
  if (to && d.route < routes_.size()) retries_[d.route].fetch_add(1, std::memory_order_relaxed);
  return to;
}

void health_feed::count_request(const grayroute::decision& d, unsigned status) noexcept {
  if (d.route >= routes_.size()) return;
  const std::size_t status_class = status >= 100 && status < 600 ? status / 100 : 0;
  const std::size_t reason = static_cast<std::size_t>(d.reason) < kReasons ? static_cast<std::size_t>(d.reason) : 0;
  requests_[(d.route * kReasons + reason) * kStatusClasses + status_class].fetch_add(1, std::memory_order_relaxed);
}

void health_feed::count_probe(grayroute::route_id route, bool ok) noexcept {
  if (route < routes_.size()) probes_[std::size_t{route} * 2 + (ok ? 1u : 0u)].fetch_add(1, std::memory_order_relaxed);
}

void health_feed::write_metrics(std::string& out, std::chrono::steady_clock::time_point now) const {
  grayroute::write_health_metrics(out, table_, routes_, ms(now));
  static constexpr const char* kClasses[kStatusClasses] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  const std::size_t n = table_.size();
  // Route names are tokens (route_table refuses others) and the rest are fixed words:
  // no label value here needs the format's escapes.
  auto label = [&out](const char* key, std::string_view value, bool first) {
    out.append(first ? "{" : ",").append(key).append("=\"").append(value).append("\"");
  };
  append_counter_header(out, "grayroute_requests_total",
                        "Requests routed, by the route that served, the reason and the status class sent to the "
                        "client (none: no response).");
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t reason = 0; reason < kReasons; ++reason) {
      for (std::size_t c = 0; c < kStatusClasses; ++c) {
        const std::uint64_t count =
            requests_[(r * kReasons + reason) * kStatusClasses + c].load(std::memory_order_relaxed);
        if (count == 0) continue;  // a sparse family: only the combinations that happened
        out += "grayroute_requests_total";
        label("route", routes_.name(static_cast<grayroute::route_id>(r)), true);
        label("reason", grayroute::to_string(static_cast<grayroute::route_reason>(reason)), false);
        label("status_class", kClasses[c], false);
        out += "} " + std::to_string(count) + "\n";
      }
    }
  }
  append_counter_header(out, "grayroute_fallback_retries_total",
                        "Requests sent again to the fallback route after an attempt on this route failed before "
                        "any response byte.");
  for (std::size_t r = 0; r < n; ++r) {
    out += "grayroute_fallback_retries_total";
    label("route", routes_.name(static_cast<grayroute::route_id>(r)), true);
    out += "} " + std::to_string(retries_[r].load(std::memory_order_relaxed)) + "\n";
  }
  append_counter_header(out, "grayroute_probes_total", "Active health probes of the route, by result.");
  for (std::size_t r = 0; r < n; ++r) {
    for (int ok = 0; ok < 2; ++ok) {
      out += "grayroute_probes_total";
      label("route", routes_.name(static_cast<grayroute::route_id>(r)), true);
      label("result", ok ? "success" : "failure", false);
      out += "} " + std::to_string(probes_[r * 2 + static_cast<std::size_t>(ok)].load(std::memory_order_relaxed)) + "\n";
    }
  }
}

std::string health_feed::routes_json(std::chrono::steady_clock::time_point now) const {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (std::size_t r = 0; r < table_.size(); ++r) {
    const auto s = table_.snapshot(static_cast<grayroute::route_id>(r), ms(now));
    out[std::string(routes_.name(static_cast<grayroute::route_id>(r)))] = {
        {"state", std::string(grayroute::to_string(s.state))},
        {"since_ms", s.since.count() == 0 ? 0 : (ms(now) - s.since).count()},
        {"window_outcomes", s.window_requests},
        {"window_errors", s.window_errors},
        {"error_ratio", std::round(s.error_ratio * 1000.0) / 1000.0},
        {"connect_failures_in_row", s.connect_failures_in_row}};
  }
  return out.dump();
}

std::string health_feed::describe() const {
  const grayroute::health_config& c = table_.config();
  const std::string fallback(routes_.name(fallback_.value_or(grayroute::kProduction)));
  if (!c.enabled) return "off (outcomes counted for /-/grayroute/metrics; no fallback, no retry)";
  std::string out = "on, falling back to " + fallback + "; open after ";
  out += c.consecutive_connect_failures ? std::to_string(c.consecutive_connect_failures) + " connect failures in a row or "
                                        : std::string();
  out += c.error_ratio > 0 ? percent(c.error_ratio) + " errors of >= " + std::to_string(c.min_requests) + " in " +
                                 std::to_string(c.window.count()) + " ms"
                           : std::string("(no error ratio)");
  if (c.relative_margin > 0) out += " exceeding " + fallback + "'s by " + percent(c.relative_margin);
  out += "; half-open after " + std::to_string(c.cooldown.count()) + " ms, closed after " +
         std::to_string(c.probe_successes) + " good probes";
  return out;
}

}  // namespace grayroute_proxy
