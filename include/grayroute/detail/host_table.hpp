// Flat open-addressing tables for exact addresses, read lock-free while one writer
// updates them in place.
//
// Layout choices, for 1M IPv4 entries on the lookup hot path:
//   - gray_v4_table: the common case (an IPv4 host on the gray route) stores only
//     the 4-byte key, in buckets of 16 keys = one 64-byte line. The bucket comes
//     from the top bits of key * 2^64/phi (Fibonacci hashing: one multiply); all 16
//     keys are compared at once with SSE2, and a bucket whose last slot is empty
//     ends the probe, so a lookup, listed or not, reads one line (a bucket
//     overflows into the next only while full: a few percent of buckets at the
//     70% ceiling, well under 1% at the half load a rebuild leaves). That is the Swiss-table idea without its separate tag bytes:
//     a 4-byte key is as cheap to compare as a tag. 1M entries take 8 MiB (about
//     8.4 bytes per entry, absl::flat_hash_set 10.5). 0.0.0.0 and 255.255.255.255
//     are its empty and tombstone markers; those two keys live in a tagged_table.
//   - tagged_table<W>: key words + a 32-bit meta (route, tombstone bit). Keys are
//     written once per slot and never rewritten, so a reader comparing a 128-bit
//     key can never see half of one; an erased slot keeps its key as a tombstone
//     and is revived only for the same key. Linear probing from a murmur-mixed hash.
//   - Both are rebuilt into fresh tables (published through the store's
//     reader_gate) when live + tombstones exceed 70%, so probes stay short and
//     every probe sequence ends.
//   - bloom_filter: 64-bit blocks, 3 bits per key, about 8 bits per entry, in front
//     of the IPv4 tagged_table (hosts on other routes), which is usually small or
//     empty; an empty one is not probed at all. Erasing leaves bits set; the store
//     rebuilds it once erases pile up.
#ifndef GRAYROUTE_DETAIL_HOST_TABLE_HPP
#define GRAYROUTE_DETAIL_HOST_TABLE_HPP

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__linux__) && defined(MADV_HUGEPAGE)
#define GRAYROUTE_HUGE_PAGES 1
#else
#define GRAYROUTE_HUGE_PAGES 0
#endif

#include "reader_gate.hpp"  // GRAYROUTE_TSAN

#if defined(__SSE2__) && !GRAYROUTE_TSAN
#include <emmintrin.h>
#define GRAYROUTE_SIMD_PROBE 1
#else
#define GRAYROUTE_SIMD_PROBE 0
#endif

#include "../store.hpp"
#include "convert.hpp"
#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

/// T, named through a template parameter so that a class template can refer to it
/// without instantiating it before the class template itself is.
template <class T, class>
struct dependent_type {
  using type = T;
};

/// murmur3's 64-bit finaliser: every input bit moves every output bit.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

/// An array of zeroed atomics; large ones are asked for on 2 MiB pages, because the
/// tables are probed at random and TLB misses would otherwise dominate.
///
/// On Linux a large array is its own mapping, 2 MiB-aligned and advised
/// (MADV_HUGEPAGE) before its first touch: memory the heap hands back after a free
/// is already mapped in 4 KiB pages, and advice given then only takes effect when
/// khugepaged gets round to it (16 MiB per 10 s by default). Where that fails, or
/// elsewhere, it is an ordinary aligned allocation: huge pages are a speed-up, never
/// a requirement.
template <class T>
class atomic_array {
 public:
  explicit atomic_array(std::size_t count) : count_(count) {
    const std::size_t bytes = count * sizeof(std::atomic<T>);
    data_ = static_cast<std::atomic<T>*>(map_huge(bytes));
    mapped_ = data_ != nullptr;
    if (!mapped_) data_ = static_cast<std::atomic<T>*>(::operator new(bytes, std::align_val_t(alignment_for(bytes))));
    for (std::size_t i = 0; i < count; ++i) new (&data_[i]) std::atomic<T>(T{});
  }
  atomic_array(const atomic_array&) = delete;
  atomic_array& operator=(const atomic_array&) = delete;
  ~atomic_array() {
#if GRAYROUTE_HUGE_PAGES
    if (mapped_) {
      ::munmap(static_cast<void*>(data_), bytes());
      return;
    }
#endif
    ::operator delete(static_cast<void*>(data_), std::align_val_t(alignment_for(bytes())));
  }

  std::atomic<T>& operator[](std::size_t i) noexcept { return data_[i]; }
  const std::atomic<T>& operator[](std::size_t i) const noexcept { return data_[i]; }
  std::size_t size() const noexcept { return count_; }
  std::size_t bytes() const noexcept { return count_ * sizeof(std::atomic<T>); }

