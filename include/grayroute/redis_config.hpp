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

/// "seed", "set", "hash": as written in configuration.
constexpr std::string_view to_string(redis_schema schema) noexcept {
  switch (schema) {
    case redis_schema::seed: return "seed";
    case redis_schema::set: return "set";
    case redis_schema::hash: return "hash";
  }
  return "seed";
}

/// "synced", "direct".
constexpr std::string_view to_string(redis_mode mode) noexcept {
  return mode == redis_mode::synced ? "synced" : "direct";
}

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
  /// Full reloads (after a FLUSHDB of our database, a set/hash change, a resync) start
  /// no sooner than this after the previous one ended: a storm costs one load per interval.
  std::chrono::milliseconds min_reload_interval{1000};
};

struct redis_status {
  bool connected = false;    ///< both connections up and the list loaded (synced); last GET worked (direct)
  bool synced_once = false;  ///< a full load from Redis has completed at least once
  /// Lookups answer from snapshot_file, read at start, until the first full load: routed
  /// by the list, yet never synced. False once synced, or when there was no snapshot.
  bool from_snapshot = false;
  std::chrono::system_clock::time_point last_sync{};  ///< epoch when never
  std::size_t entries = 0;
  std::uint64_t full_loads = 0;
  std::uint64_t invalidations = 0;  ///< change notifications received
  std::string last_error;           ///< "" when none: the failing step and Redis's reason; never the password
  std::size_t ignored = 0;          ///< entries skipped by the last load (not an address, unknown route)
  bool serving = true;              ///< false once max_staleness passed: lookups answer "not listed"
  std::uint64_t connects = 0;       ///< successful connects (1 + reconnects), synced mode
  /// "tracking" (client-side caching); when the server refuses CLIENT TRACKING,
  /// "keyspace notifications (... refused: ...)" where notify-keyspace-events allows,
  /// else "polling every resync_interval (... refused: ...)"; "direct" in direct mode.
  std::string sync_mode;
  bool loading = false;              ///< a full load is running
  bool slow_load = false;            ///< ... and has run longer than its size should take
  std::string slow_load_detail;      ///< how far the slow load got
  std::uint64_t last_load_ms = 0;    ///< how long the last complete full load took
  std::uint64_t flaps = 0;           ///< connections lost before they had stayed up long enough to count as healthy
  bool flapping = false;             ///< the last connection was one of those
  /// Checks after FLUSHDB/FLUSHALL notifications (one per batch of them) that found our
  /// database untouched, so nothing was reloaded.
  std::uint64_t flushes_elsewhere = 0;

  /// "" while the list source is healthy; else why it is degraded: never synced,
  /// disconnected, stale, a slow load, flapping. For health endpoints.
  std::string problem() const {
    if (!serving) return "stale: no Redis for max_staleness, answering not listed";
    if (sync_mode == "direct") return connected || last_error.empty() ? "" : "last lookup failed: " + last_error;
    auto with_error = [this](std::string text) { return last_error.empty() ? text : text + ": " + last_error; };
    if (!synced_once) return with_error(from_snapshot ? "never synced, serving the snapshot file" : "never synced");
    if (!connected) return with_error("disconnected, serving the last list");
    if (slow_load) return slow_load_detail;
    if (flapping) return with_error("connection flapping");
    return "";
  }
  bool healthy() const { return problem().empty(); }

  /// True while Redis refuses our credentials (wrong or missing password, unknown or
  /// disabled ACL user): a configuration problem worth one log line, not a retry storm
  /// of them. Adapters log it once, rate-limited.
  bool credentials_refused() const {
    return last_error.find(": AUTH: ") != std::string::npos || last_error.find("NOAUTH") != std::string::npos ||
           last_error.find("WRONGPASS") != std::string::npos;
  }
};

/// One line for logs: "redis connected, synced 3s ago, 1000 entries, ...".
inline std::string to_string(const redis_status& status) {
  const auto seconds_since = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - t).count();
  };
  std::string out = status.connected ? "redis connected" : "redis disconnected";
  out += status.synced_once ? ", synced " + std::to_string(seconds_since(status.last_sync)) + "s ago" : ", never synced";
  if (status.from_snapshot) out += ", serving the snapshot file";
  out += ", " + std::to_string(status.entries) + " entries";
  if (status.ignored) out += " (" + std::to_string(status.ignored) + " ignored)";
  out += ", " + std::to_string(status.full_loads) + " full loads, " + std::to_string(status.invalidations) +
         " invalidations, " + std::to_string(status.connects) + " connects";
  if (status.flaps) out += ", " + std::to_string(status.flaps) + " flaps";
  if (!status.sync_mode.empty() && status.sync_mode != "tracking") out += ", " + status.sync_mode;
  if (status.slow_load) out += ", " + status.slow_load_detail;
  if (!status.serving) out += ", stale: answering not-listed";
  if (!status.last_error.empty()) out += ", last error: " + status.last_error;
  return out;
}

