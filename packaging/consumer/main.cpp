// The smallest program that uses an installed grayroute, built by tests/find-package,
// the Conan test_package and the vcpkg and .deb tests. Routes one request through
// router<memory_store>; with GRAYROUTE_CONSUMER_REDIS also starts a redis_store against
// a loopback port nothing listens on (port 1) and prints its status once its first
// connection attempt has failed, so hiredis is really called.
#include <grayroute/grayroute.hpp>
#ifdef GRAYROUTE_CONSUMER_REDIS
#include <grayroute/redis_store.hpp>
static_assert(grayroute::is_store_v<grayroute::redis_store>);

#include <chrono>
#include <thread>
#endif

#include <cstdio>
#include <string>
#include <vector>

int main() {
  grayroute::memory_store store;
  store.insert(*grayroute::parse_network("10.1.2.0/24"));
  grayroute::router<grayroute::memory_store> router(store, {});
  const auto d = router.decide(*grayroute::parse_ip("10.1.2.3"), std::vector<grayroute::header>{});
  std::printf("grayroute %s: 10.1.2.3 -> %s (%s)\n", GRAYROUTE_VERSION_STRING,
              std::string(router.route_name(d.route)).c_str(), std::string(grayroute::to_string(d.reason)).c_str());

#ifdef GRAYROUTE_CONSUMER_REDIS
  grayroute::redis_config config;
  config.port = 1;
  config.connect_timeout = std::chrono::milliseconds(200);
  grayroute::redis_store redis(config);
  // The sync thread records the refused connection; wait for that, at most 5 s.
  for (int i = 0; i < 500 && redis.status().last_error.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const grayroute::redis_status status = redis.status();
  std::printf("redis store: %s\n", grayroute::to_string(status).c_str());
  if (status.last_error.empty()) return 1;
#endif
  return d.reason == grayroute::route_reason::list ? 0 : 1;
}
