// ngx_http_grayroute_module: gray release (canary) routing for stock nginx, on grayroute.
//
//   load_module modules/ngx_http_grayroute_module.so;
//   http {
//       grayroute_list 192.168.116.0/24 10.1.2.3;
//       upstream client1 { server 127.0.0.1:8080; }   # production
//       upstream client2 { server 127.0.0.1:8090; }   # pre-release
//       server { location / { grayroute_route client1 client2; proxy_pass http://$grayroute_upstream; } }
//   }
//
// Shape (after ngx_http_geo_module and ngx_http_realip_module): directives fill C++
// state owned by nginx's configuration pools (freed by pool cleanups, so a reload
// frees the old configuration); each location with grayroute_route gets a
// grayroute::router built when its configuration is merged, where every mistake is
// reported with the value and the line. The variables are computed lazily in their
// get-handlers, once per request, and cached in the request's module context.
//
// Redis (grayroute_redis): every worker owns one grayroute::redis_store, created in
// init_process and destroyed in exit_process. The store keeps a snapshot in memory
// and syncs it on its own thread (one per worker, with all signals blocked so
// nginx's signals still reach the event loop), so a request only reads memory and
// never waits on Redis. A reload starts new workers with new stores; old workers
// destroy theirs (joining the thread, closing the connection) when they exit.
//
// nginx's headers are C and come first, inside extern "C" (as in nginx's
// src/misc/ngx_cpp_test_module.cpp). No exception crosses into nginx: configuration
// handlers catch and report; the request path calls only noexcept code.

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#if __cplusplus < 201703L
#error "ngx_http_grayroute_module needs C++17 (GCC >= 11 and Clang >= 16 default to it; else add -std=c++17 for this file)"
#endif

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <grayroute/detail/json.hpp>
#include <grayroute/grayroute.hpp>
#include <grayroute/list_file.hpp>

#include "module_store.hpp"
#include "ngx_http_grayroute_decide.hpp"
#include "request_headers.hpp"

extern "C" {
extern ngx_module_t ngx_http_grayroute_module;
}

namespace grayroute_nginx {
namespace {

using grayroute::route_id;

std::string to_string(const ngx_str_t& s) { return std::string(to_view(s)); }

// "name=value" -> name, value; a bare word has an empty name.
struct option {
  std::string_view name, value;
  bool has_value = false;
};

option split_option(const ngx_str_t& arg) {
  const std::string_view text = to_view(arg);
  const std::size_t equals = text.find('=');
  if (equals == std::string_view::npos) return {{}, text, false};
  return {text.substr(0, equals), text.substr(equals + 1), true};
}

// The name of a name=value option the directive's arguments give twice ("" when none):
// "password=foo password=bar" is an error rather than the last one silently winning.
std::string_view repeated_option(const ngx_conf_t* cf) {
  const auto* args = static_cast<const ngx_str_t*>(cf->args->elts);
  for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) {
    const option a = split_option(args[i]);
    if (!a.has_value) continue;
    for (ngx_uint_t j = i + 1; j < cf->args->nelts; ++j) {
      const option b = split_option(args[j]);
      if (b.has_value && b.name == a.name) return a.name;
    }
  }
  return {};
}

// ngx_conf_log_error adds " in <file>:<line>" for the directive being parsed.
char* conf_error(ngx_conf_t* cf, const std::string& message) {
  ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", message.c_str());
  return static_cast<char*>(NGX_CONF_ERROR);
}

// Runs a configuration step, turning any exception into an nginx configuration error.
template <class Step>
char* guarded(ngx_conf_t* cf, Step step) noexcept {
  try {
    return step();
  } catch (const std::exception& e) {
    return conf_error(cf, e.what());
  } catch (...) {
    return conf_error(cf, "grayroute: unexpected error");
  }
}

#if GRAYROUTE_NGINX_REDIS
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  ngx_str_t s{text.size(), reinterpret_cast<u_char*>(const_cast<char*>(text.data()))};
  const ngx_int_t ms = ngx_parse_time(&s, 0);
  if (ms == NGX_ERROR) return std::nullopt;
  return std::chrono::milliseconds(ms);
}
#endif

