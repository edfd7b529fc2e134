// ngx_http_grayroute_module: the directive handlers. Each turns its arguments into the
// configuration state (ngx_http_grayroute_conf.hpp) and reports a mistake with the
// value and nginx's " in FILE:LINE"; what can only be checked once the whole http
// block is known is checked when a location is merged (ngx_http_grayroute_module.cpp).
extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <grayroute/list_file.hpp>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

using grayroute::quote_value;

// The directive's arguments after its name, and where it is.
directive_words words_of(ngx_conf_t* cf) {
  const auto* args = static_cast<const ngx_str_t*>(cf->args->elts);
  directive_words out;
  for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) out.words.push_back(to_string(args[i]));
  out.place = conf_place::of(cf);
  return out;
}

// A new list's name; an error message (for nginx) when it cannot be one.
const char* check_list_name(ngx_conf_t* cf, const ngx_str_t& name) {
  // "list" is what policies call the unnamed list (the one grayroute_list fills).
  if (to_view(name) == "list") return conf_error(cf, "list name \"list\" is taken by the list of grayroute_list; choose another");
  for (const char c : to_view(name)) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '=' || c == ',') {
      return conf_error(cf, "list name " + quote_value(to_view(name)) + " is not a name (no spaces, '=' or ',')");
    }
  }
  return nullptr;
}

bool is_redis_url(std::string_view text) { return text.substr(0, 8) == "redis://" || text.substr(0, 7) == "unix://"; }

void warn_direct(ngx_conf_t* cf, const grayroute::redis_config& config) {
  if (config.mode != grayroute::redis_mode::direct) return;
  ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                     "grayroute_redis: mode=direct blocks the worker for one Redis round trip per request "
                     "(the seed's design); use it for comparison only");
}

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

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  ngx_str_t s{text.size(), reinterpret_cast<u_char*>(const_cast<char*>(text.data()))};
  const ngx_int_t ms = ngx_parse_time(&s, 0);
  if (ms == NGX_ERROR) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

std::optional<long> parse_number(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace

// ---- directives: http level ------------------------------------------------------

char* set_routes(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    main_state& m = main_of(cf);
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    std::vector<std::string> routes;
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) routes.push_back(to_string(args[i]));
    const grayroute::route_table checked(routes);  // throws naming a bad or repeated name
    if (cf->cmd_type != NGX_HTTP_MAIN_CONF) {
      // In a server or location: these routes, with upstreams of the same names unless
      // grayroute_route maps them. List entries still name the http block's routes.
      directive_words& here = static_cast<loc_conf*>(conf)->state->routes;
      if (here.set()) return conf_duplicate();
      here = {std::move(routes), conf_place::of(cf)};
      return NGX_CONF_OK;
    }
    if (m.routes_set) return conf_duplicate();
    if (m.routes_used) return conf_error(cf, "grayroute_routes must come before the directives that name routes");
    m.routes = std::move(routes);
    m.routes_set = true;
    return NGX_CONF_OK;
  });
}

char* set_list(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    if (const auto name = repeated_option(cf); !name.empty()) {
      return conf_error(cf, "grayroute_list: option " + std::string(name) + "= is given twice");  // the name only: it may be password
    }
    main_state& m = *static_cast<main_conf*>(conf)->state;
    list_state& list = m.list("");
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
    for (const auto& network : networks) list.static_entries.push_back({network, route});
    list.has_static = true;
    const std::size_t listed = networks.size();
    if (listed == 0) return conf_error(cf, "grayroute_list: no address or network given");
    return NGX_CONF_OK;
  });
}

// grayroute_list_file PATH (the unnamed list) or grayroute_list_file NAME PATH.
char* set_list_file(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    main_state& m = *static_cast<main_conf*>(conf)->state;
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    const bool named = cf->args->nelts == 3;
    if (named) {
      if (const char* error = check_list_name(cf, args[1])) return const_cast<char*>(error);
    }
    ngx_str_t name = args[named ? 2 : 1];
    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) return static_cast<char*>(NGX_CONF_ERROR);
    // Only a complete, stable file (two looks 50 ms apart, ending in a newline): a file
    // being rewritten in place fails the (re)load, and nginx keeps the running list.
    const auto parsed = grayroute::list_file_watch(to_string(name), m.routes).load();
    if (!parsed) return conf_error(cf, "grayroute_list_file " + to_string(name) + ": " + grayroute::to_string(*parsed.error));
    m.routes_used = true;
    list_state& list = m.list(named ? to_view(args[1]) : std::string_view());
    list.static_entries.insert(list.static_entries.end(), parsed.entries.begin(), parsed.entries.end());
    list.has_static = true;
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
    if (m.headers_set) return conf_duplicate();
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

