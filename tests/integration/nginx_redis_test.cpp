// The nginx module with grayroute_redis: the seed's verification, Redis failures
// under load, reloads under load (no leaked threads or connections), more routes.
// Real nginx and redis-server processes on loopback.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "../support/nginx.hpp"
#include "../support/process.hpp"

using namespace grayroute::test;

namespace {

// The seed's location, with the module in place of the Lua script.
const char* const kSeedLocation = R"(
        location ^~ /test {
            grayroute_route client1 client2;
            proxy_pass http://$grayroute_upstream;
        }
        location = /grayroute { grayroute_status; })";

std::string redis_directive(const redis_server& redis, const std::string& extra = "") {
  return "grayroute_redis 127.0.0.1:" + std::to_string(redis.port()) + " password=" + redis.password() +
         " connect_timeout=200ms command_timeout=200ms " + extra + ";";
}

// Several answers in a row, so every worker (each has its own snapshot) agrees.
bool consistently(int port, const std::string& body, const std::string& source = "") {
  for (int i = 0; i < 8; ++i) {
    if (http_get(port, "/test/index.html", {}, std::chrono::seconds(5), source).body != body) return false;
  }
  return true;
}

// Clients connected to Redis, not counting the redis-cli asking.
int redis_clients(const redis_server& redis) {
  const std::string list = redis.cli({"CLIENT", "LIST"});
  int lines = 0;
  for (char c : list) lines += c == '\n';
  return list.empty() ? 0 : lines;  // n lines = n - 1 newlines; minus redis-cli itself
}

}  // namespace

