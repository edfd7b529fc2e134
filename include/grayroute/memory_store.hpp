// The in-memory gray list: exact addresses and networks, IPv4 and IPv6, each on a
// route, answered by longest-prefix match without locks on the read side.
//
//   grayroute::memory_store store;
//   store.insert(*grayroute::parse_network("192.168.116.0/24"));   // on the gray route
//   store.insert(*grayroute::parse_network("192.168.116.7"), grayroute::kProduction);  // an exception
//   store.lookup(*grayroute::parse_ip("192.168.116.9"));           // kGray
//
// Concurrency: any number of threads call lookup()/contains() while writers
// (serialised by an internal mutex) call insert/erase/replace. Readers never block
// and never see half of a replace(): they read one published snapshot of table
// pointers; exact-address tables are updated in place with atomic slot writes, and
// anything rebuilt (a grown table, the network index, a whole new list) is a new
// snapshot, published with one atomic store and freed after detail::reader_gate
// (userspace RCU over membarrier) says no reader still holds the old one. An insert or erase is visible to every
// lookup that starts after it returns.
//
// Costs: inserting or erasing an exact address is amortised O(1) (a table grows by
// rebuilding at 70% occupancy). A network insert/erase rebuilds only the network
// index of its family, O(n log n) in the number of networks.
#ifndef GRAYROUTE_MEMORY_STORE_HPP
#define GRAYROUTE_MEMORY_STORE_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/host_table.hpp"
#include "detail/prefix_index.hpp"
#include "detail/reader_gate.hpp"
#include "ip.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// One line of a gray list: a network (or host) and the route it sends clients to.
struct store_entry {
  ip_network network;
  route_id route = kGray;

  friend bool operator==(const store_entry& a, const store_entry& b) noexcept {
    return a.network == b.network && a.route == b.route;
  }
};

// A class template only so that its members are compiled where they are used: as a
// plain class, every translation unit including this header paid for the writer side
// (std::map, the prefix-index build, sort), about half of what grayroute.hpp cost to
// include. There is one instantiation; use the name memory_store.
template <class Unused = void>
class basic_memory_store {
 public:
  basic_memory_store() : basic_memory_store(std::vector<store_entry>{}) {}

  explicit basic_memory_store(const std::vector<store_entry>& entries) {
    tables t = build(entries);
    current_.store(adopt(std::move(t)), std::memory_order_seq_cst);
  }

  basic_memory_store(const basic_memory_store&) = delete;
  basic_memory_store& operator=(const basic_memory_store&) = delete;

  ~basic_memory_store() { delete current_.load(std::memory_order_relaxed); }

  /// The route of the longest listed network containing `address`, or nullopt.
  /// A v4-mapped IPv6 address is looked up as the IPv4 address it carries.
  std::optional<route_id> lookup(const ip_address& address) const noexcept {
    // Read the fields one by one rather than copying the address: a wide load of
    // a just-stored argument cannot be forwarded from the store buffer, and that
    // stall would serialise the cache misses of consecutive lookups.
    if (address.is_v4()) return lookup_v4(address.v4_value());
    if (address.is_v4_mapped()) return lookup_v4(static_cast<std::uint32_t>(address.v6_low()));
    return lookup_v6(address.v6_high(), address.v6_low());
  }

  /// True when `address` is listed, on any route.
  bool contains(const ip_address& address) const noexcept { return lookup(address).has_value(); }

