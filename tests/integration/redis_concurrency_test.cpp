// Lookups from several threads while the sync thread reloads and applies changes:
// a stable entry is never missing (full loads are published with one swap), and the
// whole thing is clean under ThreadSanitizer (label `concurrency`).
#include <doctest/doctest.h>

#include <grayroute/redis_store.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "../support/process.hpp"
#include "../support/redis_client.hpp"

using namespace std::chrono_literals;

TEST_SUITE("redis concurrency") {
  TEST_CASE("concurrent lookups during resyncs and changes never miss a stable entry") {
    grayroute::test::temp_dir dir;
    grayroute::test::redis_server server(dir);
    grayroute::test::redis_client redis(server.port());
    std::vector<std::vector<std::string>> sets;
    for (int i = 0; i < 5000; ++i) {
      const std::string ip = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250);
      sets.push_back({"SET", ip, ip});
    }
    redis.pipeline(sets);

    grayroute::redis_config config;
    config.port = server.port();
    config.resync_interval = 20ms;  // a full reload every 20 ms, racing the readers
    config.ping_interval = 50ms;
    grayroute::redis_store store(config);
    REQUIRE(store.wait_until_synced(5s));

    const auto stable = *grayroute::parse_ip("10.1.3.7");
    std::atomic<bool> done{false};
    std::atomic<long> misses{0}, lookups{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
      readers.emplace_back([&, t] {
        long n = 0;
        while (!done.load(std::memory_order_relaxed)) {
          if (!store.contains(stable)) misses.fetch_add(1);
          (void)store.lookup(grayroute::ip_address::v4(0x0a020000u + static_cast<std::uint32_t>(n % 1000 + t)));
          (void)store.status();
          // Two cores: leave the sync thread room to run its reloads.
          if (++n % 256 == 0) std::this_thread::yield();
        }
        lookups.fetch_add(n);
      });
    }
    // Churn on other keys while the periodic reloads run.
    for (int round = 0; round < 300; ++round) {
      const std::string ip = "10.2.0." + std::to_string(round % 200);
      redis.run({"SET", ip, ip});
      if (round % 3 == 0) redis.run({"DEL", ip});
    }
    // Keep reading until several more full reloads have swapped the snapshot.
    const auto loads = store.status().full_loads;
    CHECK(grayroute::test::eventually([&] { return store.status().full_loads >= loads + 5; }, 20s));
    done = true;
    for (auto& r : readers) r.join();
    const auto status = store.status();
    MESSAGE(lookups.load() << " lookups, " << status.full_loads << " full loads, " << status.invalidations
                           << " invalidations");
    CHECK(misses.load() == 0);
    CHECK(lookups.load() > 0);
    CHECK(store.contains(stable));
  }

  TEST_CASE("direct mode shares its connection pool between threads") {
    grayroute::test::temp_dir dir;
    grayroute::test::redis_server server(dir);
    grayroute::test::redis_client redis(server.port());
    redis.run({"SET", "10.0.0.1", "10.0.0.1"});
    grayroute::redis_config config;
    config.port = server.port();
    config.mode = grayroute::redis_mode::direct;
    grayroute::redis_store store(config);
    std::atomic<long> wrong{0}, total{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          wrong += !store.contains(*grayroute::parse_ip("10.0.0.1"));
          wrong += store.contains(*grayroute::parse_ip("10.0.0.2"));
          total += 2;
        }
      });
    }
    for (auto& t : threads) t.join();
    CHECK(wrong.load() == 0);
    CHECK(total.load() == 1600);
    CHECK(store.status().connected);
  }

  TEST_CASE("stop() from another thread while the store syncs is prompt and idempotent") {
    grayroute::test::temp_dir dir;
    grayroute::test::redis_server server(dir);
    grayroute::redis_config config;
    config.port = server.port();
    config.resync_interval = 5ms;
    grayroute::redis_store store(config);
    REQUIRE(store.wait_until_synced(5s));
    const auto started = std::chrono::steady_clock::now();
    std::thread stopper([&] { store.stop(); });
    store.stop();
    stopper.join();
    // Prompt: the sync thread is woken, not waited out (between checks it sleeps up
    // to ping_interval, 1 s; a command may wait command_timeout, 1 s).
    CHECK(std::chrono::steady_clock::now() - started < 500ms);
    CHECK_FALSE(store.status().connected);
    CHECK_FALSE(store.contains(*grayroute::parse_ip("10.0.0.1")));
  }
}
