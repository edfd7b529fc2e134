// The route health of a health_table in the Prometheus text exposition format (0.0.4),
// so every adapter serves the same names:
//
//   grayroute_breaker_state{route,state}                 gauge, 1 for the current state
//   grayroute_breaker_transitions_total{route,to}        counter, by the state entered
//   grayroute_upstream_outcomes_total{route,outcome}     counter
//   grayroute_upstream_duration_seconds{route}           histogram (5 ms .. 10 s), unless
//                                                        health_config::latency_histogram is false
//   grayroute_health_window_outcomes{route}              gauge, outcomes in the window
//   grayroute_health_window_errors{route}                gauge, errors in the window
//   grayroute_health_connect_failures_in_row{route}      gauge
//
//   std::string page;
//   grayroute::write_health_metrics(page, health, policy.routes(), grayroute::health_clock::now_ms());
//
// Appends to `out` (a status page, not the request path: it allocates). When the states
// are shared (nginx), one page covers all workers: they count into the same atomics.
#ifndef GRAYROUTE_HEALTH_METRICS_HPP
#define GRAYROUTE_HEALTH_METRICS_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "health_table.hpp"
#include "route_health.hpp"
#include "route_table.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

namespace detail {

// A label value: backslash, double quote and newline escaped, as the format requires.
inline void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
}

inline void append_metric_header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// name{route="r"[,key="value"]} number
inline void append_sample(std::string& out, std::string_view name, std::string_view route, std::string_view key,
                          std::string_view value, std::string_view number) {
  out.append(name).append("{route=\"");
  append_label_value(out, route);
  out += '"';
  if (!key.empty()) {
    out.append(",").append(key).append("=\"");
    append_label_value(out, value);
    out += '"';
  }
  out.append("} ").append(number).append("\n");
}

// Microseconds as seconds, without locale and without trailing zeros ("0.005", "2.5", "10").
inline std::string seconds_text(std::uint64_t us) {
  std::string text = std::to_string(us / 1000000);
  std::uint64_t fraction = us % 1000000;
  if (fraction != 0) {
    char digits[8];
    std::snprintf(digits, sizeof digits, "%06llu", static_cast<unsigned long long>(fraction));
    std::string_view f(digits, 6);
    while (!f.empty() && f.back() == '0') f.remove_suffix(1);
    text.append(".").append(f);
  }
  return text;
}

}  // namespace detail

/// Appends the health metrics of every route of `health`, named by `routes`.
inline void write_health_metrics(std::string& out, const health_table& health, const route_table& routes,
                                 std::chrono::milliseconds now) {
  const std::size_t n = health.size() < routes.size() ? health.size() : routes.size();
  auto snap = [&](std::size_t r) { return health.snapshot(static_cast<route_id>(r), now); };
  auto name = [&](std::size_t r) { return routes.name(static_cast<route_id>(r)); };

  detail::append_metric_header(out, "grayroute_breaker_state", "gauge",
                               "Breaker state of the route: 1 for the current state, 0 for the others.");
  for (std::size_t r = 0; r < n; ++r) {
    const breaker_state current = snap(r).state;
    for (std::size_t s = 0; s < kBreakerStates; ++s) {
      const auto state = static_cast<breaker_state>(s);
      detail::append_sample(out, "grayroute_breaker_state", name(r), "state", to_string(state), state == current ? "1" : "0");
    }
  }
  detail::append_metric_header(out, "grayroute_breaker_transitions_total", "counter",
                               "Breaker state changes of the route, by the state entered.");
  for (std::size_t r = 0; r < n; ++r) {
    const health_snapshot s = snap(r);
    for (std::size_t t = 0; t < kBreakerStates; ++t) {
      detail::append_sample(out, "grayroute_breaker_transitions_total", name(r), "to",
                            to_string(static_cast<breaker_state>(t)), std::to_string(s.transitions[t]));
    }
  }
  detail::append_metric_header(out, "grayroute_upstream_outcomes_total", "counter",
                               "Outcomes of the requests sent to the route, as the gateway reported them.");
  for (std::size_t r = 0; r < n; ++r) {
    const health_snapshot s = snap(r);
    for (std::size_t o = 0; o < kOutcomes; ++o) {
      detail::append_sample(out, "grayroute_upstream_outcomes_total", name(r), "outcome", to_string(static_cast<outcome>(o)),
                            std::to_string(s.outcomes[o]));
    }
  }
  if (health.config().latency_histogram) {
    detail::append_metric_header(out, "grayroute_upstream_duration_seconds", "histogram",
                                 "Time from sending a request to the route to its outcome.");
  }
  for (std::size_t r = 0; r < n && health.config().latency_histogram; ++r) {
    const health_snapshot s = snap(r);
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < kLatencyBuckets; ++b) {
      cumulative += s.latency[b];
      const std::string le = b + 1 < kLatencyBuckets ? detail::seconds_text(kLatencyBoundsUs[b]) : std::string("+Inf");
      detail::append_sample(out, "grayroute_upstream_duration_seconds_bucket", name(r), "le", le, std::to_string(cumulative));
    }
    detail::append_sample(out, "grayroute_upstream_duration_seconds_sum", name(r), {}, {},
                          detail::seconds_text(s.latency_sum_us));
    detail::append_sample(out, "grayroute_upstream_duration_seconds_count", name(r), {}, {}, std::to_string(cumulative));
  }
  struct gauge {
    const char* name;
    const char* help;
    std::uint32_t health_snapshot::*field;
  };
  static constexpr gauge kGauges[] = {
      {"grayroute_health_window_outcomes", "Outcomes of the route in the health window.", &health_snapshot::window_requests},
      {"grayroute_health_window_errors", "Errors (connect failures, timeouts, 5xx) of the route in the health window.",
       &health_snapshot::window_errors},
      {"grayroute_health_connect_failures_in_row", "Connect failures of the route since its last success.",
       &health_snapshot::connect_failures_in_row},
  };
  for (const gauge& g : kGauges) {
    detail::append_metric_header(out, g.name, "gauge", g.help);
    for (std::size_t r = 0; r < n; ++r) detail::append_sample(out, g.name, name(r), {}, {}, std::to_string(snap(r).*g.field));
  }
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_HEALTH_METRICS_HPP