  /// Lists `network` on `route` (replacing the route it had, if any).
  void insert(const ip_network& network, route_id route = kGray) {
    std::lock_guard<std::mutex> lock(write_mutex_);
    const ip_network n = network.unmapped();
    if (!n.is_host()) {
      auto& networks = n.address().is_v4() ? writer_.v4_networks : writer_.v6_networks;
      auto [it, added] = networks.insert_or_assign(n, route);
      (void)it;
      if (added) size_.fetch_add(1, std::memory_order_relaxed);
      republish_networks(n.address().family());
      return;
    }
    if (n.address().is_v6()) {
      if (writer_.v6_hosts->full()) grow();
      const v6_key key{n.address().v6_high(), n.address().v6_low()};
      if (writer_.v6_hosts->insert(key, hash_v6(key), route) == detail::tagged_table<2>::change::added) {
        size_.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    if (writer_.v4_gray->full() || writer_.v4_tagged->full()) grow();
    const std::uint32_t key = n.address().v4_value();
    const std::uint64_t hash = detail::mix64(key);
    // The filter first: a reader that finds the key in a table must pass the filter.
    writer_.v4_filter->add(hash);
    bool added;
    if (route == kGray && detail::gray_v4_table::storable(key)) {
      added = writer_.v4_gray->insert(key, hash);
      if (writer_.v4_tagged->erase({key}, hash)) added = false;  // it moved tables
    } else {
      added = writer_.v4_tagged->insert({key}, hash, route) == detail::tagged_table<1>::change::added;
      if (detail::gray_v4_table::storable(key) && writer_.v4_gray->erase(key, hash)) added = false;
    }
    if (added) size_.fetch_add(1, std::memory_order_relaxed);
  }

  /// Removes `network` exactly as listed (not the networks inside it). False if absent.
  bool erase(const ip_network& network) {
    std::lock_guard<std::mutex> lock(write_mutex_);
    const ip_network n = network.unmapped();
    bool erased = false;
    if (!n.is_host()) {
      auto& networks = n.address().is_v4() ? writer_.v4_networks : writer_.v6_networks;
      erased = networks.erase(n) > 0;
      if (erased) republish_networks(n.address().family());
    } else if (n.address().is_v6()) {
      const v6_key key{n.address().v6_high(), n.address().v6_low()};
      erased = writer_.v6_hosts->erase(key, hash_v6(key));
    } else {
      const std::uint32_t key = n.address().v4_value();
      const std::uint64_t hash = detail::mix64(key);
      erased = (detail::gray_v4_table::storable(key) && writer_.v4_gray->erase(key, hash)) ||
               writer_.v4_tagged->erase({key}, hash);
      if (erased) {
        size_.fetch_sub(1, std::memory_order_relaxed);
        // The filter keeps an erased key's bits; rebuild once stale bits could be half of it.
        if (++stale_filter_bits_ > 1024 + size() / 2) grow();
      }
      return erased;
    }
    if (erased) size_.fetch_sub(1, std::memory_order_relaxed);
    return erased;
  }

  /// Swaps in a whole new list at once: readers see the old list or the new one.
  /// Later duplicates of a network override earlier ones.
  void replace(const std::vector<store_entry>& entries) {
    tables t = build(entries);
    std::lock_guard<std::mutex> lock(write_mutex_);
    publish(std::move(t));
  }

  void clear() { replace({}); }

  /// Number of listed networks and addresses.
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  bool empty() const noexcept { return size() == 0; }

  /// Every entry, IPv4 before IPv6, networks sorted, hosts in table order.
  std::vector<store_entry> entries() const {
    std::lock_guard<std::mutex> lock(write_mutex_);
    std::vector<store_entry> out;
    out.reserve(size());
    writer_.v4_gray->for_each([&](std::uint32_t k) { out.push_back({ip_network::host(ip_address::v4(k)), kGray}); });
    writer_.v4_tagged->for_each([&](const detail::tagged_table<1>::key_type& k, route_id r) {
      out.push_back({ip_network::host(ip_address::v4(static_cast<std::uint32_t>(k[0]))), r});
    });
    for (const auto& [n, r] : writer_.v4_networks) out.push_back({n, r});
    writer_.v6_hosts->for_each([&](const v6_key& k, route_id r) {
      out.push_back({ip_network::host(ip_address::v6(k[0], k[1])), r});
    });
    for (const auto& [n, r] : writer_.v6_networks) out.push_back({n, r});
    return out;
  }

  /// Bytes held by the lookup structures (tables, filter, network indexes).
  std::size_t memory_bytes() const {
    std::lock_guard<std::mutex> lock(write_mutex_);
    std::size_t bytes = writer_.v4_gray->bytes() + writer_.v4_tagged->bytes() + writer_.v4_filter->bytes() +
                        writer_.v6_hosts->bytes();
    if (writer_.v4_index) bytes += writer_.v4_index->bytes();
    if (writer_.v6_index) bytes += writer_.v6_index->bytes();
    return bytes;
  }

 private:
  using v6_key = detail::tagged_table<2>::key_type;
  using v4_prefix_index = detail::prefix_index<std::uint32_t>;
  using v6_prefix_index = detail::prefix_index<detail::u128>;

  // What readers see: plain pointers, immutable once published.
  struct snapshot {
    detail::gray_v4_table::view v4_gray;
    detail::bloom_filter::view v4_filter;
    const detail::tagged_table<1>* v4_tagged;
    const v4_prefix_index* v4_networks;  // null when there are none
    const detail::tagged_table<2>* v6_hosts;
    const v6_prefix_index* v6_networks;
  };

  // What the writer owns; the tables are shared with the published snapshot.
  struct tables {
    std::unique_ptr<detail::gray_v4_table> v4_gray;
    std::unique_ptr<detail::tagged_table<1>> v4_tagged;
    std::unique_ptr<detail::bloom_filter> v4_filter;
    std::unique_ptr<detail::tagged_table<2>> v6_hosts;
    std::map<ip_network, route_id> v4_networks, v6_networks;
    std::unique_ptr<v4_prefix_index> v4_index;
    std::unique_ptr<v6_prefix_index> v6_index;
  };

  std::optional<route_id> lookup_v4(std::uint32_t key) const noexcept {
    const auto guard = detail::reader_gate::enter();
    const snapshot* s = current_.load(std::memory_order_seq_cst);
    const std::uint64_t hash = detail::mix64(key);
    // Start the table's cache miss now, so a listed client waits for one miss
    // (filter and table in parallel) instead of two in a row.
    __builtin_prefetch(s->v4_gray.home(hash));
    if (s->v4_filter.may_contain(hash)) {
      if (detail::gray_v4_table::storable(key) && s->v4_gray.find(key, hash)) return kGray;
      if (auto r = s->v4_tagged->find({key}, hash)) return r;
    }
    return s->v4_networks ? s->v4_networks->lookup(key) : std::nullopt;
  }

  std::optional<route_id> lookup_v6(std::uint64_t high, std::uint64_t low) const noexcept {
    const auto guard = detail::reader_gate::enter();
    const snapshot* s = current_.load(std::memory_order_seq_cst);
    const v6_key key{high, low};
    if (auto r = s->v6_hosts->find(key, hash_v6(key))) return r;
    return s->v6_networks ? s->v6_networks->lookup({high, low}) : std::nullopt;
  }

  static std::uint64_t hash_v6(const v6_key& k) noexcept { return detail::mix64(k[0] ^ detail::mix64(k[1])); }

  template <class Index>
  static std::unique_ptr<Index> index_of(const std::map<ip_network, route_id>& networks) {
    if (networks.empty()) return nullptr;
    std::vector<typename Index::network> flat;
    flat.reserve(networks.size());
    for (const auto& [n, r] : networks) {
      if constexpr (std::is_same_v<Index, v4_prefix_index>) {
        flat.push_back({n.address().v4_value(), n.prefix_length(), r});
      } else {
        flat.push_back({{n.address().v6_high(), n.address().v6_low()}, n.prefix_length(), r});
      }
    }
    return std::make_unique<Index>(std::move(flat));
  }

  // Fresh tables holding `entries`, sized for them with room to grow.
  static tables build(const std::vector<store_entry>& entries) {
    std::size_t v4_gray = 0, v4_tagged = 0, v6_hosts = 0;
    for (const auto& e : entries) {
      const ip_network n = e.network.unmapped();
      if (!n.is_host()) continue;
      if (n.address().is_v6()) {
        ++v6_hosts;
      } else if (e.route == kGray && detail::gray_v4_table::storable(n.address().v4_value())) {
        ++v4_gray;
      } else {
        ++v4_tagged;
      }
    }
    tables t = empty_tables(v4_gray, v4_tagged, v6_hosts);
    for (const auto& e : entries) {
      const ip_network n = e.network.unmapped();
      if (!n.is_host()) {
        (n.address().is_v4() ? t.v4_networks : t.v6_networks)[n] = e.route;
        continue;
      }
      if (n.address().is_v6()) {
        const v6_key key{n.address().v6_high(), n.address().v6_low()};
        t.v6_hosts->insert(key, hash_v6(key), e.route);
        continue;
      }
      const std::uint32_t key = n.address().v4_value();
      const std::uint64_t hash = detail::mix64(key);
      t.v4_filter->add(hash);
      if (e.route == kGray && detail::gray_v4_table::storable(key)) {
        t.v4_gray->insert(key, hash);
        t.v4_tagged->erase({key}, hash);
      } else {
        t.v4_tagged->insert({key}, hash, e.route);
        if (detail::gray_v4_table::storable(key)) t.v4_gray->erase(key, hash);
      }
    }
    t.v4_index = index_of<v4_prefix_index>(t.v4_networks);
    t.v6_index = index_of<v6_prefix_index>(t.v6_networks);
    return t;
  }

  static tables empty_tables(std::size_t v4_gray, std::size_t v4_tagged, std::size_t v6_hosts) {
    tables t;
    const unsigned gray_bits = detail::table_bits_for(v4_gray);
    t.v4_gray = std::make_unique<detail::gray_v4_table>(gray_bits);
    t.v4_tagged = std::make_unique<detail::tagged_table<1>>(detail::table_bits_for(v4_tagged));
    // The filter covers both IPv4 tables, so it is sized for both.
    t.v4_filter = std::make_unique<detail::bloom_filter>(detail::table_bits_for(v4_gray + v4_tagged));
    t.v6_hosts = std::make_unique<detail::tagged_table<2>>(detail::table_bits_for(v6_hosts));
    return t;
  }

  static std::size_t count(const tables& t) {
    return t.v4_gray->live() + t.v4_tagged->live() + t.v6_hosts->live() + t.v4_networks.size() +
           t.v6_networks.size();
  }

  snapshot* adopt(tables&& t) {
    writer_ = std::move(t);
    size_.store(count(writer_), std::memory_order_relaxed);
    stale_filter_bits_ = 0;
    return new snapshot{writer_.v4_gray->reader_view(), writer_.v4_filter->reader_view(), writer_.v4_tagged.get(),
                        writer_.v4_index.get(),         writer_.v6_hosts.get(),               writer_.v6_index.get()};
  }

  // Publishes `t` as the new list and frees the old one once no reader holds it.
  // Caller holds write_mutex_.
  void publish(tables&& t) {
    tables old = std::move(writer_);
    snapshot* fresh = adopt(std::move(t));
    snapshot* previous = current_.exchange(fresh, std::memory_order_seq_cst);
    detail::reader_gate::synchronize();
    delete previous;
    // `old` and its tables die here, after the grace period.
  }

  // Rebuilds the exact-address tables at a size that fits what they hold now
  // (growing them, dropping tombstones, clearing stale filter bits).
  void grow() {
    std::vector<store_entry> all;
    all.reserve(count(writer_));
    writer_.v4_gray->for_each([&](std::uint32_t k) { all.push_back({ip_network::host(ip_address::v4(k)), kGray}); });
    writer_.v4_tagged->for_each([&](const detail::tagged_table<1>::key_type& k, route_id r) {
      all.push_back({ip_network::host(ip_address::v4(static_cast<std::uint32_t>(k[0]))), r});
    });
    writer_.v6_hosts->for_each([&](const v6_key& k, route_id r) {
      all.push_back({ip_network::host(ip_address::v6(k[0], k[1])), r});
    });
    tables t = build(all);  // sized to be at most half full
    t.v4_networks = writer_.v4_networks;
    t.v6_networks = writer_.v6_networks;
    t.v4_index = std::move(writer_.v4_index);
    t.v6_index = std::move(writer_.v6_index);
    publish(std::move(t));
  }

  void republish_networks(ip_family family) {
    // Only the changed family's index is rebuilt; everything else is shared.
    snapshot* fresh = new snapshot(*current_.load(std::memory_order_relaxed));
    std::unique_ptr<v4_prefix_index> old_v4;
    std::unique_ptr<v6_prefix_index> old_v6;
    if (family == ip_family::v4) {
      old_v4 = std::move(writer_.v4_index);
      writer_.v4_index = index_of<v4_prefix_index>(writer_.v4_networks);
      fresh->v4_networks = writer_.v4_index.get();
    } else {
      old_v6 = std::move(writer_.v6_index);
      writer_.v6_index = index_of<v6_prefix_index>(writer_.v6_networks);
      fresh->v6_networks = writer_.v6_index.get();
    }
    snapshot* previous = current_.exchange(fresh, std::memory_order_seq_cst);
    detail::reader_gate::synchronize();
    delete previous;
  }

  std::atomic<snapshot*> current_{nullptr};
  std::atomic<std::size_t> size_{0};
  mutable std::mutex write_mutex_;
  tables writer_;
  std::size_t stale_filter_bits_ = 0;
};

/// The in-memory gray list (see the top of this header).
using memory_store = basic_memory_store<>;

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_MEMORY_STORE_HPP
