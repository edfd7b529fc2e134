// The in-memory gray list: exact addresses and networks, IPv4 and IPv6, each on a
// route, answered by longest-prefix match without locks on the read side.
//
//   grayroute::memory_store store;
//   store.insert(*grayroute::parse_network("192.168.116.0/24"));   // on the gray route
//   store.insert(*grayroute::parse_network("192.168.116.7"), grayroute::kProduction);  // an exception
//   store.lookup(*grayroute::parse_ip("192.168.116.9"));           // kGray
//
// An IPv4 lookup (the hot path) is two independent loads, issued together:
//   - the host's bucket: 16 four-byte keys in one cache line, matched at once with
//     SSE2 (detail/host_table.hpp); a bucket with room ends the probe, so a listed
//     or unlisted host costs one line. 8.4 bytes per host at 1M hosts.
//   - the /16's entry in a 65,536-entry directory (detail/prefix_index.hpp): either
//     the answer for the whole /16 ("no network here" included), or a pointer to
//     the few ranges inside it, searched with one SIMD compare. About 30 bytes per
//     network plus the 512 KiB directory.
// No branch waits on the answer (found or not), so consecutive lookups overlap
// their cache misses; lookup_batch() also prefetches bucket, entry and ranges
// ahead. Measured (bench/bench_lookup.cpp: 1M hosts + 10K random /16-/24
// networks, half the probes listed, CPU ns per lookup, median of 5 on a loaded
// 2-core VM, two runs), hot (64K clients) / cold (1M clients):
//   memory_store, hosts + networks     9.6-10.1 / 24.2-27.6
//   absl::flat_hash_set, hosts only   10.5-11.2 / 16.7-21.0
//   absl + DPDK rte_lpm back to back  21.9-34.3 / 31.9-34.5  (rte_lpm alone 2.5-3.9 / 10.9-11.7)
//   memory_store, hosts only           5.6-8.3  /  8.1-21.1
//   std::unordered_set, hosts only    50.0-56.1 / 58.5-59.8
//
// Concurrency: any number of threads call lookup()/contains()/lookup_batch()
// while writers (serialised by an internal mutex) call insert/erase/replace.
// Readers never block and never see half of a change: they read one published
// snapshot of table pointers; host tables, directory entries and IPv6 network
// entries are updated in place with single atomic stores (an IPv4 network's /16
// ranges, or the ranges under an IPv6 network's key, are rebuilt aside and swapped
// in), and anything wider (a grown table, an IPv4 network shorter than /16, which
// spans directory entries, a whole new list) is published with one atomic store. What readers may still hold is
// freed after detail::reader_gate (userspace RCU over membarrier) says no reader
// does; small changes are retired in batches, one grace period for many. An insert
// or erase is visible to every lookup that starts after it returns.
//
// Costs: inserting or erasing a host is amortised O(1) (a table grows by
// rebuilding at 70% occupancy). An IPv4 network longer than /16 makes a new copy
// of its /16's ranges, O(ranges there); a shorter one copies the directory
// (512 KiB). An IPv6 network rebuilds the one entry it falls in, O(networks of its
// length band under the same key: /32-/47 share a /32, /48-/63 a /48, ...). 100,000
// random networks insert one at a time in about 0.15 s of CPU, IPv4 (/16-/24) or
// IPv6 (/32-/64) alike.
#ifndef GRAYROUTE_MEMORY_STORE_HPP
#define GRAYROUTE_MEMORY_STORE_HPP

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/host_table.hpp"
#include "detail/plain_mutex.hpp"
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
// include. There is one instantiation; use the name memory_store. The table types are
// named through `dependent` for the same reason: a member of a template whose type
// does not depend on the parameter (std::map<ip_network, route_id>, the tables'
// unique_ptrs) is instantiated where the template is defined, in every includer.
template <class Unused = void>
class basic_memory_store {
  template <class T>
  using dependent = typename detail::dependent_type<T, Unused>::type;
  using gray_table = dependent<detail::gray_v4_table>;
  using v4_tagged_table = dependent<detail::tagged_table<1>>;
  using v6_tagged_table = dependent<detail::tagged_table<2>>;
  using filter = dependent<detail::bloom_filter>;
  using network_map = dependent<std::map<ip_network, route_id>>;

