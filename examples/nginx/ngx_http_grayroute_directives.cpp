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

using grayroute::detail::quote_value;

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
    if (m.headers_set) return conf_duplicate();
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    grayroute::resolver_config check;
    check.headers.clear();
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) check.headers.push_back(to_string(args[i]));
    grayroute::client_ip_resolver validate(check);  // throws naming a bad or repeated header
    m.client_ip.headers = std::move(check.headers);
    m.headers_set = true;
    return NGX_CONF_OK;
  });
}

char* set_redis(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    if (const auto name = repeated_option(cf); !name.empty()) {
      return conf_error(cf, "grayroute_redis: option " + std::string(name) + "= is given twice");  // the name only: it may be password
    }
    main_state& m = *static_cast<main_conf*>(conf)->state;
    if (m.redis) return conf_duplicate();
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

// ---- directives: location level --------------------------------------------------

char* set_route(ngx_conf_t* cf, ngx_command_t*, void* conf) {
  return guarded(cf, [&]() -> char* {
    loc_state& l = *static_cast<loc_conf*>(conf)->state;
    if (!l.upstreams.empty()) return conf_duplicate();
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
    if (l.percent_set) return conf_duplicate();
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
    if (l.force_set) return conf_duplicate();
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

char* set_status(ngx_conf_t* cf, ngx_command_t*, void*) {
  auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
  clcf->handler = status_handler;
  return NGX_CONF_OK;
}

}  // namespace grayroute_nginx
