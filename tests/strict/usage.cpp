// The strict-warnings test compiles this beside each public header on its own: a
// header's templates warn only once instantiated, so this uses every public template
// the way an embedder would (the README's example, the header shapes headers.hpp
// accepts, every to_string), and checks fwd.hpp agrees with the definitions.
// It is compiled, never run.
#include <grayroute/fwd.hpp>

#include <grayroute/grayroute.hpp>
#include <grayroute/list_file.hpp>
#if GRAYROUTE_STRICT_REDIS
#include <grayroute/redis_store.hpp>
#endif

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

// A Beast-like header: .name_string() and .value().
struct beast_like_field {
  std::string name, text;
  std::string_view name_string() const noexcept { return name; }
  std::string_view value() const noexcept { return text; }
};

// A store of the embedder's own.
struct fixed_store {
  std::optional<grayroute::route_id> lookup(const grayroute::ip_address& a) const noexcept {
    return a.is_v4() ? std::optional<grayroute::route_id>(grayroute::kGray) : std::nullopt;
  }
};

}  // namespace

std::string strict_usage();
std::string strict_usage() {
  grayroute::memory_store store;
  store.insert(*grayroute::parse_network("192.168.116.0/24"));
  store.erase(*grayroute::parse_network("192.168.116.0/24"));
  grayroute::ip_address batch[2] = {*grayroute::parse_ip("10.0.0.1"), *grayroute::parse_ip("::1")};
  std::optional<grayroute::route_id> routes[2];
  store.lookup_batch(batch, routes, 2);

  grayroute::router_config config;
  config.client_ip.trusted_proxies = {"10.0.0.0/8"};
  config.client_ip.headers = {"X-Real-IP", "X-Forwarded-For", "Forwarded"};
  config.force_header = "X-Canary";
  config.force_cookie = "canary";
  config.percent = 5;
  const grayroute::router<grayroute::memory_store> router(store, config);
  const grayroute::router<fixed_store> other(fixed_store{}, config);

  const grayroute::ip_address peer = *grayroute::parse_ip("10.0.0.2");
  const std::vector<grayroute::header> pairs = {{"X-Forwarded-For", "192.168.116.20, 10.0.0.7"}};
  const std::map<std::string, std::string> owned = {{"Cookie", "canary=always"}};
  const std::vector<beast_like_field> fields = {{"Forwarded", "for=\"[2001:db8::1]:4711\""}};

  const grayroute::decision a = router.decide(peer, pairs);
  const grayroute::decision b = router.decide(peer, owned, "user-1");
  const grayroute::decision c = other.decide(peer, fields);
  const grayroute::client_ip who = router.resolver().resolve(peer, fields);

  std::string out = to_string(a.client.address) + std::string(to_string(a.reason)) +
                    grayroute::to_string(*grayroute::parse_network("2001:db8::/32")) +
                    std::string(grayroute::to_string(b.reason)) + std::string(router.route_name(c.route)) +
                    to_string(who.address);
  grayroute::for_each_x_forwarded_for("1.2.3.4, 5.6.7.8", [&](const std::optional<grayroute::ip_address>& hop) {
    if (hop) out += to_string(*hop);
  });
  grayroute::for_each_forwarded_for("for=1.2.3.4;proto=http", [&](const std::optional<grayroute::ip_address>& hop) {
    if (hop) out += to_string(*hop);
  });

  const grayroute::parsed_list list = grayroute::parse_list("10.1.2.3\n10.0.0.0/8 production\n");
  if (!list) out += to_string(*list.error);
  const grayroute::parsed_list file = grayroute::load_list_file("/nonexistent");
  if (file.error) out += to_string(*file.error);
  store.replace(list.entries);
  // memory_store's members are compiled where used: use them all.
  store.insert(*grayroute::parse_network("10.1.2.3"), grayroute::kProduction);
  store.insert(*grayroute::parse_network("2001:db8::1"));
  store.insert(*grayroute::parse_network("2001:db8:1::/48"), grayroute::kProduction);
  grayroute::memory_store::builder built(2);
  built.add({*grayroute::parse_network("2001:db8:2::/64"), grayroute::kGray});
  built.add({*grayroute::parse_network("10.9.0.0/16"), grayroute::kGray});
  store.replace(std::move(built));
  out += store.contains(peer) && store.lookup(peer) ? "listed" : "not listed";
  out += std::to_string(store.size() + store.memory_bytes() + store.entries().size());
  if (store.erase(*grayroute::parse_network("10.1.2.3")) && !store.empty()) store.clear();

  const grayroute::percentage_rollout rollout(5.0, 42);
  out += rollout.includes("user-1") ? "in" : "out";
  if (auto cookie = grayroute::find_cookie("a=1; b=2", "b")) out += *cookie;

  static_assert(grayroute::is_store_v<grayroute::memory_store>, "memory_store is a store");
  static_assert(grayroute::is_store_v<fixed_store>, "so is a store of the embedder's own");

#if GRAYROUTE_STRICT_REDIS
  grayroute::redis_config redis;
  redis.schema = grayroute::redis_schema::set;
  out += grayroute::redact(redis) + std::string(to_string(redis.mode)) + std::string(to_string(redis.schema));
  const grayroute::redis_status status;
  out += to_string(status) + to_json(status);
  static_assert(grayroute::is_store_v<grayroute::redis_store>, "redis_store is a store");
  if (auto address = grayroute::parse_redis_address("[::1]:6380")) out += address->first;
#endif
  return out;
}
