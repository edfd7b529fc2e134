// IP addresses and networks: strict, allocation-free parsing and canonical text.
//
//   auto a = grayroute::parse_ip("::ffff:10.1.2.3");      // std::optional<ip_address>
//   auto n = grayroute::parse_network("10.0.0.0/8");      // std::optional<ip_network>
//   n->contains(*a);                                       // true: v4-mapped matches IPv4
//
// Matching rule for IPv4-mapped IPv6 (::ffff:a.b.c.d): for every match (network
// containment, stores, trusted proxies) it *is* the IPv4 address a.b.c.d, and a
// network inside ::ffff:0:0/96 is the matching IPv4 network (parse_network refuses
// to read one from text, though: configuration says 10.0.0.0/8, not ::ffff:10.0.0.0/104).
// A gateway listening on [::] sees IPv4 clients in that form and they must still
// match 10.0.0.0/8.
// Other IPv6 networks never match IPv4 clients, so trusting ::/0 does not trust
// all of IPv4. As values, 1.2.3.4 and ::ffff:1.2.3.4 stay distinct (each prints
// as written); unmapped() converts.
#ifndef GRAYROUTE_IP_HPP
#define GRAYROUTE_IP_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "config_error.hpp"
#include "detail/ip_parse_fast.hpp"
#include "detail/ip_parse_simd.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

enum class ip_family : std::uint8_t { v4 = 4, v6 = 6 };

/// An IPv4 or IPv6 address: a 24-byte value type, ordered (IPv4 before IPv6) and hashable.
class ip_address {
 public:
  /// Longest text form: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".
  static constexpr std::size_t kMaxTextLength = 45;

  /// 0.0.0.0
  constexpr ip_address() noexcept = default;

  /// An IPv4 address from its value in host byte order (10.0.0.1 is 0x0a000001).
  static constexpr ip_address v4(std::uint32_t value) noexcept { return ip_address(0, value, ip_family::v4); }

  /// An IPv6 address from its high and low 64 bits in host byte order.
  static constexpr ip_address v6(std::uint64_t high, std::uint64_t low) noexcept {
    return ip_address(high, low, ip_family::v6);
  }

  /// An address from 4 or 16 bytes in network order; nullopt for any other size.
  static std::optional<ip_address> from_bytes(const std::uint8_t* bytes, std::size_t size) noexcept {
    auto load = [](const std::uint8_t* p, int n) {
      std::uint64_t v = 0;
      for (int i = 0; i < n; ++i) v = v << 8 | p[i];
      return v;
    };
    if (size == 4) return v4(static_cast<std::uint32_t>(load(bytes, 4)));
    if (size == 16) return v6(load(bytes, 8), load(bytes + 8, 8));
    return std::nullopt;
  }

  constexpr ip_family family() const noexcept { return family_; }
  constexpr bool is_v4() const noexcept { return family_ == ip_family::v4; }
  constexpr bool is_v6() const noexcept { return family_ == ip_family::v6; }

  /// The IPv4 value in host byte order; 0 for an IPv6 address.
  constexpr std::uint32_t v4_value() const noexcept { return is_v4() ? static_cast<std::uint32_t>(low_) : 0; }
  /// The 128-bit value; an IPv4 address reads as its mapped form ::ffff:a.b.c.d.
  constexpr std::uint64_t v6_high() const noexcept { return high_; }
  constexpr std::uint64_t v6_low() const noexcept { return is_v4() ? (kMappedPrefix | low_) : low_; }

  /// True for ::ffff:a.b.c.d written as IPv6.
  constexpr bool is_v4_mapped() const noexcept {
    return is_v6() && high_ == 0 && (low_ >> 32) == 0xffff;
  }

  /// The IPv4 address inside a v4-mapped IPv6 address; any other address unchanged.
  constexpr ip_address unmapped() const noexcept {
    return is_v4_mapped() ? v4(static_cast<std::uint32_t>(low_)) : *this;
  }

  /// Writes the address in network byte order (4 or 16 bytes) and returns the count.
  std::size_t to_bytes(std::uint8_t* out) const noexcept {
    if (is_v4()) {
      for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(low_ >> (24 - 8 * i));
      return 4;
    }
    for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(high_ >> (56 - 8 * i));
    for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<std::uint8_t>(low_ >> (56 - 8 * i));
    return 16;
  }

