// One client connection: read a request header, ask the router, relay the request to
// a pooled upstream connection and the response back, then the next request.
//
// Bodies stream through one fixed buffer (Beast's http_relay pattern: a parser with a
// buffer_body on one side, a serializer over the same message on the other), so a
// 1 GiB upload costs 32 KiB. The steps are a stackless coroutine (asio::coroutine):
// each BOOST_ASIO_CORO_YIELD starts one async operation and resumes in loop().
// This is the only file that instantiates Beast's HTTP templates.
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/asio/coroutine.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "server.hpp"

namespace grayroute_proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kChunk = 32 * 1024;
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
// Not boost::none: Beast 1.74 compares a Content-Length with an empty optional limit
// and reports body_limit for every body.
constexpr std::uint64_t kNoBodyLimit = std::numeric_limits<std::uint64_t>::max();
constexpr std::string_view kHealthPath = "/-/grayroute/health";

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 7.6.1: a proxy removes Connection, every header Connection names, and the
// fixed hop-by-hop set. Framing is not the client's to remove: Host and Content-Length
// stay, and Transfer-Encoding is set again from what the parser saw.
void strip_hop_by_hop(http::fields& fields) {
  std::vector<std::string> named;
  const auto lines = fields.equal_range(http::field::connection);
  for (auto line = lines.first; line != lines.second; ++line) {
    std::string_view value(line->value().data(), line->value().size());
    while (!value.empty()) {
      const std::size_t comma = value.find(',');
      const std::string_view token = trim(value.substr(0, comma));
      if (!token.empty() && !iequals(token, "host") && !iequals(token, "content-length")) named.emplace_back(token);
      value.remove_prefix(comma == std::string_view::npos ? value.size() : comma + 1);
    }
  }
  for (const auto& name : named) fields.erase(name);
  for (const char* name : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"}) {
    fields.erase(name);
  }
}

grayroute::ip_address to_grayroute(const asio::ip::address& a) noexcept {
  if (a.is_v4()) return grayroute::ip_address::v4(a.to_v4().to_uint());
  const auto bytes = a.to_v6().to_bytes();
  return grayroute::ip_address::from_bytes(bytes.data(), bytes.size()).value_or(grayroute::ip_address());
}

// RFC 9110 9.2.2; what may be sent twice when a pooled connection turns out dead.
bool idempotent(http::verb method) noexcept {
  switch (method) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::trace:
    case http::verb::put:
    case http::verb::delete_:
      return true;
    default:
      return false;
  }
}

// Malformed input from the client (as opposed to the client going away).
bool is_bad_request(const beast::error_code& ec) noexcept {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message && ec != http::error::need_buffer;
}

class connection : public session, public std::enable_shared_from_this<connection>, asio::coroutine {
 public:
  connection(worker& w, tcp_socket socket)
      : worker_(w), context_(w.context()), options_(context_.options), client_(std::move(socket)) {}

  ~connection() override { worker_.remove(this); }

  void start() {
    beast::error_code ec;
    const auto remote = client_.socket().remote_endpoint(ec);
    if (ec) return;
    peer_ = to_grayroute(remote.address());
    peer_text_ = grayroute::to_string(peer_);
    client_.socket().set_option(tcp::no_delay(true), ec);
    worker_.add(this);
    loop();
  }

  void drain() noexcept override {
    draining_ = true;
    if (idle_) client_.cancel();  // the pending read of the next request ends now
  }

 private:
  enum class failure { none, client, connect, upstream, timeout };

  auto next() { return beast::bind_front_handler(&connection::loop, shared_from_this()); }

  void loop(beast::error_code ec = {}, std::size_t = 0);
  bool begin_request();
  void prepare_response();
  void set_local_response(http::status status, std::string body, const char* content_type = "text/plain");
  void log_request(const char* reason);
  grayroute::route_id route() const noexcept { return decision_.route; }
  /// "gray; reason=list", for the X-Grayroute response header.
  std::string route_label() const {
    std::string label(context_.router.route_name(route()));
    label += "; reason=";
    label += grayroute::to_string(decision_.reason);
    return label;
  }

  worker& worker_;
  const proxy_context& context_;
  const proxy_options& options_;
  tcp_stream client_;
  beast::flat_buffer client_buffer_;
  grayroute::ip_address peer_;
  std::string peer_text_;

