// redis_store benchmarks against a real redis-server this program starts on a free
// loopback port (and stops at exit).
//
//   BM_RedisLookup_Synced  vs  BM_RedisLookup_DirectGet (a pooled GET per request)
//                          and BM_RedisLookup_SeedConnectPerRequest (the seed: connect, AUTH, GET, close)
//   BM_RedisPropagation_Set / _Del: write -> visible to lookups, p50/p99 as counters
//   BM_RedisFullLoad_Seed1M / _Set1M  vs  BM_MemoryStoreReplace_1M (the publish alone)
//                          and BM_RedisScanMget_Seed1M_Baseline (the same SCAN + MGET, raw hiredis)
//   BM_RedisFullLoad_Seed1M_VsScanMget: the two alternated, medians and their ratio
//   counters snapshot_MB (memory_store::memory_bytes) and rss_MB (resident growth)
//
// Usage: bench_redis [--benchmark_filter=...]   (needs redis-server on PATH)
#include <benchmark/benchmark.h>

#include <grayroute/redis_store.hpp>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../tests/support/process.hpp"
#include "../tests/support/redis_client.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int kBigList = 1000000;
constexpr int kSmallList = 10000;

// One server for the whole run, databases split by purpose.
constexpr int kSmallDb = 0;   // 10k seed keys
constexpr int kSeedDb = 1;    // 1M seed keys
constexpr int kSetDb = 2;     // one SET of 1M members

struct redis_fixture {
  grayroute::test::temp_dir dir;
  // Password-protected like the seed's Redis (`requirepass foobared`).
  grayroute::test::redis_server server{dir, {"foobared"}};
  bool seed_big_loaded = false, set_big_loaded = false;

  redis_fixture() {
    grayroute::test::redis_client redis(server.port(), server.password());
    redis.run({"SELECT", std::to_string(kSmallDb)});
    fill_seed(redis, kSmallList);
  }

  static std::string address(int i) {
    return "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) + "." +
           std::to_string(i & 255);
  }

  // MSET in chunks of 1000 pairs, pipelined: a million keys in a few seconds.
  static void fill_seed(grayroute::test::redis_client& redis, int count) {
    std::vector<std::vector<std::string>> commands;
    for (int i = 0; i < count;) {
      std::vector<std::string> mset{"MSET"};
      for (int j = 0; j < 1000 && i < count; ++j, ++i) {
        const std::string a = address(i);
        mset.push_back(a);
        mset.push_back(a);
      }
      commands.push_back(std::move(mset));
    }
    redis.pipeline(commands, 64);
  }

  void ensure_big_seed() {
    if (seed_big_loaded) return;
    grayroute::test::redis_client redis(server.port(), server.password());
    redis.run({"SELECT", std::to_string(kSeedDb)});
    fill_seed(redis, kBigList);
    seed_big_loaded = true;
  }

  void ensure_big_set() {
    if (set_big_loaded) return;
    grayroute::test::redis_client redis(server.port(), server.password());
    redis.run({"SELECT", std::to_string(kSetDb)});
    std::vector<std::vector<std::string>> commands;
    for (int i = 0; i < kBigList;) {
      std::vector<std::string> sadd{"SADD", "grayroute:list"};
      for (int j = 0; j < 1000 && i < kBigList; ++j, ++i) sadd.push_back(address(i));
      commands.push_back(std::move(sadd));
    }
    redis.pipeline(commands, 64);
    set_big_loaded = true;
  }

  grayroute::redis_config config(int db, grayroute::redis_mode mode = grayroute::redis_mode::synced) const {
    grayroute::redis_config c;
    c.port = server.port();
    c.password = server.password();
    c.database = db;
    c.mode = mode;
    c.command_timeout = 10s;  // a 1M-key MGET batch must not time out on a busy machine
    return c;
  }
};

redis_fixture& fixture() {
  static redis_fixture f;
  return f;
}

