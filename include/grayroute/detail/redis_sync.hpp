// The background thread that keeps a memory_store in step with Redis.
//
// Two connections:
//  - data:  full loads (SCAN + MGET, SSCAN, HSCAN) and re-reads of changed keys;
//  - watch: `CLIENT TRACKING on REDIRECT <its own id> BCAST [PREFIX key]`, then
//           `SUBSCRIBE __redis__:invalidate`. Redis pushes the name of every key
//           written (or a null for FLUSHDB/FLUSHALL) to this one connection. Because
//           tracking is redirected to the connection that also receives, the trap of
//           RESP2 redirects (the tracking client is never told that its redirect
//           target died) cannot happen: if the watch connection dies, its tracking
//           dies with it, and we reconnect and reload.
// One thread polls the watch socket and a wake-up pipe. Every ping_interval it
// PINGs both connections; a PING not answered within command_timeout counts as a
// lost connection. Any loss: close both, reconnect with backoff, full reload.
// A notification is only a hint: every resync_interval the list is reloaded anyway.
#ifndef GRAYROUTE_DETAIL_REDIS_SYNC_HPP
#define GRAYROUTE_DETAIL_REDIS_SYNC_HPP

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <system_error>
#include <string>
#include <thread>
#include <vector>

#include "../list_file.hpp"
#include "../memory_store.hpp"
#include "../redis_config.hpp"
#include "../version.hpp"
#include "redis_connection.hpp"
#include "redis_load.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

class redis_sync {
 public:
  using clock = std::chrono::steady_clock;

  redis_sync(const redis_config& config, memory_store& store, std::atomic<bool>& serving)
      : config_(config), store_(store), serving_(serving), data_(&registry_), watch_(&registry_) {
    if (::pipe(wake_) != 0) {
      // Out of file descriptors: not a config mistake, but nothing to run without.
#if GRAYROUTE_HAS_EXCEPTIONS
      throw std::system_error(errno, std::generic_category(), "grayroute: redis store: pipe");
#else
      std::perror("grayroute: redis store: pipe");
      std::abort();
#endif
    }
    for (int fd : wake_) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::fcntl(wake_[0], F_SETFL, O_NONBLOCK);
    // Before the thread and before the first lookup: a process started while Redis is
    // down (an nginx reload, a restart) serves the last list, never an empty one, from
    // its first request. A full load from Redis replaces it as soon as there is one.
    if (!config_.snapshot_file.empty() && ::access(config_.snapshot_file.c_str(), F_OK) == 0) load_snapshot_file();
    // The thread takes no signals: a gateway's handlers (nginx's SIGQUIT, SIGHUP) must
    // interrupt its own threads, and SIGPIPE from a dead socket must not kill it.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
#if GRAYROUTE_HAS_EXCEPTIONS
    try {
      thread_ = std::thread([this] { run(); });
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      close_pipe();
      throw;
    }
#else
    thread_ = std::thread([this] { run(); });
#endif
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  redis_sync(const redis_sync&) = delete;
  redis_sync& operator=(const redis_sync&) = delete;
  ~redis_sync() {
    stop();
    close_pipe();
  }

  /// Idempotent; returns once the thread has exited (bounded by connect_timeout).
  void stop() {
    std::call_once(stop_once_, [this] {
      stopping_.store(true);
      const char byte = 1;
      (void)!::write(wake_[1], &byte, 1);
      registry_.shutdown_all();
      if (thread_.joinable()) thread_.join();
      std::lock_guard<std::mutex> lock(status_mutex_);
      status_.connected = false;
    });
  }

  redis_status status() const {
    std::lock_guard<std::mutex> lock(status_mutex_);
    redis_status s = status_;
    s.entries = store_.size();
    s.serving = serving_.load(std::memory_order_relaxed);
    return s;
  }

  bool wait_until_synced(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(status_mutex_);
    return synced_cv_.wait_for(lock, timeout, [this] { return status_.synced_once; });
  }

 private:
  void run() {
    std::chrono::milliseconds backoff{100};
    std::minstd_rand jitter(static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(this)));
    while (!stopping_.load()) {
      const bool connected = connect();
      if (connected) count_connect();
      if (connected && full_load()) {
        backoff = std::chrono::milliseconds(100);
        steady_state();  // returns on a lost connection or stop
        save_snapshot_if_due(true);
      }
      disconnect();
      if (stopping_.load()) break;
      // Jitter spreads the reconnects of many workers after a Redis restart.
      const auto pause = backoff / 2 + std::chrono::milliseconds(jitter() % (backoff.count() / 2 + 1));
      sleep_while_down(pause);
      backoff = std::min(backoff * 2, config_.retry_max);
    }
    disconnect();
  }