  std::optional<http::request_parser<http::buffer_body>> request_;
  std::optional<http::request_serializer<http::buffer_body>> request_writer_;
  std::optional<http::response_parser<http::buffer_body>> response_;
  std::optional<http::response_serializer<http::buffer_body>> response_writer_;
  http::response<http::string_body> local_;
  std::unique_ptr<upstream_connection> upstream_;
  std::array<char, kChunk> chunk_;

  grayroute::decision decision_;
  std::chrono::steady_clock::time_point started_;
  failure failure_ = failure::none;
  beast::error_code error_;  // why the upstream failed, for the 502 body
  int attempt_ = 0;
  unsigned status_ = 0;
  bool keep_alive_ = false, expect_continue_ = false, request_has_body_ = false;
  bool upstream_reusable_ = false;
  bool idle_ = false, draining_ = false;
};

// Decides the route and rewrites the header for the upstream. False for a request
// answered here (health, missing Host).
bool connection::begin_request() {
  auto& req = request_->get();
  started_ = std::chrono::steady_clock::now();
  keep_alive_ = req.keep_alive();
  request_has_body_ = !request_->is_done();
  if (req.version() == 11 && req.count(http::field::host) != 1) {
    set_local_response(http::status::bad_request, "400 Bad Request: HTTP/1.1 needs exactly one Host header\n");
    keep_alive_ = false;
    return false;
  }
  const std::string_view target(req.target().data(), req.target().size());
  if (target.substr(0, target.find('?')) == kHealthPath) {
    set_local_response(http::status::ok, context_.list.health_json() + "\n", "application/json");
    if (request_has_body_) keep_alive_ = false;
    return false;
  }

  const http::fields& headers = req;
  if (options_.routing_enabled) {
    decision_ = context_.router.decide(peer_, headers);
  } else {
    decision_ = grayroute::decision{grayroute::kProduction, grayroute::route_reason::default_route, {peer_, -1, "peer"}, {}};
  }

  const auto expect = req[http::field::expect];
  expect_continue_ = iequals(std::string_view(expect.data(), expect.size()), "100-continue");
  strip_hop_by_hop(req);
  // The proxy's own headers go on after the removal, so no client can strip them.
  if (expect_continue_) req.erase(http::field::expect);  // answered here: see loop()
  std::string forwarded_for;
  const auto lines = req.equal_range("X-Forwarded-For");
  for (auto line = lines.first; line != lines.second; ++line) {
    if (!forwarded_for.empty()) forwarded_for += ", ";
    forwarded_for.append(line->value().data(), line->value().size());
  }
  if (!forwarded_for.empty()) forwarded_for += ", ";
  forwarded_for += peer_text_;
  req.set("X-Forwarded-For", forwarded_for);
  req.set("X-Real-IP", grayroute::to_string(decision_.client.address));
  if (request_->chunked()) {
    req.erase(http::field::content_length);  // RFC 9112 6.3: chunked wins, the length must go
    req.chunked(true);
  }
  req.version(11);
  return true;
}

void connection::prepare_response() {
  auto& res = response_->get();
  const unsigned client_version = request_->get().version();
  const bool close_delimited = !response_->is_done() && !response_->chunked() && !response_->content_length();
  upstream_reusable_ = response_->keep_alive() && !close_delimited;
  strip_hop_by_hop(res);
  if (client_version >= 11) {
    if (response_->chunked() || close_delimited) res.chunked(true);
  } else if (response_->chunked() || close_delimited) {
    keep_alive_ = false;  // an HTTP/1.0 client learns where the body ends from the close
  }
  res.version(client_version);
  if (draining_) keep_alive_ = false;
  res.keep_alive(keep_alive_);
  if (options_.route_header) res.set("X-Grayroute", route_label());
}

void connection::set_local_response(http::status status, std::string body, const char* content_type) {
  local_ = {};
  local_.result(status);
  local_.version(request_ && request_->get().version() == 10 ? 10 : 11);
  local_.set(http::field::server, "grayroute-proxy");
  local_.set(http::field::content_type, content_type);
  local_.body() = std::move(body);
  local_.prepare_payload();
  status_ = static_cast<unsigned>(status);
}

