// Reading a gray list out of Redis, per schema: the full load (SCAN/SSCAN/HSCAN in
// batches, never KEYS, so a big list never blocks Redis) and the re-read of single
// seed keys after a change notification.
//
// A load either completes, with every entry, or fails with a reason; callers publish
// only complete loads, so a lost connection halfway through a SCAN changes nothing.
// A load is bounded whatever the server does: each command by command_timeout, the
// whole load by a deadline scaled by the size Redis reports (DBSIZE, SCARD, HLEN), and
// the number of cursor calls and keys by that size too, so a cursor that never returns
// to 0 fails the load instead of growing memory forever.
//
// One answer per address: `1.2.3.30` and `::ffff:1.2.3.30` (or `2001:db8::20` and
// `2001:DB8::20`) name one address. It is listed while any of its spellings lists it;
// full loads and incremental updates apply that rule alike (seed_aliases).
#ifndef GRAYROUTE_DETAIL_REDIS_LOAD_HPP
#define GRAYROUTE_DETAIL_REDIS_LOAD_HPP

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
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
inline constexpr std::size_t kRedisScanCount = 1000;
inline constexpr std::size_t kRedisCollectionScanCount = 10000;

/// How long a load of `size` entries may take before the status calls it slow, and
/// before it is abandoned. Measured loads take ~2.5 µs per key on a busy 2-core VM;
/// "slow" allows 4x that, the deadline 40x (a loaded machine, a sanitizer build).
struct load_budget {
  std::chrono::milliseconds slow_after, deadline;
  static load_budget for_size(std::size_t size, std::chrono::milliseconds command_timeout) {
    const auto per_key = std::chrono::milliseconds(static_cast<long long>(size / 100));  // 10 µs
    return {command_timeout + per_key, 4 * command_timeout + 4 * per_key};
  }
};

/// What a load reports back between batches (the sync thread watches its other
/// connection there) and how it is stopped.
struct load_hooks {
  const std::atomic<bool>* stopping = nullptr;
  /// Called after each batch with the number of keys seen so far and the size Redis
  /// reported; false aborts the load with `error`.
  std::function<bool(std::size_t seen, std::size_t size, std::string& error)> between_batches;
};

/// A listed spelling that is not the canonical text of its address (kept so that
/// incremental updates know every spelling that lists an address).
struct listed_alias {
  ip_address address;
  std::string key;
};

struct redis_load {
  bool ok = false;
  std::vector<store_entry> entries;
  memory_store::builder list;         // the same entries, built while Redis serves the next batch
  std::vector<listed_alias> aliases;  // seed: listed keys that are not canonical text
  std::size_t ignored = 0;            // set/hash members that are not addresses or name no route
  std::size_t size = 0;               // DBSIZE / SCARD / HLEN when the load started
  std::string error;
};

/// The seed's rule: a key is listed when it is an address and its value is the key.
inline bool seed_listed(std::string_view key, const redisReply* value) noexcept {
  return value && value->type == REDIS_REPLY_STRING && reply_text(value) == key;
}

/// True when `text` is how grayroute prints `address` (unmapped): the spelling most
/// keys use. IPv4 text is always canonical (parse_ip rejects leading zeros).
inline bool canonical_spelling(std::string_view text, const ip_address& address) noexcept {
  if (text.find(':') == std::string_view::npos) return true;
  char buffer[ip_address::kMaxTextLength + 1];
  return std::string_view(buffer, address.unmapped().format(buffer)) == text;
}

inline const char* reply_type_name(const redisReply* r) noexcept {
  if (!r) return "nothing";
  switch (r->type) {
    case REDIS_REPLY_STRING: return "a string";
    case REDIS_REPLY_ARRAY: return "an array";
    case REDIS_REPLY_INTEGER: return "an integer";
    case REDIS_REPLY_NIL: return "nil";
    case REDIS_REPLY_STATUS: return "a status";
    case REDIS_REPLY_ERROR: return "an error";
    default: return "an unknown type";
  }
}

