// The forwarding rules; see forwarding.hpp.
#include "forwarding.hpp"

#include <vector>

#include <grayroute/headers.hpp>

namespace grayroute_proxy {

namespace {

using grayroute::iequals;

std::string_view view(boost::beast::string_view s) noexcept { return {s.data(), s.size()}; }

// Calls f(token) for each comma-separated token of every `name` field; stops when f returns true.
template <class F>
bool any_token(const http::fields& fields, http::field name, F f) {
  const auto lines = fields.equal_range(name);
  for (auto line = lines.first; line != lines.second; ++line) {
    std::string_view value = view(line->value());
    while (!value.empty()) {
      const std::size_t comma = value.find(',');
      const std::string_view token = grayroute::trim_ows(value.substr(0, comma));
      if (!token.empty() && f(token)) return true;
      value.remove_prefix(comma == std::string_view::npos ? value.size() : comma + 1);
    }
  }
  return false;
}

// The final transfer coding named across all Transfer-Encoding fields.
std::string_view last_coding(const http::fields& fields) {
  std::string_view last;
  any_token(fields, http::field::transfer_encoding, [&](std::string_view token) {
    last = token;
    return false;
  });
  return last;
}

// "http://a.example:8080/x?y" -> authority "a.example:8080", origin form "/x?y".
bool split_absolute_form(std::string_view target, std::string_view& authority, std::string_view& rest) noexcept {
  std::size_t scheme = 0;
  if (target.size() >= 7 && iequals(target.substr(0, 7), "http://")) {
    scheme = 7;
  } else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://")) {
    scheme = 8;
  } else {
    return false;
  }
  target.remove_prefix(scheme);
  const std::size_t end = target.find_first_of("/?#");
  authority = target.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : target.substr(end);
  return true;
}

boost::beast::string_view bv(std::string_view s) noexcept { return {s.data(), s.size()}; }

bool has_token(const http::fields& fields, http::field name, std::string_view wanted) {
  return any_token(fields, name, [&](std::string_view token) { return iequals(token, wanted); });
}

// RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
bool wants_keep_alive(const http::fields& fields, unsigned version) {
  if (version >= 11) return !has_token(fields, http::field::connection, "close");
  return has_token(fields, http::field::connection, "keep-alive");
}

// Connection for a header whose hop-by-hop fields are gone.
void set_persistence(http::fields& fields, unsigned version, bool keep_alive) {
  if (version >= 11 && !keep_alive) fields.set(http::field::connection, "close");
  if (version < 11 && keep_alive) fields.set(http::field::connection, "keep-alive");
}

}  // namespace

bool valid_host(std::string_view host) noexcept {
  // As nginx's ngx_http_validate_host: no empty value, no "..", no '/' or '\\', no
  // whitespace or control bytes; an IPv6 literal in brackets.
  if (host.empty() || host.size() > 255 || host.front() == '.') return false;
  bool in_brackets = false, after_brackets = false;
  char previous = 0;
  for (std::size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    if (c == '.' && previous == '.') return false;
    if (c == '[') {
      if (i != 0) return false;
      in_brackets = true;
    } else if (c == ']') {
      if (!in_brackets) return false;
      in_brackets = false;
      after_brackets = true;
    } else if (c == ':') {
      // in brackets: part of the address; outside: the port separator
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_' || c == '~' || c == '%' || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' ||
               c == ')' || c == '*' || c == '+' || c == ',' || c == ';' || c == '=') {
      if (after_brackets && c != '.' && !(c >= '0' && c <= '9')) return false;
    } else {
      return false;
    }
    previous = c;
  }
  return !in_brackets;
}

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

