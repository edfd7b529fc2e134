// Element parsers for the headers that carry client addresses through proxies:
// X-Forwarded-For (a comma list of addresses, each maybe with a port or brackets)
// and RFC 7239 Forwarded (elements of `for=`/`by=`/... pairs, tokens or quoted
// strings, bracketed IPv6, ports).
//
// Each parser reports the hops of ONE header line, left to right, as
// std::optional<ip_address>: nullopt marks a hop that names no usable address
// ("unknown", "_hidden", garbage), which stops a trust walk. They never throw,
// never allocate and run in time linear in the line.
#ifndef GRAYROUTE_FORWARDED_HPP
#define GRAYROUTE_FORWARDED_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "detail/ascii.hpp"
#include "ip.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

namespace detail {

// RFC 7239 6: obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-"), and the same set for obfnode.
constexpr bool is_obfuscated_char(char c) noexcept {
  return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '.' || c == '_' || c == '-';
}

// RFC 7239 6: node-port = port / obfport; port = 1*5DIGIT.
constexpr bool is_node_port(std::string_view port) noexcept {
  if (port.empty()) return false;
  if (port[0] == '_') {
    if (port.size() == 1) return false;
    for (char c : port.substr(1)) {
      if (!is_obfuscated_char(c)) return false;
    }
    return true;
  }
  if (port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

// The port a balancer appends to an X-Forwarded-For element: 1-65535 in decimal,
// without leading zeros (nginx's realip accepts the same range).
constexpr bool is_decimal_port(std::string_view port) noexcept {
  if (port.empty() || port.size() > 5 || port[0] == '0') return false;
  unsigned value = 0;
  for (char c : port) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

// "[v6]", maybe followed by ':' and a port that `is_port` accepts; brackets hold IPv6 only.
constexpr std::optional<ip_address> parse_bracketed_v6(std::string_view text, bool (*is_port)(std::string_view)) noexcept {
  const std::size_t close = text.find(']');
  if (close == std::string_view::npos) return std::nullopt;
  const auto address = parse_ip(text.substr(1, close - 1));
  if (!address || !address->is_v6()) return std::nullopt;
  const std::string_view rest = text.substr(close + 1);
  if (!rest.empty() && (rest[0] != ':' || !is_port(rest.substr(1)))) return std::nullopt;
  return address;
}

}  // namespace detail

/// The address in one RFC 7239 node ("192.0.2.43", "192.0.2.43:47011",
/// "[2001:db8::1]", "[2001:db8::1]:4711"), already unquoted. "unknown" and
/// obfuscated identifiers ("_hidden") give nullopt, as does anything malformed.
[[nodiscard]] constexpr std::optional<ip_address> parse_forwarded_node(std::string_view node) noexcept {
  if (node.empty()) return std::nullopt;
  if (node[0] == '[') return detail::parse_bracketed_v6(node, detail::is_node_port);
  const std::size_t colon = node.find(':');
  const auto address = parse_ip(node.substr(0, colon));
  if (!address || !address->is_v4()) return std::nullopt;  // bare IPv6 must be bracketed
  if (colon != std::string_view::npos && !detail::is_node_port(node.substr(colon + 1))) return std::nullopt;
  return address;
}

namespace detail {

// The decorated forms of parse_forwarded_address (brackets, a port): the request
// path tries the bare address inline first, as most hops are bare.
constexpr std::optional<ip_address> parse_decorated_address(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  if (text[0] == '[') return parse_bracketed_v6(text, is_decimal_port);
  // "a.b.c.d:port": a colon here can only start a port, since bare IPv6 did not parse.
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || !is_decimal_port(text.substr(colon + 1))) return std::nullopt;
  const auto address = parse_ip(text.substr(0, colon));
  if (!address || !address->is_v4()) return std::nullopt;
  return address;
}

}  // namespace detail

/// One address as an X-Forwarded-For element or an X-Real-IP value carries it, in
/// the forms balancers write (and nginx's realip module accepts): "203.0.113.9",
/// "203.0.113.9:51234", "2001:db8::9", "[2001:db8::9]", "[2001:db8::9]:51234". A
/// port is 1-65535 in decimal without leading zeros; nothing else is accepted (no
/// whitespace, zones, brackets around IPv4, or a port after bare IPv6).
[[nodiscard]] constexpr std::optional<ip_address> parse_forwarded_address(std::string_view text) noexcept {
  if (auto address = parse_ip(text)) return address;
  return detail::parse_decorated_address(text);
}

/// Calls on_hop(std::optional<ip_address>) for each element of one X-Forwarded-For
/// line (see parse_forwarded_address for the forms). Elements are trimmed of
/// whitespace; empty elements (",,") are skipped.
template <class OnHop>
constexpr void for_each_x_forwarded_for(std::string_view line, OnHop&& on_hop) noexcept {
  while (true) {
    const std::size_t comma = line.find(',');
    const std::string_view element = detail::trim_ows(line.substr(0, comma));
    if (!element.empty()) on_hop(parse_forwarded_address(element));
    if (comma == std::string_view::npos) return;
    line.remove_prefix(comma + 1);
  }
}

namespace detail {

/// The elements of one X-Forwarded-For line from the right, trimmed, empty ones
/// skipped, each passed as text to `on_element`, until it returns true (stop).
/// Returns whether it was stopped. Only the elements a trust walk needs get parsed.
template <class OnElement>
constexpr bool for_each_x_forwarded_for_element_from_right(std::string_view line, OnElement&& on_element) noexcept {
  std::size_t end = line.size();  // one past the element being looked for
  auto element_from = [&](std::size_t start) {
    const std::string_view element = trim_ows(line.substr(start, end - start));
    return !element.empty() && on_element(element);
  };
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
  // Sixteen bytes a compare, from the end: the last block overlaps the one before it
  // rather than reading in front of the line.
  if (!__builtin_is_constant_evaluated() && line.size() >= 16) {
    const __m128i comma = _mm_set1_epi8(',');
    std::size_t block_end = line.size();
    while (true) {
      const std::size_t base = block_end >= 16 ? block_end - 16 : 0;
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(line.data() + base));
      unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, comma)));
      if (block_end - base < 16) mask &= (1u << (block_end - base)) - 1;
      while (mask != 0) {
        const unsigned top = 31u - static_cast<unsigned>(__builtin_clz(mask));
        if (element_from(base + top + 1)) return true;
        end = base + top;
        mask &= ~(1u << top);
      }
      if (base == 0) return element_from(0);
      block_end = base;
    }
  }
