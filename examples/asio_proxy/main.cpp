// grayroute-proxy: an HTTP/1.1 reverse proxy that sends each request to one of its
// routes by a grayroute policy: a TOML policy file, or the flags as its shorthand.
//
//   grayroute-proxy --config policy.toml
//   grayroute-proxy --listen 127.0.0.1:8000 --production 127.0.0.1:8080 --gray 127.0.0.1:8090
//                   --gray-list-file gray.txt --trusted-proxy 10.0.0.0/8
#include <cstdio>
#include <algorithm>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include <grayroute/version.hpp>

#include "options.hpp"

int main(int argc, char** argv) {
  grayroute_proxy::proxy_options o;
  o.threads = std::max(1u, std::thread::hardware_concurrency());
  long long connect_ms = o.connect_timeout.count(), upstream_ms = o.upstream_timeout.count(),
            client_ms = o.client_timeout.count(), keepalive_ms = o.keepalive_timeout.count(),
            shutdown_ms = o.shutdown_timeout.count(), watch_ms = o.watch_interval.count();
  bool no_route_header = false, no_routing = false;

  CLI::App app{"grayroute-proxy " GRAYROUTE_VERSION_STRING
               ": an HTTP/1.1 reverse proxy that routes each request by a grayroute policy"};
  app.get_formatter()->column_width(34);
  auto* config = app.add_option("--config", o.config_file,
                                "TOML policy file: routes and servers, lists, rules (examples/asio_proxy/README.md); "
                                "reloaded on SIGHUP or change. Replaces the routing flags below");
  app.add_option("--listen", o.listen, "Address:port to serve on (default: the policy file's listen, else 127.0.0.1:8000)");
  app.add_option("--production", o.production, "Upstream for everyone else (route \"production\")")->capture_default_str();
  app.add_option("--gray", o.gray, "Upstream for gray-listed clients (route \"gray\")")->capture_default_str();
  app.add_option("--gray-list", o.gray_list, "Address or CIDR on the gray route; repeat or list several");
  app.add_option("--gray-list-file", o.gray_list_file,
                 "File with one address/CIDR per line, '#' comments; reloaded on SIGHUP or change, a bad "
                 "file is rejected with its line number and the old list kept");
  app.add_option("--watch-interval", watch_ms, "How often (ms) to check the policy and list files for changes; 0: SIGHUP only")
      ->capture_default_str();
  app.add_option("--trusted-proxy", o.routing.client_ip.trusted_proxies,
                 "Peer (CIDR) whose client-IP headers are believed; repeat. None: only the TCP peer counts");
  app.add_option("--client-ip-headers", o.routing.client_ip.headers,
                 "Headers naming the client, in order of preference (read only from trusted proxies)")
      ->capture_default_str();
  app.add_option("--percent", o.routing.percent, "Also send this percentage (0..100, step 0.01) of clients to gray")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--percent-key", o.routing.percent_key_header,
                 "Header whose value makes the percentage sticky (e.g. X-User-Id); default: client IP");
  app.add_option("--percent-cookie", o.routing.percent_key_cookie, "Cookie used as the percentage key when the header is absent");
  app.add_option("--percent-seed", o.routing.percent_seed, "Seed: another value picks another set of clients");
  app.add_option("--force-header", o.routing.force_header,
                 "Header that forces a route: \"always\" (gray), \"never\" (production) or a route name");
  app.add_option("--force-cookie", o.routing.force_cookie, "Cookie that forces a route, same values as --force-header");
  app.add_flag("--no-route-header", no_route_header, "Do not add \"X-Grayroute: <route>; reason=<why>\" to responses");
  app.add_flag("--no-routing", no_routing, "Send everything to the first route without asking the policy (benchmark baseline)");
  app.add_option("--redis", o.redis.address, "Also read the list from Redis at host:port, [v6]:port or unix:/path");
  app.add_option("--redis-password", o.redis.password, "Redis password (or env GRAYROUTE_REDIS_PASSWORD); never logged")
      ->envname("GRAYROUTE_REDIS_PASSWORD");
  app.add_option("--redis-user", o.redis.user, "Redis ACL user");
  app.add_option("--redis-db", o.redis.database, "Redis database number")->capture_default_str();
  app.add_option("--redis-schema", o.redis.schema,
                 "seed: the seed's `SET ip ip` keys; set: members of --redis-key; hash: --redis-key field=route")
      ->check(CLI::IsMember({"seed", "set", "hash"}))
      ->capture_default_str();
  app.add_option("--redis-key", o.redis.key, "The SET or HASH for the set and hash schemas")->capture_default_str();
  app.add_option("--threads", o.threads, "Worker threads, each with its own event loop and upstream pools")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  app.add_option("--upstream-keepalive", o.upstream_keepalive, "Idle upstream connections kept per upstream and thread")
      ->capture_default_str();
  app.add_option("--connect-timeout", connect_ms, "Upstream connect timeout, ms (then 502)")->capture_default_str();
  app.add_option("--upstream-timeout", upstream_ms, "Upstream silent this long (ms): 504, or the response is cut")
      ->capture_default_str();
  app.add_option("--client-timeout", client_ms, "Client silent this long mid-request (ms): connection closed")
      ->capture_default_str();
  app.add_option("--keepalive-timeout", keepalive_ms, "Idle client keep-alive connections close after (ms)")
      ->capture_default_str();
  app.add_option("--shutdown-timeout", shutdown_ms, "On SIGINT/SIGTERM, wait this long (ms) for in-flight requests")
      ->capture_default_str();
  app.add_option("--access-log", o.access_log, "One line per request: a file, - (stdout) or off")->capture_default_str();
  // Issue 13: decision tokens, pinning, a ramp, the PROXY protocol (consistency_options.hpp).
  auto& c = o.consistency;
  app.add_option("--decision-key-file", c.decision_key_files,
                 "Key file(s) for decision tokens: one (signing key [+ previous]) or two (signing, previous)");
  app.add_option("--decision-header", c.decision_header, "Header carrying the decision token")->capture_default_str();
  app.add_option("--decision-ttl", c.decision_ttl, "Seconds a token this tier signs stays good")->capture_default_str();
  app.add_option("--policy-version", c.policy_version, "Policy version written into the tokens");
  app.add_option("--pin-cookie", c.pin_cookie,
                 "Pin anonymous users: \"name=gr_uid [max_age=S] [domain=D] [path=/] [secure] [httponly=off] [samesite=lax]\"");
  app.add_option("--percent-schedule", c.percent_schedule,
                 "Ramp instead of --percent: \"2026-12-01T10:00:00Z 1%, +1h 5%, +1h 25%, +2h 100%\"");
  app.add_option("--percent-ramp", c.percent_ramp, "steps or linear between schedule steps")->capture_default_str();
  app.add_option("--proxy-protocol-from", c.proxy_protocol_from,
                 "Balancer network (CIDR) whose connections must start with a PROXY v1/v2 header; repeat");
  app.add_option("--health", o.health,
                 "Route health: \"off\", or words over the defaults, e.g. \"error_ratio=50% min_requests=20 window=10s "
                 "connect_failures=3 cooldown=10s probe=10% probe_successes=5 relative_margin=0\"")
      ->capture_default_str();
  app.add_option("--fallback-route", o.fallback_route, "Route a failing route falls back to (default: the first route)");
  app.add_option("--probe", o.probes, "Active probe, repeatable: \"route=gray path=/healthz interval=1s expect=200\"");
  for (const char* routing : {"--production", "--gray", "--gray-list", "--gray-list-file", "--trusted-proxy",
                              "--client-ip-headers", "--percent", "--percent-key", "--percent-cookie", "--percent-seed",
                              "--force-header", "--force-cookie", "--redis", "--redis-user",
                              "--redis-db", "--redis-schema", "--redis-key",
                              "--decision-key-file", "--decision-header", "--decision-ttl", "--policy-version",
                              "--pin-cookie", "--percent-schedule", "--percent-ramp", "--proxy-protocol-from",
                              "--health", "--fallback-route", "--probe"}) {
    app.get_option(routing)->excludes(config);
  }
  CLI11_PARSE(app, argc, argv);

  o.route_header = !no_route_header;
  o.routing_enabled = !no_routing;
  o.connect_timeout = std::chrono::milliseconds(connect_ms);
  o.upstream_timeout = std::chrono::milliseconds(upstream_ms);
  o.client_timeout = std::chrono::milliseconds(client_ms);
  o.keepalive_timeout = std::chrono::milliseconds(keepalive_ms);
  o.shutdown_timeout = std::chrono::milliseconds(shutdown_ms);
  o.watch_interval = std::chrono::milliseconds(watch_ms);

  return grayroute_proxy::serve(o);
}
