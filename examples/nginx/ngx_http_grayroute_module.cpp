// ngx_http_grayroute_module: gray release (canary) routing for stock nginx, on grayroute.
//
//   load_module modules/ngx_http_grayroute_module.so;
//   http {
//       grayroute_list_file qa /etc/nginx/qa.txt;                          # named lists
//       grayroute_redis seed redis://:secret@127.0.0.1:6379/0?schema=seed;
//       upstream production { server 127.0.0.1:8080; }
//       upstream gray { server 127.0.0.1:8090; }
//       server { location / {
//           grayroute_routes production gray;
//           grayroute_rule qa-office list=qa;                               # ordered rules
//           grayroute_rule rollout split=gray:5 key=cookie:uid,ip;
//           proxy_pass http://$grayroute_upstream;
//       } }
//   }
//
// (Today's shorthand keeps working: grayroute_list 10.1.2.3; grayroute_route client1 client2;)
//
// Shape (after ngx_http_geo_module and ngx_http_realip_module): directives fill C++
// state owned by nginx's configuration pools (freed by pool cleanups, so a reload
// frees the old configuration); each location that routes gets a grayroute::policy
// built when its configuration is merged, where every mistake is reported with the
// value and the line. The variables are computed lazily in their get-handlers, once
// per request, and cached in the request's module context.
//
// Redis (grayroute_redis): every worker owns one grayroute::redis_store per list with
// Redis, created in init_process and destroyed in exit_process. A store keeps a
// snapshot in memory and syncs it on its own thread (with all signals blocked so
// nginx's signals still reach the event loop), so a request only reads memory and
// never waits on Redis. A reload starts new workers with new stores; old workers
// destroy theirs (joining the thread, closing the connection) when they exit.
//
// nginx's headers are C and come first, inside extern "C" (as in nginx's
// src/misc/ngx_cpp_test_module.cpp). No exception crosses into nginx: configuration
// handlers catch and report; the request path calls only noexcept code.
//
// This file holds what nginx's own modules put first: the directive table, the module
// context, the ngx_module_t, and the configuration and worker lifecycle. The parts are
// listed in ngx_http_grayroute_conf.hpp.

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <cstddef>
#include <exception>
#include <memory>
#include <string>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

ngx_int_t preconfiguration(ngx_conf_t* cf);
ngx_int_t postconfiguration(ngx_conf_t* cf);
void* create_main_conf(ngx_conf_t* cf);
char* init_main_conf(ngx_conf_t* cf, void* conf);
void* create_loc_conf(ngx_conf_t* cf);
char* merge_loc_conf(ngx_conf_t* cf, void* parent, void* child);
ngx_int_t init_process(ngx_cycle_t* cycle);
void exit_process(ngx_cycle_t* cycle);

// ---- the directive table ---------------------------------------------------------

constexpr ngx_uint_t kHttpMain = NGX_HTTP_MAIN_CONF;
constexpr ngx_uint_t kAnyLevel = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;
constexpr ngx_uint_t kServerOrLocation = NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

ngx_command_t kCommands[] = {
    {ngx_string("grayroute_routes"), kAnyLevel | NGX_CONF_2MORE, set_routes, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_list"), kHttpMain | NGX_CONF_1MORE, set_list, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_list_file"), kHttpMain | NGX_CONF_TAKE12, set_list_file, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_trusted_proxies"), kHttpMain | NGX_CONF_1MORE, set_trusted_proxies, NGX_HTTP_MAIN_CONF_OFFSET, 0,
     nullptr},
    {ngx_string("grayroute_client_ip_headers"), kHttpMain | NGX_CONF_1MORE, set_client_ip_headers,
     NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_recursive"), kHttpMain | NGX_CONF_FLAG, ngx_conf_set_flag_slot, NGX_HTTP_MAIN_CONF_OFFSET,
     offsetof(main_conf, recursive), nullptr},
    {ngx_string("grayroute_redis"), kHttpMain | NGX_CONF_1MORE, set_redis, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_route"), kAnyLevel | NGX_CONF_1MORE, set_route, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_rule"), kServerOrLocation | NGX_CONF_2MORE, set_rule, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_default"), kAnyLevel | NGX_CONF_TAKE1, set_default, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_percent"), kAnyLevel | NGX_CONF_1MORE, set_percent, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_force"), kAnyLevel | NGX_CONF_1MORE, set_force, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_status"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, set_status, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    // ngx_http_grayroute_health.cpp, ngx_http_grayroute_token.cpp
    {ngx_string("grayroute_health"), kHttpMain | NGX_CONF_ANY, set_health, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_metrics"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, set_metrics, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_decision_key_file"), kHttpMain | NGX_CONF_1MORE, set_decision_key_file, NGX_HTTP_MAIN_CONF_OFFSET,
     0, nullptr},
    {ngx_string("grayroute_pin_cookie"), kHttpMain | NGX_CONF_1MORE, set_pin_cookie, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    ngx_null_command,
};