// grayroute_redis NAME URL: a named list's Redis layer, spelled as the library's URL.
char* set_named_redis(ngx_conf_t* cf, main_state& m) {
  const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
  if (const char* error = check_list_name(cf, args[1])) return const_cast<char*>(error);
  list_state& list = m.list(to_view(args[1]));
  if (list.redis) return conf_error(cf, "grayroute_redis: list " + grayroute::quote_value(list.name) + " already has a Redis source");
  grayroute::redis_config config = grayroute::parse_redis_url(to_view(args[2]));  // the error shows the password as ***
  warn_direct(cf, config);
  list.redis = std::move(config);
  return NGX_CONF_OK;
}

// grayroute_redis ADDRESS [name=value ...] (the unnamed list, as before named lists),
// or grayroute_redis NAME redis://... | unix://...
char* set_redis(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    if (!redis_built_in()) return conf_error(cf, "grayroute_redis: this module was built without hiredis");
    const auto* words = static_cast<ngx_str_t*>(cf->args->elts);
    main_state& m = *static_cast<main_conf*>(conf)->state;
    if (cf->args->nelts == 3 && is_redis_url(to_view(words[2]))) return set_named_redis(cf, m);
    if (cf->args->nelts == 3 && to_view(words[2]).find('=') == std::string_view::npos) {
      // Not echoed: a mistyped URL may hold the password.
      return conf_error(cf, "grayroute_redis " + quote_value(to_view(words[1])) +
                                ": the source is not a redis:// or unix:// URL");
    }
    if (cf->args->nelts == 2 && is_redis_url(to_view(words[1]))) {
      list_state& list = m.list("");
      if (list.redis) return conf_duplicate();
      list.redis = grayroute::parse_redis_url(to_view(words[1]));
      warn_direct(cf, *list.redis);
      return NGX_CONF_OK;
    }
    if (const auto name = repeated_option(cf); !name.empty()) {
      return conf_error(cf, "grayroute_redis: option " + std::string(name) + "= is given twice");  // the name only: it may be password
    }
    list_state& list = m.list("");
    if (list.redis) return conf_duplicate();
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
          warn_direct(cf, config);
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
    if (config.mode == grayroute::redis_mode::direct && config.schema != grayroute::redis_schema::seed) {
      return conf_error(cf, "grayroute_redis: mode=direct reads the seed schema only");
    }
    list.redis = std::move(config);
    return NGX_CONF_OK;
  });
}

// ---- directives: location level --------------------------------------------------

// A directive given once per level, kept as words until the location is merged.
char* set_words_once(ngx_conf_t* cf, directive_words& slot) {
  return guarded(cf, [&]() -> char* {
    if (slot.set()) return conf_duplicate();
    slot = words_of(cf);
    return NGX_CONF_OK;
  });
}

// grayroute_route: resolved against the location's routes when it is merged.
char* set_route(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return set_words_once(cf, static_cast<loc_conf*>(conf)->state->upstreams);
}

// grayroute_rule NAME word...: the spelling is checked here, the meaning (routes and
// lists exist, shares add up) when the location is merged.
char* set_rule(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    loc_state& l = *static_cast<loc_conf*>(conf)->state;
    directive_words w = words_of(cf);
    const std::string name = w.words.front();
    w.words.erase(w.words.begin());
    l.rules.emplace_back(grayroute::parse_rule(name, w.words), std::move(w.place));
    return NGX_CONF_OK;
  });
}

// grayroute_default: checked against the location's routes when it is merged.
char* set_default(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return set_words_once(cf, static_cast<loc_conf*>(conf)->state->default_route);
}

char* set_percent(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    if (const auto name = repeated_option(cf); !name.empty()) {
      return conf_error(cf, "grayroute_percent: option " + std::string(name) + "= is given twice");  // the name only: it may be password
    }
    loc_state& l = *static_cast<loc_conf*>(conf)->state;
    if (l.percent_set) return conf_duplicate();
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
        l.percent_route = std::string(o.value);  // checked against the location's routes when merged
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
    if (l.force_set) return conf_duplicate();
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) {
      const option o = split_option(args[i]);
      if (o.has_value && o.name == "header" && !o.value.empty()) {
        l.force_header = std::string(o.value);
      } else if (o.has_value && o.name == "cookie" && !o.value.empty()) {
        l.force_cookie = std::string(o.value);
      } else if (o.has_value && o.name == "route") {
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

char* set_status(ngx_conf_t* cf, ngx_command_t*, void*) {
  auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
  clcf->handler = status_handler;
  return NGX_CONF_OK;
}

}  // namespace grayroute_nginx