// Half listed, half not, spread over the list.
std::vector<grayroute::ip_address> probe_table() {
  std::vector<grayroute::ip_address> out;
  for (int i = 0; i < 1024; ++i) {
    const int n = (i * 7919) % (2 * kSmallList);
    out.push_back(*grayroute::parse_ip(redis_fixture::address(n)));
  }
  return out;
}

// Microseconds Redis itself spent in the commands a full load uses (INFO commandstats):
// how much of a load's time is the server's, not the store's.
double redis_load_usec(grayroute::test::redis_client& redis) {
  const std::string info = redis.run({"INFO", "commandstats"});
  double total = 0;
  for (const char* command : {"scan", "mget", "sscan", "hscan"}) {
    const std::string tag = std::string("cmdstat_") + command + ":";
    const std::size_t at = info.find(tag);
    if (at == std::string::npos) continue;
    const std::size_t usec = info.find("usec=", at);
    if (usec != std::string::npos) total += std::atof(info.c_str() + usec + 5);
  }
  return total;
}

double resident_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

void lookups(benchmark::State& state, grayroute::redis_mode mode) {
  auto& f = fixture();
  grayroute::redis_store store(f.config(kSmallDb, mode));
  if (!store.wait_until_synced(30s)) {
    state.SkipWithError("redis_store did not sync");
    return;
  }
  const auto table = probe_table();
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    const auto r = store.lookup(table[i++ & 1023]);
    benchmark::DoNotOptimize(r);
    hits += r.has_value();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["hit_ratio"] = static_cast<double>(hits) / static_cast<double>(std::max<std::size_t>(i, 1));
}

void BM_RedisLookup_Synced(benchmark::State& state) { lookups(state, grayroute::redis_mode::synced); }
void BM_RedisLookup_DirectGet(benchmark::State& state) { lookups(state, grayroute::redis_mode::direct); }
BENCHMARK(BM_RedisLookup_Synced);
BENCHMARK(BM_RedisLookup_DirectGet);

// The seed's Lua exactly: per request connect, AUTH foobared, GET, close.
void BM_RedisLookup_SeedConnectPerRequest(benchmark::State& state) {
  auto& f = fixture();
  const auto config = f.config(kSmallDb);
  const auto table = probe_table();
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    const auto address = table[i++ & 1023];
    char text[grayroute::ip_address::kMaxTextLength + 1];
    const std::string_view key(text, address.format(text));
    grayroute::detail::redis_connection c;
    if (!c.open(config, config.connect_timeout, config.command_timeout)) {
      state.SkipWithError(c.error().c_str());
      return;
    }
    const auto r = c.command({"GET", key});
    hits += r && r->type == REDIS_REPLY_STRING && grayroute::detail::reply_text(r.get()) == key;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["hit_ratio"] = static_cast<double>(hits) / static_cast<double>(std::max<std::size_t>(i, 1));
}
// Bounded: every iteration leaves a socket in TIME_WAIT.
BENCHMARK(BM_RedisLookup_SeedConnectPerRequest)->Iterations(3000);

