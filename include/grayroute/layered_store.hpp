// One gray list made of several stores ("layers"): a static list, a list file, Redis.
// The first layer that lists the address answers (its own longest-prefix match).
//
//   grayroute::layered_store qa;
//   qa.add(static_entries);      // memory_store: the configuration's own entries
//   qa.add(file_list);           // memory_store loaded from a list file
//   qa.add(redis);               // redis_store
//   qa.lookup(client);           // static, then file, then Redis
//
// Precedence is the order layers are added, and the convention the adapters follow is
// what the configuration says first: entries written in the configuration, then list
// files, then Redis. Why static first: the configuration is reviewed and deployed with
// the gateway, so an entry there (a monitoring host pinned to production inside a gray
// network) must not be undone by a runtime store that anyone with write access to it
// can change, and a static layer never goes stale. Redis adds clients to what the
// configuration says; to let Redis decide for an address, leave it out of the
// configuration. A cross-layer longest-prefix match would need stores to report prefix
// lengths, which the one-method store seam (store.hpp) deliberately does not ask for.
//
// Stores are held by reference (the caller keeps them alive) or shared (add(shared_ptr)),
// so a reloaded policy can keep using the Redis store the previous one synced.
#ifndef GRAYROUTE_LAYERED_STORE_HPP
#define GRAYROUTE_LAYERED_STORE_HPP

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "ip.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// Any store behind one indirect call: what a policy holds for each list layer.
class store_ref {
 public:
  /// Refers to `store`, which must outlive every copy of this reference.
  /// (A store needs `std::optional<route_id> lookup(const ip_address&) const noexcept`.)
  template <class Store, class = std::enable_if_t<is_store_v<Store>>>
  explicit store_ref(const Store& store) noexcept : store_(&store), lookup_(&call<Store>) {}

  /// Shares ownership of `store`: it lives as long as a copy of this reference does.
  template <class Store, class = std::enable_if_t<is_store_v<Store>>>
  explicit store_ref(std::shared_ptr<Store> store) noexcept : store_ref(*store) {
    owner_ = std::move(store);
  }

  std::optional<route_id> lookup(const ip_address& address) const noexcept { return lookup_(store_, address); }

 private:
  template <class Store>
  static std::optional<route_id> call(const void* store, const ip_address& address) noexcept {
    return static_cast<const Store*>(store)->lookup(address);
  }

  const void* store_;
  std::optional<route_id> (*lookup_)(const void*, const ip_address&) noexcept;
  std::shared_ptr<const void> owner_;
};

class layered_store {
 public:
  layered_store() = default;
  explicit layered_store(std::vector<store_ref> layers) : layers_(std::move(layers)) {}

  /// Adds a layer after the others: it answers only for addresses they do not list.
  template <class Store>
  layered_store& add(const Store& store) {
    layers_.emplace_back(store);
    return *this;
  }
  template <class Store>
  layered_store& add(std::shared_ptr<Store> store) {
    layers_.emplace_back(std::move(store));
    return *this;
  }
  layered_store& add(store_ref layer) {
    layers_.push_back(std::move(layer));
    return *this;
  }

  /// The first layer's answer that lists `address`, or nullopt.
  std::optional<route_id> lookup(const ip_address& address) const noexcept {
    for (const store_ref& layer : layers_) {
      if (auto route = layer.lookup(address)) return route;
    }
    return std::nullopt;
  }

  bool contains(const ip_address& address) const noexcept { return lookup(address).has_value(); }
  std::size_t layers() const noexcept { return layers_.size(); }

 private:
  std::vector<store_ref> layers_;
};

static_assert(is_store_v<store_ref> && is_store_v<layered_store>, "layers are stores themselves");

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_LAYERED_STORE_HPP
