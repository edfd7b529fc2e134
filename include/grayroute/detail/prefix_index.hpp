// Longest-prefix match over networks, as ranges.
//
// Networks nest or are disjoint, so the address line splits into ranges on which
// the longest match does not change; flatten() turns networks into the sorted
// starts of those ranges (at most 2n + 1 of them) and the route of each.
//
// IPv6 (prefix_index): one immutable sorted array, binary-searched after a
// 65,536-entry table on the key's top 16 bits; a change builds a new index
// (O(n log n)) and the store publishes it.
//
// IPv4 (v4_prefix_directory), the hot path, updated in place. A directory of
// 65,536 eight-byte entries, one per /16 (512 KiB, like DPDK's DIR-24-8 but one
// level up, so it stays in L2 rather than spanning 64 MiB). An entry is either
// the answer for its whole /16 (low bit set: the route code of the longest network
// of /16 or shorter around it, or "none"), so most addresses are answered by that
// one load, or a pointer to an immutable chunk holding the ranges inside the /16
// (starts as 16-bit offsets, at most 8 of them compared in one SSE2 step, more
// binary-searched). Random /16-/24 networks leave one to three networks per
// occupied /16: 10,000 of them take about 30 bytes each besides the directory,
// where rte_lpm takes 6.7 KB per network for its 64 MiB table.
//
// Updates: a network longer than /16 changes one /16: a new chunk is made from the
// old one, recomputing only the ranges the network spans (from the networks
// inside it and the one around it, found in the writer's sorted map), and swapped
// in with one release store; the old chunk is retired for the store's grace
// period. A /16 rewrites its own entry; a shorter network changes many entries,
// which readers must see change together, so the directory is copied, updated
// and published as a whole. 100,000 random /16-/24 networks insert one at a time
// in about 0.15 s of CPU, and about 0.2 s packed hundreds to a /16.
#ifndef GRAYROUTE_DETAIL_PREFIX_INDEX_HPP
#define GRAYROUTE_DETAIL_PREFIX_INDEX_HPP

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../ip.hpp"
#include "../store.hpp"
#include "convert.hpp"
#include "../version.hpp"
#include "host_table.hpp"  // atomic_array

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

/// A 128-bit key, ordered like the number it stands for.
struct u128 {
  std::uint64_t high = 0;
  std::uint64_t low = 0;

  friend constexpr bool operator<(const u128& a, const u128& b) noexcept {
    return a.high != b.high ? a.high < b.high : a.low < b.low;
  }
  friend constexpr bool operator==(const u128& a, const u128& b) noexcept { return a.high == b.high && a.low == b.low; }
  friend constexpr bool operator!=(const u128& a, const u128& b) noexcept { return !(a == b); }
};

template <class Key>
struct key_traits;

template <>
struct key_traits<std::uint32_t> {
  static constexpr unsigned kBits = 32;
  static constexpr std::uint32_t max() noexcept { return ~0u; }
  static constexpr std::uint32_t next(std::uint32_t k) noexcept { return k + 1; }
  static constexpr std::uint32_t top16(std::uint32_t k) noexcept { return k >> 16; }
  static constexpr std::uint32_t from_top16(std::uint32_t b) noexcept { return b << 16; }
  // The last key of the network starting at `start` with `prefix` bits.
  static constexpr std::uint32_t last(std::uint32_t start, unsigned prefix) noexcept {
    return prefix == 0 ? ~0u : start | (~0u >> prefix);
  }
};

template <>
struct key_traits<u128> {
  static constexpr unsigned kBits = 128;
  static constexpr u128 max() noexcept { return {~0ull, ~0ull}; }
  static constexpr u128 next(u128 k) noexcept { return k.low == ~0ull ? u128{k.high + 1, 0} : u128{k.high, k.low + 1}; }
  static constexpr std::uint32_t top16(u128 k) noexcept { return static_cast<std::uint32_t>(k.high >> 48); }
  static constexpr u128 from_top16(std::uint32_t b) noexcept { return {static_cast<std::uint64_t>(b) << 48, 0}; }
  static constexpr u128 last(u128 start, unsigned prefix) noexcept {
    if (prefix == 0) return max();
    if (prefix <= 64) return {start.high | (prefix == 64 ? 0 : ~0ull >> prefix), ~0ull};
    return {start.high, start.low | (prefix == 128 ? 0 : ~0ull >> (prefix - 64))};
  }
};

