// How to reach the Redis that holds a gray list, and what the store reports about it.
// No hiredis here: configuration code (nginx directives, command lines) can parse and
// validate these without linking the client; redis_store.hpp does the rest.
//
//   grayroute::redis_config config;
//   config.password = "foobared";                      // never logged: see redact()
//   auto address = grayroute::parse_redis_address("[::1]:6380");
#ifndef GRAYROUTE_REDIS_CONFIG_HPP
#define GRAYROUTE_REDIS_CONFIG_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config_error.hpp"
#include "detail/json.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// Where the list lives in Redis.
enum class redis_schema {
  seed,  ///< a key per address whose value equals the key (`SET 10.1.2.3 10.1.2.3`), as in the seed
  set,   ///< one SET named `key` of addresses and networks, all on the gray route
  hash,  ///< one HASH named `key`: address or network -> route name (an entry of `routes`)
};

/// How lookups reach the list.
enum class redis_mode {
  synced,  ///< a local snapshot kept in step by a background thread; lookups never touch the network
  direct,  ///< one GET per lookup (seed semantics), for comparison and small setups
};

struct redis_config {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;  ///< non-empty: use it instead of host/port
  std::string username;     ///< ACL user (AUTH user pass); empty: AUTH pass
  std::string password;     ///< never logged, never in error text
  int database = 0;
  redis_schema schema = redis_schema::seed;
  std::string key = "grayroute:list";                      ///< the SET or HASH name for set/hash schemas
  std::vector<std::string> routes{"production", "gray"};  ///< hash values name these (index = route_id)
  redis_mode mode = redis_mode::synced;
  std::chrono::milliseconds connect_timeout{1000}, command_timeout{1000};
  std::chrono::milliseconds resync_interval{60000};  ///< periodic full reload (safety net)
  std::chrono::milliseconds max_staleness{0};        ///< 0: serve the last snapshot forever while disconnected
  std::string snapshot_file;  ///< optional: loaded at start (before Redis answers), written after full loads
  // Additions to the shared contract (defaults keep its behaviour):
  std::chrono::milliseconds ping_interval{1000};  ///< how often the sync thread checks both connections
  std::chrono::milliseconds retry_max{5000};      ///< reconnect backoff: 100 ms doubling up to this
};

struct redis_status {
  bool connected = false;    ///< both connections up and the list loaded (synced); last GET worked (direct)
  bool synced_once = false;  ///< a full load from Redis has completed at least once
  std::chrono::system_clock::time_point last_sync{};  ///< epoch when never
  std::size_t entries = 0;
  std::uint64_t full_loads = 0;
  std::uint64_t invalidations = 0;  ///< change notifications received
  std::string last_error;           ///< "" when none; never contains the password
  std::size_t ignored = 0;          ///< entries skipped by the last load (not an address, unknown route)
  bool serving = true;              ///< false once max_staleness passed: lookups answer "not listed"
  std::uint64_t connects = 0;       ///< successful connects (1 + reconnects), synced mode

  /// One line for logs.
  std::string describe() const {
    std::string out = connected ? "redis connected" : "redis disconnected";
    out += synced_once ? ", synced " + std::to_string(seconds_since(last_sync)) + "s ago" : ", never synced";
    out += ", " + std::to_string(entries) + " entries";
    if (ignored) out += " (" + std::to_string(ignored) + " ignored)";
    out += ", " + std::to_string(full_loads) + " full loads, " + std::to_string(invalidations) + " invalidations, " +
           std::to_string(connects) + " connects";
    if (!serving) out += ", stale: answering not-listed";
    if (!last_error.empty()) out += ", last error: " + last_error;
    return out;
  }

  /// For health endpoints: one JSON object.
  std::string to_json() const {
    std::string out = "{\"connected\":";
    out += connected ? "true" : "false";
    out += ",\"synced_once\":";
    out += synced_once ? "true" : "false";
    out += ",\"serving\":";
    out += serving ? "true" : "false";
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(last_sync.time_since_epoch()).count();
    out += ",\"last_sync_unix_ms\":" + std::to_string(ms);
    out += ",\"entries\":" + std::to_string(entries);
    out += ",\"ignored\":" + std::to_string(ignored);
    out += ",\"full_loads\":" + std::to_string(full_loads);
    out += ",\"invalidations\":" + std::to_string(invalidations);
    out += ",\"connects\":" + std::to_string(connects);
    out += ",\"last_error\":" + json_string(last_error) + "}";
    return out;
  }

