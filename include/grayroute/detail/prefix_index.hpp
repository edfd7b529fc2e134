// Longest-prefix match over networks, as ranges.
//
// Networks nest or are disjoint, so the address line splits into ranges on which
// the longest match does not change; flatten() turns networks into the sorted
// starts of those ranges (at most 2n + 1 of them) and the route of each.
//
// IPv6 (v6_prefix_table), updated in place. Networks fall into eight levels by
// length, /16k to /16k+15 in level k, so the common lengths (/32, /48, /64) each
// start a level and make an entry of their own. A level's networks under one
// 16k-bit key (the first 16k bits of the address) share one entry: a leaf or a
// chunk of the ranges they cut the next 16 bits into, in the IPv4 chunk format.
// Entries live in an open-addressing hash table keyed by (level, key), whose keys
// are written once and never rewritten, so readers probe it without locks. A lookup
// probes the levels that hold networks, deepest first, and the first range with a
// route answers (a deeper level's network is longer than any shallower one). A
// change rebuilds one entry, O(networks under its key), and publishes it with one
// release store; a full table is rebuilt aside and published whole. About 60-120
// bytes a network (slots, chunks), besides the writer's map.
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
#include <array>
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

/// What a writer replaced and readers may still hold: freed after a grace period.
/// (Aliases here cost nothing; the classes below name them through `dependent`.)
using graveyard = std::vector<std::shared_ptr<const void>>;

// Range chunks, shared by both families. An entry (one 64-bit word) answers for one
// 16-bit piece of the key space: a leaf (code << 1 | 1) answers the whole piece, else
// it points to an immutable chunk of the ranges the piece is cut into.
// (first offset in the piece, route code) of each range, in order; the first is 0.
using chunk_ranges = std::vector<std::pair<std::uint32_t, std::uint32_t>>;
// The writer-side helpers below are templates (Ranges is chunk_ranges, Graveyard is
// graveyard) so that their bodies, and the vector and shared_ptr code they call, are
// compiled only where a store changes, not in every includer.

inline constexpr std::uint32_t kChunkPastEnd = 0x10000;  // pads a chunk's starts: above any offset

constexpr std::uint64_t leaf_entry(std::uint32_t code) noexcept { return std::uint64_t{code} << 1 | 1; }

// A chunk is one array: [count, padded count, 0, 0, starts (padded with kChunkPastEnd),
// codes]; starts are the low 16 bits of each range's first address.
inline std::uint32_t chunk_code(const std::uint32_t* chunk, std::uint32_t low) noexcept {
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

/// The route code (0: none) of the offset `low` in the piece `e` answers for.
inline std::uint32_t entry_code(std::uint64_t e, std::uint32_t low) noexcept {
  if (e & 1) return static_cast<std::uint32_t>(e >> 1);
  return chunk_code(reinterpret_cast<const std::uint32_t*>(convert<std::uintptr_t>(e)), low);
}

/// A leaf for one range, else a new chunk.
template <class Ranges>
std::uint64_t make_entry(const Ranges& ranges) {
  if (ranges.size() == 1) return leaf_entry(ranges[0].second);
  const std::uint32_t count = static_cast<std::uint32_t>(ranges.size());
  const std::uint32_t padded = count <= 8 ? 8 : count;
  std::uint32_t* chunk = new std::uint32_t[4 + std::size_t{padded} + count];
  chunk[0] = count;
  chunk[1] = padded;
  chunk[2] = chunk[3] = 0;
  for (std::uint32_t i = 0; i < padded; ++i) {
    chunk[4 + i] = i < count ? ranges[i].first : kChunkPastEnd;
    if (i < count) chunk[4 + padded + i] = ranges[i].second;
  }
  return reinterpret_cast<std::uintptr_t>(chunk);
}

/// Heap bytes behind an entry (0 for a leaf).
inline std::size_t entry_bytes(std::uint64_t e) noexcept {
  if (e & 1 || e == 0) return 0;
  const auto* chunk = reinterpret_cast<const std::uint32_t*>(convert<std::uintptr_t>(e));
  return (4 + std::size_t{chunk[1]} + chunk[0]) * sizeof(std::uint32_t);
}

/// Hands a replaced entry's chunk to `dead`.
template <class Graveyard>
void retire_entry(std::uint64_t e, Graveyard& dead) {
  if (e & 1 || e == 0) return;
  dead.push_back(std::shared_ptr<const std::uint32_t>(reinterpret_cast<const std::uint32_t*>(convert<std::uintptr_t>(e)),
                                                      std::default_delete<const std::uint32_t[]>()));
}

inline void free_entry(std::uint64_t e) noexcept {
  if (!(e & 1) && e != 0) delete[] reinterpret_cast<const std::uint32_t*>(convert<std::uintptr_t>(e));
}

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
  using chunk_ranges = dependent<detail::chunk_ranges>;

 public:
  using entry = std::atomic<std::uint64_t>;
  using graveyard = dependent<detail::graveyard>;

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
      const std::uint64_t e = deep[b] ? build_chunk(networks, b) : leaf(cover_[b]);
      chunk_bytes_ += entry_bytes(e);
      (*dir_)[b].store(e, std::memory_order_relaxed);
    }
  }

  basic_v4_prefix_directory(const basic_v4_prefix_directory&) = delete;
  basic_v4_prefix_directory& operator=(const basic_v4_prefix_directory&) = delete;
  ~basic_v4_prefix_directory() {
    for (std::uint32_t b = 0; b < kBuckets; ++b) free_entry((*dir_)[b].load(std::memory_order_relaxed));
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
  static std::uint32_t code(std::uint64_t e, std::uint32_t key) noexcept { return entry_code(e, key & 0xffffu); }

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

  static constexpr std::uint32_t mask(unsigned prefix) noexcept { return prefix == 0 ? 0u : ~0u << (32 - prefix); }
  static constexpr std::uint64_t leaf(std::uint32_t code) noexcept { return leaf_entry(code); }

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
    return make_entry(out);
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
    return make_entry(fresh);
  }

  void replace_entry(directory& dir, std::uint32_t b, std::uint64_t e, graveyard& dead) {
    const std::uint64_t old = dir[b].load(std::memory_order_relaxed);
    // Release: a reader that loads the pointer sees the chunk's contents.
    dir[b].store(e, std::memory_order_release);
    chunk_bytes_ += entry_bytes(e);
    chunk_bytes_ -= entry_bytes(old);
    retire_entry(old, dead);
  }

  std::unique_ptr<directory> dir_;
  dependent<std::vector<std::uint32_t>> cover_;  // writer only: the route code of the longest network of /16 or shorter around each /16
  std::size_t chunk_bytes_ = 0;
};

