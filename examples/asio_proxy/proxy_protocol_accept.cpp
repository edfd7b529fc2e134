// The PROXY-protocol preface of a client connection; see proxy_protocol_accept.hpp.
#include "proxy_protocol_accept.hpp"

#include <memory>
#include <stdexcept>

#include <grayroute/config_error.hpp>
#include <grayroute/proxy_protocol.hpp>

namespace grayroute_proxy {

proxy_protocol_gate::proxy_protocol_gate(const std::vector<std::string>& balancers) {
  for (const std::string& text : balancers) {
    const auto network = grayroute::parse_network(text);
    if (!network) throw grayroute::config_error("--proxy-protocol-from: " + grayroute::bad_network_message(text));
    networks_.push_back(*network);
  }
}

bool proxy_protocol_gate::from_balancer(const grayroute::ip_address& peer) const noexcept {
  for (const auto& n : networks_) {
    if (n.contains(peer)) return true;
  }
  return false;
}

std::string proxy_protocol_gate::describe() const {
  std::string out;
  for (const auto& n : networks_) out += (out.empty() ? "" : ", ") + grayroute::to_string(n);
  return out;
}

preface_step examine_preface(const void* data, std::size_t size, bool from_balancer,
                             const grayroute::ip_address& tcp_peer) noexcept {
  preface_step s;
  s.peer = tcp_peer;
  if (!from_balancer) {
    const auto starts = grayroute::starts_with_proxy_protocol(data, size);
    if (!starts) return s;
    if (*starts) {
      s.what = preface_step::kind::refuse;
      s.why = "PROXY header from a peer not in --proxy-protocol-from";
    } else {
      s.what = preface_step::kind::accept;
    }
    return s;
  }
  const auto r = grayroute::parse_proxy_protocol(data, size);
  switch (r.status) {
    case grayroute::proxy_status::need_more:
      return s;
    case grayroute::proxy_status::invalid:
      s.what = preface_step::kind::refuse;
      s.why = grayroute::starts_with_proxy_protocol(data, size) == false
                  ? "no PROXY header from a --proxy-protocol-from peer"
                  : "malformed PROXY header";
      return s;
    case grayroute::proxy_status::parsed:
      s.what = preface_step::kind::accept;
      s.consumed = r.length;
      if (r.header.has_addresses) s.peer = r.header.source.unmapped();
      return s;
  }
  return s;
}

namespace {

struct preface_reader : std::enable_shared_from_this<preface_reader> {
  preface_reader(tcp_stream& s, boost::beast::flat_buffer& b, bool balancer, const grayroute::ip_address& p,
                 std::chrono::milliseconds t, std::function<void(const preface_step&)> d)
      : stream(s), buffer(b), from_balancer(balancer), peer(p), timeout(t), done(std::move(d)) {}

  void next() {
    const auto bytes = buffer.data();
    preface_step s = examine_preface(bytes.data(), bytes.size(), from_balancer, peer);
    if (s.what == preface_step::kind::accept) buffer.consume(s.consumed);
    if (s.what != preface_step::kind::need_more) return done(s);
    stream.expires_after(timeout);
    stream.async_read_some(buffer.prepare(4096), [self = shared_from_this()](boost::beast::error_code ec, std::size_t n) {
      if (ec) {
        preface_step gone;
        gone.what = preface_step::kind::refuse;
        gone.peer = self->peer;
        gone.why = ec == boost::beast::error::timeout ? "PROXY header not complete within --client-timeout"
                                                      : "connection closed before the PROXY header was complete";
        return self->done(gone);
      }
      self->buffer.commit(n);
      self->next();
    });
  }

  tcp_stream& stream;
  boost::beast::flat_buffer& buffer;
  bool from_balancer;
  grayroute::ip_address peer;
  std::chrono::milliseconds timeout;
  std::function<void(const preface_step&)> done;
};

}  // namespace

void async_read_preface(tcp_stream& stream, boost::beast::flat_buffer& buffer, bool from_balancer,
                        const grayroute::ip_address& tcp_peer, std::chrono::milliseconds timeout,
                        std::function<void(const preface_step&)> done) {
  std::make_shared<preface_reader>(stream, buffer, from_balancer, tcp_peer, timeout, std::move(done))->next();
}

}  // namespace grayroute_proxy
