// GET /-/grayroute/metrics: the proxy's state in the Prometheus text format (0.0.4).
//
//   grayroute_info{version}                                   gauge, 1
//   grayroute_requests_total{route,reason,status_class}       counter (health_feed.hpp)
//   grayroute_fallback_retries_total{route}, grayroute_probes_total{route,result}
//   grayroute_breaker_*, grayroute_upstream_*, grayroute_health_*  (the library's
//                                                             health_metrics.hpp)
//   grayroute_list_entries{list,source}, grayroute_list_last_sync_timestamp_seconds{list,source}
//                                         (source: config|flags, file, redis; each named list)
//   grayroute_list_reloads_total, grayroute_list_rejected_total,
//   grayroute_policy_reloads_total, grayroute_policy_rejected_total
//   grayroute_redis_connected{list}, grayroute_redis_serving{list},
//   grayroute_redis_full_loads_total{list}, grayroute_redis_connects_total{list}
//                                                             (lists with a Redis source only)
#ifndef GRAYROUTE_PROXY_METRICS_PAGE_HPP
#define GRAYROUTE_PROXY_METRICS_PAGE_HPP

#include <string>
#include <string_view>

#include "server.hpp"

namespace grayroute_proxy {

inline constexpr std::string_view kMetricsPath = "/-/grayroute/metrics";
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

/// The whole page (a status page: it allocates; never on a routed request).
std::string metrics_page(const proxy_context& context);

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_METRICS_PAGE_HPP
