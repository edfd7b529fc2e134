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
                         std::optional<grayroute::route_id> fallback, const health_feed* previous)
    : routes_(routes),
      fallback_(fallback),
      cells_(cells_for(routes, previous)),
      table_(config, states_of(cells_).data(), routes.size(),
             [this](const grayroute::health_event& e) {
               // On the request path of the one request that made the change: one line, once.
               const std::string line = event_line(e, routes_) + "\n";
               std::fwrite(line.data(), 1, line.size(), stdout);
               std::fflush(stdout);
             },
             fallback_.value_or(grayroute::kProduction)) {}

health_feed::cells health_feed::cells_for(const grayroute::route_table& routes, const health_feed* previous) {
  cells out;
  out.reserve(routes.size());
  for (std::size_t r = 0; r < routes.size(); ++r) {
    const auto kept = previous ? previous->routes_.find(routes.name(static_cast<grayroute::route_id>(r))) : std::nullopt;
    out.push_back(kept ? previous->cells_[*kept] : std::make_shared<route_cell>());
  }
  return out;
}

std::vector<grayroute::route_health*> health_feed::states_of(const cells& c) {
  std::vector<grayroute::route_health*> states;
  states.reserve(c.size());
  for (const auto& cell : c) states.push_back(&cell->health);
  return states;
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
  if (to && d.route < routes_.size()) cells_[d.route]->retries.fetch_add(1, std::memory_order_relaxed);
  return to;
}

void health_feed::count_request(const grayroute::decision& d, unsigned status) noexcept {
  if (d.route >= routes_.size()) return;
  const std::size_t status_class = status >= 100 && status < 600 ? status / 100 : 0;
  const std::size_t reason = static_cast<std::size_t>(d.reason) < kReasons ? static_cast<std::size_t>(d.reason) : 0;
  cells_[d.route]->requests[reason * kStatusClasses + status_class].fetch_add(1, std::memory_order_relaxed);
}

void health_feed::count_probe(grayroute::route_id route, bool ok) noexcept {
  if (route < routes_.size()) cells_[route]->probes[ok ? 1 : 0].fetch_add(1, std::memory_order_relaxed);
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
        const std::uint64_t count = cells_[r]->requests[reason * kStatusClasses + c].load(std::memory_order_relaxed);
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
    out += "} " + std::to_string(cells_[r]->retries.load(std::memory_order_relaxed)) + "\n";
  }
  append_counter_header(out, "grayroute_probes_total", "Active health probes of the route, by result.");
  for (std::size_t r = 0; r < n; ++r) {
    for (int ok = 0; ok < 2; ++ok) {
      out += "grayroute_probes_total";
      label("route", routes_.name(static_cast<grayroute::route_id>(r)), true);
      label("result", ok ? "success" : "failure", false);
      out += "} " + std::to_string(cells_[r]->probes[static_cast<std::size_t>(ok)].load(std::memory_order_relaxed)) + "\n";
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
