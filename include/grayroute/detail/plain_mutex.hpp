// A mutex for writers, over pthread_mutex_t, so that the core headers need not include
// <mutex>: with libstdc++ that header brings <chrono>, <system_error>, call_once and the
// timed mutexes, about a quarter of what <string> costs to compile, for the lock of
// memory_store's writers and reader_gate's synchronize(), neither of them on a read path.
// <pthread.h> is already part of what <string> includes (libstdc++'s gthreads), and the
// stores are POSIX-only anyway (reader_gate's thread-specific data, membarrier).
#ifndef GRAYROUTE_DETAIL_PLAIN_MUTEX_HPP
#define GRAYROUTE_DETAIL_PLAIN_MUTEX_HPP

#include <pthread.h>

#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

/// Constant-initialised like std::mutex (no constructor runs for a static one); like
/// libstdc++'s std::mutex it needs no destroy call, being initialised statically.
class plain_mutex {
 public:
  constexpr plain_mutex() noexcept = default;
  plain_mutex(const plain_mutex&) = delete;
  plain_mutex& operator=(const plain_mutex&) = delete;

  void lock() noexcept { ::pthread_mutex_lock(&mutex_); }
  void unlock() noexcept { ::pthread_mutex_unlock(&mutex_); }

 private:
  pthread_mutex_t mutex_ = PTHREAD_MUTEX_INITIALIZER;
};

/// std::lock_guard for plain_mutex.
class plain_lock {
 public:
  explicit plain_lock(plain_mutex& m) noexcept : mutex_(m) { mutex_.lock(); }
  plain_lock(const plain_lock&) = delete;
  plain_lock& operator=(const plain_lock&) = delete;
  ~plain_lock() { mutex_.unlock(); }

 private:
  plain_mutex& mutex_;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_PLAIN_MUTEX_HPP
