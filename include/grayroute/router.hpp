// The route decision for one request: which upstream, and why.
//
//   grayroute::memory_store store;
//   grayroute::router_config config;
//   config.client_ip.trusted_proxies = {"10.0.0.0/8"};
//   grayroute::router<grayroute::memory_store> router(store, config);
//   auto d = router.decide(peer, headers);   // router.route_name(d.route), to_string(d.reason)
//
// Precedence, first match wins:
//   1. header  - force_header carries "always" (-> force_route), "never" (-> the first
//                route) or a route name; any other value is ignored.
//   2. cookie  - force_cookie, the same values.
//   3. list    - the store lists the resolved client address (longest prefix).
//   4. percentage - the sticky hash of the rollout key falls inside `percent`.
//   5. default - default_route.
// Forcing by header or cookie lets whoever sends it choose a route (that is what it
// is for: testers, QA, canary-by-header in ingress-nginx); leave both empty, the
// default, when clients must not choose.
#ifndef GRAYROUTE_ROUTER_HPP
#define GRAYROUTE_ROUTER_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client_ip.hpp"
#include "config_error.hpp"
#include "cookie.hpp"
#include "decision.hpp"
#include "detail/ascii.hpp"
#include "headers.hpp"
#include "ip.hpp"
#include "rollout.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

struct router_config {
  /// Route names; the index is the route_id. The first is production (where
  /// "never" sends), the second is where list entries go by default.
  std::vector<std::string> routes{"production", "gray"};
  resolver_config client_ip;

  // Route names below may be left empty: "" means the second route for force_route
  // and percent_route, the first for default_route, whatever the routes are called.
  std::string force_header;          ///< e.g. "X-Canary"; empty: off
  std::string force_cookie;          ///< e.g. "canary"; empty: off
  std::string force_route;           ///< where "always" sends

  double percent = 0;                ///< 0..100, step 0.01
  std::string percent_route;
  std::string percent_key_header;    ///< e.g. "X-User-Id"; falls back to the cookie, then the client IP
  std::string percent_key_cookie;    ///< e.g. "uid"
  std::uint32_t percent_seed = 0;    ///< another seed picks an independent set of clients

  std::string default_route;
};

template <class Store>
class router {
  static_assert(is_store_v<Store>,
                "a store needs `std::optional<grayroute::route_id> lookup(const grayroute::ip_address&) const noexcept`");

 public:
  /// Validates `config` (throws config_error naming the bad value). `store` must
  /// outlive the router; it may change at any time.
  router(const Store& store, const router_config& config)
      : store_(&store),
        resolver_(config.client_ip),
        routes_(config.routes),
        force_header_(config.force_header),
        force_cookie_(config.force_cookie),
        percent_key_header_(config.percent_key_header),
        percent_key_cookie_(config.percent_key_cookie),
        rollout_(config.percent, config.percent_seed) {
    if (routes_.size() < 2) detail::throw_config_error("at least two routes are needed (production and gray)");
    if (routes_.size() > 0xffff) detail::throw_config_error("too many routes");
    for (std::size_t i = 0; i < routes_.size(); ++i) {
      if (routes_[i].empty()) detail::throw_config_error("route " + std::to_string(i) + " has an empty name");
      for (std::size_t j = 0; j < i; ++j) {
        if (routes_[i] == routes_[j]) detail::throw_config_error("route " + detail::quote_value(routes_[i]) + " is listed twice");
      }
    }
    interesting_ = resolver_.header_name_lengths();
    for (const auto* name : {&force_header_, &percent_key_header_}) {
      if (!name->empty()) interesting_.add(name->size());
    }
    if (!force_cookie_.empty() || !percent_key_cookie_.empty()) interesting_.add(std::string_view("Cookie").size());
    force_route_ = require_route(config.force_route, kGray, "force_route");
    percent_route_ = require_route(config.percent_route, kGray, "percent_route");
    default_route_ = require_route(config.default_route, kProduction, "default_route");
  }

