// The PROXY protocol on grayroute-proxy's listener (issue 13), strict like nginx's
// `listen ... proxy_protocol`, but only for the balancers named by --proxy-protocol-from:
//
//   peer in --proxy-protocol-from   must start with a v1 or v2 header, else closed; the
//                                   header's source becomes the peer (the start of the
//                                   trusted-proxy walk and of X-Forwarded-For); LOCAL,
//                                   UNKNOWN, AF_UNSPEC and AF_UNIX keep the TCP peer.
//   any other peer                  a connection that starts like a PROXY header is
//                                   closed: a client must not name itself.
//
// A malformed, truncated (the peer closes or is silent for --client-timeout) or
// oversized header closes the connection before any byte reaches an upstream. Parsing is
// grayroute::parse_proxy_protocol (fuzzed); examine_preface is the pure decision over the
// bytes received so far, tested without sockets.
#ifndef GRAYROUTE_PROXY_PROXY_PROTOCOL_ACCEPT_HPP
#define GRAYROUTE_PROXY_PROXY_PROTOCOL_ACCEPT_HPP

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>

#include <grayroute/ip.hpp>

#include "upstream_pool.hpp"

namespace grayroute_proxy {

/// The balancer networks; empty: the listener speaks plain HTTP to everyone.
class proxy_protocol_gate {
 public:
  /// Throws naming the flag and the value that is not an address or network.
  explicit proxy_protocol_gate(const std::vector<std::string>& balancers);

  bool enabled() const noexcept { return !networks_.empty(); }
  bool from_balancer(const grayroute::ip_address& peer) const noexcept;
  std::string describe() const;

 private:
  std::vector<grayroute::ip_network> networks_;
};

/// What the first bytes of a connection say.
struct preface_step {
  enum class kind { need_more, accept, refuse } what = kind::need_more;
  std::size_t consumed = 0;          ///< accept: the header's length (0 without one)
  grayroute::ip_address peer;        ///< accept: the PROXY source, or the TCP peer
  const char* why = nullptr;         ///< refuse: a static string for the log
};

/// Pure: the decision over the `size` bytes received so far from `tcp_peer`.
[[nodiscard]] preface_step examine_preface(const void* data, std::size_t size, bool from_balancer,
                                           const grayroute::ip_address& tcp_peer) noexcept;

/// Reads into `buffer` until examine_preface decides (each read bounded by `timeout`),
/// consumes the header, and calls `done` with accept or refuse; the HTTP bytes that came
/// with the header stay in `buffer`. The caller keeps `stream` and `buffer` alive.
void async_read_preface(tcp_stream& stream, boost::beast::flat_buffer& buffer, bool from_balancer,
                        const grayroute::ip_address& tcp_peer, std::chrono::milliseconds timeout,
                        std::function<void(const preface_step&)> done);

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_PROXY_PROTOCOL_ACCEPT_HPP