/// A network to flatten: where it starts, its length, its route.
template <class Key>
struct prefix_network {
  Key start;
  unsigned prefix;
  route_id route;
};

/// The address line cut into ranges on which the longest match does not change:
/// range i runs from starts[i] to the next start; codes[i] is 0 (no network) or
/// route + 1. starts[0] is the zero key.
template <class Key>
struct range_list {
  std::vector<Key> starts;
  std::vector<std::uint32_t> codes;

  void emit(Key start, std::uint32_t code) {
    if (!starts.empty() && starts.back() == start) {
      codes.back() = code;
      if (codes.size() >= 2 && codes[codes.size() - 2] == code) {
        starts.pop_back();
        codes.pop_back();
      }
      return;
    }
    if (!codes.empty() && codes.back() == code) return;
    starts.push_back(start);
    codes.push_back(code);
  }
};

constexpr std::uint32_t route_code(route_id r) noexcept { return std::uint32_t{r} + 1; }
constexpr std::optional<route_id> route_of(std::uint32_t code) noexcept {
  if (code == 0) return std::nullopt;
  return static_cast<route_id>(code - 1);
}

/// Flattens networks that nest or are disjoint (as prefixes do) into ranges.
/// `networks` need no order; each (start, prefix) must appear once.
template <class Key>
range_list<Key> flatten(std::vector<prefix_network<Key>> networks) {
  using traits = key_traits<Key>;
  const auto outer_first = [](const prefix_network<Key>& a, const prefix_network<Key>& b) {
    return a.start != b.start ? a.start < b.start : a.prefix < b.prefix;
  };
  // The store hands over networks in map order, already sorted: skip the sort then.
  if (!std::is_sorted(networks.begin(), networks.end(), outer_first)) {
    std::sort(networks.begin(), networks.end(), outer_first);
  }
  struct open {
    Key last;
    std::uint32_t code;
  };
  range_list<Key> out;
  std::vector<open> stack;
  out.emit(Key{}, 0);
  auto close_until = [&](const Key* before) {
    // Pop the networks that end before `before` (all of them when null), handing
    // the range after each back to the network around it.
    while (!stack.empty() && (before == nullptr || stack.back().last < *before)) {
      const Key last = stack.back().last;
      stack.pop_back();
      if (last != traits::max()) out.emit(traits::next(last), stack.empty() ? 0 : stack.back().code);
    }
  };
  for (const auto& n : networks) {
    close_until(&n.start);
    out.emit(n.start, route_code(n.route));
    stack.push_back({traits::last(n.start, n.prefix), route_code(n.route)});
  }
  close_until(nullptr);
  return out;
}

/// Immutable longest-prefix match for IPv6: the ranges, binary-searched after a
/// 65,536-entry table on the key's top 16 bits narrows them.
template <class Key>
class prefix_index {
 public:
  using traits = key_traits<Key>;
  using network = prefix_network<Key>;

  explicit prefix_index(std::vector<network> networks) : networks_(networks.size()) {
    range_list<Key> ranges = flatten(std::move(networks));
    starts_ = std::move(ranges.starts);
    codes_ = std::move(ranges.codes);
    if (starts_.size() > 64) {
      buckets_.resize((std::size_t{1} << 16) + 1);
      for (std::uint32_t b = 0; b < (1u << 16); ++b) buckets_[b] = index_of(traits::from_top16(b));
      buckets_[1u << 16] = static_cast<std::uint32_t>(starts_.size() - 1);
    }
  }