  /// Writes the canonical text (dotted quad, or RFC 5952 for IPv6) to out, which must
  /// hold kMaxTextLength bytes; returns the length. No terminating NUL. Allocates
  /// nothing; `to_string(address)` is the same text as a std::string.
  std::size_t format(char* out) const noexcept;

  friend constexpr bool operator==(const ip_address& a, const ip_address& b) noexcept {
    return a.family_ == b.family_ && a.high_ == b.high_ && a.low_ == b.low_;
  }
  friend constexpr bool operator!=(const ip_address& a, const ip_address& b) noexcept { return !(a == b); }
  friend constexpr bool operator<(const ip_address& a, const ip_address& b) noexcept {
    if (a.family_ != b.family_) return a.family_ < b.family_;
    if (a.high_ != b.high_) return a.high_ < b.high_;
    return a.low_ < b.low_;
  }
  friend constexpr bool operator>(const ip_address& a, const ip_address& b) noexcept { return b < a; }
  friend constexpr bool operator<=(const ip_address& a, const ip_address& b) noexcept { return !(b < a); }
  friend constexpr bool operator>=(const ip_address& a, const ip_address& b) noexcept { return !(a < b); }

  std::size_t hash() const noexcept {
    std::uint64_t h = high_ * 0x9E3779B97F4A7C15ull ^ low_ ^ (static_cast<std::uint64_t>(family_) << 59);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
  }

 private:
  static constexpr std::uint64_t kMappedPrefix = 0xffffull << 32;

  constexpr ip_address(std::uint64_t high, std::uint64_t low, ip_family family) noexcept
      : high_(high), low_(low), family_(family) {}

  std::uint64_t high_ = 0;
  std::uint64_t low_ = 0;  // an IPv4 address keeps its value here, high_ = 0
  ip_family family_ = ip_family::v4;
};

/// An address and a prefix length with no host bits set: 10.0.0.0/8, 2001:db8::/32.
class ip_network {
 public:
  /// Longest text form: an address, '/', three digits.
  static constexpr std::size_t kMaxTextLength = ip_address::kMaxTextLength + 4;

  /// 0.0.0.0/32
  constexpr ip_network() noexcept = default;

  /// The network, or nullopt when the prefix is too long or host bits are set.
  static constexpr std::optional<ip_network> make(const ip_address& address, unsigned prefix_length) noexcept {
    const unsigned max = address.is_v4() ? 32 : 128;
    if (prefix_length > max) return std::nullopt;
    ip_network n(address, static_cast<std::uint8_t>(prefix_length));
    if (n.masked(address) != address) return std::nullopt;
    return n;
  }

  /// The host network (/32 or /128) of one address.
  static constexpr ip_network host(const ip_address& address) noexcept {
    return ip_network(address, address.is_v4() ? 32 : 128);
  }

  constexpr const ip_address& address() const noexcept { return address_; }
  constexpr unsigned prefix_length() const noexcept { return prefix_; }
  constexpr ip_family family() const noexcept { return address_.family(); }
  constexpr bool is_host() const noexcept { return prefix_ == (address_.is_v4() ? 32 : 128); }

  /// A network inside ::ffff:0:0/96 as the IPv4 network it stands for; others unchanged.
  constexpr ip_network unmapped() const noexcept {
    if (address_.is_v4_mapped() && prefix_ >= 96) {
      return ip_network(address_.unmapped(), static_cast<std::uint8_t>(prefix_ - 96));
    }
    return *this;
  }

  /// Membership under the v4-mapped rule described at the top of this header.
  constexpr bool contains(const ip_address& candidate) const noexcept {
    const ip_network self = unmapped();
    const ip_address a = candidate.unmapped();
    if (self.address_.family() != a.family()) return false;
    return self.masked(a) == self.address_;
  }

  /// Writes "address/prefix" to out (kMaxTextLength bytes); returns the length.
  std::size_t format(char* out) const noexcept {
    std::size_t n = address_.format(out);
    out[n++] = '/';
    unsigned p = prefix_;
    if (p >= 100) out[n++] = static_cast<char>('0' + p / 100);
    if (p >= 10) out[n++] = static_cast<char>('0' + p / 10 % 10);
    out[n++] = static_cast<char>('0' + p % 10);
    return n;
  }

