// route_requests: the smallest useful grayroute program. It builds a gray list and a
// router, then decides a handful of sample requests and prints route and reason.
#include <grayroute/grayroute.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
  grayroute::memory_store store;
  store.insert(*grayroute::parse_network("192.168.116.0/24"));  // the QA office
  store.insert(*grayroute::parse_network("2001:db8:7::/48"));   // QA over IPv6

  grayroute::router_config config;
  config.client_ip.trusted_proxies = {"10.0.0.0/8"};  // our load balancers
  config.client_ip.headers = {"X-Real-IP", "X-Forwarded-For", "Forwarded"};
  config.force_header = "X-Canary";                     // testers: "always" / "never"
  config.percent = 5;                                   // and 5% of everyone else
  grayroute::router<grayroute::memory_store> router(store, config);

  struct sample {
    const char* what;
    const char* peer;
    std::vector<grayroute::header> headers;
  };
  const std::vector<sample> samples = {
      {"QA laptop, direct", "192.168.116.20", {}},
      {"customer, direct", "203.0.113.9", {}},
      {"QA laptop behind our LB", "10.0.0.2", {{"X-Forwarded-For", "192.168.116.20"}}},
      {"customer forging X-Real-IP", "203.0.113.9", {{"X-Real-IP", "192.168.116.20"}}},
      {"tester forcing the canary", "198.51.100.4", {{"X-Canary", "always"}}},
      {"QA over IPv6, v4-mapped LB", "::ffff:10.0.0.3", {{"Forwarded", "for=\"[2001:db8:7::5]:4711\""}}},
  };
  for (const auto& s : samples) {
    const auto d = router.decide(*grayroute::parse_ip(s.peer), s.headers);
    std::printf("%-30s client %-16s (from %-15s) -> %-10s reason=%s\n", s.what,
                to_string(d.client.address).c_str(), std::string(d.client.source_name).c_str(),
                std::string(router.route_name(d.route)).c_str(), std::string(grayroute::to_string(d.reason)).c_str());
  }
}
