// What a request's decision consults besides the router, and the hooks the module file
// calls. Each concern lives in its own file:
//   ngx_http_grayroute_health.cpp  the routes' health in a shared-memory zone shared by all
//                                  workers (grayroute_health), the log-phase handler that
//                                  feeds it, and the Prometheus page (grayroute_metrics)
//   ngx_http_grayroute_token.cpp   decision tokens between tiers (grayroute_decision_key_file,
//                                  $grayroute_decision) and the PROXY-protocol client address
//                                  (grayroute_client_ip_headers proxy_protocol)
// The module file keeps one decide_state in its http-level state. Include after the
// nginx headers (ngx_http.h), inside C++.
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

  // grayroute_health: on with the library's defaults when not configured.
  grayroute::health_config health_config;
  bool health_set = false;
  bool metrics_used = false;  // a grayroute_metrics location needs the zone too
  ngx_shm_zone_t* zone = nullptr;
  std::unique_ptr<grayroute::route_table> routes;    // names for tokens, metrics and logs
  std::unique_ptr<grayroute::health_table> health;   // this process's view of the zone
  std::atomic<std::uint64_t>* request_counts = nullptr;  // in the zone (ngx_http_grayroute_health.cpp)
};

// Implemented in the module file: the http block's decide_state.
decide_state& decide_of(ngx_conf_t* cf);
decide_state& decide_of(ngx_http_request_t* r);

// ---- configuration (directive handlers; http level unless said) ------------------

char* set_health(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);             // grayroute_health
char* set_metrics(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);            // grayroute_metrics (location)
char* set_decision_key_file(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);  // grayroute_decision_key_file

/// From postconfiguration, once the routes are known: the route table, the shared-memory
/// zone (a default one when routing is configured without grayroute_health) and the
/// log-phase handler. `routing` says whether any location routes.
ngx_int_t finish_decide_config(ngx_conf_t* cf, decide_state& s, const std::vector<std::string>& routes, bool routing);

/// The routes' breakers for grayroute_status: [{"route":..,"state":..,"window_outcomes":..,
/// "window_errors":..}, ...], or null without a zone. Allocates (a status page).
std::string health_json(const decide_state& s);

// ---- the request path (noexcept, no allocation but from the request pool) ---------

/// The address the client-address walk starts from: the TCP peer, or the PROXY-protocol
/// source when that source is configured, the connection has one and the peer is trusted.
grayroute::ip_address decision_peer(const ngx_http_request_t* r, const decide_state& s,
                                     const grayroute::client_ip_resolver& resolver) noexcept;

/// A valid, unexpired token in the request from a trusted `peer` (decision_peer) names
/// the route (reason `upstream`); any other token is ignored.
void honour_token(const ngx_http_request_t* r, const decide_state& s, const grayroute::client_ip_resolver& resolver,
                  const grayroute::ip_address& peer, grayroute::decision& d) noexcept;

/// Sends a decision for an open route to production (reason `fallback`) and notes the
/// route so the log phase records the outcome of the upstream attempt that follows.
void guard_health(ngx_http_request_t* r, decide_state& s, grayroute::decision& d) noexcept;

/// $grayroute_decision: the token for the request's decision (the deciding rule's name, when
/// a policy has one); not found without keys.
ngx_int_t decision_token_value(ngx_http_request_t* r, const decide_state& s, grayroute::route_id route,
                               grayroute::route_reason reason, ngx_http_variable_value_t* v,
                               std::string_view rule = {}) noexcept;

}  // namespace grayroute_nginx

#endif  // GRAYROUTE_NGINX_DECIDE_HPP