using v4_prefix_directory = basic_v4_prefix_directory<>;

/// Longest-prefix match for IPv6, updated in place (see the banner): networks by
/// level, /16k to /16k+15 in level k, each level's networks under one 16k-bit key
/// in one entry of a lock-free hash table. A template with its writer-side types
/// named through `dependent`, like basic_v4_prefix_directory and for the same
/// reason (the std::map levels, flatten, the table's growth are compiled only where
/// memory_store is used); use v6_prefix_table.
template <class Unused = void>
class basic_v6_prefix_table {
  template <class T>
  using dependent = typename dependent_type<T, Unused>::type;
  using network_map = dependent<std::map<ip_network, route_id>>;
  using chunk_ranges = dependent<detail::chunk_ranges>;

 public:
  using graveyard = dependent<detail::graveyard>;
  enum class change { added, updated, unchanged };

  /// The table of `networks` (IPv6 networks shorter than /128), built at once.
  explicit basic_v6_prefix_table(const network_map& networks) {
    std::size_t entries = 0;
    for (const auto& [n, r] : networks) {
      auto& level = levels_[level_of(n)];
      level.emplace_hint(level.end(), n, r);
    }
    for (unsigned k = 0; k < kLevels; ++k) entries += levels_[k].size();
    table_.store(new slot_table(table_bits_for(entries)), std::memory_order_relaxed);
    graveyard unused;
    for (unsigned k = 0; k < kLevels; ++k) {
      for (auto it = levels_[k].cbegin(); it != levels_[k].cend();) {
        it = update_entry(k, key_of(it->first.address().v6_high(), it->first.address().v6_low(), k), it, unused);
      }
      if (!levels_[k].empty()) present_.fetch_or(1u << k, std::memory_order_relaxed);
    }
  }