// From sending the write to the first lookup that sees it, spinning on lookups
// (the write's own round trip is included).
void propagation(benchmark::State& state, bool del) {
  auto& f = fixture();
  grayroute::redis_store store(f.config(kSmallDb));
  grayroute::test::redis_client redis(f.server.port(), f.server.password());
  if (!store.wait_until_synced(30s)) {
    state.SkipWithError("redis_store did not sync");
    return;
  }
  std::vector<double> us;
  int n = 0;
  for (auto _ : state) {
    const std::string key = "192.168." + std::to_string((n >> 8) & 255) + "." + std::to_string(n & 255);
    ++n;
    const auto address = *grayroute::parse_ip(key);
    if (del) {
      redis.run({"SET", key, key});
      while (!store.contains(address)) std::this_thread::yield();
    }
    const auto start = std::chrono::steady_clock::now();
    redis.run(del ? std::vector<std::string>{"DEL", key} : std::vector<std::string>{"SET", key, key});
    while (store.contains(address) == del) {
      if (std::chrono::steady_clock::now() - start > 1s) break;
      std::this_thread::yield();
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    us.push_back(elapsed * 1e6);
    state.SetIterationTime(elapsed);
    if (!del) redis.run({"DEL", key});
  }
  std::sort(us.begin(), us.end());
  auto at = [&](double p) { return us[std::min(us.size() - 1, static_cast<std::size_t>(p * static_cast<double>(us.size())))]; };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["max_us"] = us.back();
}

void BM_RedisPropagation_Set(benchmark::State& state) { propagation(state, false); }
void BM_RedisPropagation_Del(benchmark::State& state) { propagation(state, true); }
BENCHMARK(BM_RedisPropagation_Set)->UseManualTime()->Iterations(2000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RedisPropagation_Del)->UseManualTime()->Iterations(2000)->Unit(benchmark::kMicrosecond);

// Construction to a published 1M-entry snapshot: connect, SCAN + MGET (or SSCAN),
// parse, build, one atomic swap.
void full_load(benchmark::State& state, grayroute::redis_schema schema) {
  auto& f = fixture();
  const int db = schema == grayroute::redis_schema::seed ? kSeedDb : kSetDb;
  if (schema == grayroute::redis_schema::seed) {
    f.ensure_big_seed();
  } else {
    f.ensure_big_set();
  }
  auto config = f.config(db);
  config.schema = schema;
  double snapshot_mb = 0, rss_mb = 0, server_ms = 0;
  std::size_t entries = 0;
  grayroute::test::redis_client redis(f.server.port(), f.server.password());
  for (auto _ : state) {
    const double server_before = redis_load_usec(redis);
    const double rss_before = resident_mb();
    const auto start = std::chrono::steady_clock::now();
    grayroute::redis_store store(config);
    if (!store.wait_until_synced(60s)) {
      state.SkipWithError(("no sync: " + store.status().last_error).c_str());
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    entries = store.status().entries;
    snapshot_mb = static_cast<double>(store.snapshot().memory_bytes()) / (1024.0 * 1024.0);
    rss_mb = std::max(rss_mb, resident_mb() - rss_before);
    server_ms += (redis_load_usec(redis) - server_before) / 1000.0;
  }
  state.counters["redis_server_ms"] = server_ms / static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
  state.counters["entries"] = static_cast<double>(entries);
  state.counters["snapshot_MB"] = snapshot_mb;
  state.counters["rss_MB"] = rss_mb;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(entries));
}

// Baseline for the seed load: what Redis needs to serve the same keys to the thinnest
// client, i.e. the same pipelined SCAN + MGET (same COUNT) over raw hiredis, replies
// freed unread. Returns the seconds taken, or a negative number on an I/O error.
double scan_mget_seconds(redis_fixture& f, std::size_t& keys) {
  const auto start = std::chrono::steady_clock::now();
  timeval tv{30, 0};
  redisContext* ctx = redisConnectWithTimeout("127.0.0.1", f.server.port(), tv);
  bool failed = ctx == nullptr || ctx->err != 0;
  auto run = [&](std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    redisAppendCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lengths.data());
  };
  auto reply = [&] {
    void* r = nullptr;
    if (failed || redisGetReply(ctx, &r) != REDIS_OK || !r) {
      failed = true;
      return static_cast<redisReply*>(nullptr);
    }
    return static_cast<redisReply*>(r);
  };
  const std::string count = std::to_string(grayroute::detail::kRedisScanCount);
  if (!failed) {
    run({"AUTH", f.server.password()});
    run({"SELECT", std::to_string(kSeedDb)});
    freeReplyObject(reply());
    freeReplyObject(reply());
    keys = 0;
    run({"SCAN", "0", "COUNT", count});
  }
  redisReply* scan = reply();
  bool mget_pending = false;
  while (scan) {
    const std::string cursor(scan->element[0]->str, scan->element[0]->len);
    if (cursor != "0") run({"SCAN", cursor, "COUNT", count});
    const redisReply* batch = scan->element[1];
    std::vector<const char*> argv{"MGET"};
    std::vector<std::size_t> lengths{4};
    for (std::size_t i = 0; i < batch->elements; ++i) {
      argv.push_back(batch->element[i]->str);
      lengths.push_back(batch->element[i]->len);
    }
    keys += batch->elements;
    if (batch->elements) redisAppendCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lengths.data());
    if (mget_pending) freeReplyObject(reply());
    mget_pending = batch->elements > 0;
    freeReplyObject(scan);
    scan = nullptr;
    if (cursor == "0") break;
    scan = reply();
  }
  if (mget_pending) freeReplyObject(reply());
  if (ctx) redisFree(ctx);
  if (failed) return -1;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BM_RedisScanMget_Seed1M_Baseline(benchmark::State& state) {
  auto& f = fixture();
  f.ensure_big_seed();
  std::size_t keys = 0;
  for (auto _ : state) {
    const double seconds = scan_mget_seconds(f, keys);
    if (seconds < 0) {
      state.SkipWithError("baseline: redis I/O error");
      return;
    }
    state.SetIterationTime(seconds);
  }
  state.counters["keys"] = static_cast<double>(keys);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(keys));
}