  friend constexpr bool operator==(const ip_network& a, const ip_network& b) noexcept {
    return a.prefix_ == b.prefix_ && a.address_ == b.address_;
  }
  friend constexpr bool operator!=(const ip_network& a, const ip_network& b) noexcept { return !(a == b); }
  friend constexpr bool operator<(const ip_network& a, const ip_network& b) noexcept {
    if (a.address_ != b.address_) return a.address_ < b.address_;
    return a.prefix_ < b.prefix_;
  }

  std::size_t hash() const noexcept { return address_.hash() ^ (static_cast<std::size_t>(prefix_) * 0x9E3779B9u); }

 private:
  constexpr ip_network(const ip_address& address, std::uint8_t prefix) noexcept : address_(address), prefix_(prefix) {}

  constexpr ip_address masked(const ip_address& a) const noexcept {
    if (a.is_v4()) {
      const std::uint32_t mask = prefix_ == 0 ? 0u : ~0u << (32 - prefix_);
      return ip_address::v4(a.v4_value() & mask);
    }
    const std::uint64_t high_mask = prefix_ >= 64 ? ~0ull : (prefix_ == 0 ? 0ull : ~0ull << (64 - prefix_));
    const std::uint64_t low_mask = prefix_ <= 64 ? 0ull : (prefix_ == 128 ? ~0ull : ~0ull << (128 - prefix_));
    return ip_address::v6(a.v6_high() & high_mask, a.v6_low() & low_mask);
  }

  ip_address address_;
  std::uint8_t prefix_ = 32;
};

/// The canonical text: a dotted quad, or RFC 5952 for IPv6 ("2001:db8::1", lower case,
/// "::ffff:1.2.3.4" for v4-mapped). Found qualified and by argument-dependent lookup.
inline std::string to_string(const ip_address& address) {
  char buffer[ip_address::kMaxTextLength];
  return std::string(buffer, address.format(buffer));
}

/// "10.0.0.0/8", "2001:db8::/32".
inline std::string to_string(const ip_network& network) {
  char buffer[ip_network::kMaxTextLength];
  return std::string(buffer, network.format(buffer));
}

namespace detail {

constexpr int hex_value(char c) noexcept {
  if (static_cast<unsigned char>(c - '0') < 10) return c - '0';
  const char lower = static_cast<char>(c | 0x20);
  if (static_cast<unsigned char>(lower - 'a') < 6) return lower - 'a' + 10;
  return -1;
}

/// Strict dotted quad: four decimal octets 0-255, no leading zeros (never octal), nothing else.
constexpr bool parse_v4(const char* p, const char* end, std::uint32_t& out) noexcept {
  std::uint32_t value = 0;
  for (int part = 0; part < 4; ++part) {
    if (p == end) return false;
    unsigned octet = static_cast<unsigned char>(*p - '0');
    if (octet > 9) return false;
    ++p;
    if (p != end && static_cast<unsigned char>(*p - '0') <= 9) {
      if (octet == 0) return false;
      octet = octet * 10 + static_cast<unsigned>(*p - '0');
      ++p;
      if (p != end && static_cast<unsigned char>(*p - '0') <= 9) {
        octet = octet * 10 + static_cast<unsigned>(*p - '0');
        ++p;
        if (octet > 255) return false;
      }
    }
    value = value << 8 | octet;
    if (part < 3) {
      if (p == end || *p != '.') return false;
      ++p;
    }
  }
  if (p != end) return false;
  out = value;
  return true;
}

/// Every RFC 4291 text form: eight groups, one "::", an IPv4 tail in the last 32 bits.
constexpr bool parse_v6(const char* p, const char* end, std::uint64_t& high, std::uint64_t& low) noexcept {
  std::uint16_t groups[8] = {};
  int count = 0;
  int gap = -1;  // index where "::" stands, if any
  if (end - p < 2) return false;
  if (*p == ':') {
    if (p[1] != ':') return false;
    p += 2;
    gap = 0;
  }
  while (p != end) {
    const char* start = p;
    unsigned value = 0;
    int digits = 0;
    for (; p != end && digits < 5; ++p, ++digits) {
      const int v = hex_value(*p);
      if (v < 0) break;
      value = value << 4 | static_cast<unsigned>(v);
    }
    if (p != end && *p == '.') {
      std::uint32_t v4 = 0;
      if (count > 6 || !parse_v4(start, end, v4)) return false;
      groups[count++] = static_cast<std::uint16_t>(v4 >> 16);
      groups[count++] = static_cast<std::uint16_t>(v4);
      p = end;
      break;
    }
    if (digits == 0 || digits > 4 || count == 8) return false;
    groups[count++] = static_cast<std::uint16_t>(value);
    if (p == end) break;
    if (*p != ':') return false;
    if (++p == end) return false;  // a single trailing colon
    if (*p == ':') {
      if (gap >= 0) return false;  // a second "::"
      gap = count;
      ++p;
    }
  }
  return pack_v6_groups(groups, count, gap, high, low);
}

inline std::size_t format_v4(std::uint32_t v, char* out) noexcept {
  std::size_t n = 0;
  for (int i = 3; i >= 0; --i) {
    const unsigned octet = (v >> (8 * i)) & 0xff;
    if (octet >= 100) out[n++] = static_cast<char>('0' + octet / 100);
    if (octet >= 10) out[n++] = static_cast<char>('0' + octet / 10 % 10);
    out[n++] = static_cast<char>('0' + octet % 10);
    if (i) out[n++] = '.';
  }
  return n;
}

}  // namespace detail

