// grayroute-proxy under hostile input and faulty upstreams: every reproduction of
// issue 8, against a real proxy process and an upstream written here (byte_upstream)
// that keeps every byte it was sent.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <atomic>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "../support/byte_upstream.hpp"
#include "../support/proxy_fixture.hpp"

using namespace grayroute::test;

namespace {

// The proxy in front of one byte_upstream (both routes go there).
struct hostile_setup {
  hostile_setup(const temp_dir& dir, byte_upstream::answer_fn answer, std::vector<std::string> args = {})
      : up(std::move(answer)), front(dir, up.port(), up.port(), with_log(std::move(args))) {}
  static std::vector<std::string> with_log(std::vector<std::string> args) {
    args.insert(args.end(), {"--access-log", "-"});
    return args;
  }
  int port() const { return front.port(); }

  byte_upstream up;
  proxy front;
};

byte_upstream::answer_fn always(std::string response) {
  return [response](const std::string&, int) { return upstream_reply{response}; };
}

// The header block of request `n` the upstream received on connection `c`.
std::string upstream_header(const byte_upstream& up, std::size_t c = 0) {
  const std::string bytes = up.received(c);
  return bytes.substr(0, bytes.find("\r\n\r\n") + 2);
}

long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::atol(field.c_str());  // utime + stime
  }
  return ticks;
}

}  // namespace

