// redis_store against a fake Redis (tests/support/fake_redis.hpp) that injects the
// faults a real server will not produce on demand: trickled replies, a cursor that
// never ends, null-invalidation floods, a flapping subscriber connection, no CLIENT
// TRACKING, a huge multi-bulk header, odd error replies. Each case is a promise of
// docs/redis.md ("Failure behaviour") and would fail if the promise broke.
#include <doctest/doctest.h>

#include <grayroute/redis_store.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../support/fake_redis.hpp"
#include "../support/process.hpp"

using namespace std::chrono_literals;
using grayroute::parse_ip;
using grayroute::redis_config;
using grayroute::redis_store;
using grayroute::test::command;
using grayroute::test::eventually;
using grayroute::test::fake_redis;
using grayroute::test::resp_array;

namespace {

using clock_type = std::chrono::steady_clock;

redis_config config_for(const fake_redis& fake) {
  redis_config c;
  c.port = fake.port();
  c.connect_timeout = 300ms;
  c.command_timeout = 300ms;
  c.ping_interval = 100ms;
  c.retry_max = 200ms;
  c.min_reload_interval = 200ms;
  return c;
}

bool gray(const redis_store& s, const char* ip) { return s.lookup(*parse_ip(ip)) == grayroute::kGray; }
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A store on `fake` that has completed its first load.
std::unique_ptr<redis_store> synced_store(const redis_config& config) {
  auto store = std::make_unique<redis_store>(config);
  REQUIRE(store->wait_until_synced(5s));
  return store;
}

std::string scan_reply(const std::string& cursor, const std::vector<std::string>& keys) {
  return "*2\r\n" + grayroute::test::resp_bulk(cursor) + resp_array(keys);
}

}  // namespace

TEST_SUITE("redis faults: bounded commands") {
  TEST_CASE("a reply trickled a byte at a time fails the command within command_timeout") {
    std::atomic<bool> trickle{false};
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "SCAN" || !trickle.load()) return false;
      c.trickle(scan_reply("0", {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}), 20ms);  // ~1.5 s in all
      return true;
    });
    fake.set("10.0.0.1", "10.0.0.1");
    auto config = config_for(fake);
    config.resync_interval = 300ms;
    auto store = synced_store(config);
    trickle = true;
    const auto scans = fake.count("SCAN");
    REQUIRE(eventually([&] { return fake.count("SCAN") > scans; }));
    const auto started = clock_type::now();
    CHECK(eventually([&] { return contains(store->status().last_error, "SCAN: timed out after 300 ms"); }, 3s));
    // Each read got a byte well within command_timeout: only a per-command deadline stops it.
    CHECK(clock_type::now() - started < 1000ms);
    CHECK(gray(*store, "10.0.0.1"));  // the last list is kept
    CHECK_FALSE(store->status().healthy());
  }

  TEST_CASE("direct mode: a trickling server never makes a lookup exceed command_timeout") {
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "GET") return false;
      c.trickle("$8\r\n10.0.0.1\r\n", 60ms);  // 14 bytes, 840 ms
      return true;
    });
    auto config = config_for(fake);
    config.mode = grayroute::redis_mode::direct;
    redis_store store(config);
    const auto t0 = clock_type::now();
    CHECK_FALSE(store.contains(*parse_ip("10.0.0.1")));
    const auto took = clock_type::now() - t0;
    MESSAGE("lookup took " << std::chrono::duration<double, std::milli>(took).count() << " ms");
    CHECK(took < 300ms + 250ms);  // the deadline, plus a scheduling margin for loaded sanitizer runs
    CHECK(contains(store.status().last_error, "GET: timed out"));
  }

  TEST_CASE("a huge multi-bulk header is refused before it is allocated, and stop() stays prompt") {
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "SCAN") return false;
      c.send("*2147483647\r\n");
      return true;
    });
    auto store = std::make_unique<redis_store>(config_for(fake));
    CHECK(eventually([&] { return contains(store->status().last_error, "elements refused"); }));
    const auto t0 = clock_type::now();
    store.reset();
    CHECK(clock_type::now() - t0 < 500ms);
  }

  TEST_CASE("a SCAN cursor that never returns to 0 fails the load and keeps the last list") {
    std::atomic<bool> endless{false};
    std::atomic<int> round{0};
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "SCAN" || !endless.load()) return false;
      // The same keys again and again, then new non-address keys: neither may grow forever.
      const int r = round.fetch_add(1);
      c.send(scan_reply("7", r % 2 ? std::vector<std::string>{"10.0.0.1", "10.0.0.1"}
                                   : std::vector<std::string>{"session:" + std::to_string(r)}));
      return true;
    });
    fake.set("10.0.0.1", "10.0.0.1");
    auto config = config_for(fake);
    config.resync_interval = 200ms;
    auto store = synced_store(config);
    endless = true;
    CHECK(eventually([&] { return contains(store->status().last_error, "cursor not back to 0"); }, 5s));
    const auto status = store->status();
    MESSAGE(status.last_error);
    CHECK(round.load() < 200);  // bounded by DBSIZE (1 key): 64 calls per attempt
    CHECK(gray(*store, "10.0.0.1"));
  }

  TEST_CASE("a slow load says so in the status, and a watch connection lost meanwhile abandons it") {
    std::atomic<bool> slow{false};
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "SCAN" || !slow.load()) return false;
      c.sleep_for(100ms);  // each batch well within command_timeout, the whole load not
      c.send(scan_reply(cmd[1] == "40" ? "0" : std::to_string(std::stoi(cmd[1]) + 1), {"10.0.0.1"}));
      return true;
    });
    fake.set("10.0.0.1", "10.0.0.1");
    auto config = config_for(fake);
    config.resync_interval = 200ms;
    auto store = synced_store(config);
    slow = true;
    CHECK(eventually([&] { return store->status().slow_load; }, 3s));
    const auto status = store->status();
    CHECK(status.loading);
    CHECK(contains(status.problem(), "full load slow"));
    CHECK(contains(to_json(status), "\"health\":\"degraded\""));
    fake.drop_subscribers();
    const auto dropped = clock_type::now();
    CHECK(eventually([&] { return contains(store->status().last_error, "abandoned, the watch connection"); }, 3s));
    CHECK(clock_type::now() - dropped < 1s);
    CHECK(gray(*store, "10.0.0.1"));
  }
}

