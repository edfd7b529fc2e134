// The smallest program that uses an installed grayroute.
#include <grayroute/grayroute.hpp>
#if defined(CONSUMER_HAS_REDIS) && __has_include(<grayroute/redis_store.hpp>)
#include <grayroute/redis_store.hpp>
static_assert(grayroute::is_store_v<grayroute::redis_store>);
#endif

#include <cstdio>
#include <string>
#include <vector>

int main() {
  grayroute::memory_store store;
  store.insert(*grayroute::parse_network("10.1.2.0/24"));
  grayroute::router<grayroute::memory_store> router(store, {});
  const auto d = router.decide(*grayroute::parse_ip("10.1.2.3"), std::vector<grayroute::header>{});
  std::printf("10.1.2.3 -> %s (%s)\n", std::string(router.route_name(d.route)).c_str(),
              std::string(grayroute::to_string(d.reason)).c_str());
}
