// Who is the client? The TCP peer, or an address a trusted proxy vouched for.
//
//   grayroute::client_ip_resolver resolver({
//       /*trusted_proxies=*/{"10.0.0.0/8"}, /*headers=*/{"X-Real-IP", "X-Forwarded-For"}});
//   grayroute::client_ip who = resolver.resolve(peer, headers);   // who.address, who.source_name
//
// Trust model (nginx's realip module, made strict):
//   - Headers count only when the peer is inside trusted_proxies. With none
//     configured, only the peer counts, whatever the client sends.
//   - Headers are tried in the configured order; the first one present decides.
//   - A list header (X-Forwarded-For, Forwarded) is walked from the right: with
//     `recursive`, the first hop that is not trusted is the client; an invalid or
//     obfuscated hop stops the walk and the last trusted hop is used; when every
//     hop is trusted the leftmost wins. Without `recursive`, the last hop is used.
//   - Any other header (X-Real-IP, CF-Connecting-IP, ...) must hold exactly one
//     address on one line; a list, a repeat or garbage means the peer is used.
//   - X-Forwarded-For elements and single-address values may carry a port or
//     brackets as balancers write them (see parse_forwarded_address).
// Results are unmapped: a client seen as ::ffff:10.1.2.3 is reported as 10.1.2.3.
#ifndef GRAYROUTE_CLIENT_IP_HPP
#define GRAYROUTE_CLIENT_IP_HPP

#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config_error.hpp"
#include "detail/ascii.hpp"
#include "forwarded.hpp"
#include "headers.hpp"
#include "ip.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// How a header carries an address; inferred from the header name.
enum class header_format : std::uint8_t {
  single_address,   // X-Real-IP and any other custom header: exactly one address
  x_forwarded_for,  // comma-separated addresses, possibly over several lines
  forwarded,        // RFC 7239
};

constexpr header_format format_of_header(std::string_view name) noexcept {
  if (detail::iequals(name, "X-Forwarded-For")) return header_format::x_forwarded_for;
  if (detail::iequals(name, "Forwarded")) return header_format::forwarded;
  return header_format::single_address;
}

struct resolver_config {
  /// Peers whose forwarded headers are believed ("10.0.0.0/8", "::1"). Empty: trust
  /// no one. The seed's behaviour (trust anyone) needs "0.0.0.0/0" and "::/0" here.
  std::vector<std::string> trusted_proxies;
  /// Headers to read, in order of preference.
  std::vector<std::string> headers{"X-Real-IP", "X-Forwarded-For"};
  /// Walk list headers past trusted hops (nginx `real_ip_recursive on`).
  bool recursive = true;
};

/// The resolved client address and where it came from.
struct client_ip {
  ip_address address;
  int source = -1;                     // index into resolver_config::headers; -1: the TCP peer
  std::string_view source_name = "peer";  // the header's configured name, or "peer"

  bool from_header() const noexcept { return source >= 0; }
};

namespace detail {

// A trusted IPv4 network: one AND and one compare per hop.
struct masked_v4_network {
  std::uint32_t base, mask;
};

// A trusted IPv6 network, with its masks precomputed so a hop check is two ANDs.
struct masked_network {
  std::uint64_t high, low, high_mask, low_mask;
  bool v4;

  static masked_network from(const ip_network& network) noexcept {
    const ip_network n = network.unmapped();
    const unsigned bits = n.address().is_v4() ? n.prefix_length() + 96 : n.prefix_length();
    const std::uint64_t high_mask = bits >= 64 ? ~0ull : (bits == 0 ? 0ull : ~0ull << (64 - bits));
    const std::uint64_t low_mask = bits <= 64 ? 0ull : (bits == 128 ? ~0ull : ~0ull << (128 - bits));
    return {n.address().v6_high(), n.address().v6_low(), high_mask, low_mask, n.address().is_v4()};
  }

  bool contains_unmapped(const ip_address& a) const noexcept {
    return a.is_v4() == v4 && (a.v6_high() & high_mask) == high && (a.v6_low() & low_mask) == low;
  }
};

}  // namespace detail

class client_ip_resolver {
 public:
  /// At most this many headers can be configured (the request path keeps one small state each).
  static constexpr std::size_t kMaxHeaders = 8;

