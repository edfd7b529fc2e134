// The policy grayroute-proxy serves with, built from a proxy_policy (policy_file.hpp)
// and replaced whole on reload.
//
// A policy_snapshot is one policy and everything that goes with it: the grayroute::policy
// that decides, the servers of each of its routes, and the stores of its lists. A request
// loads the current snapshot once and keeps it, so its decision, route name, rule name
// and upstream all come from one policy even when a reload lands mid-request; the old
// snapshot goes when its last request does. (grayroute::shared_policy swaps a policy
// alone; the proxy must swap the policy together with its servers, so it swaps the
// snapshot the same way: a shared_ptr copied under the standard library's lock.)
//
// Reloads (SIGHUP, or the policy file changed) read everything again: the file, every
// list file, the Redis sources (a Redis store whose URL and routes are unchanged is kept,
// with its synced list); a bad file, list or value is logged with its place and the old
// snapshot keeps serving. A changed list file alone is swapped into its store in place
// (memory_store::replace), once complete and stable (grayroute::list_file_watch).
//
// #12: a snapshot also carries the routes' health (health_feed.hpp) and its probes: a
// reload keeps the feed when routes and health settings are unchanged, else the new
// feed shares each remaining route's state and counters by name (so what the old
// policy's requests still in flight record is not lost); on_reload restarts the probes.
#ifndef GRAYROUTE_PROXY_LIVE_POLICY_HPP
#define GRAYROUTE_PROXY_LIVE_POLICY_HPP

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include <grayroute/list_file.hpp>
#include <grayroute/memory_store.hpp>
#include <grayroute/policy.hpp>

#include "health_feed.hpp"
#include "options.hpp"
#include "policy_file.hpp"
#include "probes.hpp"

GRAYROUTE_NAMESPACE_BEGIN
class redis_store;  // redis_store.hpp (and hiredis) only in live_policy.cpp
GRAYROUTE_NAMESPACE_END

namespace grayroute_proxy {

/// "127.0.0.1:8000", "[::1]:8000" or "localhost:8000" -> an endpoint; policy_error naming `where`.
boost::asio::ip::tcp::endpoint resolve_endpoint(const std::string& where, const std::string& text);

struct upstream_server {
  boost::asio::ip::tcp::endpoint endpoint;
  std::string name;  // "127.0.0.1:8080", for 502 bodies and the access log
};

/// One list's stores, for the health page.
struct list_stores {
  std::string name;
  std::shared_ptr<grayroute::memory_store> configured;  // addresses written in the configuration
  std::size_t configured_entries = 0;
  std::string file;
  std::shared_ptr<grayroute::memory_store> from_file;
  std::shared_ptr<grayroute::redis_store> redis;
  std::string redis_description;  // never the password
  std::string redis_identity;     // server, credentials, list, routes: whether a reload may keep the store
};

struct policy_snapshot {
  explicit policy_snapshot(const grayroute::policy_config& config) : policy(config) {}

  grayroute::policy policy;
  std::vector<std::vector<upstream_server>> servers;  // by route_id, at least one each
  std::vector<list_stores> lists;
  std::string source;     // the policy file, or "flags"
  std::string client_ip;  // how the client is found, for the startup log
  std::vector<grayroute::key_source> rollout_keys;  // issue 13: the splits' key sources (with_pin_key)
  // #12: the routes' health (kept, or its routes' cells shared by name, across reloads) and the probes.
  std::shared_ptr<health_feed> health;
  std::vector<probe_spec> probes;  // routes resolved
};

class live_policy {
 public:
  /// Reads the policy file (options.config_file) or the flags, loads every list, starts
  /// Redis; throws policy_error naming the place.
  explicit live_policy(const proxy_options& options);
  ~live_policy();
  live_policy(const live_policy&) = delete;
  live_policy& operator=(const live_policy&) = delete;

  /// The snapshot to serve this request with; keep it for the request's lifetime.
  std::shared_ptr<const policy_snapshot> load() const noexcept { return std::atomic_load(&current_); }

  /// `listen` from the policy file, "" when it says none; where it is written, for errors.
  const std::string& file_listen() const { return listen_; }
  const std::string& file_listen_where() const { return listen_where_; }
  /// Issue 13's options (tokens, pin cookie, PROXY protocol): the file's or the flags',
  /// as read at start-up (a reload keeps them).
  const consistency_options& consistency() const { return consistency_; }

  /// Reads everything again (SIGHUP); `why` goes to the log. A failure keeps the old policy.
  void reload(const char* why);
  /// One look at the policy file and the list files (every --watch-interval).
  void poll();
  bool watches_files() const;

  /// Lines for the startup log (never a password).
  std::string describe() const;
  /// The health page: policy, lists, Redis, reload counts.
  std::string health_json() const;

  void stop();

  /// #12: called on the control thread after a reload put `next` in service (probes follow it).
  void on_reload(std::function<void(const std::shared_ptr<const policy_snapshot>& next)> f) { on_reload_ = std::move(f); }
  /// #12: the reload figures of the metrics page.
  struct reload_counts {
    std::time_t last_load = 0, last_policy_load = 0;
    std::uint64_t file_reloads = 0, file_rejected = 0, policy_reloads = 0, policy_rejected = 0;
  };
  reload_counts counts() const;

 private:
  struct watched_file {
    std::string list;
    std::shared_ptr<grayroute::memory_store> store;
    grayroute::list_file_watch watch;
  };
  struct build_result {
    std::shared_ptr<const policy_snapshot> snapshot;
    std::vector<std::shared_ptr<watched_file>> files;
  };

  proxy_policy read_spec(const std::string* text) const;
  build_result build(proxy_policy spec) const;
  static void build_health(const proxy_policy& spec, policy_snapshot& next, const policy_snapshot* previous);
  void apply(build_result next, const char* why);
  enum class refused { policy, list_file };
  void rejected(const std::string& error, refused what, const char* why);

  const proxy_options& options_;
  std::string listen_, listen_where_;
  consistency_options consistency_;
  std::shared_ptr<const policy_snapshot> current_;  // std::atomic_load / atomic_store only
  std::vector<std::shared_ptr<watched_file>> files_;  // the control thread's, like the looks below

  // The policy file, looked at as list files are: applied once complete and stable.
  std::string policy_previous_, policy_applied_;
  grayroute::list_file_stamp policy_stamp_;
  bool policy_have_previous_ = false;

  mutable std::mutex status_mutex_;  // guards the fields below (health reads them from any thread)
  std::time_t last_load_ = 0, last_policy_load_ = 0;
  std::uint64_t file_reloads_ = 0, file_rejected_ = 0, policy_reloads_ = 0, policy_rejected_ = 0;
  std::string last_error_;
  std::function<void(const std::shared_ptr<const policy_snapshot>&)> on_reload_;  // #12
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_LIVE_POLICY_HPP
