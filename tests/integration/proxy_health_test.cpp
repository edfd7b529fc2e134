// grayroute-proxy when the gray version fails (issue #12): real proxy and backend
// processes on loopback. The breaker's figures are read from the log lines it prints
// once per change and from /-/grayroute/metrics, parsed by prometheus_client's parser
// (tests/health_metrics_check.py --page).
#include <doctest/doctest.h>

#include <chrono>
#include <sys/wait.h>

#include <csignal>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <grayroute/decision_token.hpp>
#include <grayroute/version.hpp>

#include "../support/byte_upstream.hpp"
#include "../support/proxy_fixture.hpp"

using namespace grayroute::test;

namespace {

const std::pair<std::string, std::string> kListed{"X-Forwarded-For", "10.1.2.3"};
const std::pair<std::string, std::string> kUnlisted{"X-Forwarded-For", "192.0.2.1"};

std::vector<std::string> with_routing(std::vector<std::string> args) {
  args.insert(args.end(), {"--gray-list", "10.1.0.0/16", "--trusted-proxy", "127.0.0.1/32", "--access-log", "-"});
  return args;
}

// Runs health_metrics_check.py on the proxy's metrics page; "" when every expectation
// holds, else the checker's complaint.
std::string check_metrics(const temp_dir& dir, int proxy_port, const std::vector<std::string>& expectations) {
  const auto page = http_get(proxy_port, "/-/grayroute/metrics");
  if (page.status != 200) return "metrics page: status " + std::to_string(page.status);
  if (header(page.headers, "Content-Type") != "text/plain; version=0.0.4; charset=utf-8") return "content type";
  const std::string file = dir.file("metrics.txt"), out = dir.file("metrics-check.txt");
  std::ofstream(file) << page.body;
  std::string command = std::string(GRAYROUTE_PYTHON3) + " " + GRAYROUTE_METRICS_CHECK + " --page " + file;
  for (const auto& e : expectations) command += " '" + e + "'";
  command += " >" + out + " 2>&1";
  if (std::system(command.c_str()) == 0) return "";
  std::ifstream in(out);
  return std::string(std::istreambuf_iterator<char>(in), {}) + "\n--- page:\n" + page.body;
}

// Sends `request` on `c` and reads the answer.
http_reply ask(http_connection& c, const std::string& request) {
  REQUIRE(c.send(request));
  return c.read_response();
}

// `request` on a connection of its own.
http_reply ask_once(int port, const std::string& request) {
  http_connection c(port);
  return ask(c, request);
}

// "200 production (production; reason=fallback; rule=list)": status, X-Backend and X-Grayroute.
std::string served(const http_reply& r) {
  return std::to_string(r.status) + " " + header(r.headers, "X-Backend") + " (" + header(r.headers, "X-Grayroute") + ")";
}

std::string listed_post(const std::string& path) {
  return "POST " + path + " HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.1.2.3\r\nContent-Length: 5\r\n\r\nhello";
}

std::string count_of(const backend& b, const std::string& method) {
  return http_get(b.port(), "/-/requests?method=" + method).body;
}

// The value of header `name` as the backend's /echo saw it (its body: "Name: value\n" each).
std::string echoed(const std::string& body, const std::string& name) {
  const std::string key = "\n" + name + ": ";
  const std::size_t at = body.find(key);
  if (at == std::string::npos) return "";
  const std::size_t from = at + key.size();
  return body.substr(from, body.find('\n', from) - from);
}

}  // namespace