  basic_v6_prefix_table(const basic_v6_prefix_table&) = delete;
  basic_v6_prefix_table& operator=(const basic_v6_prefix_table&) = delete;
  ~basic_v6_prefix_table() {
    const slot_table* t = table_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i <= t->mask; ++i) free_entry(live_entry(t->slots[i].entry.load(std::memory_order_relaxed)));
    delete t;
  }

  /// The route of the longest network holding the address, or nullopt. Probes the
  /// levels that hold networks, deepest first; one table probe and one chunk each.
  std::optional<route_id> lookup(std::uint64_t high, std::uint64_t low) const noexcept {
    std::uint32_t levels = present_.load(std::memory_order_acquire);
    if (levels == 0) return std::nullopt;
    const slot_table& t = *table_.load(std::memory_order_acquire);
    while (levels != 0) {
      const unsigned k = 31u - static_cast<unsigned>(__builtin_clz(levels));
      levels &= ~(1u << k);
      const std::uint64_t e = t.find(key_of(high, low, k));
      if (e == 0) continue;
      if (const std::uint32_t code = entry_code(e, piece(high, low, k))) return route_of(code);
    }
    return std::nullopt;
  }

  /// Lists `n` on `route`; its one entry is rebuilt and swapped in with one release
  /// store. What readers may still hold goes to `dead`.
  change insert(const ip_network& n, route_id route, graveyard& dead) {
    const unsigned k = level_of(n);
    const auto [it, added] = levels_[k].try_emplace(n, route);
    if (!added) {
      if (it->second == route) return change::unchanged;
      it->second = route;
    }
    update_entry(k, key_of(n.address().v6_high(), n.address().v6_low(), k), first_under(k, n), dead);
    // After the entry: a reader that sees the level sees what it holds.
    if (added) present_.fetch_or(1u << k, std::memory_order_release);
    return added ? change::added : change::updated;
  }

  /// Removes `n` exactly as listed. False if absent.
  bool erase(const ip_network& n, graveyard& dead) {
    const unsigned k = level_of(n);
    if (levels_[k].erase(n) == 0) return false;
    update_entry(k, key_of(n.address().v6_high(), n.address().v6_low(), k), first_under(k, n), dead);
    if (levels_[k].empty()) present_.fetch_and(~(1u << k), std::memory_order_release);
    return true;
  }

  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const auto& level : levels_) n += level.size();
    return n;
  }

  template <class F>
  void for_each(F&& f) const {
    for (const auto& level : levels_) {
      for (const auto& [n, r] : level) f(n, r);
    }
  }

  /// The hash table and the chunks (not the writer's maps).
  std::size_t bytes() const noexcept {
    return (table_.load(std::memory_order_relaxed)->mask + 1) * sizeof(slot) + chunk_bytes_;
  }

 private:
  using level_iterator = typename network_map::const_iterator;

  static constexpr unsigned kLevels = 8;
  static constexpr std::uint64_t kErased = 2;  // a tombstone: even, and no chunk lives at address 2

  struct key128 {
    std::uint64_t high, low;
  };

  // A slot's key words are written once, before its entry is first published, and
  // never rewritten (an erased key stays as a tombstone until the table is rebuilt),
  // so a reader never compares half of a key.
  struct slot {
    std::atomic<std::uint64_t> high{0}, low{0}, entry{0};
  };

  struct slot_table {
    explicit slot_table(unsigned bits)
        : slots(new slot[std::size_t{1} << bits]), mask((std::size_t{1} << bits) - 1), shift(64 - bits) {}

    std::uint64_t find(const key128& key) const noexcept {
      for (std::size_t i = hash(key) >> shift;; i = (i + 1) & mask) {
        const slot& s = slots[i];
        const std::uint64_t e = s.entry.load(std::memory_order_acquire);
        if (e == 0) return 0;
        if (s.high.load(std::memory_order_relaxed) != key.high || s.low.load(std::memory_order_relaxed) != key.low) {
          continue;
        }
        return live_entry(e);
      }
    }

    // The writer's slot for `key`: its own, or the empty one it would take.
    slot& place(const key128& key) noexcept {
      for (std::size_t i = hash(key) >> shift;; i = (i + 1) & mask) {
        slot& s = slots[i];
        if (s.entry.load(std::memory_order_relaxed) == 0) return s;
        if (s.high.load(std::memory_order_relaxed) == key.high && s.low.load(std::memory_order_relaxed) == key.low) {
          return s;
        }
      }
    }

    bool full() const noexcept { return (used + 1) * 10 > (mask + 1) * 7; }

    std::unique_ptr<slot[]> slots;
    std::size_t mask;
    unsigned shift;
    std::size_t used = 0, live = 0;
  };

  static std::uint64_t live_entry(std::uint64_t e) noexcept { return e == kErased ? 0 : e; }
  static std::uint64_t hash(const key128& k) noexcept { return mix64(k.high ^ mix64(k.low)); }

  static unsigned level_of(const ip_network& n) noexcept { return n.prefix_length() / 16; }

  static constexpr std::uint64_t top_bits(unsigned bits) noexcept { return bits == 0 ? 0 : ~0ull << (64 - bits); }

  // Level k's key: the address's first 16k bits, and k in the low bits (always zero
  // in a key of at most 112 bits), so that keys of different levels never meet.
  static key128 key_of(std::uint64_t high, std::uint64_t low, unsigned k) noexcept {
    if (k <= 4) return {high & top_bits(16 * k), k};
    return {high, (low & top_bits(16 * (k - 4))) | k};
  }

  // The 16 bits of the address after level k's key: its offset in the entry.
  static std::uint32_t piece(std::uint64_t high, std::uint64_t low, unsigned k) noexcept {
    const std::uint64_t word = k < 4 ? high : low;
    return static_cast<std::uint32_t>(word >> (48 - 16 * (k % 4))) & 0xffffu;
  }

  // The first network of level k under the key of `n` (networks under one key are
  // contiguous in the map's order).
  level_iterator first_under(unsigned k, const ip_network& n) const {
    const std::uint64_t high = n.address().v6_high() & top_bits(k <= 4 ? 16 * k : 64);
    const std::uint64_t low = k <= 4 ? 0 : n.address().v6_low() & top_bits(16 * (k - 4));
    return levels_[k].lower_bound(*ip_network::make(ip_address::v6(high, low), 16 * k));
  }

  // Rebuilds the entry for level k's networks under `key`, from `it`, the first of
  // them (or where it would be), and publishes it. Returns the iterator past them.
  level_iterator update_entry(unsigned k, const key128& key, level_iterator it, graveyard& dead) {
    dependent<std::vector<prefix_network<std::uint32_t>>> inside;
    for (; it != levels_[k].end(); ++it) {
      const ip_address& a = it->first.address();
      const key128 own = key_of(a.v6_high(), a.v6_low(), k);
      if (own.high != key.high || own.low != key.low) break;
      inside.push_back({piece(a.v6_high(), a.v6_low(), k) << 16, it->first.prefix_length() - 16 * k, it->second});
    }
    std::uint64_t e = 0;
    if (!inside.empty()) {
      // Every range starts on a multiple of 2^16: the networks are /0 to /15 of
      // the piece placed in a 32-bit key's top half.
      const dependent<range_list<std::uint32_t>> ranges = flatten(std::move(inside));
      chunk_ranges pieces;
      pieces.reserve(ranges.starts.size());
      for (std::size_t i = 0; i < ranges.starts.size(); ++i) pieces.push_back({ranges.starts[i] >> 16, ranges.codes[i]});
      e = make_entry(pieces);
    }
    set_entry(key, e, dead);
    return it;
  }

  // Publishes `e` (0: none) as the entry of `key`, with one release store.
  void set_entry(const key128& key, std::uint64_t e, graveyard& dead) {
    slot_table* t = table_.load(std::memory_order_relaxed);
    slot* s = &t->place(key);
    const std::uint64_t was = s->entry.load(std::memory_order_relaxed);
    const std::uint64_t old = live_entry(was);
    if (e == 0) {
      if (old == 0) return;
      s->entry.store(kErased, std::memory_order_release);
      --t->live;
    } else {
      if (was == 0) {
        if (t->full()) {
          t = grow(dead);
          s = &t->place(key);
        }
        // The key before the entry: a reader that sees the entry sees the key.
        s->high.store(key.high, std::memory_order_relaxed);
        s->low.store(key.low, std::memory_order_relaxed);
        ++t->used;
      }
      if (old == 0) ++t->live;
      s->entry.store(e, std::memory_order_release);
    }
    chunk_bytes_ += entry_bytes(e);
    chunk_bytes_ -= entry_bytes(old);
    retire_entry(old, dead);
  }

  // A fresh table, at most half full, holding the live entries (the chunks are
  // shared, not copied); the old one goes to `dead`.
  slot_table* grow(graveyard& dead) {
    slot_table* old = table_.load(std::memory_order_relaxed);
    auto* fresh = new slot_table(table_bits_for(old->live + 1));
    for (std::size_t i = 0; i <= old->mask; ++i) {
      const slot& from = old->slots[i];
      const std::uint64_t e = live_entry(from.entry.load(std::memory_order_relaxed));
      if (e == 0) continue;
      const key128 key{from.high.load(std::memory_order_relaxed), from.low.load(std::memory_order_relaxed)};
      slot& to = fresh->place(key);
      to.high.store(key.high, std::memory_order_relaxed);
      to.low.store(key.low, std::memory_order_relaxed);
      to.entry.store(e, std::memory_order_relaxed);
      ++fresh->used;
      ++fresh->live;
    }
    table_.store(fresh, std::memory_order_release);
    dead.push_back(std::shared_ptr<const slot_table>(old));
    return fresh;
  }

  std::array<network_map, kLevels> levels_;
  std::atomic<std::uint32_t> present_{0};  // bit k: level k holds networks
  std::atomic<slot_table*> table_{nullptr};
  std::size_t chunk_bytes_ = 0;
};

using v6_prefix_table = basic_v6_prefix_table<>;

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_PREFIX_INDEX_HPP