TEST_SUITE("redis faults: no reload storms") {
  TEST_CASE("a flood of null invalidations about other databases reloads nothing") {
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "SUBSCRIBE") return false;
      c.send(grayroute::test::kSubscribeConfirmation);
      c.flood = grayroute::test::kNullInvalidation;  // ~1000 per second
      return true;
    });
    fake.set("10.0.0.1", "10.0.0.1");
    auto config = config_for(fake);
    config.command_timeout = 2s;  // a loaded CI machine must not turn this into a reconnect
    auto store = synced_store(config);
    CHECK(eventually([&] { return store->status().invalidations > 200; }, 5s));
    const auto status = store->status();
    CHECK(status.flushes_elsewhere >= 1);
    MESSAGE(to_string(status));
    CHECK(status.full_loads == 1);
    CHECK(status.connected);
  }

  TEST_CASE("a flood of null invalidations about our database: one load per min_reload_interval") {
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] == "EXISTS") return c.send(":0\r\n"), true;  // our database was flushed, every time
      if (cmd[0] != "SUBSCRIBE") return false;
      c.send(grayroute::test::kSubscribeConfirmation);
      c.flood = grayroute::test::kNullInvalidation;
      return true;
    });
    fake.set("10.0.0.1", "10.0.0.1");
    redis_store store(config_for(fake));
    REQUIRE(store.wait_until_synced(5s));
    const auto loads = store.status().full_loads;
    const auto invalidations = store.status().invalidations;
    const auto t0 = clock_type::now();
    std::this_thread::sleep_for(1s);
    const auto status = store.status();
    const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    MESSAGE((status.invalidations - invalidations) << " null invalidations, " << (status.full_loads - loads)
                                                   << " full loads in " << seconds << " s");
    CHECK(status.invalidations - invalidations > 200);
    // min_reload_interval is 200 ms: at most one load per 200 ms (+1 for the edges).
    CHECK(status.full_loads - loads <= static_cast<std::uint64_t>(seconds / 0.2) + 1);
    CHECK(status.full_loads - loads >= 2);  // but the flushes are not ignored
  }

  TEST_CASE("a watch connection that dies right after SUBSCRIBE backs off and is reported as flapping") {
    fake_redis* server = nullptr;
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "SUBSCRIBE") return false;
      const auto mgets = server->count("MGET");
      c.send(grayroute::test::kSubscribeConfirmation);
      // Dies as soon as the full load that follows has been answered (its MGET).
      for (int i = 0; i < 400 && server->count("MGET") == mgets; ++i) c.sleep_for(5ms);
      c.sleep_for(5ms);
      c.close();
      return true;
    });
    server = &fake;
    fake.set("10.0.0.1", "10.0.0.1");
    auto config = config_for(fake);
    config.retry_max = 800ms;
    redis_store store(config);
    const bool synced = store.wait_until_synced(5s);
    MESSAGE(to_string(store.status()));
    REQUIRE(synced);
    std::this_thread::sleep_for(3s);
    const auto status = store.status();
    MESSAGE(to_string(status));
    // Backoff 100, 200, 400, 800, 800 ms (jittered down to half): 4-9 cycles in 3 s;
    // resetting it after each load would make ~30.
    CHECK(status.connects <= 12);
    CHECK(status.flaps >= 2);
    CHECK(eventually([&] { return store.status().flapping || !store.status().connected; }));
    CHECK_FALSE(store.status().healthy());
    CHECK(gray(store, "10.0.0.1"));
  }
}

