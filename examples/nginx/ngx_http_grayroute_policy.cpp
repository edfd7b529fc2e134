// ngx_http_grayroute_module: a location's grayroute::policy, built when the location is
// merged, from its (own or inherited) directives. The module only translates; the
// library validates and decides (policy.hpp):
//
//   routes     grayroute_routes in the server or location, else the http block's
//   lists      every list of the http block (named, and the unnamed one as "list")
//   rules      the location's grayroute_rule rules in order, then the shorthand's:
//              "list" (the unnamed list's route) and "percentage" (grayroute_percent),
//              as grayroute::to_policy_config builds them for router_config
//   forced     grayroute_force, before every rule
//   default    grayroute_default, else the first route
//   upstreams  grayroute_route, else each route's own name (upstream production {...})
//
// Errors name the value; nginx's "in FILE:LINE" is the line of the directive the
// mistake is in (a rule's own line for its errors).
extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

// A mistake found while merging, said as the directive would have said it.
[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

// grayroute_route's words -> one upstream per route (index = route id).
std::vector<std::string> resolve_upstreams(const directive_words& given, const std::vector<std::string>& routes) {
  const std::string route_list = main_state::join(routes);
  std::vector<std::string> upstreams(routes.size());
  bool named = false, positional = false;
  for (std::size_t i = 0; i < given.words.size(); ++i) {
    const std::string& word = given.words[i];
    const std::size_t equals = word.find('=');
    if (equals == std::string::npos) {
      positional = true;
      if (i >= upstreams.size()) {
        fail("grayroute_route: " + std::to_string(given.words.size()) + " upstreams for " + std::to_string(routes.size()) +
             " routes (" + route_list + ")");
      }
      upstreams[i] = word;
      continue;
    }
    named = true;
    const std::string route = word.substr(0, equals), upstream = word.substr(equals + 1);
    std::size_t id = 0;
    while (id < routes.size() && routes[id] != route) ++id;
    if (id == routes.size()) fail("grayroute_route: unknown route " + grayroute::quote_value(route) + " (routes: " + route_list + ")");
    if (upstream.empty()) fail("grayroute_route: route " + grayroute::quote_value(route) + " has no upstream");
    if (!upstreams[id].empty()) fail("grayroute_route: route " + grayroute::quote_value(route) + " is given twice");
    upstreams[id] = upstream;
  }
  if (named && positional) fail("grayroute_route: give either every upstream in route order or route=upstream pairs");
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    if (upstreams[i].empty()) {
      fail("grayroute_route: missing the upstream for route " + grayroute::quote_value(routes[i]) + " (routes: " + route_list + ")");
    }
  }
  return upstreams;
}

// The directive a policy error is about: the rule it names, else the directive its
// words point to, else the first routing directive of the location.
const conf_place& place_of(const std::string& message, const loc_state& l) {
  for (const auto& [rule, place] : l.rules) {
    if (message.find("rule " + grayroute::quote_value(rule.name)) != std::string::npos) return place;
  }
  if (l.force_set && message.find("force_") != std::string::npos) return l.force_place;
  if (l.percent_set && message.find("\"percentage\"") != std::string::npos) return l.percent_place;
  if (l.default_route.set() && message.find("default_route") != std::string::npos) return l.default_route.place;
  if (l.routes.set()) return l.routes.place;
  if (l.upstreams.set()) return l.upstreams.place;
  if (!l.rules.empty()) return l.rules.front().second;
  return l.default_route.place;
}

void build(main_state& m, loc_state& l) {
  const std::vector<std::string>& routes = l.routes.set() ? l.routes.words : m.routes;
  // List entries (list files, grayroute_list route=, Redis hash values) are route ids
  // in the http block's routes: a location naming its own must keep those in place.
  if (l.routes.set() && m.routes_set) {
    const bool extends = routes.size() >= m.routes.size() && std::equal(m.routes.begin(), m.routes.end(), routes.begin());
    if (!extends) {
      fail("grayroute_routes: " + main_state::join(routes) + " must begin with the http block's routes (" + m.route_list() +
           "), which list entries name");
    }
  }

  const list_state* unnamed = m.find_list("");
  grayroute::router_config shorthand;
  shorthand.routes = routes;
  shorthand.client_ip = m.client_ip;
  shorthand.force_header = l.force_header;
  shorthand.force_cookie = l.force_cookie;
  shorthand.force_route = l.force_route;
  if (l.percent_set) {
    shorthand.percent = l.percent;
    shorthand.percent_route = l.percent_route;
    shorthand.percent_seed = l.percent_seed;
  }
  static const grayroute::layered_store kNoList;
  grayroute::policy_config config =
      grayroute::to_policy_config(shorthand, grayroute::store_ref(unnamed ? unnamed->layers : kNoList));
  if (!unnamed || unnamed->layers.layers() == 0) {
    // No unnamed list: no "list" rule to ask it (and its name stays free for a rule).
    config.lists.clear();
    config.rules.erase(config.rules.begin());
  }
  for (const auto& list : m.lists) {
    if (!list->name.empty()) config.lists.push_back({list->name, {grayroute::store_ref(list->layers)}});
  }
  std::vector<grayroute::rule_config> rules;
  for (const auto& [rule, place] : l.rules) rules.push_back(rule);
  config.rules.insert(config.rules.begin(), rules.begin(), rules.end());
  if (l.default_route.set()) config.default_route = l.default_route.words.front();
  if (m.decide.pin) grayroute::add_pin_key(config, m.decide.pin->name());  // grayroute_pin_cookie

  l.policy = std::make_unique<grayroute::policy>(config);
  m.policies.push_back(l.policy.get());
  l.upstream_of = l.upstreams.set() ? resolve_upstreams(l.upstreams, routes) : routes;
  l.health_route = health_routes(m.decide, l.policy->routes());  // ngx_http_grayroute_health.cpp
}

}  // namespace

char* compile_location(ngx_conf_t* cf, main_state& m, loc_state& l) {
  // Routing is on where a location has (or inherits) upstreams, rules or its own
  // routes; the http block's grayroute_routes only names the routes, and
  // grayroute_default only says where routing sends by default.
  if (!l.upstreams.set() && !l.routes.set() && l.rules.empty()) return NGX_CONF_OK;
  try {
    build(m, l);
  } catch (const std::exception& e) {
    // Found only now that the whole http block is known: name the directive's line.
    ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%s%s", e.what(), place_of(e.what(), l).suffix().c_str());
    return static_cast<char*>(NGX_CONF_ERROR);
  }
  const conf_place& place = l.upstreams.set() ? l.upstreams.place : place_of("", l);
  for (const std::string& upstream : l.upstream_of) {
    bool known = false;
    for (const auto& named : m.named_upstreams) known = known || named.first == upstream;
    if (!known) m.named_upstreams.emplace_back(upstream, place);
  }
  return NGX_CONF_OK;
}

}  // namespace grayroute_nginx
