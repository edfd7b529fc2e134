// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a
// TCP load balancer puts in front of a connection to name the client it accepted.
//
//   auto r = grayroute::parse_proxy_protocol(buffer, received);
//   if (r.status == grayroute::proxy_status::need_more) { /* read more, call again */ }
//   if (r.status == grayroute::proxy_status::parsed && r.header.has_addresses)
//     peer = r.header.source;               // then drop the first r.length bytes
//
// Incremental: call it on the bytes received so far; it answers need_more (with the
// total length it knows it needs, at least), invalid (close the connection) or parsed
// (with the header's length; the bytes after it are the client's). It never reads
// past `size`, never allocates and never throws, so it runs on the accept path and is
// fuzzed (tests/fuzz/proxy_protocol.cpp).
//
// Trust is the caller's: believe a header only from a configured balancer, and refuse a
// balancer's connection without one (strict, like nginx's `listen ... proxy_protocol`).
// The spec's rules kept here: a v1 line is at most 107 bytes with its CRLF; `UNKNOWN`
// (v1), `LOCAL` and AF_UNSPEC / AF_UNIX (v2) carry no usable client, so has_addresses is
// false and the real connection endpoints stand; v2 version, command, family and
// transport nibbles other than the defined ones are invalid; an address block longer
// than its family needs is followed by TLVs, each bounds-checked against the header and
// otherwise skipped (their offset is given for a caller that wants PP2_TYPE_AUTHORITY
// and friends). The CRC32c TLV is not verified: the header crosses one trusted hop.
#ifndef GRAYROUTE_PROXY_PROTOCOL_HPP
#define GRAYROUTE_PROXY_PROTOCOL_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "ip.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

enum class proxy_status : std::uint8_t {
  need_more,  ///< a valid prefix so far; read more and call again
  invalid,    ///< not a PROXY header, or a malformed one: close the connection
  parsed,     ///< a whole header of `length` bytes
};

enum class proxy_command : std::uint8_t {
  local,  ///< v2 LOCAL (a health check from the balancer itself)
  proxy,  ///< a relayed connection (v1 always)
};

struct proxy_header {
  std::uint8_t version = 0;  ///< 1 or 2
  proxy_command command = proxy_command::local;
  /// True only when source and destination name a relayed TCP/UDP client over IPv4 or
  /// IPv6; false for v1 UNKNOWN, v2 LOCAL, AF_UNSPEC and AF_UNIX.
  bool has_addresses = false;
  ip_address source, destination;
  std::uint16_t source_port = 0, destination_port = 0;
  /// v2: where the TLVs start in the input and how many bytes they take (0 if none).
  std::size_t tlv_offset = 0, tlv_length = 0;
};

struct proxy_parse_result {
  proxy_status status = proxy_status::invalid;
  /// parsed: the header's length. need_more: the least total length still needed.
  std::size_t length = 0;
  proxy_header header;
};

/// The longest v1 line, "PROXY UNKNOWN <39> <39> 65535 65535\r\n" (the spec's bound).
inline constexpr std::size_t kProxyV1MaxLength = 107;
/// The v2 fixed part: signature (12), version/command, family/transport, length (2).
inline constexpr std::size_t kProxyV2HeaderLength = 16;
/// The longest v2 header: the 16 bytes and a 16-bit length.
inline constexpr std::size_t kProxyV2MaxLength = kProxyV2HeaderLength + 0xffff;

