// The client session; see connection.hpp. This file and backend.cpp are the only ones
// that instantiate Beast's HTTP I/O templates.
#include "connection.hpp"

#include <cstdio>
#include <ctime>
#include <limits>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "health_feed.hpp"
#include "metrics_page.hpp"

namespace grayroute_proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr std::uint32_t kHeaderLimit = 16 * 1024;
// Not boost::none: Beast 1.74 compares a Content-Length with an empty optional limit
// and reports body_limit for every body.
constexpr std::uint64_t kNoBodyLimit = std::numeric_limits<std::uint64_t>::max();
constexpr std::string_view kHealthPath = "/-/grayroute/health";

grayroute::ip_address to_grayroute(const asio::ip::address& a) noexcept {
  if (a.is_v4()) return grayroute::ip_address::v4(a.to_v4().to_uint());
  const auto bytes = a.to_v6().to_bytes();
  return grayroute::ip_address::from_bytes(bytes.data(), bytes.size()).value_or(grayroute::ip_address());
}

// Malformed input (as opposed to the peer going away).
bool is_bad_input(const beast::error_code& ec) noexcept {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message && ec != http::error::need_buffer;
}

}  // namespace

connection::connection(worker& w, tcp_socket socket)
    : worker_(w), context_(w.context()), options_(context_.options), client_(std::move(socket)) {}

connection::~connection() { worker_.remove(this); }

void connection::start() {
  beast::error_code ec;
  const auto remote = client_.socket().remote_endpoint(ec);
  if (ec) return;
  peer_ = to_grayroute(remote.address());
  peer_text_ = grayroute::to_string(peer_);
  client_.socket().set_option(tcp::no_delay(true), ec);
  worker_.add(this);
  if (context_.proxy_protocol.enabled()) return read_preface();
  loop();
}

// Issue 13: the PROXY header (or its absence) decides the peer before any HTTP is read.
void connection::read_preface() {
  started_ = std::chrono::steady_clock::now();
  async_read_preface(client_, client_buffer_, context_.proxy_protocol.from_balancer(peer_), peer_,
                     options_.client_timeout, [self = shared_from_this()](const preface_step& s) {
                       if (s.what != preface_step::kind::accept) {
                         self->log_request("proxy_protocol", s.why);
                         beast::error_code ignored;
                         self->client_.socket().close(ignored);
                         return;
                       }
                       self->peer_ = s.peer;
                       self->peer_text_ = grayroute::to_string(s.peer);
                       self->loop();
                     });
}

void connection::drain() noexcept {
  draining_ = true;
  if (idle_) client_.cancel();  // the pending read of the next request ends now
  if (tunnel_timer_ && !tunnel_over_) tunnel_end();
}

// check_request, and the 400 it asks for.
bool connection::accept_request() {
  const auto refused = check_request(request_->get(), framing_);
  if (!refused) return true;
  rejected_ = refused->why.data();
  set_local_response(refused->status, "400 Bad Request: " + std::string(refused->why) + "\n");
  return false;
}

bool connection::is_health_request() const {
  const auto target = request_->get().target();
  return std::string_view(target.data(), target.size()).substr(0, target.find('?')) == kHealthPath;
}

bool connection::is_metrics_request() const {
  const auto target = request_->get().target();
  return std::string_view(target.data(), target.size()).substr(0, target.find('?')) == kMetricsPath;
}

// Sent again only without a body and when sending twice is harmless (RFC 9110 9.2.2).
bool connection::replayable() const {
  return request_->is_done() && !framing_.chunked && framing_.content_length.value_or(0) == 0 &&
         idempotent(request_->get().method());
}

void connection::report(grayroute::outcome o) {
  if (snapshot_->health) snapshot_->health->record(route(), o, attempt_started_, std::chrono::steady_clock::now());
}

bool connection::fall_back() {
  if (fell_back_ || !snapshot_->health) return false;
  const auto to = snapshot_->health->retry_route(decision_);
  if (!to) return false;
  fell_back_ = true;
  decision_.original_route = decision_.route;
  decision_.route = *to;
  decision_.reason = grayroute::route_reason::fallback;
  pick_server();  // the fallback route's next server, round robin like any request's
  // The header was prepared for the first route's server and decision: point it at this
  // server (an HTTP/1.0 request's Host) and give the tier behind the decision it now gets.
  address_request(request_->get(), plan_, server_->name);
  context_.tier.forward(request_->get(), decision_, tier_, snapshot_->policy, std::time(nullptr));  // issue 13
  upstream_.reset();
  failure_ = failure::none;
  attempt_ = -1;  // the fallback's pooled connection may be stale too: it gets its fresh retry
  return true;
}

