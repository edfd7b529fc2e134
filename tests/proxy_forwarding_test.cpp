// grayroute-proxy's header rules (examples/asio_proxy/forwarding.hpp) without sockets:
// a parsed header in, the rewritten header and the session's plan out.
#include <doctest/doctest.h>

#include <string>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "../examples/asio_proxy/forwarding.hpp"

namespace http = boost::beast::http;
using namespace grayroute_proxy;

namespace {

struct parsed {
  http::request_parser<http::buffer_body> parser;
  request_framing framing;
  bool ok = false;
};

void parse(parsed& p, const std::string& text) {
  boost::beast::error_code ec;
  p.parser.put(boost::asio::buffer(text), ec);
  p.ok = !ec && p.parser.is_header_done();
  if (!p.ok) return;
  p.framing.chunked = p.parser.chunked();
  if (p.parser.content_length()) p.framing.content_length = *p.parser.content_length();
}

grayroute::decision client(const char* address) {
  grayroute::decision d;
  d.client.address = *grayroute::parse_ip(address);
  return d;
}

std::string field(const http::fields& f, const char* name) {
  const auto v = f[name];
  return std::string(v.data(), v.size());
}

}  // namespace

TEST_SUITE("proxy forwarding rules") {
  TEST_CASE("framing nginx rejects is refused") {
    const char* refused[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: a b/c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: ..\r\n\r\n",
        "GET http://a b/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (const std::string text : refused) {
      CAPTURE(text);
      parsed p;
      parse(p, text);
      if (!p.ok) continue;  // Beast refused it already: also a 400
      const auto r = check_request(p.parser.get(), p.framing);
      REQUIRE(r.has_value());
      CHECK(r->status == http::status::bad_request);
    }
  }

  TEST_CASE("ordinary requests pass") {
    const char* fine[] = {
        "GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "GET http://a.example/x HTTP/1.1\r\nHost: b\r\n\r\n",
    };
    for (const std::string text : fine) {
      CAPTURE(text);
      parsed p;
      parse(p, text);
      REQUIRE(p.ok);
      CHECK_FALSE(check_request(p.parser.get(), p.framing).has_value());
    }
  }

  TEST_CASE("the rewrite removes hop-by-hop fields and sets the proxy's own last") {
    parsed p;
    parse(p, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: X-Real-IP, Foo\r\nFoo: 1\r\nX-Real-IP: 10.9.9.9\r\n"
             "X-Forwarded-For: 10.1.1.1\r\nTE: trailers\r\nExpect: 100-continue\r\n\r\n");
    REQUIRE(p.ok);
    const auto plan = plan_request(p.parser.get(), p.framing, client("10.1.1.1"), "127.0.0.1", "up:1");
    const auto& req = p.parser.get();
    CHECK(plan.keep_alive);
    CHECK(plan.expect_continue);
    CHECK_FALSE(plan.upgrade);
    CHECK(req.count("Foo") == 0);
    CHECK(req.count(http::field::te) == 0);
    CHECK(req.count(http::field::expect) == 0);
    CHECK(field(req, "X-Real-IP") == "10.1.1.1");
    CHECK(field(req, "X-Forwarded-For") == "10.1.1.1, 127.0.0.1");
  }

  TEST_CASE("absolute-form becomes origin-form with the target's authority as Host") {
    parsed p;
    parse(p, "GET http://evil.example/a?b=1#frag HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(p.ok);
    plan_request(p.parser.get(), p.framing, client("192.0.2.1"), "192.0.2.1", "up:1");
    CHECK(std::string(p.parser.get().target()) == "/a?b=1");
    CHECK(field(p.parser.get(), "Host") == "evil.example");
    CHECK(p.parser.get().count(http::field::host) == 1);

    parsed q;
    parse(q, "GET http://b.example?x HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(q.ok);
    plan_request(q.parser.get(), q.framing, client("192.0.2.1"), "192.0.2.1", "up:1");
    CHECK(std::string(q.parser.get().target()) == "/?x");
  }

  TEST_CASE("HTTP/1.0 without Host gets the upstream authority; no 100-continue for it") {
    parsed p;
    parse(p, "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    REQUIRE(p.ok);
    const auto plan = plan_request(p.parser.get(), p.framing, client("192.0.2.1"), "192.0.2.1", "127.0.0.1:8080");
    CHECK_FALSE(plan.expect_continue);
    CHECK_FALSE(plan.keep_alive);
    CHECK(field(p.parser.get(), "Host") == "127.0.0.1:8080");
    CHECK(p.parser.get().version() == 11);
    CHECK(plan.host_is_upstream);
    // Retried on another server (the fallback route's): the Host names that one.
    address_request(p.parser.get(), plan, "127.0.0.1:9090");
    CHECK(field(p.parser.get(), "Host") == "127.0.0.1:9090");
    CHECK(p.parser.get().count(http::field::host) == 1);

    // A Host the client sent (or an absolute-form target's) is the client's: kept.
    parsed q;
    parse(q, "GET / HTTP/1.0\r\nHost: shop.example\r\n\r\n");
    REQUIRE(q.ok);
    const auto kept = plan_request(q.parser.get(), q.framing, client("192.0.2.1"), "192.0.2.1", "127.0.0.1:8080");
    CHECK_FALSE(kept.host_is_upstream);
    address_request(q.parser.get(), kept, "127.0.0.1:9090");
    CHECK(field(q.parser.get(), "Host") == "shop.example");
  }

  TEST_CASE("equal repeated Content-Length values become one field") {
    parsed p;
    parse(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n");
    REQUIRE(p.ok);
    plan_request(p.parser.get(), p.framing, client("192.0.2.1"), "192.0.2.1", "up:1");
    CHECK(p.parser.get().count(http::field::content_length) == 1);
    CHECK(field(p.parser.get(), "Content-Length") == "5");
  }

  TEST_CASE("Upgrade is forwarded only when Connection asks for it") {
    parsed p;
    parse(p, "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
    REQUIRE(p.ok);
    CHECK(plan_request(p.parser.get(), p.framing, client("192.0.2.1"), "192.0.2.1", "up:1").upgrade);
    CHECK(field(p.parser.get(), "Upgrade") == "websocket");
    CHECK(field(p.parser.get(), "Connection") == "upgrade");

    parsed q;
    parse(q, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    REQUIRE(q.ok);
    CHECK_FALSE(plan_request(q.parser.get(), q.framing, client("192.0.2.1"), "192.0.2.1", "up:1").upgrade);
    CHECK(q.parser.get().count(http::field::upgrade) == 0);
  }

  TEST_CASE("responses: 101 only when asked, close-delimited bodies never pooled, HEAD-like ones left alone") {
    http::response_header<> res;
    res.result(http::status::switching_protocols);
    res.set(http::field::upgrade, "websocket");
    response_context context;
    context.complete_at_header = true;
    CHECK(plan_response(res, context, "").bad_upgrade);
    context.client_asked_upgrade = true;
    const auto tunnel = plan_response(res, context, "");
    CHECK(tunnel.tunnel);
    CHECK_FALSE(tunnel.upstream_reusable);
    CHECK(field(res, "Connection") == "upgrade");

    http::response_header<> body_until_close;
    body_until_close.result(http::status::ok);
    response_context until_close;
    until_close.client_keep_alive = true;
    until_close.upstream_keep_alive = true;
    const auto plan = plan_response(body_until_close, until_close, "gray; reason=list");
    CHECK_FALSE(plan.upstream_reusable);
    CHECK(plan.keep_alive);
    CHECK(field(body_until_close, "Transfer-Encoding") == "chunked");
    CHECK(field(body_until_close, "X-Grayroute") == "gray; reason=list");

    http::response_header<> not_modified;
    not_modified.result(http::status::not_modified);
    response_context no_body;
    no_body.complete_at_header = true;
    no_body.upstream_keep_alive = true;
    CHECK(plan_response(not_modified, no_body, "").upstream_reusable);
    CHECK(not_modified.count(http::field::transfer_encoding) == 0);
  }
}
