// One hiredis connection, authenticated and on its database, with errors as text
// that names the step and never carries the password. Works with hiredis 0.14
// (Debian) and 1.x.
//
// hiredis only builds and parses; the socket is non-blocking and our own poll() loop
// bounds each command by a deadline (command_timeout, or less), however slowly the
// server trickles its answer. Replies are capped in size before hiredis allocates
// them. Another thread can cut a wait short by shutting the socket down through the
// fd_registry (how redis_store::stop() stays prompt even when Redis is blackholed).
#ifndef GRAYROUTE_DETAIL_REDIS_CONNECTION_HPP
#define GRAYROUTE_DETAIL_REDIS_CONNECTION_HPP

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <deque>
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
  using clock = std::chrono::steady_clock;

  redis_connection() = default;
  explicit redis_connection(fd_registry* registry) : registry_(registry) {}
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;
  ~redis_connection() { close(); }

  /// Connects, authenticates and selects the database. False with error() on failure.
  /// Every command gets command_timeout, and never more than is left of `deadline`
  /// (direct mode promises one lookup never takes longer than command_timeout).
  bool open(const redis_config& config, std::chrono::milliseconds connect_timeout,
            std::chrono::milliseconds command_timeout, clock::time_point deadline = clock::time_point::max()) {
    close();
    command_timeout_ = command_timeout;
    where_ = config.unix_socket.empty() ? config.host + ":" + std::to_string(config.port) : config.unix_socket;
    const timeval tv = to_timeval(connect_timeout);
    ctx_ = config.unix_socket.empty() ? redisConnectWithTimeout(config.host.c_str(), config.port, tv)
                                      : redisConnectUnixWithTimeout(config.unix_socket.c_str(), tv);
    if (!ctx_ || ctx_->err) {
      fail("connect", io_error());
      return false;
    }
    if (registry_ && !registry_->add(ctx_->fd)) {
      fail("connect", "stopped");
      return false;
    }
    registered_ = registry_ != nullptr;
    if (config.unix_socket.empty()) redisEnableKeepAlive(ctx_);
    // Our own poll() loop bounds each command; hiredis only parses and buffers.
    ::fcntl(ctx_->fd, F_SETFL, ::fcntl(ctx_->fd, F_GETFL) | O_NONBLOCK);
    ctx_->flags &= ~REDIS_BLOCK;
    cap_reply_size();
    if (!config.password.empty() || !config.username.empty()) {
      redis_reply r = config.username.empty() ? command({"AUTH", config.password}, deadline)
                                              : command({"AUTH", config.username, config.password}, deadline);
      if (!r) return false;
      if (r->type == REDIS_REPLY_ERROR) {
        fail_with_reply("AUTH", r.get());
        return false;
      }
    }
    if (config.database != 0) {
      const std::string db = std::to_string(config.database);
      redis_reply r = command({"SELECT", db}, deadline);
      if (!r) return false;
      if (r->type == REDIS_REPLY_ERROR) {
        fail_with_reply("SELECT " + db, r.get());
        return false;
      }
    }
    return true;
  }

  bool is_open() const noexcept { return ctx_ != nullptr; }
  int fd() const noexcept { return ctx_ ? ctx_->fd : -1; }
  const std::string& error() const noexcept { return error_; }
  std::chrono::milliseconds command_timeout() const noexcept { return command_timeout_; }

  void close() noexcept {
    pending_.clear();
    if (!ctx_) return;
    if (registered_) registry_->remove(ctx_->fd);
    registered_ = false;
    redisFree(ctx_);
    ctx_ = nullptr;
  }

  /// One command and its reply within command_timeout (and `deadline`); null (and the
  /// connection closed) on an I/O error or timeout. A Redis error reply (WRONGTYPE,
  /// NOAUTH, ...) is a reply, not a failure.
  redis_reply command(std::initializer_list<std::string_view> args, clock::time_point deadline = clock::time_point::max()) {
    return command(args.begin(), args.size(), deadline);
  }
  redis_reply command(const std::vector<std::string_view>& args, clock::time_point deadline = clock::time_point::max()) {
    return command(args.data(), args.size(), deadline);
  }

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
      fail(count ? std::string(args[0]) : std::string("command"), io_error());
      return false;
    }
    pending_.emplace_back(count ? args[0] : std::string_view("command"));
    return true;
  }
  bool append(std::initializer_list<std::string_view> args) { return append(args.begin(), args.size()); }
  bool append(const std::vector<std::string_view>& args) { return append(args.data(), args.size()); }

  /// The next reply of a pipeline (sending queued commands first), within
  /// command_timeout and `deadline`; null on I/O error, timeout or an oversized reply.
  redis_reply reply(clock::time_point deadline = clock::time_point::max()) {
    if (!ctx_) return nullptr;
    const std::string step = pending_.empty() ? std::string("reply") : pending_.front();
    if (!pending_.empty()) pending_.pop_front();
    const bool whole = deadline < clock::now() + command_timeout_;  // the caller's deadline comes first
    deadline = std::min(deadline, clock::now() + command_timeout_);
    for (;;) {
      bool ok = true;
      redis_reply r = buffered_reply(ok, step);
      if (!ok) return nullptr;
      if (r) return r;
      if (!await_input(step, deadline, whole)) return nullptr;
    }
  }

  /// The next reply of a pipeline when it is a flat array of bulk strings and nils
  /// (an MGET's), read straight from the read buffer: `count(n)` first, then, if it
  /// returned true, `element(i, text)` for each (text.data() null for a nil), the
  /// text valid only during the call. hiredis would allocate two blocks per element,
  /// which is most of a big load's client time. Any other reply (an error, another
  /// shape) comes back parsed in `other` instead. False on I/O error or timeout.
  ///
  /// With `nested`, elements may also be arrays of bulk strings and nils, one level
  /// deep (a SCAN reply: [cursor, [keys]]): `element(i, j, text)` then names the
  /// outer index and the inner one (kOuter for an outer string).
  template <class Count, class Element>
  bool reply_strings(clock::time_point deadline, Count&& count, Element&& element, redis_reply& other) {
    auto flat = [&](std::size_t i, std::size_t, std::string_view text) { element(i, text); };
    return reply_array(deadline, false, count, flat, other);
  }
  /// The inner index of an outer string, for reply_nested().
  static constexpr std::size_t kOuter = ~std::size_t{0};
  template <class Count, class Element>
  bool reply_nested(clock::time_point deadline, Count&& count, Element&& element, redis_reply& other) {
    return reply_array(deadline, true, count, element, other);
  }

 private:
  template <class Count, class Element>
  bool reply_array(clock::time_point deadline, bool nested, Count& count, Element& element, redis_reply& other) {
    if (!ctx_) return false;
    const bool whole = deadline < clock::now() + command_timeout_;
    deadline = std::min(deadline, clock::now() + command_timeout_);
    const std::string step = pending_.empty() ? std::string("reply") : pending_.front();
    for (;;) {
      redisReader* r = ctx_->reader;
      // Only between replies: mid-reply, hiredis owns the bytes it has begun.
      const flat_scan scan = r->ridx == -1 && r->reply == nullptr && r->err == 0
                                 ? scan_strings(r->buf + r->pos, r->len - r->pos, nested, static_cast<no_element*>(nullptr))
                                 : flat_scan{flat_scan::other, 0};
      if (scan.state == flat_scan::other) {
        other = reply(deadline);
        return other != nullptr;
      }
      if (scan.state == flat_scan::complete) {
        if (!pending_.empty()) pending_.pop_front();
        const std::size_t n = parsed_count(r->buf + r->pos);
        if (count(n)) scan_strings(r->buf + r->pos, r->len - r->pos, nested, &element);
        r->pos += scan.bytes;  // hiredis drops consumed bytes on its next read
        return true;
      }
      if (!await_input(step, deadline, whole)) return false;
    }
  }

 public:

  // Event-driven use (the watch connection): poll() the fd, then these never block:
  // flush() writes what the socket takes, read_some() does one read().
  bool flush() {
    if (!ctx_) return false;
    write_pending_done();
    return ctx_ != nullptr;
  }
  bool read_some(const std::string& step = "read") {
    if (!ctx_) return false;
    last_read_ = 0;
    char buffer[64 * 1024];
    const ssize_t n = ::recv(ctx_->fd, buffer, sizeof buffer, 0);
    if (n == 0) {
      fail(step, "connection closed by the server");
      return false;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
      fail(step, std::strerror(errno));
      return false;
    }
    last_read_ = static_cast<std::size_t>(n);
    if (redisReaderFeed(ctx_->reader, buffer, static_cast<std::size_t>(n)) != REDIS_OK) {
      fail(step, "out of memory");
      return false;
    }
    // A reply still incomplete after this many bytes is refused (a `$2000000000`
    // header would otherwise make the buffer grow as long as the server sends).
    if (ctx_->reader->len - ctx_->reader->pos > kMaxReplyBytes) {
      fail(step, "reply larger than " + std::to_string(kMaxReplyBytes >> 20) + " MiB refused");
      return false;
    }
    return true;
  }
  /// A reply already read by read_some(), or null when none is complete (ok stays
  /// true) or the stream is corrupt or oversized (ok false).
  redis_reply buffered_reply(bool& ok, const std::string& step = "read") {
    ok = ctx_ != nullptr;
    if (!ctx_) return nullptr;
    void* r = nullptr;
    if (redisGetReplyFromReader(ctx_, &r) != REDIS_OK) {
      const std::string reason = io_error();
      const bool oversized = oversized_ || reason.find("length out of range") != std::string::npos;  // 1.x
      fail(step, oversized ? "reply with more than " + std::to_string(kMaxReplyElements) + " elements refused"
                           : "protocol error (" + reason + ")");
      ok = false;
      return nullptr;
    }
    return redis_reply(static_cast<redisReply*>(r));
  }

  /// Records `what` as the error of `step` and closes the connection.
  void fail(const std::string& step, const std::string& what) {
    error_ = "redis " + where_ + ": " + step + ": " + what;
    close();
  }

  /// As fail(), with Redis's own reason. AUTH's reply is cut at the first quote: a
  /// server that does not know the command quotes its arguments, and one of them is
  /// the password. Nothing else ever sees the password, so nothing else can echo it.
  void fail_with_reply(const std::string& step, const redisReply* r) {
    std::string_view text = reply_text(r);
    if (step == "AUTH") text = text.substr(0, text.find_first_of("'\""));
    if (text.compare(0, 25, "ERR max number of clients") == 0) {
      fail("connect", "refused by the server: " + std::string(text));  // sent before any command is read
      return;
    }
    fail(step, text.empty() ? "error reply without text" : std::string(text));
  }

  // Largest reply accepted: far above any batch we ask for (SCAN/MGET 1000, SSCAN/HSCAN
  // 10000, a collection small enough to come in one reply), far below an allocation
  // that could hurt: `*2147483647` is refused before hiredis allocates 16 GB.
  static constexpr std::size_t kMaxReplyElements = std::size_t{1} << 20;
  static constexpr std::size_t kMaxReplyBytes = std::size_t{64} << 20;

 private:
  redis_reply command(const std::string_view* args, std::size_t count, clock::time_point deadline) {
    if (!append(args, count)) return nullptr;
    return reply(deadline);
  }

  // Sends what is queued and reads what has arrived; when nothing has, waits for the
  // socket until `deadline`. False (the connection failed) on error or timeout.
  bool await_input(const std::string& step, clock::time_point deadline, bool whole) {
    const bool writing = !write_pending_done();
    if (!ctx_) return false;
    if (!read_some(step)) return false;
    if (last_read_ > 0) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) {
      fail(step, whole ? std::string("timed out: the deadline of the whole load or lookup passed")
                       : "timed out after " + std::to_string(command_timeout_.count()) + " ms");
      return false;
    }
    pollfd p{ctx_->fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60000)));
    if (ready < 0 && errno != EINTR) {
      fail(step, std::strerror(errno));
      return false;
    }
    return true;
  }

  // A RESP array of bulk strings and nils at the start of [p, p + n): complete (with
  // its length in bytes), cut short, or something else (left to hiredis, which
  // reports errors and caps sizes as for any reply).
  struct flat_scan {
    enum state_type { complete, incomplete, other } state;
    std::size_t bytes;
  };

  // Reads "<digits>\r\n" (or "-1\r\n" when `nil` is given) at p[i]; advances i.
  enum class number { ok, nil, incomplete, bad };
  static number read_number(const char* p, std::size_t n, std::size_t& i, std::size_t& value) noexcept {
    value = 0;
    if (i < n && p[i] == '-') {
      if (i + 4 > n) return number::incomplete;
      if (p[i + 1] != '1' || p[i + 2] != '\r' || p[i + 3] != '\n') return number::bad;
      i += 4;
      return number::nil;
    }
    const std::size_t start = i;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; ++i) {
      if (i - start >= 10) return number::bad;
      value = value * 10 + static_cast<std::size_t>(p[i] - '0');
    }
    if (i + 2 > n) return number::incomplete;
    if (i == start || p[i] != '\r' || p[i + 1] != '\n') return number::bad;
    i += 2;
    return number::ok;
  }

  static std::size_t parsed_count(const char* p) noexcept {
    std::size_t count = 0;
    for (std::size_t i = 1; p[i] >= '0' && p[i] <= '9'; ++i) count = count * 10 + static_cast<std::size_t>(p[i] - '0');
    return count;
  }

  template <class Element>
  static flat_scan scan_strings(const char* p, std::size_t n, bool nested, Element* element) {
    std::size_t i = 0;
    const flat_scan::state_type state = scan_array(p, n, i, nested, element, kOuter);
    return {state, state == flat_scan::complete ? i : 0};
  }

  // The array at p[i]: its strings go to `element(outer, inner, text)`, with `outer`
  // kOuter for the top level; `nested` allows arrays in it, one level deep.
  template <class Element>
  static flat_scan::state_type scan_array(const char* p, std::size_t n, std::size_t& i, bool nested, Element* element,
                                          std::size_t outer) {
    if (i >= n) return flat_scan::incomplete;
    if (p[i] != '*') return flat_scan::other;
    ++i;
    std::size_t count = 0;
    const number head = read_number(p, n, i, count);
    if (head == number::incomplete) return flat_scan::incomplete;
    if (head != number::ok || count > kMaxReplyElements) return flat_scan::other;
    for (std::size_t e = 0; e < count; ++e) {
      if (i >= n) return flat_scan::incomplete;
      if (p[i] == '*' && nested) {
        const flat_scan::state_type inner = scan_array(p, n, i, false, element, e);
        if (inner != flat_scan::complete) return inner;
        continue;
      }
      if (p[i] != '$') return flat_scan::other;
      ++i;
      std::size_t length = 0;
      const number kind = read_number(p, n, i, length);
      if (kind == number::incomplete) return flat_scan::incomplete;
      if (kind == number::bad) return flat_scan::other;
      const std::size_t at_outer = outer == kOuter ? e : outer, at_inner = outer == kOuter ? kOuter : e;
      if (kind == number::nil) {
        if (element) (*element)(at_outer, at_inner, std::string_view());
        continue;
      }
      if (length > n || i + length + 2 > n) return flat_scan::incomplete;
      if (p[i + length] != '\r' || p[i + length + 1] != '\n') return flat_scan::other;
      if (element) (*element)(at_outer, at_inner, std::string_view(p + i, length));
      i += length + 2;
    }
    return flat_scan::complete;
  }
  struct no_element {
    void operator()(std::size_t, std::size_t, std::string_view) const noexcept {}
  };

  // Writes what the socket takes; true when everything queued is sent.
  bool write_pending_done() {
    int done = 0;
    if (redisBufferWrite(ctx_, &done) != REDIS_OK) {
      fail(pending_.empty() ? std::string("write") : pending_.front(), io_error());
      return true;
    }
    return done != 0;
  }

  void cap_reply_size() {
#if HIREDIS_MAJOR >= 1
    ctx_->reader->maxelements = static_cast<long long>(kMaxReplyElements);  // "... length out of range"
#else
    // hiredis 0.14 has no limit: wrap its array constructor to refuse huge headers
    // before they are allocated (the failure surfaces as a reader error).
    base_functions_ = ctx_->reader->fn;
    functions_ = *base_functions_;
    functions_.createArray = &create_array_capped;
    ctx_->reader->fn = &functions_;
    ctx_->reader->privdata = this;
#endif
    oversized_ = false;
  }

#if HIREDIS_MAJOR < 1
  static void* create_array_capped(const redisReadTask* task, int elements) {
    auto* self = static_cast<redis_connection*>(task->privdata);
    if (elements < 0 || static_cast<std::size_t>(elements) > kMaxReplyElements) {
      self->oversized_ = true;
      return nullptr;
    }
    return self->base_functions_->createArray(task, elements);
  }
  redisReplyObjectFunctions* base_functions_ = nullptr;
  redisReplyObjectFunctions functions_{};
#endif

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
  bool oversized_ = false;
  std::size_t last_read_ = 0;
  std::chrono::milliseconds command_timeout_{1000};
  std::string error_;
  std::string where_;
  std::deque<std::string> pending_;  // names of the commands whose replies are due, for errors
  std::vector<const char*> argv_;
  std::vector<std::size_t> lengths_;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_REDIS_CONNECTION_HPP
