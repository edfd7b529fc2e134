// What a request's decision consults besides the location's policy, and the hooks the
// module's parts call (ngx_http_grayroute_conf.hpp lists them). Each concern lives in its
// own file:
//   ngx_http_grayroute_health.cpp  the routes' health in a shared-memory zone shared by all
//                                  workers (grayroute_health), the header filter and the
//                                  log-phase handler that feed it, and the Prometheus page
//                                  (grayroute_metrics)
//   ngx_http_grayroute_pin.cpp     pinning anonymous users (grayroute_pin_cookie)
//   ngx_http_grayroute_token.cpp   decision tokens between tiers (grayroute_decision_key_file,
//                                  $grayroute_decision) and the PROXY-protocol client address
//                                  (grayroute_client_ip_headers proxy_protocol)
// The http block's main_state keeps one decide_state. The decision in a location is:
// its policy (from the PROXY-protocol source when configured), then a trusted tier's
// token, then health (an open route falls back to the location's first route). Include
// after the nginx headers (ngx_http.h), inside C++.
#ifndef GRAYROUTE_NGINX_DECIDE_HPP
#define GRAYROUTE_NGINX_DECIDE_HPP

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <grayroute/client_ip.hpp>
#include <grayroute/decision.hpp>
#include <grayroute/decision_token.hpp>
#include <grayroute/health_table.hpp>
#include <grayroute/policy.hpp>
#include <grayroute/random_id.hpp>
#include <grayroute/set_cookie.hpp>
#include <grayroute/route_health.hpp>
#include <grayroute/route_table.hpp>

namespace grayroute_nginx {

/// The http block's settings and state for tokens, the PROXY-protocol source and health.
struct decide_state {
  // grayroute_client_ip_headers proxy_protocol ...: the PROXY source address (from a
  // trusted peer) is where the client-address walk starts.
  bool proxy_protocol_source = false;

  // grayroute_decision_key_file: without keys no token is read or written.
  std::optional<grayroute::decision_keys> keys;
  std::string token_header{grayroute::kDecisionHeader};
  std::int64_t token_ttl_s = 60;

  // grayroute_pin_cookie (ngx_http_grayroute_pin.cpp): anonymous users' random key.
  std::optional<grayroute::set_cookie_builder> pin;

  // grayroute_health: on with the library's defaults when not configured.
  grayroute::health_config health_config;
  bool health_set = false;
  bool metrics_used = false;  // a grayroute_metrics location needs the zone too
  ngx_shm_zone_t* zone = nullptr;
  // Every route name of the http block: its grayroute_routes, then the ones locations add
  // (health_routes). Health is per route name, whichever location routes to it.
  std::vector<std::string> route_names;
  std::unique_ptr<grayroute::route_table> routes;    // route_names, for the zone, metrics and logs
  std::unique_ptr<grayroute::health_table> health;   // this process's view of the zone
  std::atomic<std::uint64_t>* request_counts = nullptr;  // in the zone (ngx_http_grayroute_health.cpp)
};

// Implemented in ngx_http_grayroute_module.cpp: the http block's decide_state.
decide_state& decide_of(ngx_conf_t* cf);
decide_state& decide_of(ngx_http_request_t* r);

// ---- configuration (directive handlers; http level unless said) ------------------

char* set_health(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);             // grayroute_health
char* set_metrics(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);            // grayroute_metrics (location)
char* set_decision_key_file(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);  // grayroute_decision_key_file
char* set_pin_cookie(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);         // grayroute_pin_cookie

/// From postconfiguration: the header filter that sets the pin cookie, when configured.
ngx_int_t install_pin_filter(ngx_conf_t* cf, const decide_state& s) noexcept;

/// When a location's policy is built: each of its routes' id in the health zone (index =
/// the policy's route id), adding the names route_names does not have yet.
std::vector<grayroute::route_id> health_routes(decide_state& s, const grayroute::route_table& routes);

/// From postconfiguration, once every location is merged: the route table, the
/// shared-memory zone (a default one when routing is configured without
/// grayroute_health), the header filter and the log-phase handler that record outcomes.
/// `routing` says whether any location routes.
ngx_int_t finish_decide_config(ngx_conf_t* cf, decide_state& s, bool routing);

/// The routes' breakers for grayroute_status: [{"route":..,"state":..,"window_outcomes":..,
/// "window_errors":..}, ...], or null without a zone. Allocates (a status page).
std::string health_json(const decide_state& s);

// ---- the request path (noexcept, no allocation but from the request pool) ---------

/// The address the client-address walk starts from: the TCP peer, or the PROXY-protocol
/// source when that source is configured, the connection has one and the peer is trusted.
grayroute::ip_address decision_peer(const ngx_http_request_t* r, const decide_state& s,
                                     const grayroute::client_ip_resolver& resolver) noexcept;

/// A valid, unexpired token in the request from a trusted `peer` (decision_peer, trusted by
/// the policy's resolver) naming one of the policy's routes becomes the decision (reason
/// `upstream`, the token's rule kept); any other token is ignored.
void honour_token(const ngx_http_request_t* r, const decide_state& s, const grayroute::policy& policy,
                  const grayroute::ip_address& peer, grayroute::decision& d) noexcept;

/// Sends a decision for an open route to the deciding rule's fallback= route, else to the
/// location's first route (reason `fallback`), and notes the route so the outcome of the
/// upstream attempts that follow is recorded when the response header goes out.
/// `health_route`: the location's loc_state::health_route.
void guard_health(ngx_http_request_t* r, decide_state& s, const std::vector<grayroute::route_id>& health_route,
                  grayroute::decision& d) noexcept;

/// $grayroute_decision: the token for the request's decision, naming the route in `routes`
/// (the location's policy) and the deciding rule; not found without keys.
ngx_int_t decision_token_value(ngx_http_request_t* r, const decide_state& s, const grayroute::route_table& routes,
                               grayroute::route_id route, grayroute::route_reason reason, std::string_view rule,
                               ngx_http_variable_value_t* v) noexcept;

}  // namespace grayroute_nginx

#endif  // GRAYROUTE_NGINX_DECIDE_HPP