  /// Validates the configuration; throws config_error naming a bad network or header.
  explicit client_ip_resolver(const resolver_config& config = {}) : recursive_(config.recursive) {
    for (const auto& text : config.trusted_proxies) {
      const auto network = parse_network(text);
      if (!network) detail::throw_config_error("trusted proxy " + bad_network_message(text));
      const ip_network n = network->unmapped();
      if (n.address().is_v4()) {
        const std::uint32_t mask = n.prefix_length() == 0 ? 0u : ~0u << (32 - n.prefix_length());
        trusted_v4_.push_back({n.address().v4_value(), mask});
      } else {
        trusted_v6_.push_back(detail::masked_network::from(n));
      }
    }
    if (config.headers.size() > kMaxHeaders) {
      detail::throw_config_error("too many client-IP headers (" + std::to_string(config.headers.size()) +
                                 "; at most " + std::to_string(kMaxHeaders) + ")");
    }
    for (const auto& name : config.headers) {
      if (name.empty()) detail::throw_config_error("client-IP header name is empty");
      for (char c : name) {
        if (!detail::is_tchar(c)) detail::throw_config_error("client-IP header name " + detail::quote_value(name) + " is not a token");
      }
      for (const auto& seen : names_) {
        if (detail::iequals(seen, name)) detail::throw_config_error("client-IP header " + detail::quote_value(name) + " is listed twice");
      }
      index_.add(name, static_cast<std::uint8_t>(names_.size()));
      names_.push_back(name);
      formats_.push_back(format_of_header(name));
    }
  }

  /// True when `address` (unmapped) lies in a trusted-proxy network.
  bool is_trusted(const ip_address& address) const noexcept {
    if (address.is_v4()) return is_trusted_v4(address.v4_value());
    if (address.is_v4_mapped()) return is_trusted_v4(static_cast<std::uint32_t>(address.v6_low()));
    for (const auto& n : trusted_v6_) {
      if (n.contains_unmapped(address)) return true;
    }
    return false;
  }

  /// The configured header names, in order (the policy checks them against its own).
  const std::vector<std::string>& header_names() const noexcept { return names_; }
  /// The lengths of the configured names, for callers that pre-filter headers.
  const detail::name_lengths& header_name_lengths() const noexcept { return index_.lengths(); }

  /// Walks the headers once and keeps per-header state; for callers that read
  /// other headers in the same pass (the router does).
  ///
  /// An X-Forwarded-For line is read from the right and parsed only up to its first
  /// untrusted hop (the client, as far as this line can tell): hops to the left of
  /// it are never parsed. Each line folds into a small state, so nothing is stored.
  class scan {
   public:
    scan(const client_ip_resolver& resolver, const ip_address& peer) noexcept
        : resolver_(&resolver), peer_(peer.unmapped()), trusted_peer_(resolver.is_trusted(peer_)) {}

    /// Offers one header line; true when it is one of the configured headers.
    bool feed(std::string_view name, std::string_view value) noexcept {
      // Most request headers differ in length from every configured one: one load.
      if (!trusted_peer_ || !resolver_->index_.may_match(name.size())) return false;
      const std::uint8_t i = resolver_->index_.find(name);
      if (i == detail::header_name_index::kNone) return false;
      feed_line(i, value);
      return true;
    }

    client_ip finish() const noexcept {
      const auto& names = resolver_->names_;
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (!(present_ >> i & 1)) continue;
        const walk& w = walks()[i];
        if (w.broken || !w.has_candidate) break;
        return client_ip{w.candidate, static_cast<int>(i), names[i]};
      }
      return client_ip{peer_, -1, "peer"};
    }

   private:
    // The answer of a trust walk over the hops so far: the rightmost untrusted hop,
    // or the hop just after the rightmost invalid one, or the leftmost when all are
    // trusted. It folds left to right, a hop or a line at a time, so no hop list is
    // ever stored.
    struct walk {
      ip_address candidate;
      bool has_candidate;
      bool broken;  // a single-address header that was not one address
    };

    // Walks live in raw storage and are constructed when their header first shows
    // up: most requests carry one of the configured headers, or none.
    walk* walks() noexcept { return std::launder(reinterpret_cast<walk*>(storage_)); }
    const walk* walks() const noexcept { return std::launder(reinterpret_cast<const walk*>(storage_)); }

