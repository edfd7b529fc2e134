// ngx_http_grayroute_module's configuration state and the helpers every part of the
// module shares (after nginx-datadog's datadog_conf.h). The parts, one file each:
//
//   ngx_http_grayroute_module.cpp       directive table, module context, configuration lifecycle
//   ngx_http_grayroute_directives.cpp   the directive handlers (text -> the state below)
//   ngx_http_grayroute_policy.cpp       a location's grayroute::policy, built when it is merged
//   ngx_http_grayroute_variables.cpp    the decision and the $grayroute_* variables
//   ngx_http_grayroute_status.cpp       the grayroute_status page (and send_page, for every page)
//   ngx_http_grayroute_redis.cpp        each worker's Redis stores (built with hiredis)
//   ngx_http_grayroute_no_redis.cpp     ... its stand-in when built without hiredis
//   ngx_http_grayroute_health.cpp       route health in a shared zone, grayroute_metrics  } hooks in
//   ngx_http_grayroute_token.cpp        decision tokens, the PROXY-protocol client source } _decide.hpp
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
#include <grayroute/policy.hpp>
#include <grayroute/redis_config.hpp>

#include "ngx_http_grayroute_decide.hpp"
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

// ---- lists -------------------------------------------------------------------------

/// A list layer whose store exists only in a worker (Redis: its sync thread cannot
/// survive nginx's fork): "not listed" until the worker attaches its store, and again
/// once it detaches it. Only the worker's event-loop thread reads it.
class worker_store {
 public:
  std::optional<route_id> lookup(const grayroute::ip_address& address) const noexcept {
    return live_ ? live_->lookup(address) : std::nullopt;
  }
  void attach(const grayroute::store_ref& store) noexcept { live_.emplace(store); }
  void detach() noexcept { live_.reset(); }

 private:
  std::optional<grayroute::store_ref> live_;
};

/// A gray list. Its layers follow the library's convention (layered_store.hpp): the
/// configuration's entries (grayroute_list and list files, one longest-prefix store),
/// then Redis.
struct list_state {
  std::string name;  // "": the list of grayroute_list, grayroute_list_file PATH, grayroute_redis ADDRESS
  std::vector<grayroute::store_entry> static_entries;  // until init_main_conf
  bool has_static = false;                             // a directive gave entries (maybe none)
  std::unique_ptr<grayroute::memory_store> static_store;
  std::optional<grayroute::redis_config> redis;
  worker_store redis_layer;
  grayroute::layered_store layers;  // built in init_main_conf; what the policies read

  // In a worker (ngx_http_grayroute_redis.cpp).
  std::shared_ptr<grayroute::redis_store> redis_store;
  ngx_event_t credentials_timer{};  // logs refused Redis credentials, rate-limited
  ngx_msec_t credentials_logged_at = 0;
  bool credentials_logged = false;
};

// ---- http-level state ------------------------------------------------------------

struct main_state {
  std::vector<std::string> routes{"production", "gray"};
  bool routes_set = false;   // grayroute_routes at http level: list entries name these
  bool routes_used = false;  // a list already named routes: grayroute_routes must come first
  grayroute::resolver_config client_ip;
  bool headers_set = false;
  std::vector<std::unique_ptr<list_state>> lists;  // stable addresses: policies refer to their layers
  // Upstream names $grayroute_upstream may hold, checked against the upstream{} blocks
  // once the whole http block is known.
  std::vector<std::pair<std::string, conf_place>> named_upstreams;
  decide_state decide;  // tokens, the PROXY-protocol source, route health (ngx_http_grayroute_decide.hpp)
  // Every location's policy (owned by its loc_state), for grayroute_status's ramps.
  std::vector<const grayroute::policy*> policies;

  /// The list called `name` ("" for the unnamed one), created on first use.
  list_state& list(std::string_view name) {
    if (list_state* found = find_list(name)) return *found;
    lists.push_back(std::make_unique<list_state>());
    lists.back()->name = std::string(name);
    return *lists.back();
  }
  list_state* find_list(std::string_view name) const {
    for (const auto& l : lists) {
      if (l->name == name) return l.get();
    }
    return nullptr;
  }

  std::optional<route_id> find_route(std::string_view name) const {
    for (std::size_t i = 0; i < routes.size(); ++i) {
      if (routes[i] == name) return static_cast<route_id>(i);
    }
    return std::nullopt;
  }

