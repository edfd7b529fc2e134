// Active health probes: `GET <path>` to a route's upstream every interval, the result
// recorded into the route's health like a live request's outcome. They are what closes
// an open breaker when no live traffic reaches the route (health_feed.hpp).
//
//   --probe "route=gray path=/healthz interval=1s expect=200 timeout=1s"
//
// One thread per probe, blocking sockets with timeouts: a probe is a few syscalls a
// second, far from the request path, and a stuck upstream stalls only its own probe.
#ifndef GRAYROUTE_PROXY_PROBES_HPP
#define GRAYROUTE_PROXY_PROBES_HPP

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include <grayroute/decision.hpp>
#include <grayroute/route_health.hpp>

#include "health_feed.hpp"

namespace grayroute_proxy {

/// One --probe flag, parsed.
struct probe_spec {
  grayroute::route_id route = grayroute::kGray;
  std::string path = "/";
  std::chrono::milliseconds interval{1000};
  unsigned expect = 200;
  std::chrono::milliseconds timeout{1000};  // connect, send and the status line each; default min(interval, 1 s)
};

/// "route=gray path=/healthz interval=1s expect=200 timeout=500ms" (route required, the
/// rest optional, any order); throws std::runtime_error naming the word.
probe_spec parse_probe(const std::string& words, const grayroute::route_table& routes);

/// What one probe saw: the outcome to record, and the status line's code (0: none).
struct probe_result {
  grayroute::outcome outcome = grayroute::outcome::connect_failure;
  unsigned status = 0;
};

/// One probe now, blocking at most about 3 x spec.timeout.
probe_result probe_once(const boost::asio::ip::tcp::endpoint& upstream, const probe_spec& spec);

class prober {
 public:
  /// `upstreams`: by route id. Starts one thread per spec.
  prober(health_feed& health, std::vector<probe_spec> specs, std::vector<boost::asio::ip::tcp::endpoint> upstreams);
  ~prober();
  prober(const prober&) = delete;
  prober& operator=(const prober&) = delete;

  /// Stops the threads (a probe in progress finishes first); idempotent.
  void stop();

 private:
  void run(const probe_spec& spec);

  health_feed& health_;
  std::vector<probe_spec> specs_;
  std::vector<boost::asio::ip::tcp::endpoint> upstreams_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_PROBES_HPP
