// Prints the health metrics page of a table with known outcomes, for
// health_metrics_check.py to read with a real Prometheus text parser.
#include <grayroute/health_metrics.hpp>
#include <grayroute/health_table.hpp>
#include <grayroute/route_table.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main() {
  using grayroute::outcome;
  using std::chrono::microseconds;
  const std::chrono::milliseconds now{1000000};
  grayroute::health_table health(grayroute::health_config{}, 3);
  // production: 8 successes at 3 ms, 2 answers 5xx at 300 ms.
  for (int i = 0; i < 8; ++i) health.record(grayroute::kProduction, outcome::success, microseconds(3000), now);
  for (int i = 0; i < 2; ++i) health.record(grayroute::kProduction, outcome::status_5xx, microseconds(300000), now);
  // gray: one success at 20 ms, then three refused connections at 1 ms: open.
  health.record(grayroute::kGray, outcome::success, microseconds(20000), now);
  for (int i = 0; i < 3; ++i) health.record(grayroute::kGray, outcome::connect_failure, microseconds(1000), now);
  std::string page;
  grayroute::write_health_metrics(page, health, grayroute::route_table({"production", "gray", "beta-2"}), now);
  std::fwrite(page.data(), 1, page.size(), stdout);
  return 0;
}