 private:
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;
  static constexpr std::size_t alignment_for(std::size_t bytes) { return bytes >= kHugePage ? kHugePage : 64; }

  // A fresh 2 MiB-aligned mapping of `bytes` advised for huge pages, or null.
  static void* map_huge([[maybe_unused]] std::size_t bytes) noexcept {
#if GRAYROUTE_HUGE_PAGES
    if (bytes < kHugePage) return nullptr;
    // Map one huge page more than needed and cut the unaligned ends off.
    const std::size_t span = bytes + kHugePage;
    void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    unsigned char* const first = static_cast<unsigned char*>(raw);
    const std::size_t head = (kHugePage - reinterpret_cast<std::uintptr_t>(first) % kHugePage) % kHugePage;
    unsigned char* const data = first + head;
    if (head != 0) ::munmap(first, head);
    ::munmap(data + bytes, kHugePage - head);  // a multiple of 4 KiB, never 0
    ::madvise(data, bytes, MADV_HUGEPAGE);  // refused (THP off, old kernel): 4 KiB pages
    return data;
#else
    return nullptr;
#endif
  }

  std::atomic<T>* data_;
  std::size_t count_;
  bool mapped_ = false;
};

/// Smallest power-of-two exponent whose table keeps `entries` at or under half full.
inline unsigned table_bits_for(std::size_t entries) noexcept {
  unsigned bits = 4;
  while ((std::size_t{1} << bits) < entries * 2) ++bits;
  return bits;
}

/// The IPv4 hosts on the gray route: 4-byte keys in buckets of 16, one cache line
/// each, matched 16 at a time with SSE2.
class gray_v4_table {
 public:
  static constexpr std::uint32_t kEmpty = 0;
  static constexpr std::uint32_t kTombstone = 0xffffffffu;
  static constexpr std::size_t kBucketSlots = 16;  // 64 bytes: one line, one probe

  /// Keys that can live here; the two markers go to a tagged_table.
  static constexpr bool storable(std::uint32_t key) noexcept { return key != kEmpty && key != kTombstone; }

  /// Fibonacci hashing: one multiply; the bucket comes from the product's top bits,
  /// which every key bit reaches.
  static constexpr std::uint64_t hash(std::uint32_t key) noexcept { return key * 0x9e3779b97f4a7c15ull; }

  /// A table of 2^bits slots (at least two buckets).
  explicit gray_v4_table(unsigned bits)
      : slots_(std::size_t{1} << (bits < 5 ? 5 : bits)), shift_(64 - ((bits < 5 ? 5 : bits) - 4)) {}

  /// What a reader needs, copied into the store's snapshot so a lookup follows no
  /// pointer chain: the slot array stays put for the table's whole life.
  struct view {
    const std::atomic<std::uint32_t>* slots;
    std::size_t bucket_mask;
    unsigned shift;

    const std::atomic<std::uint32_t>* bucket(std::uint64_t hash) const noexcept {
      return slots + (convert<std::size_t>(hash >> shift) * kBucketSlots);
    }

    /// True when `key` is in the table. No branch depends on the answer in the
    /// common case (a bucket that holds the key or has room): a lookup's caller can
    /// go on while the line is still on its way, and a mispredicted branch on it
    /// would stall the lookups after it until the miss is served.
    bool contains(std::uint32_t key) const noexcept {
      const std::uint64_t h = hash(key);
      std::size_t b = convert<std::size_t>(h >> shift);
      match m = match_bucket(slots + b * kBucketSlots, key);
      // Keys overflow into the next bucket only while this one is full, and
      // erasing leaves a tombstone, so a bucket with an empty slot ends the probe.
      while (__builtin_expect(!m.settled, 0)) {
        b = (b + 1) & bucket_mask;
        m = match_bucket(slots + b * kBucketSlots, key);
      }
      return m.found & storable(key);  // the markers match empty slots and tombstones
    }
  };

  view reader_view() const noexcept { return {&slots_[0], slots_.size() / kBucketSlots - 1, shift_}; }
  bool contains(std::uint32_t key) const noexcept { return reader_view().contains(key); }

  // Writer side: one thread at a time (the store's mutex).
  bool insert(std::uint32_t key, std::uint64_t hash) noexcept {
    const std::size_t mask = slots_.size() - 1;
    std::size_t reuse = SIZE_MAX;
    std::size_t i = convert<std::size_t>(hash >> shift_) * kBucketSlots;
    std::size_t empty = SIZE_MAX;
    for (;; i = (i + kBucketSlots) & mask) {
      for (std::size_t j = i; j < i + kBucketSlots; ++j) {
        const std::uint32_t v = slots_[j].load(std::memory_order_relaxed);
        if (v == key) return false;
        if (v == kTombstone && reuse == SIZE_MAX) reuse = j;
        if (v == kEmpty && empty == SIZE_MAX) empty = j;
      }
      if (empty != SIZE_MAX) break;
    }
    if (reuse != SIZE_MAX) {
      empty = reuse;
      --tombstones_;
    } else {
      ++used_;
    }
    slots_[empty].store(key, std::memory_order_release);
    ++live_;
    return true;
  }

