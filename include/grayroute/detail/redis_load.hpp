// Reading a gray list out of Redis, per schema: the full load (SCAN/SSCAN/HSCAN in
// batches, never KEYS, so a big list never blocks Redis) and the re-read of single
// seed keys after a change notification.
//
// A load either completes, with every entry, or fails with a reason; callers publish
// only complete loads, so a lost connection halfway through a SCAN changes nothing.
#ifndef GRAYROUTE_DETAIL_REDIS_LOAD_HPP
#define GRAYROUTE_DETAIL_REDIS_LOAD_HPP

#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../ip.hpp"
#include "../memory_store.hpp"
#include "../redis_config.hpp"
#include "../store.hpp"
#include "../version.hpp"
#include "redis_connection.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

// Batch sizes: Redis runs one command at a time, so a batch is how long other clients
// wait behind us. Seed batches are pipelined (round trips are hidden), so they stay
// small, ~1 ms of Redis time each; SSCAN/HSCAN cursors cannot be pipelined, so their
// batches are larger to keep a million entries at a hundred round trips.
inline constexpr const char* kRedisScanCount = "1000";
inline constexpr const char* kRedisCollectionScanCount = "10000";

struct redis_load {
  bool ok = false;
  std::vector<store_entry> entries;
  std::size_t ignored = 0;  // set/hash members that are not addresses or name no route
  std::string error;
};

/// The seed's rule: a key is listed when it is an address and its value is the key.
inline bool seed_listed(std::string_view key, const redisReply* value) noexcept {
  return value && value->type == REDIS_REPLY_STRING && reply_text(value) == key;
}

inline std::string describe_error_reply(const redis_config& config, std::string_view command, const redisReply* r) {
  std::string text(reply_text(r));
  std::string out(command);
  out += " failed: " + text;
  if (text.compare(0, 9, "WRONGTYPE") == 0) {
    out = "key " + detail::quote_value(config.key) + " is not a " + (config.schema == redis_schema::set ? "SET" : "HASH") +
          " (" + text + ")";
  }
  return out;
}

// One SCAN batch whose MGET is in flight: the reply owns the key text `mget` views.
struct seed_batch {
  redis_reply scan;
  std::vector<std::string_view> mget{"MGET"};
  std::vector<ip_address> addresses;
};

inline redis_load load_seed(redis_connection& c, const redis_config& config, const std::atomic<bool>& stopping) {
  redis_load out;
  // Pipelined so Redis always has the next command queued: on receiving SCAN batch i
  // we send SCAN i+1 and MGET i at once, then read MGET i-1 (sent a round earlier)
  // while Redis works on those. Replies arrive in send order: ..., S(i), M(i-1),
  // S(i+1), M(i).
  std::string cursor = "0";
  seed_batch current, previous;
  bool previous_pending = false;
  auto fail = [&](std::string error) {
    out.error = std::move(error);
    return out;
  };
  if (!c.append({"SCAN", cursor, "COUNT", kRedisScanCount}) || !(current.scan = c.reply())) return fail(c.error());
  auto read_mget = [&](seed_batch& batch) -> bool {
    redis_reply values = c.reply();
    if (!values) {
      out.error = c.error();
      return false;
    }
    if (values->type != REDIS_REPLY_ARRAY || values->elements != batch.addresses.size()) {
      out.error = "MGET failed: " + std::string(reply_text(values.get()));
      return false;
    }
    for (std::size_t i = 0; i < values->elements; ++i) {
      if (seed_listed(batch.mget[i + 1], values->element[i])) {
        out.entries.push_back({ip_network::host(batch.addresses[i]), kGray});
      }
    }
    return true;
  };
  for (;;) {
    if (stopping.load(std::memory_order_relaxed)) return fail("stopped");
    const redisReply* scan = current.scan.get();
    if (scan->type == REDIS_REPLY_ERROR) return fail(describe_error_reply(config, "SCAN", scan));
    if (scan->type != REDIS_REPLY_ARRAY || scan->elements != 2 || scan->element[1]->type != REDIS_REPLY_ARRAY) {
      return fail("SCAN: unexpected reply");
    }
    cursor.assign(reply_text(scan->element[0]));
    const bool more = cursor != "0";
    if (more && !c.append({"SCAN", cursor, "COUNT", kRedisScanCount})) return fail(c.error());
    const redisReply* keys = scan->element[1];
    current.mget.resize(1);
    current.addresses.clear();
    for (std::size_t i = 0; i < keys->elements; ++i) {
      // Only keys that are addresses can be listed; skip other keys before fetching.
      const std::string_view key = reply_text(keys->element[i]);
      if (auto address = parse_ip(key)) {
        current.mget.push_back(key);
        current.addresses.push_back(*address);
      }
    }
    const bool fetch = !current.addresses.empty();
    if (fetch && !c.append(current.mget)) return fail(c.error());
    if (previous_pending && !read_mget(previous)) return out;
    previous_pending = false;
    if (!more) {
      if (fetch && !read_mget(current)) return out;
      out.ok = true;
      return out;
    }
    std::swap(previous, current);
    previous_pending = fetch;
    if (!(current.scan = c.reply())) return fail(c.error());
  }
}