std::optional<long> parse_number(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

using grayroute::detail::quote_value;

// Where a directive was, for errors found later (when a location is merged).
struct conf_place {
  std::string file;
  ngx_uint_t line = 0;

  static conf_place of(ngx_conf_t* cf) {
    return {cf->conf_file ? to_string(cf->conf_file->file.name) : std::string(), cf->conf_file ? cf->conf_file->line : 0};
  }
  std::string suffix() const { return file.empty() ? std::string() : " in " + file + ":" + std::to_string(line); }
};

// ---- http-level state ------------------------------------------------------------

struct main_state {
  std::vector<std::string> routes{"production", "gray"};
  bool routes_used = false;  // a list or location already named routes: grayroute_routes must come first
  grayroute::resolver_config client_ip;
  bool headers_set = false;
  bool recursive_set = false;
  std::vector<grayroute::store_entry> static_entries;
  std::unique_ptr<grayroute::memory_store> static_list;
  module_store store;
  // Upstream names grayroute_route refers to, checked against the upstream{} blocks
  // once the whole http block is known.
  std::vector<std::pair<std::string, conf_place>> named_upstreams;
  decide_state decide;  // tokens, the PROXY-protocol source, route health (ngx_http_grayroute_decide.hpp)
#if GRAYROUTE_NGINX_REDIS
  std::optional<grayroute::redis_config> redis;
  std::unique_ptr<grayroute::redis_store> redis_store;  // in a worker only
  ngx_event_t credentials_timer{};  // logs refused Redis credentials, rate-limited
  ngx_msec_t credentials_logged_at = 0;
  bool credentials_logged = false;
#endif

  std::optional<route_id> find_route(std::string_view name) const {
    for (std::size_t i = 0; i < routes.size(); ++i) {
      if (routes[i] == name) return static_cast<route_id>(i);
    }
    return std::nullopt;
  }

  std::string route_list() const {
    std::string out;
    for (const auto& r : routes) out += (out.empty() ? "" : " ") + r;
    return out;
  }
};

struct main_conf {
  main_state* state;
};

// ---- location-level state --------------------------------------------------------

struct loc_state {
  std::vector<ngx_str_t> upstreams;  // index = route id; empty: not set here
  conf_place route_place;

  bool percent_set = false;
  double percent = 0;
  ngx_http_complex_value_t* percent_key = nullptr;
  std::string percent_route;  // empty: the second route
  std::uint32_t percent_seed = 0;
  conf_place percent_place;

  bool force_set = false;
  std::string force_header, force_cookie, force_route;  // empty force_route: the second route
  conf_place force_place;

  std::unique_ptr<grayroute::router<module_store>> router;
};

struct loc_conf {
  loc_state* state;
};

// The decision for one request, kept in its module context so every variable and
// every evaluation of one variable agree.
struct request_ctx {
  route_id route;
  grayroute::route_reason reason;
  std::size_t client_ip_length;
  u_char client_ip[grayroute::ip_address::kMaxTextLength + 1];
};

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

main_state& main_of(ngx_conf_t* cf) {
  return *static_cast<main_conf*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_grayroute_module))->state;
}

}  // namespace

decide_state& decide_of(ngx_conf_t* cf) { return main_of(cf).decide; }
decide_state& decide_of(ngx_http_request_t* r) {
  return static_cast<main_conf*>(ngx_http_get_module_main_conf(r, ngx_http_grayroute_module))->state->decide;
}

namespace {

// ---- directives: http level ------------------------------------------------------

char* set_routes(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    main_state& m = *static_cast<main_conf*>(conf)->state;
    if (m.routes_used) return conf_error(cf, "grayroute_routes must come before the directives that name routes");
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    std::vector<std::string> routes;
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) {
      const std::string name = to_string(args[i]);
      for (const auto& seen : routes) {
        if (seen == name) return conf_error(cf, "route " + quote_value(name) + " is listed twice");
      }
      routes.push_back(name);
    }
    if (routes.size() < 2) return conf_error(cf, "grayroute_routes needs at least two routes (production and gray)");
    m.routes = std::move(routes);
    return NGX_CONF_OK;
  });
}

char* set_list(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    if (const auto name = repeated_option(cf); !name.empty()) {
      return conf_error(cf, "grayroute_list: option " + std::string(name) + "= is given twice");  // the name only: it may be password
    }
    main_state& m = *static_cast<main_conf*>(conf)->state;
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    route_id route = grayroute::kGray;  // route= applies to every entry of the directive
    std::vector<grayroute::ip_network> networks;
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) {
      const option o = split_option(args[i]);
      if (o.has_value) {
        if (o.name != "route") return conf_error(cf, "grayroute_list: unknown option " + quote_value(o.name));
        const auto id = m.find_route(o.value);
        if (!id) return conf_error(cf, "grayroute_list: unknown route " + quote_value(o.value) + " (routes: " + m.route_list() + ")");
        m.routes_used = true;
        route = *id;
        continue;
      }
      const auto network = grayroute::parse_network(o.value);
      if (!network) {
        return conf_error(cf, "grayroute_list: " + grayroute::bad_network_message(o.value));
      }
      networks.push_back(*network);
    }
    for (const auto& network : networks) m.static_entries.push_back({network, route});
    const std::size_t listed = networks.size();
    if (listed == 0) return conf_error(cf, "grayroute_list: no address or network given");
    return NGX_CONF_OK;
  });
}

