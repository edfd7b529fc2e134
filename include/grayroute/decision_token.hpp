// Decision tokens: the tier that decides signs its decision, inner tiers obey it, so a
// user's page and its API calls land on the same route across gateway tiers.
//
//   grayroute::decision_keys keys = grayroute::load_decision_keys("/etc/grayroute/decision.key");
//   auto token = grayroute::encode_decision_token({"gray", route_reason::percentage, "canary", 7, now + 60}, keys);
//   // ... the edge sends token->view() upstream in `Grayroute-Decision`; an inner tier:
//   auto v = grayroute::verify_decision_token(header_value, keys, routes, now);
//   if (v.status == grayroute::token_status::valid) { d.route = v.route; d.reason = route_reason::upstream; d.rule = v.claims.rule; }
//
// The text, all of it header- and cookie-safe (RFC 6265 cookie-octets, no DQUOTE):
//
//   gr1:<route>:<reason>:<rule>:<policy version>:<expires>:<tag>
//   gr1:gray:percentage:canary:7:1796119200:3f0c2a9d51b7e604
//
// route and rule are names made of RFC 9110 token characters (no ':'); the rule may be
// empty; reason is to_string(route_reason); policy version and expiry (Unix seconds, the
// token is good while now < expires) are canonical decimals; the tag is 16 lower-case hex
// digits of SipHash-2-4 over every byte before the last ':' under a 128-bit key.
//
// Why SipHash-2-4 suffices here. The property a token needs is unforgeability under a
// secret key shared by our own tiers: SipHash-2-4 is designed and analysed as a PRF for
// short inputs, and a PRF is a MAC. Its tag is 64 bits, so a forger who cannot see the key
// succeeds with probability 2^-64 per attempt, and every attempt is a request we see:
// at a million forged requests a second for a year (~2^45) the chance is below 2^-19.
// Expiry bounds replay: a captured token (it travels in a header or cookie) can be
// replayed by anyone who holds it until it expires, which gives its holder the route it
// names and nothing more, exactly what the user who got it had. Limits: it is not a
// signature (every tier holding the key can mint tokens), 64 bits is too short for a
// long-lived offline-checkable credential, the key must stay secret and be rotated when
// a tier that held it is decommissioned, and a token is not bound to a client. No new
// dependency in the core: one SipHash of a token is ~17 ns, verify ~71 ns and encode
// ~70 ns, beside ~43 ns for the decision itself (bench/bench_consistent.cpp).
//
// Verification never allocates or throws; the MAC is compared in constant time and
// checked before any other field is believed. Rotation: a keyring holds the key that
// signs and optionally the previous one, still accepted.
#ifndef GRAYROUTE_DECISION_TOKEN_HPP
#define GRAYROUTE_DECISION_TOKEN_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "config_error.hpp"
#include "decision.hpp"
#include "detail/ascii.hpp"
#include "detail/config_lines.hpp"
#include "detail/siphash.hpp"
#include "route_table.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

namespace detail {
struct token_codec;
}

/// The default request header carrying a token between tiers.
inline constexpr std::string_view kDecisionHeader = "Grayroute-Decision";
/// The longest token encode_decision_token() writes and verify_decision_token() reads.
inline constexpr std::size_t kMaxDecisionTokenLength = 256;

/// What a token says. Names point into the token text (verify) or the caller's strings (encode).
struct decision_claims {
  std::string_view route;
  route_reason reason = route_reason::default_route;
  std::string_view rule;
  std::uint64_t policy_version = 0;
  std::int64_t expires = 0;  ///< Unix seconds; the token is good while now < expires
};

/// The key that signs and, during a rotation, the previous key still accepted.
class decision_keys {
 public:
  using key = std::array<std::uint8_t, 16>;

  explicit decision_keys(const key& current) noexcept : current_(to_sip(current)) {}
  decision_keys(const key& current, const key& previous) noexcept
      : current_(to_sip(current)), previous_(to_sip(previous)), has_previous_(true) {}

  bool has_previous() const noexcept { return has_previous_; }

 private:
  static detail::siphash_key to_sip(const key& k) noexcept { return detail::siphash_key_from_bytes(k.data()); }

  detail::siphash_key current_, previous_;
  bool has_previous_ = false;

  friend struct detail::token_codec;
};

/// A token in a fixed buffer: no allocation to make one.
class decision_token {
 public:
  std::string_view view() const noexcept { return {data_.data(), size_}; }

 private:
  std::array<char, kMaxDecisionTokenLength> data_{};
  std::size_t size_ = 0;

  friend struct detail::token_codec;
};

enum class token_status : std::uint8_t {
  valid,
  malformed,      ///< not a gr1 token, a bad field, or too long
  bad_mac,        ///< forged, altered, or signed with a key this tier does not hold
  expired,        ///< now >= expires
  unknown_route,  ///< a genuine token naming a route this tier does not have
};

