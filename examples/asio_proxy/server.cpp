// The acceptor, the worker threads and the signals; see server.hpp.
#include "server.hpp"

#include <csignal>
#include <cstdio>

#include <boost/asio/post.hpp>

namespace grayroute_proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

worker::worker(const proxy_context& context) : context_(context), work_(asio::make_work_guard(io_)) {
  for (std::size_t route = 0; route < context.upstreams.size(); ++route) {
    pools_.push_back(std::make_unique<upstream_pool>(io_, context.upstreams[route], context.upstream_names[route],
                                                     context.options.upstream_keepalive,
                                                     context.options.upstream_idle_timeout));
  }
}

void worker::drain() {
  draining_ = true;
  for (auto& pool : pools_) pool->close_all();
  // drain() may close a session, which removes itself from the set.
  const std::vector<session*> live(sessions_.begin(), sessions_.end());
  for (session* s : live) s->drain();
  work_.reset();  // run() returns once the last connection is gone
}

server::server(const proxy_context& context, list_source& list) : context_(context), list_(list) {
  acceptor_.open(context.listen.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(context.listen);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.add(SIGHUP);
  for (unsigned i = 0; i < context.options.threads; ++i) workers_.push_back(std::make_unique<worker>(context));
}

void server::run() {
  for (auto& w : workers_) {
    ++running_workers_;
    threads_.emplace_back([this, &w] {
      w->io().run();
      asio::post(control_, [this] {
        if (--running_workers_ == 0) {
          shutdown_timer_.cancel();
          watch_timer_.cancel();
          signals_.cancel();
        }
      });
    });
  }
  accept();
  wait_for_signal();
  watch_list();
  control_.run();
  for (auto& t : threads_) t.join();
}

void server::accept() {
  acceptor_.async_accept(workers_[next_worker_]->io(), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping_) return;
    if (ec) {
      // Out of file descriptors or similar: say so and keep accepting.
      std::fprintf(stderr, "accept: %s\n", ec.message().c_str());
    } else {
      worker& w = *workers_[next_worker_];
      next_worker_ = (next_worker_ + 1) % workers_.size();
      asio::post(w.io(), [&w, s = std::move(socket)]() mutable { start_connection(w, std::move(s)); });
    }
    accept();
  });
}

void server::wait_for_signal() {
  signals_.async_wait([this](boost::system::error_code ec, int signal_number) {
    if (ec) return;
    if (signal_number == SIGHUP) {
      list_.reload("SIGHUP");
    } else {
      shut_down(signal_number);
    }
    wait_for_signal();
  });
}

void server::watch_list() {
  const auto interval = context_.options.watch_interval;
  if (!list_.watches_file() || interval.count() <= 0) return;
  watch_timer_.expires_after(interval);
  watch_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    if (list_.file_changed()) list_.reload("file changed");
    watch_list();
  });
}

void server::shut_down(int signal_number) {
  if (stopping_) {
    std::printf("second signal %d: stopping now\n", signal_number);
    std::fflush(stdout);
    for (auto& w : workers_) w->io().stop();
    return;
  }
  stopping_ = true;
  std::printf("signal %d: not accepting; finishing in-flight requests (at most %lld ms)\n", signal_number,
              static_cast<long long>(context_.options.shutdown_timeout.count()));
  std::fflush(stdout);
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  watch_timer_.cancel();
  for (auto& w : workers_) asio::post(w->io(), [&w] { w->drain(); });
  shutdown_timer_.expires_after(context_.options.shutdown_timeout);
  shutdown_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    std::printf("shutdown timeout: closing the connections still open\n");
    std::fflush(stdout);
    for (auto& w : workers_) w->io().stop();
  });
}

}  // namespace grayroute_proxy