std::string connection::route_label() const {
  std::string label(route_name());
  label += "; reason=";
  label += grayroute::to_string(decision_.reason);
  if (!decision_.rule.empty()) {
    label += "; rule=";
    label += decision_.rule;
  }
  return label;
}

// The route (from the policy of the moment), then the next of its servers on this thread.
void connection::decide() {
  snapshot_ = context_.live.load();
  // Issue 13: a client's decision token is taken out (and obeyed only from a trusted
  // peer), a pin drawn for a request without a key (the policy's given key).
  tier_ = context_.tier.admit(request_->get(), snapshot_->policy.resolver().is_trusted(peer_), std::time(nullptr),
                              snapshot_->policy, snapshot_->rollout_keys);
  if (options_.routing_enabled) {
    const auto& req = request_->get();
    // An absolute-form target carries the host the request is for (RFC 9112 3.2.2).
    std::string_view target(req.target().data(), req.target().size()), host;
    if (!target.empty() && target.front() != '/') {
      if (const std::size_t scheme = target.find("://"); scheme != std::string_view::npos) {
        target.remove_prefix(scheme + 3);
        const std::size_t path = target.find_first_of("/?");
        host = target.substr(0, path);
        target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
      }
    }
    const http::fields& headers = req;
    const std::string_view pin = tier_.pin ? tier_.pin->view() : std::string_view();
    decision_ = snapshot_->policy.decide(grayroute::request_view{peer_, host, target, {}, pin}, headers);
  } else {
    decision_ = grayroute::decision{grayroute::kProduction, grayroute::route_reason::default_route, {peer_, -1, "peer"}, {}, grayroute::kProduction, {}};
  }
  context_.tier.settle(decision_, tier_);
  // #12: an open route falls back, whoever decided (the rules or an upstream tier's token).
  if (options_.routing_enabled && snapshot_->health) decision_ = snapshot_->health->apply(decision_, started_);
  pick_server();
}

void connection::pick_server() {
  const auto& servers = snapshot_->servers[route()];
  server_ = &servers[worker_.next_server(route(), servers.size())];
  pool_ = &worker_.pool(server_->endpoint);
}

// nginx ignores empty lines before a request line (RFC 9112 2.2 allows it); so do we,
// up to the header limit.
bool connection::skip_leading_empty_lines() {
  const auto data = client_buffer_.data();
  const char* bytes = static_cast<const char*>(data.data());
  std::size_t n = 0;
  while (n < data.size() && (bytes[n] == '\r' || bytes[n] == '\n')) ++n;
  if (n == 0 || skipped_empty_lines_ + n > kHeaderLimit) return false;
  skipped_empty_lines_ += n;
  client_buffer_.consume(n);
  return true;
}

void connection::set_local_response(http::status status, std::string body, const char* content_type) {
  local_ = {};
  local_.result(status);
  local_.version(client_version_ == 10 ? 10 : 11);
  local_.set(http::field::server, "grayroute-proxy");
  local_.set(http::field::content_type, content_type);
  local_.body() = std::move(body);
  local_.prepare_payload();
  status_ = static_cast<unsigned>(status);
}

void connection::set_error_response() {
  const std::string& name = server_->name;
  const std::string route(route_name());
  if (failure_ == failure::timeout) {
    set_local_response(http::status::gateway_timeout,
                       "504 Gateway Timeout: the " + route + " upstream " + name + " did not answer\n");
  } else if (failure_ == failure::out_of_descriptors) {
    set_local_response(http::status::service_unavailable, "503 Service Unavailable: no socket for the " + route +
                                                              " upstream " + name + " (" + error_.message() + ")\n");
    local_.set(http::field::retry_after, "1");
  } else {
    set_local_response(http::status::bad_gateway, "502 Bad Gateway: the " + route + " upstream " + name +
                                                      (failure_ == failure::connect ? " is unreachable (" : " failed (") +
                                                      (rejected_ ? std::string(rejected_) : error_.message()) + ")\n");
  }
  if (options_.route_header) local_.set("X-Grayroute", route_label());
  context_.tier.respond(local_, tier_);
}