void strip_hop_by_hop(http::fields& fields) {
  std::vector<std::string> named;
  any_token(fields, http::field::connection, [&](std::string_view token) {
    // Framing is not the client's to remove: Host and Content-Length stay.
    if (!iequals(token, "host") && !iequals(token, "content-length")) named.emplace_back(token);
    return false;
  });
  for (const auto& name : named) fields.erase(name);
  for (const char* name :
       {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"}) {
    fields.erase(name);
  }
}

std::optional<rejection> check_request(const http::request_header<>& req, const request_framing& framing) noexcept {
  const bool has_te = req.count(http::field::transfer_encoding) != 0;
  if (has_te) {
    if (req.version() < 11) return rejection{http::status::bad_request, "Transfer-Encoding in an HTTP/1.0 request"};
    if (!iequals(last_coding(req), "chunked")) {
      return rejection{http::status::bad_request, "Transfer-Encoding whose final coding is not chunked"};
    }
    if (req.count(http::field::content_length) != 0) {
      return rejection{http::status::bad_request, "Transfer-Encoding together with Content-Length"};
    }
  }
  const std::size_t hosts = req.count(http::field::host);
  if (hosts > 1) return rejection{http::status::bad_request, "more than one Host header"};
  if (hosts == 0 && req.version() >= 11) return rejection{http::status::bad_request, "HTTP/1.1 needs a Host header"};
  if (hosts == 1 && !valid_host(view(req[http::field::host]))) {
    return rejection{http::status::bad_request, "invalid Host header"};
  }
  std::string_view authority, rest;
  if (split_absolute_form(view(req.target()), authority, rest) && !valid_host(authority)) {
    return rejection{http::status::bad_request, "invalid authority in an absolute-form target"};
  }
  (void)framing;
  return std::nullopt;
}

request_plan plan_request(http::request_header<>& req, const request_framing& framing,
                          const grayroute::decision& decision, std::string_view peer,
                          std::string_view upstream_authority) {
  request_plan plan;
  plan.keep_alive = wants_keep_alive(req, req.version());
  plan.expect_continue = req.version() >= 11 && iequals(view(req[http::field::expect]), "100-continue");
  const bool connection_upgrade = has_token(req, http::field::connection, "upgrade");
  std::string upgrade;
  if (req.version() >= 11 && connection_upgrade && req.count(http::field::upgrade) == 1) {
    upgrade = std::string(view(req[http::field::upgrade]));
    plan.upgrade = true;
  }

  // RFC 9112 3.2.2: a proxy replaces Host with the absolute-form target's authority.
  std::string_view authority, rest;
  if (split_absolute_form(view(req.target()), authority, rest)) {
    const std::string host(authority);
    std::string origin_form = rest.empty() || rest.front() != '/' ? "/" : "";
    origin_form += rest.substr(0, rest.find('#'));
    req.target(origin_form);
    req.set(http::field::host, host);
  } else if (req.count(http::field::host) == 0) {
    plan.host_is_upstream = true;
    address_request(req, plan, upstream_authority);
  }

  strip_hop_by_hop(req);
  req.erase(http::field::expect);  // 100-continue is answered by the proxy
  // The proxy's own fields go on after the removal, so no client can strip them.
  std::string forwarded_for;
  const auto lines = req.equal_range("X-Forwarded-For");
  for (auto line = lines.first; line != lines.second; ++line) {
    if (!forwarded_for.empty()) forwarded_for += ", ";
    forwarded_for.append(line->value().data(), line->value().size());
  }
  if (!forwarded_for.empty()) forwarded_for += ", ";
  forwarded_for += peer;
  req.set("X-Forwarded-For", forwarded_for);
  req.set("X-Real-IP", grayroute::to_string(decision.client.address));
  if (framing.chunked) {
    req.set(http::field::transfer_encoding, "chunked");
  } else if (framing.content_length) {
    // "5, 5" or two equal fields (the parser rejected unequal ones): one field, one value.
    req.set(http::field::content_length, std::to_string(*framing.content_length));
  }
  if (plan.upgrade) {
    req.set(http::field::connection, "upgrade");
    req.set(http::field::upgrade, upgrade);
  }
  req.version(11);
  return plan;
}

void address_request(http::request_header<>& req, const request_plan& plan, std::string_view upstream_authority) {
  if (plan.host_is_upstream) req.set(http::field::host, bv(upstream_authority));
}

response_plan plan_response(http::response_header<>& res, const response_context& context,
                            std::string_view route_label) {
  response_plan plan;
  const bool switching = res.result() == http::status::switching_protocols;
  if (switching && !context.client_asked_upgrade) {
    plan.bad_upgrade = true;
    return plan;
  }
  if (switching) {
    // Connection and Upgrade are what a 101 is about: they go to the client as sent.
    const std::string upgrade(view(res[http::field::upgrade]));
    strip_hop_by_hop(res);
    res.set(http::field::connection, "upgrade");
    if (!upgrade.empty()) res.set(http::field::upgrade, upgrade);
    plan.tunnel = true;
  } else {
    // A Transfer-Encoding other than chunked means "read until close" (RFC 9112 6.3).
    const bool other_coding = !context.chunked && res.count(http::field::transfer_encoding) != 0;
    const bool close_delimited = !context.complete_at_header && !context.chunked && !context.has_length;
    plan.upstream_reusable = context.upstream_keep_alive && !close_delimited && !other_coding;
    strip_hop_by_hop(res);
    plan.keep_alive = context.client_keep_alive && !context.draining;
    if (context.complete_at_header) {
      // HEAD, 204, 304: the header says what a body would be; none follows.
    } else if (context.client_version >= 11) {
      if (context.chunked || close_delimited) {
        res.erase(http::field::content_length);
        res.set(http::field::transfer_encoding, "chunked");
      }
    } else if (context.chunked || close_delimited) {
      plan.keep_alive = false;  // an HTTP/1.0 client learns where the body ends from the close
    }
    res.version(context.client_version);
    set_persistence(res, context.client_version, plan.keep_alive);
  }
  if (!route_label.empty()) res.set("X-Grayroute", bv(route_label));
  return plan;
}

}  // namespace grayroute_proxy
