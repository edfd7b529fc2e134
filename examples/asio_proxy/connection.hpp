// One client connection: read a request header, check and rewrite it (forwarding.hpp),
// relay it to a pooled upstream connection and the response back (relay.hpp), then the
// next request. After a 101 the two sockets are tunnelled until either side closes.
//
// The steps are a stackless coroutine (asio::coroutine): each BOOST_ASIO_CORO_YIELD
// starts one async operation and resumes in loop(). The session only sequences I/O;
// every decision about a header is made by the pure functions of forwarding.hpp.
#ifndef GRAYROUTE_PROXY_CONNECTION_HPP
#define GRAYROUTE_PROXY_CONNECTION_HPP

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/coroutine.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>

#include <grayroute/route_health.hpp>

#include "forwarding.hpp"
#include "relay.hpp"
#include "server.hpp"

namespace grayroute_proxy {

class connection : public session, public std::enable_shared_from_this<connection>, boost::asio::coroutine {
 public:
  connection(worker& w, tcp_socket socket);
  ~connection() override;

  void start();
  void drain() noexcept override;

 private:
  enum class failure { none, client, client_bad_body, connect, out_of_descriptors, upstream, upstream_cut, timeout };

  void loop(boost::beast::error_code ec = {}, std::size_t = 0);
  void read_preface();
  void tunnel_read(bool downstream);
  void tunnel_write(bool downstream);
  void tunnel_watch();
  void tunnel_end();
  bool skip_leading_empty_lines();
  bool accept_request();
  bool is_health_request() const;
  bool is_metrics_request() const;
  bool replayable() const;
  void report(grayroute::outcome o);  // #12: this attempt's outcome into the route's health
  bool fall_back();                   // #12: switch to the fallback route for one more attempt
  void set_local_response(http::status status, std::string body, const char* content_type = "text/plain");
  void set_error_response();
  void log_request(const char* reason, const char* error = nullptr);
  grayroute::route_id route() const noexcept { return decision_.route; }
  std::string_view route_name() const noexcept { return snapshot_->policy.route_name(route()); }
  std::string route_label() const;
  void decide();
  void pick_server();

  worker& worker_;
  const proxy_context& context_;
  const proxy_options& options_;
  tcp_stream client_;
  boost::beast::flat_buffer client_buffer_;
  grayroute::ip_address peer_;
  std::string peer_text_;

  std::optional<http::request_parser<http::buffer_body>> request_;
  std::optional<http::request_serializer<http::buffer_body>> request_writer_;
  std::optional<http::response_parser<http::buffer_body>> response_;
  std::optional<http::response_serializer<http::buffer_body>> response_writer_;
  http::response<http::string_body> local_;
  std::unique_ptr<upstream_connection> upstream_;
  relay_chunk chunk_;
  relay_side failed_side_ = relay_side::none;

  // The policy this request is decided and sent with (the rule name in decision_ points
  // into it), its upstream server, and that server's pool on this thread.
  std::shared_ptr<const policy_snapshot> snapshot_;
  const upstream_server* server_ = nullptr;
  upstream_pool* pool_ = nullptr;
  grayroute::decision decision_;
  tier_request tier_;  // issue 13: the token that came, the key or pin of this request
  request_framing framing_;
  request_plan plan_;
  response_plan answer_;
  std::chrono::steady_clock::time_point started_;
  failure failure_ = failure::none;
  boost::beast::error_code error_;  // why the upstream failed, for the 502 body and the log
  const char* rejected_ = nullptr;  // why the request was refused, for the 400 body and the log
  int attempt_ = 0;
  std::chrono::steady_clock::time_point attempt_started_;  // #12: an attempt's latency
  bool fell_back_ = false;
  unsigned status_ = 0;
  unsigned client_version_ = 11;  // before plan_request makes it 1.1 for the upstream
  std::size_t skipped_empty_lines_ = 0;
  std::optional<boost::asio::steady_timer> tunnel_timer_;
  std::chrono::steady_clock::time_point tunnel_active_;
  std::uint64_t tunnel_bytes_[2] = {0, 0};  // client->upstream, upstream->client
  bool tunnel_over_ = false;
  bool keep_alive_ = false;
  bool first_request_ = true, idle_ = false, draining_ = false;
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_CONNECTION_HPP