char* set_list_file(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    main_state& m = *static_cast<main_conf*>(conf)->state;
    ngx_str_t name = static_cast<ngx_str_t*>(cf->args->elts)[1];
    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) return static_cast<char*>(NGX_CONF_ERROR);
    // Only a complete, stable file (two looks 50 ms apart, ending in a newline): a file
    // being rewritten in place fails the (re)load, and nginx keeps the running list.
    const auto parsed = grayroute::list_file_watch(to_string(name), m.routes).load();
    if (!parsed) return conf_error(cf, "grayroute_list_file " + to_string(name) + ": " + grayroute::to_string(*parsed.error));
    m.routes_used = true;
    m.static_entries.insert(m.static_entries.end(), parsed.entries.begin(), parsed.entries.end());
    return NGX_CONF_OK;
  });
}

char* set_trusted_proxies(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    main_state& m = *static_cast<main_conf*>(conf)->state;
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) {
      const std::string text = to_string(args[i]);
      if (!grayroute::parse_network(text)) {
        return conf_error(cf, "grayroute_trusted_proxies: " + grayroute::bad_network_message(text));
      }
      m.client_ip.trusted_proxies.push_back(text);
    }
    return NGX_CONF_OK;
  });
}

char* set_client_ip_headers(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    main_state& m = *static_cast<main_conf*>(conf)->state;
    if (m.headers_set) return static_cast<char*>(const_cast<char*>("is duplicate"));
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    grayroute::resolver_config check;
    check.headers.clear();
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) {
      if (to_view(args[i]) == "proxy_protocol") {  // ngx_http_grayroute_token.cpp
        if (i != 1) return conf_error(cf, "grayroute_client_ip_headers: proxy_protocol must come first (the balancer is the nearest hop)");
        m.decide.proxy_protocol_source = true;
        continue;
      }
      check.headers.push_back(to_string(args[i]));
    }
    grayroute::client_ip_resolver validate(check);  // throws naming a bad or repeated header
    m.client_ip.headers = std::move(check.headers);
    m.headers_set = true;
    return NGX_CONF_OK;
  });
}

char* set_recursive(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    main_state& m = *static_cast<main_conf*>(conf)->state;
    if (m.recursive_set) return static_cast<char*>(const_cast<char*>("is duplicate"));
    const std::string_view value = to_view(static_cast<ngx_str_t*>(cf->args->elts)[1]);
    if (value == "on") {
      m.client_ip.recursive = true;
    } else if (value == "off") {
      m.client_ip.recursive = false;
    } else {
      return conf_error(cf, "grayroute_recursive: " + quote_value(value) + " is neither \"on\" nor \"off\"");
    }
    m.recursive_set = true;
    return NGX_CONF_OK;
  });
}