/// "<command> failed: <Redis's reason>", or what was wrong with a reply that was not
/// an error.
inline std::string describe_bad_reply(const redis_config& config, std::string_view command, const redisReply* r,
                                      std::string_view expected) {
  std::string out(command);
  if (r && r->type == REDIS_REPLY_ERROR) {
    const std::string text(reply_text(r));
    if (text.compare(0, 9, "WRONGTYPE") == 0 && config.schema != redis_schema::seed) {
      return "key " + detail::quote_value(config.key) + " is not a " +
             (config.schema == redis_schema::set ? "SET" : "HASH") + " (" + text + ")";
    }
    return out + " failed: " + (text.empty() ? std::string("error reply without text") : text);
  }
  out += ": expected ";
  out += expected;
  out += ", got ";
  out += reply_type_name(r);
  if (r && r->type == REDIS_REPLY_ARRAY) out += " of " + std::to_string(r->elements);
  return out;
}

// Caps derived from the size Redis reported. SCAN visits hash buckets (a table has at
// most ~2x as many as keys, 4x while rehashing) and may return a key twice while the
// table is resized; a cursor past these is broken or hostile.
struct load_caps {
  std::size_t calls, keys;
  static load_caps for_size(std::size_t size, std::size_t count) {
    return {8 * (size / count) + 64, 4 * size + 16 * count};
  }
};

inline bool read_size(redis_connection& c, const redis_config& config, std::string_view command,
                      std::chrono::steady_clock::time_point deadline, redis_load& out) {
  redis_reply r = c.reply(deadline);
  if (!r) {
    out.error = c.error();
    return false;
  }
  if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
    out.error = describe_bad_reply(config, command, r.get(), "an integer");
    return false;
  }
  out.size = static_cast<std::size_t>(r->integer);
  return true;
}

// One SCAN batch whose MGET is in flight. The keys that are addresses are copied
// back to back into `text`, which `mget` views; the buffers are reused batch after
// batch, so a load allocates nothing per key.
struct seed_batch {
  std::string cursor;
  std::size_t keys = 0;  // in the SCAN reply, addresses or not
  std::string text;
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // (offset, length) in text
  std::vector<std::string_view> mget{"MGET"};
  std::vector<ip_address> addresses;

  void clear() {
    cursor.clear();
    keys = 0;
    text.clear();
    spans.clear();
    mget.resize(1);
    addresses.clear();
  }
  // Only keys that are addresses can be listed: others are skipped before fetching.
  void add_key(std::string_view key) {
    ++keys;
    if (auto address = parse_ip(key)) {
      spans.emplace_back(text.size(), key.size());
      text.append(key);
      addresses.push_back(*address);
    }
  }
  void make_mget() {
    for (const auto& [at, length] : spans) mget.emplace_back(text.data() + at, length);
  }
};

// Each key once per MGET: a server that returns one key many times in a batch costs
// one fetch. A small open-addressing table of key indexes, reused across batches:
// a few ns a key, where sorting the batch cost ~10% of a whole load.
inline void drop_duplicate_keys(seed_batch& batch, std::vector<std::uint32_t>& slots) {
  const std::size_t n = batch.addresses.size();
  if (n < 2) return;
  std::size_t size = 16;
  while (size < 2 * n) size <<= 1;
  slots.assign(size, 0);
  std::size_t w = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string_view key = batch.mget[i + 1];
    std::size_t at = batch.addresses[i].hash() & (size - 1);
    bool seen = false;
    while (slots[at] != 0) {
      if (batch.mget[slots[at]] == key) {
        seen = true;
        break;
      }
      at = (at + 1) & (size - 1);
    }
    if (seen) continue;
    batch.mget[w + 1] = key;
    batch.addresses[w] = batch.addresses[i];
    slots[at] = static_cast<std::uint32_t>(w + 1);  // index into mget of the kept copy
    ++w;
  }
  batch.mget.resize(w + 1);
  batch.addresses.resize(w);
}