  std::optional<route_id> lookup(Key key) const noexcept {
    std::size_t lo = 0, hi = starts_.size();
    if (!buckets_.empty()) {
      const std::uint32_t b = traits::top16(key);
      lo = buckets_[b];
      hi = static_cast<std::size_t>(buckets_[b + 1]) + 1;
    }
    // Last start <= key within [lo, hi); starts_[lo] <= key holds by construction.
    while (hi - lo > 1) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (key < starts_[mid]) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    return route_of(codes_[lo]);
  }

  std::size_t networks() const noexcept { return networks_; }
  std::size_t bytes() const noexcept {
    return starts_.capacity() * sizeof(Key) + codes_.capacity() * sizeof(std::uint32_t) +
           buckets_.capacity() * sizeof(std::uint32_t);
  }

 private:
  std::uint32_t index_of(Key key) const noexcept {
    const auto it = std::upper_bound(starts_.begin(), starts_.end(), key);
    return static_cast<std::uint32_t>(it - starts_.begin() - 1);
  }

  std::vector<Key> starts_;
  std::vector<std::uint32_t> codes_;
  std::vector<std::uint32_t> buckets_;
  std::size_t networks_ = 0;
};

/// Longest-prefix match for IPv4, updated in place: a directory of 65,536 entries,
/// one per /16, each either the answer for its whole /16 or a pointer to an
/// immutable chunk holding the ranges inside it (see the banner). A template, its
/// writer-side types named through `dependent`, only so that its build code (the
/// sorts, std::map walks, flatten) is compiled where memory_store is used, not in
/// every translation unit that includes the header; use v4_prefix_directory.
template <class Unused = void>
class basic_v4_prefix_directory {
  template <class T>
  using dependent = typename dependent_type<T, Unused>::type;
  using network_map = dependent<std::map<ip_network, route_id>>;
  using directory = dependent<atomic_array<std::uint64_t>>;

 public:
  using entry = std::atomic<std::uint64_t>;
  using graveyard = dependent<std::vector<std::shared_ptr<const void>>>;

  /// The directory of `networks` (IPv4 networks shorter than /32).
  explicit basic_v4_prefix_directory(const network_map& networks)
      : dir_(std::make_unique<directory>(kBuckets)), cover_(kBuckets, 0) {
    dependent<std::vector<const typename network_map::value_type*>> shallow;
    for (const auto& n : networks) {
      if (n.first.prefix_length() <= 16) shallow.push_back(&n);
    }
    std::stable_sort(shallow.begin(), shallow.end(),
                     [](const auto* a, const auto* b) { return a->first.prefix_length() < b->first.prefix_length(); });
    for (const auto* n : shallow) fill_cover(n->first, route_code(n->second));
    dependent<std::vector<bool>> deep(kBuckets, false);
    for (const auto& n : networks) {
      if (n.first.prefix_length() > 16) deep[n.first.address().v4_value() >> 16] = true;
    }
    for (std::uint32_t b = 0; b < kBuckets; ++b) {
      (*dir_)[b].store(deep[b] ? build_chunk(networks, b) : leaf(cover_[b]), std::memory_order_relaxed);
    }
  }

  basic_v4_prefix_directory(const basic_v4_prefix_directory&) = delete;
  basic_v4_prefix_directory& operator=(const basic_v4_prefix_directory&) = delete;
  ~basic_v4_prefix_directory() {
    for (std::uint32_t b = 0; b < kBuckets; ++b) free_chunk((*dir_)[b].load(std::memory_order_relaxed));
  }

  /// For readers: the array to index with the key's top 16 bits. It changes only
  /// when a network shorter than /16 changes (apply() says so).
  const entry* entries() const noexcept { return &(*dir_)[0]; }

  /// Where the ranges of an entry's /16 live, for prefetching (a prefetch of null
  /// does nothing): null when the entry is the answer.
  static const void* chunk_of(std::uint64_t e) noexcept {
    return e & 1 ? nullptr : reinterpret_cast<const void*>(convert<std::uintptr_t>(e));
  }

  /// The route code (0: none) of `key`, given the entry of its /16.
  static std::uint32_t code(std::uint64_t e, std::uint32_t key) noexcept {
    if (e & 1) return static_cast<std::uint32_t>(e >> 1);
    return chunk_code(reinterpret_cast<const std::uint32_t*>(convert<std::uintptr_t>(e)), key & 0xffffu);
  }

