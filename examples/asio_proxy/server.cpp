// The acceptor, the worker threads and the signals; see server.hpp.
#include "server.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

#include <memory>
#include <vector>

#include <boost/asio/post.hpp>

#include "health_feed.hpp"
#include "probes.hpp"

namespace grayroute_proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::string text_of(const tcp::endpoint& e) {
  return e.address().is_v6() ? "[" + e.address().to_string() + "]:" + std::to_string(e.port())
                             : e.address().to_string() + ":" + std::to_string(e.port());
}

}  // namespace

bool out_of_descriptors(const boost::system::error_code& ec) noexcept {
  const int code = ec.value();
  return ec.category() == boost::system::system_category() &&
         (code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM);
}

int serve(const proxy_options& o) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    live_policy live(o);
    const std::string listen_text = !o.listen.empty()             ? o.listen
                                    : !live.file_listen().empty() ? live.file_listen()
                                                                  : "127.0.0.1:8000";
    const tcp::endpoint listen =
        resolve_endpoint(o.listen.empty() && !live.file_listen().empty() ? live.file_listen_where() : "--listen", listen_text);
    access_log log(o.access_log);
    const decision_tier tier(live.consistency());                        // issue 13
    const proxy_protocol_gate gate(live.consistency().proxy_protocol_from);  // issue 13
    const proxy_context context{o, live, log, listen, tier, gate};
    server server(context, live);
    // #12: the probes of the policy in service; a reload starts those of the new one.
    std::unique_ptr<prober> probes;
    auto start_probes = [&probes](const std::shared_ptr<const policy_snapshot>& s) {
      if (probes) probes->stop();
      probes.reset();
      if (s->probes.empty()) return;
      std::vector<std::vector<tcp::endpoint>> servers;
      for (const auto& route : s->servers) {
        servers.emplace_back();
        for (const upstream_server& member : route) servers.back().push_back(member.endpoint);
      }
      probes = std::make_unique<prober>(s->health, s->probes, std::move(servers));
    };
    start_probes(live.load());
    live.on_reload(start_probes);

    std::printf("grayroute-proxy %s listening on http://%s (%u thread%s)\n", GRAYROUTE_VERSION_STRING,
                text_of(listen).c_str(), o.threads, o.threads == 1 ? "" : "s");
    std::printf("%s\n", live.describe().c_str());
    if (!o.routing_enabled) std::printf("  routing OFF: everything goes to the first route\n");
    std::printf("%s", tier.describe().c_str());
    if (gate.enabled()) std::printf("  PROXY protocol: required from %s, refused from others\n", gate.describe().c_str());
    std::printf("  health: http://%s/-/grayroute/health\n", text_of(listen).c_str());
    std::printf("  route health: %s\n", live.load()->health->describe().c_str());
    for (const auto& probe : live.load()->probes) std::printf("  probe: %s\n", probe.text.c_str());
    std::printf("  metrics: http://%s/-/grayroute/metrics\n", text_of(listen).c_str());
    server.run();
    live.on_reload({});
    if (probes) probes->stop();
    live.stop();
    std::printf("grayroute-proxy stopped\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grayroute-proxy: %s\n", e.what());
    return 1;
  }
  return 0;
}

worker::worker(const proxy_context& context) : context_(context), work_(asio::make_work_guard(io_)) {}

upstream_pool& worker::pool(const tcp::endpoint& server) {
  auto& pool = pools_[server];
  if (!pool) {
    pool = std::make_unique<upstream_pool>(io_, server, context_.options.upstream_keepalive,
                                           context_.options.upstream_idle_timeout);
    if (draining_) pool->close_all();
  }
  return *pool;
}

void worker::drain() {
  draining_ = true;
  for (auto& [server, pool] : pools_) pool->close_all();
  // drain() may close a session, which removes itself from the set.
  const std::vector<session*> live(sessions_.begin(), sessions_.end());
  for (session* s : live) s->drain();
  work_.reset();  // run() returns once the last connection is gone
}

server::server(const proxy_context& context, live_policy& live) : context_(context), live_(live) {
  reserve_.fill(-1);
  acceptor_.open(context.listen.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(context.listen);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.add(SIGHUP);
  for (unsigned i = 0; i < context.options.threads; ++i) workers_.push_back(std::make_unique<worker>(context));
  take_reserve();
}

server::~server() { release_reserve(); }

// /dev/null is only something to hold a descriptor with. Failing for any reason other
// than a full table (no /dev/null in a chroot) means running without a reserve.
// Returns the error of a full table (EMFILE, ENFILE), else none.
boost::system::error_code server::take_reserve() {
  for (int& fd : reserve_) {
    if (fd >= 0) continue;
    fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      release_reserve();
      if (error == EMFILE || error == ENFILE) return {error, boost::system::system_category()};
      return {};
    }
  }
  return {};
}

void server::release_reserve() noexcept {
  for (int& fd : reserve_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
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
  watch_files();
  control_.run();
  for (auto& t : threads_) t.join();
}

void server::accept() {
  acceptor_.async_accept(workers_[next_worker_]->io(), [this](boost::system::error_code ec, tcp_socket socket) {
    if (ec == asio::error::operation_aborted || stopping_) return;
    if (ec) {
      // Out of file descriptors (or memory): accepting again at once fails again at
      // once. As nginx does, stop accepting for a while; the connections already open
      // go on being served. Other errors (ECONNABORTED...) concern one connection:
      // accept the next at once.
      if (out_of_descriptors(ec)) return pause_accepting(ec);
      report_accept_failure(ec, false);
      return accept();
    }
    worker& w = *workers_[next_worker_];
    next_worker_ = (next_worker_ + 1) % workers_.size();
    asio::post(w.io(), [&w, s = std::move(socket)]() mutable { start_connection(w, std::move(s)); });
    accept();
  });
}

// The reserve goes first, so that while accepting is paused the connections already
// open have descriptors to spare. Accepting resumes only once the reserve is held
// again: until then the table is still full, and accepting would take what is left.
// (Linux's accept() takes a descriptor before it looks at the queue, so the attempt
// right after the connection that took the last one fails at once, queue empty or not.)
void server::pause_accepting(const boost::system::error_code& why) {
  release_reserve();
  report_accept_failure(why, true);
  accept_timer_.expires_after(kAcceptPause);
  accept_timer_.async_wait([this](boost::system::error_code e) {
    if (e || stopping_) return;
    if (const auto full = take_reserve()) return pause_accepting(full);
    accept();
  });
}

// At most one line a second, with the count of failures since the last one.
void server::report_accept_failure(const boost::system::error_code& ec, bool pausing) {
  ++accept_failures_;
  const auto now = std::chrono::steady_clock::now();
  if (now - accept_logged_ < std::chrono::seconds(1)) return;
  std::fprintf(stderr, "accept: %s (%llu failure%s since the last report)%s\n", ec.message().c_str(),
               static_cast<unsigned long long>(accept_failures_), accept_failures_ == 1 ? "" : "s",
               pausing ? "; pausing accepting for 500 ms" : "");
  accept_failures_ = 0;
  accept_logged_ = now;
}

void server::wait_for_signal() {
  signals_.async_wait([this](boost::system::error_code ec, int signal_number) {
    if (ec) return;
    if (signal_number == SIGHUP) {
      live_.reload("SIGHUP");
    } else {
      shut_down(signal_number);
    }
    wait_for_signal();
  });
}

void server::watch_files() {
  const auto interval = context_.options.watch_interval;
  if (!live_.watches_files() || interval.count() <= 0) return;
  watch_timer_.expires_after(interval);
  watch_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    live_.poll();
    watch_files();
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