#endif
  std::size_t start = end;
  while (true) {
    while (start > 0 && line[start - 1] != ',') --start;
    if (element_from(start)) return true;
    if (start == 0) return false;
    end = --start;
  }
}

#if GRAYROUTE_HAS_SSSE3_PATH
#define GRAYROUTE_XFF_WINDOW 1

// The last (up to) 64 bytes of an X-Forwarded-For line, classified once: bit i of
// each mask describes byte `start + i` of the line. A trust walk reads hops from
// the right, and the hops it examines almost always lie here, so finding an
// element, trimming it and checking that it is a dotted quad are bit arithmetic
// on these masks rather than a pass over its bytes per question.
struct xff_window {
  std::uint64_t comma = 0, dot = 0, digit = 0, zero = 0, ows = 0;
  std::size_t start = 0;  // where the window begins in the line
  std::size_t size = 0;   // how many bytes it covers
  __m128i short_line{};   // a line under 16 bytes, zero-padded
};

__attribute__((target("ssse3"))) inline void classify_xff_block(xff_window& w, __m128i x, std::size_t offset) noexcept {
  const auto bits = [offset](__m128i m) {
    return static_cast<std::uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(m))) << offset;
  };
  const __m128i is_digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
  w.comma |= bits(_mm_cmpeq_epi8(x, _mm_set1_epi8(',')));
  w.dot |= bits(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')));
  w.digit |= bits(is_digit);
  w.zero |= bits(_mm_cmpeq_epi8(x, _mm_set1_epi8('0')));
  w.ows |= bits(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(' ')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\t'))));
}

// A line of 8 bytes or more (a shorter one holds at most one short hop: the plain
// walk is as good).
__attribute__((target("ssse3"))) inline void classify_xff_window(std::string_view line, xff_window& w) noexcept {
  const std::size_t n = line.size();
  const char* p = line.data();
  if (n < 16) {
    // Two overlapping 8-byte loads cover the line exactly; no byte past it is read.
    const std::uint64_t low = load_word(p);
    const std::uint64_t high = n == 8 ? 0 : load_word(p + n - 8) >> (8 * (16 - n));
    w.size = n;
    w.short_line = _mm_set_epi64x(static_cast<long long>(high), static_cast<long long>(low));
    classify_xff_block(w, w.short_line, 0);
    return;
  }
  w.size = n < 64 ? n : 64;
  w.start = n - w.size;
  // From the end in 16-byte blocks; the first block overlaps the one after it
  // rather than reading in front of the window (the overlap sets the same bits).
  for (std::size_t offset = w.size - 16;; offset = offset >= 16 ? offset - 16 : 0) {
    classify_xff_block(w, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + w.start + offset)), offset);
    if (offset == 0) return;
  }
}