TEST_SUITE("nginx module with redis") {
  TEST_CASE("seed parity: set and del in Redis move 127.0.0.1 between 8080 and 8090") {
    temp_dir dir;
    redis_server redis(dir, {"foobared"});
    // The seed's backends: production says "this 8080", pre-release "8090".
    nginx_server nginx(dir, redis_directive(redis), kSeedLocation, nginx_server::options{{"this 8080", "8090"}, 2, true});

    CHECK(http_get(nginx.port(), "/test/index.html").body == "this 8080\n");

    CHECK(redis.cli({"set", "127.0.0.1", "127.0.0.1"}) == "OK");
    const auto set_at = std::chrono::steady_clock::now();
    REQUIRE(eventually([&] { return consistently(nginx.port(), "8090\n"); }, std::chrono::seconds(2)));
    MESSAGE("propagation (set): ", std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - set_at).count(), " ms");

    CHECK(redis.cli({"del", "127.0.0.1"}) == "1");
    REQUIRE(eventually([&] { return consistently(nginx.port(), "this 8080\n"); }, std::chrono::seconds(2)));

    // Seed semantics: the value must equal the key; anything else is not listed.
    CHECK(redis.cli({"set", "127.0.0.1", "yes"}) == "OK");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(consistently(nginx.port(), "this 8080\n"));

    const http_reply status = http_get(nginx.port(), "/grayroute");
    CHECK(status.body.find("\"connected\":true") != std::string::npos);
    CHECK(nginx.error_log().find("syncing the gray list") != std::string::npos);
    CHECK(nginx.error_log().find("foobared") == std::string::npos);  // the password never reaches the log
  }

  TEST_CASE("a wrong password: one error-log line per worker, the status page says degraded") {
    temp_dir dir;
    redis_server redis(dir, {"foobared"});
    const std::string directive = "grayroute_redis 127.0.0.1:" + std::to_string(redis.port()) +
                                  " password=WRONG;\n";
    nginx_server nginx(dir, directive, kSeedLocation);
    auto refusals = [&] {
      const std::string log = nginx.error_log();
      std::size_t n = 0;
      for (std::size_t at = log.find("refused the credentials"); at != std::string::npos;
           at = log.find("refused the credentials", at + 1)) {
        ++n;
      }
      return n;
    };
    REQUIRE(eventually([&] { return refusals() >= static_cast<std::size_t>(nginx.worker_processes()); }));
    // The store retries with a backoff growing from 100 ms: several tries, one line per worker.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    CHECK(refusals() == static_cast<std::size_t>(nginx.worker_processes()));
    const std::string log = nginx.error_log();
    CHECK(log.find("WRONGPASS") != std::string::npos);  // Redis's reason, unredacted: the password is not in it
    CHECK(log.find("password=WRONG ") == std::string::npos);
    const http_reply status = http_get(nginx.port(), "/grayroute");
    CHECK(status.body.find("\"status\":\"degraded\"") != std::string::npos);
    CHECK(status.body.find("never synced") != std::string::npos);
  }

  TEST_CASE("Redis killed, blackholed and restarted under load: no request fails") {
    temp_dir dir;
    redis_server redis(dir, {"foobared"});
    nginx_server nginx(dir, redis_directive(redis), kSeedLocation);
    CHECK(redis.cli({"set", "127.0.0.2", "127.0.0.2"}) == "OK");
    REQUIRE(eventually([&] { return consistently(nginx.port(), "this 8090\n", "127.0.0.2"); }, std::chrono::seconds(2)));

    load_generator load(nginx.port(), "/test/index.html", 2);
    REQUIRE(load.wait_for(300));

    redis.kill_now();
    long before = load.ok();
    REQUIRE(load.wait_for(before + 1000));
    // Routed from the last snapshot while Redis is gone. Each worker's sync thread notices
    // the lost connection on its own schedule: wait for the page to say so, as a user would.
    CHECK(consistently(nginx.port(), "this 8090\n", "127.0.0.2"));
    CHECK(eventually([&] { return http_get(nginx.port(), "/grayroute").body.find("\"connected\":false") != std::string::npos; }));

    // Restarted empty (no persistence): the store reloads and 127.0.0.2 is no longer listed.
    redis.start();
    REQUIRE(eventually([&] { return consistently(nginx.port(), "this 8080\n", "127.0.0.2"); }, std::chrono::seconds(10)));
    CHECK(redis.cli({"set", "127.0.0.2", "127.0.0.2"}) == "OK");
    REQUIRE(eventually([&] { return consistently(nginx.port(), "this 8090\n", "127.0.0.2"); }, std::chrono::seconds(2)));

    // A blackhole (accepts nothing, answers nothing) does not stall requests either.
    redis.pause();
    before = load.ok();
    const bool flowed = load.wait_for(before + 500, std::chrono::seconds(10));
    redis.resume();
    CHECK(flowed);

    load.stop();
    CAPTURE(load.first_failure());
    CHECK(load.failed() == 0);
    CHECK(load.ok() >= 2000);
    MESSAGE(load.ok(), " requests, ", load.failed(), " failed");
  }

  TEST_CASE("a reload while Redis is down keeps the last list, with no snapshot= configured") {
    temp_dir dir;
    redis_server redis(dir, {"foobared"});
    nginx_server nginx(dir, redis_directive(redis), kSeedLocation);
    CHECK(redis.cli({"set", "127.0.0.2", "127.0.0.2"}) == "OK");
    REQUIRE(eventually([&] { return consistently(nginx.port(), "this 8090\n", "127.0.0.2"); }, std::chrono::seconds(2)));
    // The snapshot the old workers keep in the client body temp path has the change
    // (written at most a second after it).
    REQUIRE(eventually([&] {
      return run_command("cat '" + dir.file("body") + "'/grayroute-*.snapshot").second.find("127.0.0.2/32 gray") != std::string::npos;
    }));

    redis.kill_now();
    REQUIRE(nginx.reload());
    // New workers that never reached Redis route from the old workers' list.
    CHECK(consistently(nginx.port(), "this 8090\n", "127.0.0.2"));
    CHECK(consistently(nginx.port(), "this 8080\n", "127.0.0.3"));
    const std::string page = http_get(nginx.port(), "/grayroute").body;
    CAPTURE(page);
    CHECK(page.find("\"connected\":false") != std::string::npos);
    // Routed, but not by Redis: the page says so rather than "synced".
    CHECK(page.find("\"reason\":\"redis: never synced, serving the snapshot file") != std::string::npos);
    CHECK(page.find("\"from_snapshot\":true") != std::string::npos);
    CHECK(nginx.error_log().find("foobared") == std::string::npos);
  }

  TEST_CASE("reloads under load drop no request and leak no thread or connection") {
    temp_dir dir;
    redis_server redis(dir, {"foobared"});
    nginx_server nginx(dir, redis_directive(redis), kSeedLocation);
    REQUIRE(eventually([&] { return http_get(nginx.port(), "/grayroute").body.find("\"synced_once\":true") != std::string::npos; }));
    // Each worker: its event loop and one sync thread (a worker may still be starting).
    const int threads = 2 * nginx.worker_processes();
    CHECK(eventually([&] { return nginx.worker_threads() == threads; }));
    // The stores' connections (two each today: loads and change notifications), once
    // every worker has settled: the same count twice, 300 ms apart, a multiple of workers.
    int clients = 0;
    CHECK(eventually(
        [&] {
          clients = redis_clients(redis);
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          return clients > 0 && clients % nginx.worker_processes() == 0 && redis_clients(redis) == clients;
        },
        std::chrono::seconds(10)));

    load_generator load(nginx.port(), "/test/index.html", 2);
    REQUIRE(load.wait_for(200));
    for (int i = 0; i < 5; ++i) {
      CAPTURE(i);
      if (i == 2) {
        // A configuration change rides along: 127.0.0.2 gets a static entry.
        nginx.write_config("grayroute_list 127.0.0.2;\n" + redis_directive(redis), kSeedLocation);
      }
      REQUIRE(nginx.reload());
      const long before = load.ok();
      REQUIRE(load.wait_for(before + 100));
    }
    load.stop();
    CAPTURE(load.first_failure());
    CHECK(load.failed() == 0);
    MESSAGE(load.ok(), " requests across 5 reloads, ", load.failed(), " failed");

    CHECK(consistently(nginx.port(), "this 8090\n", "127.0.0.2"));
    CHECK(eventually([&] { return nginx.worker_threads() == threads; }));
    CHECK(eventually([&] { return redis_clients(redis) == clients; }));
    CAPTURE(redis.cli({"CLIENT", "LIST"}));
    CHECK(nginx.error_log().find("[alert]") == std::string::npos);
  }

  TEST_CASE("nginx -t checks grayroute_redis without connecting to Redis") {
    temp_dir dir;
    redis_server redis(dir, {"foobared"});
    const auto connections = [&] {
      const std::string info = redis.cli({"INFO", "stats"});
      const std::size_t at = info.find("total_connections_received:");
      return at == std::string::npos ? -1 : std::atoi(info.c_str() + at + 27);
    };
    nginx_server nginx(dir, redis_directive(redis), kSeedLocation, nginx_server::options{{"this 8080", "this 8090"}, 2, false});
    const int before = connections();
    const auto result = nginx.test_config();
    CAPTURE(result.second);
    CHECK(result.first == 0);
    CHECK(connections() == before + 1);  // only the INFO asking
  }

  TEST_CASE("the hash schema routes to more than two upstreams") {
    temp_dir dir;
    redis_server redis(dir, {"foobared"});
    nginx_server nginx(dir,
                       "grayroute_routes production gray beta;\n" + redis_directive(redis, "schema=hash:grayroute:list"),
                       R"(
        location ^~ /test {
            grayroute_route client1 client2 client3;
            proxy_pass http://$grayroute_upstream;
        })",
                       nginx_server::options{{"this 8080", "this 8090", "this 8100"}, 2, true});
    CHECK(redis.cli({"HSET", "grayroute:list", "127.0.0.2", "beta", "127.0.0.0/29", "gray"}) == "2");
    CHECK(eventually([&] { return consistently(nginx.port(), "this 8100\n", "127.0.0.2"); }, std::chrono::seconds(2)));
    // Each worker syncs on its own: the requests above may all have met the one that
    // was first, so wait for the other workers too before asking it again.
    CHECK(eventually([&] { return consistently(nginx.port(), "this 8090\n", "127.0.0.3"); }, std::chrono::seconds(2)));
    CHECK(consistently(nginx.port(), "this 8080\n", "127.0.0.9"));
  }
}