  bool erase(std::uint32_t key, std::uint64_t hash) noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = convert<std::size_t>(hash >> shift_) * kBucketSlots;; i = (i + kBucketSlots) & mask) {
      bool has_empty = false;
      for (std::size_t j = i; j < i + kBucketSlots; ++j) {
        const std::uint32_t v = slots_[j].load(std::memory_order_relaxed);
        has_empty |= v == kEmpty;
        if (v != key) continue;
        // A tombstone, not an empty slot: readers probing past it must keep going.
        slots_[j].store(kTombstone, std::memory_order_release);
        --live_;
        ++tombstones_;
        return true;
      }
      if (has_empty) return false;
    }
  }

  /// True when one more insert would pass 70% occupancy (live + tombstones).
  bool full() const noexcept { return (used_ + 1) * 10 > slots_.size() * 7; }
  std::size_t live() const noexcept { return live_; }
  std::size_t bytes() const noexcept { return slots_.bytes(); }

  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const std::uint32_t v = slots_[i].load(std::memory_order_relaxed);
      if (storable(v)) f(v);
    }
  }

 private:
  struct match {
    bool found;
    bool settled;  // found, or the bucket has an empty slot: the probe ends here
  };

  // A bucket fills from its first slot and an erased key leaves a tombstone, so
  // its empty slots are always its last ones: it has room iff its last slot is
  // empty, one scalar load instead of sixteen comparisons.
  static match match_bucket(const std::atomic<std::uint32_t>* bucket, std::uint32_t key) noexcept {
    const bool has_room = bucket[kBucketSlots - 1].load(std::memory_order_acquire) == kEmpty;
#if GRAYROUTE_SIMD_PROBE
    // One line, four 16-byte loads. The C++ memory model has no vector atomics, but
    // on x86 each aligned 4-byte lane of a vector load is read whole, so a lane is
    // either the old or the new value of a slot, as a relaxed load would give;
    // the table's release stores order a key before anything published after it.
    // ThreadSanitizer cannot see through this, so its builds take the loop below.
    static_assert(sizeof(std::atomic<std::uint32_t>) == 4 && std::atomic<std::uint32_t>::is_always_lock_free);
    const auto* p = reinterpret_cast<const __m128i*>(bucket);
    const __m128i k = _mm_set1_epi32(static_cast<int>(key));
    const __m128i eq = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi32(_mm_load_si128(p), k), _mm_cmpeq_epi32(_mm_load_si128(p + 1), k)),
                                    _mm_or_si128(_mm_cmpeq_epi32(_mm_load_si128(p + 2), k), _mm_cmpeq_epi32(_mm_load_si128(p + 3), k)));
    const bool found = _mm_movemask_epi8(eq) != 0;
#else
    bool found = false;
    for (std::size_t j = 0; j < kBucketSlots; ++j) found |= bucket[j].load(std::memory_order_acquire) == key;
#endif
    // `settled` from bitwise operations, so that no branch waits on `found` alone.
    return {found, static_cast<bool>(found | has_room)};
  }

  atomic_array<std::uint32_t> slots_;
  unsigned shift_;
  std::size_t live_ = 0;
  std::size_t used_ = 0;  // non-empty slots: live + tombstones
  std::size_t tombstones_ = 0;
};

/// Exact keys of W 64-bit words (1: IPv4, 2: IPv6) with a route each.
template <std::size_t W>
class tagged_table {
 public:
  using key_type = std::array<std::uint64_t, W>;

  explicit tagged_table(unsigned bits) : slots_(new slot[std::size_t{1} << bits]), mask_((std::size_t{1} << bits) - 1), shift_(64 - bits) {}

  std::optional<route_id> find(const key_type& key, std::uint64_t hash) const noexcept {
    for (std::size_t i = hash >> shift_;; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      const std::uint32_t meta = s.meta.load(std::memory_order_acquire);
      if (meta == 0) return std::nullopt;
      if (!s.matches(key)) continue;
      if (meta & kTombstoneBit) return std::nullopt;
      return static_cast<route_id>(meta & 0xffff);
    }
  }

  enum class change { added, updated, unchanged };

