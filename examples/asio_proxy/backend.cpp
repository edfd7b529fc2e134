// grayroute-backend: the tiny upstream for the demo, the tests and the benchmark.
// It says who it is and what it saw, so a reader can tell where a request went:
//
//   grayroute-backend --name gray --listen 127.0.0.1:8090
//
//   every response   X-Backend: <name>, X-Backend-Connection: <n-th TCP connection>,
//                    body "<name>\n"
//   /echo            the body lists the request headers as received
//   ?delay=MS        answer after MS milliseconds (slow upstream)
//   ?bytes=N         answer N bytes (&chunked=1: chunked), streamed
//   a request body   is read and counted, not kept: X-Body-Bytes: <count>
//   /-/connections   the number of TCP connections accepted so far
//   /-/requests      requests received so far, other than /-/ ones (?method=POST: of that method)
//   ?reset=NAME      when NAME is this backend's: read the request, then reset the
//                    connection without a response byte
//   --status N       answer N (e.g. 500) to everything but /-/ requests
//
// One thread per connection with blocking I/O: the simplest server that is still
// fast enough not to be the bottleneck of the benchmark.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Not boost::none: Beast 1.74 reports body_limit for any Content-Length when the limit is none.
constexpr std::uint64_t kNoBodyLimit = std::numeric_limits<std::uint64_t>::max();
std::atomic<std::uint64_t> connections{0};
char filler[64 * 1024];  // response bytes for ?bytes=N, filled once in main()
unsigned answer_status = 200;  // --status
std::mutex requests_mutex;
std::map<std::string, std::uint64_t, std::less<>> requests_by_method;  // guarded by requests_mutex

// The value of `name` in the query string, or "".
std::string query_value(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return "";
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return std::string(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
  }
  return "";
}

std::uint64_t requests_seen(std::string_view method) {
  std::lock_guard<std::mutex> lock(requests_mutex);
  std::uint64_t n = 0;
  for (const auto& [m, count] : requests_by_method) n += method.empty() || m == method ? count : 0;
  return n;
}

void serve(tcp::socket socket, const std::string& name, std::uint64_t ordinal) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  std::vector<char> sink(64 * 1024);
  for (;;) {
    http::request_parser<http::buffer_body> parser;
    parser.body_limit(kNoBodyLimit);
    http::read_header(socket, buffer, parser, ec);
    if (ec) return;
    std::uint64_t received = 0;
    while (!parser.is_done()) {
      parser.get().body().data = sink.data();
      parser.get().body().size = sink.size();
      http::read(socket, buffer, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return;
      received += sink.size() - parser.get().body().size;
    }
    const auto& req = parser.get();
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    const bool own_page = path.substr(0, 3) == "/-/";
    if (!own_page) {
      std::lock_guard<std::mutex> lock(requests_mutex);
      ++requests_by_method[std::string(req.method_string())];
    }
    if (query_value(target, "reset") == name) {
      socket.set_option(asio::socket_base::linger(true, 0), ec);  // close() sends RST
      return;
    }
    if (const auto delay = query_value(target, "delay"); !delay.empty()) {
      // Tests wait for this line to know a request is in flight (stderr: unbuffered).
      std::fprintf(stderr, "delaying %.*s\n", static_cast<int>(target.size()), target.data());
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoll(delay.c_str())));
    }
    const bool keep_alive = req.keep_alive();
    auto common = [&](auto& res) {
      res.version(req.version());
      res.set("X-Backend", name);
      res.set("X-Backend-Connection", std::to_string(ordinal));
      if (received || parser.chunked() || parser.content_length()) {
        res.set("X-Body-Bytes", std::to_string(received));
      }
      res.keep_alive(keep_alive);
    };

    if (const auto bytes = query_value(target, "bytes"); !bytes.empty()) {
      std::uint64_t remaining = std::strtoull(bytes.c_str(), nullptr, 10);
      http::response<http::buffer_body> res{http::status::ok, req.version()};
      common(res);
      if (query_value(target, "chunked") == "1") {
        res.chunked(true);
      } else {
        res.content_length(remaining);
      }
      http::response_serializer<http::buffer_body> writer{res};
      do {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, sizeof filler));
        res.body().data = n ? filler : nullptr;
        res.body().size = n;
        remaining -= n;
        res.body().more = remaining > 0;
        http::write(socket, writer, ec);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) return;
      } while (!writer.is_done());
    } else {
      http::response<http::string_body> res{http::status::ok, req.version()};
      if (!own_page) res.result(answer_status);
      common(res);
      res.set(http::field::content_type, "text/plain");
      if (path == "/-/connections") {
        res.body() = std::to_string(connections.load()) + "\n";
      } else if (path == "/-/requests") {
        res.body() = std::to_string(requests_seen(query_value(target, "method"))) + "\n";
      } else {
        res.body() = name + "\n";
        if (path == "/echo") {
          for (const auto& field : req) {
            res.body().append(field.name_string().data(), field.name_string().size());
            res.body() += ": ";
            res.body().append(field.value().data(), field.value().size());
            res.body() += "\n";
          }
        }
        if (received) res.body() += "received " + std::to_string(received) + " bytes\n";
      }
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec) return;
    }
    if (!keep_alive) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = "backend", listen = "127.0.0.1:8080";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--name") {
      name = argv[i + 1];
    } else if (flag == "--listen") {
      listen = argv[i + 1];
    } else if (flag == "--status") {
      answer_status = static_cast<unsigned>(std::atoi(argv[i + 1]));
    } else {
      break;
    }
  }
  if (argc % 2 == 0 || (argc > 1 && std::string(argv[1]) == "--help")) {
    std::fprintf(stderr, "usage: grayroute-backend [--name production] [--listen 127.0.0.1:8080] [--status 200]\n");
    return 2;
  }
  std::memset(filler, 'x', sizeof filler);
  try {
    const auto colon = listen.rfind(':');
    std::string host = listen.substr(0, colon);
    if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
    const tcp::endpoint endpoint(asio::ip::make_address(host),
                                 static_cast<unsigned short>(std::atoi(listen.c_str() + colon + 1)));
    asio::io_context io;
    tcp::acceptor acceptor(io, endpoint);
    std::printf("grayroute-backend \"%s\" listening on %s\n", name.c_str(), listen.c_str());
    std::fflush(stdout);
    for (;;) {
      tcp::socket socket(io);
      acceptor.accept(socket);
      socket.set_option(tcp::no_delay(true));
      const std::uint64_t ordinal = ++connections;
      std::thread(serve, std::move(socket), name, ordinal).detach();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grayroute-backend: %s\n", e.what());
    return 1;
  }
}