  /// Decides where the request from `peer` with `headers` goes. Never throws.
  template <class Headers>
  decision decide(const ip_address& peer, const Headers& headers) const noexcept {
    return decide(peer, headers, std::string_view());
  }

  /// The same, with the percentage key supplied by the caller (an nginx variable,
  /// a session id the gateway already parsed); empty: read it as configured.
  template <class Headers>
  decision decide(const ip_address& peer, const Headers& headers, std::string_view rollout_key) const noexcept {
    typename client_ip_resolver::scan scan(resolver_, peer);
    std::optional<route_id> by_header, by_cookie;
    std::optional<std::string_view> key_header, key_cookie;
    for (const auto& h : headers) {
      const std::string_view name = detail::header_name(h);
      if (!interesting_.may_match(name.size())) continue;
      const std::string_view value = detail::header_value(h);
      if (scan.feed(name, value)) continue;
      if (!force_header_.empty() && !by_header && detail::iequals(name, force_header_)) {
        by_header = forced_route(value);
      } else if (!percent_key_header_.empty() && !key_header && detail::iequals(name, percent_key_header_)) {
        const std::string_view v = detail::trim_ows(value);
        if (!v.empty()) key_header = v;
      } else if (detail::iequals(name, "Cookie")) {
        if (!force_cookie_.empty() && !by_cookie) {
          if (auto v = find_cookie(value, force_cookie_)) by_cookie = forced_route(*v);
        }
        if (!percent_key_cookie_.empty() && !key_cookie) {
          if (auto v = find_cookie(value, percent_key_cookie_); v && !v->empty()) key_cookie = v;
        }
      }
    }
    decision d;
    d.client = scan.finish();
    if (by_header) return decided(d, *by_header, route_reason::header);
    if (by_cookie) return decided(d, *by_cookie, route_reason::cookie);
    if (const auto listed = store_->lookup(d.client.address); listed && *listed < routes_.size()) {
      return decided(d, *listed, route_reason::list);
    }
    if (rollout_.basis_points() != 0) {
      const bool in = !rollout_key.empty() ? rollout_.includes(rollout_key)
                      : key_header ? rollout_.includes(*key_header)
                      : key_cookie ? rollout_.includes(*key_cookie)
                                   : rollout_.includes(d.client.address);
      if (in) return decided(d, percent_route_, route_reason::percentage);
    }
    d.route = default_route_;
    d.reason = route_reason::default_route;
    return d;
  }

  /// The configured name of `route` ("production", "gray", ...); "" when out of range.
  std::string_view route_name(route_id route) const noexcept {
    return route < routes_.size() ? std::string_view(routes_[route]) : std::string_view();
  }

  /// The id of the route called `name`, if there is one.
  std::optional<route_id> find_route(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < routes_.size(); ++i) {
      if (routes_[i] == name) return static_cast<route_id>(i);
    }
    return std::nullopt;
  }

  const std::vector<std::string>& routes() const noexcept { return routes_; }
  const client_ip_resolver& resolver() const noexcept { return resolver_; }
  const Store& store() const noexcept { return *store_; }

 private:
  route_id require_route(const std::string& name, route_id fallback, const char* option) const {
    if (name.empty()) return fallback;
    const auto id = find_route(name);
    if (!id) detail::throw_config_error(std::string(option) + ": unknown route " + detail::quote_value(name));
    return *id;
  }

  static decision decided(decision& d, route_id route, route_reason reason) noexcept {
    d.route = route;
    d.reason = reason;
    return d;
  }

  std::optional<route_id> forced_route(std::string_view value) const noexcept {
    value = detail::trim_ows(value);
    if (value == "always") return force_route_;
    if (value == "never") return kProduction;
    return find_route(value);
  }

  const Store* store_;
  client_ip_resolver resolver_;
  std::vector<std::string> routes_;
  std::string force_header_, force_cookie_, percent_key_header_, percent_key_cookie_;
  percentage_rollout rollout_;
  detail::name_lengths interesting_;  // lengths of every header name decide() reads
  route_id force_route_ = kGray, percent_route_ = kGray, default_route_ = kProduction;
};

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_ROUTER_HPP
