// Pinning anonymous users for the nginx module (issue 13):
//
//   grayroute_pin_cookie name=gr_uid [max_age=31536000] [domain=example.com] [path=/]
//                        [secure] [httponly[=off]] [samesite=lax|strict|none|unset];
//
// (http level; the words are the library's, set_cookie.hpp parse_set_cookie_words.) Every
// split rule's key list gets `given` and `cookie:gr_uid` before its `ip`
// (grayroute::add_pin_key). A request with none of the splits' keys (policy::has_rollout_key)
// gets a random id from the kernel's CSPRNG (random_id.hpp) as its key, and that id goes
// back in a Set-Cookie on the response, whichever route it got, so the split keeps its
// weight; the browser's later requests carry the cookie, hence the same key and route.
// The cookie is added by a header filter (not in the content phase): it then rides on
// whatever response goes out, the upstream's or an error page, and only when this request
// made the decision that used the id.
extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <grayroute/set_cookie.hpp>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

ngx_http_output_header_filter_pt next_header_filter = nullptr;

ngx_int_t pin_header_filter(ngx_http_request_t* r) noexcept {
  const auto* ctx = static_cast<const request_ctx*>(ngx_http_get_module_ctx(r, ngx_http_grayroute_module));
  const decide_state& s = decide_of(r);
  if (!ctx || !ctx->pinned || !s.pin || r != r->main) return next_header_filter(r);
  const std::string_view id(reinterpret_cast<const char*>(ctx + 1), grayroute::anonymous_id::kLength);
  const std::size_t capacity = s.pin->length(id.size());
  auto* value = static_cast<u_char*>(ngx_pnalloc(r->pool, capacity));
  ngx_table_elt_t* h = value ? static_cast<ngx_table_elt_t*>(ngx_list_push(&r->headers_out.headers)) : nullptr;
  if (!h) return NGX_ERROR;
  h->hash = 1;
#if nginx_version >= 1023000
  h->next = nullptr;
#endif
  ngx_str_set(&h->key, "Set-Cookie");
  h->value.data = value;
  h->value.len = s.pin->write(id, reinterpret_cast<char*>(value), capacity);
  if (h->value.len == 0) h->hash = 0;  // cannot happen: an id is hex digits
  return next_header_filter(r);
}

}  // namespace

char* set_pin_cookie(ngx_conf_t* cf, ngx_command_t*, void*) {
  return guarded(cf, [&]() -> char* {
    decide_state& s = decide_of(cf);
    if (s.pin) return conf_duplicate();
    std::vector<std::string_view> words;
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) words.push_back(to_view(args[i]));
    s.pin.emplace(grayroute::parse_set_cookie_words(words, "grayroute_pin_cookie"));
    return NGX_CONF_OK;
  });
}

ngx_int_t install_pin_filter(ngx_conf_t* cf, const decide_state& s) noexcept {
  (void)cf;
  if (!s.pin) return NGX_OK;
  next_header_filter = ngx_http_top_header_filter;
  ngx_http_top_header_filter = pin_header_filter;
  return NGX_OK;
}

}  // namespace grayroute_nginx
