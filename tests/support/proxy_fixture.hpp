// Test support for grayroute-proxy: the proxy and its two backends as real processes
// on loopback, and a small keep-alive HTTP client that can send any bytes.
//
//   grayroute::test::temp_dir dir;
//   grayroute::test::proxy_setup s(dir, {"--gray-list", "10.1.0.0/16"});
//   auto r = grayroute::test::http_get(s.port(), "/", {{"X-Forwarded-For", "10.1.2.3"}});
//   grayroute::test::header(r.headers, "X-Backend");   // "gray"
#ifndef GRAYROUTE_TESTS_SUPPORT_PROXY_FIXTURE_HPP
#define GRAYROUTE_TESTS_SUPPORT_PROXY_FIXTURE_HPP

#include <strings.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "process.hpp"

namespace grayroute::test {

/// The value of header `name` in a raw header block ("" when absent), case-insensitive.
inline std::string header(const std::string& headers, const std::string& name) {
  std::size_t pos = 0;
  while (pos < headers.size()) {
    std::size_t end = headers.find("\r\n", pos);
    if (end == std::string::npos) end = headers.size();
    const std::string line = headers.substr(pos, end - pos);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        ::strncasecmp(line.c_str(), name.c_str(), name.size()) == 0) {
      std::size_t v = name.size() + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      return line.substr(v);
    }
    pos = end + 2;
  }
  return "";
}

/// Resident and peak memory of a process, in KiB (VmRSS / VmHWM).
inline long memory_kib(pid_t pid, const char* field = "VmRSS") { return proc_status_field(pid, field); }

/// Starts `launch(port)` until the process it starts listens on the port itself (a port
/// that merely answers may be another test's server, which took it after free_port());
/// when `may_move`, a port found taken is picked again (3 tries). `port` ends as used.
template <class Launch>
process start_owning_port(int& port, bool may_move, const char* what, Launch launch) {
  for (int attempt = 1;; ++attempt) {
    process p = launch(port);
    eventually([&] { return listens_on(p.pid(), port) || !p.running(); }, std::chrono::seconds(10));
    if (listens_on(p.pid(), port)) return p;
    const std::string said = p.log();
    p.stop();
    if (!may_move || attempt == 3 || port_open(port) == false) {
      throw std::runtime_error(std::string(what) + " did not start: " + said);
    }
    port = free_port();
  }
}

/// grayroute-backend: answers with its name; see examples/asio_proxy/backend.cpp.
class backend {
 public:
  /// `args`: more flags (`--status 500`).
  backend(const temp_dir& dir, const std::string& name, int port = 0, const std::vector<std::string>& args = {})
      : port_(port ? port : free_port()) {
    process_ = start_owning_port(port_, !port, "grayroute-backend", [&](int p) {
      std::vector<std::string> argv = {GRAYROUTE_BACKEND_BIN, "--name", name, "--listen", "127.0.0.1:" + std::to_string(p)};
      argv.insert(argv.end(), args.begin(), args.end());
      return process(argv, dir.file(name + "-" + std::to_string(p) + ".log"));
    });
  }
  int port() const { return port_; }
  void stop() { process_.stop(); }
  /// Its output: "delaying <target>" when a ?delay= request has arrived.
  std::string log() const { return process_.log(); }

 private:
  int port_;
  process process_;
};

/// grayroute-proxy on a free port, in front of `production_port` and `gray_port`.
class proxy {
 public:
  proxy(const temp_dir& dir, int production_port, int gray_port, const std::vector<std::string>& args)
      : port_(free_port()) {
    process_ = start_owning_port(port_, true, "grayroute-proxy", [&](int p) {
      std::vector<std::string> argv = {GRAYROUTE_PROXY_BIN,
                                       "--listen", "127.0.0.1:" + std::to_string(p),
                                       "--production", "127.0.0.1:" + std::to_string(production_port),
                                       "--gray", "127.0.0.1:" + std::to_string(gray_port),
                                       "--threads", "1"};
      argv.insert(argv.end(), args.begin(), args.end());
      return process(argv, dir.file("proxy-" + std::to_string(p) + ".log"));
    });
  }
  int port() const { return port_; }
  pid_t pid() const { return process_.pid(); }
  std::string log() const { return process_.log(); }
  process& proc() { return process_; }

 private:
  int port_;
  process process_;
};

