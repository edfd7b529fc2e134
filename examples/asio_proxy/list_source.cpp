// The gray list's sources; see list_source.hpp.
#include "list_source.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include <grayroute/detail/json.hpp>
#include <grayroute/list_file.hpp>

#if GRAYROUTE_PROXY_REDIS
#include <grayroute/redis_store.hpp>
#endif

namespace grayroute_proxy {

namespace {


std::string iso_time(std::time_t t) {
  if (t == 0) return "";
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

#if GRAYROUTE_PROXY_REDIS
grayroute::redis_config redis_config_of(const proxy_options& options) {
  const redis_options& r = options.redis;
  grayroute::redis_config config;
  const auto address = grayroute::parse_redis_address(r.address);
  if (!address) throw std::runtime_error("--redis: \"" + r.address + "\" is not host:port, [v6]:port or unix:/path");
  if (address->second == 0) {
    config.unix_socket = address->first;
  } else {
    config.host = address->first;
    config.port = address->second;
  }
  config.username = r.user;
  config.password = r.password;
  config.database = r.database;
  if (r.schema == "seed") {
    config.schema = grayroute::redis_schema::seed;
  } else if (r.schema == "set") {
    config.schema = grayroute::redis_schema::set;
  } else if (r.schema == "hash") {
    config.schema = grayroute::redis_schema::hash;
  } else {
    throw std::runtime_error("--redis-schema: \"" + r.schema + "\" is not seed, set or hash");
  }
  config.key = r.key;
  config.routes = options.routing.routes;
  return config;
}
#endif

}  // namespace

list_source::list_source(const proxy_options& options)
    : file_(options.gray_list_file), routes_(options.routing.routes) {
  for (const auto& text : options.gray_list) {
    const auto network = grayroute::parse_network(text);
    if (!network) {
      throw std::runtime_error("--gray-list: " + grayroute::bad_network_message(text));
    }
    flag_entries_.push_back({*network, grayroute::kGray});
  }
  if (file_.empty()) {
    apply(grayroute::parsed_list{});
  } else {
    watch_.emplace(file_, routes_);
    const auto list = watch_->load();
    if (!list) throw std::runtime_error("--gray-list-file " + file_ + ": " + grayroute::to_string(*list.error));
    apply(list);
  }
  if (!options.redis.address.empty()) {
#if GRAYROUTE_PROXY_REDIS
    auto config = redis_config_of(options);
    redis_description_ = grayroute::redact(config);
    redis_ = std::make_shared<grayroute::redis_store>(std::move(config));
#else
    throw std::runtime_error("--redis: this grayroute-proxy was built without the Redis store (needs libhiredis-dev)");
#endif
  }
}

list_source::~list_source() { stop(); }

void list_source::stop() {
#if GRAYROUTE_PROXY_REDIS
  if (redis_) redis_->stop();
#endif
}

std::optional<grayroute::route_id> list_source::redis_lookup(const grayroute::ip_address& address) const noexcept {
#if GRAYROUTE_PROXY_REDIS
  return redis_->lookup(address);
#else
  (void)address;
  return std::nullopt;
#endif
}

void list_source::apply(const grayroute::parsed_list& file_list) {
  std::vector<grayroute::store_entry> entries = flag_entries_;
  entries.insert(entries.end(), file_list.entries.begin(), file_list.entries.end());
  memory_.replace(entries);
  std::lock_guard<std::mutex> lock(status_mutex_);
  last_load_ = std::time(nullptr);
  last_error_.clear();
  ++reloads_;
}

void list_source::reject(const grayroute::parsed_list& file_list, const char* why, bool log) {
  const std::string error = file_ + ": " + grayroute::to_string(*file_list.error);
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    last_error_ = error;
    ++rejected_;
  }
  if (!log) return;
  std::printf("gray list NOT reloaded (%s): %s; keeping the previous %zu entries\n", why, error.c_str(), memory_.size());
  std::fflush(stdout);
}

void list_source::poll() {
  if (!watch_) return;
  const auto look = watch_->check();
  if (look.state == grayroute::list_file_watch::ready) {
    apply(look.list);
    std::printf("gray list reloaded (file changed): %zu entries from %s and flags\n", memory_.size(), file_.c_str());
    std::fflush(stdout);
  } else if (look.state == grayroute::list_file_watch::failed && watch_->new_error()) {
    reject(look.list, "file changed", true);  // once per distinct error, not every tick
  }
}

void list_source::reload(const char* why) {
  if (!watch_) return;
  const auto list = watch_->load();
  if (!list) return reject(list, why, true);
  apply(list);
  std::printf("gray list reloaded (%s): %zu entries from %s and flags\n", why, memory_.size(), file_.c_str());
  std::fflush(stdout);
}

std::string list_source::describe() const {
  std::string out = std::to_string(memory_.size()) + " entries in memory (";
  out += std::to_string(flag_entries_.size()) + " from --gray-list";
  if (!file_.empty()) out += ", the rest from " + file_ + ", reloaded on SIGHUP or change";
  out += ")";
  if (redis_) out += ", plus Redis " + redis_description_;
  return out;
}

std::string list_source::health_json() const {
  std::size_t entries = memory_.size();
  std::string source = file_.empty() ? (flag_entries_.empty() && redis_ ? "" : "flags") : "file " + file_;
  std::time_t last_sync = 0;
  std::string redis_json;
  bool redis_connected = false;
  std::string problem;  // "": healthy
#if GRAYROUTE_PROXY_REDIS
  if (redis_) {
    const auto status = redis_->status();
    if (!status.healthy()) problem = "redis: " + status.problem();
    entries += status.entries;
    source += source.empty() ? "redis" : " + redis";
    if (status.synced_once) last_sync = std::chrono::system_clock::to_time_t(status.last_sync);
    redis_connected = status.connected;
    redis_json = grayroute::to_json(status);
  }
#endif
  std::string out = problem.empty() ? "{\"status\":\"ok\"" : "{\"status\":\"degraded\",\"reason\":" + grayroute::detail::json_string(problem);
  out += ",\"entries\":" + std::to_string(entries);
  out += ",\"source\":" + grayroute::detail::json_string(source);
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    if (!redis_ || !file_.empty()) last_sync = std::max(last_sync, last_load_);
    out += ",\"last_sync\":\"" + iso_time(last_sync) + "\"";
    out += ",\"file_reloads\":" + std::to_string(reloads_) + ",\"file_rejected\":" + std::to_string(rejected_);
    out += ",\"last_error\":" + grayroute::detail::json_string(last_error_);
  }
  out += ",\"redis_connected\":";
  out += redis_ ? (redis_connected ? "true" : "false") : "null";
  if (!redis_json.empty()) out += ",\"redis\":" + redis_json;
  out += "}";
  return out;
}

// #12: the metrics page's figures, read like health_json's.
list_source::figures list_source::metrics_figures() const {
  figures f;
  f.memory_entries = memory_.size();
  f.has_file = !file_.empty();
  f.has_redis = redis_ != nullptr;
#if GRAYROUTE_PROXY_REDIS
  if (redis_) {
    const auto status = redis_->status();
    f.redis_connected = status.connected;
    f.redis_serving = status.serving;
    f.redis_entries = status.entries;
    if (status.synced_once) f.redis_last_sync = std::chrono::system_clock::to_time_t(status.last_sync);
    f.redis_full_loads = status.full_loads;
    f.redis_connects = status.connects;
  }
#endif
  std::lock_guard<std::mutex> lock(status_mutex_);
  f.memory_loaded = last_load_;
  f.reloads = reloads_;
  f.rejected = rejected_;
  return f;
}

}  // namespace grayroute_proxy
