// Where the gray list comes from: --gray-list flags and --gray-list-file in a
// memory_store, and/or Redis (--redis). It is the Store the router reads, so the
// router is instantiated once whatever the source.
//
// The file is reloaded on SIGHUP or when it changes: parsed whole, then swapped in
// with memory_store::replace, so requests see the old list or the new one. A bad
// file is rejected with its line number and the old list stays. A changed file is
// applied only once complete and stable (grayroute::list_file_watch: ending in a
// newline, the same bytes at two looks one --watch-interval apart), so a file being
// rewritten in place is never applied empty or half-written.
#ifndef GRAYROUTE_PROXY_LIST_SOURCE_HPP
#define GRAYROUTE_PROXY_LIST_SOURCE_HPP

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <grayroute/list_file.hpp>
#include <grayroute/memory_store.hpp>
#include <grayroute/version.hpp>

#include "options.hpp"

GRAYROUTE_NAMESPACE_BEGIN
class redis_store;  // redis_store.hpp (and hiredis) only in list_source.cpp
GRAYROUTE_NAMESPACE_END

namespace grayroute_proxy {

class list_source {
 public:
  /// Loads the flags and the file; throws std::runtime_error naming the bad value or line.
  explicit list_source(const proxy_options& options);
  ~list_source();
  list_source(const list_source&) = delete;
  list_source& operator=(const list_source&) = delete;

  /// The store requirement. Listed by flag or file first, then by Redis.
  std::optional<grayroute::route_id> lookup(const grayroute::ip_address& address) const noexcept {
    if (auto r = memory_.lookup(address)) return r;
    return redis_ ? redis_lookup(address) : std::nullopt;
  }

  /// Re-reads the file until it is stable (SIGHUP); `why` goes to the log.
  void reload(const char* why);
  /// One look at the file (every --watch-interval): applies a new stable version.
  void poll();
  bool watches_file() const { return !file_.empty(); }

  /// One line for the startup log (never the Redis password).
  std::string describe() const;
  /// {"entries":..,"source":..,"last_sync":..,...} for GET /-/grayroute/health.
  std::string health_json() const;

  void stop();

  // --- #12: the figures of /-/grayroute/metrics (metrics_page.cpp) ---
  struct figures {
    std::size_t memory_entries = 0;  // flags and file
    std::time_t memory_loaded = 0;   // last successful load (epoch seconds)
    std::uint64_t reloads = 0, rejected = 0;
    bool has_file = false, has_redis = false;
    bool redis_connected = false, redis_serving = false;
    std::size_t redis_entries = 0;
    std::time_t redis_last_sync = 0;  // 0: never
    std::uint64_t redis_full_loads = 0, redis_connects = 0;
  };
  figures metrics_figures() const;
  // --- end #12 ---

 private:
  std::optional<grayroute::route_id> redis_lookup(const grayroute::ip_address& address) const noexcept;
  void apply(const grayroute::parsed_list& file_list);
  void reject(const grayroute::parsed_list& file_list, const char* why, bool log);

  std::vector<grayroute::store_entry> flag_entries_;
  std::string file_;
  std::vector<std::string> routes_;
  std::optional<grayroute::list_file_watch> watch_;  // only the thread that polls or reloads uses it
  grayroute::memory_store memory_;
  std::shared_ptr<grayroute::redis_store> redis_;  // shared_ptr: complete type needed only where made
  std::string redis_description_;

  mutable std::mutex status_mutex_;  // guards the fields below (health reads them from any thread)
  std::time_t last_load_ = 0;
  std::uint64_t reloads_ = 0, rejected_ = 0;
  std::string last_error_;
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_LIST_SOURCE_HPP
