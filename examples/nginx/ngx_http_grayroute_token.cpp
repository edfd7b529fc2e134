// Consistent decisions across tiers for the nginx module: decision tokens and the
// PROXY-protocol client address.
//
//   grayroute_decision_key_file /etc/nginx/grayroute-decision.key [ttl=60s] [header=Grayroute-Decision];
//   grayroute_trusted_proxies 10.0.0.0/8;                  # the tiers whose tokens are believed
//   location / { ...; proxy_set_header Grayroute-Decision $grayroute_decision; }
//
// Tokens (decision_token.hpp: SipHash-2-4 under a 128-bit key, two keys during a rotation)
// are read from the request header only when the peer the request came from is a trusted
// proxy (grayroute_trusted_proxies; the PROXY-protocol source when that is the client's
// source): a valid, unexpired token naming a route this tier has becomes the decision,
// reason `upstream`. A missing, forged, expired or unknown-route token, or any token from
// an untrusted peer, is ignored. `proxy_set_header Grayroute-Decision $grayroute_decision`
// replaces whatever the client sent by this tier's own token (empty - the header is not
// sent - when no key file is configured), so no client token travels further.
//
// grayroute_client_ip_headers proxy_protocol [headers...]: on a `listen ... proxy_protocol`
// server, the PROXY source address ($proxy_protocol_addr) of a connection from a trusted
// peer (the balancer) replaces the TCP peer where the client-address walk starts: the
// headers named after it are then believed only when that address is a trusted proxy too.

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <exception>
#include <string>
#include <string_view>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

bool is_token_char(u_char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// The token header's value when the request carries it exactly once; a repeated header
// is ambiguous and ignored.
std::string_view token_in(const ngx_http_request_t* r, std::string_view name) noexcept {
  std::string_view found;
  int count = 0;
  for (const auto& h : request_headers(r->headers_in.headers)) {
    if (h.first.size() != name.size() ||
        ngx_strncasecmp(reinterpret_cast<u_char*>(const_cast<char*>(h.first.data())),
                        reinterpret_cast<u_char*>(const_cast<char*>(name.data())), name.size()) != 0) {
      continue;
    }
    found = h.second;
    ++count;
  }
  return count == 1 ? found : std::string_view();
}

}  // namespace

char* set_decision_key_file(ngx_conf_t* cf, ngx_command_t*, void*) {
  try {
    decide_state& s = decide_of(cf);
    if (s.keys) return conf_duplicate();
    auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    ngx_str_t path = args[1];
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) return static_cast<char*>(NGX_CONF_ERROR);
    for (ngx_uint_t i = 2; i < cf->args->nelts; ++i) {
      const std::string_view word = to_view(args[i]);
      if (word.substr(0, 4) == "ttl=") {
        ngx_str_t value{args[i].len - 4, args[i].data + 4};
        const ngx_int_t seconds = ngx_parse_time(&value, 1);
        if (seconds == NGX_ERROR || seconds < 1) {
          return conf_error(cf, "grayroute_decision_key_file: \"" + std::string(word) + "\" is not a duration of at least 1s");
        }
        s.token_ttl_s = seconds;
      } else if (word.substr(0, 7) == "header=" && word.size() > 7) {
        for (std::size_t k = 7; k < args[i].len; ++k) {
          if (!is_token_char(args[i].data[k])) {
            return conf_error(cf, "grayroute_decision_key_file: \"" + std::string(word) + "\": the header name is not a token");
          }
        }
        s.token_header = std::string(word.substr(7));
      } else {
        return conf_error(cf, "grayroute_decision_key_file: unknown option \"" + std::string(word) + "\" (known: ttl=, header=)");
      }
    }
    // Errors name the file and the line, never the key.
    s.keys = grayroute::load_decision_keys(std::string(to_view(path)));
    return NGX_CONF_OK;
  } catch (const std::exception& e) {
    return conf_error(cf, std::string("grayroute_decision_key_file: ") + e.what());
  }
}

grayroute::ip_address decision_peer(const ngx_http_request_t* r, const decide_state& s,
                                     const grayroute::client_ip_resolver& resolver) noexcept {
  const grayroute::ip_address tcp = peer_address(r->connection->sockaddr);
  if (!s.proxy_protocol_source || !r->connection->proxy_protocol || !resolver.is_trusted(tcp)) return tcp;
  const auto source = grayroute::parse_ip(to_view(r->connection->proxy_protocol->src_addr));
  return source ? source->unmapped() : tcp;  // no source: a PROXY LOCAL or UNKNOWN header
}

void honour_token(const ngx_http_request_t* r, const decide_state& s, const grayroute::policy& policy,
                  const grayroute::ip_address& peer, grayroute::decision& d) noexcept {
  if (!s.keys) return;
  const std::string_view token = token_in(r, s.token_header);
  if (token.empty() || !policy.resolver().is_trusted(peer)) return;
  const grayroute::token_verification v =
      grayroute::verify_decision_token(token, *s.keys, policy.routes(), static_cast<std::int64_t>(ngx_time()));
  if (v.status != grayroute::token_status::valid) return;
  d.route = v.route;
  d.reason = grayroute::route_reason::upstream;
  d.rule = v.claims.rule;
}

ngx_int_t decision_token_value(ngx_http_request_t* r, const decide_state& s, const grayroute::route_table& routes,
                               grayroute::route_id route, grayroute::route_reason reason, std::string_view rule,
                               ngx_http_variable_value_t* v) noexcept {
  v->not_found = 1;
  if (!s.keys) return NGX_OK;
  const grayroute::decision_claims claims{routes.name(route), reason, rule, 0,
                                          static_cast<std::int64_t>(ngx_time()) + s.token_ttl_s};
  const auto token = grayroute::encode_decision_token(claims, *s.keys);
  if (!token) return NGX_OK;
  auto* data = static_cast<u_char*>(ngx_pnalloc(r->pool, token->view().size()));
  if (!data) return NGX_ERROR;
  ngx_memcpy(data, token->view().data(), token->view().size());
  v->data = data;
  v->len = static_cast<unsigned>(token->view().size());
  v->valid = 1;
  v->no_cacheable = 0;
  v->not_found = 0;
  return NGX_OK;
}

}  // namespace grayroute_nginx
