// The nginx module's route health (issue 12): a shared-memory zone read and written by
// both workers, the log-phase recorder, fallback, half-open recovery and the Prometheus
// page read by prometheus_client's parser. Real nginx (2 workers, reuseport so the kernel
// spreads connections over both) and real nginx backends on loopback.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/nginx.hpp"
#include "../support/process.hpp"

using namespace grayroute::test;

namespace {

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A port held for the test's life by a socket bound to it with SO_REUSEPORT that never
// listens: nginx's `reuseport` listeners (same user) join it, and no free_port() (a plain
// bind to port 0), in this process or another, is given it. Without it, two tests running
// at once could draw the same port and both nginx bind it - reuseport allows that - and a
// later free_port() of this test could return it again: one nginx then merges the two
// `listen`s into one socket (virtual servers) and the gray upstream reaches a production
// backend. No error anywhere either way (seen 5 times in some 900 runs under load).
class reserved_port {
 public:
  reserved_port() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    const int on = 1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    if (fd_ < 0 || ::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
      if (fd_ >= 0) ::close(fd_);
      throw std::runtime_error("reserved_port: cannot bind a port on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
  }
  reserved_port(const reserved_port&) = delete;
  reserved_port& operator=(const reserved_port&) = delete;
  ~reserved_port() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// A gray backend that answers 500 while the file `gray_broken` exists, a front server on
// its own port (reuseport: one listening socket per worker) routing listed 127.0.0.2 to it.
struct health_setup {
  temp_dir dir;
  reserved_port front_port, gray_port;
  int front = front_port.port();
  int gray = gray_port.port();  // where no server listens, connections are refused

  std::string http_extra(const std::string& health_directive, const std::string& route_location = "") const {
    std::ostringstream c;
    c << "grayroute_list 127.0.0.2;\n" << health_directive << "\n"
      << "upstream graybox { server 127.0.0.1:" << gray << "; }\n"
      << "server { listen 127.0.0.1:" << gray << " reuseport; location / { if (-f " << dir.file("gray_broken")
      << ") { return 500 \"broken\\n\"; } return 200 \"gray ok\\n\"; } }\n"
      << "server {\n  listen 127.0.0.1:" << front << " reuseport;\n"
      << "  proxy_http_version 1.1;\n  proxy_set_header Connection \"\";\n"
      << (route_location.empty() ? R"(
  location / {
      grayroute_route client1 graybox;
      add_header X-Grayroute "$grayroute_route $grayroute_reason" always;
      add_header X-Worker $pid always;
      proxy_pass http://$grayroute_upstream;
  })"
                                 : route_location)
      << R"(
  location = /-/grayroute/metrics { grayroute_metrics; add_header X-Worker $pid always; }
  location = /-/grayroute/status { grayroute_status; }
})";
    return c.str();
  }

  // The page, parsed by prometheus_client: sample line -> value; the worker that served it.
  std::map<std::string, double> metrics(std::string* worker = nullptr) const {
    const http_reply page = http_get(front, "/-/grayroute/metrics");
    REQUIRE(page.status == 200);
    if (worker) *worker = header_value(page, "X-Worker");
    dir.write("metrics.txt", page.body);
    const auto [status, out] = run_command(std::string(GRAYROUTE_TEST_PYTHON3) + " " + GRAYROUTE_METRICS_SAMPLES + " " +
                                           dir.file("metrics.txt"));
    REQUIRE_MESSAGE(status == 0, out);
    std::map<std::string, double> samples;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      const std::size_t space = line.rfind(' ');
      if (line.empty() || line[0] == '#' || space == std::string::npos) continue;
      samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    REQUIRE(!samples.empty());
    return samples;
  }
};

std::string outcomes(const std::string& route, const std::string& outcome) {
  return "grayroute_upstream_outcomes_total{outcome=\"" + outcome + "\",route=\"" + route + "\"}";
}
std::string transitions(const std::string& route, const std::string& to) {
  return "grayroute_breaker_transitions_total{route=\"" + route + "\",to=\"" + to + "\"}";
}
std::string requests(const std::string& route, const std::string& reason, const std::string& status_class) {
  return "grayroute_requests_total{reason=\"" + reason + "\",route=\"" + route + "\",status_class=\"" + status_class + "\"}";
}
std::string state(const std::string& route, const std::string& s) {
  return "grayroute_breaker_state{route=\"" + route + "\",state=\"" + s + "\"}";
}

