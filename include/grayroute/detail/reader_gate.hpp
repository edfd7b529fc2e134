// Safe reclamation for snapshots that readers use while a writer replaces them.
//
// A userspace-RCU scheme in the style of liburcu's "memb" flavour: readers bump a
// counter of the current epoch parity on entry and drop it on exit; a writer that
// has published a new snapshot calls synchronize(), which flips the epoch twice and
// waits for each parity's readers to drain, after which nobody can still hold the
// old snapshot and it may be freed. Readers never wait, never retry, never take a
// lock; a writer waits only for readers already inside (a few hundred ns each).
// Counters are sharded per thread on separate cache lines so readers on different
// cores do not bounce one line between them.
#ifndef GRAYROUTE_DETAIL_READER_GATE_HPP
#define GRAYROUTE_DETAIL_READER_GATE_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

class reader_gate {
 public:
  static constexpr std::size_t kShards = 16;

  class guard {
   public:
    explicit guard(std::atomic<std::uint32_t>* counter) noexcept : counter_(counter) {}
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { counter_->fetch_sub(1, std::memory_order_release); }

   private:
    std::atomic<std::uint32_t>* counter_;
  };

  /// Marks the calling thread as reading until the guard dies. Load the published
  /// pointer after this, with seq_cst (a plain load on x86).
  [[nodiscard]] guard enter() const noexcept {
    shard& s = shards_[this_thread_shard()];
    const std::uint32_t parity = epoch_.load(std::memory_order_seq_cst) & 1u;
    std::atomic<std::uint32_t>* counter = &s.readers[parity];
    counter->fetch_add(1, std::memory_order_seq_cst);
    return guard(counter);
  }

  /// Returns once no reader can hold a pointer loaded before the caller's last
  /// seq_cst publish. Writers must serialise their calls (they hold the store lock).
  void synchronize() noexcept {
    // Two flips: a reader that read the old epoch but registered late sits in the
    // parity the second flip waits for.
    for (int phase = 0; phase < 2; ++phase) {
      const std::uint32_t parity = epoch_.fetch_add(1, std::memory_order_seq_cst) & 1u;
      for (auto& s : shards_) {
        for (int spins = 0; s.readers[parity].load(std::memory_order_seq_cst) != 0; ++spins) {
          if (spins > 64) std::this_thread::yield();
        }
      }
    }
  }

 private:
  struct alignas(64) shard {
    std::atomic<std::uint32_t> readers[2] = {};
  };

  static std::size_t this_thread_shard() noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
    return mine;
  }

  mutable shard shards_[kShards];
  std::atomic<std::uint32_t> epoch_{0};
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_READER_GATE_HPP
