// What grayroute-proxy serves with, before anything is opened: its routes and their
// servers, the policy (a grayroute::policy_config whose lists get their stores later)
// and where each list comes from. Read from a TOML policy file (`--config`) or built
// from the command-line flags (the shorthand): one structure, so both take one path
// through live_policy.hpp, and the library validates either.
//
//   grayroute_proxy::proxy_policy p = grayroute_proxy::read_policy_file("policy.toml");
//   // throws policy_error("policy.toml:12:9: rule \"beta-api\": unknown route \"betaa\"")
#ifndef GRAYROUTE_PROXY_POLICY_FILE_HPP
#define GRAYROUTE_PROXY_POLICY_FILE_HPP

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <grayroute/policy_config.hpp>
#include <grayroute/route_health.hpp>
#include <grayroute/redis_config.hpp>

#include "options.hpp"
#include "probes.hpp"

namespace grayroute_proxy {

/// A configuration mistake, already placed: "file:line:column: message" (or "--flag: message").
class policy_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One named list's sources, layered in this order (layered_store.hpp says why):
/// addresses written in the configuration, then the list file, then Redis.
struct list_spec {
  std::string name;
  std::vector<std::string> addresses;
  std::string file;                              // "": none
  std::string file_where;                        // "policy.toml:14:13: list \"qa\": qa.txt", or "--gray-list-file qa.txt"
  std::optional<grayroute::redis_config> redis;  // its `routes` are set to the policy's
  std::string where;                             // "policy.toml:14:6" or "--gray-list-file": for errors
};

struct proxy_policy {
  std::string source;  // the policy file; "" when built from flags
  std::string listen;  // "" when not given
  std::string listen_where;  // "policy.toml:1:10: listen", for errors
  std::vector<std::vector<std::string>> servers;  // by route_id: "host:port", at least one each
  std::vector<std::string> servers_where;         // by route_id, for errors
  grayroute::policy_config config;                // lists named, layers filled by live_policy
  std::vector<list_spec> lists;                   // in config.lists order
  consistency_options consistency;  // issue 13: [decision], pin_cookie, [listener] (read at start-up only)
  // #12: route health (health_feed.hpp, probes.hpp); flags --health, --fallback-route, --probe
  grayroute::health_config health;  // parse_health's; on with its defaults when nothing is said
  std::string health_words = "on";  // the same as words, to compare across reloads
  std::string fallback;             // "": the first route
  std::string fallback_where = "--fallback-route";
  std::vector<probe_spec> probes;   // route names resolved by live_policy
  /// Where a config_error the library raised while building `built` (this config with its
  /// stores) came from: "file:line:column: message". Flags: the message as it is.
  std::function<std::string(const std::string& message, const grayroute::policy_config& built)> place;
};

/// A grayroute::config_error's text without its "grayroute: " prefix (noise after a place).
std::string without_library_prefix(const std::string& message);

/// Reads and translates a TOML policy file; throws policy_error naming file, line and column.
proxy_policy read_policy_file(const std::string& path);
/// The same for a file's text already read (`path` names it in errors and anchors
/// relative list file paths).
proxy_policy read_policy_text(const std::string& text, const std::string& path);

/// The policy the routing flags describe (--production, --gray, --gray-list...,
/// --percent..., --force-...): routes production and gray, list "list", rules "list" and
/// "percentage", as grayroute::to_policy_config builds them from a router_config.
proxy_policy policy_from_flags(const proxy_options& options);

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_POLICY_FILE_HPP