inline redis_load load_seed(redis_connection& c, const redis_config& config, const load_hooks& hooks) {
  using clock = std::chrono::steady_clock;
  redis_load out;
  const auto start = clock::now();
  auto fail = [&](std::string error) {
    out.error = std::move(error);
    return std::move(out);
  };
  const std::string count = std::to_string(kRedisScanCount);
  // DBSIZE travels with the first SCAN: it sizes the budget without a round trip.
  if (!c.append({"DBSIZE"}) || !c.append({"SCAN", "0", "COUNT", count})) return fail(c.error());
  if (!read_size(c, config, "DBSIZE", clock::time_point::max(), out)) return out;
  const load_caps caps = load_caps::for_size(out.size, kRedisScanCount);
  const auto deadline = start + load_budget::for_size(out.size, c.command_timeout()).deadline;
  // Every key is one entry at most: reserve once (DBSIZE bounds it; a DBSIZE beyond
  // what the caps allow would fail the load anyway).
  const std::size_t expected = std::min<std::size_t>(out.size, std::size_t{1} << 24);
  out.entries.reserve(expected);
  out.list = memory_store::builder(expected);
  // Pipelined so Redis always has the next command queued: on receiving SCAN batch i
  // we send SCAN i+1 at once (before looking at the keys), then MGET i, then read
  // MGET i-1 (sent a round earlier) while Redis works on those. Each is written as
  // soon as it is queued: Redis must not wait while we parse. Replies arrive in send
  // order: ..., S(i), M(i-1), S(i+1), M(i).
  // Two batches whose roles swap by pointer: `mget` views `text`, which may sit
  // inside the object (short strings), so the batches themselves never move.
  seed_batch batches[2];
  seed_batch* current = &batches[0];
  seed_batch* previous = &batches[1];
  std::vector<std::uint32_t> slots;
  bool previous_pending = false;
  std::size_t calls = 1, seen = 0;
  // SCAN replies straight from the read buffer too.
  auto read_scan = [&](seed_batch& batch) -> bool {
    batch.clear();
    bool shaped = true;
    std::size_t got = 0;
    redis_reply other;
    const bool read = c.reply_nested(
        deadline, [&](std::size_t n) { return (got = n) == 2; },
        [&](std::size_t i, std::size_t j, std::string_view text) {
          const bool outer = j == redis_connection::kOuter;
          if (i == 0 && outer && text.data() != nullptr) {
            batch.cursor.assign(text);
          } else if (i == 1 && !outer) {
            batch.add_key(text);
          } else {
            shaped = false;
          }
        },
        other);
    if (!read) {
      out.error = c.error();
      return false;
    }
    if (other && other->type == REDIS_REPLY_ARRAY && other->elements == 2 && other->element[1]->type == REDIS_REPLY_ARRAY) {
      batch.cursor.assign(reply_text(other->element[0]));
      for (std::size_t i = 0; i < other->element[1]->elements; ++i) batch.add_key(reply_text(other->element[1]->element[i]));
    } else if (other || got != 2 || !shaped || batch.cursor.empty()) {
      out.error = other ? describe_bad_reply(config, "SCAN", other.get(), "[cursor, keys]")
                        : "SCAN: expected [cursor, keys], got an array of " + std::to_string(got) + " of other shape";
      return false;
    }
    batch.make_mget();
    return true;
  };
  if (!read_scan(*current)) return out;
  // The values straight from the read buffer (no reply objects): a million keys
  // would otherwise cost two million allocations here.
  auto read_mget = [&](seed_batch& batch) -> bool {
    const std::size_t values = batch.addresses.size();
    const auto listed = [&](std::size_t i) {
      const std::string_view key = batch.mget[i + 1];
      const ip_address address = batch.addresses[i].unmapped();
      out.entries.push_back({ip_network::host(address), kGray});
      out.list.add(out.entries.back());
      if (!canonical_spelling(key, address)) out.aliases.push_back({address, std::string(key)});
    };
    std::size_t got = 0;
    redis_reply other;
    const bool read = c.reply_strings(
        deadline, [&](std::size_t n) { return (got = n) == values; },
        [&](std::size_t i, std::string_view value) {
          // The seed's rule: listed when the value is the key.
          if (value.data() != nullptr && value == batch.mget[i + 1]) listed(i);
        },
        other);
    if (!read) {
      out.error = c.error();
      return false;
    }
    if (other && other->type == REDIS_REPLY_ARRAY && other->elements == values) {
      // An array with elements other than strings and nils: those list nothing.
      for (std::size_t i = 0; i < values; ++i) {
        if (seed_listed(batch.mget[i + 1], other->element[i])) listed(i);
      }
      return true;
    }
    if (other || got != values) {
      out.error = other ? describe_bad_reply(config, "MGET", other.get(), "an array of " + std::to_string(values) + " values")
                        : "MGET: expected an array of " + std::to_string(values) + " values, got an array of " +
                              std::to_string(got);
      return false;
    }
    return true;
  };
  for (;;) {
    if (hooks.stopping && hooks.stopping->load(std::memory_order_relaxed)) return fail("stopped");
    seen += current->keys;
    const std::string& cursor = current->cursor;
    const bool more = cursor != "0";
    if (more && (calls >= caps.calls || seen >= caps.keys)) {
      return fail("SCAN: cursor not back to 0 after " + std::to_string(calls) + " calls and " + std::to_string(seen) +
                  " keys (DBSIZE was " + std::to_string(out.size) + "): load abandoned, the last list kept");
    }
    if (more) {
      if (!c.append({"SCAN", cursor, "COUNT", count}) || !c.flush()) return fail(c.error());
      ++calls;
    }
    drop_duplicate_keys(*current, slots);
    const bool fetch = !current->addresses.empty();
    if (fetch && (!c.append(current->mget) || !c.flush())) return fail(c.error());
    if (previous_pending && !read_mget(*previous)) return out;
    previous_pending = false;
    if (hooks.between_batches) {
      std::string error;
      if (!hooks.between_batches(seen, out.size, error)) return fail(std::move(error));
    }
    if (!more) {
      if (fetch && !read_mget(*current)) return out;
      out.ok = true;
      return out;
    }
    std::swap(previous, current);
    previous_pending = fetch;
    if (!read_scan(*current)) return out;
  }
}

