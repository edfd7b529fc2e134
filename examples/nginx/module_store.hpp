// The store the module's routers read: the Redis-synced list of this worker (when
// grayroute_redis is configured) in front of the static grayroute_list entries.
//
// A Redis answer wins, so Redis can carve an exception out of a static network;
// otherwise the static list decides. Both lookups are memory reads: the Redis store
// refreshes its snapshot on its own thread, never on the request path.
#ifndef GRAYROUTE_NGINX_MODULE_STORE_HPP
#define GRAYROUTE_NGINX_MODULE_STORE_HPP

#include <optional>
#include <utility>

#include <grayroute/layered_store.hpp>
#include <grayroute/memory_store.hpp>
#include <grayroute/store.hpp>

namespace grayroute_nginx {

class module_store {
 public:
  std::optional<grayroute::route_id> lookup(const grayroute::ip_address& address) const noexcept {
    if (redis_) {
      if (auto route = redis_->lookup(address)) return route;
    }
    return static_list_ ? static_list_->lookup(address) : std::nullopt;
  }

  /// The configured entries; null when there are none (the lookup is skipped).
  void set_static_list(const grayroute::memory_store* list) noexcept { static_list_ = list; }

  /// Set by the worker once its Redis store exists, cleared before it is destroyed.
  /// Only the worker's event-loop thread reads it.
  void set_redis(std::optional<grayroute::store_ref> redis) noexcept { redis_ = std::move(redis); }

 private:
  const grayroute::memory_store* static_list_ = nullptr;
  std::optional<grayroute::store_ref> redis_;
};

static_assert(grayroute::is_store_v<module_store>, "module_store must satisfy the store requirements");

}  // namespace grayroute_nginx

#endif  // GRAYROUTE_NGINX_MODULE_STORE_HPP