TEST_SUITE("proxy hostile input") {
  TEST_CASE("chunked trailers never reach the upstream as header fields") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("ok")));
    http_connection c(s.port());
    REQUIRE(c.send("POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3\r\nabc\r\n0\r\nX-Real-IP: 10.9.9.9\r\nX-Forwarded-For: 10.9.9.9\r\nHost: evil.example\r\n"
                   "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
    const auto r = c.read_response();
    CHECK(r.status == 200);
    const std::string sent = s.up.received(0);
    CAPTURE(sent);
    CHECK(sent.find("10.9.9.9") == std::string::npos);
    CHECK(sent.find("evil.example") == std::string::npos);
    CHECK(sent.find("Upgrade") == std::string::npos);
    CHECK(sent.find("X-Real-IP: 127.0.0.1\r\n") != std::string::npos);
    // The body ends with the last chunk and no trailer section.
    CHECK(sent.size() >= 5);
    CHECK(sent.compare(sent.size() - 5, 5, "0\r\n\r\n") == 0);
    CHECK(sent.find("abc") != std::string::npos);
  }

  TEST_CASE("a last chunk that arrives on its own is forwarded once") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("ok")));
    http_connection c(s.port());
    REQUIRE(c.send("POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"));
    REQUIRE(eventually([&] { return s.up.received(0).find("abc") != std::string::npos; }));
    REQUIRE(c.send("0\r\nX-Trailer: 1\r\n\r\n"));
    CHECK(c.read_response().status == 200);
    const std::string sent = s.up.received(0);
    CAPTURE(sent);
    CHECK(sent.find("0\r\n\r\n") == sent.size() - 5);
    CHECK(sent.find("X-Trailer") == std::string::npos);
  }

  TEST_CASE("an extra response in the same packet is never the answer to the next request") {
    temp_dir dir;
    hostile_setup s(dir, [](const std::string&, int n) {
      return upstream_reply{n == 0 ? ok_response("first") + ok_response("EVIL") : ok_response("second")};
    });
    http_connection a(s.port());
    REQUIRE(a.send(get_request("/1")));
    CHECK(a.read_response().body == "first");
    http_connection b(s.port());
    REQUIRE(b.send(get_request("/2")));
    const auto r = b.read_response();
    CHECK(r.body == "first");  // a fresh upstream connection answers its own first request
    CHECK(s.up.connections() == 2);
  }

  TEST_CASE("bytes an upstream sends while its connection is idle close it") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("fine")));
    http_connection a(s.port());
    REQUIRE(a.send(get_request("/1")));
    REQUIRE(a.read_response().body == "fine");
    REQUIRE(s.up.send(0, ok_response("LATE")));  // a late extra response
    REQUIRE(a.send(get_request("/2")));
    const auto r = a.read_response();
    CHECK(r.body == "fine");
    CHECK(s.up.connections() == 2);
    CHECK(eventually([&] { return s.up.peer_closed(0); }));
  }

  TEST_CASE("a body after a HEAD response is not read as the next response") {
    temp_dir dir;
    hostile_setup s(dir, [](const std::string& received, int n) {
      const bool head = received.find("HEAD ") != std::string::npos && n == 0;
      return upstream_reply{head ? ok_response("BODY!") : ok_response("real")};
    });
    http_connection c(s.port());
    REQUIRE(c.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"));
    const std::string head = c.read_until("\r\n\r\n");
    CHECK(head.find("HTTP/1.1 200") == 0);
    CHECK(head.find("BODY!") == std::string::npos);
    REQUIRE(c.send(get_request("/next")));
    const auto r = c.read_response();
    CHECK(r.body == "real");
  }

  TEST_CASE("a POST without a body on a pooled connection the upstream closed is not a 502") {
    temp_dir dir;
    hostile_setup s(dir, [](const std::string&, int) { return upstream_reply{ok_response("ok"), /*close=*/true}; });
    http_connection c(s.port());
    REQUIRE(c.send(get_request("/")));
    REQUIRE(c.read_response().status == 200);
    REQUIRE(eventually([&] { return s.up.connections() == 1 && s.up.received(0).size() > 0; }));
    REQUIRE(c.send("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"));
    CHECK(c.read_response().status == 200);
    CHECK(s.up.connections() == 2);
  }

  TEST_CASE("a server-sent-events stream reaches the client piece by piece, and silence is what times out") {
    temp_dir dir;
    hostile_setup s(dir, nullptr, {"--upstream-timeout", "1500"});
    http_connection c(s.port());
    REQUIRE(c.send(get_request("/events")));
    REQUIRE(eventually([&] { return complete_requests(s.up.received(0)) == 1; }));
    REQUIRE(s.up.send(0, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"));
    std::string seen;
    // Six events 400 ms apart: 2.4 s in all, more than the upstream timeout, never silent 1.5 s.
    for (int i = 0; i < 6; ++i) {
      const std::string event = "data: " + std::to_string(i) + "\n\n";
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", event.size());
      REQUIRE(s.up.send(0, size + event + "\r\n"));
      seen += c.read_until(event);
      CHECK(seen.find(event) != std::string::npos);  // arrived before the next was sent
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
    REQUIRE(s.up.send(0, "0\r\n\r\n"));
    seen += c.read_until("0\r\n\r\n");
    CHECK(seen.find("HTTP/1.1 200") == 0);
    CHECK(seen.find("0\r\n\r\n") != std::string::npos);
  }

  TEST_CASE("a slow upload reaches the upstream as it arrives, and silence is what times out") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("stored")), {"--client-timeout", "1500"});
    http_connection c(s.port());
    REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 600\r\n\r\n"));
    for (int i = 0; i < 6; ++i) {
      REQUIRE(c.send(std::string(100, static_cast<char>('a' + i))));
      // The upstream has this piece before the client sends the next one.
      CHECK(eventually([&] { return s.up.received(0).find(std::string(100, static_cast<char>('a' + i))) != std::string::npos; }));
      std::this_thread::sleep_for(std::chrono::milliseconds(400));  // 2.4 s in all, never silent 1.5 s
    }
    const auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.body == "stored");
  }

  TEST_CASE("a first request's slow header is bounded by --client-timeout, not the keep-alive timeout") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("ok")), {"--client-timeout", "300", "--keepalive-timeout", "30000"});
    http_connection c(s.port());
    REQUIRE(c.send("GET / HTTP/1.1\r\n"));
    const auto started = std::chrono::steady_clock::now();
    CHECK(c.closed_by_peer(std::chrono::seconds(5)));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
  }

  TEST_CASE("empty lines before a request line are tolerated, as nginx does") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("ok")));
    http_connection c(s.port());
    REQUIRE(c.send("\r\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    CHECK(c.read_response().status == 200);
  }

  TEST_CASE("framing nginx rejects is 400 + close, and nothing reaches the upstream") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("ok")));
    const std::vector<std::string> bad = {
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello",
        "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: a b/c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    };
    for (const auto& request : bad) {
      CAPTURE(request);
      http_connection c(s.port());
      REQUIRE(c.send(request));
      CHECK(c.read_response().status == 400);
      CHECK(c.closed_by_peer());
    }
    CHECK(s.up.connections() == 0);
    CHECK(s.front.log().find("error=\"Transfer-Encoding whose final coding is not chunked\"") != std::string::npos);
  }

  TEST_CASE("repeated equal Content-Length values go upstream as one") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("ok")));
    for (const std::string lengths : {"Content-Length: 5, 5\r\n", "Content-Length: 5\r\nContent-Length: 5\r\n"}) {
      http_connection c(s.port());
      REQUIRE(c.send("POST / HTTP/1.1\r\nHost: a\r\n" + lengths + "\r\nhello"));
      CHECK(c.read_response().status == 200);
    }
    const std::string sent = s.up.received(0);
    CAPTURE(sent);
    CHECK(sent.find("Content-Length: 5\r\n") != std::string::npos);
    CHECK(sent.find("5, 5") == std::string::npos);
    CHECK(complete_requests(sent) == 2);
    const std::string first = upstream_header(s.up);
    CHECK(first.find("Content-Length") == first.rfind("Content-Length"));
  }

  TEST_CASE("a malformed chunked body after the header went upstream closes both sides and is logged") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("ok")));
    http_connection c(s.port());
    REQUIRE(c.send("POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"));
    const auto r = c.read_response();
    CHECK(r.status == 400);
    CHECK(c.closed_by_peer());
    CHECK(eventually([&] { return s.up.peer_closed(0); }));
    CHECK(s.up.received(0).find("smuggled") == std::string::npos);
    CHECK(s.front.log().find("status=400 upstream=") != std::string::npos);
    CHECK(s.front.log().find("malformed request body") != std::string::npos);
  }

  TEST_CASE("an upstream that breaks a chunked response is logged as such, not as 200") {
    temp_dir dir;
    hostile_setup s(dir, always("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ\r\n"));
    http_connection c(s.port());
    REQUIRE(c.send(get_request("/")));
    CHECK(c.read_response().status == 0);  // the header came, the body never ended
    CHECK(eventually([&] { return s.front.log().find("upstream broke off the response") != std::string::npos; }));
    CHECK(s.front.log().find("status=200") == std::string::npos);
    CHECK(s.front.log().find("status=502") != std::string::npos);
  }

  TEST_CASE("an absolute-form target becomes origin-form and the Host agrees with it") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("ok")));
    http_connection c(s.port());
    REQUIRE(c.send("GET http://evil.example/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n"));
    CHECK(c.read_response().status == 200);
    const std::string head = upstream_header(s.up);
    CAPTURE(head);
    CHECK(head.find("GET /x?y=1 HTTP/1.1\r\n") == 0);
    CHECK(head.find("Host: evil.example\r\n") != std::string::npos);
    CHECK(head.find("Host: a\r\n") == std::string::npos);
  }

  TEST_CASE("HTTP/1.0 without Host gets the upstream's authority, and no 100 Continue") {
    temp_dir dir;
    hostile_setup s(dir, always(ok_response("ok")));
    http_connection c(s.port());
    REQUIRE(c.send("POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi"));
    const std::string reply = c.read_until("ok");
    CAPTURE(reply);
    CHECK(reply.find("100 Continue") == std::string::npos);
    CHECK(reply.find("HTTP/1.0 200") == 0);
    CHECK(upstream_header(s.up).find("Host: 127.0.0.1:" + std::to_string(s.up.port()) + "\r\n") != std::string::npos);
  }

  TEST_CASE("WebSocket: a 101 the client asked for is tunnelled both ways and never pooled") {
    temp_dir dir;
    hostile_setup s(dir, [](const std::string& received, int n) {
      if (n == 0 && received.find("Upgrade: websocket") != std::string::npos) {
        return upstream_reply{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"};
      }
      return upstream_reply{ok_response("plain")};
    });
    http_connection c(s.port());
    REQUIRE(c.send("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
    const std::string head = c.read_until("\r\n\r\n");
    CAPTURE(head);
    CHECK(head.find("HTTP/1.1 101") == 0);
    CHECK(header(head, "Upgrade") == "websocket");
    CHECK(header(head, "Connection") == "upgrade");
    REQUIRE(c.send("ping-from-client"));
    CHECK(eventually([&] { return s.up.received(0).find("ping-from-client") != std::string::npos; }));
    REQUIRE(s.up.send(0, "pong-from-upstream"));
    CHECK(c.read_until("pong-from-upstream").find("pong-from-upstream") != std::string::npos);
    s.up.close(0);
    CHECK(c.closed_by_peer());
    http_connection other(s.port());
    REQUIRE(other.send(get_request("/")));
    CHECK(other.read_response().body == "plain");
    CHECK(s.up.connections() == 2);
    CHECK(eventually([&] { return s.front.log().find("tunnel closed: 16 bytes up, 18 bytes down") != std::string::npos; }));
  }

  TEST_CASE("a 101 nobody asked for is a 502") {
    temp_dir dir;
    hostile_setup s(dir, always("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
    http_connection c(s.port());
    REQUIRE(c.send(get_request("/")));
    CHECK(c.read_response().status == 502);
  }

  // The proxy under `ulimit -n 48`, one connection served (and kept) and `idle` more
  // opened, then 80 more connections than it has descriptors for, until it says it
  // pauses accepting.
  struct exhausted_proxy {
    explicit exhausted_proxy(const temp_dir& dir, const byte_upstream& up)
        : port(free_port()),
          proxy({"/bin/sh", "-c", "ulimit -n 48 && exec \"$0\" \"$@\"", GRAYROUTE_PROXY_BIN, "--listen",
                 "127.0.0.1:" + std::to_string(port), "--production", "127.0.0.1:" + std::to_string(up.port()),
                 "--gray", "127.0.0.1:" + std::to_string(up.port()), "--access-log", "-"},
                dir.file("proxy.log")) {}

    // False when something on the way failed (the caller REQUIREs it).
    bool exhaust(std::size_t idle = 0) {
      if (!wait_for_port(port)) return false;
      served = std::make_unique<http_connection>(port);
      if (!served->send(get_request("/")) || served->read_response().status != 200) return false;
      while (opened.size() < idle) opened.push_back(std::make_unique<http_connection>(port));
      for (int i = 0; i < 80; ++i) flood.push_back(std::make_unique<http_connection>(port));
      return eventually([&] { return proxy.log().find("pausing accepting") != std::string::npos; });
    }

    // Once the flood is gone, new connections are accepted and served again.
    bool recovers() {
      flood.clear();
      return eventually([&] {
        http_connection c(port);
        return c.connected() && c.send(get_request("/")) && c.read_response().status == 200;
      });
    }

    int port;
    process proxy;
    std::unique_ptr<http_connection> served;
    std::vector<std::unique_ptr<http_connection>> opened, flood;
  };

  // Under UBSan the runtime itself needs two descriptors (a pipe, to probe memory) the
  // first time it checks an object's dynamic type, and a failed probe is a fatal report.
  // The reserve the proxy lets go when accepting runs out is what leaves them (and the
  // upstream sockets) free; only the instant between the accept that takes the last
  // descriptor and the failed one that lets the reserve go is left without any.
#if defined(__SANITIZE_ADDRESS__)
  constexpr bool kSanitized = true;
#else
  constexpr bool kSanitized = false;
#endif
  TEST_CASE("out of file descriptors: accepting pauses, the log says so a few times, open connections are served") {
    temp_dir dir;
    byte_upstream up(always(ok_response("ok")));
    exhausted_proxy p(dir, up);
    INFO("proxy log:\n" << p.proxy.log());
    REQUIRE(p.exhaust());
    const long before = cpu_ticks(p.proxy.pid());
    const auto window = std::chrono::seconds(1);
    std::this_thread::sleep_for(window);  // a measurement window, not a wait for an event
    const long used = cpu_ticks(p.proxy.pid()) - before;
    CHECK(used < sysconf(_SC_CLK_TCK) / 4);  // under a quarter of a core, not a spin
    std::size_t lines = 0;
    const std::string log = p.proxy.log();
    for (std::size_t at = 0; (at = log.find("accept:", at)) != std::string::npos; ++at) ++lines;
    CHECK(lines <= 5);
    // The connection already open is still served (on its pooled upstream connection).
    REQUIRE(p.served->send(get_request("/")));
    CHECK(p.served->read_response().status == 200);
    CHECK(p.recovers());
  }

  TEST_CASE("out of file descriptors: an open connection's request that needs a new upstream socket gets one") {
    temp_dir dir;
    // The upstream closes after every response: each request needs a socket of its own.
    byte_upstream up([](const std::string&, int) {
      return upstream_reply{ok_response("ok", "Connection: close\r\n"), true};
    });
    exhausted_proxy p(dir, up);
    INFO("proxy log:\n" << p.proxy.log());
    REQUIRE(p.exhaust());
    const std::size_t upstream_before = up.connections();
    for (int i = 0; i < 3; ++i) {
      REQUIRE(p.served->send(get_request("/")));
      const auto r = p.served->read_response();
      CHECK(r.status == 200);
      CHECK(r.body == "ok");
    }
    CHECK(up.connections() == upstream_before + 3);
    CHECK(p.recovers());
  }

  // Not under the sanitizers: this one leaves the proxy no descriptor at all, and the
  // UBSan runtime cannot check a type for the first time without two (see above).
  TEST_CASE("out of file descriptors: with none left for an upstream socket the answer is an immediate 503" *
            doctest::skip(kSanitized)) {
    temp_dir dir;
    // "/hold" is never answered: each such request keeps its upstream socket. Nothing is
    // pooled, so every request needs a socket of its own.
    byte_upstream up([](const std::string& received, int) {
      const bool hold = received.find("GET /hold ") != std::string::npos;
      return upstream_reply{hold ? std::string() : ok_response("ok", "Connection: close\r\n"), !hold};
    });
    exhausted_proxy p(dir, up);
    INFO("proxy log:\n" << p.proxy.log());
    // More held requests than the 8 descriptors the proxy lets go when accepting runs out.
    constexpr std::size_t kHeld = 12;
    REQUIRE(p.exhaust(kHeld + 1));
    auto refused = [&] {
      const std::string log = p.proxy.log();
      std::size_t n = 0;
      for (std::size_t at = 0; (at = log.find(" status=503 ", at)) != std::string::npos; ++at) ++n;
      return n;
    };
    for (std::size_t i = 0; i < kHeld; ++i) {
      // One at a time: each either holds an upstream socket or was refused one.
      const std::size_t done = up.connections() + refused();
      REQUIRE(p.opened[i]->send(get_request("/hold")));
      REQUIRE(eventually([&] { return up.connections() + refused() > done; }));
    }
    CHECK(refused() > 0);
    REQUIRE(p.opened[kHeld]->send(get_request("/")));
    const auto r = p.opened[kHeld]->read_response();
    CHECK(r.status == 503);
    CHECK(header(r.headers, "Retry-After") == "1");
    CHECK(r.body.find("Too many open files") != std::string::npos);
    // The proxy's own shortage is not the upstream's failure: the route stays closed.
    REQUIRE(p.served->send(get_request("/-/grayroute/health")));
    const std::string health = p.served->read_response().body;
    CAPTURE(health);
    CHECK(health.find("\"production\":{\"state\":\"closed\"") != std::string::npos);
    for (std::size_t i = 0; i < up.connections(); ++i) {  // the held requests are answered at last
      if (up.received(i).find("GET /hold ") != std::string::npos) up.send(i, ok_response("late", "Connection: close\r\n"));
    }
    CHECK(p.recovers());
  }
}

TEST_SUITE("proxy list file") {
  TEST_CASE("a list file rewritten in place is never applied empty or half-written") {
    temp_dir dir;
    dir.write("gray.txt", "10.5.0.0/16\n");
    proxy_setup s(dir, {"--trusted-proxy", "127.0.0.1/32", "--gray-list-file", dir.file("gray.txt"),
                        "--watch-interval", "300", "--access-log", "off"});
    std::atomic<bool> stop{false};
    std::atomic<int> gray{0}, production{0};
    std::thread client([&] {
      http_connection c(s.port());
      while (!stop && c.send(get_request("/", {{"X-Forwarded-For", "10.5.0.1"}}))) {
        const auto r = c.read_response();
        if (r.status != 200) break;
        ++(header(r.headers, "X-Backend") == "gray" ? gray : production);
      }
    });
    for (int i = 0; i < 10; ++i) {
      // A writer that truncates, writes part of the file, pauses, then finishes: the
      // pauses are far shorter than the watch interval.
      { std::ofstream(dir.file("gray.txt"), std::ios::trunc); }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      { std::ofstream(dir.file("gray.txt"), std::ios::trunc) << "10.5"; }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      { std::ofstream(dir.file("gray.txt"), std::ios::trunc) << "10.5.0.0/16\n"; }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    stop = true;
    client.join();
    MESSAGE(gray.load() << " requests to gray, " << production.load() << " to production");
    CHECK(gray > 0);
    CHECK(production == 0);
  }

  TEST_CASE("a last line without its newline is not applied until it has one") {
    temp_dir dir;
    dir.write("gray.txt", "# none\n");
    proxy_setup s(dir, {"--trusted-proxy", "127.0.0.1/32", "--gray-list-file", dir.file("gray.txt"),
                        "--watch-interval", "50", "--access-log", "off"});
    auto backend_for = [&](const char* client) {
      return header(http_get(s.port(), "/", {{"X-Forwarded-For", client}}).headers, "X-Backend");
    };
    dir.write("gray.txt", "127.0.0.2");  // the first bytes of "127.0.0.21\n"
    // Several looks see the same bytes; none is applied (the health page counts reloads).
    const auto reloads = [&] {
      const std::string body = http_get(s.port(), "/-/grayroute/health").body;
      return std::atoi(body.c_str() + body.find("\"file_reloads\":") + 15);
    };
    const int before = reloads();
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(400);
    int to_gray = 0;
    while (std::chrono::steady_clock::now() < until) to_gray += backend_for("127.0.0.2") != "production";
    CHECK(to_gray == 0);
    CHECK(reloads() == before);
    dir.write("gray.txt", "127.0.0.21\n");
    CHECK(eventually([&] { return backend_for("127.0.0.21") == "gray"; }));
    CHECK(backend_for("127.0.0.2") == "production");
  }

  TEST_CASE("a directory as the list file is an error at start-up") {
    temp_dir dir;
    process p({GRAYROUTE_PROXY_BIN, "--listen", "127.0.0.1:" + std::to_string(free_port()), "--gray-list-file",
               dir.file("")},
              dir.file("dir.log"));
    CHECK(eventually([&] { return !p.running(); }));
    CHECK(p.log().find("is a directory") != std::string::npos);
  }
}