// A location over production, gray and beta (beta on the broken backend) whose rule
// beta-users sends X-Beta: 1 to beta; `more` adds words to that rule.
std::string beta_location(const std::string& more) {
  return R"(
  location / {
      grayroute_routes production gray beta;
      grayroute_route production=client1 gray=client2 beta=graybox;
      grayroute_rule beta-users header:X-Beta=1 route=beta)" +
         more + R"(;
      add_header X-Grayroute "$grayroute_route $grayroute_reason $grayroute_rule" always;
      proxy_pass http://$grayroute_upstream;
  })";
}

}  // namespace

TEST_SUITE("nginx route health") {
  TEST_CASE("gray answering 500 under load: every worker falls back to production, each outcome counted once") {
    health_setup s;
    s.dir.write("gray_broken", "");
    nginx_server nginx(s.dir, s.http_extra("grayroute_health zone=gr_test:256k error_ratio=50% min_requests=20 window=10s cooldown=60s;"), "");
    REQUIRE(wait_for_port(s.front));

    constexpr int kThreads = 4;
    std::atomic<bool> stop{false};
    std::atomic<int> fallbacks{0};
    std::mutex mutex;
    int gray_errors = 0, others = 0, errors_after_fallback = 0;
    std::set<std::string> fallback_workers;
    std::string first_other;
    std::vector<std::thread> clients;
    for (int t = 0; t < kThreads; ++t) {
      clients.emplace_back([&] {
        bool saw_fallback = false;
        for (int i = 0; i < 5000 && !stop.load(); ++i) {
          const http_reply r = http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2");
          const std::string why = header_value(r, "X-Grayroute");
          std::lock_guard<std::mutex> lock(mutex);
          if (r.status == 500 && why == "gray list") {
            ++gray_errors;
            if (saw_fallback) ++errors_after_fallback;
          } else if (r.status == 200 && r.body == "this 8080\n" && why == "production fallback") {
            saw_fallback = true;
            fallback_workers.insert(header_value(r, "X-Worker"));
            fallbacks.fetch_add(1);
          } else {
            if (others++ == 0) first_other = std::to_string(r.status) + " " + why + " " + r.body;
          }
        }
      });
    }
    CHECK(eventually([&] { return fallbacks.load() >= 200; }, std::chrono::seconds(60)));
    stop.store(true);
    for (auto& c : clients) c.join();

    CHECK_MESSAGE(others == 0, first_other);
    // The breaker opens at the 20th outcome (all errors); decisions already in flight then
    // still reach gray, at most one per client thread.
    CHECK(gray_errors >= 20);
    CHECK(gray_errors <= 20 + kThreads);
    CHECK(errors_after_fallback == 0);  // open for the whole cool-down
    CHECK(fallback_workers.size() == 2);  // both workers read the one shared breaker

    // Each request counted once, summed over both workers: exactly what the clients saw.
    const auto m = s.metrics();
    CHECK(m.at(outcomes("gray", "status_5xx")) == gray_errors);
    CHECK(m.at(outcomes("gray", "success")) == 0);
    CHECK(m.at(outcomes("production", "success")) == fallbacks.load());
    CHECK(m.at(requests("gray", "list", "5xx")) == gray_errors);
    CHECK(m.at(requests("production", "fallback", "2xx")) == fallbacks.load());
    CHECK(m.count(requests("gray", "list", "2xx")) == 0);  // a sparse family
    CHECK(m.at(transitions("gray", "open")) == 1);
    CHECK(m.at(state("gray", "open")) == 1);
    CHECK(m.at(state("production", "closed")) == 1);
    CHECK(http_get(s.front, "/-/grayroute/status").body.find("{\"route\":\"gray\",\"state\":\"open\",") !=
          std::string::npos);
    // One log line for the one change, by the worker that made it.
    const std::string log = nginx.error_log();
    CHECK(count_of(log, "route \"gray\" closed -> open (error_ratio)") == 1);
    CHECK(count_of(log, "-> open") == 1);
  }

  TEST_CASE("a recovered gray goes half_open, lets a share through, then closes") {
    health_setup s;
    s.dir.write("gray_broken", "");
    nginx_server nginx(s.dir, s.http_extra("grayroute_health error_ratio=50% min_requests=10 window=2s cooldown=3s "
                                           "probe=50% probe_successes=3;"),
                       "");
    REQUIRE(wait_for_port(s.front));
    auto ask = [&] { return header_value(http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2"), "X-Grayroute"); };

    REQUIRE(eventually([&] { return ask() == "production fallback"; }, std::chrono::seconds(20)));
    ::unlink(s.dir.file("gray_broken").c_str());

    // Half-open lets every second decision probe gray; three successes close it, and from
    // then on every request goes gray.
    int fallbacks = 0, grays = 0, grays_in_a_row = 0;
    REQUIRE(eventually(
        [&] {
          const std::string why = ask();
          if (why == "gray list") {
            ++grays;
            ++grays_in_a_row;
          } else {
            if (why == "production fallback") ++fallbacks;
            grays_in_a_row = 0;
          }
          return grays_in_a_row >= 10;
        },
        std::chrono::seconds(30)));
    CHECK(fallbacks >= 1);       // the cool-down and the half-open share that fell back
    CHECK(grays - 10 >= 2);      // the probes before the breaker closed

    const auto m = s.metrics();
    CHECK(m.at(state("gray", "closed")) == 1);
    CHECK(m.at(transitions("gray", "closed")) == 1);
    CHECK(m.at(transitions("gray", "half_open")) >= 1);
    CHECK(m.at(transitions("gray", "open")) == m.at(transitions("gray", "half_open")));
    const std::string log = nginx.error_log();
    const std::size_t opened = log.rfind("route \"gray\" closed -> open");
    const std::size_t half_open = log.rfind("route \"gray\" open -> half_open (cooldown_elapsed)");
    const std::size_t closed = log.rfind("route \"gray\" half_open -> closed (probes_succeeded)");
    REQUIRE(opened != std::string::npos);
    REQUIRE(half_open != std::string::npos);
    REQUIRE(closed != std::string::npos);
    CHECK(opened < half_open);
    CHECK(half_open < closed);
    CHECK(count_of(log, "-> closed") == 1);
  }

  TEST_CASE("on by default: the metrics page of either worker sums both") {
    health_setup s;
    nginx_server nginx(s.dir, s.http_extra(""), "");  // no grayroute_health: the default zone
    REQUIRE(wait_for_port(s.front));
    for (int i = 0; i < 60; ++i) REQUIRE(http_get(s.front, "/").body == "this 8080\n");
    for (int i = 0; i < 40; ++i) REQUIRE(http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2").body == "gray ok\n");

    std::set<std::string> workers;
    for (int i = 0; i < 40 && workers.size() < 2; ++i) {
      std::string worker;
      const auto m = s.metrics(&worker);
      workers.insert(worker);
      CHECK(m.at(outcomes("production", "success")) == 60);
      CHECK(m.at(outcomes("gray", "success")) == 40);
      CHECK(m.at("grayroute_upstream_duration_seconds_count{route=\"production\"}") == 60);
      CHECK(m.at("grayroute_upstream_duration_seconds_bucket{le=\"+Inf\",route=\"gray\"}") == 40);
      CHECK(m.at("grayroute_health_window_outcomes{route=\"gray\"}") == 40);
      CHECK(m.at(state("gray", "closed")) == 1);
      CHECK(m.at(requests("production", "default", "2xx")) == 60);
      CHECK(m.at(requests("gray", "list", "2xx")) == 40);
    }
    CHECK(workers.size() == 2);
    CHECK(nginx.error_log().find("grayroute_health") == std::string::npos);
  }

  TEST_CASE("with error_page the failed request is retried on production; the breaker counts gray's failures only") {
    health_setup s;  // nothing listens on s.gray in this case: every connection is refused
    nginx_server nginx(s.dir, "grayroute_list 127.0.0.2;\ngrayroute_health cooldown=60s;\n"
                       "upstream graybox { server 127.0.0.1:" + std::to_string(s.gray) + "; }\n"
                       "server { listen 127.0.0.1:" + std::to_string(s.front) + R"( reuseport;
  location / {
      grayroute_route client1 graybox;
      proxy_pass http://$grayroute_upstream;
      error_page 502 504 = @production;
  }
  location @production { proxy_pass http://client1; }
  location = /-/grayroute/metrics { grayroute_metrics; }
})",
                       "");
    REQUIRE(wait_for_port(s.front));
    for (int i = 0; i < 10; ++i) {
      const http_reply r = http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2");
      CHECK(r.status == 200);
      CHECK(r.body == "this 8080\n");
    }
    const auto m = s.metrics();
    CHECK(m.at(outcomes("gray", "connect_failure")) == 3);  // the default: open after 3 in a row
    CHECK(m.at(state("gray", "open")) == 1);
    CHECK(m.at(outcomes("production", "success")) == 7);  // the fallbacks; the retries decided nothing
    // The client got 200 for all ten: three via the retry (counted under gray, the route
    // the decision chose), seven by fallback.
    CHECK(m.at(requests("gray", "list", "2xx")) == 3);
    CHECK(m.at(requests("production", "fallback", "2xx")) == 7);
    CHECK(count_of(nginx.error_log(), "route \"gray\" closed -> open (connect_failures)") == 1);
  }

  TEST_CASE("a request that sends no response header has its outcome counted once it is finished") {
    health_setup s;  // nothing listens on s.gray: refused; the error_page location closes the connection
    nginx_server nginx(s.dir, "grayroute_list 127.0.0.2;\ngrayroute_health cooldown=60s;\n"
                       "upstream graybox { server 127.0.0.1:" + std::to_string(s.gray) + "; }\n"
                       "server { listen 127.0.0.1:" + std::to_string(s.front) + R"( reuseport;
  location / { grayroute_route client1 graybox; proxy_pass http://$grayroute_upstream; error_page 502 = @closed; }
  location @closed { return 444; }
  location = /-/grayroute/metrics { grayroute_metrics; }
})",
                       "");
    REQUIRE(wait_for_port(s.front));
    // No header goes out, so the log phase records the outcome, after the connection is
    // closed: each step waits for the page to show the previous one.
    for (int i = 1; i <= 3; ++i) {
      CHECK(http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2").status == 0);
      CHECK(eventually([&] { return s.metrics().at(outcomes("gray", "connect_failure")) == i; }));
    }
    const http_reply r = http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2");
    CHECK(r.status == 200);
    CHECK(r.body == "this 8080\n");
    const auto m = s.metrics();
    CHECK(m.at(outcomes("gray", "connect_failure")) == 3);  // once each, not by the header filter too
    CHECK(m.at(state("gray", "open")) == 1);
    CHECK(m.at(outcomes("production", "success")) == 1);
  }

  TEST_CASE("a gray that accepts but never answers is counted as timeouts (504 made by nginx)") {
    health_setup s;
    // A listening socket nobody accepts from: the kernel completes the handshake, nginx
    // sends the request, no byte ever comes back.
    const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(silent, 64) == 0);
    socklen_t length = sizeof addr;
    ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &length);
    nginx_server nginx(s.dir, "grayroute_list 127.0.0.2;\ngrayroute_health cooldown=60s;\n"
                       "upstream graybox { server 127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "; }\n"
                       "server { listen 127.0.0.1:" + std::to_string(s.front) + R"( reuseport;
  location / { grayroute_route client1 graybox; proxy_read_timeout 200ms; proxy_pass http://$grayroute_upstream; }
  location = /-/grayroute/metrics { grayroute_metrics; }
})",
                       "");
    REQUIRE(wait_for_port(s.front));
    for (int i = 0; i < 3; ++i) CHECK(http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2").status == 504);
    const auto m = s.metrics();
    CHECK(m.at(outcomes("gray", "timeout")) == 3);
    CHECK(m.at(outcomes("gray", "connect_failure")) == 0);
    CHECK(m.at("grayroute_health_window_errors{route=\"gray\"}") == 3);
    CHECK(m.at(state("gray", "closed")) == 1);  // timeouts count toward the ratio, not the connect-failure run
    ::close(silent);
  }

  TEST_CASE("grayroute_health off: failures surface, and are still counted") {
    health_setup s;
    s.dir.write("gray_broken", "");
    nginx_server nginx(s.dir, s.http_extra("grayroute_health off min_requests=3;"), "");
    REQUIRE(wait_for_port(s.front));
    for (int i = 0; i < 10; ++i) {
      const http_reply r = http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2");
      CHECK(r.status == 500);
      CHECK(header_value(r, "X-Grayroute") == "gray list");
    }
    const auto m = s.metrics();
    CHECK(m.at(outcomes("gray", "status_5xx")) == 10);
    CHECK(m.at(state("gray", "closed")) == 1);
    CHECK(m.at(transitions("gray", "open")) == 0);
  }

  TEST_CASE("a route only a location's policy names has its breaker; its fallback keeps the rule") {
    health_setup s;
    s.dir.write("gray_broken", "");
    nginx_server nginx(s.dir, s.http_extra("grayroute_health min_requests=3 cooldown=60s;", beta_location("")),
                       "");
    REQUIRE(wait_for_port(s.front));
    const std::vector<std::pair<std::string, std::string>> beta{{"X-Beta", "1"}};
    for (int i = 0; i < 3; ++i) {
      const http_reply r = http_get(s.front, "/", beta);
      CHECK(r.status == 500);
      CHECK(header_value(r, "X-Grayroute") == "beta match beta-users");
    }
    const http_reply r = http_get(s.front, "/", beta);
    CHECK(r.status == 200);
    CHECK(r.body == "this 8080\n");
    CHECK(header_value(r, "X-Grayroute") == "production fallback beta-users");
    // The listed client's gray is another route, still closed.
    CHECK(header_value(http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2"), "X-Grayroute") == "gray list list");
    const auto m = s.metrics();
    CHECK(m.at(outcomes("beta", "status_5xx")) == 3);
    CHECK(m.at(state("beta", "open")) == 1);
    CHECK(m.at(state("gray", "closed")) == 1);
    CHECK(m.at(requests("production", "fallback", "2xx")) == 1);
    const std::string status = http_get(s.front, "/-/grayroute/status").body;
    CHECK(status.find("\"routes\":[\"production\",\"gray\",\"beta\"]") != std::string::npos);
    CHECK(status.find("{\"route\":\"beta\",\"state\":\"open\"") != std::string::npos);
  }

  TEST_CASE("a rule's fallback= names where its decisions go when their route is open") {
    health_setup s;
    s.dir.write("gray_broken", "");
    nginx_server nginx(s.dir, s.http_extra("grayroute_health min_requests=3 cooldown=60s;", beta_location(" fallback=gray")),
                       "");
    REQUIRE(wait_for_port(s.front));
    const std::vector<std::pair<std::string, std::string>> beta{{"X-Beta", "1"}};
    for (int i = 0; i < 3; ++i) CHECK(header_value(http_get(s.front, "/", beta), "X-Grayroute") == "beta match beta-users");
    const http_reply r = http_get(s.front, "/", beta);
    CHECK(r.status == 200);
    CHECK(header_value(r, "X-Grayroute") == "gray fallback beta-users");
    const auto m = s.metrics();
    CHECK(m.at(state("beta", "open")) == 1);
    CHECK(m.at(requests("gray", "fallback", "2xx")) == 1);
    const std::string to_production = requests("production", "fallback", "2xx");
    CHECK((m.count(to_production) == 0 || m.at(to_production) == 0));
  }

  TEST_CASE("a reload keeps the zone: an open breaker stays open in the new workers") {
    health_setup s;
    s.dir.write("gray_broken", "");
    const std::string health = "grayroute_health zone=gr_reload:256k min_requests=3 cooldown=60s;";
    nginx_server nginx(s.dir, s.http_extra(health), "");
    REQUIRE(wait_for_port(s.front));
    for (int i = 0; i < 3; ++i) CHECK(http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2").status == 500);
    REQUIRE(nginx.reload());
    const http_reply r = http_get(s.front, "/", {}, std::chrono::seconds(5), "127.0.0.2");
    CHECK(header_value(r, "X-Grayroute") == "production fallback");
    const auto m = s.metrics();
    CHECK(m.at(state("gray", "open")) == 1);
    CHECK(m.at(outcomes("gray", "status_5xx")) == 3);
    CHECK(m.at(transitions("gray", "open")) == 1);
  }

  TEST_CASE("nginx -t names a bad grayroute_health word and its line") {
    health_setup s;
    nginx_server::options o;
    o.start = false;
    nginx_server nginx(s.dir, "grayroute_health error_ratio=150% window=10;", "location / { grayroute_route client1 client2; proxy_pass http://$grayroute_upstream; }", o);
    const auto [status, out] = nginx.test_config();
    CHECK(status != 0);
    CHECK(out.find("health: \"window=10\": not a duration") != std::string::npos);
    CHECK(out.find("nginx.conf:") != std::string::npos);

    nginx.write_config("grayroute_health zone=tiny:4k;", "location / { grayroute_route client1 client2; proxy_pass http://$grayroute_upstream; }");
    const auto [status2, out2] = nginx.test_config();
    CHECK(status2 != 0);
    CHECK(out2.find("zone \"tiny\" is too small") != std::string::npos);
  }
}