  bool connect() {
    if (!data_.open(config_, config_.connect_timeout, config_.command_timeout)) return failed(data_.error());
    if (!watch_.open(config_, config_.connect_timeout, config_.command_timeout)) return failed(watch_.error());
    redis_reply id = watch_.command({"CLIENT", "ID"});
    if (!id) return failed(watch_.error());
    if (id->type != REDIS_REPLY_INTEGER) return failed("CLIENT ID failed: " + std::string(reply_text(id.get())));
    const std::string self = std::to_string(id->integer);
    std::vector<std::string_view> tracking{"CLIENT", "TRACKING", "on", "REDIRECT", self, "BCAST"};
    // Seed keys are addresses with no common prefix: track every key.
    if (config_.schema != redis_schema::seed) tracking.insert(tracking.end(), {"PREFIX", config_.key});
    redis_reply on = watch_.command(tracking);
    if (!on) return failed(watch_.error());
    if (on->type == REDIS_REPLY_ERROR) {
      return failed("CLIENT TRACKING failed (Redis 6 or later is needed): " + std::string(reply_text(on.get())));
    }
    redis_reply sub = watch_.command({"SUBSCRIBE", "__redis__:invalidate"});
    if (!sub) return failed(watch_.error());
    if (sub->type != REDIS_REPLY_ARRAY) return failed("SUBSCRIBE failed: " + std::string(reply_text(sub.get())));
    return true;
  }

  void count_connect() {
    std::lock_guard<std::mutex> lock(status_mutex_);
    ++status_.connects;
  }

  void disconnect() {
    data_.close();
    watch_.close();
    ping_outstanding_ = false;
    std::lock_guard<std::mutex> lock(status_mutex_);
    status_.connected = false;
  }

  bool failed(const std::string& error) {
    std::lock_guard<std::mutex> lock(status_mutex_);
    status_.connected = false;
    if (!stopping_.load()) status_.last_error = scrub(error, config_.password);
    return false;
  }

  // Tracking was switched on before this read, so a write that races it arrives as a
  // notification afterwards and is applied on top.
  bool full_load() {
    redis_load load = load_list(data_, config_, stopping_);
    if (!load.ok) return failed(load.error);
    store_.replace(load.entries);
    healthy();
    serving_.store(true, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(status_mutex_);
      status_.connected = true;
      status_.synced_once = true;
      status_.last_sync = std::chrono::system_clock::now();
      ++status_.full_loads;
      status_.ignored = load.ignored;
      status_.last_error.clear();
    }
    synced_cv_.notify_all();
    next_resync_ = clock::now() + config_.resync_interval;
    if (!config_.snapshot_file.empty()) write_snapshot_file(load.entries);
    snapshot_dirty_ = false;
    return true;
  }

  // Changes applied one by one (seed schema) reach the snapshot file too, at most once a
  // second: the next process started while Redis is down (an nginx reload) needs them.
  void save_snapshot_if_due(bool now_anyway) {
    if (!snapshot_dirty_ || config_.snapshot_file.empty()) return;
    const auto now = clock::now();
    if (!now_anyway && now < next_snapshot_) return;
    write_snapshot_file(store_.entries());
    snapshot_dirty_ = false;
    next_snapshot_ = now + std::chrono::seconds(1);
  }

  void steady_state() {
    next_ping_ = clock::now() + config_.ping_interval;
    while (!stopping_.load()) {
      auto now = clock::now();
      auto until = std::min(next_ping_, next_resync_);
      if (ping_outstanding_) until = std::min(until, ping_deadline_);
      if (snapshot_dirty_ && !config_.snapshot_file.empty()) until = std::min(until, next_snapshot_);
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
      pollfd fds[2] = {{watch_.fd(), POLLIN, 0}, {wake_[0], POLLIN, 0}};
      const int ready = ::poll(fds, 2, static_cast<int>(std::clamp<long long>(wait + 1, 0, 60000)));
      if (stopping_.load()) return;
      if (ready > 0 && fds[0].revents && !pump()) return;
      now = clock::now();
      if (ping_outstanding_ && now >= ping_deadline_) {
        // The answer may have come while we were busy (a long full load): look again.
        pollfd watch{watch_.fd(), POLLIN, 0};
        if (::poll(&watch, 1, 0) > 0 && !pump()) return;
        if (ping_outstanding_) {
          failed("redis watch connection: no answer to PING within " +
                 std::to_string(config_.command_timeout.count()) + " ms");
          return;
        }
        now = clock::now();
      }
      if (now >= next_resync_ && !full_load()) return;
      if (now >= next_ping_ && !ping()) return;
      save_snapshot_if_due(false);
    }
  }

  // Reads what the watch connection has (a bounded number of reads, so a flood of
  // notifications cannot starve PINGs and resyncs), then applies it.
  bool pump() {
    for (int i = 0; i < 64; ++i) {
      if (!watch_.read_some()) return failed(watch_.error());
      pollfd watch{watch_.fd(), POLLIN, 0};
      if (::poll(&watch, 1, 0) <= 0) break;
    }
    return drain_notifications();
  }