 public:
  basic_memory_store() : basic_memory_store(std::vector<store_entry>{}) {}

  explicit basic_memory_store(const std::vector<store_entry>& entries) {
    tables t = build(entries);
    current_.store(adopt(std::move(t)), std::memory_order_seq_cst);
  }

  basic_memory_store(const basic_memory_store&) = delete;
  basic_memory_store& operator=(const basic_memory_store&) = delete;

  // No reader may still be inside a lookup: what the graveyard holds dies now.
  ~basic_memory_store() { delete current_.load(std::memory_order_relaxed); }

  /// The route of the longest listed network containing `address`, or nullopt.
  /// A v4-mapped IPv6 address is looked up as the IPv4 address it carries.
  std::optional<route_id> lookup(const ip_address& address) const noexcept {
    // Read the fields one by one rather than copying the address: a wide load of
    // a just-stored argument cannot be forwarded from the store buffer, and that
    // stall would serialise the cache misses of consecutive lookups.
    const auto guard = detail::reader_gate::enter();
    const snapshot& s = *current_.load(std::memory_order_seq_cst);
    // Route codes (0: none, else route + 1) until here: an optional assembled inside
    // an out-of-line call comes back through the stack in pieces, and the failed
    // store-to-load forwarding that follows serialises consecutive lookups.
    if (address.is_v4()) return detail::route_of(code_v4(s, address.v4_value()));
    if (address.is_v4_mapped()) return detail::route_of(code_v4(s, static_cast<std::uint32_t>(address.v6_low())));
    return lookup_v6(s, address.v6_high(), address.v6_low());
  }

  /// lookup() of `count` addresses into `routes`, for callers that resolve many
  /// clients at once (log processors, pre-computation): one read section for the
  /// whole batch, and each address's cache lines requested several lookups before
  /// they are needed, so the misses of a batch overlap.
  ///   std::vector<std::optional<grayroute::route_id>> routes(clients.size());
  ///   store.lookup_batch(clients.data(), routes.data(), clients.size());
  void lookup_batch(const ip_address* addresses, std::optional<route_id>* routes, std::size_t count) const noexcept {
    const auto guard = detail::reader_gate::enter();
    const snapshot& s = *current_.load(std::memory_order_seq_cst);
    // Two stages, far enough ahead to cover a miss to memory at a few nanoseconds
    // per lookup: the host bucket and the /16's directory entry first, then, once
    // that entry has arrived, the chunk it points to. (No helper function for the
    // prefetches: GCC 12 finds such a helper pure and deletes the calls.)
    constexpr std::size_t kAhead = 8;
    for (std::size_t i = 0; i < count + 2 * kAhead; ++i) {
      if (i < count && (addresses[i].is_v4() || addresses[i].is_v4_mapped())) {
        const std::uint32_t key = static_cast<std::uint32_t>(addresses[i].v6_low());
        __builtin_prefetch(s.v4_gray.bucket(gray_table::hash(key)));
        __builtin_prefetch(s.v4_networks + (key >> 16));
      }
      if (i < kAhead) continue;
      const std::size_t j = i - kAhead;
      if (j < count && (addresses[j].is_v4() || addresses[j].is_v4_mapped())) {
        const std::uint32_t key = static_cast<std::uint32_t>(addresses[j].v6_low());
        __builtin_prefetch(v4_directory::chunk_of(s.v4_networks[key >> 16].load(std::memory_order_acquire)));
      }
      if (i < 2 * kAhead) continue;
      const ip_address& a = addresses[i - 2 * kAhead];
      routes[i - 2 * kAhead] = a.is_v4() || a.is_v4_mapped()
                                   ? detail::route_of(code_v4(s, static_cast<std::uint32_t>(a.v6_low())))
                                   : lookup_v6(s, a.v6_high(), a.v6_low());
    }
  }

