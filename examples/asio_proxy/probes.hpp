// Active health probes: `GET <path>` to a route's upstream every interval, the result
// recorded into the route's health like a live request's outcome. They are what closes
// an open breaker when no live traffic reaches the route (health_feed.hpp).
//
//   --probe "route=gray path=/healthz interval=1s expect=200 timeout=1s"
//   [[probes]] route = "gray"  path = "/healthz"  interval = "1s"  expect = 200  (policy file)
//
// One thread per probe, blocking sockets with timeouts: a probe is a few syscalls a
// second, far from the request path, and a stuck upstream stalls only its own probe.
#ifndef GRAYROUTE_PROXY_PROBES_HPP
#define GRAYROUTE_PROXY_PROBES_HPP

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include <grayroute/decision.hpp>
#include <grayroute/route_health.hpp>

#include "health_feed.hpp"

namespace grayroute_proxy {

/// One probe: a --probe flag or a [[probes]] table of the policy file.
struct probe_spec {
  std::string route_name;                       // resolved to `route` by live_policy
  grayroute::route_id route = grayroute::kGray;
  std::string path = "/";
  std::chrono::milliseconds interval{1000};
  unsigned expect = 200;
  std::chrono::milliseconds timeout{1000};  // connect, send and the status line each; default min(interval, 1 s)
  bool timeout_given = false;
  std::string where;  // "--probe" or "policy.toml:30:1": for errors naming the route
  std::string text;   // for the start-up log
};

/// Sets one setting (route, path, interval, expect, timeout); throws std::runtime_error
/// naming what is wrong with `value` (the caller adds the flag or the file place).
void set_probe_setting(probe_spec& spec, std::string_view name, std::string_view value);
/// After the settings: route given, the default timeout; throws std::runtime_error.
void finish_probe(probe_spec& spec);

/// "route=gray path=/healthz interval=1s expect=200 timeout=500ms" (route required, the
/// rest optional, any order); throws std::runtime_error naming the word.
probe_spec parse_probe(const std::string& words);

/// What one probe saw: the outcome to record, and the status line's code (0: none).
struct probe_result {
  grayroute::outcome outcome = grayroute::outcome::connect_failure;
  unsigned status = 0;
};

/// One probe now, blocking at most about 3 x spec.timeout.
probe_result probe_once(const boost::asio::ip::tcp::endpoint& upstream, const probe_spec& spec);

class prober {
 public:
  /// `servers`: by route id (a probe goes round robin over its route's). Starts one
  /// thread per spec; the threads share `health`, which outlives a reload's policy.
  prober(std::shared_ptr<health_feed> health, std::vector<probe_spec> specs,
         std::vector<std::vector<boost::asio::ip::tcp::endpoint>> servers);
  ~prober();
  prober(const prober&) = delete;
  prober& operator=(const prober&) = delete;

  /// Stops the threads (a probe in progress finishes first); idempotent.
  void stop();

 private:
  void run(const probe_spec& spec);

  std::shared_ptr<health_feed> health_;
  std::vector<probe_spec> specs_;
  std::vector<std::vector<boost::asio::ip::tcp::endpoint>> servers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_PROBES_HPP