/// For health endpoints: one JSON object; "health" is "ok" or "degraded" (see problem()).
inline std::string to_json(const redis_status& status) {
  const auto flag = [](bool b) { return b ? "true" : "false"; };
  const std::string why = status.problem();
  std::string out = "{\"health\":";
  out += why.empty() ? "\"ok\"" : "\"degraded\"";
  out += ",\"problem\":";
  detail::append_json_string(out, why);
  out += ",\"connected\":";
  out += flag(status.connected);
  out += ",\"synced_once\":";
  out += flag(status.synced_once);
  out += ",\"from_snapshot\":";
  out += flag(status.from_snapshot);
  out += ",\"serving\":";
  out += flag(status.serving);
  out += ",\"mode\":";
  detail::append_json_string(out, status.sync_mode);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(status.last_sync.time_since_epoch()).count();
  out += ",\"last_sync_unix_ms\":" + std::to_string(ms);
  out += ",\"entries\":" + std::to_string(status.entries);
  out += ",\"ignored\":" + std::to_string(status.ignored);
  out += ",\"full_loads\":" + std::to_string(status.full_loads);
  out += ",\"last_load_ms\":" + std::to_string(status.last_load_ms);
  out += ",\"loading\":";
  out += flag(status.loading);
  out += ",\"invalidations\":" + std::to_string(status.invalidations);
  out += ",\"flushes_elsewhere\":" + std::to_string(status.flushes_elsewhere);
  out += ",\"connects\":" + std::to_string(status.connects);
  out += ",\"flaps\":" + std::to_string(status.flaps);
  out += ",\"flapping\":";
  out += flag(status.flapping);
  out += ",\"last_error\":";
  detail::append_json_string(out, status.last_error);
  out += '}';
  return out;
}

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

namespace detail {

inline constexpr std::string_view kDirectNeedsSeed = "redis direct mode reads the seed schema only (one GET per lookup)";

// `url` with the password shown as "***", for error text. User information ends at the
// last '@' (as parse_redis_url reads it), so a password holding '/', '?' or '@' unescaped
// is still hidden whole. Text that is not a URL may be an older spelling
// ("127.0.0.1:6379 password=..."): only what precedes its first space is shown, and
// without "://" nothing after the first ':'.
inline std::string redact_url(std::string_view url) {
  const std::size_t space = url.find_first_of(" \t\r\n");
  const std::string_view text = url.substr(0, space);
  const std::string more = space == std::string_view::npos ? "" : " (and more after a space)";
  const std::size_t scheme = text.find(':');
  if (scheme == std::string_view::npos) return quote_value(text) + more;
  if (text.substr(scheme, 3) != "://") return quote_value(std::string(text.substr(0, scheme + 1)) + "***") + more;
  const std::size_t start = scheme + 3;
  const std::size_t at = text.rfind('@');
  if (at == std::string_view::npos || at < start) return quote_value(text) + more;
  const std::size_t colon = text.find(':', start);
  if (colon == std::string_view::npos || colon > at) return quote_value(text) + more;
  std::string out(text.substr(0, colon + 1));
  out += "***";
  out += text.substr(at);
  return quote_value(out) + more;
}

// RFC 3986 percent-decoding of user information; false on a bad escape.
inline bool percent_decode(std::string_view text, std::string& out) {
  out.clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size() || hex(text[i + 1]) < 0 || hex(text[i + 2]) < 0) return false;
    out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
    i += 2;
  }
  return true;
}

inline bool parse_small_number(std::string_view text, int& out) {
  if (text.empty() || text.size() > 9) return false;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  out = value;
  return true;
}

}  // namespace detail