void connection::log_request(const char* reason, const char* error) {
  if (reason == nullptr && !tunnel_over_ && snapshot_ && snapshot_->health) snapshot_->health->count_request(decision_, status_);
  if (!context_.log.enabled()) return;
  const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const bool routed = reason == nullptr;
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
  if (request_ && request_->is_header_done()) {
    const auto& req = request_->get();
    line += std::string_view(req.method_string().data(), req.method_string().size());
    line += ' ';
    line += std::string_view(req.target().data(), req.target().size());
  } else {
    line += '-';
  }
  line += "\" route=";
  line += routed ? route_name() : std::string_view("-");
  line += " reason=";
  line += routed ? grayroute::to_string(decision_.reason) : std::string_view(reason);
  if (routed && decision_.reason == grayroute::route_reason::fallback) {  // #12: what the rules chose
    line += " original_route=";
    line += snapshot_->policy.route_name(decision_.original_route);
  }
  line += " status=" + std::to_string(status_);
  line += " upstream=";
  line += routed ? std::string_view(server_->name) : std::string_view("-");
  if (routed && !decision_.rule.empty()) {
    line += " rule=";
    line += decision_.rule;
  }
  if (!tier_.token_refusal.empty()) {
    line += " token_ignored=";
    line += tier_.token_refusal;
  }
  if (error) {
    line += " error=\"";
    line += error;
    line += '"';
  }
  char tail[48];
  std::snprintf(tail, sizeof tail, " ms=%.2f\n", elapsed);
  line += tail;
  context_.log.write(line);
}