/// "valid", "malformed", "bad_mac", "expired", "unknown_route": for logs and counters.
constexpr std::string_view to_string(token_status status) noexcept {
  switch (status) {
    case token_status::valid: return "valid";
    case token_status::malformed: return "malformed";
    case token_status::bad_mac: return "bad_mac";
    case token_status::expired: return "expired";
    case token_status::unknown_route: return "unknown_route";
  }
  return "malformed";
}

struct token_verification {
  token_status status = token_status::malformed;
  route_id route = kProduction;  ///< valid: the route's id in this tier's table
  decision_claims claims;        ///< valid, expired, unknown_route: what the token said
};

namespace detail {

inline constexpr std::string_view kTokenPrefix = "gr1:";

/// A route or rule name a token can carry: token characters only (so never ':').
constexpr bool is_token_name(std::string_view name) noexcept {
  for (char c : name) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

// The inverse of to_string(route_reason), over every value of the underlying type, so a
// reason added to decision.hpp later is understood without a change here (to_string
// answers "default" for values that are not enumerators).
constexpr std::optional<route_reason> parse_route_reason(std::string_view text) noexcept {
  for (unsigned i = 0; i <= 0xff; ++i) {
    const auto reason = static_cast<route_reason>(i);
    const std::string_view name = to_string(reason);
    if (name == text && (reason == route_reason::default_route || name != "default")) return reason;
  }
  return std::nullopt;
}

// Canonical decimal: no sign, no leading zero (but "0"), at most `max`.
constexpr std::optional<std::uint64_t> parse_canonical_decimal(std::string_view text, std::uint64_t max) noexcept {
  if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    // 19 digits always fit in 64 bits; only a 20th can overflow (one division, not one a digit).
    if (i == 19 && value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  if (value > max) return std::nullopt;
  return value;
}

// 0-15 for a hex digit ('A'-'F' only when `upper_ok`), 16 for anything else.
constexpr unsigned hex_value(char c, bool upper_ok) noexcept {
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
  if (upper_ok && c >= 'A' && c <= 'F') return static_cast<unsigned>(c - 'A' + 10);
  return 16;
}

// Exactly 16 lower-case hex digits: a tag has one spelling.
constexpr std::optional<std::uint64_t> parse_hex64(std::string_view text) noexcept {
  if (text.size() != 16) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    const unsigned digit = hex_value(c, false);
    if (digit > 15) return std::nullopt;
    value = value << 4 | digit;
  }
  return value;
}

// Branch-free, so the time taken says nothing about how many bits of a guess were right.
constexpr std::uint64_t differs(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t x = a ^ b;
  return (x | (~x + 1)) >> 63;  // 1 when x != 0
}

}  // namespace detail

namespace detail {

struct token_codec {
  static std::optional<decision_token> encode(const decision_claims& claims, const decision_keys& keys) noexcept {
    if (claims.route.empty() || !detail::is_token_name(claims.route) || !detail::is_token_name(claims.rule) ||
        claims.expires < 0) {
      return std::nullopt;
    }
    decision_token t;
    char* const begin = t.data_.data();
    char* const end = begin + t.data_.size();
    char* out = begin;
    auto put = [&](std::string_view s) {
      if (static_cast<std::size_t>(end - out) < s.size()) return false;
      for (char c : s) *out++ = c;
      return true;
    };
    auto put_decimal = [&](std::uint64_t v) {
      char digits[20];
      std::size_t n = 0;
      do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
      } while (v != 0);
      if (static_cast<std::size_t>(end - out) < n) return false;
      while (n > 0) *out++ = digits[--n];
      return true;
    };
    const bool fits = put(detail::kTokenPrefix) && put(claims.route) && put(":") && put(to_string(claims.reason)) &&
                      put(":") && put(claims.rule) && put(":") && put_decimal(claims.policy_version) && put(":") &&
                      put_decimal(static_cast<std::uint64_t>(claims.expires)) && put(":");
    if (!fits || end - out < 16) return std::nullopt;
    const std::size_t signed_length = static_cast<std::size_t>(out - begin) - 1;  // up to the last ':'
    std::uint64_t tag = mac(keys.current_, begin, signed_length);
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i, tag >>= 4) out[i] = kHex[tag & 0xf];
    t.size_ = signed_length + 1 + 16;
    return t;
  }