inline std::size_t ip_address::format(char* out) const noexcept {
  if (is_v4()) return detail::format_v4(static_cast<std::uint32_t>(low_), out);
  if (is_v4_mapped()) {
    constexpr std::string_view prefix = "::ffff:";
    for (std::size_t i = 0; i < prefix.size(); ++i) out[i] = prefix[i];
    return prefix.size() + detail::format_v4(static_cast<std::uint32_t>(low_), out + prefix.size());
  }
  unsigned groups[8];
  for (int i = 0; i < 4; ++i) groups[i] = (high_ >> (48 - 16 * i)) & 0xffff;
  for (int i = 0; i < 4; ++i) groups[4 + i] = (low_ >> (48 - 16 * i)) & 0xffff;
  // RFC 5952 4.2: compress the longest run of two or more zero groups, the first on a tie.
  int best_start = -1, best_length = 1;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_length) {
      best_start = i;
      best_length = j - i;
    }
    i = j;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t n = 0;
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out[n++] = ':';
      if (i == 0) out[n++] = ':';
      i += best_length - 1;
      continue;
    }
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned digit = (groups[i] >> shift) & 0xf;
      if (digit || started || shift == 0) {
        out[n++] = kHex[digit];
        started = true;
      }
    }
    if (i != 7) out[n++] = ':';
  }
  return n;
}

namespace detail {

/// The plain reading of the grammar, one branch per byte: usable in constant
/// expressions, and the reference the fast parsers are tested against.
constexpr std::optional<ip_address> parse_ip_reference(std::string_view text) noexcept {
  const char* p = text.data();
  const char* end = p + text.size();
  if (text.size() > ip_address::kMaxTextLength) return std::nullopt;
  bool has_colon = false;
  for (const char* q = p; q != end; ++q) {
    if (*q == ':') {
      has_colon = true;
      break;
    }
  }
  if (!has_colon) {
    std::uint32_t v4 = 0;
    if (!parse_v4(p, end, v4)) return std::nullopt;
    return ip_address::v4(v4);
  }
  std::uint64_t high = 0, low = 0;
  if (!parse_v6(p, end, high, low)) return std::nullopt;
  return ip_address::v6(high, low);
}

inline std::optional<ip_address> parse_ip_fast(std::string_view text) noexcept {
  const char* p = text.data();
  const std::size_t n = text.size();
  // An IPv6 address has a colon within its first 5 bytes (a group is at most 4
  // digits); an IPv4 address has none and is 7 to 15 bytes long.
  auto colon_ahead = [&] { return p[0] == ':' || p[1] == ':' || p[2] == ':' || p[3] == ':' || p[4] == ':'; };
  std::uint32_t v4 = 0;
  std::uint64_t high = 0, low = 0;
#if GRAYROUTE_HAS_SSSE3_PATH
  if (cpu_has_ssse3()) {
    // A dotted quad has a dot among bytes 1-3, an IPv6 address almost never does:
    // one SWAR test picks the parser without a branch per byte.
    if (n >= 8 && n <= 15) {
      std::uint32_t head;
      std::memcpy(&head, p, 4);
      const std::uint32_t x = head ^ 0x2e2e2e2eu;  // a zero byte where a '.' is
      if (((x - 0x01010101u) & ~x & 0x80808000u) != 0 && parse_v4_ssse3(p, n, v4)) return ip_address::v4(v4);
    }
    if (n < 7 || colon_ahead()) {
      if (!parse_v6_ssse3(p, n, high, low)) return std::nullopt;
      return ip_address::v6(high, low);
    }
    if (n == 7 && parse_v4_fast(p, n, v4)) return ip_address::v4(v4);
    return std::nullopt;
  }
#endif
  if (n >= 7 && !colon_ahead()) {
    if (!parse_v4_fast(p, n, v4)) return std::nullopt;
    return ip_address::v4(v4);
  }
  if (!parse_v6_fast(p, n, high, low)) return std::nullopt;
  return ip_address::v6(high, low);
}

}  // namespace detail

