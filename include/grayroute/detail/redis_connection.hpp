// One blocking hiredis connection, authenticated and on its database, with errors
// as text that never carries the password. Uses only the hiredis API that 0.14
// (Debian) and 1.x share.
//
// Blocking calls are bounded by the timeouts; another thread can cut them short by
// shutting the socket down through the fd_registry (how redis_store::stop() stays
// prompt even when Redis is blackholed).
#ifndef GRAYROUTE_DETAIL_REDIS_CONNECTION_HPP
#define GRAYROUTE_DETAIL_REDIS_CONNECTION_HPP

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../redis_config.hpp"
#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

struct redis_reply_deleter {
  void operator()(redisReply* r) const noexcept {
    if (r) freeReplyObject(r);
  }
};
using redis_reply = std::unique_ptr<redisReply, redis_reply_deleter>;

inline std::string_view reply_text(const redisReply* r) noexcept {
  return r && r->str ? std::string_view(r->str, static_cast<std::size_t>(r->len)) : std::string_view();
}

inline timeval to_timeval(std::chrono::milliseconds ms) noexcept {
  if (ms.count() < 1) ms = std::chrono::milliseconds(1);
  timeval tv{};
  // No casts: both fields are `long` on Linux, where a cast would be a useless one.
  tv.tv_sec = ms.count() / 1000;
  tv.tv_usec = ms.count() % 1000 * 1000;
  return tv;
}

/// Removes every occurrence of `secret` from `text` (defence in depth: no server
/// message we know of echoes a password, but a log line must never carry one).
inline std::string scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3)) {
    text.replace(at, secret.size(), "***");
  }
  return text;
}

/// The sockets a thread may be blocked on, so stop() can shut them down.
class fd_registry {
 public:
  /// False once stopping: the caller must not use the new socket.
  bool add(int fd) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return false;
    fds_.push_back(fd);
    return true;
  }
  void remove(int fd) {
    std::lock_guard<std::mutex> lock(mutex_);
    fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
  }
  /// Wakes every blocked read or write with an error; later add() calls fail.
  void shutdown_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    // Sockets are closed only after remove(), under this mutex, so no fd here was reused.
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  bool stopping() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<int> fds_;
  bool stopping_ = false;
};

/// hiredis writes with write()/send() without MSG_NOSIGNAL; a peer that went away
/// would raise SIGPIPE and kill a gateway that did not ignore it. On a caller's thread
/// (direct mode) block it for the call and swallow one that became pending.
class sigpipe_guard {
 public:
  sigpipe_guard() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
  }
  ~sigpipe_guard() {
    if (!blocked_) return;
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
  bool blocked_ = false;
};

class redis_connection {
 public:
  redis_connection() = default;
  explicit redis_connection(fd_registry* registry) : registry_(registry) {}
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;
  ~redis_connection() { close(); }