  template <class FindRoute>
  static token_verification verify(std::string_view token, const decision_keys& keys, std::int64_t now,
                                   const FindRoute& find_route) noexcept {
    token_verification v;
    if (token.size() > kMaxDecisionTokenLength || token.substr(0, detail::kTokenPrefix.size()) != detail::kTokenPrefix) {
      return v;
    }
    const std::size_t last = token.rfind(':');
    const auto tag = detail::parse_hex64(token.substr(last + 1));
    if (!tag) return v;
    const std::string_view signed_part = token.substr(0, last);
    const auto* bytes = reinterpret_cast<const unsigned char*>(signed_part.data());
    // Both keys are always tried, so the time taken does not say which key signed.
    std::uint64_t bad = detail::differs(*tag, detail::siphash24(keys.current_, bytes, signed_part.size()));
    if (keys.has_previous_) bad &= detail::differs(*tag, detail::siphash24(keys.previous_, bytes, signed_part.size()));
    if (bad != 0) {
      v.status = token_status::bad_mac;
      return v;
    }
    // Genuine from here on; still parsed strictly, as a key shared with a buggy tier may sign junk.
    // One pass for the four separators: a short token is cheaper to walk than to memchr.
    std::string_view fields[5];
    std::size_t start = detail::kTokenPrefix.size(), count = 0;
    for (std::size_t i = start; i < signed_part.size(); ++i) {
      if (signed_part[i] != ':') continue;
      if (count == 4) return v;
      fields[count++] = signed_part.substr(start, i - start);
      start = i + 1;
    }
    if (count != 4) return v;
    fields[4] = signed_part.substr(start);
    const auto reason = detail::parse_route_reason(fields[1]);
    const auto version = detail::parse_canonical_decimal(fields[3], UINT64_MAX);
    const auto expires = detail::parse_canonical_decimal(fields[4], static_cast<std::uint64_t>(INT64_MAX));
    if (fields[0].empty() || !detail::is_token_name(fields[0]) || !detail::is_token_name(fields[2]) || !reason ||
        !version || !expires) {
      return v;
    }
    v.claims = {fields[0], *reason, fields[2], *version, static_cast<std::int64_t>(*expires)};
    if (now >= v.claims.expires) {
      v.status = token_status::expired;
      return v;
    }
    const std::optional<route_id> route = find_route(fields[0]);
    if (!route) {
      v.status = token_status::unknown_route;
      return v;
    }
    v.route = *route;
    v.status = token_status::valid;
    return v;
  }

  static std::uint64_t mac(const detail::siphash_key& key, const char* data, std::size_t size) noexcept {
    return detail::siphash24(key, reinterpret_cast<const unsigned char*>(data), size);
  }
};

}  // namespace detail

/// Signs `claims` with the current key; nullopt when a name is empty (route), not made of
/// token characters, the expiry is negative, or the token would exceed kMaxDecisionTokenLength.
[[nodiscard]] inline std::optional<decision_token> encode_decision_token(const decision_claims& claims,
                                                                         const decision_keys& keys) noexcept {
  return detail::token_codec::encode(claims, keys);
}

/// Checks a token at time `now` (Unix seconds) against either key; `find_route(name)`
/// returns this tier's std::optional<route_id> for a route name (a route_table's or a
/// policy's find_route). Never allocates or throws.
template <class FindRoute>
[[nodiscard]] token_verification verify_decision_token(std::string_view token, const decision_keys& keys,
                                                       std::int64_t now, const FindRoute& find_route) noexcept {
  return detail::token_codec::verify(token, keys, now, find_route);
}

[[nodiscard]] inline token_verification verify_decision_token(std::string_view token, const decision_keys& keys,
                                                              const route_table& routes, std::int64_t now) noexcept {
  return detail::token_codec::verify(token, keys, now,
                                       [&routes](std::string_view name) { return routes.find(name); });
}

/// Parses key text: one or two keys of 32 hex digits (16 bytes, first byte first), the
/// signing key first and the previous key (still accepted) second; blank lines and
/// `#` comments ignored. Errors name `source` and the line, never the key material.
[[nodiscard]] inline decision_keys parse_decision_keys(std::string_view text, std::string_view source) {
  decision_keys::key keys[2]{};
  std::size_t count = 0, line_number = 0;
  auto fail = [&](const std::string& why) {
    detail::throw_config_error("decision key file " + detail::quote_value(source) + " line " +
                               std::to_string(line_number) + ": " + why);
  };
  while (const auto next = detail::next_config_line(text, line_number)) {
    const std::string_view line = *next;
    if (count == 2) fail("more than two keys (the signing key, then the previous one)");
    if (line.size() != 32) fail("a key is 32 hex digits (128 bits); this line has " + std::to_string(line.size()) + " characters");
    for (std::size_t i = 0; i < 16; ++i) {
      const unsigned high = detail::hex_value(line[2 * i], true), low = detail::hex_value(line[2 * i + 1], true);
      if (high > 15 || low > 15) fail("a key is 32 hex digits (128 bits); this line has a character that is not one");
      keys[count][i] = static_cast<std::uint8_t>(high << 4 | low);
    }
    ++count;
  }
  if (count == 0) {
    detail::throw_config_error("decision key file " + detail::quote_value(source) + ": no key in it");
  }
  return count == 1 ? decision_keys(keys[0]) : decision_keys(keys[0], keys[1]);
}

/// Reads a key file (see parse_decision_keys); keys never come from a command line.
[[nodiscard]] inline decision_keys load_decision_keys(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) detail::throw_config_error("decision key file " + detail::quote_value(path) + ": cannot be read");
  std::ostringstream text;
  text << file.rdbuf();
  return parse_decision_keys(text.str(), path);
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DECISION_TOKEN_HPP