 private:
  static long long seconds_since(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - t).count();
  }
  static std::string json_string(std::string_view s) { return detail::json_string(s); }
};

/// Splits "host:port", "[::1]:6379", "host" (port 6379) or "unix:/path" (port 0 means
/// a unix socket path). nullopt for anything else, e.g. a port outside 1..65535.
[[nodiscard]] inline std::optional<std::pair<std::string, int>> parse_redis_address(std::string_view text) {
  constexpr int kDefaultPort = 6379;
  if (text.substr(0, 5) == "unix:") {
    if (text.size() == 5) return std::nullopt;
    return std::make_pair(std::string(text.substr(5)), 0);
  }
  auto parse_port = [](std::string_view p) -> int {
    if (p.empty() || p.size() > 5) return -1;
    int value = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return -1;
      value = value * 10 + (c - '0');
    }
    return value >= 1 && value <= 65535 ? value : -1;
  };
  std::string_view host = text;
  int port = kDefaultPort;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = parse_port(rest.substr(1));
    }
  } else if (const std::size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    // More than one colon without brackets is a bare IPv6 address.
    if (text.find(':') == colon) {
      host = text.substr(0, colon);
      port = parse_port(text.substr(colon + 1));
    }
  }
  if (host.empty() || port < 0) return std::nullopt;
  for (char c : host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '[' || c == ']') return std::nullopt;
  }
  return std::make_pair(std::string(host), port);
}

/// A loggable description of `config`; the password shows as "***".
inline std::string redact(const redis_config& config) {
  std::string out = config.unix_socket.empty() ? "redis://" : "redis+unix://";
  if (!config.username.empty() || !config.password.empty()) {
    out += config.username;
    if (!config.password.empty()) out += ":***";
    out += '@';
  }
  if (!config.unix_socket.empty()) {
    out += config.unix_socket;
  } else {
    const bool v6 = config.host.find(':') != std::string::npos;
    out += v6 ? "[" + config.host + "]" : config.host;
    out += ":" + std::to_string(config.port);
  }
  out += "/" + std::to_string(config.database);
  static constexpr const char* kSchemas[] = {"seed", "set", "hash"};
  out += " schema=";
  out += kSchemas[static_cast<int>(config.schema)];
  if (config.schema != redis_schema::seed) out += " key=" + config.key;
  out += config.mode == redis_mode::synced ? " mode=synced" : " mode=direct";
  return out;
}

namespace detail {

// Configuration mistakes are reported once, at construction, naming the value.
inline void validate(const redis_config& c) {
  if (c.unix_socket.empty()) {
    if (c.host.empty()) throw_config_error("redis host is empty");
    if (c.port < 1 || c.port > 65535) throw_config_error("redis port " + std::to_string(c.port) + " outside 1..65535");
  }
  if (c.database < 0) throw_config_error("redis database " + std::to_string(c.database) + " is negative");
  if (c.schema != redis_schema::seed && c.key.empty()) throw_config_error("redis key is empty (set/hash schema)");
  if (c.routes.size() < 2) throw_config_error("redis routes: need at least production and gray");
  for (std::size_t i = 0; i < c.routes.size(); ++i) {
    if (c.routes[i].empty()) throw_config_error("redis routes: route " + std::to_string(i) + " has no name");
    for (std::size_t j = 0; j < i; ++j) {
      if (c.routes[i] == c.routes[j]) throw_config_error("redis routes: " + detail::quote_value(c.routes[i]) + " twice");
    }
  }
  if (c.routes.size() > 65535) throw_config_error("redis routes: too many");
  auto positive = [](std::chrono::milliseconds v, const char* name) {
    if (v.count() <= 0) throw_config_error(std::string("redis ") + name + " must be positive");
  };
  positive(c.connect_timeout, "connect_timeout");
  positive(c.command_timeout, "command_timeout");
  positive(c.resync_interval, "resync_interval");
  positive(c.ping_interval, "ping_interval");
  positive(c.retry_max, "retry_max");
  if (c.max_staleness.count() < 0) throw_config_error("redis max_staleness is negative");
}

}  // namespace detail

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_REDIS_CONFIG_HPP