  /// Connects, authenticates and selects the database. False with error() on failure.
  /// With a `deadline`, AUTH and SELECT get only what is left of it (direct mode
  /// promises one lookup never takes longer than command_timeout).
  bool open(const redis_config& config, std::chrono::milliseconds connect_timeout,
            std::chrono::milliseconds command_timeout,
            std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max()) {
    close();
    password_ = config.password;
    where_ = config.unix_socket.empty() ? config.host + ":" + std::to_string(config.port) : config.unix_socket;
    const timeval tv = to_timeval(connect_timeout);
    ctx_ = config.unix_socket.empty() ? redisConnectWithTimeout(config.host.c_str(), config.port, tv)
                                      : redisConnectUnixWithTimeout(config.unix_socket.c_str(), tv);
    if (!ctx_ || ctx_->err) {
      fail("connect: " + io_error());
      return false;
    }
    if (registry_ && !registry_->add(ctx_->fd)) {
      fail("stopped");
      return false;
    }
    registered_ = registry_ != nullptr;
    set_timeout(command_timeout);
    if (config.unix_socket.empty()) redisEnableKeepAlive(ctx_);
    const bool bounded = deadline != std::chrono::steady_clock::time_point::max();
    auto left = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    };
    if (!config.password.empty() || !config.username.empty()) {
      if (bounded) set_timeout(left());
      redis_reply r = config.username.empty() ? command({"AUTH", config.password})
                                              : command({"AUTH", config.username, config.password});
      if (!r) return false;
      if (r->type == REDIS_REPLY_ERROR) {
        fail("AUTH failed: " + std::string(reply_text(r.get())));
        return false;
      }
    }
    if (config.database != 0) {
      if (bounded) set_timeout(left());
      const std::string db = std::to_string(config.database);
      redis_reply r = command({"SELECT", db});
      if (!r) return false;
      if (r->type == REDIS_REPLY_ERROR) {
        fail("SELECT " + db + " failed: " + std::string(reply_text(r.get())));
        return false;
      }
    }
    return true;
  }

  bool is_open() const noexcept { return ctx_ != nullptr; }
  int fd() const noexcept { return ctx_ ? ctx_->fd : -1; }
  const std::string& error() const noexcept { return error_; }

  void close() noexcept {
    if (!ctx_) return;
    if (registered_) registry_->remove(ctx_->fd);
    registered_ = false;
    redisFree(ctx_);
    ctx_ = nullptr;
  }

  void set_timeout(std::chrono::milliseconds timeout) noexcept {
    if (ctx_) redisSetTimeout(ctx_, to_timeval(timeout));
  }

  /// One command and its reply; null (and the connection closed) on an I/O error.
  /// A Redis error reply (WRONGTYPE, NOAUTH, ...) is a reply, not a failure.
  redis_reply command(std::initializer_list<std::string_view> args) { return command(args.begin(), args.size()); }
  redis_reply command(const std::vector<std::string_view>& args) { return command(args.data(), args.size()); }

  /// Queues a command for a pipeline; read replies with reply().
  bool append(const std::string_view* args, std::size_t count) {
    if (!ctx_) return false;
    argv_.clear();
    lengths_.clear();
    for (std::size_t i = 0; i < count; ++i) {
      argv_.push_back(args[i].data());
      lengths_.push_back(args[i].size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(count), argv_.data(), lengths_.data()) != REDIS_OK) {
      fail(io_error());
      return false;
    }
    return true;
  }
  bool append(std::initializer_list<std::string_view> args) { return append(args.begin(), args.size()); }
  bool append(const std::vector<std::string_view>& args) { return append(args.data(), args.size()); }

  /// The next reply of a pipeline (flushing queued commands first); null on I/O error.
  redis_reply reply() {
    if (!ctx_) return nullptr;
    void* r = nullptr;
    if (redisGetReply(ctx_, &r) != REDIS_OK || !r) {
      if (r) freeReplyObject(r);
      fail(io_error());
      return nullptr;
    }
    return redis_reply(static_cast<redisReply*>(r));
  }

  // Event-driven use (the watch connection): poll() the fd, then these never block
  // for long: flush() writes a few bytes, read_some() does one read().
  bool flush() {
    if (!ctx_) return false;
    int done = 0;
    while (!done) {
      if (redisBufferWrite(ctx_, &done) != REDIS_OK) {
        fail(io_error());
        return false;
      }
    }
    return true;
  }
  bool read_some() {
    if (!ctx_) return false;
    if (redisBufferRead(ctx_) != REDIS_OK) {
      fail(io_error());
      return false;
    }
    return true;
  }
  /// A reply already read by read_some(), or null when none is complete (ok stays
  /// true) or the stream is corrupt (ok false).
  redis_reply buffered_reply(bool& ok) {
    ok = ctx_ != nullptr;
    if (!ctx_) return nullptr;
    void* r = nullptr;
    if (redisGetReplyFromReader(ctx_, &r) != REDIS_OK) {
      fail(io_error());
      ok = false;
      return nullptr;
    }
    return redis_reply(static_cast<redisReply*>(r));
  }

  void fail(const std::string& what) {
    error_ = scrub("redis " + where_ + ": " + what, password_);
    close();
  }

 private:
  redis_reply command(const std::string_view* args, std::size_t count) {
    if (!append(args, count)) return nullptr;
    return reply();
  }

  std::string io_error() const {
    if (!ctx_) return "cannot allocate a connection";
    if (ctx_->err == REDIS_ERR_EOF) return "connection closed by the server";
    std::string text = ctx_->errstr;
    if (text.find("temporarily unavailable") != std::string::npos || text.find("timed out") != std::string::npos) {
      return "timed out (" + text + ")";
    }
    return text.empty() ? "I/O error" : text;
  }

  redisContext* ctx_ = nullptr;
  fd_registry* registry_ = nullptr;
  bool registered_ = false;
  std::string error_;
  std::string where_;
  std::string password_;  // only to scrub it from error text
  std::vector<const char*> argv_;
  std::vector<std::size_t> lengths_;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_REDIS_CONNECTION_HPP
