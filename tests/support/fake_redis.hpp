// Test support: a fake Redis (RESP2) on a free loopback port, for the faults a real
// redis-server will not produce on demand: replies trickled a byte at a time, a SCAN
// cursor that never returns to 0, floods of null invalidations, a subscriber
// connection that dies right after SUBSCRIBE, no CLIENT TRACKING, a huge multi-bulk
// header, odd error replies.
//
//   grayroute::test::fake_redis fake([](fake_redis::connection& c, const command& cmd) {
//     if (cmd[0] == "SCAN") return c.trickle("*2\r\n$1\r\n0\r\n*0\r\n", 50ms), true;
//     return false;  // the default answer (a tiny in-memory Redis)
//   });
//
// Each client connection gets a thread; every loop waits at most 20 ms and checks the
// stop flag, so the destructor returns promptly whatever a test left running.
#ifndef GRAYROUTE_TESTS_SUPPORT_FAKE_REDIS_HPP
#define GRAYROUTE_TESTS_SUPPORT_FAKE_REDIS_HPP

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace grayroute::test {

using command = std::vector<std::string>;

inline std::string resp_bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }
inline std::string resp_array(const std::vector<std::string>& items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (const auto& i : items) out += resp_bulk(i);
  return out;
}
/// Redis's answer to `SUBSCRIBE __redis__:invalidate`.
inline const std::string kSubscribeConfirmation = "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n";
/// A null invalidation, as Redis sends to every tracking client on FLUSHDB/FLUSHALL.
inline const std::string kNullInvalidation = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*-1\r\n";

class fake_redis {
 public:
  class connection {
   public:
    connection(int fd, int id, const std::atomic<bool>& stopping) : fd_(fd), id_(id), stopping_(stopping) {}
    int id() const { return id_; }
    bool subscribed() const { return subscribed_; }

