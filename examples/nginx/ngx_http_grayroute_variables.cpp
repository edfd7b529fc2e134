// ngx_http_grayroute_module: the request path. The first variable a request evaluates
// (normally through `proxy_pass http://$grayroute_upstream`) makes the decision, once;
// it is kept in the request's module context for every other variable (after
// ngx_http_geo_module: variables registered in preconfiguration, computed lazily).
// Only noexcept code runs here: no exception, no Redis, no allocation but from the
// request pool (the context, the health note, $grayroute_decision's token).
extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <cstdint>
#include <optional>
#include <string_view>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

const request_ctx* decide(ngx_http_request_t* r) noexcept {
  if (auto* ctx = static_cast<request_ctx*>(ngx_http_get_module_ctx(r, ngx_http_grayroute_module))) return ctx;
  const loc_state& l = *static_cast<loc_conf*>(ngx_http_get_module_loc_conf(r, ngx_http_grayroute_module))->state;
  if (!l.policy) return nullptr;

  // `grayroute_percent key=...`: the rollout key is an nginx complex value; empty
  // (no such cookie, say) falls back to the client address.
  std::string_view key;
  if (l.percent_key) {
    ngx_str_t value;
    if (ngx_http_complex_value(r, l.percent_key, &value) == NGX_OK) key = to_view(value);
  }
  // The host nginx matched servers by (lowercased, no port; the Host header's or the
  // request line's) and the normalised path nginx matched locations by, so a rule's
  // path=/v2/ scope agrees with `location /v2/`. The policy decides, then a trusted
  // tier's token, then the routes' health (ngx_http_grayroute_decide.hpp).
  decide_state& extra = decide_of(r);
  const grayroute::ip_address peer = decision_peer(r, extra, l.policy->resolver());
  grayroute::request_view request(peer, to_view(r->headers_in.server), to_view(r->uri), to_view(r->args), key);
  // grayroute_pin_cookie: a request without a rollout key gets a random one, kept after
  // the context for the Set-Cookie (ngx_http_grayroute_pin.cpp).
  std::optional<grayroute::anonymous_id> pin;
  if (extra.pin && !l.policy->has_rollout_key(request, request_headers(r->headers_in.headers))) pin = grayroute::random_id();
  const std::size_t pin_size = pin ? grayroute::anonymous_id::kLength : 0;
  auto* ctx = static_cast<request_ctx*>(ngx_palloc(r->pool, sizeof(request_ctx) + pin_size));
  if (!ctx) return nullptr;
  ctx->pinned = pin.has_value();
  if (pin) {
    auto* stored = reinterpret_cast<char*>(ctx + 1);
    ngx_memcpy(stored, pin->view().data(), pin_size);
    request.key = std::string_view(stored, pin_size);
  }
  grayroute::decision d = l.policy->decide(request, request_headers(r->headers_in.headers));
  honour_token(r, extra, *l.policy, peer, d);
  if (d.reason == grayroute::route_reason::upstream) ctx->pinned = false;  // the tier in front decided: no new key
  guard_health(r, extra, l.health_route, d);
  ctx->route = d.route;
  ctx->reason = d.reason;
  ctx->rule = d.rule;
  ctx->client_ip_length = static_cast<std::uint8_t>(d.client.address.format(reinterpret_cast<char*>(ctx->client_ip)));
  ngx_http_set_ctx(r, ctx, ngx_http_grayroute_module);
  return ctx;
}

enum variable_kind : uintptr_t { var_upstream, var_route, var_reason, var_rule, var_client_ip, var_decision };

void set_value(ngx_http_variable_value_t* v, const u_char* data, std::size_t len) noexcept {
  v->data = const_cast<u_char*>(data);
  v->len = static_cast<unsigned>(len);
  v->valid = 1;
  v->no_cacheable = 0;
  v->not_found = 0;
}

ngx_int_t get_variable(ngx_http_request_t* r, ngx_http_variable_value_t* v, uintptr_t kind) noexcept {
  const request_ctx* ctx = decide(r);
  if (!ctx) {
    v->not_found = 1;
    return NGX_OK;
  }
  const loc_state& l = *static_cast<loc_conf*>(ngx_http_get_module_loc_conf(r, ngx_http_grayroute_module))->state;
  switch (kind) {
    case var_upstream: {
      const std::string& upstream = l.upstream_of[ctx->route];
      set_value(v, reinterpret_cast<const u_char*>(upstream.data()), upstream.size());
      break;
    }
    case var_route: {
      const std::string_view name = l.policy->route_name(ctx->route);
      set_value(v, reinterpret_cast<const u_char*>(name.data()), name.size());
      break;
    }
    case var_reason: {
      const std::string_view reason = grayroute::to_string(ctx->reason);
      set_value(v, reinterpret_cast<const u_char*>(reason.data()), reason.size());
      break;
    }
    case var_rule:  // empty when no rule decided (forced, default)
      set_value(v, reinterpret_cast<const u_char*>(ctx->rule.data()), ctx->rule.size());
      break;
    case var_decision:
      return decision_token_value(r, decide_of(r), l.policy->routes(), ctx->route, ctx->reason, ctx->rule, v);
    default:
      set_value(v, ctx->client_ip, ctx->client_ip_length);
      break;
  }
  return NGX_OK;
}

// A decision cached by nginx's variable cache could outlive the location it was made
// in (an internal redirect keeps r->variables); the module context is reset instead.
ngx_http_variable_t kVariables[] = {
    {ngx_string("grayroute_upstream"), nullptr, get_variable, var_upstream, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("grayroute_route"), nullptr, get_variable, var_route, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("grayroute_reason"), nullptr, get_variable, var_reason, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("grayroute_rule"), nullptr, get_variable, var_rule, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("grayroute_client_ip"), nullptr, get_variable, var_client_ip, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("grayroute_decision"), nullptr, get_variable, var_decision, NGX_HTTP_VAR_NOCACHEABLE, 0},
};

}  // namespace

ngx_int_t add_variables(ngx_conf_t* cf) {
  for (auto& variable : kVariables) {
    ngx_http_variable_t* v = ngx_http_add_variable(cf, &variable.name, variable.flags);
    if (!v) return NGX_ERROR;
    v->get_handler = variable.get_handler;
    v->data = variable.data;
  }
  return NGX_OK;
}

}  // namespace grayroute_nginx