TEST_SUITE("redis faults: servers without CLIENT TRACKING") {
  TEST_CASE("CLIENT TRACKING refused: periodic full loads, and the status says so") {
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "CLIENT" || cmd.size() < 2 || cmd[1] != "TRACKING") return false;
      c.send("-ERR unknown subcommand 'TRACKING'. Try CLIENT HELP.\r\n");
      return true;
    });
    fake.set("10.0.0.1", "10.0.0.1");
    auto config = config_for(fake);
    config.resync_interval = 200ms;
    auto store = synced_store(config);
    CHECK(gray(*store, "10.0.0.1"));
    auto status = store->status();
    CHECK(contains(status.sync_mode, "polling"));
    CHECK(contains(status.sync_mode, "ERR unknown subcommand"));
    CHECK(status.last_error.empty());
    fake.set("10.0.0.2", "10.0.0.2");
    CHECK(eventually([&] { return gray(*store, "10.0.0.2"); }, 3s));
    CHECK(store->status().connected);
    CHECK(store->status().healthy());
  }
}

TEST_SUITE("redis faults: servers without CLIENT TRACKING") {
  TEST_CASE("CLIENT TRACKING refused, keyspace notifications enabled: changes follow them, no resync needed") {
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "CLIENT" || cmd.size() < 2 || cmd[1] != "TRACKING") return false;
      c.send("-ERR unknown subcommand 'TRACKING'. Try CLIENT HELP.\r\n");
      return true;
    });
    fake.set_notify_keyspace_events("KA");
    fake.set("10.0.0.1", "10.0.0.1");
    auto config = config_for(fake);
    config.resync_interval = 60s;
    auto store = synced_store(config);
    CHECK(contains(store->status().sync_mode, "keyspace notifications (CLIENT TRACKING refused"));
    CHECK(fake.last("PSUBSCRIBE") == command{"PSUBSCRIBE", "__keyspace@0__:*"});
    fake.set("10.0.0.2", "10.0.0.2");
    fake.publish("*4\r\n$8\r\npmessage\r\n" + grayroute::test::resp_bulk("__keyspace@0__:*") +
                 grayroute::test::resp_bulk("__keyspace@0__:10.0.0.2") + grayroute::test::resp_bulk("set"));
    CHECK(eventually([&] { return gray(*store, "10.0.0.2"); }, 3s));
    CHECK(store->status().full_loads == 1);
    CHECK(store->status().healthy());
  }
}