#if GRAYROUTE_NGINX_REDIS
char* set_redis(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    if (const auto name = repeated_option(cf); !name.empty()) {
      return conf_error(cf, "grayroute_redis: option " + std::string(name) + "= is given twice");  // the name only: it may be password
    }
    main_state& m = *static_cast<main_conf*>(conf)->state;
    if (m.redis) return static_cast<char*>(const_cast<char*>("is duplicate"));
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    grayroute::redis_config config;
    const std::string address = to_string(args[1]);
    const auto endpoint = grayroute::parse_redis_address(address);
    if (!endpoint) return conf_error(cf, "grayroute_redis: " + quote_value(address) + " is not host:port, [v6]:port or unix:/path");
    if (endpoint->second == 0 && address.rfind("unix:", 0) == 0) {
      config.unix_socket = endpoint->first;
    } else {
      config.host = endpoint->first;
      config.port = endpoint->second;
    }
    for (ngx_uint_t i = 2; i < cf->args->nelts; ++i) {
      const option o = split_option(args[i]);
      // Errors name the option, never its value: it may be the password.
      if (!o.has_value) return conf_error(cf, "grayroute_redis: expected name=value, got a bare word (argument " + std::to_string(i) + ")");
      const std::string name(o.name);
      const std::string value(o.value);
      if (name == "password") {
        config.password = value;
      } else if (name == "user") {
        config.username = value;
      } else if (name == "db") {
        const auto n = parse_number(value);
        if (!n) return conf_error(cf, "grayroute_redis: db=" + quote_value(value) + " is not a database number");
        config.database = static_cast<int>(*n);
      } else if (name == "schema") {
        if (value == "seed") {
          config.schema = grayroute::redis_schema::seed;
        } else if (value.rfind("set:", 0) == 0 && value.size() > 4) {
          config.schema = grayroute::redis_schema::set;
          config.key = value.substr(4);
        } else if (value.rfind("hash:", 0) == 0 && value.size() > 5) {
          config.schema = grayroute::redis_schema::hash;
          config.key = value.substr(5);
        } else {
          return conf_error(cf, "grayroute_redis: schema=" + quote_value(value) + " is not seed, set:NAME or hash:NAME");
        }
      } else if (name == "mode") {
        if (value == "synced") {
          config.mode = grayroute::redis_mode::synced;
        } else if (value == "direct") {
          config.mode = grayroute::redis_mode::direct;
          ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                             "grayroute_redis: mode=direct blocks the worker for one Redis round trip per request "
                             "(the seed's design); use it for comparison only");
        } else {
          return conf_error(cf, "grayroute_redis: mode=" + quote_value(value) + " is not synced or direct");
        }
      } else if (name == "connect_timeout" || name == "command_timeout" || name == "resync" || name == "max_staleness") {
        const auto d = parse_duration(value);
        if (!d || (name != "max_staleness" && d->count() == 0)) {
          return conf_error(cf, "grayroute_redis: " + name + "=" + quote_value(value) + " is not a duration (e.g. 500ms, 2s, 1m)");
        }
        if (name == "connect_timeout") config.connect_timeout = *d;
        if (name == "command_timeout") config.command_timeout = *d;
        if (name == "resync") config.resync_interval = *d;
        if (name == "max_staleness") config.max_staleness = *d;
      } else if (name == "snapshot") {
        ngx_str_t path{value.size(), reinterpret_cast<u_char*>(const_cast<char*>(value.data()))};
        if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) return static_cast<char*>(NGX_CONF_ERROR);
        config.snapshot_file = to_string(path);
      } else {
        return conf_error(cf, "grayroute_redis: unknown option " + quote_value(name) +
                                  " (known: password user db schema mode connect_timeout command_timeout resync "
                                  "max_staleness snapshot)");
      }
    }
    m.redis = std::move(config);
    return NGX_CONF_OK;
  });
}
#endif

// ---- directives: location level --------------------------------------------------

char* set_route(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    loc_state& l = *static_cast<loc_conf*>(conf)->state;
    if (!l.upstreams.empty()) return static_cast<char*>(const_cast<char*>("is duplicate"));
    main_state& m = main_of(cf);
    m.routes_used = true;
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    const ngx_uint_t n = cf->args->nelts - 1;
    std::vector<ngx_str_t> upstreams(m.routes.size(), ngx_str_t{0, nullptr});
    bool named = false, positional = false;
    for (ngx_uint_t i = 1; i <= n; ++i) {
      const option o = split_option(args[i]);
      if (o.has_value) {
        named = true;
        const auto id = m.find_route(o.name);
        if (!id) return conf_error(cf, "grayroute_route: unknown route " + quote_value(o.name) + " (routes: " + m.route_list() + ")");
        if (o.value.empty()) return conf_error(cf, "grayroute_route: route " + quote_value(o.name) + " has no upstream");
        if (upstreams[*id].len) return conf_error(cf, "grayroute_route: route " + quote_value(o.name) + " is given twice");
        upstreams[*id] = ngx_str_t{o.value.size(), args[i].data + o.name.size() + 1};
      } else {
        positional = true;
        if (i > upstreams.size()) {
          return conf_error(cf, "grayroute_route: " + std::to_string(n) + " upstreams for " +
                                    std::to_string(m.routes.size()) + " routes (" + m.route_list() + ")");
        }
        upstreams[i - 1] = args[i];
      }
    }
    if (named && positional) return conf_error(cf, "grayroute_route: give either every upstream in route order or route=upstream pairs");
    for (std::size_t i = 0; i < upstreams.size(); ++i) {
      if (!upstreams[i].len) {
        return conf_error(cf, "grayroute_route: missing the upstream for route " + quote_value(m.routes[i]) + " (routes: " +
                                  m.route_list() + ")");
      }
    }
    l.upstreams = std::move(upstreams);
    l.route_place = conf_place::of(cf);
    for (const auto& u : l.upstreams) m.named_upstreams.emplace_back(to_string(u), l.route_place);
    return NGX_CONF_OK;
  });
}