void connection::log_request(const char* reason) {
  if (!context_.log.enabled()) return;
  const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const bool routed = reason == nullptr;
  const auto& req = request_->get();
  std::string line;
  line.reserve(256);
  line += when;
  line += " client=";
  line += routed ? grayroute::to_string(decision_.client.address) : peer_text_;
  line += " (";
  line += routed ? decision_.client.source_name : std::string_view("peer");
  line += ") peer=";
  line += peer_text_;
  line += " \"";
  line += std::string_view(req.method_string().data(), req.method_string().size());
  line += ' ';
  line += std::string_view(req.target().data(), req.target().size());
  line += "\" route=";
  line += routed ? context_.router.route_name(route()) : std::string_view("-");
  line += " reason=";
  line += routed ? grayroute::to_string(decision_.reason) : std::string_view(reason);
  line += " status=" + std::to_string(status_);
  line += " upstream=";
  line += routed ? context_.upstream_names[route()] : std::string("-");
  char tail[48];
  std::snprintf(tail, sizeof tail, " ms=%.2f\n", elapsed);
  line += tail;
  context_.log.write(line);
}

void connection::loop(beast::error_code ec, std::size_t) {
  BOOST_ASIO_CORO_REENTER(this) {
    for (;;) {
      request_.emplace();
      request_->body_limit(kNoBodyLimit);
      request_->header_limit(kHeaderLimit);
      idle_ = client_buffer_.size() == 0;
      if (idle_ && draining_) break;
      client_.expires_after(idle_ ? options_.keepalive_timeout : options_.client_timeout);
      BOOST_ASIO_CORO_YIELD http::async_read_header(client_, client_buffer_, *request_, next());
      idle_ = false;
      if (ec) {
        if (!is_bad_request(ec)) break;  // closed, timed out or drained
        started_ = std::chrono::steady_clock::now();
        {
          const auto status = ec == http::error::header_limit ? http::status::request_header_fields_too_large
                                                              : http::status::bad_request;
          const auto reason = http::obsolete_reason(status);
          set_local_response(status, std::to_string(static_cast<unsigned>(status)) + " " +
                                         std::string(reason.data(), reason.size()) + ": " + ec.message() + "\n");
        }
        local_.keep_alive(false);
        client_.expires_after(options_.client_timeout);
        BOOST_ASIO_CORO_YIELD http::async_write(client_, local_, next());
        log_request("malformed");
        break;
      }

      if (!begin_request()) {
        local_.keep_alive(keep_alive_ && !draining_);
        client_.expires_after(options_.client_timeout);
        BOOST_ASIO_CORO_YIELD http::async_write(client_, local_, next());
        log_request(status_ == 200 ? "health" : "malformed");
        if (ec || !keep_alive_ || draining_) break;
        continue;
      }

      // Send the request, on a pooled connection when there is one. A pooled
      // connection the upstream closed meanwhile fails at once; an idempotent request
      // without a body is then sent again, once, on a fresh connection (as nginx does).
      failure_ = failure::none;
      for (attempt_ = 0;; ++attempt_) {
        upstream_ = worker_.pool(route()).take(/*probe=*/request_has_body_);
        if (!upstream_->reused) {
          upstream_->stream.expires_after(options_.connect_timeout);
          BOOST_ASIO_CORO_YIELD upstream_->stream.async_connect(
              worker_.pool(route()).endpoint(), [self = shared_from_this()](beast::error_code e) { self->loop(e); });
          if (ec) {
            failure_ = failure::connect;
            error_ = ec;
            break;
          }
          upstream_->stream.socket().set_option(tcp::no_delay(true), ec);
        }
        if (expect_continue_) {
          // The upstream never saw Expect: the client hears 100 from us once we know
          // the upstream is there, as nginx does.
          expect_continue_ = false;
          client_.expires_after(options_.client_timeout);
          BOOST_ASIO_CORO_YIELD asio::async_write(client_.socket(), asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25),
                                                  next());
          if (ec) {
            failure_ = failure::client;
            break;
          }
        }
        request_writer_.emplace(request_->get());
        do {
          if (!request_->is_done()) {
            request_->get().body().data = chunk_.data();
            request_->get().body().size = chunk_.size();
            client_.expires_after(options_.client_timeout);
            BOOST_ASIO_CORO_YIELD http::async_read(client_, client_buffer_, *request_, next());
            if (ec == http::error::need_buffer) ec = {};
            if (ec) {
              failure_ = failure::client;
              break;
            }
            request_->get().body().size = chunk_.size() - request_->get().body().size;
            request_->get().body().data = chunk_.data();
            request_->get().body().more = !request_->is_done();
          } else {
            request_->get().body().data = nullptr;
            request_->get().body().size = 0;
            request_->get().body().more = false;
          }
          upstream_->stream.expires_after(options_.upstream_timeout);
          BOOST_ASIO_CORO_YIELD http::async_write(upstream_->stream, *request_writer_, next());
          if (ec == http::error::need_buffer) ec = {};
          if (ec) {
            failure_ = ec == beast::error::timeout ? failure::timeout : failure::upstream;
            error_ = ec;
            break;
          }
        } while (!request_writer_->is_done());

        if (failure_ == failure::none) {
          // Interim 1xx responses (103 Early Hints, a stray 100) are not relayed.
          do {
            response_.emplace();
            response_->body_limit(kNoBodyLimit);
            response_->header_limit(kHeaderLimit * 4);
            if (request_->get().method() == http::verb::head) response_->skip(true);
            upstream_->stream.expires_after(options_.upstream_timeout);
            BOOST_ASIO_CORO_YIELD http::async_read_header(upstream_->stream, upstream_->buffer, *response_, next());
          } while (!ec && response_->get().result_int() / 100 == 1 && response_->get().result_int() != 101);
          if (ec) failure_ = ec == beast::error::timeout ? failure::timeout : failure::upstream, error_ = ec;
        }
        if (failure_ == failure::upstream && upstream_->reused && attempt_ == 0 && !request_has_body_ &&
            idempotent(request_->get().method())) {
          failure_ = failure::none;
          continue;
        }
        break;
      }

      if (failure_ != failure::none) {
        upstream_.reset();
        if (failure_ == failure::client) break;
        {
          const std::string& name = context_.upstream_names[route()];
          const std::string route_name(context_.router.route_name(route()));
          if (failure_ == failure::timeout) {
            set_local_response(http::status::gateway_timeout,
                               "504 Gateway Timeout: the " + route_name + " upstream " + name + " did not answer\n");
          } else {
            set_local_response(http::status::bad_gateway, "502 Bad Gateway: the " + route_name + " upstream " + name +
                                                              (failure_ == failure::connect ? " is unreachable (" : " failed (") +
                                                              error_.message() + ")\n");
          }
        }
        // Unread request body bytes would be taken for the next request: close instead.
        keep_alive_ = keep_alive_ && request_->is_done() && !draining_;
        local_.keep_alive(keep_alive_);
        if (options_.route_header) local_.set("X-Grayroute", route_label());
        client_.expires_after(options_.client_timeout);
        BOOST_ASIO_CORO_YIELD http::async_write(client_, local_, next());
        log_request(nullptr);
        if (ec || !keep_alive_) break;
        continue;
      }

      prepare_response();
      status_ = response_->get().result_int();
      response_writer_.emplace(response_->get());
      do {
        if (!response_->is_done()) {
          response_->get().body().data = chunk_.data();
          response_->get().body().size = chunk_.size();
          upstream_->stream.expires_after(options_.upstream_timeout);
          BOOST_ASIO_CORO_YIELD http::async_read(upstream_->stream, upstream_->buffer, *response_, next());
          if (ec == http::error::need_buffer) ec = {};
          if (ec) {
            failure_ = failure::upstream;
            break;
          }
          response_->get().body().size = chunk_.size() - response_->get().body().size;
          response_->get().body().data = chunk_.data();
          response_->get().body().more = !response_->is_done();
        } else {
          response_->get().body().data = nullptr;
          response_->get().body().size = 0;
          response_->get().body().more = false;
        }
        client_.expires_after(options_.client_timeout);
        BOOST_ASIO_CORO_YIELD http::async_write(client_, *response_writer_, next());
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          failure_ = failure::client;
          break;
        }
      } while (!response_writer_->is_done());

      if (failure_ == failure::none && upstream_reusable_ && response_->is_done()) {
        worker_.pool(route()).give_back(std::move(upstream_));
      }
      upstream_.reset();
      log_request(nullptr);
      // Header done, body cut short: the client must see the connection end.
      if (failure_ != failure::none || !keep_alive_) break;
    }
    {
      beast::error_code ignored;
      client_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      client_.close();
    }
  }
}

}  // namespace

void start_connection(worker& w, tcp_socket socket) {
  if (w.draining()) return;  // accepted just before the stop: closing it is the answer
  std::make_shared<connection>(w, std::move(socket))->start();
}

}  // namespace grayroute_proxy
