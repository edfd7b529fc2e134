// ngx_http_grayroute_module's configuration state and the helpers every part of the
// module shares (after nginx-datadog's datadog_conf.h). The parts, one file each:
//
//   ngx_http_grayroute_module.cpp       directive table, module context, configuration lifecycle
//   ngx_http_grayroute_directives.cpp   the directive handlers (text -> the state below)
//   ngx_http_grayroute_variables.cpp    the decision and the $grayroute_* variables
//   ngx_http_grayroute_status.cpp       the grayroute_status page
//   ngx_http_grayroute_redis.cpp        each worker's Redis stores (built with hiredis)
//   ngx_http_grayroute_no_redis.cpp     ... its stand-in when built without hiredis
//
// State lives in C++ objects owned by nginx's configuration pools (freed by pool
// cleanups, so a reload frees the old configuration). No exception crosses into nginx:
// configuration handlers run inside guarded(), the request path calls only noexcept code.
//
// Include after the nginx headers (inside extern "C"), as request_headers.hpp.
#ifndef GRAYROUTE_NGINX_CONF_HPP
#define GRAYROUTE_NGINX_CONF_HPP

#if __cplusplus < 201703L
#error "ngx_http_grayroute_module needs C++17 (GCC >= 11 and Clang >= 16 default to it; else add -std=c++17 for this file)"
#endif

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <grayroute/fwd.hpp>
#include <grayroute/grayroute.hpp>
#include <grayroute/redis_config.hpp>

#include "module_store.hpp"
#include "request_headers.hpp"

extern "C" {
extern ngx_module_t ngx_http_grayroute_module;
}

namespace grayroute_nginx {

using grayroute::route_id;

inline std::string to_string(const ngx_str_t& s) { return std::string(to_view(s)); }

// ngx_conf_log_error adds " in <file>:<line>" for the directive being parsed.
inline char* conf_error(ngx_conf_t* cf, const std::string& message) {
  ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", message.c_str());
  return static_cast<char*>(NGX_CONF_ERROR);
}

// nginx's own "is duplicate" (ngx_conf_handler prints `"name" directive is duplicate`).
inline char* conf_duplicate() { return static_cast<char*>(const_cast<char*>("is duplicate")); }

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
  std::vector<grayroute::store_entry> static_entries;
  std::unique_ptr<grayroute::memory_store> static_list;
  module_store store;
  // Upstream names grayroute_route refers to, checked against the upstream{} blocks
  // once the whole http block is known.
  std::vector<std::pair<std::string, conf_place>> named_upstreams;

  // grayroute_redis; the store exists in a worker only (ngx_http_grayroute_redis.cpp).
  std::optional<grayroute::redis_config> redis;
  std::shared_ptr<grayroute::redis_store> redis_store;
  ngx_event_t credentials_timer{};  // logs refused Redis credentials, rate-limited
  ngx_msec_t credentials_logged_at = 0;
  bool credentials_logged = false;

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

// nginx's main configuration: a pointer to the C++ state, and the plain fields nginx's
// slot setters write (they take an offset into this struct).
struct main_conf {
  main_state* state;
  ngx_flag_t recursive;  // grayroute_recursive
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

inline main_state& main_of(ngx_conf_t* cf) {
  return *static_cast<main_conf*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_grayroute_module))->state;
}

// ---- the parts' entry points -------------------------------------------------------

// ngx_http_grayroute_directives.cpp
char* set_routes(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_list(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_list_file(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_trusted_proxies(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_client_ip_headers(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_redis(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_route(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_percent(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_force(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_status(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);

// ngx_http_grayroute_variables.cpp
ngx_int_t add_variables(ngx_conf_t* cf);

// ngx_http_grayroute_status.cpp
ngx_int_t status_handler(ngx_http_request_t* r);

// ngx_http_grayroute_redis.cpp (or ngx_http_grayroute_no_redis.cpp)
/// False when the module was built without hiredis: grayroute_redis is then an error.
bool redis_built_in() noexcept;
/// Starts this worker's Redis store, if grayroute_redis is configured; never fails the worker.
void start_redis(ngx_cycle_t* cycle, main_state& m);
/// Stops it (joins the sync thread, closes the connection).
void stop_redis(ngx_cycle_t* cycle, main_state& m);
/// "" while healthy, else why the Redis list is degraded.
std::string redis_problem(const main_state& m);
/// The store's status as a JSON value; "null" without grayroute_redis.
std::string redis_status_json(const main_state& m);

}  // namespace grayroute_nginx

#endif  // GRAYROUTE_NGINX_CONF_HPP