char* set_percent(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    if (const auto name = repeated_option(cf); !name.empty()) {
      return conf_error(cf, "grayroute_percent: option " + std::string(name) + "= is given twice");  // the name only: it may be password
    }
    loc_state& l = *static_cast<loc_conf*>(conf)->state;
    if (l.percent_set) return static_cast<char*>(const_cast<char*>("is duplicate"));
    main_state& m = main_of(cf);
    auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    std::string text = to_string(args[1]);
    if (!text.empty() && text.back() == '%') text.pop_back();
    char* end = nullptr;
    const double percent = text.empty() ? -1 : std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(percent >= 0 && percent <= 100)) {
      return conf_error(cf, "grayroute_percent: " + quote_value(to_view(args[1])) + " is not a percentage in 0..100");
    }
    l.percent = percent;
    for (ngx_uint_t i = 2; i < cf->args->nelts; ++i) {
      const option o = split_option(args[i]);
      if (o.name == "key" && o.has_value) {
        ngx_str_t value{o.value.size(), args[i].data + 4};
        l.percent_key = static_cast<ngx_http_complex_value_t*>(ngx_pcalloc(cf->pool, sizeof(ngx_http_complex_value_t)));
        if (!l.percent_key) return static_cast<char*>(NGX_CONF_ERROR);
        ngx_http_compile_complex_value_t ccv;
        ngx_memzero(&ccv, sizeof ccv);
        ccv.cf = cf;
        ccv.value = &value;
        ccv.complex_value = l.percent_key;
        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) return static_cast<char*>(NGX_CONF_ERROR);
      } else if (o.name == "route" && o.has_value) {
        if (!m.find_route(o.value)) return conf_error(cf, "grayroute_percent: unknown route " + quote_value(o.value) + " (routes: " + m.route_list() + ")");
        m.routes_used = true;
        l.percent_route = std::string(o.value);
      } else if (o.name == "seed" && o.has_value) {
        const auto seed = parse_number(o.value);
        if (!seed) return conf_error(cf, "grayroute_percent: seed=" + quote_value(o.value) + " is not a number");
        l.percent_seed = static_cast<std::uint32_t>(*seed);
      } else {
        return conf_error(cf, "grayroute_percent: unknown option " + quote_value(to_view(args[i])) + " (known: key=, route=, seed=)");
      }
    }
    l.percent_set = true;
    l.percent_place = conf_place::of(cf);
    return NGX_CONF_OK;
  });
}

char* set_force(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    if (const auto name = repeated_option(cf); !name.empty()) {
      return conf_error(cf, "grayroute_force: option " + std::string(name) + "= is given twice");  // the name only: it may be password
    }
    loc_state& l = *static_cast<loc_conf*>(conf)->state;
    if (l.force_set) return static_cast<char*>(const_cast<char*>("is duplicate"));
    main_state& m = main_of(cf);
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) {
      const option o = split_option(args[i]);
      if (o.has_value && o.name == "header" && !o.value.empty()) {
        for (char c : o.value) {
          if (!grayroute::detail::is_tchar(c)) return conf_error(cf, "grayroute_force: header name " + quote_value(o.value) + " is not a token");
        }
        l.force_header = std::string(o.value);
      } else if (o.has_value && o.name == "cookie" && !o.value.empty()) {
        l.force_cookie = std::string(o.value);
      } else if (o.has_value && o.name == "route") {
        if (!m.find_route(o.value)) return conf_error(cf, "grayroute_force: unknown route " + quote_value(o.value) + " (routes: " + m.route_list() + ")");
        m.routes_used = true;
        l.force_route = std::string(o.value);
      } else {
        return conf_error(cf, "grayroute_force: unknown option " + quote_value(to_view(args[i])) + " (known: header=NAME, cookie=NAME, route=NAME)");
      }
    }
    if (l.force_header.empty() && l.force_cookie.empty()) return conf_error(cf, "grayroute_force: give header=NAME and/or cookie=NAME");
    l.force_set = true;
    l.force_place = conf_place::of(cf);
    return NGX_CONF_OK;
  });
}

ngx_int_t status_handler(ngx_http_request_t* r);

char* set_status(ngx_conf_t* cf, ngx_command_t*, void*) {
  auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
  clcf->handler = status_handler;
  return NGX_CONF_OK;
}

// ---- configuration lifecycle -----------------------------------------------------

void* create_main_conf(ngx_conf_t* cf) {
  try {
    auto* conf = static_cast<main_conf*>(ngx_pcalloc(cf->pool, sizeof(main_conf)));
    if (!conf) return nullptr;
    conf->state = pool_owned<main_state>(cf->pool);
    return conf->state ? conf : nullptr;
  } catch (const std::exception&) {
    return nullptr;
  }
}