// The store's seed load and the baseline back to back, in alternating order, so that
// both see the same machine (the load on a shared VM moves either by 2x within a
// minute). Reports each one's median and the ratio of the medians (target <= 1.2).
void BM_RedisFullLoad_Seed1M_VsScanMget(benchmark::State& state) {
  auto& f = fixture();
  f.ensure_big_seed();
  const auto config = f.config(kSeedDb);
  std::vector<double> loads, baselines, ratios;
  std::size_t keys = 0, entries = 0;
  for (auto _ : state) {
    double load = 0, baseline = 0;
    for (int half = 0; half < 2; ++half) {
      if ((half == 0) == (loads.size() % 2 == 0)) {
        baseline = scan_mget_seconds(f, keys);
        if (baseline < 0) {
          state.SkipWithError("baseline: redis I/O error");
          return;
        }
      } else {
        const auto start = std::chrono::steady_clock::now();
        grayroute::redis_store store(config);
        if (!store.wait_until_synced(60s)) {
          state.SkipWithError(("no sync: " + store.status().last_error).c_str());
          return;
        }
        load = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        entries = store.status().entries;
      }
    }
    loads.push_back(load);
    baselines.push_back(baseline);
    ratios.push_back(load / baseline);
    state.SetIterationTime(load);
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  state.counters["load_ms"] = 1000 * median(loads);
  state.counters["scan_mget_ms"] = 1000 * median(baselines);
  state.counters["ratio_of_medians"] = median(loads) / median(baselines);
  state.counters["median_pair_ratio"] = median(ratios);
  state.counters["entries"] = static_cast<double>(entries);
  state.counters["keys"] = static_cast<double>(keys);
}
BENCHMARK(BM_RedisFullLoad_Seed1M_VsScanMget)->UseManualTime()->Iterations(9)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RedisScanMget_Seed1M_Baseline)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

void BM_RedisFullLoad_Seed1M(benchmark::State& state) { full_load(state, grayroute::redis_schema::seed); }
void BM_RedisFullLoad_Set1M(benchmark::State& state) { full_load(state, grayroute::redis_schema::set); }
BENCHMARK(BM_RedisFullLoad_Seed1M)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RedisFullLoad_Set1M)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

// Baseline: building and publishing the same 1M entries with no Redis at all.
void BM_MemoryStoreReplace_1M(benchmark::State& state) {
  std::vector<grayroute::store_entry> entries;
  entries.reserve(kBigList);
  for (int i = 0; i < kBigList; ++i) {
    entries.push_back({grayroute::ip_network::host(grayroute::ip_address::v4(0x0a000000u + static_cast<std::uint32_t>(i))),
                       grayroute::kGray});
  }
  grayroute::memory_store store;
  for (auto _ : state) store.replace(entries);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kBigList);
  state.counters["snapshot_MB"] = static_cast<double>(store.memory_bytes()) / (1024.0 * 1024.0);
}
BENCHMARK(BM_MemoryStoreReplace_1M)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