TEST_SUITE("proxy route health") {
  TEST_CASE("gray killed: a listed client's GETs never fail, the breaker opens after 3 connect failures, a probe brings gray back") {
    temp_dir dir;
    const std::string probe = "route=gray path=/healthz interval=200ms expect=200";
    proxy_setup s(dir, with_routing({"--health", "connect_failures=3 cooldown=300ms probe_successes=1", "--probe", probe}));
    http_connection c(s.port());
    REQUIRE(served(ask(c, get_request("/", {kListed}))) == "200 gray (gray; reason=list; rule=list)");
    const int gray_port = s.gray.port();

    // Killed with a GET in flight: the proxy sees the connection end before any response
    // byte and sends the GET to production instead.
    std::string in_flight;
    std::thread client([&] {
      http_connection other(s.port());
      in_flight = served(ask(other, get_request("/?delay=200", {kListed})));
    });
    const bool delayed = eventually([&] { return s.gray.log().find("delaying /?delay=200") != std::string::npos; });
    s.gray.stop();
    client.join();
    REQUIRE(delayed);
    CHECK(in_flight == "200 production (production; reason=fallback; rule=list)");
    int ok = 0;
    for (int i = 0; i < 20; ++i) {
      const auto answer = served(ask(c, get_request("/", {kListed})));
      ok += answer == "200 production (production; reason=fallback; rule=list)";
      CHECK(answer == "200 production (production; reason=fallback; rule=list)");
    }
    CHECK(ok == 20);  // and the one in flight: no failed request
    CHECK(s.front.log().find("status=502") == std::string::npos);
    CHECK(s.front.log().find("route=production reason=fallback original_route=gray status=200") != std::string::npos);
    REQUIRE(eventually([&] { return s.front.log().find("health: route gray closed -> open") != std::string::npos; }));
    CHECK(s.front.log().find("health: route gray closed -> open (connect_failures): 3 connect failures in a row") !=
          std::string::npos);
    REQUIRE(eventually([&] { return s.front.log().find("probe gray GET /healthz: failing (connect_failure") != std::string::npos; }));
    CHECK(check_metrics(dir, s.port(),
                        {R"(grayroute_breaker_transitions_total{route="gray",to="open"}>=1)",
                         R"(grayroute_upstream_outcomes_total{route="gray",outcome="connect_failure"}>=3)",
                         R"(grayroute_requests_total{route="production",reason="fallback",status_class="2xx"}=21)",
                         R"(grayroute_requests_total{route="production",reason="fallback",status_class="5xx"}=0)",
                         R"(grayroute_requests_total{route="gray",reason="list",status_class="2xx"}=1)",
                         R"(grayroute_fallback_retries_total{route="gray"}>=1)",
                         R"(grayroute_probes_total{route="gray",result="failure"}>=1)",
                         R"(grayroute_info{version=")" GRAYROUTE_VERSION_STRING R"("}=1)",
                         R"(grayroute_list_entries{list="list",source="flags"}=1)"}) == "");

    // Restarted, with no live traffic: the probe's success closes the breaker within
    // the cool-down plus one probe interval (0.5 s here), and the next GET is gray's.
    // Counted from when gray listens: starting the backend process is not the proxy's
    // time (it took up to 3 s on a loaded machine, while the proxy took < 0.5 s).
    const auto spawned = std::chrono::steady_clock::now();
    backend gray(dir, "gray", gray_port);
    const auto listening = std::chrono::steady_clock::now();
    REQUIRE(eventually([&] { return s.front.log().find("half_open -> closed (probes_succeeded)") != std::string::npos; }));
    auto ms = [](std::chrono::steady_clock::duration d) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(d);
    };
    const auto back_ms = ms(std::chrono::steady_clock::now() - listening);
    MESSAGE("gray closed again " << back_ms.count() << " ms after it listened again (cool-down 300 ms + probe interval "
                                 << "200 ms; its process took " << ms(listening - spawned).count() << " ms to start)");
    CHECK_MESSAGE(back_ms < std::chrono::milliseconds(300 + 200 + 2000), s.front.log());  // slack for a loaded machine
    CHECK(served(ask(c, get_request("/", {kListed}))) == "200 gray (gray; reason=list; rule=list)");
  }

  TEST_CASE("a request gray took and reset: a GET is retried on production, a POST is not replayed") {
    temp_dir dir;
    proxy_setup s(dir, with_routing({"--health", "connect_failures=10"}));
    http_connection c(s.port());

    CHECK(served(ask(c, get_request("/?reset=gray", {kListed}))) == "200 production (production; reason=fallback; rule=list)");
    CHECK(count_of(s.gray, "GET") == "1\n");
    CHECK(count_of(s.production, "GET") == "1\n");

    http_connection post(s.port());
    CHECK(served(ask(post, listed_post("/order?reset=gray"))) == "502  (gray; reason=list; rule=list)");
    CHECK(count_of(s.gray, "POST") == "1\n");        // gray took it ...
    CHECK(count_of(s.production, "POST") == "0\n");  // ... and nobody got it twice

    // A POST to a gray that refuses connections was never sent: production serves it, once.
    s.gray.stop();
    http_connection refused(s.port());
    CHECK(served(ask(refused, listed_post("/order"))) == "200 production (production; reason=fallback; rule=list)");
    CHECK(count_of(s.production, "POST") == "1\n");
  }

  // The retry is prepared for the server it goes to: an HTTP/1.0 GET without Host gets
  // the authority of the upstream that receives it (production's, not gray's), and the
  // decision token for the tier behind names the route that served (production, fallback).
  TEST_CASE("a GET retried on production carries production's Host and a token of the fallback decision") {
    temp_dir dir;
    dir.write("k", "000102030405060708090a0b0c0d0e0f\n");
    backend production(dir, "production");
    byte_upstream gray([](const std::string&, int) { return upstream_reply{"", true}; });  // closes, no byte back
    proxy p(dir, production.port(), gray.port(),
            with_routing({"--health", "connect_failures=10", "--decision-key-file", dir.file("k")}));
    const http_reply r = ask_once(p.port(), "GET /echo HTTP/1.0\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n");
    CHECK(served(r) == "200 production (production; reason=fallback; rule=list)");
    REQUIRE(gray.connections() == 1);
    const std::string sent_to_gray = gray.received(0);
    CHECK(sent_to_gray.find("\r\nHost: 127.0.0.1:" + std::to_string(gray.port()) + "\r\n") != std::string::npos);
    CHECK_MESSAGE(echoed(r.body, "Host") == "127.0.0.1:" + std::to_string(production.port()), r.body);
    const std::string token = echoed(r.body, "Grayroute-Decision");
    const auto v = grayroute::verify_decision_token(token, grayroute::parse_decision_keys("000102030405060708090a0b0c0d0e0f", "k"),
                                                    grayroute::route_table(), static_cast<std::int64_t>(std::time(nullptr)));
    REQUIRE_MESSAGE(v.status == grayroute::token_status::valid, token);
    CHECK(v.claims.route == "production");
    CHECK(v.claims.reason == grayroute::route_reason::fallback);
    CHECK(v.claims.rule == "list");
  }

  TEST_CASE("gray answering 500 while production is healthy opens by error ratio") {
    temp_dir dir;
    backend production(dir, "production");
    backend gray(dir, "gray", 0, {"--status", "500"});
    proxy p(dir, production.port(), gray.port(),
            with_routing({"--health", "error_ratio=50% min_requests=10 window=10s connect_failures=0"}));
    http_connection c(p.port());
    for (int i = 0; i < 10; ++i) {
      CHECK(served(ask(c, get_request("/", {kUnlisted}))) == "200 production (production; reason=default)");
      // An answer: the client sees it, nothing is retried.
      CHECK(served(ask(c, get_request("/", {kListed}))) == "500 gray (gray; reason=list; rule=list)");
    }
    // The 10th 500 made the window 10 of 10: open. The next listed GET is production's.
    CHECK(p.log().find("health: route gray closed -> open (error_ratio): window 10 outcomes, 10 errors (100.0%)") !=
          std::string::npos);
    CHECK(served(ask(c, get_request("/", {kListed}))) == "200 production (production; reason=fallback; rule=list)");
    CHECK(check_metrics(dir, p.port(),
                        {R"(grayroute_breaker_state{route="gray",state="open"}=1)",
                         R"(grayroute_upstream_outcomes_total{route="gray",outcome="status_5xx"}=10)",
                         R"(grayroute_requests_total{route="gray",reason="list",status_class="5xx"}=10)",
                         R"(grayroute_requests_total{route="production",reason="fallback",status_class="2xx"}=1)",
                         R"(grayroute_fallback_retries_total{route="gray"}=0)"}) == "");
    const std::string health = http_get(p.port(), "/-/grayroute/health").body;
    CHECK(health.find(R"("routes":{"production":{"state":"closed")") != std::string::npos);
    CHECK(health.find(R"("gray":{"state":"open","since_ms":)") != std::string::npos);
    CHECK(health.find(R"("window_outcomes":10,"window_errors":10,"error_ratio":1.0,"connect_failures_in_row":0}}})") !=
          std::string::npos);
  }

  TEST_CASE("gray and production both answering 500: relative mode keeps gray closed") {
    temp_dir dir;
    backend production(dir, "production", 0, {"--status", "500"});
    backend gray(dir, "gray", 0, {"--status", "500"});
    proxy p(dir, production.port(), gray.port(),
            with_routing({"--health", "error_ratio=50% min_requests=10 window=10s relative_margin=20%"}));
    http_connection c(p.port());
    for (int i = 0; i < 10; ++i) {
      CHECK(served(ask(c, get_request("/", {kUnlisted}))) == "500 production (production; reason=default)");
    }
    for (int i = 0; i < 30; ++i) CHECK(served(ask(c, get_request("/", {kListed}))) == "500 gray (gray; reason=list; rule=list)");
    // (production's own breaker may open: nothing falls back from the first route.)
    CHECK(p.log().find("health: route gray") == std::string::npos);
    CHECK(check_metrics(dir, p.port(),
                        {R"(grayroute_breaker_state{route="gray",state="closed"}=1)",
                         R"(grayroute_breaker_transitions_total{route="gray",to="open"}=0)",
                         R"(grayroute_upstream_outcomes_total{route="gray",outcome="status_5xx"}=30)",
                         R"(grayroute_upstream_outcomes_total{route="production",outcome="status_5xx"}=10)"}) == "");
  }

  TEST_CASE("--health off: failures surface, outcomes are still counted") {
    temp_dir dir;
    proxy_setup s(dir, with_routing({"--health", "off"}));
    s.gray.stop();
    http_connection c(s.port());
    for (int i = 0; i < 5; ++i) CHECK(served(ask(c, get_request("/", {kListed}))) == "502  (gray; reason=list; rule=list)");
    CHECK(check_metrics(dir, s.port(),
                        {R"(grayroute_breaker_state{route="gray",state="closed"}=1)",
                         R"(grayroute_upstream_outcomes_total{route="gray",outcome="connect_failure"}=5)",
                         R"(grayroute_requests_total{route="gray",reason="list",status_class="5xx"}=5)"}) == "");
  }

  TEST_CASE("bad health flags are refused at start, naming the value") {
    temp_dir dir;
    for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"--health", "window=10"}, "--health \"window=10\": grayroute: health: \"window=10\": not a duration"},
             {{"--fallback-route", "beta"}, "--fallback-route: \"beta\" is not a route"},
             {{"--probe", "route=gray interval=1x"}, "--probe: \"interval=1x\": not a duration"},
             {{"--probe", "path=/healthz"}, "route is required"}}) {
      std::vector<std::string> argv = {GRAYROUTE_PROXY_BIN, "--listen", "127.0.0.1:" + std::to_string(free_port())};
      argv.insert(argv.end(), args.begin(), args.end());
      const std::string log_path = dir.file("refused-" + std::to_string(free_port()) + ".log");
      process proxy(argv, log_path);
      REQUIRE(eventually([&] { return !proxy.running(); }));
      CHECK(WEXITSTATUS(proxy.stop()) == 1);
      CHECK_MESSAGE(proxy.log().find(message) != std::string::npos, proxy.log());
    }
  }
}