  change insert(const key_type& key, std::uint64_t hash, route_id route) noexcept {
    const std::uint32_t meta = kUsedBit | std::uint32_t{route};
    for (std::size_t i = hash >> shift_;; i = (i + 1) & mask_) {
      slot& s = slots_[i];
      const std::uint32_t old = s.meta.load(std::memory_order_relaxed);
      if (old == 0) {
        for (std::size_t w = 0; w < W; ++w) s.words[w].store(key[w], std::memory_order_relaxed);
        s.meta.store(meta, std::memory_order_release);
        ++used_;
        add_live(1);
        return change::added;
      }
      if (!s.matches(key)) continue;
      if (old == meta) return change::unchanged;
      s.meta.store(meta, std::memory_order_release);
      if (old & kTombstoneBit) {
        --tombstones_;
        add_live(1);
        return change::added;
      }
      return change::updated;
    }
  }

  bool erase(const key_type& key, std::uint64_t hash) noexcept {
    for (std::size_t i = hash >> shift_;; i = (i + 1) & mask_) {
      slot& s = slots_[i];
      const std::uint32_t old = s.meta.load(std::memory_order_relaxed);
      if (old == 0) return false;
      if (!s.matches(key)) continue;
      if (old & kTombstoneBit) return false;
      s.meta.store(old | kTombstoneBit, std::memory_order_release);
      add_live(-1);
      ++tombstones_;
      return true;
    }
  }

  bool full() const noexcept { return (used_ + 1) * 10 > (mask_ + 1) * 7; }
  std::size_t live() const noexcept { return live_.load(std::memory_order_relaxed); }
  /// For readers: an empty table need not be probed. A lookup that starts after an
  /// insert returned sees the count it left.
  bool any() const noexcept { return live_.load(std::memory_order_relaxed) != 0; }
  std::size_t bytes() const noexcept { return (mask_ + 1) * sizeof(slot); }

  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i <= mask_; ++i) {
      const slot& s = slots_[i];
      const std::uint32_t meta = s.meta.load(std::memory_order_relaxed);
      if (meta == 0 || (meta & kTombstoneBit)) continue;
      key_type key;
      for (std::size_t w = 0; w < W; ++w) key[w] = s.words[w].load(std::memory_order_relaxed);
      f(key, static_cast<route_id>(meta & 0xffff));
    }
  }

 private:
  static constexpr std::uint32_t kUsedBit = 1u << 30;
  static constexpr std::uint32_t kTombstoneBit = 1u << 31;

  struct slot {
    std::atomic<std::uint64_t> words[W] = {};
    std::atomic<std::uint32_t> meta{0};

    bool matches(const key_type& key) const noexcept {
      for (std::size_t w = 0; w < W; ++w) {
        if (words[w].load(std::memory_order_relaxed) != key[w]) return false;
      }
      return true;
    }
  };

  void add_live(int delta) noexcept {
    live_.store(live_.load(std::memory_order_relaxed) + static_cast<std::size_t>(delta), std::memory_order_release);
  }

  std::unique_ptr<slot[]> slots_;
  std::size_t mask_;
  unsigned shift_;
  std::atomic<std::size_t> live_{0};
  std::size_t used_ = 0;
  std::size_t tombstones_ = 0;
};

class bloom_filter {
 public:
  /// About 8 bits per entry for a table of 2^table_bits slots at <= 50% load.
  explicit bloom_filter(unsigned table_bits)
      : words_(std::size_t{1} << (table_bits > 4 ? table_bits - 4 : 0)), shift_(64 - (table_bits > 4 ? table_bits - 4 : 0)) {}

  struct view {
    const std::atomic<std::uint64_t>* words;
    unsigned shift;

    bool may_contain(std::uint64_t hash) const noexcept {
      const std::uint64_t m = bits(hash);
      const std::size_t i = shift == 64 ? 0 : hash >> shift;
      return (words[i].load(std::memory_order_acquire) & m) == m;
    }
  };

  view reader_view() const noexcept { return {&words_[0], shift_}; }
  bool may_contain(std::uint64_t hash) const noexcept { return reader_view().may_contain(hash); }

  void add(std::uint64_t hash) noexcept { words_[index(hash)].fetch_or(bits(hash), std::memory_order_release); }

  std::size_t bytes() const noexcept { return words_.bytes(); }

 private:
  // The word comes from the hash's top bits (like the table's slot), the three bit
  // positions from its low 18 bits, so they are independent.
  std::size_t index(std::uint64_t hash) const noexcept { return shift_ == 64 ? 0 : hash >> shift_; }
  static constexpr std::uint64_t bits(std::uint64_t hash) noexcept {
    return (1ull << (hash & 63)) | (1ull << ((hash >> 6) & 63)) | (1ull << ((hash >> 12) & 63));
  }

  atomic_array<std::uint64_t> words_;
  unsigned shift_;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_HOST_TABLE_HPP