void connection::loop(beast::error_code ec, std::size_t) {
  auto next = [this] { return beast::bind_front_handler(&connection::loop, shared_from_this()); };
  BOOST_ASIO_CORO_REENTER(this) {
    for (;;) {
      // An idle keep-alive connection must not keep an old policy (and its Redis
      // stores) alive after a reload: the next request loads the one of its moment.
      snapshot_.reset();
      request_.emplace();
      request_->body_limit(kNoBodyLimit);
      request_->header_limit(kHeaderLimit);
      // A first request, or one already begun, is bounded by the client timeout; only
      // the wait between requests is the keep-alive timeout.
      idle_ = client_buffer_.size() == 0 && !first_request_;
      if (idle_ && draining_) break;
      client_.expires_after(idle_ ? options_.keepalive_timeout : options_.client_timeout);
      BOOST_ASIO_CORO_YIELD http::async_read_header(client_, client_buffer_, *request_, next());
      idle_ = false;
      if (ec && is_bad_input(ec) && skip_leading_empty_lines()) continue;
      first_request_ = false;
      skipped_empty_lines_ = 0;
      started_ = std::chrono::steady_clock::now();
      tier_ = tier_request{};
      status_ = 0;
      rejected_ = nullptr;
      client_version_ = 11;
      if (ec) {
        if (!is_bad_input(ec)) break;  // closed, timed out or drained
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

      client_version_ = request_->get().version();
      framing_ = request_framing{request_->chunked(), std::nullopt};
      if (request_->content_length()) framing_.content_length = *request_->content_length();
      if (!accept_request()) {
        local_.keep_alive(false);
        client_.expires_after(options_.client_timeout);
        BOOST_ASIO_CORO_YIELD http::async_write(client_, local_, next());
        log_request("malformed", rejected_);
        break;
      }
      if (is_health_request() || is_metrics_request()) {
        if (is_health_request()) {
          std::string json = context_.live.health_json();
          context_.tier.append_status(json, context_.live.load()->policy);  // issue 13
          set_local_response(http::status::ok, json + "\n", "application/json");
        } else {
          set_local_response(http::status::ok, metrics_page(context_), kMetricsContentType);  // #12
        }
        keep_alive_ = request_->get().keep_alive() && request_->is_done() && !draining_;
        local_.keep_alive(keep_alive_);
        client_.expires_after(options_.client_timeout);
        BOOST_ASIO_CORO_YIELD http::async_write(client_, local_, next());
        log_request(is_health_request() ? "health" : "metrics");
        if (ec || !keep_alive_) break;
        continue;
      }

      decide();
      plan_ = plan_request(request_->get(), framing_, decision_, peer_text_, server_->name);
      context_.tier.forward(request_->get(), decision_, tier_, snapshot_->policy, std::time(nullptr));  // issue 13
      keep_alive_ = plan_.keep_alive;

      // Send the request, on a pooled connection when there is one (the pool hands out
      // only connections that are neither readable nor closed). One that fails anyway
      // before answering is tried again, once, on a fresh connection when the request
      // had no body and is idempotent (as nginx does).
      failure_ = failure::none;
      fell_back_ = false;
      for (attempt_ = 0;; ++attempt_) {
        upstream_ = pool_->take();
        attempt_started_ = std::chrono::steady_clock::now();
        if (!upstream_->reused) {
          upstream_->stream.expires_after(options_.connect_timeout);
          BOOST_ASIO_CORO_YIELD upstream_->stream.async_connect(
              pool_->endpoint(), [self = shared_from_this()](beast::error_code e) { self->loop(e); });
          if (ec) {
            error_ = ec;
            if (out_of_descriptors(ec)) {
              // No socket to be had here: our shortage, not the upstream's failure (no
              // health report, no fallback, which would need a socket too).
              failure_ = failure::out_of_descriptors;
              break;
            }
            failure_ = failure::connect;
            report(ec == beast::error::timeout ? grayroute::outcome::timeout : grayroute::outcome::connect_failure);
            if (fall_back()) continue;  // nothing was sent: any method may go elsewhere
            break;
          }
          upstream_->stream.socket().set_option(tcp::no_delay(true), ec);
        }
        if (plan_.expect_continue) {
          // The upstream never saw Expect: the client hears 100 from us once we know
          // the upstream is there, as nginx does (HTTP/1.1 clients only, RFC 9110 10.1.1).
          plan_.expect_continue = false;
          client_.expires_after(options_.client_timeout);
          BOOST_ASIO_CORO_YIELD asio::async_write(client_.socket(), asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25),
                                                  next());
          if (ec) {
            failure_ = failure::client;
            break;
          }
        }
        BOOST_ASIO_CORO_YIELD async_relay(upstream_->stream, client_, client_buffer_, *request_, request_writer_,
                                          chunk_, relay_timeouts{options_.client_timeout, options_.upstream_timeout},
                                          failed_side_, next());
        if (ec) {
          if (failed_side_ == relay_side::input) {
            failure_ = is_bad_input(ec) ? failure::client_bad_body : failure::client;
          } else {
            failure_ = ec == beast::error::timeout ? failure::timeout : failure::upstream;
          }
          error_ = ec;
        }
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
        if (failure_ == failure::upstream && upstream_->reused && attempt_ == 0 && replayable()) {
          failure_ = failure::none;  // a stale pooled connection: not the route's fault
          continue;
        }
        // #12: the attempt's outcome; a request lost before any response byte goes to the
        // fallback route once, if sending it twice is harmless.
        if (failure_ == failure::none) {
          report(grayroute::outcome_of_status(response_->get().result_int()));
        } else if (failure_ == failure::timeout) {
          report(grayroute::outcome::timeout);
        } else if (failure_ == failure::upstream) {
          const bool nothing_back = failed_side_ == relay_side::output || !response_->got_some();
          report(nothing_back ? grayroute::outcome::connect_failure : grayroute::outcome::status_5xx);
          if (nothing_back && replayable() && fall_back()) continue;
        }
        break;
      }

      if (failure_ == failure::none) {
        answer_ = plan_response(
            response_->get(),
            response_context{client_version_, keep_alive_, plan_.upgrade, draining_, response_->chunked(),
                             response_->content_length().has_value(), response_->is_done(), response_->keep_alive()},
            options_.route_header ? route_label() : std::string());
        context_.tier.respond(response_->get(), tier_);
        if (answer_.bad_upgrade) {
          failure_ = failure::upstream;
          rejected_ = "switched protocols without being asked";
        } else {
          keep_alive_ = answer_.keep_alive;
          status_ = response_->get().result_int();
          BOOST_ASIO_CORO_YIELD async_relay(client_, upstream_->stream, upstream_->buffer, *response_,
                                            response_writer_, chunk_,
                                            relay_timeouts{options_.upstream_timeout, options_.client_timeout},
                                            failed_side_, next());
          if (ec) {
            // The header may be out: nothing can be said to the client any more, and the
            // log must not claim a response it never got completely.
            upstream_.reset();
            status_ = failed_side_ == relay_side::input ? 502 : 499;
            log_request(nullptr, failed_side_ == relay_side::input ? "upstream broke off the response"
                                                                   : "client went away during the response");
            break;
          }
          if (answer_.tunnel) {
            log_request(nullptr, "upgraded: tunnel open");
            tunnel_active_ = std::chrono::steady_clock::now();
            tunnel_timer_.emplace(worker_.io());
            tunnel_watch();
            tunnel_write(false);  // bytes the client sent after its request
            tunnel_write(true);   // bytes the upstream sent after its 101
            return;
          }
          if (answer_.upstream_reusable && response_->is_done()) pool_->give_back(std::move(upstream_));
          upstream_.reset();
          log_request(nullptr);
          if (!keep_alive_) break;
          continue;
        }
      }

      // No response from the upstream reached the client: say why, or close.
      upstream_.reset();
      if (failure_ == failure::client) {
        status_ = 499;
        log_request(nullptr, "client went away during the request");
        break;
      }
      if (failure_ == failure::client_bad_body) {
        // The header went upstream; the upstream connection is closed above, so the
        // half request can never be completed by the next client's bytes.
        rejected_ = "malformed request body";
        set_local_response(http::status::bad_request, "400 Bad Request: malformed request body (" + error_.message() + ")\n");
        keep_alive_ = false;
      } else {
        set_error_response();
        // Unread request body bytes would be taken for the next request: close instead.
        keep_alive_ = keep_alive_ && request_->is_done() && !draining_;
      }
      local_.keep_alive(keep_alive_);
      client_.expires_after(options_.client_timeout);
      BOOST_ASIO_CORO_YIELD http::async_write(client_, local_, next());
      log_request(nullptr, rejected_ ? rejected_ : error_.message().c_str());
      if (ec || !keep_alive_) break;
    }
    {
      beast::error_code ignored;
      client_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      client_.close();
    }
  }
}