/// Parses an IPv4 dotted quad or any RFC 4291 IPv6 form. Rejects leading zeros in
/// IPv4 octets, zone ids ("fe80::1%eth0"), brackets and surrounding whitespace.
[[nodiscard]] constexpr std::optional<ip_address> parse_ip(std::string_view text) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  if (!__builtin_is_constant_evaluated()) return detail::parse_ip_fast(text);
#endif
  return detail::parse_ip_reference(text);
}

namespace detail {

// A prefix length: decimal, 1-3 digits, no leading zeros; -1 when malformed.
constexpr int parse_prefix_length(std::string_view digits) noexcept {
  if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) return -1;
  int prefix = 0;
  for (char c : digits) {
    if (static_cast<unsigned char>(c - '0') > 9) return -1;
    prefix = prefix * 10 + (c - '0');
  }
  return prefix;
}

}  // namespace detail

/// Parses "address/prefix" or a bare address (a /32 or /128). The prefix is decimal
/// without leading zeros. A network with host bits set ("10.0.0.1/8") is rejected,
/// because it almost always hides a typo in a gray list or a trusted-proxy list. So
/// is an IPv4-mapped network shorter than /128 ("::ffff:0:0/96" would silently mean
/// all of IPv4): write the IPv4 network instead (bad_network_message says which).
/// A v4-mapped host ("::ffff:10.0.0.1", "/128") is accepted and matches as IPv4.
[[nodiscard]] constexpr std::optional<ip_network> parse_network(std::string_view text) noexcept {
  const std::size_t slash = text.find('/');
  const auto address = parse_ip(text.substr(0, slash));
  if (!address) return std::nullopt;
  if (slash == std::string_view::npos) return ip_network::host(*address);
  const int prefix = detail::parse_prefix_length(text.substr(slash + 1));
  if (prefix < 0 || (address->is_v4_mapped() && prefix < 128)) return std::nullopt;
  return ip_network::make(*address, static_cast<unsigned>(prefix));
}

/// Why parse_network(text) failed, naming the value, for a configuration error:
/// `"::ffff:10.0.0.0/104" is an IPv4-mapped network: write "10.0.0.0/8"`.
inline std::string bad_network_message(std::string_view text) {
  const std::size_t slash = text.find('/');
  const auto address = parse_ip(text.substr(0, slash));
  if (address && address->is_v4_mapped() && slash != std::string_view::npos) {
    const int prefix = detail::parse_prefix_length(text.substr(slash + 1));
    if (prefix >= 96 && prefix < 128 && ip_network::make(*address, static_cast<unsigned>(prefix))) {
      const auto v4 = ip_network::make(address->unmapped(), static_cast<unsigned>(prefix - 96));
      return detail::quote_value(text) + " is an IPv4-mapped network, which would match IPv4 clients: write " +
             detail::quote_value(to_string(*v4)) + " instead";
    }
  }
  return detail::quote_value(text) + " is not an address or network (a network must have no host bits set)";
}

GRAYROUTE_NAMESPACE_END

// std::hash is declared by <optional> and <string_view> (both specialise it), so the
// heavy <functional> is not needed to specialise it here.
namespace std {
template <>
struct hash<grayroute::ip_address> {
  size_t operator()(const grayroute::ip_address& a) const noexcept { return a.hash(); }
};
template <>
struct hash<grayroute::ip_network> {
  size_t operator()(const grayroute::ip_network& n) const noexcept { return n.hash(); }
};
}  // namespace std

#endif  // GRAYROUTE_IP_HPP
