// The metrics page; see metrics_page.hpp.
#include "metrics_page.hpp"

#include <chrono>
#include <cstdint>

#include <grayroute/version.hpp>

#include "health_feed.hpp"
#include "list_source.hpp"

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
  std::string out;
  out.reserve(8192);
  family(out, "grayroute_info", "gauge", "grayroute-proxy's version; always 1.");
  out.append("grayroute_info{version=\"" GRAYROUTE_VERSION_STRING "\"} 1\n");
  if (context.health) context.health->write_metrics(out, std::chrono::steady_clock::now());

  const list_source::figures f = context.list.metrics_figures();
  const char* memory = f.has_file ? "{source=\"file\"}" : "{source=\"flags\"}";
  family(out, "grayroute_list_entries", "gauge", "Entries of the gray list, by source.");
  sample(out, "grayroute_list_entries", memory, f.memory_entries);
  if (f.has_redis) sample(out, "grayroute_list_entries", "{source=\"redis\"}", f.redis_entries);
  family(out, "grayroute_list_last_sync_timestamp_seconds", "gauge",
         "When the list of the source was last loaded completely (Unix time; 0: never).");
  sample(out, "grayroute_list_last_sync_timestamp_seconds", memory, static_cast<std::uint64_t>(f.memory_loaded));
  if (f.has_redis) {
    sample(out, "grayroute_list_last_sync_timestamp_seconds", "{source=\"redis\"}",
           static_cast<std::uint64_t>(f.redis_last_sync));
  }
  family(out, "grayroute_list_reloads_total", "counter", "Lists from flags and file applied (the first load included).");
  sample(out, "grayroute_list_reloads_total", memory, f.reloads);
  family(out, "grayroute_list_rejected_total", "counter", "List files rejected (the previous list kept).");
  sample(out, "grayroute_list_rejected_total", memory, f.rejected);
  if (f.has_redis) {
    family(out, "grayroute_redis_connected", "gauge", "1 while both Redis connections are up and the list is synced.");
    sample(out, "grayroute_redis_connected", "", f.redis_connected ? 1 : 0);
    family(out, "grayroute_redis_serving", "gauge", "0 once the Redis list is older than max_staleness.");
    sample(out, "grayroute_redis_serving", "", f.redis_serving ? 1 : 0);
    family(out, "grayroute_redis_full_loads_total", "counter", "Complete loads of the list from Redis.");
    sample(out, "grayroute_redis_full_loads_total", "", f.redis_full_loads);
    family(out, "grayroute_redis_connects_total", "counter", "Successful connects to Redis (1 + reconnects).");
    sample(out, "grayroute_redis_connects_total", "", f.redis_connects);
  }
  return out;
}

}  // namespace grayroute_proxy
