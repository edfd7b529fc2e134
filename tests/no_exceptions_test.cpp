// The core builds and routes with exceptions turned off (-fno-exceptions), as
// gateways such as nginx modules often compile.
#include <grayroute/grayroute.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
  grayroute::memory_store store;
  store.insert(*grayroute::parse_network("10.0.0.0/8"));
  grayroute::router_config config;
  config.client_ip.trusted_proxies = {"127.0.0.1"};
  grayroute::router<grayroute::memory_store> router(store, config);
  const std::vector<grayroute::header> headers = {{"X-Forwarded-For", "10.1.2.3"}};
  const auto d = router.decide(*grayroute::parse_ip("127.0.0.1"), headers);
  const bool ok = d.route == grayroute::kGray && d.reason == grayroute::route_reason::list;
  std::printf("%s\n", ok ? "ok" : "wrong decision");
  return ok ? 0 : 1;
}
