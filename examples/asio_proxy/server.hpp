// The server: one acceptor, N worker threads each with its own io_context and its
// own upstream pools, and a signal_set for SIGINT/SIGTERM (drain, then stop) and
// SIGHUP (reload the policy).
#ifndef GRAYROUTE_PROXY_SERVER_HPP
#define GRAYROUTE_PROXY_SERVER_HPP

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "access_log.hpp"
#include "decision_tier.hpp"
#include "live_policy.hpp"
#include "options.hpp"
#include "proxy_protocol_accept.hpp"
#include "upstream_pool.hpp"

namespace grayroute_proxy {

/// What every connection reads; the policy inside `live` is swapped whole on reload.
struct proxy_context {
  const proxy_options& options;
  const live_policy& live;
  access_log& log;
  boost::asio::ip::tcp::endpoint listen;
  const decision_tier& tier;                  // tokens, pinning (issue 13)
  const proxy_protocol_gate& proxy_protocol;  // PROXY protocol on the listener (issue 13)
};

/// A client connection as the worker sees it: something to tell "finish and close".
class session {
 public:
  virtual ~session() = default;
  virtual void drain() noexcept = 0;
};

/// One thread's io_context, its upstream pools and its live client connections.
class worker {
 public:
  explicit worker(const proxy_context& context);

  boost::asio::io_context& io() { return io_; }
  const proxy_context& context() const { return context_; }
  /// This thread's pool for `server` (made on first use: a reload may add servers).
  upstream_pool& pool(const boost::asio::ip::tcp::endpoint& server);
  /// Round robin over a route's `count` servers, per thread.
  std::size_t next_server(grayroute::route_id route, std::size_t count) {
    if (count <= 1) return 0;
    if (route >= next_server_.size()) next_server_.resize(route + 1u, 0);
    return next_server_[route]++ % count;
  }
  bool draining() const { return draining_; }

  void add(session* s) { sessions_.insert(s); }
  void remove(session* s) { sessions_.erase(s); }

  /// On the worker thread: no new requests; idle connections close, busy ones after their response.
  void drain();

 private:
  const proxy_context& context_;
  // Declared before io_ so it outlives it: after a shutdown timeout, destroying io_
  // destroys the handlers still holding connections, and each one removes itself here.
  std::unordered_set<session*> sessions_;
  bool draining_ = false;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::map<boost::asio::ip::tcp::endpoint, std::unique_ptr<upstream_pool>> pools_;
  std::vector<std::size_t> next_server_;  // by route_id
};

/// Starts serving a new client socket on `w` (defined in connection.cpp).
void start_connection(worker& w, tcp_socket socket);

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: the process (or the system) has no descriptor or
/// buffer to spare, which says nothing about the peer.
bool out_of_descriptors(const boost::system::error_code& ec) noexcept;

class server {
 public:
  /// How long accepting stops after accept() fails (EMFILE...), as nginx's 500 ms.
  static constexpr std::chrono::milliseconds kAcceptPause{500};
  /// Descriptors held while accepting and let go when accept() runs out: accepting
  /// alone would fill the table, leaving the connections already open none for a new
  /// upstream socket, a list-file reload or a Redis reconnect.
  static constexpr std::size_t kReserveDescriptors = 8;

  /// Binds the listening socket (throws on failure).
  server(const proxy_context& context, live_policy& live);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Serves until SIGINT/SIGTERM and the drain are over.
  void run();

 private:
  void accept();
  void pause_accepting(const boost::system::error_code& why);
  void report_accept_failure(const boost::system::error_code& ec, bool pausing);
  boost::system::error_code take_reserve();
  void release_reserve() noexcept;
  void wait_for_signal();
  void watch_files();
  void shut_down(int signal_number);

  const proxy_context& context_;
  live_policy& live_;
  boost::asio::io_context control_{1};
  boost::asio::ip::tcp::acceptor acceptor_{control_};
  boost::asio::signal_set signals_{control_};
  boost::asio::steady_timer watch_timer_{control_};
  boost::asio::steady_timer shutdown_timer_{control_};
  boost::asio::steady_timer accept_timer_{control_};  // the pause after a failed accept
  std::chrono::steady_clock::time_point accept_logged_;
  std::uint64_t accept_failures_ = 0;
  std::array<int, kReserveDescriptors> reserve_;  // -1: not held
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::thread> threads_;
  std::size_t next_worker_ = 0, running_workers_ = 0;
  bool stopping_ = false;
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_SERVER_HPP
