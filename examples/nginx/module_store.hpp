// The store the module's routers read: the Redis-synced list of this worker (when
// grayroute_redis is configured) in front of the static grayroute_list entries.
//
// A Redis answer wins, so Redis can carve an exception out of a static network;
// otherwise the static list decides. Both lookups are memory reads: the Redis store
// refreshes its snapshot on its own thread, never on the request path.
#ifndef GRAYROUTE_NGINX_MODULE_STORE_HPP
#define GRAYROUTE_NGINX_MODULE_STORE_HPP

#include <optional>

#include <grayroute/memory_store.hpp>
#include <grayroute/store.hpp>
#if GRAYROUTE_NGINX_REDIS
#include <grayroute/redis_store.hpp>
#endif

namespace grayroute_nginx {

class module_store {
 public:
  std::optional<grayroute::route_id> lookup(const grayroute::ip_address& address) const noexcept {
#if GRAYROUTE_NGINX_REDIS
    if (redis_) {
      if (auto route = redis_->lookup(address)) return route;
    }
#endif
    return static_list_ ? static_list_->lookup(address) : std::nullopt;
  }

  /// The configured entries; null when there are none (the lookup is skipped).
  void set_static_list(const grayroute::memory_store* list) noexcept { static_list_ = list; }

#if GRAYROUTE_NGINX_REDIS
  /// Set by the worker once its store exists, cleared before it is destroyed. Only the
  /// worker's event-loop thread reads it, so a plain pointer is enough.
  void set_redis(const grayroute::redis_store* redis) noexcept { redis_ = redis; }
#endif

 private:
  const grayroute::memory_store* static_list_ = nullptr;
#if GRAYROUTE_NGINX_REDIS
  const grayroute::redis_store* redis_ = nullptr;
#endif
};

static_assert(grayroute::is_store_v<module_store>, "module_store must satisfy the store requirements");

}  // namespace grayroute_nginx

#endif  // GRAYROUTE_NGINX_MODULE_STORE_HPP
