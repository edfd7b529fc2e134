// Direct mode: the seed's design, one GET per lookup over pooled connections. It exists
// to compare against (bench_redis) and for small setups that want no background thread.
// Each lookup is bounded by command_timeout (connect, AUTH and GET together); after a failure the
// pool answers "not listed" without trying again until a short backoff has passed, so
// a dead Redis costs one timeout per backoff period, not one per request.
#ifndef GRAYROUTE_DETAIL_REDIS_POOL_HPP
#define GRAYROUTE_DETAIL_REDIS_POOL_HPP

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "../ip.hpp"
#include "../redis_config.hpp"
#include "../store.hpp"
#include "../version.hpp"
#include "redis_connection.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

class redis_pool {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxIdle = 64;

  explicit redis_pool(const redis_config& config) : config_(config) {}

  std::optional<route_id> lookup(const ip_address& address) const noexcept {
    if (stopped_.load(std::memory_order_relaxed)) return std::nullopt;
    if (clock::now().time_since_epoch().count() < retry_after_.load(std::memory_order_relaxed)) return std::nullopt;
#if GRAYROUTE_HAS_EXCEPTIONS
    try {
#endif
      sigpipe_guard guard;
      char text[ip_address::kMaxTextLength + 1];
      // As in synced mode, a v4-mapped peer (::ffff:10.1.2.3) is its IPv4 address.
      const std::string_view key(text, address.unmapped().format(text));
      // One deadline for the whole lookup: connect, AUTH, SELECT and GET share it.
      const auto deadline = clock::now() + config_.command_timeout;
      std::unique_ptr<redis_connection> c = take();
      if (!c) {
        c = std::make_unique<redis_connection>();
        if (!c->open(config_, std::min(config_.connect_timeout, config_.command_timeout), config_.command_timeout,
                     deadline)) {
          failure(c->error());
          return std::nullopt;
        }
      }
      redis_reply r = c->command({"GET", key}, deadline);
      if (!r) {
        failure(c->error());
        return std::nullopt;
      }
      if (r->type == REDIS_REPLY_ERROR) {
        // WRONGTYPE: the key holds a set or a hash, so it does not list the address (the
        // seed's rule, as in synced mode); the connection is fine, keep it.
        if (reply_text(r.get()).compare(0, 9, "WRONGTYPE") == 0) {
          r.reset();
          give_back(std::move(c));
          return std::nullopt;
        }
        failure("redis GET failed: " + std::string(reply_text(r.get())));
        return std::nullopt;
      }
      const bool listed = r->type == REDIS_REPLY_STRING && reply_text(r.get()) == key;
      r.reset();
      give_back(std::move(c));
      return listed ? std::optional<route_id>(kGray) : std::nullopt;
#if GRAYROUTE_HAS_EXCEPTIONS
    } catch (...) {
      return std::nullopt;  // bad_alloc: "not listed" is the safe answer
    }
#endif
  }

  void stop() {
    stopped_.store(true);
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.clear();
    connected_ = false;
  }

  redis_status status() const {
    std::lock_guard<std::mutex> lock(mutex_);
    redis_status s;
    s.connected = connected_;
    s.synced_once = true;  // nothing to load: every lookup asks Redis
    s.sync_mode = "direct";
    s.last_error = last_error_;
    return s;
  }

 private:
  std::unique_ptr<redis_connection> take() const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.empty()) return nullptr;
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }

  void give_back(std::unique_ptr<redis_connection> c) const {
    std::lock_guard<std::mutex> lock(mutex_);
    connected_ = true;
    failures_ = 0;
    if (idle_.size() < kMaxIdle && !stopped_.load()) idle_.push_back(std::move(c));
  }

  void failure(const std::string& error) const {
    std::lock_guard<std::mutex> lock(mutex_);
    connected_ = false;
    last_error_ = error;
    // Connections that were idle are probably dead too.
    idle_.clear();
    const auto backoff = std::min(std::chrono::milliseconds(100 << std::min(failures_, 6)), config_.retry_max);
    ++failures_;
    retry_after_.store((clock::now() + backoff).time_since_epoch().count(), std::memory_order_relaxed);
  }

  const redis_config& config_;
  std::atomic<bool> stopped_{false};
  mutable std::atomic<clock::rep> retry_after_{0};
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<redis_connection>> idle_;
  mutable bool connected_ = false;
  mutable int failures_ = 0;
  mutable std::string last_error_;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_REDIS_POOL_HPP