  // Applies every complete message the watch connection has read.
  bool drain_notifications() {
    std::vector<std::string> keys;
    bool reload = false;
    std::uint64_t count = 0;
    for (;;) {
      bool ok = true;
      redis_reply r = watch_.buffered_reply(ok);
      if (!ok) return failed(watch_.error());
      if (!r) break;
      if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) continue;
      const std::string_view kind = reply_text(r->element[0]);
      if (kind == "pong") {
        ping_outstanding_ = false;
        healthy();
        continue;
      }
      if (kind != "message" || r->elements != 3) continue;
      ++count;
      const redisReply* payload = r->element[2];
      if (payload->type == REDIS_REPLY_ARRAY) {
        for (std::size_t i = 0; i < payload->elements; ++i) keys.emplace_back(reply_text(payload->element[i]));
      } else {
        reload = true;  // null: FLUSHDB / FLUSHALL (or the server dropped its tracking table)
      }
    }
    if (count) {
      std::lock_guard<std::mutex> lock(status_mutex_);
      status_.invalidations += count;
    }
    if (reload) return full_load();
    if (keys.empty()) return true;
    if (config_.schema != redis_schema::seed) {
      // BCAST PREFIX also matches longer names; only our key changes the list.
      if (std::find(keys.begin(), keys.end(), config_.key) == keys.end()) return true;
      return full_load();
    }
    std::vector<seed_change> changes;
    std::string error;
    if (!reread_seed(data_, keys, changes, error)) return failed(error);
    for (const auto& c : changes) {
      if (c.listed) {
        store_.insert(ip_network::host(c.address), kGray);
      } else {
        store_.erase(ip_network::host(c.address));
      }
    }
    if (!changes.empty()) snapshot_dirty_ = true;
    return true;
  }

  bool ping() {
    const auto now = clock::now();
    next_ping_ = now + config_.ping_interval;
    if (!ping_outstanding_) {
      // In subscribed mode the answer is ["pong", ""], read by drain_notifications().
      if (!watch_.append({"PING"}) || !watch_.flush()) return failed(watch_.error());
      ping_outstanding_ = true;
      ping_deadline_ = now + config_.command_timeout;
    }
    redis_reply r = data_.command({"PING"});
    if (!r) return failed(data_.error());
    return true;
  }

  void healthy() {
    last_healthy_ = clock::now();
  }

  // Waits out a backoff pause (cut short by stop()), applying max_staleness meanwhile.
  void sleep_while_down(std::chrono::milliseconds pause) {
    const auto end = clock::now() + pause;
    for (;;) {
      const auto now = clock::now();
      if (config_.max_staleness.count() > 0 && now - last_healthy_ >= config_.max_staleness &&
          serving_.load(std::memory_order_relaxed)) {
        serving_.store(false, std::memory_order_relaxed);
      }
      if (now >= end || stopping_.load()) return;
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(end - now);
      if (config_.max_staleness.count() > 0 && serving_.load(std::memory_order_relaxed)) {
        const auto stale_in =
            std::chrono::duration_cast<std::chrono::milliseconds>(last_healthy_ + config_.max_staleness - now);
        wait = std::min(wait, std::max(stale_in, std::chrono::milliseconds(1)));
      }
      pollfd fd{wake_[0], POLLIN, 0};
      ::poll(&fd, 1, static_cast<int>(wait.count()) + 1);
    }
  }

  void load_snapshot_file() {
    parsed_list list = load_list_file(config_.snapshot_file, config_.routes);
    if (!list) {
      std::lock_guard<std::mutex> lock(status_mutex_);
      status_.last_error += "; snapshot file: " + list.error->to_string();
      return;
    }
    store_.replace(list.entries);
    healthy();  // max_staleness counts from when the snapshot was loaded
  }

  void write_snapshot_file(const std::vector<store_entry>& entries) {
    // Per process: several nginx workers keep the same snapshot, and two writers of one
    // temporary file could rename each other's half-written bytes into place.
    const std::string tmp = config_.snapshot_file + ".tmp." + std::to_string(::getpid());
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << "# grayroute snapshot of " << redact(config_) << "\n";
      for (const auto& e : entries) {
        out << e.network.to_string() << ' ' << config_.routes[e.route < config_.routes.size() ? e.route : 1] << '\n';
      }
      if (!out) {
        std::lock_guard<std::mutex> lock(status_mutex_);
        status_.last_error = "snapshot file: cannot write " + detail::quote_value(tmp);
        return;
      }
    }
    // Rename: a reader (the next start) never sees half a file.
    if (std::rename(tmp.c_str(), config_.snapshot_file.c_str()) != 0) {
      std::lock_guard<std::mutex> lock(status_mutex_);
      status_.last_error = "snapshot file: cannot rename to " + detail::quote_value(config_.snapshot_file);
    }
  }

  void close_pipe() {
    for (int& fd : wake_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }

  const redis_config& config_;
  memory_store& store_;
  std::atomic<bool>& serving_;
  std::atomic<bool> stopping_{false};
  fd_registry registry_;
  redis_connection data_, watch_;
  int wake_[2] = {-1, -1};
  std::once_flag stop_once_;
  std::thread thread_;

  // Owned by the thread.
  clock::time_point next_ping_{}, ping_deadline_{}, next_resync_{}, next_snapshot_{};
  clock::time_point last_healthy_ = clock::now();
  bool ping_outstanding_ = false;
  bool snapshot_dirty_ = false;  // applied changes the snapshot file does not have yet

  mutable std::mutex status_mutex_;
  mutable std::condition_variable synced_cv_;
  redis_status status_;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_REDIS_SYNC_HPP
