// The metrics page; see metrics_page.hpp.
#include "metrics_page.hpp"

#include <chrono>
#include <cstdint>
#include <ctime>
#include <vector>

#include <grayroute/version.hpp>

#include "health_feed.hpp"
#include "live_policy.hpp"

#if GRAYROUTE_PROXY_REDIS
#include <grayroute/redis_store.hpp>
#endif

namespace grayroute_proxy {

namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void sample(std::string& out, const char* name, const char* labels, std::uint64_t value) {
  out.append(name).append(labels).append(" ").append(std::to_string(value)).append("\n");
}

}  // namespace

std::string metrics_page(const proxy_context& context) {
  const auto policy = context.live.load();  // one policy for the whole page
  std::string out;
  out.reserve(8192);
  family(out, "grayroute_info", "gauge", "grayroute-proxy's version; always 1.");
  out.append("grayroute_info{version=\"" GRAYROUTE_VERSION_STRING "\"} 1\n");
  if (policy->health) policy->health->write_metrics(out, std::chrono::steady_clock::now());

  // Every named list of the policy, by source. List names are tokens (policy_config
  // refuses others): no label value here needs the format's escapes.
  struct source_figures {
    std::string labels;  // {list="qa",source="file"}
    std::uint64_t entries = 0;
    std::time_t last_sync = 0;
  };
  struct redis_figures {
    std::string labels;  // {list="seed"}
    bool connected = false, serving = false;
    std::uint64_t full_loads = 0, connects = 0;
  };
  const live_policy::reload_counts counts = context.live.counts();
  const char* configured = policy->source == "flags" ? "flags" : "config";
  std::vector<source_figures> sources;
  std::vector<redis_figures> redis;
  for (const list_stores& list : policy->lists) {
    const std::string name = "{list=\"" + list.name + "\",source=\"";
    if (list.configured) sources.push_back({name + configured + "\"}", list.configured_entries, counts.last_policy_load});
    if (list.from_file) sources.push_back({name + "file\"}", list.from_file->size(), counts.last_load});
#if GRAYROUTE_PROXY_REDIS
    if (list.redis) {
      const auto status = list.redis->status();
      sources.push_back({name + "redis\"}", status.entries,
                         status.synced_once ? std::chrono::system_clock::to_time_t(status.last_sync) : 0});
      redis.push_back({"{list=\"" + list.name + "\"}", status.connected, status.serving, status.full_loads, status.connects});
    }
#endif
  }
  family(out, "grayroute_list_entries", "gauge", "Entries of each list, by source.");
  for (const auto& f : sources) sample(out, "grayroute_list_entries", f.labels.c_str(), f.entries);
  family(out, "grayroute_list_last_sync_timestamp_seconds", "gauge",
         "When the list of the source was last loaded completely (Unix time; 0: never).");
  for (const auto& f : sources) {
    sample(out, "grayroute_list_last_sync_timestamp_seconds", f.labels.c_str(), static_cast<std::uint64_t>(f.last_sync));
  }
  family(out, "grayroute_list_reloads_total", "counter", "List files applied (first loads and policy reloads included).");
  sample(out, "grayroute_list_reloads_total", "", counts.file_reloads);
  family(out, "grayroute_list_rejected_total", "counter", "List files rejected (the previous list kept).");
  sample(out, "grayroute_list_rejected_total", "", counts.file_rejected);
  family(out, "grayroute_policy_reloads_total", "counter", "Policies applied (the first included).");
  sample(out, "grayroute_policy_reloads_total", "", counts.policy_reloads);
  family(out, "grayroute_policy_rejected_total", "counter", "Policy reloads rejected (the previous policy kept).");
  sample(out, "grayroute_policy_rejected_total", "", counts.policy_rejected);
  if (!redis.empty()) {
    family(out, "grayroute_redis_connected", "gauge", "1 while both Redis connections are up and the list is synced.");
    for (const auto& r : redis) sample(out, "grayroute_redis_connected", r.labels.c_str(), r.connected ? 1 : 0);
    family(out, "grayroute_redis_serving", "gauge", "0 once the Redis list is older than max_staleness.");
    for (const auto& r : redis) sample(out, "grayroute_redis_serving", r.labels.c_str(), r.serving ? 1 : 0);
    family(out, "grayroute_redis_full_loads_total", "counter", "Complete loads of the list from Redis.");
    for (const auto& r : redis) sample(out, "grayroute_redis_full_loads_total", r.labels.c_str(), r.full_loads);
    family(out, "grayroute_redis_connects_total", "counter", "Successful connects to Redis (1 + reconnects).");
    for (const auto& r : redis) sample(out, "grayroute_redis_connects_total", r.labels.c_str(), r.connects);
  }
  return out;
}

}  // namespace grayroute_proxy