    void feed_line(std::size_t i, std::string_view value) noexcept {
      if (!(seen_ >> i & 1)) {
        new (&storage_[i * sizeof(walk)]) walk{ip_address(), false, false};
        seen_ |= static_cast<std::uint8_t>(1u << i);
      }
      walk& w = walks()[i];
      const auto mark_present = [&] { present_ |= static_cast<std::uint8_t>(1u << i); };
      switch (resolver_->formats_[i]) {
        case header_format::x_forwarded_for:
          fold_x_forwarded_for(w, value, mark_present);
          break;
        case header_format::forwarded:
          for_each_forwarded_for(value, [&](const std::optional<ip_address>& hop) {
            mark_present();
            fold_hop(w, hop);
          });
          break;
        case header_format::single_address: {
          const std::string_view text = detail::trim_ows(value);
          if (text.empty()) break;
          if (present_ >> i & 1) {
            w.broken = true;  // a repeated single-address header is not believed
            break;
          }
          mark_present();
          const auto a = parse_forwarded_address(text);
          if (!a) {
            w.broken = true;
            break;
          }
          w.candidate = a->unmapped();
          w.has_candidate = true;
          break;
        }
      }
    }

    // One hop, left to right. Not recursive: the last hop wins. Recursive: an
    // untrusted hop is the newest answer, and a trusted one only fills an empty slot
    // (the leftmost hop, or the one just after an invalid hop).
    void fold_hop(walk& w, const std::optional<ip_address>& hop) const noexcept {
      if (!hop) {
        w.has_candidate = false;
        return;
      }
      const ip_address a = hop->unmapped();
      if (resolver_->recursive_ && w.has_candidate && resolver_->is_trusted(a)) return;
      w.candidate = a;
      w.has_candidate = true;
    }

    // One X-Forwarded-For line, read from the right: what fold_hop would leave after
    // every hop of the line, found by parsing only the hops up to the first that
    // decides it (an untrusted or invalid hop; without recursion, the last hop).
    template <class MarkPresent>
    void fold_x_forwarded_for(walk& w, std::string_view line, MarkPresent& mark_present) const noexcept {
      const bool recursive = resolver_->recursive_;
      ip_address leftmost_trusted;
      bool any_trusted = false;
      // A valid hop, unmapped: an untrusted one (or any, without recursion) decides.
      const auto on_address = [&](const ip_address& a) {
        if (!recursive || !resolver_->is_trusted(a)) {
          w.candidate = a;
          w.has_candidate = true;
          return true;
        }
        leftmost_trusted = a;
        any_trusted = true;
        return false;
      };
      const auto on_hop = [&](const std::optional<ip_address>& hop) {
        mark_present();
        if (hop) return on_address(hop->unmapped());
        // The hop after the invalid one (the leftmost trusted seen) answers, if any.
        w.candidate = leftmost_trusted;
        w.has_candidate = any_trusted;
        return true;
      };
      const auto on_v4 = [&](std::uint32_t v4) {
        mark_present();
        return on_address(ip_address::v4(v4));
      };
      const bool decided = detail::for_each_x_forwarded_for_hop_from_right(line, on_hop, on_v4);
      // Every hop of the line trusted: it only fills an empty slot, as in fold_hop.
      if (!decided && any_trusted && !w.has_candidate) {
        w.candidate = leftmost_trusted;
        w.has_candidate = true;
      }
    }

    const client_ip_resolver* resolver_;
    ip_address peer_;
    bool trusted_peer_;
    std::uint8_t seen_ = 0;     // bit i: header i has a constructed walk
    std::uint8_t present_ = 0;  // bit i: header i carried at least one hop or address
    alignas(walk) unsigned char storage_[sizeof(walk) * kMaxHeaders];
  };

  /// The client address for a request from `peer` carrying `headers` (see headers.hpp).
  template <class Headers>
  client_ip resolve(const ip_address& peer, const Headers& headers) const noexcept {
    scan s(*this, peer);
    if (!trusted_v4_.empty() || !trusted_v6_.empty()) {
      for (const auto& h : headers) s.feed(detail::header_name(h), detail::header_value(h));
    }
    return s.finish();
  }

 private:
  bool is_trusted_v4(std::uint32_t v) const noexcept {
    for (const auto& n : trusted_v4_) {
      if ((v & n.mask) == n.base) return true;
    }
    return false;
  }

  std::vector<detail::masked_v4_network> trusted_v4_;
  std::vector<detail::masked_network> trusted_v6_;
  detail::header_name_index index_;  // configured name -> its index in names_
  std::vector<std::string> names_;
  std::vector<header_format> formats_;
  bool recursive_;
};

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_CLIENT_IP_HPP