ngx_http_module_t kModuleContext = {
    preconfiguration,   // preconfiguration
    postconfiguration,  // postconfiguration
    create_main_conf,   // create main configuration
    init_main_conf,     // init main configuration
    nullptr,            // create server configuration
    nullptr,            // merge server configuration
    create_loc_conf,    // create location configuration
    merge_loc_conf,     // merge location configuration
};

// ---- configuration lifecycle -----------------------------------------------------

template <class T>
void delete_cleanup(void* data) {
  delete static_cast<T*>(data);
}

// Creates a T owned by `pool`: deleted when the pool is destroyed (a reload, exit).
template <class T>
T* pool_owned(ngx_pool_t* pool) {
  ngx_pool_cleanup_t* cleanup = ngx_pool_cleanup_add(pool, 0);
  if (!cleanup) return nullptr;
  T* object = new T();
  cleanup->handler = delete_cleanup<T>;
  cleanup->data = object;
  return object;
}

ngx_int_t preconfiguration(ngx_conf_t* cf) { return add_variables(cf); }

void* create_main_conf(ngx_conf_t* cf) {
  try {
    auto* conf = static_cast<main_conf*>(ngx_pcalloc(cf->pool, sizeof(main_conf)));
    if (!conf) return nullptr;
    conf->recursive = NGX_CONF_UNSET;
    conf->state = pool_owned<main_state>(cf->pool);
    return conf->state ? conf : nullptr;
  } catch (const std::exception&) {
    return nullptr;
  }
}

char* init_main_conf(ngx_conf_t* cf, void* conf) {
  return guarded(cf, [&]() -> char* {
    auto* mcf = static_cast<main_conf*>(conf);
    main_state& m = *mcf->state;
    ngx_conf_init_value(mcf->recursive, 1);
    m.client_ip.recursive = mcf->recursive != 0;
    m.decide.route_names = m.routes;  // the health zone's first routes; locations add theirs
    for (const auto& list : m.lists) {
      // The layers in the library's order (layered_store.hpp): configuration, then Redis.
      if (list->has_static) {
        list->static_store = std::make_unique<grayroute::memory_store>(list->static_entries);
        list->static_entries = {};
        list->layers.add(*list->static_store);
      }
      if (list->redis) {
        // The store itself starts in the workers (its configuration was checked by the
        // directive, so `nginx -t` catches every mistake); hash values name these routes.
        list->redis->routes = m.routes;
        list->layers.add(list->redis_layer);
      }
    }
    return NGX_CONF_OK;
  });
}