  /// Brings the directory in line with `networks`, in which `changed` was just
  /// inserted, re-routed or erased. Replaced chunks (and a replaced directory) go to
  /// `dead`, to be freed after a grace period. Returns true when entries() changed:
  /// a network shorter than /16 spans several entries, and readers must see all of
  /// them change at once, so it is applied to a copy published as a whole.
  bool apply(const network_map& networks, const ip_network& changed, graveyard& dead) {
    const std::uint32_t address = changed.address().v4_value();
    const unsigned prefix = changed.prefix_length();
    const std::uint32_t first = address >> 16;
    if (prefix > 16) {
      replace_entry(*dir_, first, splice_entry(networks, changed), dead);
      return false;
    }
    // Covers in the span: the network around `changed`, then `changed` if still
    // listed, then the shorter-than-/17 networks inside it, outer before inner.
    std::uint32_t outer = 0;
    for (unsigned q = prefix; q-- > 0;) {
      const auto it = networks.find(*ip_network::make(ip_address::v4(address & mask(q)), q));
      if (it != networks.end()) {
        outer = route_code(it->second);
        break;
      }
    }
    const auto self = networks.find(changed);
    fill_cover(changed, self != networks.end() ? route_code(self->second) : outer);
    dependent<std::vector<const typename network_map::value_type*>> inner;
    const std::uint64_t end = std::uint64_t{address} + (std::uint64_t{1} << (32 - prefix));
    for (auto it = networks.upper_bound(changed); it != networks.end() && it->first.address().v4_value() < end; ++it) {
      if (it->first.prefix_length() <= 16) inner.push_back(&*it);
    }
    std::stable_sort(inner.begin(), inner.end(),
                     [](const auto* a, const auto* b) { return a->first.prefix_length() < b->first.prefix_length(); });
    for (const auto* n : inner) fill_cover(n->first, route_code(n->second));
    const std::uint32_t span = 1u << (16 - prefix);
    if (span == 1) {
      replace_entry(*dir_, first, build_entry(networks, first), dead);
      return false;
    }
    auto fresh = std::make_unique<directory>(kBuckets);
    for (std::uint32_t b = 0; b < kBuckets; ++b) {
      (*fresh)[b].store((*dir_)[b].load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    for (std::uint32_t b = first; b < first + span; ++b) replace_entry(*fresh, b, build_entry(networks, b), dead);
    dead.push_back(std::shared_ptr<const void>(std::move(dir_)));
    dir_ = std::move(fresh);
    return true;
  }

  /// Directory, chunks and the writer's cover table.
  std::size_t bytes() const noexcept { return dir_->bytes() + cover_.capacity() * sizeof(std::uint32_t) + chunk_bytes_; }

 private:
  static constexpr std::uint32_t kBuckets = 1u << 16;
  static constexpr std::uint32_t kPastEnd = 0x10000;  // pads a chunk's starts: above any low half

  static constexpr std::uint32_t mask(unsigned prefix) noexcept { return prefix == 0 ? 0u : ~0u << (32 - prefix); }
  static constexpr std::uint64_t leaf(std::uint32_t code) noexcept { return std::uint64_t{code} << 1 | 1; }

  // A chunk is one array: [count, padded count, 0, 0, starts (padded with kPastEnd),
  // codes]; starts are the low 16 bits of each range's first address.
  static std::uint32_t chunk_code(const std::uint32_t* chunk, std::uint32_t low) noexcept {
    const std::uint32_t count = chunk[0];
    const std::uint32_t* starts = chunk + 4;
    std::size_t i;
    if (count <= 8) {
#if defined(__SSE2__)
      const __m128i k = _mm_set1_epi32(static_cast<int>(low));
      const __m128i above = _mm_packs_epi32(_mm_cmpgt_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(starts)), k),
                                            _mm_cmpgt_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(starts + 4)), k));
      // Starts are sorted, so the lanes above `low` are a suffix; starts[0] is 0.
      const unsigned bits = static_cast<unsigned>(_mm_movemask_epi8(above)) | 0x10000u;
      i = static_cast<std::size_t>(__builtin_ctz(bits) / 2 - 1);
#else
      i = 0;
      for (std::uint32_t j = 1; j < count; ++j) i += starts[j] <= low;
#endif
    } else {
      const std::uint32_t* base = starts;
      for (std::size_t len = count; len > 1;) {
        const std::size_t half = len / 2;
        base = base[half] <= low ? base + half : base;
        len -= half;
      }
      i = static_cast<std::size_t>(base - starts);
    }
    return chunk[4 + chunk[1] + i];
  }

  void fill_cover(const ip_network& n, std::uint32_t code) {
    const std::uint32_t first = n.address().v4_value() >> 16;
    const std::uint32_t span = 1u << (16 - n.prefix_length());
    std::fill(cover_.begin() + first, cover_.begin() + first + span, code);
  }

  // The entry for /16 number `b`: a leaf when no longer network lies inside it.
  std::uint64_t build_entry(const network_map& networks, std::uint32_t b) {
    const auto it = networks.lower_bound(*ip_network::make(ip_address::v4(b << 16), 17));
    if (it == networks.end() || (it->first.address().v4_value() >> 16) != b) return leaf(cover_[b]);
    return build_chunk(networks, b);
  }

  // (first address's low 16 bits, route code) of each range inside one /16, in order.
  using chunk_ranges = dependent<std::vector<std::pair<std::uint32_t, std::uint32_t>>>;

  std::uint64_t build_chunk(const network_map& networks, std::uint32_t b) {
    const std::uint32_t base = b << 16;
    dependent<std::vector<prefix_network<std::uint32_t>>> inside;
    if (cover_[b] != 0) inside.push_back({base, 16, static_cast<route_id>(cover_[b] - 1)});
    for (auto it = networks.lower_bound(*ip_network::make(ip_address::v4(base), 17));
         it != networks.end() && (it->first.address().v4_value() >> 16) == b; ++it) {
      if (it->first.prefix_length() > 16) inside.push_back({it->first.address().v4_value(), it->first.prefix_length(), it->second});
    }
    const dependent<range_list<std::uint32_t>> ranges = flatten(std::move(inside));
    // The ranges inside this /16: the one holding its first address, then the rest.
    std::size_t from = 0;
    while (from + 1 < ranges.starts.size() && ranges.starts[from + 1] <= base) ++from;
    chunk_ranges out{{0, ranges.codes[from]}};
    for (std::size_t i = from + 1; i < ranges.starts.size() && (ranges.starts[i] >> 16) == b; ++i) {
      out.push_back({ranges.starts[i] & 0xffffu, ranges.codes[i]});
    }
    return make_chunk(out);
  }

  // The entry for the /16 of `changed` (longer than /16), from its current entry:
  // only the ranges inside `changed` are recomputed, from the networks inside it
  // and the one around it; the rest is copied. O(ranges in the /16) without walking
  // the map, which matters when a /16 holds hundreds of networks.
  std::uint64_t splice_entry(const network_map& networks, const ip_network& changed) {
    const std::uint32_t first = changed.address().v4_value();
    const unsigned prefix = changed.prefix_length();
    const std::uint32_t b = first >> 16;
    const std::uint32_t lo = first & 0xffffu, hi = lo | (0xffffu >> (prefix - 16));
    chunk_ranges old;
    const std::uint64_t e = (*dir_)[b].load(std::memory_order_relaxed);
    if (e & 1) {
      old.push_back({0, static_cast<std::uint32_t>(e >> 1)});
    } else {
      const auto* chunk = reinterpret_cast<const std::uint32_t*>(convert<std::uintptr_t>(e));
      for (std::uint32_t i = 0; i < chunk[0]; ++i) old.push_back({chunk[4 + i], chunk[4 + chunk[1] + i]});
    }
    const auto code_at = [&](std::uint32_t low) {
      std::uint32_t code = 0;
      for (const auto& r : old) {
        if (r.first > low) break;
        code = r.second;
      }
      return code;
    };
    // The code around `changed`: the longest network containing it, else the cover.
    std::uint32_t outer = cover_[b];
    for (unsigned q = prefix - 1; q > 16; --q) {
      const auto it = networks.find(*ip_network::make(ip_address::v4(first & mask(q)), q));
      if (it != networks.end()) {
        outer = route_code(it->second);
        break;
      }
    }
    dependent<std::vector<prefix_network<std::uint32_t>>> inside;
    for (auto it = networks.lower_bound(changed); it != networks.end() && it->first.address().v4_value() <= (first | hi); ++it) {
      inside.push_back({it->first.address().v4_value(), it->first.prefix_length(), it->second});
    }
    const dependent<range_list<std::uint32_t>> flat = flatten(std::move(inside));
    chunk_ranges fresh;
    const auto emit = [&](std::uint32_t start, std::uint32_t code) {
      if (!fresh.empty() && fresh.back().first == start) fresh.pop_back();
      if (fresh.empty() || fresh.back().second != code) fresh.push_back({start, code});
    };
    for (const auto& r : old) {
      if (r.first < lo) emit(r.first, r.second);
    }
    for (std::size_t i = 0; i < flat.starts.size(); ++i) {
      const std::uint32_t end = i + 1 < flat.starts.size() ? flat.starts[i + 1] - 1 : ~0u;
      if (end < first || flat.starts[i] > (first | hi)) continue;
      const std::uint32_t code = flat.codes[i] != 0 ? flat.codes[i] : outer;
      emit(std::max(flat.starts[i], first) & 0xffffu, code);
    }
    if (hi != 0xffffu) {
      emit(hi + 1, code_at(hi + 1));
      for (const auto& r : old) {
        if (r.first > hi + 1) emit(r.first, r.second);
      }
    }
    if (fresh.size() == 1) return leaf(fresh[0].second);
    return make_chunk(fresh);
  }

  std::uint64_t make_chunk(const chunk_ranges& ranges) {
    const std::uint32_t count = static_cast<std::uint32_t>(ranges.size());
    const std::uint32_t padded = count <= 8 ? 8 : count;
    const std::size_t words = 4 + std::size_t{padded} + count;
    std::uint32_t* chunk = new std::uint32_t[words];
    chunk[0] = count;
    chunk[1] = padded;
    chunk[2] = chunk[3] = 0;
    for (std::uint32_t i = 0; i < padded; ++i) {
      chunk[4 + i] = i < count ? ranges[i].first : kPastEnd;
      if (i < count) chunk[4 + padded + i] = ranges[i].second;
    }
    chunk_bytes_ += words * sizeof(std::uint32_t);
    return reinterpret_cast<std::uintptr_t>(chunk);
  }

  void replace_entry(directory& dir, std::uint32_t b, std::uint64_t e, graveyard& dead) {
    const std::uint64_t old = dir[b].load(std::memory_order_relaxed);
    // Release: a reader that loads the pointer sees the chunk's contents.
    dir[b].store(e, std::memory_order_release);
    if (old & 1) return;
    const auto* chunk = reinterpret_cast<const std::uint32_t*>(static_cast<std::uintptr_t>(old));
    chunk_bytes_ -= (4 + std::size_t{chunk[1]} + chunk[0]) * sizeof(std::uint32_t);
    dead.push_back(std::shared_ptr<const std::uint32_t>(chunk, std::default_delete<const std::uint32_t[]>()));
  }

  static void free_chunk(std::uint64_t e) noexcept {
    if (!(e & 1)) delete[] reinterpret_cast<const std::uint32_t*>(convert<std::uintptr_t>(e));
  }

  std::unique_ptr<directory> dir_;
  dependent<std::vector<std::uint32_t>> cover_;  // writer only: the route code of the longest network of /16 or shorter around each /16
  std::size_t chunk_bytes_ = 0;
};

using v4_prefix_directory = basic_v4_prefix_directory<>;
}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_PREFIX_INDEX_HPP
