// The acceptor, the worker threads and the signals; see server.hpp.
#include "server.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

#include <boost/asio/post.hpp>

#include "health_feed.hpp"
#include "probes.hpp"

namespace grayroute_proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// "127.0.0.1:8000", "[::1]:8000" or "localhost:8000" -> an endpoint; throws naming the flag.
tcp::endpoint endpoint_of(const std::string& flag, const std::string& text) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close != std::string::npos) {
      host = text.substr(1, close - 1);
      port = text.substr(close + 2);
    }
  } else if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty()) throw std::runtime_error(flag + ": \"" + text + "\" is not host:port");
  asio::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  const auto results = resolver.resolve(host, port, tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) throw std::runtime_error(flag + ": cannot resolve \"" + text + "\": " + ec.message());
  return results.begin()->endpoint();
}

std::string text_of(const tcp::endpoint& e) {
  return e.address().is_v6() ? "[" + e.address().to_string() + "]:" + std::to_string(e.port())
                             : e.address().to_string() + ":" + std::to_string(e.port());
}

}  // namespace

int serve(const proxy_options& o) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    const tcp::endpoint listen = endpoint_of("--listen", o.listen);
    const tcp::endpoint production = endpoint_of("--production", o.production);
    const tcp::endpoint gray = endpoint_of("--gray", o.gray);
    list_source list(o);
    const proxy_router router(list, o.routing);
    access_log log(o.access_log);
    health_feed health(router.routes(), o.health, o.fallback_route);
    std::vector<probe_spec> probes;
    for (const auto& words : o.probes) probes.push_back(parse_probe(words, health.routes()));
    const proxy_context context{
        o, router, list, log, listen, {production, gray}, {text_of(production), text_of(gray)}, &health};
    server server(context, list);
    prober prober(health, std::move(probes), {production, gray});

    std::printf("grayroute-proxy %s listening on http://%s (%u thread%s)\n", GRAYROUTE_VERSION_STRING,
                text_of(listen).c_str(), o.threads, o.threads == 1 ? "" : "s");
    std::printf("  production -> %s, gray -> %s\n", context.upstream_names[0].c_str(), context.upstream_names[1].c_str());
    std::printf("  gray list: %s\n", list.describe().c_str());
    std::printf("  client IP: ");
    if (o.routing.client_ip.trusted_proxies.empty()) {
      std::printf("the TCP peer (no --trusted-proxy)\n");
    } else {
      std::string headers;
      for (const auto& h : o.routing.client_ip.headers) headers += (headers.empty() ? "" : ", ") + h;
      std::string trusted;
      for (const auto& t : o.routing.client_ip.trusted_proxies) trusted += (trusted.empty() ? "" : ", ") + t;
      std::printf("%s from trusted proxies %s, else the TCP peer\n", headers.c_str(), trusted.c_str());
    }
    if (o.routing.percent > 0) std::printf("  percentage: %.2f%% of clients to gray\n", o.routing.percent);
    if (!o.routing.force_header.empty()) std::printf("  force header: %s\n", o.routing.force_header.c_str());
    if (!o.routing.force_cookie.empty()) std::printf("  force cookie: %s\n", o.routing.force_cookie.c_str());
    if (!o.routing_enabled) std::printf("  routing OFF: everything goes to production\n");
    std::printf("  health: http://%s/-/grayroute/health\n", text_of(listen).c_str());
    std::printf("  route health: %s\n", health.describe().c_str());
    for (const auto& words : o.probes) std::printf("  probe: %s\n", words.c_str());
    std::printf("  metrics: http://%s/-/grayroute/metrics\n", text_of(listen).c_str());
    server.run();
    prober.stop();
    list.stop();
    std::printf("grayroute-proxy stopped\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grayroute-proxy: %s\n", e.what());
    return 1;
  }
  return 0;
}

worker::worker(const proxy_context& context) : context_(context), work_(asio::make_work_guard(io_)) {
  for (std::size_t route = 0; route < context.upstreams.size(); ++route) {
    pools_.push_back(std::make_unique<upstream_pool>(io_, context.upstreams[route], context.options.upstream_keepalive,
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
          accept_timer_.cancel();
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
  acceptor_.async_accept(workers_[next_worker_]->io(), [this](boost::system::error_code ec, tcp_socket socket) {
    if (ec == asio::error::operation_aborted || stopping_) return;
    if (ec) {
      // Out of file descriptors (or memory): accepting again at once fails again at
      // once. As nginx does, stop accepting for kAcceptPause — the connections already
      // open go on being served — and say so at most once a second, with a count.
      // Other errors (ECONNABORTED...) concern one connection: accept the next at once.
      const int code = ec.value();
      const bool out_of_resources = ec.category() == boost::system::system_category() &&
                                    (code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM);
      ++accept_failures_;
      const auto now = std::chrono::steady_clock::now();
      if (now - accept_logged_ >= std::chrono::seconds(1)) {
        std::fprintf(stderr, "accept: %s (%llu failure%s since the last report)%s\n", ec.message().c_str(),
                     static_cast<unsigned long long>(accept_failures_), accept_failures_ == 1 ? "" : "s",
                     out_of_resources ? "; pausing accepting for 500 ms" : "");
        accept_failures_ = 0;
        accept_logged_ = now;
      }
      if (!out_of_resources) return accept();
      accept_timer_.expires_after(kAcceptPause);
      accept_timer_.async_wait([this](boost::system::error_code e) {
        if (!e && !stopping_) accept();
      });
      return;
    }
    worker& w = *workers_[next_worker_];
    next_worker_ = (next_worker_ + 1) % workers_.size();
    asio::post(w.io(), [&w, s = std::move(socket)]() mutable { start_connection(w, std::move(s)); });
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
    list_.poll();
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
  accept_timer_.cancel();
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