inline std::optional<route_id> route_named(const redis_config& config, std::string_view name) noexcept {
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    if (config.routes[i] == name) return static_cast<route_id>(i);
  }
  return std::nullopt;
}

/// SSCAN (set schema) or HSCAN (hash schema) of config.key.
inline redis_load load_collection(redis_connection& c, const redis_config& config, const load_hooks& hooks) {
  using clock = std::chrono::steady_clock;
  redis_load out;
  const auto start = clock::now();
  const bool hash = config.schema == redis_schema::hash;
  const std::string_view command = hash ? "HSCAN" : "SSCAN";
  const std::string_view size_command = hash ? "HLEN" : "SCARD";
  const std::string count = std::to_string(kRedisCollectionScanCount);
  if (!c.append({size_command, config.key})) {
    out.error = c.error();
    return out;
  }
  if (!read_size(c, config, size_command, clock::time_point::max(), out)) return out;
  const load_caps caps = load_caps::for_size(out.size, kRedisCollectionScanCount);
  const auto deadline = start + load_budget::for_size(out.size, c.command_timeout()).deadline;
  // Hash: spellings of one network may name different routes; the canonical spelling
  // decides, else the highest route id (so the order HSCAN returns cannot matter).
  struct spelled {
    store_entry entry;
    bool canonical;
  };
  std::vector<spelled> spellings;
  bool aliased = false;
  std::string cursor = "0";
  std::size_t calls = 0, seen = 0;
  do {
    if (hooks.stopping && hooks.stopping->load(std::memory_order_relaxed)) {
      out.error = "stopped";
      return out;
    }
    if (calls >= caps.calls || seen >= caps.keys) {
      out.error = std::string(command) + ": cursor not back to 0 after " + std::to_string(calls) + " calls (" +
                  std::string(size_command) + " was " + std::to_string(out.size) +
                  "): load abandoned, the last list kept";
      return out;
    }
    ++calls;
    redis_reply r = c.command({command, config.key, cursor, "COUNT", count}, deadline);
    if (!r) {
      out.error = c.error();
      return out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
      out.error = describe_bad_reply(config, command, r.get(), "[cursor, items]");
      return out;
    }
    cursor.assign(reply_text(r->element[0]));
    const redisReply* items = r->element[1];
    seen += items->elements;
    const std::size_t step = hash ? 2 : 1;
    for (std::size_t i = 0; i + step <= items->elements; i += step) {
      const std::string_view text = reply_text(items->element[i]);
      const auto network = parse_network(text);
      std::optional<route_id> route = kGray;
      if (hash) route = route_named(config, reply_text(items->element[i + 1]));
      if (!network || !route) {
        ++out.ignored;
        continue;
      }
      const bool canonical = !hash || canonical_spelling(text.substr(0, text.find('/')), network->address());
      aliased |= !canonical;
      spellings.push_back({{network->unmapped(), *route}, canonical});
    }
    if (hooks.between_batches) {
      std::string error;
      if (!hooks.between_batches(seen, out.size, error)) {
        out.error = std::move(error);
        return out;
      }
    }
  } while (cursor != "0");
  if (aliased) {
    // replace() keeps the last duplicate: sort so the deciding spelling comes last.
    std::stable_sort(spellings.begin(), spellings.end(), [](const spelled& a, const spelled& b) {
      if (!(a.entry.network == b.entry.network)) return a.entry.network < b.entry.network;
      if (a.canonical != b.canonical) return !a.canonical;
      return a.entry.route < b.entry.route;
    });
  }
  out.entries.reserve(spellings.size());
  out.list = memory_store::builder(spellings.size());
  for (const auto& s : spellings) {
    out.entries.push_back(s.entry);
    out.list.add(s.entry);
  }
  out.ok = true;
  return out;
}

