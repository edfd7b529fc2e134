// What grayroute-proxy does to a request and a response header on their way through,
// as pure functions of the header, the router's decision and a few facts about the
// connection: no sockets, no clock, no allocation beyond the header's own. The session
// (connection.cpp) only sequences I/O around them; forwarding_test.cpp and the fuzz
// target call them directly.
//
// The rules, and where they come from:
// - Framing (RFC 9112 6.1-6.3, and what nginx rejects): Transfer-Encoding whose final
//   coding is not chunked, Transfer-Encoding in HTTP/1.0, Transfer-Encoding beside
//   Content-Length are 400 + close. Repeated equal Content-Length values ("5, 5", or two
//   fields) are normalised to one (Beast has already rejected unequal ones).
// - Host (RFC 9112 3.2): HTTP/1.1 needs exactly one Host; any version with several Host
//   fields or an invalid one is 400. An absolute-form target is rewritten to origin-form
//   and its authority becomes the Host. An HTTP/1.0 request without Host gets the
//   upstream's authority, as nginx's proxy_pass does.
// - Hop-by-hop fields (RFC 9110 7.6.1) are removed, then the proxy's own X-Forwarded-For
//   and X-Real-IP are set, so no client can strip or forge them.
// - Upgrade (RFC 9110 7.8): forwarded only when the client asked for it in Connection; an
//   upstream 101 the client did not ask for is a 502.
// - Trailers: never forwarded (the session writes the header before it reads the body,
//   so trailer fields Beast adds to the message later are never serialised) — as nginx.
#ifndef GRAYROUTE_PROXY_FORWARDING_HPP
#define GRAYROUTE_PROXY_FORWARDING_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>

#include <grayroute/router.hpp>

namespace grayroute_proxy {

namespace http = boost::beast::http;

/// Why a request is answered by the proxy instead of forwarded (always with a close).
struct rejection {
  http::status status;
  std::string_view why;  // a static string, for the 400 body and the access log
};

/// What the request parser learnt about the body (Beast's parser, once the header is done).
struct request_framing {
  bool chunked = false;
  std::optional<std::uint64_t> content_length;
};

/// What the session needs to know after plan_request.
struct request_plan {
  bool keep_alive = false;        // the client's wish
  bool expect_continue = false;   // answer "100 Continue" (HTTP/1.1 clients only)
  bool upgrade = false;           // the client asked for a protocol upgrade
  bool host_is_upstream = false;  // an HTTP/1.0 request without Host: Host names the upstream
};

/// RFC 9112 framing and Host checks on a parsed header; nullopt when it may be forwarded.
[[nodiscard]] std::optional<rejection> check_request(const http::request_header<>& req,
                                                     const request_framing& framing) noexcept;

/// Rewrites a checked request header for the upstream. `peer`: the TCP peer's address as
/// text; `upstream_authority`: "host:port" of the chosen upstream (Host of HTTP/1.0
/// requests that had none). Never fails: everything that could is in check_request.
request_plan plan_request(http::request_header<>& req, const request_framing& framing,
                          const grayroute::decision& decision, std::string_view peer,
                          std::string_view upstream_authority);

/// Points a planned request at `upstream_authority`, the server it is now sent to (a
/// retry on the fallback route goes to another server than the one plan_request saw):
/// a Host that plan_request took from the upstream names this one. Everything else
/// plan_request did holds for any server.
void address_request(http::request_header<>& req, const request_plan& plan, std::string_view upstream_authority);

/// What the session needs to know after plan_response.
struct response_plan {
  bool keep_alive = false;         // keep the client connection after this response
  bool upstream_reusable = false;  // the upstream connection may go back to the pool
  bool tunnel = false;             // 101: relay bytes both ways until either side closes
  bool bad_upgrade = false;        // 101 nobody asked for: answer 502 instead
};

/// What the session knows about the exchange when the response header has arrived.
struct response_context {
  unsigned client_version = 11;
  bool client_keep_alive = false;
  bool client_asked_upgrade = false;
  bool draining = false;
  bool chunked = false;           // the upstream's framing, from the response parser
  bool has_length = false;        // Content-Length present
  bool complete_at_header = false;  // no body (HEAD, 1xx, 204, 304, length 0)
  bool upstream_keep_alive = false;
};

/// Rewrites the upstream's response header for the client; `route_label` (may be empty)
/// goes into X-Grayroute.
response_plan plan_response(http::response_header<>& res, const response_context& context,
                            std::string_view route_label);

/// True for methods that may be sent twice when a pooled connection turns out dead
/// (RFC 9110 9.2.2).
[[nodiscard]] bool idempotent(http::verb method) noexcept;

/// Removes the hop-by-hop fields (RFC 9110 7.6.1), including those Connection names.
void strip_hop_by_hop(http::fields& fields);

/// A Host value nginx would accept: reg-name, IPv4 or [IPv6] with an optional port.
[[nodiscard]] bool valid_host(std::string_view host) noexcept;

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_FORWARDING_HPP