void* create_loc_conf(ngx_conf_t* cf) {
  try {
    auto* conf = static_cast<loc_conf*>(ngx_pcalloc(cf->pool, sizeof(loc_conf)));
    if (!conf) return nullptr;
    conf->state = pool_owned<loc_state>(cf->pool);
    return conf->state ? conf : nullptr;
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Each directive is inherited on its own, the nginx way: a location without
// grayroute_rule takes its server's rules, without grayroute_route its upstreams, ...
char* merge_loc_conf(ngx_conf_t* cf, void* parent_conf, void* child_conf) {
  return guarded(cf, [&]() -> char* {
    const loc_state& parent = *static_cast<loc_conf*>(parent_conf)->state;
    loc_state& child = *static_cast<loc_conf*>(child_conf)->state;
    if (!child.upstreams.set()) child.upstreams = parent.upstreams;
    if (!child.routes.set()) child.routes = parent.routes;
    if (!child.default_route.set()) child.default_route = parent.default_route;
    if (child.rules.empty()) child.rules = parent.rules;
    if (!child.percent_set && parent.percent_set) {
      child.percent_set = true;
      child.percent = parent.percent;
      child.percent_key = parent.percent_key;
      child.percent_route = parent.percent_route;
      child.percent_seed = parent.percent_seed;
      child.percent_place = parent.percent_place;
    }
    if (!child.force_set && parent.force_set) {
      child.force_set = true;
      child.force_header = parent.force_header;
      child.force_cookie = parent.force_cookie;
      child.force_route = parent.force_route;
      child.force_place = parent.force_place;
    }
    return compile_location(cf, main_of(cf), child);
  });
}

// proxy_pass http://$grayroute_upstream finds an upstream{} block by name; a name
// without one is resolved as a host name at request time, which needs a resolver and
// is almost always a typo.
ngx_int_t postconfiguration(ngx_conf_t* cf) {
  try {
    main_state& m = main_of(cf);
    if (finish_decide_config(cf, m.decide, !m.named_upstreams.empty()) != NGX_OK) return NGX_ERROR;
    if (install_pin_filter(cf, m.decide) != NGX_OK) return NGX_ERROR;  // ngx_http_grayroute_pin.cpp
    const auto* umcf = static_cast<ngx_http_upstream_main_conf_t*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module));
    const auto* upstreams = static_cast<ngx_http_upstream_srv_conf_t**>(umcf->upstreams.elts);
    for (const auto& [name, place] : m.named_upstreams) {
      bool found = false;
      for (ngx_uint_t i = 0; i < umcf->upstreams.nelts && !found; ++i) {
        found = to_view(upstreams[i]->host) == name;
      }
      if (!found) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "grayroute: no upstream block named \"%s\"%s ($grayroute_upstream would need a resolver)",
                      name.c_str(), place.suffix().c_str());
      }
    }
  } catch (const std::exception&) {
    return NGX_ERROR;
  }
  return NGX_OK;
}

// ---- worker lifecycle --------------------------------------------------------------

main_state* cycle_main(ngx_cycle_t* cycle) {
  auto* mcf = static_cast<main_conf*>(ngx_http_cycle_get_module_main_conf(cycle, ngx_http_grayroute_module));
  return mcf ? mcf->state : nullptr;
}

ngx_int_t init_process(ngx_cycle_t* cycle) {
  // Cache managers and loaders route nothing: only request-serving processes sync.
  if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) return NGX_OK;
  if (main_state* m = cycle_main(cycle)) start_redis(cycle, *m);
  return NGX_OK;
}

void exit_process(ngx_cycle_t* cycle) {
  if (main_state* m = cycle_main(cycle)) stop_redis(cycle, *m);
}

}  // namespace

decide_state& decide_of(ngx_conf_t* cf) { return main_of(cf).decide; }
decide_state& decide_of(ngx_http_request_t* r) {
  return static_cast<main_conf*>(ngx_http_get_module_main_conf(r, ngx_http_grayroute_module))->state->decide;
}

}  // namespace grayroute_nginx

ngx_module_t ngx_http_grayroute_module = {
    NGX_MODULE_V1,
    &grayroute_nginx::kModuleContext,  // module context
    grayroute_nginx::kCommands,        // module directives
    NGX_HTTP_MODULE,                   // module type
    nullptr,                           // init master
    nullptr,                           // init module
    grayroute_nginx::init_process,     // init process
    nullptr,                           // init thread
    nullptr,                           // exit thread
    grayroute_nginx::exit_process,     // exit process
    nullptr,                           // exit master
    NGX_MODULE_V1_PADDING};