TEST_SUITE("redis faults: truthful status") {
  TEST_CASE("last_error names the step and Redis's reason") {
    SUBCASE("MGET error reply") {
      fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
        if (cmd[0] != "MGET") return false;
        c.send("-ERR boom from the server\r\n");
        return true;
      });
      fake.set("10.0.0.1", "10.0.0.1");
      redis_store store(config_for(fake));
      CHECK(eventually([&] { return contains(store.status().last_error, "full load: MGET failed: ERR boom from the server"); }));
    }
    SUBCASE("maxclients is a refused connection, not an AUTH failure") {
      fake_redis fake([&](fake_redis::connection& c, const command&) {
        c.send("-ERR max number of clients reached\r\n");
        c.close();
        return true;
      });
      auto config = config_for(fake);
      config.password = "pw-for-maxclients";
      redis_store store(config);
      CHECK(eventually([&] { return !store.status().last_error.empty(); }));
      const auto error = store.status().last_error;
      MESSAGE(error);
      CHECK(contains(error, "connect: refused by the server: ERR max number of clients reached"));
      CHECK_FALSE(contains(error, "AUTH"));
    }
  }

  TEST_CASE("the password is never echoed, even when the server quotes it") {
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "AUTH") return false;
      c.send("-ERR unknown command 'AUTH', with args beginning with: '" + cmd.back() + "' \r\n");
      return true;
    });
    auto config = config_for(fake);
    config.password = "hunter2-secret";
    redis_store store(config);
    CHECK(eventually([&] { return contains(store.status().last_error, "AUTH: ERR unknown command"); }));
    const auto status = store.status();
    for (const std::string& text : {status.last_error, to_string(status), to_json(status)}) {
      CHECK_FALSE(contains(text, "hunter2"));
    }
  }

  TEST_CASE("MGET replies are read whole however they arrive, and only a value equal to its key lists it") {
    // The load reads MGET replies straight from its buffer: a reply cut anywhere
    // (here, a byte at a time) waits for the rest; nils and other values list
    // nothing; an array holding other types goes through the general parser.
    for (const bool odd_types : {false, true}) {
      CAPTURE(odd_types);
      fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
        if (cmd[0] != "MGET") return false;
        std::string reply = "*" + std::to_string(cmd.size() - 1) + "\r\n";
        for (std::size_t i = 1; i < cmd.size(); ++i) {
          if (cmd[i] == "10.0.0.2") {
            reply += "$-1\r\n";
          } else if (cmd[i] == "10.0.0.3") {
            reply += grayroute::test::resp_bulk("10.0.0.33");
          } else if (cmd[i] == "10.0.0.4") {
            reply += odd_types ? ":4\r\n" : grayroute::test::resp_bulk("");
          } else {
            reply += grayroute::test::resp_bulk(cmd[i]);
          }
        }
        c.trickle(reply, 1ms);
        return true;
      });
      for (const char* key : {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "2001:db8::5"}) fake.set(key, key);
      redis_store store(config_for(fake));
      REQUIRE(store.wait_until_synced(10s));
      CHECK(store.status().entries == 2);
      CHECK(gray(store, "10.0.0.1"));
      CHECK(gray(store, "2001:db8::5"));
      for (const char* unlisted : {"10.0.0.2", "10.0.0.3", "10.0.0.4"}) CHECK_FALSE(gray(store, unlisted));
    }
  }

  TEST_CASE("duplicate keys in one SCAN batch are fetched once") {
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "SCAN") return false;
      std::vector<std::string> keys(500, "10.0.0.1");
      keys.push_back("10.0.0.2");
      c.send(scan_reply("0", keys));
      return true;
    });
    fake.set("10.0.0.1", "10.0.0.1");
    redis_store store(config_for(fake));
    REQUIRE(store.wait_until_synced(5s));
    CHECK(fake.last("MGET") == command{"MGET", "10.0.0.1", "10.0.0.2"});
    CHECK(gray(store, "10.0.0.1"));
  }
}

TEST_SUITE("redis faults: direct mode") {
  TEST_CASE("direct mode: WRONGTYPE is not listed and keeps the connection") {
    fake_redis fake([&](fake_redis::connection& c, const command& cmd) {
      if (cmd[0] != "GET" || cmd[1] != "10.0.0.3") return false;
      c.send("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
      return true;
    });
    fake.set("10.0.0.1", "10.0.0.1");
    auto config = config_for(fake);
    config.mode = grayroute::redis_mode::direct;
    redis_store store(config);
    for (int i = 0; i < 5; ++i) {
      CHECK_FALSE(store.contains(*parse_ip("10.0.0.3")));
      CHECK(store.contains(*parse_ip("10.0.0.1")));
    }
    CHECK(fake.connections() == 1);
    CHECK(store.status().connected);
    CHECK(store.status().last_error.empty());
  }
}