constexpr std::uint64_t low_bits(std::size_t count) noexcept {
  return count >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << count) - 1;
}

// Whether window bytes [s, t) (a trimmed, non-empty element) are a dotted quad, and
// its value. Checked on the masks and converted as parse_v4_ssse3 does (one shuffle
// puts each octet in a lane, two multiply-adds give the values). False for anything
// else (IPv6, a port, brackets, garbage, an octet over 255): the caller parses that
// with parse_forwarded_address, so the answer is the same either way.
__attribute__((target("ssse3"), always_inline)) inline bool xff_window_v4(const xff_window& w, std::string_view line,
                                                                         std::size_t s, std::size_t t,
                                                                         std::uint32_t& out) noexcept {
  const std::size_t at = w.start + s, n = t - s;            // the element is line[at, at + n)
  const std::uint64_t all = ~std::uint64_t{0} >> (64 - n);  // n is 1 to 64
  const std::uint64_t dots = (w.dot >> s) & all, digits = (w.digit >> s) & all;
  const std::uint64_t second = dots & (dots - 1), third = second & (second - 1);
  if ((dots | digits) != all || third == 0 || (third & (third - 1)) != 0) return false;
  const auto d1 = static_cast<std::size_t>(__builtin_ctzll(dots));
  const auto d2 = static_cast<std::size_t>(__builtin_ctzll(second));
  const auto d3 = static_cast<std::size_t>(__builtin_ctzll(third));
  // Octets of 1 to 3 digits (so 7 to 15 bytes), none with a leading zero.
  const std::size_t l1 = d1, l2 = d2 - d1 - 1, l3 = d3 - d2 - 1, l4 = n - d3 - 1;
  const std::uint64_t starts = 1u | dots << 1;
  if (l1 - 1 >= 3 || l2 - 1 >= 3 || l3 - 1 >= 3 || l4 - 1 >= 3 || ((w.zero >> s) & starts & (digits >> 1)) != 0) return false;
  // 16 bytes holding the element at byte `k`, none read outside the line; the
  // shuffle picks only the element's digits, so what surrounds it does not matter.
  __m128i bytes;
  std::size_t k;
  if (line.size() < 16) {
    bytes = w.short_line;
    k = at;
  } else {
    const std::size_t from = at + 16 <= line.size() ? at : line.size() - 16;
    bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(line.data() + from));
    k = at - from;
  }
  const auto& pattern = kQuadShuffles[(l1 - 1) * 27 + (l2 - 1) * 9 + (l3 - 1) * 3 + (l4 - 1)];
  const __m128i shuffle = _mm_add_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pattern.data())),
                                       _mm_set1_epi8(static_cast<char>(k)));
  const __m128i lanes = _mm_shuffle_epi8(_mm_sub_epi8(bytes, _mm_set1_epi8('0')), shuffle);
  const __m128i octets = _mm_madd_epi16(_mm_maddubs_epi16(lanes, _mm_set1_epi32(0x00010a64)), _mm_set1_epi16(1));
  if (_mm_movemask_epi8(_mm_cmpgt_epi32(octets, _mm_set1_epi32(255))) != 0) return false;
  const __m128i packed = _mm_shuffle_epi8(octets, _mm_setr_epi8(12, 8, 4, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
  out = static_cast<std::uint32_t>(_mm_cvtsi128_si32(packed));
  return true;
}

__attribute__((noinline)) inline std::optional<ip_address> parse_forwarded_address_out_of_line(std::string_view text) noexcept {
  return parse_forwarded_address(text);
}

// for_each_x_forwarded_for_hop_from_right over the window (the line is 8 bytes or
// more); the plain walk takes over for an element that begins before the window.
template <class OnHop, class OnV4, class ParseEach>
__attribute__((target("ssse3"))) bool walk_xff_window(std::string_view line, OnHop& on_hop, OnV4& on_v4,
                                                      ParseEach& parse_each) noexcept {
  xff_window w;
  classify_xff_window(line, w);
  std::size_t end = w.size;  // one past the element being looked for, in the window
  while (true) {
    const std::uint64_t before = low_bits(end);
    const std::uint64_t commas = w.comma & before;
    if (commas == 0 && w.start != 0) return parse_each(line.substr(0, w.start + end));
    const std::size_t begin = commas == 0 ? 0 : 64 - static_cast<std::size_t>(__builtin_clzll(commas));
    const std::uint64_t text = before & ~low_bits(begin) & ~w.ows;
    if (text != 0) {
      const auto s = static_cast<std::size_t>(__builtin_ctzll(text));
      const auto t = 64 - static_cast<std::size_t>(__builtin_clzll(text));
      std::uint32_t v4;
      if (xff_window_v4(w, line, s, t, v4) ? on_v4(v4)
                                           : on_hop(parse_forwarded_address_out_of_line(line.substr(w.start + s, t - s)))) {
        return true;
      }
    }
    if (begin == 0) return false;
    end = begin - 1;
  }
}

#else
#define GRAYROUTE_XFF_WINDOW 0
#endif

/// The hops of one X-Forwarded-For line from the right, each parsed as
/// parse_forwarded_address would, until a callback returns true (stop); returns
/// whether it was stopped. A dotted quad may go to `on_v4(std::uint32_t)` (its value),
/// every other hop goes to `on_hop(std::optional<ip_address>)`. Elements are trimmed
/// and empty ones skipped, as for_each_x_forwarded_for does; only the hops a trust
/// walk examines are parsed.
template <class OnHop, class OnV4>
bool for_each_x_forwarded_for_hop_from_right(std::string_view line, OnHop&& on_hop, OnV4&& on_v4) noexcept {
  auto parse_each = [&](std::string_view rest) {
    return for_each_x_forwarded_for_element_from_right(
        rest, [&](std::string_view element) { return on_hop(parse_forwarded_address(element)); });
  };
#if GRAYROUTE_XFF_WINDOW
  if (line.size() >= 8 && cpu_has_ssse3()) return walk_xff_window(line, on_hop, on_v4, parse_each);
#else
  (void)on_v4;
#endif
  return parse_each(line);
}

// RFC 9110 5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
constexpr bool is_qdtext(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || u == ' ' || u == 0x21 || (u >= 0x23 && u <= 0x5b) || (u >= 0x5d && u != 0x7f);
}

// RFC 9110 5.6.4: quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ).
constexpr bool is_quoted_pair_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

// The node in a quoted string holding quoted-pairs (`raw` is its inside, escapes
// still in), unescaped into a stack buffer. An address node is at most
// "[" 45 "]" ":" and a port; only an obfuscated port can be longer, and its tail is
// checked as it streams past the buffer.
constexpr std::optional<ip_address> parse_escaped_forwarded_node(std::string_view raw) noexcept {
  constexpr std::size_t kBuffer = 64;
  char buffer[kBuffer] = {};
  std::size_t n = 0;
  bool overflow = false;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i] == '\\' ? raw[++i] : raw[i];  // the caller saw a char after every '\'
    if (n < kBuffer) {
      buffer[n++] = c;
    } else if (!is_obfuscated_char(c)) {
      return std::nullopt;
    } else {
      overflow = true;
    }
  }
  const std::string_view node(buffer, n);
  if (overflow) {
    const std::size_t colon = node.rfind(':');
    if (colon == std::string_view::npos || colon + 1 >= n || node[colon + 1] != '_') return std::nullopt;
  }
  return parse_forwarded_node(node);
}

}  // namespace detail