TEST_SUITE("proxy route health in the policy file") {
  // [health], fallback and [[probes]] in the TOML file; a SIGHUP that adds a route keeps
  // the open breaker of gray, whose name remains (its route id changes: beta comes first).
  TEST_CASE("[health], fallback and [[probes]]; a reload that changes the routes keeps gray open") {
    temp_dir dir;
    backend production_a(dir, "production-a"), production_b(dir, "production-b"), beta(dir, "beta");
    const int gray_port = free_port();  // nothing listens there: gray is down from the start
    const int port = free_port();
    auto at = [](int p) { return "\"127.0.0.1:" + std::to_string(p) + "\""; };
    const std::string head = "listen = " + at(port) + "\nfallback = \"production\"\n" +
                             "[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\nheaders = [\"X-Forwarded-For\"]\n";
    const std::string tail = "[health]\nconnect_failures = 2\ncooldown = \"60s\"\nerror_ratio = \"50%\"\n"
                             "[[probes]]\nroute = \"gray\"\npath = \"/healthz\"\ninterval = \"100ms\"\nexpect = 200\n"
                             "[[rules]]\nname = \"office\"\nclient = \"10.1.0.0/16\"\nroute = \"gray\"\n";
    const std::string production = "[" + at(production_a.port()) + ", " + at(production_b.port()) + "]";
    dir.write("policy.toml", head + "[routes]\nproduction = " + production + "\ngray = " + at(gray_port) + "\n" + tail);
    config_proxy proxy(dir, dir.file("policy.toml"), port, {"--watch-interval", "0"});
    REQUIRE(eventually([&] { return proxy.log().find("  metrics: http://") != std::string::npos; }));
    CHECK(proxy.log().find("route health: on, falling back to production; open after 2 connect failures") !=
          std::string::npos);
    CHECK(proxy.log().find("probe: route=gray path=/healthz interval=100ms expect=200 timeout=100ms") != std::string::npos);
    http_connection c(port);
    // The probe's failures alone open gray (2 in a row); meanwhile a GET is retried on
    // production. Fallbacks and retries take production's servers in turn, like any request.
    CHECK(served(ask(c, get_request("/", {kListed}))) == "200 production-a (production; reason=fallback; rule=office)");
    REQUIRE(eventually([&] { return proxy.log().find("health: route gray closed -> open (connect_failures)") != std::string::npos; }));
    CHECK(served(ask(c, get_request("/", {kListed}))) == "200 production-b (production; reason=fallback; rule=office)");

    dir.write("policy.toml", head + "[routes]\nproduction = " + production + "\nbeta = " + at(beta.port()) +
                                 "\ngray = " + at(gray_port) + "\n" + tail);
    proxy.proc().signal(SIGHUP);
    REQUIRE(eventually([&] { return proxy.log().find("policy reloaded (SIGHUP): 3 routes") != std::string::npos; }));
    http_connection after(port);
    CHECK(served(ask(after, get_request("/", {kListed}))) == "200 production-a (production; reason=fallback; rule=office)");
    const std::string health = http_get(port, "/-/grayroute/health").body;
    CHECK_MESSAGE(health.find(R"("beta":{"state":"closed")") != std::string::npos, health);
    CHECK_MESSAGE(health.find(R"("gray":{"state":"open")") != std::string::npos, health);
    CHECK(check_metrics(dir, port,
                        {R"(grayroute_breaker_state{route="gray",state="open"}=1)",
                         R"(grayroute_breaker_transitions_total{route="gray",to="open"}=1)",
                         R"(grayroute_breaker_state{route="beta",state="closed"}=1)",
                         R"(grayroute_requests_total{route="production",reason="fallback",status_class="2xx"}=3)",
                         R"(grayroute_policy_reloads_total=2)"}) == "");
    // The probe goes on after the reload (a new prober, the same counters).
    CHECK(eventually([&] { return check_metrics(dir, port, {R"(grayroute_probes_total{route="gray",result="failure"}>=4)"}).empty(); }));
    // Only one transition: the reload neither closed gray nor reported it again.
    const std::string log = proxy.log();
    CHECK(log.find("health: route gray closed -> open") == log.rfind("health: route gray closed -> open"));
  }

  // A request in flight across a reload (the race of a reload copying the counters): gray,
  // a test upstream, holds a listed GET until the reload that adds beta (gray's route id
  // changes) is in service, then closes without a response byte. The connect failure, the
  // retry and production's answer are recorded after the reload through the policy the
  // request started with; the new policy shares each remaining route's state by name, so
  // its page counts them and its breaker is the one that failure opened.
  TEST_CASE("a request in flight across a reload counts in the new policy, whose breaker it opened") {
    temp_dir dir;
    backend production(dir, "production"), beta(dir, "beta");
    byte_upstream gray;  // answers nothing by itself: the test decides when and how
    const int port = free_port();
    auto at = [](int p) { return "\"127.0.0.1:" + std::to_string(p) + "\""; };
    const std::string head = "listen = " + at(port) + "\n" +
                             "[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\nheaders = [\"X-Forwarded-For\"]\n" +
                             "[health]\nconnect_failures = 1\ncooldown = \"60s\"\n";
    const std::string rules = "[[rules]]\nname = \"office\"\nclient = \"10.1.0.0/16\"\nroute = \"gray\"\n";
    dir.write("policy.toml", head + "[routes]\nproduction = " + at(production.port()) + "\ngray = " + at(gray.port()) +
                                 "\n" + rules);
    config_proxy proxy(dir, dir.file("policy.toml"), port, {"--watch-interval", "0", "--access-log", "-"});
    REQUIRE(eventually([&] { return proxy.log().find("  metrics: http://") != std::string::npos; }));

    std::string in_flight;
    std::thread client([&] { in_flight = served(ask_once(port, get_request("/", {kListed}))); });
    const bool held = eventually([&] { return complete_requests(gray.received(0)) == 1; });
    dir.write("policy.toml", head + "[routes]\nproduction = " + at(production.port()) + "\nbeta = " + at(beta.port()) +
                                 "\ngray = " + at(gray.port()) + "\n" + rules);
    proxy.proc().signal(SIGHUP);
    const bool reloaded =
        eventually([&] { return proxy.log().find("policy reloaded (SIGHUP): 3 routes") != std::string::npos; });
    gray.close(0);  // only now: the outcome comes after the reload
    client.join();
    REQUIRE(held);
    REQUIRE(reloaded);
    CHECK(in_flight == "200 production (production; reason=fallback; rule=office)");
    // The access-log line is written after the request is counted.
    REQUIRE(eventually([&] {
      return proxy.log().find("route=production reason=fallback original_route=gray status=200") != std::string::npos;
    }));
    REQUIRE(check_metrics(dir, port,
                          {R"(grayroute_upstream_outcomes_total{route="gray",outcome="connect_failure"}=1)",
                           R"(grayroute_fallback_retries_total{route="gray"}=1)",
                           R"(grayroute_upstream_outcomes_total{route="production",outcome="success"}=1)",
                           R"(grayroute_requests_total{route="production",reason="fallback",status_class="2xx"}=1)",
                           R"(grayroute_breaker_state{route="gray",state="open"}=1)",
                           R"(grayroute_breaker_transitions_total{route="gray",to="open"}=1)",
                           R"(grayroute_breaker_state{route="beta",state="closed"}=1)",
                           R"(grayroute_policy_reloads_total=2)"}) == "");
    const std::string health = http_get(port, "/-/grayroute/health").body;
    CHECK_MESSAGE(health.find(R"("gray":{"state":"open")") != std::string::npos, health);
    // The new policy obeys that breaker: the next listed GET goes to production directly.
    CHECK(served(ask_once(port, get_request("/", {kListed}))) == "200 production (production; reason=fallback; rule=office)");
    CHECK(gray.connections() == 1);
    const std::string log = proxy.log();
    CHECK(log.find("health: route gray closed -> open") == log.rfind("health: route gray closed -> open"));
  }

  // A rule's own `fallback`: gray killed, the office's GETs go to beta (retried there while
  // the breaker counts, then sent there directly), everyone else stays on production.
  TEST_CASE("a rule's fallback = \"beta\": gray killed, the rule's requests go to beta") {
    temp_dir dir;
    backend production(dir, "production"), beta(dir, "beta");
    backend gray(dir, "gray");
    const int port = free_port();
    auto at = [](int p) { return "\"127.0.0.1:" + std::to_string(p) + "\""; };
    dir.write("policy.toml", "listen = " + at(port) + "\n" +
                                 "[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\nheaders = [\"X-Forwarded-For\"]\n"
                                 "[health]\nconnect_failures = 2\ncooldown = \"60s\"\n"
                                 "[routes]\nproduction = " + at(production.port()) + "\ngray = " + at(gray.port()) +
                                 "\nbeta = " + at(beta.port()) + "\n" +
                                 "[[rules]]\nname = \"office\"\nclient = \"10.1.0.0/16\"\nroute = \"gray\"\nfallback = \"beta\"\n");
    config_proxy proxy(dir, dir.file("policy.toml"), port, {"--watch-interval", "0"});
    REQUIRE(eventually([&] { return proxy.log().find("  metrics: http://") != std::string::npos; }));
    CHECK(served(ask_once(port, get_request("/", {kListed}))) == "200 gray (gray; reason=match; rule=office)");
    gray.stop();  // killed: its port refuses connections from now on
    int retried = 0;
    // Each GET is retried on beta (the client sees no error) until the breaker opens.
    REQUIRE(eventually([&] {
      CHECK(served(ask_once(port, get_request("/", {kListed}))) == "200 beta (beta; reason=fallback; rule=office)");
      ++retried;
      return proxy.log().find("health: route gray closed -> open") != std::string::npos;
    }));
    CHECK(served(ask_once(port, get_request("/", {kListed}))) == "200 beta (beta; reason=fallback; rule=office)");
    CHECK(served(ask_once(port, get_request("/", {kUnlisted}))) == "200 production (production; reason=default)");
    CHECK(check_metrics(dir, port,
                        {R"(grayroute_requests_total{route="beta",reason="fallback",status_class="2xx"}=)" +
                             std::to_string(retried + 1),
                         R"(grayroute_requests_total{route="production",reason="fallback",status_class="2xx"}=0)",
                         R"(grayroute_breaker_state{route="gray",state="open"}=1)"}) == "");
  }

  TEST_CASE("health, fallback and probes errors in the file name file:line:column") {
    const std::string base = "[routes]\nproduction = \"127.0.0.1:1\"\ngray = \"127.0.0.1:2\"\n";  // after the case
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"health = \"window=10\"\n", ":1:10: health: \"window=10\": not a duration"},
        {"[health]\ncooldown = \"1x\"\n", ":2:1: health: \"cooldown=1x\": not a duration"},
        {"[health]\nerror_ratio = [1]\n", ":2:15: health: error_ratio is a string, an integer or true/false"},
        {"fallback = \"beta\"\n", ":1:12: fallback: \"beta\" is not a route"},
        {"[[rules]]\nname = \"r\"\nroute = \"gray\"\nfallback = \"beta\"\n", ":4:12: rule \"r\": fallback: unknown route \"beta\""},
        {"[[probes]]\nroute = \"beta\"\n", ":2:9: probe 1: route \"beta\" is not a route"},
        {"[[probes]]\nroute = \"gray\"\ninterval = \"1x\"\n", ":3:12: probe 1: interval \"1x\": not a duration"},
        {"[[probes]]\npath = \"/healthz\"\n", ":1:1: probe 1: route is required"},
        {"[[probes]]\nroute = \"gray\"\nexpect = 99\n", ":3:10: probe 1: expect \"99\": not a status 100-599"},
    };
    for (const auto& [text, expected] : cases) {
      temp_dir dir;
      dir.write("policy.toml", text + base);
      process p({GRAYROUTE_PROXY_BIN, "--config", dir.file("policy.toml"), "--listen",
                 "127.0.0.1:" + std::to_string(free_port())},
                dir.file("bad.log"));
      REQUIRE(eventually([&] { return !p.running(); }));
      const int status = p.stop();
      INFO(text << "-> " << p.log());
      CHECK(WEXITSTATUS(status) == 1);
      CHECK(p.log().find(dir.file("policy.toml") + expected) != std::string::npos);
    }
  }
}