inline std::optional<route_id> route_named(const redis_config& config, std::string_view name) noexcept {
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    if (config.routes[i] == name) return static_cast<route_id>(i);
  }
  return std::nullopt;
}

/// SSCAN (set schema) or HSCAN (hash schema) of config.key.
inline redis_load load_collection(redis_connection& c, const redis_config& config,
                                  const std::atomic<bool>& stopping) {
  redis_load out;
  const bool hash = config.schema == redis_schema::hash;
  const std::string_view command = hash ? "HSCAN" : "SSCAN";
  std::string cursor = "0";
  do {
    if (stopping.load(std::memory_order_relaxed)) {
      out.error = "stopped";
      return out;
    }
    redis_reply r = c.command({command, config.key, cursor, "COUNT", kRedisCollectionScanCount});
    if (!r) {
      out.error = c.error();
      return out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      out.error = describe_error_reply(config, command, r.get());
      return out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
      out.error = std::string(command) + ": unexpected reply";
      return out;
    }
    cursor.assign(reply_text(r->element[0]));
    const redisReply* items = r->element[1];
    const std::size_t step = hash ? 2 : 1;
    for (std::size_t i = 0; i + step <= items->elements; i += step) {
      const auto network = parse_network(reply_text(items->element[i]));
      std::optional<route_id> route = kGray;
      if (hash) route = route_named(config, reply_text(items->element[i + 1]));
      if (!network || !route) {
        ++out.ignored;
        continue;
      }
      out.entries.push_back({*network, *route});
    }
  } while (cursor != "0");
  out.ok = true;
  return out;
}

inline redis_load load_list(redis_connection& c, const redis_config& config, const std::atomic<bool>& stopping) {
  return config.schema == redis_schema::seed ? load_seed(c, config, stopping) : load_collection(c, config, stopping);
}

/// After a change notification: the current state of seed keys that are addresses.
struct seed_change {
  ip_address address;
  bool listed;
};

inline bool reread_seed(redis_connection& c, const std::vector<std::string>& keys, std::vector<seed_change>& out,
                        std::string& error) {
  std::vector<std::string_view> mget{"MGET"};
  std::vector<ip_address> addresses;
  for (const auto& key : keys) {
    if (auto a = parse_ip(key)) {
      mget.push_back(key);
      addresses.push_back(*a);
    }
  }
  if (addresses.empty()) return true;
  redis_reply values = c.command(mget);
  if (!values) {
    error = c.error();
    return false;
  }
  if (values->type != REDIS_REPLY_ARRAY || values->elements != addresses.size()) {
    error = "MGET failed: " + std::string(reply_text(values.get()));
    return false;
  }
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    out.push_back({addresses[i], seed_listed(mget[i + 1], values->element[i])});
  }
  return true;
}

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_REDIS_LOAD_HPP
