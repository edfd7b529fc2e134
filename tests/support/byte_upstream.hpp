// An upstream written in the test: a loopback listener on its own thread that keeps
// every byte each connection sent it, answers complete requests with what the test
// says, and lets the test write to or close a connection itself (for streams, late
// or extra responses, 101 tunnels).
//
//   byte_upstream up([](const std::string& received, int n) {
//     return upstream_reply{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"};
//   });
//   ... up.received(0) is everything connection 0 sent, byte for byte.
#ifndef GRAYROUTE_TESTS_SUPPORT_BYTE_UPSTREAM_HPP
#define GRAYROUTE_TESTS_SUPPORT_BYTE_UPSTREAM_HPP

#include <fcntl.h>
#include <poll.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace grayroute::test {

struct upstream_reply {
  std::string bytes;
  bool close = false;  // close the connection after sending
};

/// How many complete HTTP/1.1 requests `bytes` holds (Content-Length or chunked bodies,
/// trailers included); stops at the first incomplete one.
inline int complete_requests(const std::string& bytes) {
  int count = 0;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t end = bytes.find("\r\n\r\n", pos);
    if (end == std::string::npos) return count;
    const std::string head = bytes.substr(pos, end - pos + 2);
    pos = end + 4;
    auto field = [&](const char* name) {
      const std::string key = std::string("\r\n") + name + ": ";
      std::string lower = head;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string lkey = key;
      for (auto& c : lkey) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const std::size_t at = lower.find(lkey);
      if (at == std::string::npos) return std::string();
      return head.substr(at + key.size(), head.find("\r\n", at + key.size()) - at - key.size());
    };
    if (const std::string length = field("Content-Length"); !length.empty()) {
      pos += std::strtoull(length.c_str(), nullptr, 10);
      if (pos > bytes.size()) return count;
    } else if (field("Transfer-Encoding") == "chunked") {
      for (;;) {
        const std::size_t line = bytes.find("\r\n", pos);
        if (line == std::string::npos) return count;
        const std::size_t size = std::strtoull(bytes.c_str() + pos, nullptr, 16);
        pos = line + 2;
        if (size == 0) {
          const std::size_t trailers_end = bytes.find("\r\n", pos);
          if (trailers_end == std::string::npos) return count;
          if (trailers_end != pos) {  // trailer fields, then an empty line
            const std::size_t after = bytes.find("\r\n\r\n", pos);
            if (after == std::string::npos) return count;
            pos = after + 4;
          } else {
            pos += 2;
          }
          break;
        }
        pos += size + 2;
        if (pos > bytes.size()) return count;
      }
    }
    ++count;
  }
}

class byte_upstream {
 public:
  /// `answer(received, n)`: the reply to request n of a connection that has sent
  /// `received`; null: the test answers with send().
  using answer_fn = std::function<upstream_reply(const std::string& received, int n)>;

  explicit byte_upstream(answer_fn answer = nullptr) : answer_(std::move(answer)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 64) != 0) {
      throw std::runtime_error("byte_upstream: cannot listen");
    }
    socklen_t length = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~byte_upstream() {
    stop_ = true;
    thread_.join();
    for (auto& c : connections_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    ::close(listener_);
  }
  byte_upstream(const byte_upstream&) = delete;
  byte_upstream& operator=(const byte_upstream&) = delete;

  int port() const { return port_; }

  /// Connections accepted so far.
  std::size_t connections() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return connections_.size();
  }
  /// Every byte connection `i` has sent ("" when there is no such connection).
  std::string received(std::size_t i) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return i < connections_.size() ? connections_[i].received : std::string();
  }
  /// True once connection `i` has been closed by the proxy (EOF seen).
  bool peer_closed(std::size_t i) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return i < connections_.size() && connections_[i].eof;
  }
  /// Writes on connection `i` (all of it; loopback).
  bool send(std::size_t i, const std::string& bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    return i < connections_.size() && write_all(connections_[i].fd, bytes);
  }
  void close(std::size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (i < connections_.size() && connections_[i].fd >= 0) {
      ::close(connections_[i].fd);
      connections_[i].fd = -1;
    }
  }

 private:
  struct conn {
    int fd = -1;
    std::string received;
    int answered = 0;
    bool eof = false;
  };

  static bool write_all(int fd, const std::string& bytes) {
    std::size_t sent = 0;
    while (fd >= 0 && sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return fd >= 0;
  }

  void run() {
    while (!stop_) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      std::vector<std::size_t> index;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (std::size_t i = 0; i < connections_.size(); ++i) {
          if (connections_[i].fd >= 0 && !connections_[i].eof) {
            fds.push_back({connections_[i].fd, POLLIN, 0});
            index.push_back(i);
          }
        }
      }
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      if (fds[0].revents & POLLIN) {
        const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) connections_.push_back(conn{fd, {}, 0, false});
      }
      for (std::size_t k = 1; k < fds.size(); ++k) {
        if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        conn& c = connections_[index[k - 1]];
        if (c.fd != fds[k].fd) continue;  // closed by the test meanwhile
        char chunk[65536];
        const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
          c.eof = true;
          continue;
        }
        c.received.append(chunk, static_cast<std::size_t>(n));
        if (!answer_) continue;
        for (const int complete = complete_requests(c.received); c.answered < complete && c.fd >= 0; ++c.answered) {
          const upstream_reply reply = answer_(c.received, c.answered);
          write_all(c.fd, reply.bytes);
          if (reply.close) {
            ::close(c.fd);
            c.fd = -1;
          }
        }
      }
    }
  }

  answer_fn answer_;
  int listener_ = -1;
  int port_ = 0;
  mutable std::mutex mutex_;
  std::vector<conn> connections_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// "HTTP/1.1 200 OK" with a Content-Length body.
inline std::string ok_response(const std::string& body, const std::string& extra_headers = "") {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

}  // namespace grayroute::test

#endif  // GRAYROUTE_TESTS_SUPPORT_BYTE_UPSTREAM_HPP