/// Calls on_hop(std::optional<ip_address>) with the `for=` node of each element of
/// one Forwarded line, read strictly by RFC 7239 section 4: a value is a token or a
/// quoted string, so a node with ':' or '[' must be quoted (`for=192.0.2.60:8080`
/// is not a node); quoted-pairs stand for the octet they escape (RFC 9110 5.6.4).
/// An element without exactly one `for` gives nullopt. A syntax error (an
/// unterminated quote, a stray character, an empty value) gives one nullopt for the
/// element it is in and ends the line: what follows it cannot be told apart reliably.
/// Parse each header line on its own, so a quote a client leaves open cannot
/// swallow the element that a trusted proxy appended on its own line.
template <class OnHop>
constexpr void for_each_forwarded_for(std::string_view line, OnHop&& on_hop) noexcept {
  using detail::is_ows;
  using detail::is_tchar;
  const std::size_t n = line.size();
  std::size_t i = 0;
  auto skip_ows = [&] {
    while (i < n && is_ows(line[i])) ++i;
  };
  while (true) {
    std::optional<ip_address> hop;
    int for_count = 0;
    bool has_pair = false;
    bool broken = false;
    bool line_over = false;
    skip_ows();
    while (i < n && line[i] != ',') {
      if (line[i] == ';') {
        ++i;
        skip_ows();
        continue;
      }
      const std::size_t name_start = i;
      while (i < n && is_tchar(line[i])) ++i;
      const std::string_view name = line.substr(name_start, i - name_start);
      if (name.empty() || i >= n || line[i] != '=') {
        broken = line_over = true;
        break;
      }
      ++i;
      std::string_view value;
      bool escaped = false;
      if (i < n && line[i] == '"') {
        const std::size_t value_start = ++i;
        bool bad_char = false;
        while (i < n && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= n || !detail::is_quoted_pair_char(line[i + 1])) {
              bad_char = true;
              break;
            }
            escaped = true;
            ++i;
          } else if (!detail::is_qdtext(line[i])) {
            bad_char = true;
            break;
          }
          ++i;
        }
        if (bad_char || i >= n) {
          broken = line_over = true;
          break;
        }
        value = line.substr(value_start, i - value_start);
        ++i;
      } else {
        const std::size_t value_start = i;
        while (i < n && is_tchar(line[i])) ++i;
        value = line.substr(value_start, i - value_start);
        if (value.empty()) {  // token = 1*tchar
          broken = line_over = true;
          break;
        }
      }
      has_pair = true;
      if (detail::iequals(name, "for")) {
        ++for_count;
        hop = escaped ? detail::parse_escaped_forwarded_node(value) : parse_forwarded_node(value);
      }
      skip_ows();
      if (i < n && line[i] != ';' && line[i] != ',') {
        broken = line_over = true;
        break;
      }
    }
    if (broken || has_pair) on_hop(broken || for_count != 1 ? std::nullopt : hop);
    if (line_over || i >= n) return;
    ++i;  // the ',' between elements
  }
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_FORWARDED_HPP
