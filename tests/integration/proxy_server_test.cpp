// grayroute-proxy under way: large streamed bodies, list reloads under load, shutdown.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "../support/proxy_fixture.hpp"

using namespace grayroute::test;

namespace {

const std::vector<std::string> kTrustLoopback = {"--trusted-proxy", "127.0.0.1/32"};

std::vector<std::string> with(std::vector<std::string> args) {
  args.insert(args.end(), kTrustLoopback.begin(), kTrustLoopback.end());
  return args;
}

}  // namespace

TEST_SUITE("proxy streaming") {
  TEST_CASE("a large upload and a large chunked download stream through in flat memory") {
    temp_dir dir;
#if defined(__SANITIZE_ADDRESS__)
    // ASan keeps freed memory in quarantine (256 MiB by default), which would read as
    // growth: keep it small for the proxy so the check still means something.
    const char* asan = std::getenv("ASAN_OPTIONS");
    const std::string options = std::string(asan ? asan : "") + ":quarantine_size_mb=2";
    ::setenv("ASAN_OPTIONS", options.c_str(), 1);
    constexpr std::uint64_t kSize = 64ull << 20;  // sanitized builds move bytes slowly
#else
    constexpr std::uint64_t kSize = 256ull << 20;
#endif
    proxy_setup s(dir, with({"--access-log", "off"}));
    REQUIRE(http_get(s.port(), "/").status == 200);  // warm: threads, pools, first allocations
    const long before = memory_kib(s.front.pid(), "VmHWM");
    REQUIRE(before > 0);

    {
      http_connection c(s.port());
      REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(kSize) + "\r\n\r\n"));
      const std::string block(1 << 20, 'u');
      for (std::uint64_t sent = 0; sent < kSize; sent += block.size()) REQUIRE(c.send(block));
      const auto r = c.read_response();
      REQUIRE(r.status == 200);
      CHECK(header(r.headers, "X-Body-Bytes") == std::to_string(kSize));
    }
    {
      // Chunked both ways: the client sends chunks, the backend answers chunked.
      http_connection c(s.port());
      REQUIRE(c.send("POST /x?bytes=" + std::to_string(kSize) + "&chunked=1 HTTP/1.1\r\nHost: test\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"));
      const std::string chunk = "100000\r\n" + std::string(1 << 20, 'c') + "\r\n";
      for (int i = 0; i < 16; ++i) REQUIRE(c.send(chunk));
      REQUIRE(c.send("0\r\n\r\n"));
      const auto r = c.read_response(/*discard_body=*/true);
      REQUIRE(r.status == 200);
      CHECK(header(r.headers, "Transfer-Encoding") == "chunked");
      CHECK(header(r.headers, "X-Body-Bytes") == std::to_string(16u << 20));
      CHECK(c.body_bytes == kSize);
    }
    const long after = memory_kib(s.front.pid(), "VmHWM");
    MESSAGE("proxy peak RSS before " << before << " KiB, after " << (2 * kSize >> 20) << " MiB through: " << after << " KiB");
    CHECK(after - before < 16 * 1024);
  }

  TEST_CASE("Expect: 100-continue is answered by the proxy") {
    temp_dir dir;
    proxy_setup s(dir, kTrustLoopback);
    http_connection c(s.port());
    REQUIRE(c.send("PUT /up HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
    const auto interim = c.read_response();
    CHECK(interim.status == 100);
    REQUIRE(c.send("hello"));
    const auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(header(r.headers, "X-Body-Bytes") == "5");
  }
}

TEST_SUITE("proxy list reload") {
  TEST_CASE("rewriting the list file under load moves clients and fails no request") {
    temp_dir dir;
    dir.write("gray.txt", "# nobody yet\n");
    proxy_setup s(dir, with({"--gray-list-file", dir.file("gray.txt"), "--watch-interval", "50", "--access-log", "off"}));

    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, failed{0}, gray{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
      clients.emplace_back([&, t] {
        http_connection c(s.port());
        while (!stop) {
          // Half the clients keep their connection, half open one per request.
          http_reply r;
          if (t % 2 == 0) {
            if (!c.send(get_request("/", {{"X-Forwarded-For", "10.5.0.1"}}))) break;
            r = c.read_response();
          } else {
            r = http_get(s.port(), "/", {{"X-Forwarded-For", "10.5.0.1"}});
          }
          if (r.status != 200) {
            ++failed;
            if (t % 2 == 0) break;
            continue;
          }
          ++ok;
          if (header(r.headers, "X-Backend") == "gray") ++gray;
        }
      });
    }
    // Each rewrite waits until the proxy routes by it: the clients run all along.
    auto routed_to = [&](const char* backend) {
      return eventually([&] {
        return header(http_get(s.port(), "/", {{"X-Forwarded-For", "10.5.0.1"}}).headers, "X-Backend") == backend;
      });
    };
    for (int i = 0; i < 12; ++i) {
      dir.write("gray.txt", i % 2 == 0 ? "10.5.0.0/16\n" : "# empty again\n192.0.2.1\n");
      REQUIRE(routed_to(i % 2 == 0 ? "gray" : "production"));
    }
    // A bad file is refused and the previous list (10.5.0.0/16) stays.
    dir.write("gray.txt", "10.5.0.0/16\n");
    REQUIRE(eventually([&] { return header(http_get(s.port(), "/", {{"X-Forwarded-For", "10.5.0.1"}}).headers,
                                           "X-Backend") == "gray"; }));
    dir.write("gray.txt", "10.5.0.0/16\nnot-an-address\n");
    REQUIRE(eventually([&] { return s.front.log().find("line 2: \"not-an-address\"") != std::string::npos; }));
    stop = true;
    for (auto& t : clients) t.join();

    MESSAGE(ok.load() << " requests, " << gray.load() << " to gray");
    CHECK(failed == 0);
    CHECK(ok > 100);
    CHECK(gray > 0);
    CHECK(gray < ok);
    CHECK(header(http_get(s.port(), "/", {{"X-Forwarded-For", "10.5.0.1"}}).headers, "X-Backend") == "gray");
    CHECK(s.front.log().find("line 2: \"not-an-address\"") != std::string::npos);
    const auto health = http_get(s.port(), "/-/grayroute/health");
    CHECK(health.body.find("\"entries\":1") != std::string::npos);
    CHECK(health.body.find("not-an-address") != std::string::npos);
  }

  TEST_CASE("SIGHUP reloads the list file") {
    temp_dir dir;
    dir.write("gray.txt", "");
    proxy_setup s(dir, with({"--gray-list-file", dir.file("gray.txt"), "--watch-interval", "0"}));
    CHECK(header(http_get(s.port(), "/", {{"X-Forwarded-For", "10.5.0.1"}}).headers, "X-Backend") == "production");
    dir.write("gray.txt", "10.5.0.1\n");
    s.front.proc().signal(SIGHUP);
    CHECK(eventually([&] {
      return header(http_get(s.port(), "/", {{"X-Forwarded-For", "10.5.0.1"}}).headers, "X-Backend") == "gray";
    }));
    CHECK(s.front.log().find("gray list reloaded (SIGHUP)") != std::string::npos);
  }
}

TEST_SUITE("proxy shutdown") {
  TEST_CASE("SIGTERM lets an in-flight request finish, closes idle connections and exits") {
    temp_dir dir;
    proxy_setup s(dir, kTrustLoopback);
    http_connection idle(s.port());
    REQUIRE(idle.send(get_request("/")));
    REQUIRE(idle.read_response().status == 200);

    http_reply slow;
    std::thread in_flight([&] { slow = http_get(s.port(), "/?delay=1000", {}, std::chrono::seconds(10)); });
    REQUIRE(eventually([&] { return s.production.log().find("delaying /?delay=1000") != std::string::npos; }));
    const auto started = std::chrono::steady_clock::now();
    s.front.proc().signal(SIGTERM);

    CHECK(idle.closed_by_peer());  // the idle keep-alive connection is closed at once
    in_flight.join();
    CHECK(slow.status == 200);
    CHECK(header(slow.headers, "X-Backend") == "production");
    CHECK(eventually([&] { return !s.front.proc().running(); }, std::chrono::seconds(5)));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
    CHECK(!port_open(s.port()));
    CHECK(s.front.log().find("grayroute-proxy stopped") != std::string::npos);
  }
}

TEST_SUITE("proxy shutdown") {
  TEST_CASE("a request slower than --shutdown-timeout is cut and the proxy still exits") {
    temp_dir dir;
    proxy_setup s(dir, with({"--shutdown-timeout", "300"}));
    http_reply slow;
    std::thread in_flight([&] { slow = http_get(s.port(), "/?delay=3000", {}, std::chrono::seconds(10)); });
    REQUIRE(eventually([&] { return s.production.log().find("delaying /?delay=3000") != std::string::npos; }));
    const auto started = std::chrono::steady_clock::now();
    s.front.proc().signal(SIGTERM);
    CHECK(eventually([&] { return !s.front.proc().running(); }, std::chrono::seconds(3)));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    in_flight.join();
    CHECK(slow.status == 0);  // cut: no response
    CHECK(s.front.log().find("shutdown timeout") != std::string::npos);
  }
}

#if GRAYROUTE_PROXY_HAS_REDIS
TEST_SUITE("proxy redis") {
  TEST_CASE("--redis: the seed's SET ip ip moves a client, and the password never reaches the log") {
    temp_dir dir;
    redis_server redis(dir, {/*password=*/"s3cret-pass"});
    proxy_setup s(dir, with({"--redis", "127.0.0.1:" + std::to_string(redis.port()), "--redis-password",
                             "s3cret-pass"}));
    auto backend_of = [&](const char* client) {
      return header(http_get(s.port(), "/", {{"X-Forwarded-For", client}}).headers, "X-Backend");
    };
    CHECK(backend_of("203.0.113.9") == "production");
    CHECK(redis.cli({"SET", "203.0.113.9", "203.0.113.9"}) == "OK");
    CHECK(eventually([&] { return backend_of("203.0.113.9") == "gray"; }));
    CHECK(backend_of("203.0.113.10") == "production");

    auto health = http_get(s.port(), "/-/grayroute/health").body;
    CHECK(health.find("\"status\":\"ok\"") != std::string::npos);
    CHECK(health.find("\"redis_connected\":true") != std::string::npos);
    CHECK(health.find("\"entries\":1") != std::string::npos);

    // Redis down: the last list keeps answering, health says so.
    redis.kill_now();
    CHECK(backend_of("203.0.113.9") == "gray");
    CHECK(eventually([&] {
      return http_get(s.port(), "/-/grayroute/health").body.find("\"redis_connected\":false") != std::string::npos;
    }));
    health = http_get(s.port(), "/-/grayroute/health").body;
    CHECK(health.find("\"status\":\"degraded\",\"reason\":\"redis: disconnected, serving the last list") !=
          std::string::npos);
    CHECK(health.find("s3cret-pass") == std::string::npos);
    CHECK(s.front.log().find("s3cret-pass") == std::string::npos);
    CHECK(s.front.log().find("redis://:***@127.0.0.1") != std::string::npos);
  }
}
#endif