#if GRAYROUTE_PROXY_HAS_REDIS
TEST_SUITE("proxy metrics") {
  TEST_CASE("the metrics page follows the Redis list: entries, last sync, connected, then disconnected") {
    temp_dir dir;
    redis_server redis(dir);
    redis.cli({"SET", "203.0.113.9", "203.0.113.9"});
    proxy_setup s(dir, {"--redis", "127.0.0.1:" + std::to_string(redis.port()), "--gray-list", "198.51.100.7"});
    CHECK(eventually([&] {
      return check_metrics(dir, s.port(), {R"(grayroute_redis_connected{list="list"}=1)", R"(grayroute_list_entries{list="list",source="redis"}=1)"})
          .empty();
    }));
    CHECK(check_metrics(dir, s.port(),
                        {R"(grayroute_list_entries{list="list",source="flags"}=1)", R"(grayroute_redis_serving{list="list"}=1)",
                         R"(grayroute_redis_full_loads_total{list="list"}>=1)", R"(grayroute_redis_connects_total{list="list"}=1)",
                         R"(grayroute_list_last_sync_timestamp_seconds{list="list",source="redis"}>=1000000000)",
                         R"(grayroute_policy_reloads_total=1)"}) == "");
    redis.kill_now();
    CHECK(eventually([&] { return check_metrics(dir, s.port(), {R"(grayroute_redis_connected{list="list"}=0)"}).empty(); }));
  }
}
#endif
