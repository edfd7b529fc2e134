// Active health probes; see probes.hpp.
#include "probes.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <stdexcept>
#include <string_view>

#include <grayroute/health_syntax.hpp>

namespace grayroute_proxy {

namespace {

// The library's duration spelling (250ms, 10s, 2m) through its public parser, so a
// probe interval reads like every other duration of the health settings.
std::chrono::milliseconds duration_of(std::string_view value) {
  try {
    return grayroute::parse_health("cooldown=" + std::string(value)).cooldown;
  } catch (const grayroute::config_error&) {
    throw std::runtime_error("not a duration (250ms, 10s, 2m)");
  }
}

timeval timeval_of(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>(d.count() % 1000 * 1000)};
}

bool timed_out(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINPROGRESS || error == ETIMEDOUT; }

std::string authority_of(const boost::asio::ip::tcp::endpoint& e) {
  const std::string host = e.address().to_string();
  return (e.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(e.port());
}

}  // namespace

void set_probe_setting(probe_spec& spec, std::string_view name, std::string_view value) {
  auto fail = [](const char* why) { throw std::runtime_error(why); };
  if (value.empty()) fail("empty");
  if (name == "route") {
    spec.route_name = std::string(value);
  } else if (name == "path") {
    if (value.front() != '/') fail("a path starts with /");
    spec.path = std::string(value);
  } else if (name == "interval") {
    spec.interval = duration_of(value);
  } else if (name == "timeout") {
    spec.timeout = duration_of(value);
    spec.timeout_given = true;
  } else if (name == "expect") {
    if (value.size() != 3 || value < "100" || value > "599") fail("not a status 100-599");
    spec.expect = static_cast<unsigned>(std::stoul(std::string(value)));
  } else {
    fail("unknown setting (route, path, interval, expect, timeout)");
  }
}

void finish_probe(probe_spec& spec) {
  if (spec.route_name.empty()) throw std::runtime_error("route is required");
  if (!spec.timeout_given) spec.timeout = std::min(spec.interval, std::chrono::milliseconds(1000));
  spec.text = "route=" + spec.route_name + " path=" + spec.path + " interval=" + std::to_string(spec.interval.count()) +
              "ms expect=" + std::to_string(spec.expect) + " timeout=" + std::to_string(spec.timeout.count()) + "ms";
}

probe_spec parse_probe(const std::string& words) {
  probe_spec spec;
  spec.where = "--probe";
  std::string_view rest(words);
  while (!rest.empty()) {
    const std::size_t start = rest.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const std::string_view word = rest.substr(0, rest.find_first_of(" \t"));
    rest.remove_prefix(word.size());
    const std::size_t eq = word.find('=');
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : word.substr(eq + 1);
    try {
      if (value.empty()) throw std::runtime_error("not name=value");
      set_probe_setting(spec, word.substr(0, eq), value);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error("--probe: \"" + std::string(word) + "\": " + e.what());
    }
  }
  try {
    finish_probe(spec);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("--probe \"" + words + "\": " + e.what());
  }
  return spec;
}

probe_result probe_once(const boost::asio::ip::tcp::endpoint& upstream, const probe_spec& spec) {
  probe_result result;
  const int fd = ::socket(upstream.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return result;
  // Linux applies SO_SNDTIMEO to connect() too (EINPROGRESS when it expires).
  const timeval tv = timeval_of(spec.timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  auto finish = [&](grayroute::outcome o) {
    ::close(fd);
    result.outcome = o;
    return result;
  };
  if (::connect(fd, upstream.data(), static_cast<socklen_t>(upstream.size())) != 0) {
    return finish(timed_out(errno) ? grayroute::outcome::timeout : grayroute::outcome::connect_failure);
  }
  const std::string request = "GET " + spec.path + " HTTP/1.1\r\nHost: " + authority_of(upstream) +
                              "\r\nUser-Agent: grayroute-proxy-probe\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    return finish(timed_out(errno) ? grayroute::outcome::timeout : grayroute::outcome::connect_failure);
  }
  std::string line;
  char buffer[256];
  while (line.find("\r\n") == std::string::npos && line.size() < 1024) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0) return finish(timed_out(errno) ? grayroute::outcome::timeout : grayroute::outcome::connect_failure);
    if (n == 0) break;
    line.append(buffer, static_cast<std::size_t>(n));
  }
  // "HTTP/1.1 200 OK": a reset or an EOF before a status line is a connect failure, as
  // for live requests; anything else that is not the expected status is an error.
  if (line.empty()) return finish(grayroute::outcome::connect_failure);
  if (line.size() >= 12 && line.compare(0, 5, "HTTP/") == 0) {
    result.status = static_cast<unsigned>(std::strtoul(line.c_str() + 9, nullptr, 10));
  }
  return finish(result.status == spec.expect ? grayroute::outcome::success : grayroute::outcome::status_5xx);
}

prober::prober(std::shared_ptr<health_feed> health, std::vector<probe_spec> specs,
               std::vector<std::vector<boost::asio::ip::tcp::endpoint>> servers)
    : health_(std::move(health)), specs_(std::move(specs)), servers_(std::move(servers)) {
  for (const auto& spec : specs_) {
    if (spec.route >= servers_.size() || servers_[spec.route].empty()) {
      throw std::runtime_error(spec.where + ": probe route \"" + spec.route_name + "\" has no server");
    }
  }
  for (const auto& spec : specs_) threads_.emplace_back([this, &spec] { run(spec); });
}

prober::~prober() { stop(); }

void prober::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void prober::run(const probe_spec& spec) {
  const std::string& route = spec.route_name;
  const auto& servers = servers_[spec.route];
  std::size_t next_server = 0;
  bool last_ok = true;  // say so when a probe starts failing and when it passes again, not every time
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (wake_.wait_until(lock, next, [this] { return stopping_; })) return;
    }
    const auto started = std::chrono::steady_clock::now();
    const probe_result r = probe_once(servers[next_server++ % servers.size()], spec);
    const auto now = std::chrono::steady_clock::now();
    health_->record(spec.route, r.outcome, started, now);
    const bool ok = r.outcome == grayroute::outcome::success;
    health_->count_probe(spec.route, ok);
    if (ok != last_ok) {
      std::printf("probe %s GET %s: %s (%s, status %u, expected %u)\n", route.c_str(), spec.path.c_str(),
                  ok ? "passing again" : "failing", std::string(grayroute::to_string(r.outcome)).c_str(), r.status,
                  spec.expect);
      std::fflush(stdout);
      last_ok = ok;
    }
    next = started + spec.interval;
    if (next < now) next = now;
  }
}

}  // namespace grayroute_proxy
