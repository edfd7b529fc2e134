// What a routing decision says: the route, why, which rule, and who the client is.
// Shared by router<Store> (the shorthand) and policy (the full model).
//
//   grayroute::decision d = policy.decide(request, headers);
//   policy.route_name(d.route);  to_string(d.reason);  d.rule;  d.client.address;
//
// Room to grow without reshaping: a later per-route health check keeps `route` as the
// route that serves and adds the route the rules chose beside it (reason `fallback`);
// a decision token adds reason `upstream`. Both are new enumerators and new fields,
// never a change of meaning for the ones here.
#ifndef GRAYROUTE_DECISION_HPP
#define GRAYROUTE_DECISION_HPP

#include <cstdint>
#include <optional>
#include <string_view>

#include "client_ip.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

// GCC (before 13) takes a scoped enumerator named `header` for a shadow of the type
// grayroute::header; it cannot shadow anything, so that warning is off for the enum.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
/// Why a request went where it went.
enum class route_reason : std::uint8_t {
  header,         ///< forced by the force header
  cookie,         ///< forced by the force cookie
  list,           ///< the client's entry on a gray list named the route
  percentage,     ///< the sticky hash of the rollout key fell inside a share
  default_route,  ///< nothing else applied
  match,          ///< a policy rule with a fixed route matched
  fallback,       ///< the chosen route was unhealthy (original_route); health_table.hpp
  upstream,       ///< a valid decision token from the tier in front named the route
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// "header", "cookie", "list", "percentage", "default", "match", "fallback", "upstream":
/// for logs and response headers.
constexpr std::string_view to_string(route_reason reason) noexcept {
  switch (reason) {
    case route_reason::header: return "header";
    case route_reason::cookie: return "cookie";
    case route_reason::list: return "list";
    case route_reason::percentage: return "percentage";
    case route_reason::default_route: return "default";
    case route_reason::match: return "match";
    case route_reason::fallback: return "fallback";
    case route_reason::upstream: return "upstream";
  }
  return "default";
}

struct decision {
  route_id route = kProduction;
  route_reason reason = route_reason::default_route;
  client_ip client;
  /// The name of the policy rule that decided; empty for forced routes, the default
  /// and router<Store>. Points into the policy, valid while it lives.
  std::string_view rule;
  /// With reason `fallback`: the route the rules chose, which was unhealthy; `route` serves instead.
  route_id original_route = kProduction;
  /// Where this decision goes when its route is open: the deciding rule's fallback
  /// (rule_config::fallback); nullopt: the adapter's fallback setting, else the first
  /// route. Read by apply_health (health_table.hpp).
  std::optional<route_id> fallback_route;
};

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DECISION_HPP
