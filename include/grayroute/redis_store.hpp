// A gray list whose source of truth is Redis, read without touching the network.
//
//   grayroute::redis_config config;                 // 127.0.0.1:6379, seed schema
//   config.password = "foobared";
//   grayroute::redis_store store(config);           // returns at once; syncs in the background
//   grayroute::router<grayroute::redis_store> router(store, routes);
//
// Synced mode (the default): lookups read a memory_store snapshot; one background
// thread loads the whole list (SCAN in batches), follows changes through Redis
// client-side caching invalidations (or polls, where CLIENT TRACKING is refused),
// reloads after every reconnect, every resync_interval and every flush of its own
// database (coalesced, at most one per min_reload_interval), and publishes only
// complete reads. Every command and every load runs against a deadline. When Redis is
// down the last snapshot keeps answering (until max_staleness, if set); nothing on the
// request path waits for Redis. Direct mode does one GET per lookup, as the seed did:
// for comparison and small setups. See docs/redis.md.
//
// This is the only grayroute header that includes hiredis (target grayroute::redis).
#ifndef GRAYROUTE_REDIS_STORE_HPP
#define GRAYROUTE_REDIS_STORE_HPP

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "detail/redis_connection.hpp"
#include "detail/redis_load.hpp"
#include "detail/redis_pool.hpp"
#include "detail/redis_sync.hpp"
#include "ip.hpp"
#include "memory_store.hpp"
#include "redis_config.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

class redis_store {
 public:
  /// Starts syncing (synced mode) and returns without waiting for Redis. Throws
  /// config_error for an invalid config only, never because Redis is down.
  explicit redis_store(redis_config config) : config_(std::move(config)) {
    detail::validate(config_);
    if (config_.mode == redis_mode::direct) {
      pool_ = std::make_unique<detail::redis_pool>(config_);
    } else {
      sync_ = std::make_unique<detail::redis_sync>(config_, store_, serving_);
    }
  }

  /// Stops and joins the sync thread, closing its connections; bounded by connect_timeout.
  ~redis_store() { stop(); }

  redis_store(const redis_store&) = delete;
  redis_store& operator=(const redis_store&) = delete;

  /// The route of `address`, or nullopt when it is not listed. Synced mode: reads
  /// memory only. Direct mode: one GET, never longer than command_timeout in all,
  /// nullopt on failure.
  std::optional<route_id> lookup(const ip_address& address) const noexcept {
    if (pool_) return pool_->lookup(address);
    if (!serving_.load(std::memory_order_relaxed)) return std::nullopt;
    return store_.lookup(address);
  }

  bool contains(const ip_address& address) const noexcept { return lookup(address).has_value(); }

  /// Connected, last sync, entries, last error: for health checks and logs.
  redis_status status() const { return pool_ ? pool_->status() : sync_->status(); }

  /// True once a full load has completed (at once in direct mode).
  bool wait_until_synced(std::chrono::milliseconds timeout) const {
    return pool_ ? true : sync_->wait_until_synced(timeout);
  }

  /// Stops syncing; lookups keep answering from the last snapshot. Idempotent.
  void stop() {
    if (sync_) sync_->stop();
    if (pool_) pool_->stop();
  }

  /// The snapshot lookups read (synced mode), e.g. for memory_bytes().
  const memory_store& snapshot() const noexcept { return store_; }
  const redis_config& config() const noexcept { return config_; }

 private:
  redis_config config_;
  memory_store store_;
  std::atomic<bool> serving_{true};
  std::unique_ptr<detail::redis_pool> pool_;
  std::unique_ptr<detail::redis_sync> sync_;
};

static_assert(is_store_v<redis_store>, "redis_store must satisfy the store requirements");

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_REDIS_STORE_HPP
