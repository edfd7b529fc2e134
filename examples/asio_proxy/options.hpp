// Everything grayroute-proxy is told on its command line, in one plain struct. The
// routing flags are the shorthand of a policy file (policy_file.hpp turns either into
// one proxy_policy).
#ifndef GRAYROUTE_PROXY_OPTIONS_HPP
#define GRAYROUTE_PROXY_OPTIONS_HPP

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <grayroute/router.hpp>

#include "consistency_options.hpp"

namespace grayroute_proxy {

struct redis_options {
  std::string address;   // "host:port", "[::1]:6379" or "unix:/path"; empty: no Redis
  std::string user;
  std::string password;  // never logged
  int database = 0;
  std::string schema = "seed";  // seed | set | hash
  std::string key = "grayroute:list";
};

struct proxy_options {
  std::string config_file;  // --config: the TOML policy file; the routing flags below are unused
  std::string listen;       // "": the policy file's `listen`, else 127.0.0.1:8000
  std::string production = "127.0.0.1:8080";
  std::string gray = "127.0.0.1:8090";

  std::vector<std::string> gray_list;  // addresses / CIDRs from the command line
  std::string gray_list_file;
  std::chrono::milliseconds watch_interval{1000};  // policy and list files; 0: reload on SIGHUP only
  redis_options redis;

  grayroute::router_config routing;
  bool routing_enabled = true;  // off: everything to production (benchmark baseline)
  bool route_header = true;     // X-Grayroute on responses
  consistency_options consistency;  // tokens, pinning, ramp, PROXY protocol (issue 13)

  unsigned threads = 1;
  std::size_t upstream_keepalive = 32;  // idle connections kept per upstream and thread
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds upstream_timeout{60000};   // upstream silent this long: 504
  std::chrono::milliseconds client_timeout{30000};     // client silent mid-request
  std::chrono::milliseconds keepalive_timeout{60000};  // idle client connection
  std::chrono::milliseconds upstream_idle_timeout{15000};
  std::chrono::milliseconds shutdown_timeout{30000};
  std::string access_log = "-";  // a file, "-" for stdout, "off"

  // #12: route health (health_feed.hpp, probes.hpp)
  std::string health = "on";             // grayroute::parse_health words; "off"
  std::string fallback_route;            // "": the first route
  std::vector<std::string> probes;       // "route=gray path=/healthz interval=1s expect=200"
};

/// Runs the proxy until SIGINT/SIGTERM; the exit status (server.cpp). Kept apart
/// from main.cpp so the command-line parser and Asio compile in parallel.
int serve(const proxy_options& options);

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_OPTIONS_HPP
