// ngx_http_grayroute_module: `grayroute_status`, the answering worker's state as JSON.
extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <exception>
#include <string>

#include <grayroute/version.hpp>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

using grayroute::detail::append_json_string;

std::string status_json(const main_state& m) {
  std::string out = "{\"module\":\"grayroute\",\"version\":\"" GRAYROUTE_VERSION_STRING "\",\"worker_pid\":";
  out += std::to_string(static_cast<long>(ngx_pid));
  out += ",\"routes\":[";
  for (std::size_t i = 0; i < m.routes.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, m.routes[i]);
  }
  out += "]";
  // "degraded" while the Redis list is failing or stale (never synced, disconnected, slow).
  if (const std::string problem = redis_problem(m); !problem.empty()) {
    out += ",\"status\":\"degraded\",\"reason\":";
    append_json_string(out, "redis: " + problem);
  } else {
    out += ",\"status\":\"ok\"";
  }
  out += ",\"static_entries\":";
  out += std::to_string(m.static_list ? m.static_list->size() : 0);
  out += ",\"redis\":";
  out += redis_status_json(m);
  out += "}\n";
  return out;
}

}  // namespace

ngx_int_t status_handler(ngx_http_request_t* r) {
  if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) return NGX_HTTP_NOT_ALLOWED;
  if (ngx_http_discard_request_body(r) != NGX_OK) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  const auto* mcf = static_cast<main_conf*>(ngx_http_get_module_main_conf(r, ngx_http_grayroute_module));
  std::string body;
  try {
    body = status_json(*mcf->state);
  } catch (const std::exception&) {
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
  }
  ngx_buf_t* b = ngx_create_temp_buf(r->pool, body.size());
  if (!b) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  b->last = ngx_cpymem(b->pos, body.data(), body.size());
  b->last_buf = (r == r->main) ? 1 : 0;
  b->last_in_chain = 1;
  r->headers_out.status = NGX_HTTP_OK;
  r->headers_out.content_length_n = static_cast<off_t>(body.size());
  ngx_str_set(&r->headers_out.content_type, "application/json");
  r->headers_out.content_type_len = r->headers_out.content_type.len;
  const ngx_int_t rc = ngx_http_send_header(r);
  if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) return rc;
  ngx_chain_t out{b, nullptr};
  return ngx_http_output_filter(r, &out);
}

}  // namespace grayroute_nginx
