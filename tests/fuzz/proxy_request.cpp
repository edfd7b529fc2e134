// grayroute-proxy's request handling: client bytes in, upstream bytes out. The input
// goes through what connection.cpp does for each request on a keep-alive connection —
// Beast's header parser, check_request, plan_request, and async_relay into an
// in-memory upstream — and the bytes the upstream receives must be exactly the
// requests the proxy forwarded: each one complete, framed one way only (no smuggled
// second request), with no trailer section and the proxy's own X-Real-IP.
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include "../../examples/asio_proxy/forwarding.hpp"
#include "../../examples/asio_proxy/relay.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace grayroute_proxy;

namespace {

constexpr int kMaxRequests = 8;

// The proxy's side of one client connection, one request after another.
struct session : asio::coroutine {
  beast::test::stream& client;
  beast::test::stream& upstream;
  beast::flat_buffer buffer;
  std::optional<http::request_parser<http::buffer_body>> parser;
  std::optional<http::request_serializer<http::buffer_body>> serializer;
  relay_chunk chunk{};
  relay_side failed = relay_side::none;
  request_framing framing;
  grayroute::decision decision;
  beast::test::stream& upstream_peer;  // holds every byte written to `upstream`
  std::vector<std::size_t>& ends;      // upstream byte count after each forwarded request
  int count = 0;

  session(beast::test::stream& c, beast::test::stream& u, beast::test::stream& peer, std::vector<std::size_t>& e)
      : client(c), upstream(u), upstream_peer(peer), ends(e) {
    decision.client.address = grayroute::ip_address::v4(0xC0000201);  // 192.0.2.1
  }

  void operator()(beast::error_code ec = {}, std::size_t = 0) {
    BOOST_ASIO_CORO_REENTER(this) {
      for (; count < kMaxRequests; ++count) {
        parser.emplace();
        parser->header_limit(16 * 1024);
        parser->body_limit(std::numeric_limits<std::uint64_t>::max());
        BOOST_ASIO_CORO_YIELD http::async_read_header(client, buffer, *parser, std::ref(*this));
        if (ec) return;
        framing = request_framing{parser->chunked(), std::nullopt};
        if (parser->content_length()) framing.content_length = *parser->content_length();
        if (check_request(parser->get(), framing)) return;  // 400 + close: nothing forwarded
        {
          const auto plan = plan_request(parser->get(), framing, decision, "192.0.2.1", "upstream:80");
          if (!plan.keep_alive) count = kMaxRequests;  // this is the last one
        }
        BOOST_ASIO_CORO_YIELD async_relay(upstream, client, buffer, *parser, serializer, chunk,
                                          relay_timeouts{std::chrono::seconds(1), std::chrono::seconds(1)}, failed,
                                          std::ref(*this));
        if (ec) return;  // the proxy closes the upstream connection: a partial request is never completed
        ends.push_back(upstream_peer.str().size());
      }
    }
  }
};

[[noreturn]] void fail() { std::abort(); }

// Checks one forwarded request, [begin, end) of `bytes`, with a framing reader of its own.
void check_forwarded(std::string_view message) {
  const std::size_t header_end = message.find("\r\n\r\n");
  if (header_end == std::string_view::npos) fail();
  const std::string_view head = message.substr(0, header_end + 2);
  std::string lower(head);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto count = [&](std::string_view name) {
    std::size_t n = 0;
    for (std::size_t at = lower.find(name); at != std::string::npos; at = lower.find(name, at + 1)) ++n;
    return n;
  };
  if (count("\r\nhost:") != 1) fail();
  if (count("\r\nx-real-ip:") != 1 || lower.find("\r\nx-real-ip: 192.0.2.1\r\n") == std::string::npos) fail();
  const std::size_t te = count("\r\ntransfer-encoding:"), cl = count("\r\ncontent-length:");
  if (te + cl > 1 || count("\r\ntrailer:") || count("\r\nte:") || count("\r\nexpect:")) fail();
  std::string_view body = message.substr(header_end + 4);
  if (te == 1) {
    if (lower.find("\r\ntransfer-encoding: chunked\r\n") == std::string::npos) fail();
    // Chunks, then exactly "0\r\n\r\n": no trailer section, nothing after it.
    for (;;) {
      const std::size_t line = body.find("\r\n");
      if (line == std::string_view::npos || line == 0) fail();
      std::size_t size = 0;
      for (std::size_t i = 0; i < line; ++i) {
        const char c = body[i];
        const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0 || size > (std::size_t(1) << 40)) fail();
        size = size * 16 + static_cast<std::size_t>(digit);
      }
      body.remove_prefix(line + 2);
      if (size == 0) {
        if (body != "\r\n") fail();
        return;
      }
      if (body.size() < size + 2 || body.substr(size, 2) != "\r\n") fail();
      body.remove_prefix(size + 2);
    }
  }
  if (cl == 1) {
    const std::size_t at = lower.find("\r\ncontent-length: ") + 18;
    const std::size_t length = std::strtoull(lower.c_str() + at, nullptr, 10);
    if (body.size() != length) fail();
    return;
  }
  if (!body.empty()) fail();  // no framing: no body
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  asio::io_context io;
  beast::test::stream client(io), client_peer(io), upstream(io), upstream_peer(io);
  client.connect(client_peer);
  upstream.connect(upstream_peer);
  beast::error_code ec;
  client_peer.write_some(asio::buffer(data, size), ec);
  client_peer.close();  // the client's EOF after its bytes

  std::vector<std::size_t> ends;
  session s(client, upstream, upstream_peer, ends);
  s();
  io.run();
  const std::string upstream_bytes(upstream_peer.str());

  std::size_t begin = 0;
  for (const std::size_t end : ends) {
    if (end < begin || end > upstream_bytes.size()) fail();
    check_forwarded(std::string_view(upstream_bytes).substr(begin, end - begin));
    begin = end;
  }
  return 0;
}