inline redis_load load_list(redis_connection& c, const redis_config& config, const load_hooks& hooks) {
  return config.schema == redis_schema::seed ? load_seed(c, config, hooks) : load_collection(c, config, hooks);
}

/// After a change notification: the current state of one seed key that is an address.
struct seed_change {
  ip_address address;  // unmapped
  std::string key;
  bool canonical;
  bool listed;
};

/// MGET of the changed keys that are addresses, each key once however often it was
/// reported.
inline bool reread_seed(redis_connection& c, const redis_config& config, std::vector<std::string>& keys,
                        std::vector<seed_change>& out, std::string& error) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<std::string_view> mget{"MGET"};
  std::vector<ip_address> addresses;
  for (const auto& key : keys) {
    if (auto a = parse_ip(key)) {
      mget.push_back(key);
      addresses.push_back(a->unmapped());
    }
  }
  if (addresses.empty()) return true;
  redis_reply values = c.command(mget);
  if (!values) {
    error = c.error();
    return false;
  }
  if (values->type != REDIS_REPLY_ARRAY || values->elements != addresses.size()) {
    error = describe_bad_reply(config, "MGET", values.get(), "an array of " + std::to_string(addresses.size()) + " values");
    return false;
  }
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    out.push_back({addresses[i], std::string(mget[i + 1]), canonical_spelling(mget[i + 1], addresses[i]),
                   seed_listed(mget[i + 1], values->element[i])});
  }
  return true;
}

/// The listed spellings of addresses that have a non-canonical one (`::ffff:1.2.3.30`,
/// `2001:DB8::20`); every other listed address is listed by its canonical key alone.
/// Rebuilt by each full load, updated by each change, so both paths agree: an address
/// is listed while any of its spellings is.
class seed_aliases {
 public:
  /// After a full load: `entries` (hosts) and the non-canonical spellings among them.
  void rebuild(const std::vector<store_entry>& entries, const std::vector<listed_alias>& aliases) {
    map_.clear();
    if (aliases.empty()) return;
    for (const auto& a : aliases) {
      auto& s = map_[a.address];
      if (std::find(s.others.begin(), s.others.end(), a.key) == s.others.end()) s.others.push_back(a.key);
    }
    // An address from a canonical key appears in entries once more than its aliases.
    std::unordered_map<ip_address, std::size_t> hits;
    for (const auto& e : entries) {
      const auto it = map_.find(e.network.address());
      if (it != map_.end()) ++hits[e.network.address()];
    }
    std::unordered_map<ip_address, std::size_t> alias_rows;
    for (const auto& a : aliases) ++alias_rows[a.address];
    for (auto& [address, s] : map_) s.canonical = hits[address] > alias_rows[address];
  }

  /// Applies one change; returns whether `c.address` is listed now. `listed_now` is
  /// what the snapshot says before the change.
  bool apply(const seed_change& c, bool listed_now) {
    auto it = map_.find(c.address);
    if (c.canonical) {
      if (it == map_.end()) return c.listed;
      it->second.canonical = c.listed;
    } else {
      if (it == map_.end()) {
        if (!c.listed) return listed_now;
        // Not in the map: only the canonical key can have listed it.
        it = map_.emplace(c.address, spellings{listed_now, {}}).first;
      }
      auto& others = it->second.others;
      const auto at = std::find(others.begin(), others.end(), c.key);
      if (c.listed && at == others.end()) others.push_back(c.key);
      if (!c.listed && at != others.end()) others.erase(at);
    }
    const bool listed = it->second.canonical || !it->second.others.empty();
    if (it->second.others.empty()) map_.erase(it);
    return listed;
  }

  std::size_t size() const noexcept { return map_.size(); }

 private:
  struct spellings {
    bool canonical = false;
    std::vector<std::string> others;
  };
  std::unordered_map<ip_address, spellings> map_;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_REDIS_LOAD_HPP