char* init_main_conf(ngx_conf_t* cf, void* conf) {
  return guarded(cf, [&]() -> char* {
    main_state& m = *static_cast<main_conf*>(conf)->state;
    if (!m.static_entries.empty()) {
      m.static_list = std::make_unique<grayroute::memory_store>(m.static_entries);
      m.static_entries = {};
      m.store.set_static_list(m.static_list.get());
    }
#if GRAYROUTE_NGINX_REDIS
    if (m.redis) {
      m.redis->routes = m.routes;
      // The store itself starts in the workers; its configuration is checked here so
      // `nginx -t` catches every mistake.
      grayroute::detail::validate(*m.redis);
      if (m.redis->mode == grayroute::redis_mode::direct && m.redis->schema != grayroute::redis_schema::seed) {
        return conf_error(cf, "grayroute_redis: mode=direct reads the seed schema only");
      }
    }
#endif
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

char* merge_loc_conf(ngx_conf_t* cf, void* parent_conf, void* child_conf) {
  return guarded(cf, [&]() -> char* {
    const loc_state& parent = *static_cast<loc_conf*>(parent_conf)->state;
    loc_state& child = *static_cast<loc_conf*>(child_conf)->state;
    if (child.upstreams.empty()) {
      child.upstreams = parent.upstreams;
      child.route_place = parent.route_place;
    }
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
    if (child.upstreams.empty()) return NGX_CONF_OK;

    const main_state& m = main_of(cf);
    grayroute::router_config config;
    config.routes = m.routes;
    config.client_ip = m.client_ip;
    config.default_route = m.routes[0];
    config.force_route = config.percent_route = m.routes[1];
    if (child.force_set) {
      config.force_header = child.force_header;
      config.force_cookie = child.force_cookie;
      if (!child.force_route.empty()) config.force_route = child.force_route;
    }
    if (child.percent_set) {
      config.percent = child.percent;
      if (!child.percent_route.empty()) config.percent_route = child.percent_route;
      config.percent_seed = child.percent_seed;
    }
    try {
      child.router = std::make_unique<grayroute::router<module_store>>(m.store, config);
    } catch (const grayroute::config_error& e) {
      // Found only now that the whole http block is known; name where the location's
      // routing was configured.
      ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%s%s", e.what(), child.route_place.suffix().c_str());
      return static_cast<char*>(NGX_CONF_ERROR);
    }
    return NGX_CONF_OK;
  });
}

// ---- the request path ------------------------------------------------------------

const request_ctx* decide(ngx_http_request_t* r) noexcept {
  if (auto* ctx = static_cast<request_ctx*>(ngx_http_get_module_ctx(r, ngx_http_grayroute_module))) return ctx;
  const loc_state& l = *static_cast<loc_conf*>(ngx_http_get_module_loc_conf(r, ngx_http_grayroute_module))->state;
  if (!l.router) return nullptr;

  auto* ctx = static_cast<request_ctx*>(ngx_palloc(r->pool, sizeof(request_ctx)));
  if (!ctx) return nullptr;

  // `grayroute_percent key=...`: the rollout key is an nginx complex value; empty
  // (no such cookie, say) falls back to the client address.
  std::string_view key;
  if (l.percent_key) {
    ngx_str_t value;
    if (ngx_http_complex_value(r, l.percent_key, &value) == NGX_OK) key = to_view(value);
  }
  decide_state& extra = decide_of(r);
  const grayroute::ip_address peer = decision_peer(r, extra, l.router->resolver());
  grayroute::decision d = l.router->decide(peer, request_headers(r->headers_in.headers), key);
  honour_token(r, extra, l.router->resolver(), peer, d);
  guard_health(r, extra, d);
  ctx->route = d.route;
  ctx->reason = d.reason;
  ctx->client_ip_length = d.client.address.format(reinterpret_cast<char*>(ctx->client_ip));
  ngx_http_set_ctx(r, ctx, ngx_http_grayroute_module);
  return ctx;
}

enum variable_kind : uintptr_t { var_upstream, var_route, var_reason, var_client_ip, var_decision };

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
      const ngx_str_t& upstream = l.upstreams[ctx->route];
      set_value(v, upstream.data, upstream.len);
      break;
    }
    case var_route: {
      const std::string_view name = l.router->route_name(ctx->route);
      set_value(v, reinterpret_cast<const u_char*>(name.data()), name.size());
      break;
    }
    case var_reason: {
      const std::string_view reason = grayroute::to_string(ctx->reason);
      set_value(v, reinterpret_cast<const u_char*>(reason.data()), reason.size());
      break;
    }
    case var_decision:
      return decision_token_value(r, decide_of(r), ctx->route, ctx->reason, v);
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
    {ngx_string("grayroute_client_ip"), nullptr, get_variable, var_client_ip, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("grayroute_decision"), nullptr, get_variable, var_decision, NGX_HTTP_VAR_NOCACHEABLE, 0},
};

// proxy_pass http://$grayroute_upstream finds an upstream{} block by name; a name
// without one is resolved as a host name at request time, which needs a resolver and
// is almost always a typo.
ngx_int_t postconfiguration(ngx_conf_t* cf) {
  try {
    main_state& m = main_of(cf);
    if (finish_decide_config(cf, m.decide, m.routes, !m.named_upstreams.empty()) != NGX_OK) return NGX_ERROR;
    const auto* umcf = static_cast<ngx_http_upstream_main_conf_t*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module));
    const auto* upstreams = static_cast<ngx_http_upstream_srv_conf_t**>(umcf->upstreams.elts);
    for (const auto& [name, place] : m.named_upstreams) {
      bool found = false;
      for (ngx_uint_t i = 0; i < umcf->upstreams.nelts && !found; ++i) {
        found = to_view(upstreams[i]->host) == name;
      }
      if (!found) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0, "grayroute_route: no upstream block named \"%s\"%s", name.c_str(),
                      place.suffix().c_str());
      }
    }
  } catch (const std::exception&) {
    return NGX_ERROR;
  }
  return NGX_OK;
}

