// Longest-prefix match over a fixed set of networks, as a sorted array of ranges.
//
// Networks nest or are disjoint, so the address line splits into ranges on which
// the longest match does not change. Building flattens the networks into the sorted
// starts of those ranges (at most 2n + 1 of them); a lookup is one binary search,
// narrowed first by a 65,536-entry table on the key's top 16 bits, so it touches
// two or three cache lines however many networks there are. The index is immutable:
// a change builds a new one (O(n log n); 10,000 networks take about a millisecond)
// and the store publishes it through its reader_gate.
#ifndef GRAYROUTE_DETAIL_PREFIX_INDEX_HPP
#define GRAYROUTE_DETAIL_PREFIX_INDEX_HPP

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "../store.hpp"
#include "../version.hpp"

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

template <class Key>
class prefix_index {
 public:
  using traits = key_traits<Key>;

  struct network {
    Key start;
    unsigned prefix;
    route_id route;
  };

  /// `networks` need no order; each (start, prefix) must appear once.
  explicit prefix_index(std::vector<network> networks) {
    std::sort(networks.begin(), networks.end(), [](const network& a, const network& b) {
      return a.start != b.start ? a.start < b.start : a.prefix < b.prefix;  // outer before inner
    });
    struct open {
      Key last;
      std::int32_t route;
    };
    std::vector<open> stack;
    emit(Key{}, kNone);
    auto close_until = [&](const Key* before) {
      // Pop the networks that end before `before` (all of them when null), handing
      // the range after each back to the network around it.
      while (!stack.empty() && (before == nullptr || stack.back().last < *before)) {
        const Key last = stack.back().last;
        stack.pop_back();
        if (last != traits::max()) emit(traits::next(last), stack.empty() ? kNone : stack.back().route);
      }
    };
    for (const network& n : networks) {
      close_until(&n.start);
      emit(n.start, n.route);
      stack.push_back({traits::last(n.start, n.prefix), n.route});
    }
    close_until(nullptr);
    if (starts_.size() > 64) {
      buckets_.resize((std::size_t{1} << 16) + 1);
      for (std::uint32_t b = 0; b < (1u << 16); ++b) buckets_[b] = index_of(traits::from_top16(b));
      buckets_[1u << 16] = static_cast<std::uint32_t>(starts_.size() - 1);
    }
    networks_ = networks.size();
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
    const std::int32_t r = routes_[lo];
    if (r == kNone) return std::nullopt;
    return static_cast<route_id>(r);
  }

  std::size_t networks() const noexcept { return networks_; }
  std::size_t bytes() const noexcept {
    return starts_.capacity() * sizeof(Key) + routes_.capacity() * sizeof(std::int32_t) +
           buckets_.capacity() * sizeof(std::uint32_t);
  }

 private:
  static constexpr std::int32_t kNone = -1;

  void emit(Key start, std::int32_t route) {
    if (!starts_.empty() && starts_.back() == start) {
      routes_.back() = route;
      if (routes_.size() >= 2 && routes_[routes_.size() - 2] == route) {
        starts_.pop_back();
        routes_.pop_back();
      }
      return;
    }
    if (!routes_.empty() && routes_.back() == route) return;
    starts_.push_back(start);
    routes_.push_back(route);
  }

  std::uint32_t index_of(Key key) const noexcept {
    const auto it = std::upper_bound(starts_.begin(), starts_.end(), key);
    return static_cast<std::uint32_t>(it - starts_.begin() - 1);
  }

  std::vector<Key> starts_;
  std::vector<std::int32_t> routes_;
  std::vector<std::uint32_t> buckets_;
  std::size_t networks_ = 0;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_PREFIX_INDEX_HPP
