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
// lost connection, also while a full load runs (the load stops between batches to
// read the watch connection). Any loss: close both, reconnect with backoff (reset
// only once a connection has stayed up a while), full reload.
//
// Full reloads are coalesced: at most one runs, one more is pending, and a new one
// starts no sooner than min_reload_interval after the last ended. A null invalidation
// (FLUSHDB/FLUSHALL in *any* database) first checks a sentinel key the store writes
// into its own database after each load: still there, our database was not flushed
// and nothing is reloaded.
//
// A server that refuses CLIENT TRACKING (Redis 5, some compatible servers) gets
// polling: full loads every resync_interval, same coalescing; status says which.
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
#include <string_view>
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
    sentinel_ = "grayroute:sync:" + random_hex();
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
      status_.loading = false;
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
  // More queued changed keys than this: reload instead of re-reading them.
  static constexpr std::size_t kMaxQueuedKeys = 100000;

  void run() {
    std::chrono::milliseconds backoff{100};
    std::minstd_rand jitter(static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(this)));
    while (!stopping_.load()) {
      stable_ = false;
      const bool connected = connect();
      if (connected) count_connect();
      if (connected && full_load()) {
        steady_state();  // returns on a lost connection or stop
        save_snapshot_if_due(true);
      }
      disconnect();
      if (stopping_.load()) break;
      // A connection that dies soon after it was made (a watch connection killed right
      // after SUBSCRIBE, say) does not reset the backoff: that is flapping, not health.
      if (stable_) {
        backoff = std::chrono::milliseconds(100);
      } else if (connected) {
        std::lock_guard<std::mutex> lock(status_mutex_);
        ++status_.flaps;
        status_.flapping = true;
      }
      // Jitter spreads the reconnects of many workers after a Redis restart.
      const auto spread = static_cast<std::uint64_t>(backoff.count() / 2 + 1);
      const auto pause = backoff / 2 + std::chrono::milliseconds(static_cast<long long>(jitter() % spread));
      sleep_while_down(pause);
      backoff = std::min(backoff * 2, config_.retry_max);
    }
    disconnect();
  }

  bool connect() {
    if (!data_.open(config_, config_.connect_timeout, config_.command_timeout)) return failed(data_.error());
    watching_ = keyspace_ = false;
    if (!watch_.open(config_, config_.connect_timeout, config_.command_timeout)) return failed(watch_.error());
    redis_reply id = watch_.command({"CLIENT", "ID"});
    if (!id) return failed(watch_.error());
    if (id->type != REDIS_REPLY_INTEGER) return start_polling("CLIENT ID", id.get());
    const std::string self = std::to_string(id->integer);
    std::vector<std::string_view> tracking{"CLIENT", "TRACKING", "on", "REDIRECT", self, "BCAST"};
    // Seed keys are addresses with no common prefix: track every key.
    if (config_.schema != redis_schema::seed) tracking.insert(tracking.end(), {"PREFIX", config_.key});
    redis_reply on = watch_.command(tracking);
    if (!on) return failed(watch_.error());
    if (on->type == REDIS_REPLY_ERROR) return start_polling("CLIENT TRACKING", on.get());
    redis_reply sub = watch_.command({"SUBSCRIBE", "__redis__:invalidate"});
    if (!sub) return failed(watch_.error());
    if (sub->type != REDIS_REPLY_ARRAY) {
      return failed(describe_bad_reply(config_, "SUBSCRIBE", sub.get(), "a subscribe confirmation"));
    }
    watching_ = true;
    std::lock_guard<std::mutex> lock(status_mutex_);
    status_.sync_mode = "tracking";
    return true;
  }

  // The server has no client-side caching (or refuses it to our user). Where it
  // publishes keyspace notifications for the events that change our list, follow
  // those (they do not report flushes: resync_interval covers those); else reload
  // every resync_interval with the data connection alone.
  bool start_polling(const char* step, const redisReply* refusal) {
    const std::string why = std::string(step) + " refused: " + std::string(reply_text(refusal));
    if (keyspace_events_enabled()) {
      const std::string db = std::to_string(config_.database);
      const bool seed = config_.schema == redis_schema::seed;
      const std::string channel = "__keyspace@" + db + "__:" + (seed ? std::string("*") : config_.key);
      redis_reply sub = watch_.command({seed ? "PSUBSCRIBE" : "SUBSCRIBE", channel});
      if (!sub) return failed(watch_.error());
      if (sub->type == REDIS_REPLY_ARRAY) {
        watching_ = keyspace_ = true;
        std::lock_guard<std::mutex> lock(status_mutex_);
        status_.sync_mode = "keyspace notifications (" + why + ")";
        return true;
      }
    }
    watch_.close();
    std::lock_guard<std::mutex> lock(status_mutex_);
    status_.sync_mode = "polling every resync_interval (" + why + ")";
    return true;
  }

  // notify-keyspace-events has K (keyspace channel) and the classes that change our
  // list: generic (DEL, RENAME, EXPIRE), expired, and strings / sets / hashes.
  bool keyspace_events_enabled() {
    redis_reply r = watch_.command({"CONFIG", "GET", "notify-keyspace-events"});
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return false;
    const std::string_view flags = reply_text(r->element[1]);
    auto has = [&](char c) { return flags.find(c) != std::string_view::npos; };
    const char type = config_.schema == redis_schema::seed ? '$' : config_.schema == redis_schema::set ? 's' : 'h';
    return has('K') && (has('A') || (has('g') && has('x') && has(type)));
  }

  void count_connect() {
    std::lock_guard<std::mutex> lock(status_mutex_);
    ++status_.connects;
  }

  void disconnect() {
    data_.close();
    watch_.close();
    ping_outstanding_ = false;
    queued_keys_.clear();
    flush_hint_ = false;
    std::lock_guard<std::mutex> lock(status_mutex_);
    status_.connected = false;
    status_.loading = false;
  }

  bool failed(const std::string& error) {
    std::lock_guard<std::mutex> lock(status_mutex_);
    status_.connected = false;
    if (!stopping_.load()) status_.last_error = error;
    return false;
  }

  // Tracking was switched on before this read, so a write that races it arrives as a
  // notification afterwards and is applied on top (notifications read during the
  // load are queued and re-read after it).
  bool full_load() {
    reload_pending_ = false;
    const auto started = clock::now();
    if (!mark_loading()) return false;
    {
      std::lock_guard<std::mutex> lock(status_mutex_);
      status_.loading = true;
      status_.slow_load = false;
    }
    load_hooks hooks;
    hooks.stopping = &stopping_;
    hooks.between_batches = [this, started](std::size_t seen, std::size_t size, std::string& error) {
      return between_batches(started, seen, size, error);
    };
    redis_load load = load_list(data_, config_, hooks);
    last_load_end_ = clock::now();
    {
      std::lock_guard<std::mutex> lock(status_mutex_);
      status_.loading = false;
      status_.slow_load = false;
    }
    if (!load.ok) return failed("full load: " + load.error);
    aliases_.rebuild(load.entries, load.aliases);
    healthy();
    {
      // The list and the status that describes it change in one step: status_mutex_
      // is held across the swap, so a caller routed by the new list that then asks
      // status() finds it synced (nginx's status page, in the worker that just routed),
      // and one that finds it synced is routed by it. status() may wait for the swap
      // (no Redis I/O happens under the lock), never for Redis.
      std::lock_guard<std::mutex> lock(status_mutex_);
      store_.replace(std::move(load.list));
      serving_.store(true, std::memory_order_relaxed);
      status_.connected = true;
      status_.synced_once = true;
      status_.from_snapshot = false;
      status_.last_sync = std::chrono::system_clock::now();
      ++status_.full_loads;
      status_.ignored = load.ignored;
      status_.last_error.clear();
      status_.last_load_ms = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(last_load_end_ - started).count());
    }
    synced_cv_.notify_all();
    next_resync_ = last_load_end_ + config_.resync_interval;
    if (!config_.snapshot_file.empty()) write_snapshot_file(load.entries);
    snapshot_dirty_ = false;
    return true;
  }

  // Between two batches of a full load: keep the watch connection read and PINGed
  // (a long load must not hide a dead server), and say when the load is slow.
  bool between_batches(clock::time_point started, std::size_t seen, std::size_t size, std::string& error) {
    const auto now = clock::now();
    if (watching_) {
      pollfd watch{watch_.fd(), POLLIN, 0};
      if (::poll(&watch, 1, 0) > 0 && !pump()) {
        error = "abandoned, the watch connection failed: " + watch_.error();
        return false;
      }
      if (ping_outstanding_ && now >= ping_deadline_) {
        error = "abandoned, the watch connection did not answer PING within " +
                std::to_string(config_.command_timeout.count()) + " ms";
        return false;
      }
      if (!ping_outstanding_ && now >= next_ping_ && !ping_watch(now)) {
        error = "abandoned, the watch connection failed: " + watch_.error();
        return false;
      }
    }
    if (now - started > load_budget::for_size(size, config_.command_timeout).slow_after) {
      std::lock_guard<std::mutex> lock(status_mutex_);
      if (!status_.slow_load) {
        status_.slow_load = true;
        status_.slow_load_detail = "full load slow: " + std::to_string(seen) + " of about " + std::to_string(size) +
                                   " keys after " +
                                   std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now - started).count()) +
                                   " ms";
      }
    }
    return !stopping_.load();
  }

  // The sentinel: written into our database as each load starts; a FLUSHDB/FLUSHALL
  // of our database afterwards removes it, so "still there" proves the flush behind a
  // null invalidation was elsewhere, or before the load began. A user that may not
  // write (a replica, a read-only ACL) leaves it unset, and then every flush
  // notification reloads (coalesced).
  bool mark_loading() {
    if (!watching_ || keyspace_) return true;  // only null invalidations are checked against it
    const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(2 * config_.resync_interval +
                                                                           std::chrono::minutes(1));
    redis_reply r = data_.command({"SET", sentinel_, "1", "PX", std::to_string(ttl.count())});
    if (!r) return failed(data_.error());
    sentinel_ok_ = r->type == REDIS_REPLY_STATUS;
    return true;
  }

  clock::time_point next_load_allowed() const { return last_load_end_ + config_.min_reload_interval; }

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
    const auto began = clock::now();
    const auto stable_after = std::max(config_.retry_max, 3 * config_.ping_interval);
    next_ping_ = began + config_.ping_interval;
    while (!stopping_.load()) {
      auto now = clock::now();
      if (!stable_ && now - began >= stable_after) {
        stable_ = true;
        std::lock_guard<std::mutex> lock(status_mutex_);
        status_.flapping = false;
      }
      auto until = std::min(next_ping_, next_resync_);
      if (ping_outstanding_) until = std::min(until, ping_deadline_);
      if (reload_pending_) until = std::min(until, next_load_allowed());
      if (!stable_) until = std::min(until, began + stable_after);

      if (snapshot_dirty_ && !config_.snapshot_file.empty()) until = std::min(until, next_snapshot_);
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
      pollfd fds[2] = {{wake_[0], POLLIN, 0}, {watch_.fd(), POLLIN, 0}};
      const int ready = ::poll(fds, watching_ ? 2 : 1, static_cast<int>(std::clamp<long long>(wait + 1, 0, 60000)));
      if (stopping_.load()) return;
      if (ready > 0 && watching_ && fds[1].revents && !pump()) return;
      if (!apply_queued()) return;
      now = clock::now();
      if (ping_outstanding_ && now >= ping_deadline_) {
        // The answer may have come while we were busy: look again.
        pollfd watch{watch_.fd(), POLLIN, 0};
        if (::poll(&watch, 1, 0) > 0 && (!pump() || !apply_queued())) return;
        if (ping_outstanding_) {
          failed("redis watch connection: no answer to PING within " +
                 std::to_string(config_.command_timeout.count()) + " ms");
          return;
        }
        now = clock::now();
      }
      if (now >= next_resync_) reload_pending_ = true;
      if (reload_pending_ && now >= next_load_allowed() && !full_load()) return;
      if (now >= next_ping_ && !ping()) return;
      save_snapshot_if_due(false);
    }
  }

  // Reads what the watch connection has (a bounded number of reads, so a flood of
  // notifications cannot starve PINGs and resyncs) and queues it. Touches only the
  // watch connection, so it also runs between the batches of a full load.
  bool pump() {
    for (int i = 0; i < 64; ++i) {
      if (!watch_.read_some()) return failed("watch connection: " + watch_.error());
      pollfd watch{watch_.fd(), POLLIN, 0};
      if (::poll(&watch, 1, 0) <= 0) break;
    }
    return drain_notifications();
  }

  bool drain_notifications() {
    std::uint64_t count = 0;
    for (;;) {
      bool ok = true;
      redis_reply r = watch_.buffered_reply(ok);
      if (!ok) return failed("watch connection: " + watch_.error());
      if (!r) break;
      if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) continue;
      const std::string_view kind = reply_text(r->element[0]);
      if (kind == "pong") {
        ping_outstanding_ = false;
        healthy();
        continue;
      }
      if (keyspace_) {
        // ["pmessage", pattern, "__keyspace@0__:<key>", event] or ["message", channel, event].
        if (!((kind == "pmessage" && r->elements == 4) || (kind == "message" && r->elements == 3))) continue;
        ++count;
        const std::string_view channel = reply_text(r->element[r->elements - 2]);
        const std::size_t at = channel.find("__:");
        if (at != std::string_view::npos) changed(channel.substr(at + 3));
        continue;
      }
      if (kind != "message" || r->elements != 3) continue;
      ++count;
      const redisReply* payload = r->element[2];
      if (payload->type != REDIS_REPLY_ARRAY) {
        flush_hint_ = true;  // null: FLUSHDB / FLUSHALL in some database
      } else {
        for (std::size_t i = 0; i < payload->elements; ++i) changed(reply_text(payload->element[i]));
      }
    }
    if (count) {
      std::lock_guard<std::mutex> lock(status_mutex_);
      status_.invalidations += count;
    }
    return true;
  }

  // One key was written: seed keys are queued for a re-read; for set/hash only our
  // key matters (BCAST PREFIX also matches longer names) and it means a reload.
  void changed(std::string_view key) {
    if (config_.schema != redis_schema::seed) {
      if (key == config_.key) reload_pending_ = true;
      return;
    }
    if (reload_pending_) return;
    queued_keys_.emplace_back(key);
    if (queued_keys_.size() > kMaxQueuedKeys) {
      queued_keys_.clear();
      reload_pending_ = true;
    }
  }

  // Applies what pump() queued: the flush check, then the re-read of changed keys.
  bool apply_queued() {
    if (flush_hint_) {
      flush_hint_ = false;
      if (!reload_pending_) {
        bool ours = true;
        if (sentinel_ok_) {
          redis_reply r = data_.command({"EXISTS", sentinel_});
          if (!r) return failed("flush check: " + data_.error());
          ours = !(r->type == REDIS_REPLY_INTEGER && r->integer == 1);
        }
        if (ours) {
          reload_pending_ = true;
        } else {
          std::lock_guard<std::mutex> lock(status_mutex_);
          ++status_.flushes_elsewhere;
        }
      }
    }
    if (reload_pending_) {
      queued_keys_.clear();  // the reload reads them anyway
      return true;
    }
    if (queued_keys_.empty()) return true;
    std::vector<seed_change> changes;
    std::string error;
    const bool ok = reread_seed(data_, config_, queued_keys_, changes, error);
    queued_keys_.clear();
    if (!ok) return failed("re-reading changed keys: " + error);
    for (const auto& c : changes) {
      const ip_network host = ip_network::host(c.address);
      if (aliases_.apply(c, store_.contains(c.address))) {
        store_.insert(host, kGray);
      } else {
        store_.erase(host);
      }
    }
    if (!changes.empty()) snapshot_dirty_ = true;
    return true;
  }

  bool ping_watch(clock::time_point now) {
    // In subscribed mode the answer is ["pong", ""], read by drain_notifications().
    if (!watch_.append({"PING"}) || !watch_.flush()) return failed(watch_.error());
    ping_outstanding_ = true;
    ping_deadline_ = now + config_.command_timeout;
    next_ping_ = now + config_.ping_interval;

    return true;
  }

  bool ping() {
    const auto now = clock::now();
    next_ping_ = now + config_.ping_interval;
    if (watching_ && !ping_outstanding_ && !ping_watch(now)) return false;
    redis_reply r = data_.command({"PING"});
    if (!r) return failed(data_.error());
    if (!watching_) healthy();
    return true;
  }

  void healthy() { last_healthy_ = clock::now(); }

  static std::string random_hex() {
    std::random_device device;
    const std::uint64_t v = (std::uint64_t{device()} << 32) ^ device() ^
                            static_cast<std::uint64_t>(clock::now().time_since_epoch().count());
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(16, '0');
    for (std::size_t i = 0; i < 16; ++i) out[i] = kDigits[(v >> (4 * i)) & 15];
    return out;
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
      status_.last_error += "; snapshot file: " + to_string(*list.error);
      return;
    }
    store_.replace(list.entries);
    {
      std::lock_guard<std::mutex> lock(status_mutex_);
      status_.from_snapshot = true;
    }
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
        out << to_string(e.network) << ' ' << config_.routes[e.route < config_.routes.size() ? e.route : 1] << '\n';
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
  clock::time_point next_ping_{}, ping_deadline_{}, next_resync_{}, last_load_end_{};
  clock::time_point last_healthy_ = clock::now();
  bool ping_outstanding_ = false;
  bool watching_ = false;        // the watch connection is in use (false: polling)
  bool keyspace_ = false;        // ... for keyspace notifications, not CLIENT TRACKING
  bool stable_ = false;          // this connection has stayed up long enough to reset the backoff
  bool reload_pending_ = false;  // a full load is due (at most one waits)
  bool flush_hint_ = false;      // a null invalidation came: check the sentinel
  bool sentinel_ok_ = false;     // the sentinel was written after the last load
  std::string sentinel_;
  std::vector<std::string> queued_keys_;  // changed seed keys to re-read
  seed_aliases aliases_;

  clock::time_point next_snapshot_{};
  bool snapshot_dirty_ = false;  // applied changes the snapshot file does not have yet

  mutable std::mutex status_mutex_;
  mutable std::condition_variable synced_cv_;
  redis_status status_;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_REDIS_SYNC_HPP