ngx_int_t preconfiguration(ngx_conf_t* cf) {
  for (auto& variable : kVariables) {
    ngx_http_variable_t* v = ngx_http_add_variable(cf, &variable.name, variable.flags);
    if (!v) return NGX_ERROR;
    v->get_handler = variable.get_handler;
    v->data = variable.data;
  }
  return NGX_OK;
}

// ---- grayroute_status ------------------------------------------------------------

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
#if GRAYROUTE_NGINX_REDIS
  // "degraded" while the Redis list is failing or stale (never synced, disconnected, slow).
  if (m.redis_store && !m.redis_store->status().healthy()) {
    out += ",\"status\":\"degraded\",\"reason\":";
    append_json_string(out, "redis: " + m.redis_store->status().problem());
  } else {
    out += ",\"status\":\"ok\"";
  }
#else
  out += ",\"status\":\"ok\"";
#endif
  out += ",\"health\":" + health_json(m.decide);  // ngx_http_grayroute_health.cpp
  out += ",\"static_entries\":";
  out += std::to_string(m.static_list ? m.static_list->size() : 0);
  out += ",\"redis\":";
#if GRAYROUTE_NGINX_REDIS
  if (m.redis_store) {
    out += grayroute::to_json(m.redis_store->status());
  } else if (m.redis) {
    out += "{\"configured\":true,\"running\":false}";
  } else {
    out += "null";
  }
#else
  out += "null";
#endif
  out += "}\n";
  return out;
}

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

// ---- worker lifecycle: the Redis store -------------------------------------------

#if GRAYROUTE_NGINX_REDIS
main_state* cycle_main(ngx_cycle_t* cycle) {
  auto* mcf = static_cast<main_conf*>(ngx_http_cycle_get_module_main_conf(cycle, ngx_http_grayroute_module));
  return mcf ? mcf->state : nullptr;
}
#endif

#if GRAYROUTE_NGINX_REDIS
// A wrong Redis password is logged once when it starts, then at most every ten
// minutes while it lasts: the sync thread retries every few seconds, the log must not.
constexpr ngx_msec_t kCredentialsCheck = 1000, kCredentialsRepeat = 600000;

void check_redis_credentials(ngx_event_t* ev) {
  auto* m = static_cast<main_state*>(ev->data);
  if (!m->redis_store) return;
  const grayroute::redis_status status = m->redis_store->status();
  if (status.credentials_refused()) {
    if (!m->credentials_logged || ngx_current_msec - m->credentials_logged_at >= kCredentialsRepeat) {
      ngx_log_error(NGX_LOG_ERR, ev->log, 0, "grayroute: Redis refused the credentials (check password=): %s",
                    status.last_error.c_str());
      m->credentials_logged = true;
      m->credentials_logged_at = ngx_current_msec;
    }
  } else if (status.connected) {
    m->credentials_logged = false;
  }
  ngx_add_timer(ev, kCredentialsCheck);
}

// Without snapshot= the store still keeps one, in the client body temp directory that
// nginx creates for its workers: workers started by a reload while Redis is down begin
// from the list the old workers had, not from an empty one. (snapshot= names a file
// that also survives restarts.) One file per list, named by a hash of where the list
// lives — never of the password.
std::string default_snapshot_file(ngx_cycle_t* cycle, const grayroute::redis_config& config) {
  auto* cmcf = static_cast<ngx_http_core_main_conf_t*>(ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module));
  if (!cmcf || cmcf->servers.nelts == 0) return {};
  auto* const* servers = static_cast<ngx_http_core_srv_conf_t**>(cmcf->servers.elts);
  auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(servers[0]->ctx->loc_conf[ngx_http_core_module.ctx_index]);
  if (!clcf || !clcf->client_body_temp_path) return {};
  const std::string where = config.unix_socket + "|" + config.host + "|" + std::to_string(config.port) + "|" +
                            std::to_string(config.database) + "|" +
                            std::to_string(static_cast<int>(config.schema)) + "|" + config.key;
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a
  for (const char c : where) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  char name[48];
  std::snprintf(name, sizeof name, "/grayroute-%016llx.snapshot", static_cast<unsigned long long>(hash));
  return to_string(clcf->client_body_temp_path->name) + name;
}
#endif