  /// True when `address` is listed, on any route.
  bool contains(const ip_address& address) const noexcept { return lookup(address).has_value(); }

  /// Lists `network` on `route` (replacing the route it had, if any).
  void insert(const ip_network& network, route_id route = kGray) {
    detail::plain_lock lock(write_mutex_);
    const ip_network n = network.unmapped();
    if (!n.is_host() && n.address().is_v6()) {
      if (writer_.v6_index->insert(n, route, graveyard_) == v6_table::change::added) {
        size_.fetch_add(1, std::memory_order_relaxed);
      }
      return bury_if_full();
    }
    if (!n.is_host()) {
      auto& networks = writer_.v4_networks;
      const auto it = networks.find(n);
      if (it != networks.end() && it->second == route) return;
      if (it == networks.end()) size_.fetch_add(1, std::memory_order_relaxed);
      networks[n] = route;
      networks_changed(n);
      return;
    }
    if (n.address().is_v6()) {
      if (writer_.v6_hosts->full()) grow();
      const v6_key key{n.address().v6_high(), n.address().v6_low()};
      if (writer_.v6_hosts->insert(key, hash_v6(key), route) == v6_tagged_table::change::added) {
        size_.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    if (writer_.v4_gray->full() || writer_.v4_tagged->full()) grow();
    const std::uint32_t key = n.address().v4_value();
    const std::uint64_t gray_hash = gray_table::hash(key);
    const std::uint64_t tagged_hash = detail::mix64(key);
    bool added;
    if (route == kGray && gray_table::storable(key)) {
      added = writer_.v4_gray->insert(key, gray_hash);
      if (writer_.v4_tagged->erase({key}, tagged_hash)) added = false;  // it moved tables
    } else {
      // The filter first: a reader that finds the key in the table must pass the filter.
      writer_.v4_filter->add(tagged_hash);
      added = writer_.v4_tagged->insert({key}, tagged_hash, route) == v4_tagged_table::change::added;
      if (gray_table::storable(key) && writer_.v4_gray->erase(key, gray_hash)) added = false;
    }
    if (added) size_.fetch_add(1, std::memory_order_relaxed);
  }

  /// Removes `network` exactly as listed (not the networks inside it). False if absent.
  bool erase(const ip_network& network) {
    detail::plain_lock lock(write_mutex_);
    const ip_network n = network.unmapped();
    bool erased = false, stale_filter = false;
    if (!n.is_host() && n.address().is_v6()) {
      erased = writer_.v6_index->erase(n, graveyard_);
      bury_if_full();
    } else if (!n.is_host()) {
      erased = writer_.v4_networks.erase(n) > 0;
      if (erased) networks_changed(n);
    } else if (n.address().is_v6()) {
      const v6_key key{n.address().v6_high(), n.address().v6_low()};
      erased = writer_.v6_hosts->erase(key, hash_v6(key));
    } else {
      const std::uint32_t key = n.address().v4_value();
      erased = gray_table::storable(key) && writer_.v4_gray->erase(key, gray_table::hash(key));
      if (!erased && writer_.v4_tagged->erase({key}, detail::mix64(key))) {
        erased = true;
        // The filter keeps an erased key's bits; rebuild once stale bits could be half of it.
        stale_filter = ++stale_filter_bits_ > 1024 + writer_.v4_tagged->live() / 2;
      }
    }
    if (erased) size_.fetch_sub(1, std::memory_order_relaxed);
    if (stale_filter) grow();
    return erased;
  }

  /// Swaps in a whole new list at once: readers see the old list or the new one.
  /// Later duplicates of a network override earlier ones.
  void replace(const std::vector<store_entry>& entries) {
    tables t = build(entries);
    detail::plain_lock lock(write_mutex_);
    publish(std::move(t));
  }

  void clear() { replace(std::vector<store_entry>{}); }

  /// Number of listed networks and addresses.
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  bool empty() const noexcept { return size() == 0; }

  /// Every entry, IPv4 before IPv6, networks sorted, hosts in table order.
  std::vector<store_entry> entries() const {
    detail::plain_lock lock(write_mutex_);
    std::vector<store_entry> out;
    out.reserve(size());
    writer_.v4_gray->for_each([&](std::uint32_t k) { out.push_back({ip_network::host(ip_address::v4(k)), kGray}); });
    writer_.v4_tagged->for_each([&](const typename v4_tagged_table::key_type& k, route_id r) {
      out.push_back({ip_network::host(ip_address::v4(static_cast<std::uint32_t>(k[0]))), r});
    });
    for (const auto& [n, r] : writer_.v4_networks) out.push_back({n, r});
    writer_.v6_hosts->for_each([&](const v6_key& k, route_id r) {
      out.push_back({ip_network::host(ip_address::v6(k[0], k[1])), r});
    });
    const std::size_t v6_first = out.size();
    writer_.v6_index->for_each([&](const ip_network& n, route_id r) { out.push_back({n, r}); });
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(v6_first), out.end(),
              [](const store_entry& a, const store_entry& b) { return a.network < b.network; });
    return out;
  }

  /// Bytes held by the lookup structures (tables, filter, network indexes).
  std::size_t memory_bytes() const {
    detail::plain_lock lock(write_mutex_);
    std::size_t bytes = writer_.v4_gray->bytes() + writer_.v4_tagged->bytes() + writer_.v4_filter->bytes() +
                        writer_.v6_hosts->bytes() + writer_.v4_index->bytes() + writer_.v6_index->bytes();
    return bytes;
  }

 private:
  using v6_key = typename v6_tagged_table::key_type;
  using v4_directory = detail::basic_v4_prefix_directory<Unused>;
  using v6_table = detail::basic_v6_prefix_table<Unused>;

  // What readers see: plain pointers, immutable once published.
  struct snapshot {
    typename gray_table::view v4_gray;
    const typename v4_directory::entry* v4_networks;
    const v4_tagged_table* v4_tagged;
    typename filter::view v4_filter;
    const v6_tagged_table* v6_hosts;
    const v6_table* v6_networks;
  };

  // What the writer owns; the tables are shared with the published snapshot.
  struct tables {
    std::unique_ptr<gray_table> v4_gray;
    std::unique_ptr<v4_tagged_table> v4_tagged;
    std::unique_ptr<filter> v4_filter;
    std::unique_ptr<v6_tagged_table> v6_hosts;
    network_map v4_networks;  // the IPv6 ones live in v6_index
    std::unique_ptr<v4_directory> v4_index;
    std::unique_ptr<v6_table> v6_index;
  };

  // The directory entry is loaded first and the host bucket matched while it
  // arrives: the two misses overlap, and a host that is listed never waits for
  // the networks.
  static std::uint32_t code_v4(const snapshot& s, std::uint32_t key) noexcept {
    const std::uint64_t networks = s.v4_networks[key >> 16].load(std::memory_order_acquire);
    const bool gray = s.v4_gray.contains(key);
    std::uint32_t code = v4_directory::code(networks, key);
    if (s.v4_tagged->any()) {  // hosts on other routes, or the marker keys: rare
      const std::uint64_t hash = detail::mix64(key);
      if (s.v4_filter.may_contain(hash)) {
        if (auto r = s.v4_tagged->find({key}, hash)) code = detail::route_code(*r);
      }
    }
    // A host is never in both host tables; either beats any network.
    return gray ? detail::route_code(kGray) : code;
  }

  static std::optional<route_id> lookup_v6(const snapshot& s, std::uint64_t high, std::uint64_t low) noexcept {
    const v6_key key{high, low};
    if (auto r = s.v6_hosts->find(key, hash_v6(key))) return r;
    return s.v6_networks->lookup(high, low);
  }

  static std::uint64_t hash_v6(const v6_key& k) noexcept { return detail::mix64(k[0] ^ detail::mix64(k[1])); }

  // Fresh tables holding `entries`, sized for them with room to grow.
  static tables build(const std::vector<store_entry>& entries) {
    network_map v6_networks;
    tables t = fill(entries, v6_networks);
    index(t, v6_networks);
    return t;
  }

  // build() without the network indexes: the IPv6 networks are left in `v6_networks`.
  static tables fill(const std::vector<store_entry>& entries, network_map& v6_networks) {
    std::size_t v4_gray = 0, v4_tagged = 0, v6_hosts = 0;
    for (const auto& e : entries) {
      const ip_network n = e.network.unmapped();
      if (!n.is_host()) continue;
      if (n.address().is_v6()) {
        ++v6_hosts;
      } else if (e.route == kGray && gray_table::storable(n.address().v4_value())) {
        ++v4_gray;
      } else {
        ++v4_tagged;
      }
    }
    tables t = empty_tables(v4_gray, v4_tagged, v6_hosts);
    for (const auto& e : entries) add(t, v6_networks, e);
    return t;
  }

  // One entry into tables being built (not yet published), which have room for it.
  static void add(tables& t, network_map& v6_networks, const store_entry& e) {
    const ip_network n = e.network.unmapped();
    if (!n.is_host()) {
      (n.address().is_v4() ? t.v4_networks : v6_networks)[n] = e.route;
      return;
    }
    if (n.address().is_v6()) {
      const v6_key key{n.address().v6_high(), n.address().v6_low()};
      t.v6_hosts->insert(key, hash_v6(key), e.route);
      return;
    }
    const std::uint32_t key = n.address().v4_value();
    const std::uint64_t gray_hash = gray_table::hash(key);
    const std::uint64_t tagged_hash = detail::mix64(key);
    if (e.route == kGray && gray_table::storable(key)) {
      t.v4_gray->insert(key, gray_hash);
      t.v4_tagged->erase({key}, tagged_hash);
    } else {
      t.v4_filter->add(tagged_hash);
      t.v4_tagged->insert({key}, tagged_hash, e.route);
      if (gray_table::storable(key)) t.v4_gray->erase(key, gray_hash);
    }
  }

  // The network indexes of tables being built.
  static void index(tables& t, const network_map& v6_networks) {
    t.v4_index = std::make_unique<v4_directory>(t.v4_networks);
    t.v6_index = std::make_unique<v6_table>(v6_networks);
  }

  // The hosts of `t`, as entries.
  static std::vector<store_entry> hosts_of(const tables& t) {
    std::vector<store_entry> all;
    all.reserve(count(t));
    t.v4_gray->for_each([&](std::uint32_t k) { all.push_back({ip_network::host(ip_address::v4(k)), kGray}); });
    t.v4_tagged->for_each([&](const typename v4_tagged_table::key_type& k, route_id r) {
      all.push_back({ip_network::host(ip_address::v4(static_cast<std::uint32_t>(k[0]))), r});
    });
    t.v6_hosts->for_each([&](const v6_key& k, route_id r) {
      all.push_back({ip_network::host(ip_address::v6(k[0], k[1])), r});
    });
    return all;
  }

  static tables empty_tables(std::size_t v4_gray, std::size_t v4_tagged, std::size_t v6_hosts) {
    tables t;
    t.v4_gray = std::make_unique<gray_table>(detail::table_bits_for(v4_gray));
    t.v4_tagged = std::make_unique<v4_tagged_table>(detail::table_bits_for(v4_tagged));
    t.v4_filter = std::make_unique<filter>(detail::table_bits_for(v4_tagged));
    t.v6_hosts = std::make_unique<v6_tagged_table>(detail::table_bits_for(v6_hosts));
    return t;
  }

  static std::size_t count(const tables& t) {
    return t.v4_gray->live() + t.v4_tagged->live() + t.v6_hosts->live() + t.v4_networks.size() +
           (t.v6_index ? t.v6_index->size() : 0);
  }

  snapshot* adopt(tables&& t) {
    writer_ = std::move(t);
    size_.store(count(writer_), std::memory_order_relaxed);
    stale_filter_bits_ = 0;
    return new snapshot{writer_.v4_gray->reader_view(), writer_.v4_index->entries(), writer_.v4_tagged.get(),
                        writer_.v4_filter->reader_view(), writer_.v6_hosts.get(),  writer_.v6_index.get()};
  }

  // Publishes `t` as the new list and frees the old one once no reader holds it.
  // Caller holds write_mutex_.
  void publish(tables&& t) {
    tables old = std::move(writer_);
    snapshot* fresh = adopt(std::move(t));
    snapshot* previous = current_.exchange(fresh, std::memory_order_seq_cst);
    detail::reader_gate::synchronize();
    delete previous;
    graveyard_.clear();  // retired before the grace period just waited for
    // `old` and its tables die here, after the grace period.
  }

  // Rebuilds the exact-address tables at a size that fits what they hold now
  // (growing them, dropping tombstones, clearing stale filter bits).
  void grow() {
    network_map no_networks;
    tables t = fill(hosts_of(writer_), no_networks);  // sized to be at most half full
    t.v4_networks = std::move(writer_.v4_networks);
    t.v4_index = std::move(writer_.v4_index);
    t.v6_index = std::move(writer_.v6_index);
    publish(std::move(t));
  }

  // `n` (an IPv4 network, not a host) was just inserted, re-routed or erased in the
  // writer's map: the directory changes in place, or is copied and published whole
  // when `n` is shorter than /16.
  void networks_changed(const ip_network& n) {
    if (!writer_.v4_index->apply(writer_.v4_networks, n, graveyard_)) return bury_if_full();
    auto* fresh = new snapshot(*current_.load(std::memory_order_relaxed));
    fresh->v4_networks = writer_.v4_index->entries();
    graveyard_.push_back(std::shared_ptr<const void>(std::unique_ptr<snapshot>(current_.exchange(fresh, std::memory_order_seq_cst))));
    bury_if_full();
  }

  // What readers may still hold is freed in batches, one grace period for many
  // changes, so a stream of small updates does not pay a membarrier each.
  void bury_if_full() {
    if (graveyard_.size() < kGraveyardBatch) return;
    detail::reader_gate::synchronize();
    graveyard_.clear();
  }

  static constexpr std::size_t kGraveyardBatch = 256;

 public:
  /// A whole list built aside, for loaders that receive it in pieces (a Redis SCAN,
  /// a stream): add() entries as they arrive, while waiting for the next piece, then
  /// replace() publishes the list at once. Sized up front for `expected_hosts`
  /// IPv4 hosts on the gray route (the common entry), so a loader that knows its
  /// size never rebuilds a table while adding.
  ///   grayroute::memory_store::builder list(expected);
  ///   for (...) list.add({network, route});          // later duplicates override
  ///   store.replace(std::move(list));
  class builder {
   public:
    explicit builder(std::size_t expected_hosts = 0) : tables_(empty_tables(expected_hosts, 0, 0)) {}

    void add(const store_entry& e) {
      if (tables_.v4_gray->full() || tables_.v4_tagged->full() || tables_.v6_hosts->full()) {
        network_map no_networks;
        tables bigger = fill(hosts_of(tables_), no_networks);
        bigger.v4_networks = std::move(tables_.v4_networks);
        tables_ = std::move(bigger);
      }
      basic_memory_store::add(tables_, v6_networks_, e);
    }

   private:
    friend class basic_memory_store;
    tables tables_;
    network_map v6_networks_;
  };

  /// Publishes what `list` holds as the whole list (see builder).
  void replace(builder&& list) {
    tables t = std::move(list.tables_);
    index(t, list.v6_networks_);
    detail::plain_lock lock(write_mutex_);
    publish(std::move(t));
  }

 private:

  std::atomic<snapshot*> current_{nullptr};
  std::atomic<std::size_t> size_{0};
  mutable detail::plain_mutex write_mutex_;
  tables writer_;
  dependent<detail::graveyard> graveyard_;
  std::size_t stale_filter_bits_ = 0;
};

/// The in-memory gray list (see the top of this header).
using memory_store = basic_memory_store<>;

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_MEMORY_STORE_HPP