// After a 101: bytes both ways on the raw sockets until either side closes or both are
// silent for --upstream-timeout. (Beast's per-stream timeout cannot serve a read and a
// write pending on the same stream at once, so one timer watches the tunnel.)
void connection::tunnel_read(bool downstream) {
  auto& from = downstream ? upstream_->stream.socket() : client_.socket();
  auto& buffer = downstream ? upstream_->buffer : client_buffer_;
  from.async_read_some(buffer.prepare(kChunk), [self = shared_from_this(), downstream](beast::error_code ec, std::size_t n) {
    if (ec || self->tunnel_over_) return self->tunnel_end();
    auto& b = downstream ? self->upstream_->buffer : self->client_buffer_;
    b.commit(n);
    self->tunnel_active_ = std::chrono::steady_clock::now();
    self->tunnel_write(downstream);
  });
}

void connection::tunnel_write(bool downstream) {
  auto& buffer = downstream ? upstream_->buffer : client_buffer_;
  if (buffer.size() == 0) return tunnel_read(downstream);
  auto& to = downstream ? client_.socket() : upstream_->stream.socket();
  asio::async_write(to, buffer.data(), [self = shared_from_this(), downstream](beast::error_code ec, std::size_t n) {
    if (ec || self->tunnel_over_) return self->tunnel_end();
    (downstream ? self->upstream_->buffer : self->client_buffer_).consume(n);
    self->tunnel_bytes_[downstream ? 1 : 0] += n;
    self->tunnel_active_ = std::chrono::steady_clock::now();
    self->tunnel_read(downstream);
  });
}

void connection::tunnel_watch() {
  tunnel_timer_->expires_at(tunnel_active_ + options_.upstream_timeout);
  tunnel_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->tunnel_over_) return;
    if (std::chrono::steady_clock::now() - self->tunnel_active_ >= self->options_.upstream_timeout) {
      return self->tunnel_end();
    }
    self->tunnel_watch();
  });
}

void connection::tunnel_end() {
  if (tunnel_over_) return;
  tunnel_over_ = true;
  beast::error_code ignored;
  tunnel_timer_->cancel();
  client_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  client_.socket().close(ignored);
  upstream_->stream.socket().close(ignored);
  const std::string note = "tunnel closed: " + std::to_string(tunnel_bytes_[0]) + " bytes up, " +
                           std::to_string(tunnel_bytes_[1]) + " bytes down";
  log_request(nullptr, note.c_str());
}

void start_connection(worker& w, tcp_socket socket) {
  if (w.draining()) return;  // accepted just before the stop: closing it is the answer
  std::make_shared<connection>(w, std::move(socket))->start();
}

}  // namespace grayroute_proxy