    /// Sends all of `bytes` (gives up when the server stops or the peer is gone).
    void send(std::string_view bytes) {
      while (!bytes.empty() && !closed_ && !stopping_.load()) {
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) {
          closed_ = true;
          return;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
      }
    }
    /// One byte every `gap`, until done, the peer leaves or the server stops.
    void trickle(std::string_view bytes, std::chrono::milliseconds gap) {
      for (char c : bytes) {
        if (closed_ || stopping_.load()) return;
        send(std::string_view(&c, 1));
        sleep_for(gap);
      }
    }
    /// Sleeps, cut short when the server stops.
    void sleep_for(std::chrono::milliseconds d) {
      const auto end = std::chrono::steady_clock::now() + d;
      while (!stopping_.load() && std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            end - std::chrono::steady_clock::now(), std::chrono::milliseconds(5)));
      }
    }
    void close() { closed_ = true; }
    bool closed() const { return closed_; }

    /// Pushed every `flood_every` while the connection is otherwise idle.
    std::string flood;
    std::chrono::microseconds flood_every{1000};

   private:
    friend class fake_redis;
    int fd_, id_;
    const std::atomic<bool>& stopping_;
    bool subscribed_ = false;
    bool closed_ = false;
  };

  /// Returns true when it answered `cmd` itself; false for the default answer.
  using handler = std::function<bool(connection&, const command&)>;

  explicit fake_redis(handler h = nullptr) : handler_(std::move(h)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 64) != 0) {
      ::close(listen_fd_);
      throw std::runtime_error("fake_redis: bind/listen failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  fake_redis(const fake_redis&) = delete;
  fake_redis& operator=(const fake_redis&) = delete;
  ~fake_redis() {
    stopping_ = true;
    acceptor_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    ::close(listen_fd_);
  }

  int port() const { return port_; }
  /// Connections accepted so far.
  int connections() const { return accepted_.load(); }
  /// How many times a command (its first word, upper case) was received.
  std::size_t count(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = counts_.find(name);
    return it == counts_.end() ? 0 : it->second;
  }
  /// The most recent command of that name.
  command last(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = last_.find(name);
    return it == last_.end() ? command{} : it->second;
  }
  void set(const std::string& key, const std::string& value) {
    std::lock_guard<std::mutex> lock(mutex_);
    keys_[key] = value;
  }
  /// What `CONFIG GET notify-keyspace-events` answers.
  void set_notify_keyspace_events(const std::string& flags) {
    std::lock_guard<std::mutex> lock(mutex_);
    notify_keyspace_events_ = flags;
  }
  /// Sends `bytes` to every subscribed connection (now and to later subscribers).
  void publish(const std::string& bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    published_.push_back(bytes);
  }
  /// Closes every subscribed connection (the next time its thread looks).
  void drop_subscribers() { drop_subscribers_.fetch_add(1); }

 private:
  void accept_loop() {
    while (!stopping_.load()) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      const int one = 1;  // replies go out at once, as Redis sends them
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const int id = ++accepted_;
      std::lock_guard<std::mutex> lock(mutex_);
      threads_.emplace_back([this, fd, id] { serve(fd, id); });
    }
  }

  void serve(int fd, int id) {
    connection c(fd, id, stopping_);
    std::string in;
    auto next_flood = std::chrono::steady_clock::now();
    const int drops = drop_subscribers_.load();
    std::size_t sent_published = 0;
    while (!stopping_.load() && !c.closed_) {
      if (c.subscribed_ && drop_subscribers_.load() != drops) break;
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, c.flood.empty() ? 20 : 1);
      if (ready > 0) {
        char buffer[16384];
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        in.append(buffer, static_cast<std::size_t>(n));
        command cmd;
        while (!c.closed_ && parse(in, cmd)) answer(c, cmd);
      }
      if (c.subscribed_) {
        std::vector<std::string> out;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          for (; sent_published < published_.size(); ++sent_published) out.push_back(published_[sent_published]);
        }
        for (const auto& bytes : out) c.send(bytes);
      }
      if (!c.flood.empty() && std::chrono::steady_clock::now() >= next_flood) {
        pollfd w{fd, POLLOUT, 0};
        if (::poll(&w, 1, 0) > 0) c.send(c.flood);
        next_flood = std::chrono::steady_clock::now() + c.flood_every;
      }
    }
    ::close(fd);
  }

  // One command (an array of bulk strings, as hiredis sends) off the front of `in`.
  static bool parse(std::string& in, command& out) {
    out.clear();
    if (in.empty() || in[0] != '*') return false;
    std::size_t at = in.find("\r\n");
    if (at == std::string::npos) return false;
    const long count = std::stol(in.substr(1, at - 1));
    at += 2;
    for (long i = 0; i < count; ++i) {
      const std::size_t end = in.find("\r\n", at);
      if (end == std::string::npos || in[at] != '$') return false;
      const std::size_t len = std::stoul(in.substr(at + 1, end - at - 1));
      if (in.size() < end + 2 + len + 2) return false;
      out.push_back(in.substr(end + 2, len));
      at = end + 2 + len + 2;
    }
    in.erase(0, at);
    return true;
  }

  void answer(connection& c, const command& cmd) {
    std::string name = cmd.empty() ? "" : cmd[0];
    for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++counts_[name];
      last_[name] = cmd;
    }
    if (handler_ && handler_(c, cmd)) return;
    if (name == "SUBSCRIBE" || name == "PSUBSCRIBE") c.subscribed_ = true;
    c.send(default_reply(c, name, cmd));
  }

  // A tiny in-memory Redis: enough for the store to connect, track, load and re-read.
  std::string default_reply(const connection& c, const std::string& name, const command& cmd) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (name == "AUTH" || name == "SELECT") return "+OK\r\n";
    if (name == "PING") return c.subscribed_ ? "*2\r\n$4\r\npong\r\n$0\r\n\r\n" : "+PONG\r\n";
    if (name == "CLIENT" && cmd.size() > 1 && cmd[1] == "ID") return ":" + std::to_string(c.id_) + "\r\n";
    if (name == "CLIENT") return "+OK\r\n";
    if (name == "SUBSCRIBE" || name == "PSUBSCRIBE") {
      const std::string kind = name == "SUBSCRIBE" ? "subscribe" : "psubscribe";
      return "*3\r\n" + resp_bulk(kind) + resp_bulk(cmd.size() > 1 ? cmd[1] : "") + ":1\r\n";
    }
    if (name == "CONFIG" && cmd.size() == 3 && cmd[2] == "notify-keyspace-events") {
      return resp_array({"notify-keyspace-events", notify_keyspace_events_});
    }
    if (name == "DBSIZE") return ":" + std::to_string(keys_.size()) + "\r\n";
    if (name == "SCAN") {
      std::vector<std::string> keys;
      for (const auto& [k, v] : keys_) keys.push_back(k);
      return "*2\r\n$1\r\n0\r\n" + resp_array(keys);
    }
    if (name == "MGET") {
      std::string out = "*" + std::to_string(cmd.size() - 1) + "\r\n";
      for (std::size_t i = 1; i < cmd.size(); ++i) {
        const auto it = keys_.find(cmd[i]);
        out += it == keys_.end() ? "$-1\r\n" : resp_bulk(it->second);
      }
      return out;
    }
    if (name == "GET" && cmd.size() == 2) {
      const auto it = keys_.find(cmd[1]);
      return it == keys_.end() ? "$-1\r\n" : resp_bulk(it->second);
    }
    if (name == "SET" && cmd.size() >= 3) {
      keys_[cmd[1]] = cmd[2];
      return "+OK\r\n";
    }
    if (name == "EXISTS" && cmd.size() == 2) return keys_.count(cmd[1]) ? ":1\r\n" : ":0\r\n";
    return "-ERR unknown command '" + name + "'\r\n";
  }

  handler handler_;
  int listen_fd_ = -1, port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0}, drop_subscribers_{0};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> threads_;
  std::map<std::string, std::size_t> counts_;
  std::map<std::string, command> last_;
  std::map<std::string, std::string> keys_;
  std::vector<std::string> published_;
  std::string notify_keyspace_events_;  // Redis's default: none
};

}  // namespace grayroute::test

#endif  // GRAYROUTE_TESTS_SUPPORT_FAKE_REDIS_HPP