  std::string route_list() const { return join(routes); }

  static std::string join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
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

/// A directive's words and where it was, resolved when the location is merged (the
/// routes it names may be inherited from the server).
struct directive_words {
  std::vector<std::string> words;
  conf_place place;
  bool set() const { return !words.empty(); }
};

struct loc_state {
  directive_words upstreams;  // grayroute_route
  directive_words routes;     // grayroute_routes at server or location level
  directive_words default_route;
  std::vector<std::pair<grayroute::rule_config, conf_place>> rules;  // grayroute_rule, in order

  bool percent_set = false;
  double percent = 0;
  ngx_http_complex_value_t* percent_key = nullptr;
  std::string percent_route;  // empty: the second route
  std::uint32_t percent_seed = 0;
  conf_place percent_place;

  bool force_set = false;
  std::string force_header, force_cookie, force_route;  // empty force_route: the second route
  conf_place force_place;

  // Compiled when the location is merged, if it routes.
  std::unique_ptr<grayroute::policy> policy;
  std::vector<std::string> upstream_of;  // index = route id
  std::vector<route_id> health_route;    // index = route id: the route in the health zone
};

struct loc_conf {
  loc_state* state;
};

// The decision for one request, kept in its module context so every variable and
// every evaluation of one variable agree.
// Packed small (72 bytes): it and route health's note share the default 4k request pool
// with nginx's own allocations, and 8 more bytes spilled a plain GET into a second pool
// block (one more malloc and free per request, +2% instructions; bench/nginx_callgrind.sh).
struct request_ctx {
  route_id route;
  grayroute::route_reason reason;
  std::uint8_t client_ip_length;
  bool pinned;  // the key was a fresh pin id, stored right after this struct (ngx_http_grayroute_pin.cpp)
  u_char client_ip[grayroute::ip_address::kMaxTextLength + 1];
  std::string_view rule;  // points into the location's policy, or into a trusted tier's token header
};
static_assert(grayroute::ip_address::kMaxTextLength < 256, "client_ip_length is one byte");
static_assert(sizeof(request_ctx) <= 72, "request_ctx stays within its 72 bytes (see above)");

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
char* set_rule(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);
char* set_default(ngx_conf_t* cf, ngx_command_t* cmd, void* conf);

// ngx_http_grayroute_policy.cpp
/// Builds the location's policy when it routes; NGX_CONF_ERROR (logged with the
/// directive's line) on a mistake.
char* compile_location(ngx_conf_t* cf, main_state& m, loc_state& l);

// ngx_http_grayroute_variables.cpp
ngx_int_t add_variables(ngx_conf_t* cf);

// ngx_http_grayroute_status.cpp
ngx_int_t status_handler(ngx_http_request_t* r);
/// Sends `body` as a 200 response of `content_type` (a string literal's view).
ngx_int_t send_page(ngx_http_request_t* r, const std::string& body, std::string_view content_type) noexcept;

/// A page handler's body (grayroute_status, grayroute_metrics): answers GET and HEAD with
/// what `make_body()` returns, 405 to other methods, 500 if it throws.
template <class MakeBody>
ngx_int_t serve_page(ngx_http_request_t* r, std::string_view content_type, MakeBody make_body) noexcept {
  if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) return NGX_HTTP_NOT_ALLOWED;
  if (ngx_http_discard_request_body(r) != NGX_OK) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  std::string body;
  try {
    body = make_body();
  } catch (const std::exception&) {
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
  }
  return send_page(r, body, content_type);
}

// ngx_http_grayroute_redis.cpp (or ngx_http_grayroute_no_redis.cpp)
/// False when the module was built without hiredis: grayroute_redis is then an error.
bool redis_built_in() noexcept;
/// Starts this worker's Redis store for every list that has one; never fails the worker.
void start_redis(ngx_cycle_t* cycle, main_state& m);
/// Stops them (joins the sync threads, closes the connections).
void stop_redis(ngx_cycle_t* cycle, main_state& m);
/// One reading of a list's Redis layer, so that a page's overall status and the list's
/// own "health" never come from two different moments.
struct redis_report {
  std::string problem;      ///< "" while healthy or without Redis, else why it is degraded
  std::string json = "null";  ///< the status as a JSON value; "null" without Redis
};
redis_report read_redis(const list_state& l);

}  // namespace grayroute_nginx

#endif  // GRAYROUTE_NGINX_CONF_HPP