ngx_int_t init_process(ngx_cycle_t* cycle) {
#if GRAYROUTE_NGINX_REDIS
  // Cache managers and loaders route nothing: only request-serving processes sync.
  if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) return NGX_OK;
  main_state* m = cycle_main(cycle);
  if (!m || !m->redis) return NGX_OK;
  // The sync thread inherits this mask: signals for the worker (QUIT, TERM, HUP,
  // USR1) must go to the event-loop thread, whose handlers nginx relies on.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  try {
    grayroute::redis_config config = *m->redis;
    if (config.snapshot_file.empty()) config.snapshot_file = default_snapshot_file(cycle, config);
    m->redis_store = std::make_unique<grayroute::redis_store>(std::move(config));
    m->store.set_redis(m->redis_store.get());
    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0, "grayroute: worker %P syncing the gray list from %s", ngx_pid,
                  grayroute::redact(*m->redis).c_str());
    m->credentials_timer.handler = check_redis_credentials;
    m->credentials_timer.data = m;
    m->credentials_timer.log = cycle->log;
    m->credentials_timer.cancelable = 1;  // never holds up a graceful shutdown
    ngx_add_timer(&m->credentials_timer, kCredentialsCheck);
  } catch (const std::exception& e) {
    // A worker without Redis still serves, from the static list and the defaults.
    ngx_log_error(NGX_LOG_ALERT, cycle->log, 0, "grayroute: no Redis store in worker %P: %s", ngx_pid, e.what());
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
#else
  (void)cycle;
#endif
  return NGX_OK;
}

void exit_process(ngx_cycle_t* cycle) {
#if GRAYROUTE_NGINX_REDIS
  main_state* m = cycle_main(cycle);
  if (!m || !m->redis_store) return;
  if (m->credentials_timer.timer_set) ngx_del_timer(&m->credentials_timer);
  m->store.set_redis(nullptr);
  m->redis_store.reset();  // joins the sync thread and closes the connection
  ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0, "grayroute: worker %P stopped its Redis sync", ngx_pid);
#else
  (void)cycle;
#endif
}

// ---- the module --------------------------------------------------------------------

constexpr ngx_uint_t kHttpMain = NGX_HTTP_MAIN_CONF;
constexpr ngx_uint_t kAnyLevel = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

ngx_command_t kCommands[] = {
    {ngx_string("grayroute_routes"), kHttpMain | NGX_CONF_2MORE, set_routes, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_list"), kHttpMain | NGX_CONF_1MORE, set_list, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_list_file"), kHttpMain | NGX_CONF_TAKE1, set_list_file, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_trusted_proxies"), kHttpMain | NGX_CONF_1MORE, set_trusted_proxies, NGX_HTTP_MAIN_CONF_OFFSET, 0,
     nullptr},
    {ngx_string("grayroute_client_ip_headers"), kHttpMain | NGX_CONF_1MORE, set_client_ip_headers,
     NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_recursive"), kHttpMain | NGX_CONF_TAKE1, set_recursive, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
#if GRAYROUTE_NGINX_REDIS
    {ngx_string("grayroute_redis"), kHttpMain | NGX_CONF_1MORE, set_redis, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
#endif
    {ngx_string("grayroute_route"), kAnyLevel | NGX_CONF_1MORE, set_route, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_percent"), kAnyLevel | NGX_CONF_1MORE, set_percent, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_force"), kAnyLevel | NGX_CONF_1MORE, set_force, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_status"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, set_status, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    // ngx_http_grayroute_health.cpp, ngx_http_grayroute_token.cpp
    {ngx_string("grayroute_health"), kHttpMain | NGX_CONF_ANY, set_health, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_metrics"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, set_metrics, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},
    {ngx_string("grayroute_decision_key_file"), kHttpMain | NGX_CONF_1MORE, set_decision_key_file, NGX_HTTP_MAIN_CONF_OFFSET,
     0, nullptr},
    ngx_null_command,
};

ngx_http_module_t kModuleContext = {
    preconfiguration,   // preconfiguration
    postconfiguration,  // postconfiguration
    create_main_conf,  // create main configuration
    init_main_conf,    // init main configuration
    nullptr,           // create server configuration
    nullptr,           // merge server configuration
    create_loc_conf,   // create location configuration
    merge_loc_conf,    // merge location configuration
};

}  // namespace
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