/// A Redis source as one URL, the spelling every adapter reads:
///   redis://[user[:password]@]host[:port][/db][?schema=seed|set:NAME|hash:NAME][&mode=direct]
///   unix://[user[:password]@]/path/redis.sock[?db=N&schema=...&mode=...]
/// User, password and key are percent-decoded (user information ends at the last '@'); an IPv6 host is bracketed ([::1]:6380); the
/// schema defaults to seed, the mode to synced. Other fields keep redis_config's defaults.
/// Throws config_error naming the URL with its password shown as "***".
///
///   auto config = grayroute::parse_redis_url("redis://:foobared@127.0.0.1:6379/0?schema=seed");
[[nodiscard]] inline redis_config parse_redis_url(std::string_view url) {
  const std::string shown = detail::redact_url(url);
  auto fail = [&](const std::string& why) { detail::throw_config_error("redis URL " + shown + ": " + why); };
  redis_config c;
  if (url.find_first_of(" \t\r\n") != std::string_view::npos) {
    fail("a URL has no spaces (options are written in it: redis://:PASSWORD@host:port/db?schema=...)");
  }
  const bool unix_socket = url.substr(0, 7) == "unix://";
  if (!unix_socket && url.substr(0, 8) != "redis://") {
    fail("not redis://host[:port][/db]?... or unix:///path?... (rediss:// and TLS are not supported)");
  }
  std::string_view rest = url.substr(unix_socket ? 7 : 8);
  // User information ends at the last '@' of the URL, so a password that holds '/', '?'
  // or '@' unescaped is never read as host, path or query (and never shown in an error);
  // an '@' in a key name is written %40.
  const std::size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    const std::size_t colon = userinfo.find(':');
    if (!detail::percent_decode(userinfo.substr(0, colon), c.username)) fail("bad %-escape in the user name");
    if (colon != std::string_view::npos && !detail::percent_decode(userinfo.substr(colon + 1), c.password)) {
      fail("bad %-escape in the password");
    }
    if (colon != std::string_view::npos && c.password.empty()) fail("empty password after ':'");
    rest.remove_prefix(at + 1);
  }
  std::string_view query;
  if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  bool db_in_path = false;
  if (unix_socket) {
    if (rest.empty() || rest.front() != '/') fail("a unix socket needs an absolute path (unix:///run/redis.sock)");
    c.unix_socket = std::string(rest);
  } else {
    const std::size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    const auto address = authority.substr(0, 5) == "unix:" ? std::nullopt : parse_redis_address(authority);
    if (!address) fail("host " + detail::quote_value(authority) + " is not host[:port] with a port in 1..65535");
    c.host = address->first;
    c.port = address->second;
    if (slash != std::string_view::npos && slash + 1 < rest.size()) {
      if (!detail::parse_small_number(rest.substr(slash + 1), c.database)) {
        fail("database " + detail::quote_value(rest.substr(slash + 1)) + " is not a number");
      }
      db_in_path = true;
    }
  }
  bool seen_schema = false, seen_mode = false, seen_db = false;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    const std::size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    bool* seen = name == "schema" ? &seen_schema : name == "mode" ? &seen_mode : name == "db" ? &seen_db : nullptr;
    if (!seen) fail("unknown parameter " + detail::quote_value(name) + " (schema, mode" + (unix_socket ? ", db)" : ")"));
    if (*seen) fail("parameter " + detail::quote_value(name) + " given twice");
    *seen = true;
    if (name == "schema") {
      const std::string_view kind = value.substr(0, value.find(':'));
      const std::string_view key = value.find(':') == std::string_view::npos ? std::string_view() : value.substr(value.find(':') + 1);
      if (value == "seed") {
        c.schema = redis_schema::seed;
      } else if ((kind == "set" || kind == "hash") && !key.empty()) {
        c.schema = kind == "set" ? redis_schema::set : redis_schema::hash;
        if (!detail::percent_decode(key, c.key)) fail("bad %-escape in the key " + detail::quote_value(key));
      } else {
        fail("schema " + detail::quote_value(value) + " is not seed, set:NAME or hash:NAME");
      }
    } else if (name == "mode") {
      if (value == "direct") {
        c.mode = redis_mode::direct;
      } else if (value == "synced") {
        c.mode = redis_mode::synced;
      } else {
        fail("mode " + detail::quote_value(value) + " is not synced or direct");
      }
    } else {
      if (!unix_socket || db_in_path) fail("db= is for unix sockets; write the database as the path (/0)");
      if (!detail::parse_small_number(value, c.database)) fail("database " + detail::quote_value(value) + " is not a number");
    }
  }
  if (c.mode == redis_mode::direct && c.schema != redis_schema::seed) fail(std::string(detail::kDirectNeedsSeed));
  return c;
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
  out += " schema=";
  out += to_string(config.schema);
  if (config.schema != redis_schema::seed) out += " key=" + config.key;
  out += " mode=";
  out += to_string(config.mode);
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
  if (c.mode == redis_mode::direct && c.schema != redis_schema::seed) throw_config_error(std::string(kDirectNeedsSeed));
  if (c.min_reload_interval.count() < 0) throw_config_error("redis min_reload_interval is negative");
}

}  // namespace detail

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_REDIS_CONFIG_HPP
