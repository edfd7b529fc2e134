// Safe reclamation for snapshots that readers use while a writer replaces them.
//
// Userspace RCU in the style of liburcu's "memb" flavour. Each reading thread owns
// a record; entering a read section stores the current epoch in it and leaving
// stores 0. Those are plain stores, with no fence and no read-modify-write: a
// locked instruction per lookup would serialise the cache misses of consecutive
// lookups and cost more than the lookup itself. The writer pays instead: after
// publishing a new snapshot it bumps the epoch, runs membarrier(2), which makes
// every running thread of the process execute a full barrier, and then waits until
// no record still shows an older epoch. After that no reader can hold the old
// snapshot and it may be freed. Where membarrier is unavailable, readers fall back
// to a seq_cst fence on entry.
//
// The reader's fast path is a thread-local pointer load, two loads of constant-
// initialised globals and the two stores: anything more (a nesting counter, an
// initialisation guard) measurably slowed back-to-back lookups, so sections do not
// nest (no lookup calls another; debug builds assert it).
//
// One domain serves the whole process (every store), like liburcu's default.
// Records are never freed, only reused by later threads, so their number is
// bounded by the peak number of reading threads. A thread gives its record back when
// it exits, through a POSIX thread-specific-data destructor rather than a
// thread_local object with a destructor, so the header adds no exit-time destructor
// (and the read path tests a plain thread_local pointer, no TLS guard).
#ifndef GRAYROUTE_DETAIL_READER_GATE_HPP
#define GRAYROUTE_DETAIL_READER_GATE_HPP

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <atomic>
#include <cassert>
#include <cstdint>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "../version.hpp"
#include "plain_mutex.hpp"

// ThreadSanitizer models neither membarrier nor fences: under it, readers take the
// portable path with a seq_cst read-modify-write, which it does understand.
#if defined(__SANITIZE_THREAD__)
#define GRAYROUTE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GRAYROUTE_TSAN 1
#endif
#endif
#ifndef GRAYROUTE_TSAN
#define GRAYROUTE_TSAN 0
#endif

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

// All a reader touches besides its own record, constant-initialised so that
// entering costs no initialisation check. Readers fence until membarrier is
// registered, which happens before any thread's first read section (claiming a
// record constructs the domain).
struct reader_gate_state {
  std::atomic<std::uint64_t> epoch{1};
  std::atomic<bool> fenced{true};
};

class reader_gate {
 private:
  struct alignas(64) record {
    std::atomic<std::uint64_t> epoch{0};  // 0: not reading
    std::atomic<bool> in_use{true};
    record* next = nullptr;
  };

 public:
  class guard {
   public:
    explicit guard(record* r) noexcept : record_(r) {}
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { record_->epoch.store(0, std::memory_order_release); }

   private:
    record* record_;
  };

  /// Marks the calling thread as reading until the guard dies. Load the published
  /// pointer after this. Sections do not nest (no lookup calls another): checking
  /// for an outer section costs a load and a branch that measurably slow down
  /// back-to-back lookups, so only debug builds check.
  [[nodiscard]] static guard enter() noexcept {
    record* r = this_thread_record();
    assert(r->epoch.load(std::memory_order_relaxed) == 0 && "reader_gate sections do not nest");
    const std::uint64_t now = readers_.epoch.load(std::memory_order_relaxed);
    if (readers_.fenced.load(std::memory_order_relaxed)) {
      r->epoch.exchange(now, std::memory_order_seq_cst);  // a full barrier, portable
    } else {
      r->epoch.store(now, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // the compiler must not sink the store
    }
    return guard(r);
  }

  /// Returns once no reader can still hold a pointer loaded before the caller's
  /// last publish (a seq_cst store). Called by writers only; may block briefly.
  static void synchronize() noexcept {
    domain& d = the_domain();
    plain_lock lock(d.mutex);
    const std::uint64_t now = readers_.epoch.fetch_add(1, std::memory_order_seq_cst) + 1;
    heavy_barrier(d);
    for (record* r = d.head.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      for (int spins = 0;; ++spins) {
        const std::uint64_t seen = r->epoch.load(std::memory_order_seq_cst);
        if (seen == 0 || seen >= now) break;
        if (spins > 64) ::sched_yield();
      }
    }
  }

 private:
  static inline reader_gate_state readers_{};

  struct domain {
    std::atomic<record*> head{nullptr};
    bool membarrier_ready = false;
    plain_mutex mutex;  // serialises synchronize()
    pthread_key_t thread_exit{};  // its destructor returns an exiting thread's record
    bool thread_exit_ready = false;

    domain() {
      thread_exit_ready = ::pthread_key_create(&thread_exit, &release_record) == 0;
#if defined(__linux__) && defined(__NR_membarrier) && !GRAYROUTE_TSAN
      const long supported = ::syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
      membarrier_ready = supported > 0 && (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                         ::syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
      readers_.fenced.store(!membarrier_ready, std::memory_order_seq_cst);
    }
  };

  // Leaked on purpose: threads may still leave read sections during static destruction.
  static domain& the_domain() noexcept {
    static domain* d = new domain;
    return *d;
  }

  static void heavy_barrier(domain& d) noexcept {
#if defined(__linux__) && defined(__NR_membarrier)
    if (d.membarrier_ready && ::syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
#endif
    // Without membarrier the readers fence themselves (their seq_cst exchange pairs
    // with the writer's seq_cst epoch bump and loads). If membarrier failed only now,
    // readers already inside entered unfenced: give their store buffers time to
    // drain (they do within nanoseconds).
    const bool was_fenced = readers_.fenced.exchange(true, std::memory_order_seq_cst);
    if (!was_fenced) {
      const timespec one_ms{0, 1000000};
      ::nanosleep(&one_ms, nullptr);
    }
  }

  // The calling thread's record: a plain pointer in thread-local storage, read with
  // no initialisation check; claimed on first use, released at thread exit.
  static inline thread_local record* mine_ = nullptr;

  static record* this_thread_record() noexcept {
    if (mine_ != nullptr) return mine_;
    mine_ = claim_record();
    return mine_;
  }

  // Runs in the exiting thread. A lookup made later by another thread-exit
  // destructor of the same thread claims a record again, and POSIX calls this again.
  static void release_record(void* p) noexcept {
    mine_ = nullptr;
    static_cast<record*>(p)->in_use.store(false, std::memory_order_release);
  }

  static record* claim_record() noexcept {
    domain& d = the_domain();
    record* r = find_or_add_record(d);
    // Without the key (out of keys: PTHREAD_KEYS_MAX) the record is not given back at
    // thread exit: a leak of one record per thread, never a wrong answer.
    if (d.thread_exit_ready) ::pthread_setspecific(d.thread_exit, r);
    return r;
  }

  static record* find_or_add_record(domain& d) noexcept {
    for (record* r = d.head.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      bool free = false;
      if (!r->in_use.load(std::memory_order_relaxed) &&
          r->in_use.compare_exchange_strong(free, true, std::memory_order_acquire)) {
        return r;
      }
    }
    // A lock-free push, so a thread's first lookup never waits for a writer.
    record* r = new record;
    r->next = d.head.load(std::memory_order_relaxed);
    while (!d.head.compare_exchange_weak(r->next, r, std::memory_order_release, std::memory_order_relaxed)) {
    }
    return r;
  }
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_READER_GATE_HPP