namespace detail {

inline constexpr unsigned char kProxyV2Signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                                        0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
inline constexpr std::string_view kProxyV1Prefix = "PROXY ";

// Whether the first `size` bytes agree with `expected` as far as both go.
constexpr bool agrees_with(const unsigned char* data, std::size_t size, const unsigned char* expected,
                           std::size_t expected_size) noexcept {
  const std::size_t n = size < expected_size ? size : expected_size;
  for (std::size_t i = 0; i < n; ++i) {
    if (data[i] != expected[i]) return false;
  }
  return true;
}

// A decimal port: 1 to 5 digits, no leading zero (but "0"), at most 65535.
constexpr bool parse_proxy_port(std::string_view text, std::uint16_t& port) noexcept {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  std::uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (value > 0xffff) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

// One space-separated field of a v1 line; empty (and `line` unchanged) if none.
constexpr std::string_view next_proxy_field(std::string_view& line) noexcept {
  const std::size_t space = line.find(' ');
  const std::string_view field = line.substr(0, space);
  line.remove_prefix(space == std::string_view::npos ? line.size() : space + 1);
  return field;
}

inline proxy_parse_result parse_proxy_v1(const unsigned char* data, std::size_t size) noexcept {
  proxy_parse_result r;
  const std::size_t scan = size < kProxyV1MaxLength ? size : kProxyV1MaxLength;
  std::size_t end = 0;  // index of the '\n' of CRLF
  for (std::size_t i = kProxyV1Prefix.size(); i < scan; ++i) {
    if (data[i] == '\n') {
      end = i;
      break;
    }
    // Only printable US-ASCII may precede the CRLF (and the '\r' of it).
    if ((data[i] < 0x20 || data[i] > 0x7e) && data[i] != '\r') return r;
  }
  if (end == 0) {
    if (size >= kProxyV1MaxLength) return r;  // oversized: no CRLF within 107 bytes
    r.status = proxy_status::need_more;
    r.length = size + 1;
    return r;
  }
  if (data[end - 1] != '\r') return r;
  std::string_view line(reinterpret_cast<const char*>(data) + kProxyV1Prefix.size(), end - 1 - kProxyV1Prefix.size());
  const std::string_view protocol = next_proxy_field(line);
  r.header.version = 1;
  r.header.command = proxy_command::proxy;
  r.length = end + 1;
  if (protocol == "UNKNOWN") {
    // The spec: ignore whatever follows UNKNOWN up to the CRLF.
    r.status = proxy_status::parsed;
    return r;
  }
  if (protocol != "TCP4" && protocol != "TCP6") return r;
  const auto source = parse_ip(next_proxy_field(line));
  const auto destination = parse_ip(next_proxy_field(line));
  const std::string_view source_port = next_proxy_field(line);
  // The last field runs to the CRLF: a stray space left in `line` makes it invalid.
  if (!source || !destination || line.find(' ') != std::string_view::npos) return r;
  const bool v4 = protocol == "TCP4";
  if (source->is_v4() != v4 || destination->is_v4() != v4) return r;
  if (!parse_proxy_port(source_port, r.header.source_port) || !parse_proxy_port(line, r.header.destination_port)) {
    return r;
  }
  r.header.source = *source;
  r.header.destination = *destination;
  r.header.has_addresses = true;
  r.status = proxy_status::parsed;
  return r;
}

inline proxy_parse_result parse_proxy_v2(const unsigned char* data, std::size_t size) noexcept {
  proxy_parse_result r;
  if (size < kProxyV2HeaderLength) {
    // Reject a bad version/command or family byte as soon as it arrives.
    if (size > 12 && (data[12] >> 4 != 2 || (data[12] & 0xf) > 1)) return r;
    if (size > 13 && ((data[13] >> 4) > 3 || (data[13] & 0xf) > 2)) return r;
    r.status = proxy_status::need_more;
    r.length = kProxyV2HeaderLength;
    return r;
  }
  const unsigned version = data[12] >> 4, command = data[12] & 0xfu;
  const unsigned family = data[13] >> 4, transport = data[13] & 0xfu;
  if (version != 2 || command > 1 || family > 3 || transport > 2) return r;
  const std::size_t body = static_cast<std::size_t>(data[14]) << 8 | data[15];
  const std::size_t total = kProxyV2HeaderLength + body;
  if (size < total) {
    r.status = proxy_status::need_more;
    r.length = total;
    return r;
  }
  r.header.version = 2;
  r.header.command = command == 0 ? proxy_command::local : proxy_command::proxy;
  r.length = total;
  // Address block sizes for AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX.
  static constexpr std::size_t kAddressBytes[4] = {0, 12, 36, 216};
  const std::size_t addresses = kAddressBytes[family];
  if (body < addresses) return r;
  const unsigned char* p = data + kProxyV2HeaderLength;
  if (r.header.command == proxy_command::proxy && (family == 1 || family == 2) && transport != 0) {
    const std::size_t n = family == 1 ? 4 : 16;
    r.header.source = *ip_address::from_bytes(p, n);
    r.header.destination = *ip_address::from_bytes(p + n, n);
    r.header.source_port = static_cast<std::uint16_t>(p[2 * n] << 8 | p[2 * n + 1]);
    r.header.destination_port = static_cast<std::uint16_t>(p[2 * n + 2] << 8 | p[2 * n + 3]);
    r.header.has_addresses = true;
  }
  // LOCAL: "the receiver must ignore the protocol block", TLVs included.
  if (r.header.command == proxy_command::proxy) {
    std::size_t at = addresses;
    while (at < body) {
      if (body - at < 3) return r;
      const std::size_t length = static_cast<std::size_t>(p[at + 1]) << 8 | p[at + 2];
      if (length > body - at - 3) return r;
      at += 3 + length;
    }
    r.header.tlv_offset = kProxyV2HeaderLength + addresses;
    r.header.tlv_length = body - addresses;
  }
  r.status = proxy_status::parsed;
  return r;
}

}  // namespace detail

/// Parses a PROXY protocol v1 or v2 header at the start of `data`.
[[nodiscard]] inline proxy_parse_result parse_proxy_protocol(const void* data, std::size_t size) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(data);
  proxy_parse_result r;
  if (size == 0) {
    r.status = proxy_status::need_more;
    r.length = 1;
    return r;
  }
  if (bytes[0] == detail::kProxyV2Signature[0]) {
    if (!detail::agrees_with(bytes, size, detail::kProxyV2Signature, sizeof detail::kProxyV2Signature)) return r;
    if (size < sizeof detail::kProxyV2Signature) {
      r.status = proxy_status::need_more;
      r.length = kProxyV2HeaderLength;
      return r;
    }
    return detail::parse_proxy_v2(bytes, size);
  }
  const auto* prefix = reinterpret_cast<const unsigned char*>(detail::kProxyV1Prefix.data());
  if (!detail::agrees_with(bytes, size, prefix, detail::kProxyV1Prefix.size())) return r;
  if (size <= detail::kProxyV1Prefix.size()) {
    r.status = proxy_status::need_more;
    r.length = size + 1;
    return r;
  }
  return detail::parse_proxy_v1(bytes, size);
}

/// Whether a connection's first bytes start like a PROXY header (v1 "PROXY " or the v2
/// signature), to refuse one from a peer that is not a trusted balancer; nullopt until
/// enough bytes arrived to tell.
[[nodiscard]] inline std::optional<bool> starts_with_proxy_protocol(const void* data, std::size_t size) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(data);
  const auto* v1 = reinterpret_cast<const unsigned char*>(detail::kProxyV1Prefix.data());
  const bool maybe_v1 = detail::agrees_with(bytes, size, v1, detail::kProxyV1Prefix.size());
  const bool maybe_v2 = detail::agrees_with(bytes, size, detail::kProxyV2Signature, sizeof detail::kProxyV2Signature);
  if ((maybe_v1 && size >= detail::kProxyV1Prefix.size()) ||
      (maybe_v2 && size >= sizeof detail::kProxyV2Signature)) {
    return true;
  }
  if (maybe_v1 || maybe_v2) return std::nullopt;
  return false;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_PROXY_PROTOCOL_HPP