/// grayroute-proxy --config FILE and nothing else but one thread (and `extra`): it
/// listens where the file's `listen` says, on `port`, which the caller wrote there.
///
///   dir.write("policy.toml", "listen = \"127.0.0.1:" + std::to_string(port) + "\"\n[routes]\n...");
///   grayroute::test::config_proxy proxy(dir, dir.file("policy.toml"), port);
class config_proxy {
 public:
  config_proxy(const temp_dir& dir, const std::string& file, int port, const std::vector<std::string>& extra = {})
      : port_(port) {
    std::vector<std::string> argv = {GRAYROUTE_PROXY_BIN, "--config", file, "--threads", "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = process(argv, dir.file("proxy-" + std::to_string(port) + ".log"));
    if (!wait_for_port(port)) throw std::runtime_error("grayroute-proxy did not start: " + process_.log());
  }
  int port() const { return port_; }
  std::string log() const { return process_.log(); }
  process& proc() { return process_; }

 private:
  int port_;
  process process_;
};

/// Two backends ("production", "gray") and a proxy in front of them.
struct proxy_setup {
  proxy_setup(const temp_dir& dir, const std::vector<std::string>& args)
      : production(dir, "production"), gray(dir, "gray"), front(dir, production.port(), gray.port(), args) {}
  int port() const { return front.port(); }

  backend production, gray;
  proxy front;
};

/// A client connection that stays open: send any bytes, read one response at a time.
class http_connection {
 public:
  explicit http_connection(int port, const std::string& bind_address = "") {
    fd_ = connect_loopback(port, std::chrono::seconds(10), bind_address);
  }
  ~http_connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  bool connected() const { return fd_ >= 0; }

  bool send(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// Reads one response (Content-Length or chunked body); status 0 on EOF or error.
  /// `discard_body`: count the body bytes into body_bytes instead of keeping them.
  http_reply read_response(bool discard_body = false) {
    http_reply reply;
    body_bytes = 0;
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return reply;
    }
    reply.headers = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    if (reply.headers.compare(0, 5, "HTTP/") != 0) return reply;
    const int status = std::atoi(reply.headers.c_str() + 9);
    auto take = [&](std::size_t n) {
      while (buffer_.size() < n) {
        if (!discard_body || buffer_.size() < 65536) {
          if (!fill()) return false;
          continue;
        }
        body_bytes += buffer_.size();
        n -= buffer_.size();
        buffer_.clear();
      }
      body_bytes += n;
      if (!discard_body) reply.body += buffer_.substr(0, n);
      buffer_.erase(0, n);
      return true;
    };
    if (const std::string length = header(reply.headers, "Content-Length"); !length.empty()) {
      if (!take(std::strtoull(length.c_str(), nullptr, 10))) return reply;
    } else if (header(reply.headers, "Transfer-Encoding") == "chunked") {
      for (;;) {
        std::size_t line_end;
        while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
          if (!fill()) return reply;
        }
        const std::size_t size = std::strtoull(buffer_.c_str(), nullptr, 16);
        buffer_.erase(0, line_end + 2);
        if (!take(size)) return reply;
        while (buffer_.size() < 2) {
          if (!fill()) return reply;
        }
        buffer_.erase(0, 2);  // CRLF after the chunk (or after the last, empty one)
        if (size == 0) break;
      }
    }
    reply.status = status;
    return reply;
  }

  /// True when the server has closed the connection (EOF within `timeout`).
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

  /// Reads raw bytes until everything read so far (including earlier unread bytes)
  /// contains `needle`, EOF, or `timeout`; returns what was read and consumes it.
  std::string read_until(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (buffer_.find(needle) == std::string::npos && fill()) {
    }
    tv = timeval{};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return std::exchange(buffer_, std::string());
  }

  std::uint64_t body_bytes = 0;

 private:
  bool fill() {
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
};

/// "GET <path> HTTP/1.1" with a Host and `headers`, keep-alive.
inline std::string get_request(const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  std::string r = "GET " + path + " HTTP/1.1\r\nHost: test.local\r\n";
  for (const auto& [name, value] : headers) r += name + ": " + value + "\r\n";
  return r + "\r\n";
}

}  // namespace grayroute::test

#endif  // GRAYROUTE_TESTS_SUPPORT_PROXY_FIXTURE_HPP
