// ngx_http_grayroute_module: `grayroute_status`, the answering worker's state as JSON, and
// send_page, which grayroute_metrics (ngx_http_grayroute_health.cpp) answers with too.
extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <grayroute/version.hpp>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

using grayroute::append_json_string;

std::size_t static_entries(const list_state* l) { return l && l->static_store ? l->static_store->size() : 0; }

// Every location's scheduled split shares: [{"rule":..,"route":..,"shape":..,"weight_ppm":..,
// "next":{"at_ms":..,"weight_ppm":..} or null}, ...]; a rule inherited by several
// locations is listed once per location.
std::string ramps_json(const main_state& m) {
  std::string out = "[";
  for (const grayroute::policy* p : m.policies) {
    const std::int64_t now_ms = p->clock_now_ms();
    for (const auto& share : p->scheduled_shares()) {
      const grayroute::ramp_status s = share.schedule->status(now_ms);
      if (out.size() > 1) out += ',';
      out += "{\"rule\":";
      append_json_string(out, share.rule);
      out += ",\"route\":";
      append_json_string(out, p->route_name(share.route));
      out += share.schedule->shape() == grayroute::ramp_shape::linear ? ",\"shape\":\"linear\"" : ",\"shape\":\"steps\"";
      out += ",\"weight_ppm\":" + std::to_string(s.ppm) + ",\"next\":";
      out += s.next ? "{\"at_ms\":" + std::to_string(s.next->at_ms) + ",\"weight_ppm\":" + std::to_string(s.next->ppm) + "}"
                    : std::string("null");
      out += '}';
    }
  }
  return out + "]";
}

std::string status_json(const main_state& m) {
  const list_state* unnamed = m.find_list("");
  std::string out = "{\"module\":\"grayroute\",\"version\":\"" GRAYROUTE_VERSION_STRING "\",\"worker_pid\":";
  out += std::to_string(static_cast<long>(ngx_pid));
  // Every route the configuration names, each once: the http block's grayroute_routes,
  // then those its locations add (decide_state::route_names, as "health" lists them).
  const std::vector<std::string>& routes = m.decide.routes ? m.decide.routes->names() : m.routes;
  out += ",\"routes\":[";
  for (std::size_t i = 0; i < routes.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, routes[i]);
  }
  out += "]";
  // "degraded" while a Redis list is failing or stale (never synced, disconnected, slow).
  std::vector<redis_report> redis;  // one reading per list, in m.lists's order
  redis.reserve(m.lists.size());
  std::string unnamed_redis = "null", problem;
  for (const auto& list : m.lists) {
    redis.push_back(read_redis(*list));
    if (list->name.empty()) unnamed_redis = redis.back().json;
    const std::string& why = redis.back().problem;
    if (why.empty() || !problem.empty()) continue;
    problem = list->name.empty() ? "redis: " + why : "list " + list->name + ": redis: " + why;
  }
  if (!problem.empty()) {
    out += ",\"status\":\"degraded\",\"reason\":";
    append_json_string(out, problem);
  } else {
    out += ",\"status\":\"ok\"";
  }
  out += ",\"health\":" + health_json(m.decide);  // ngx_http_grayroute_health.cpp
  out += ",\"ramps\":" + ramps_json(m);
  // The unnamed list (grayroute_list, grayroute_list_file PATH, grayroute_redis ADDRESS) ...
  out += ",\"static_entries\":" + std::to_string(static_entries(unnamed));
  out += ",\"redis\":" + unnamed_redis;
  // ... and the named ones.
  out += ",\"lists\":{";
  bool first = true;
  for (std::size_t i = 0; i < m.lists.size(); ++i) {
    const list_state& list = *m.lists[i];
    if (list.name.empty()) continue;
    if (!first) out += ',';
    first = false;
    append_json_string(out, list.name);
    out += ":{\"static_entries\":" + std::to_string(static_entries(&list)) + ",\"redis\":" + redis[i].json + "}";
  }
  out += "}}\n";
  return out;
}

}  // namespace

ngx_int_t status_handler(ngx_http_request_t* r) {
  const auto* mcf = static_cast<main_conf*>(ngx_http_get_module_main_conf(r, ngx_http_grayroute_module));
  return serve_page(r, "application/json", [mcf] { return status_json(*mcf->state); });
}

ngx_int_t send_page(ngx_http_request_t* r, const std::string& body, std::string_view content_type) noexcept {
  ngx_buf_t* b = ngx_create_temp_buf(r->pool, body.size());
  if (!b) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  b->last = ngx_cpymem(b->pos, body.data(), body.size());
  b->last_buf = (r == r->main) ? 1 : 0;
  b->last_in_chain = 1;
  r->headers_out.status = NGX_HTTP_OK;
  r->headers_out.content_length_n = static_cast<off_t>(body.size());
  r->headers_out.content_type.data = reinterpret_cast<u_char*>(const_cast<char*>(content_type.data()));
  r->headers_out.content_type.len = content_type.size();
  r->headers_out.content_type_len = r->headers_out.content_type.len;
  const ngx_int_t rc = ngx_http_send_header(r);
  if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) return rc;
  ngx_chain_t out{b, nullptr};
  return ngx_http_output_filter(r, &out);
}

}  // namespace grayroute_nginx
