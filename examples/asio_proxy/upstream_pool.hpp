// Idle keep-alive connections to one upstream, owned by one worker thread (so no
// locks). The most recently used connection is handed out first: it is the one
// least likely to have been closed by the upstream meanwhile.
#ifndef GRAYROUTE_PROXY_UPSTREAM_POOL_HPP
#define GRAYROUTE_PROXY_UPSTREAM_POOL_HPP

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace grayroute_proxy {

// Sockets and streams bound to io_context's own executor rather than the type-erased
// any_io_executor (the default): every handler dispatch is cheaper, and each worker
// has exactly one io_context anyway.
using tcp_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;
using tcp_stream = boost::beast::basic_stream<boost::asio::ip::tcp, boost::asio::io_context::executor_type,
                                              boost::beast::unlimited_rate_policy>;

struct upstream_connection {
  explicit upstream_connection(boost::asio::io_context& context) : stream(context.get_executor()) {}

  tcp_stream stream;
  boost::beast::flat_buffer buffer;
  bool reused = false;
  std::chrono::steady_clock::time_point idle_since;
};

class upstream_pool {
 public:
  upstream_pool(boost::asio::io_context& context, boost::asio::ip::tcp::endpoint endpoint, std::size_t max_idle,
                std::chrono::milliseconds idle_timeout)
      : context_(context), endpoint_(endpoint), max_idle_(max_idle), idle_timeout_(idle_timeout) {}

  /// A live idle connection, or a fresh unconnected one (reused == false). Every reuse
  /// is checked first (one recv syscall): a connection that became readable while idle
  /// — data nobody asked for, or the upstream's EOF — is closed, never reused, so a
  /// late or extra response can never be read as the answer to the next request.
  std::unique_ptr<upstream_connection> take() {
    const auto now = std::chrono::steady_clock::now();
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      if (now - c->idle_since < idle_timeout_ && still_open(*c)) {
        c->reused = true;
        return c;
      }
    }
    return std::make_unique<upstream_connection>(context_);
  }

  /// Keeps a connection whose last response ended cleanly (RFC 9112 6.3: by its length,
  /// its last chunk, or no body at all) with nothing after it; closes it otherwise.
  void give_back(std::unique_ptr<upstream_connection> c) {
    if (closed_ || idle_.size() >= max_idle_ || c->buffer.size() != 0) return;
    c->stream.expires_never();
    c->idle_since = std::chrono::steady_clock::now();
    idle_.push_back(std::move(c));
  }

  void close_all() {
    closed_ = true;
    idle_.clear();
  }

  const boost::asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }

 private:
  // Idle means nothing to read: an upstream that closed reads as EOF, one that sent
  // more than its response is out of step. Either way it must not carry a request.
  static bool still_open(upstream_connection& c) {
    char byte;
    const auto n = ::recv(c.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  boost::asio::io_context& context_;
  boost::asio::ip::tcp::endpoint endpoint_;
  std::size_t max_idle_;
  std::chrono::milliseconds idle_timeout_;
  std::vector<std::unique_ptr<upstream_connection>> idle_;
  bool closed_ = false;
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_UPSTREAM_POOL_HPP
