// ASCII helpers for HTTP text: locale-free, constexpr, no allocation.
#ifndef GRAYROUTE_DETAIL_ASCII_HPP
#define GRAYROUTE_DETAIL_ASCII_HPP

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

constexpr char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

/// Eight bytes with 'A'..'Z' lowered, every other byte (UTF-8 included) unchanged.
constexpr std::uint64_t lower_word(std::uint64_t x) noexcept {
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  const std::uint64_t low7 = x & ~kHigh;
  const std::uint64_t at_least_a = low7 + 0x3f3f3f3f3f3f3f3full;  // high bit: byte >= 'A'
  const std::uint64_t past_z = low7 + 0x2525252525252525ull;      // high bit: byte > 'Z'
  const std::uint64_t upper = at_least_a & ~past_z & ~x & kHigh;
  return x | (upper >> 2);
}

inline std::uint64_t load_word(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

/// iequals for two strings of the same length; with `b_lowered`, b is known to be
/// lower case already (a configured name) and only a is folded.
constexpr bool iequals_same_size(std::string_view a, std::string_view b, bool b_lowered = false) noexcept {
  const std::size_t n = a.size();
#if defined(__GNUC__) || defined(__clang__)
  if (!__builtin_is_constant_evaluated() && n >= 8) {
    auto word_b = [&](std::size_t at) { return b_lowered ? load_word(b.data() + at) : lower_word(load_word(b.data() + at)); };
    // Whole words, then one last word overlapping the previous one.
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      if (lower_word(load_word(a.data() + i)) != word_b(i)) return false;
    }
    return i == n || lower_word(load_word(a.data() + n - 8)) == word_b(n - 8);
  }
#endif
  for (std::size_t i = 0; i < n; ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

/// Header names compare case-insensitively (RFC 9110 5.1), eight bytes at a time:
/// names are compared on every header of every request, and most differ in length,
/// which this inline check settles without a call.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && iequals_same_size(a, b);
}

/// iequals where `lowered` is already lower case: half the folding.
constexpr bool iequals_lowered(std::string_view text, std::string_view lowered) noexcept {
  return text.size() == lowered.size() && iequals_same_size(text, lowered, true);
}

inline std::string_view lowered_copy(std::string_view text, std::string& out) {
  out.assign(text);
  for (char& c : out) c = to_lower(c);
  return out;
}

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

/// Strips optional whitespace (SP / HTAB) from both ends.
constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

constexpr bool is_digit(char c) noexcept { return static_cast<unsigned char>(c - '0') < 10; }

/// RFC 9110 tchar: the characters of a token.
constexpr bool is_tchar(char c) noexcept {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

/// The lengths of a set of header names, as bits: a request header whose length is
/// not among them is skipped with one test instead of a comparison per name.
class name_lengths {
 public:
  constexpr void add(std::size_t length) noexcept { bits_ |= bit(length); }
  constexpr bool may_match(std::size_t length) const noexcept { return (bits_ & bit(length)) != 0; }

 private:
  static constexpr std::uint64_t bit(std::size_t length) noexcept { return std::uint64_t{1} << (length < 63 ? length : 63); }
  std::uint64_t bits_ = 0;
};

/// Which of a few configured header names (at most 64) a request header carries:
/// the name's length picks the candidates (one table load; most request headers
/// have no candidate), and one or two words of the name, lowered once per header,
/// settle it against words lowered at configuration. A request's headers then cost
/// a load each, plus a few word compares for the ones whose length matches.
class header_name_index {
 public:
  static constexpr std::uint8_t kNone = 0xff;

  header_name_index() noexcept {
    for (auto& first : by_length_) first = kNone;
  }

  /// Adds `name` (any case; not empty, not already added) as `id` (below kNone).
  void add(std::string_view name, std::uint8_t id) {
    entry e;
    lowered_copy(name, e.lowered);
    e.key = words_of(e.lowered);
    e.id = id;
    std::uint8_t& first = by_length_[slot(name.size())];
    e.next = first;
    first = static_cast<std::uint8_t>(entries_.size());
    entries_.push_back(std::move(e));
    lengths_.add(name.size());
  }

  /// The id of `name` (any case), or kNone.
  std::uint8_t find(std::string_view name) const noexcept {
    std::uint8_t i = by_length_[slot(name.size())];
    if (i == kNone) return kNone;
    const words w = words_of(name);
    for (; i != kNone; i = entries_[i].next) {
      const entry& e = entries_[i];
      if (e.key.head != w.head || e.key.tail != w.tail) continue;
      // Names over 16 bytes have a middle the two words do not cover.
      if (name.size() <= 16 || iequals_lowered(name, e.lowered)) return e.id;
    }
    return kNone;
  }

  /// False when no name has this length (a request header skipped with one test).
  bool may_match(std::size_t length) const noexcept { return lengths_.may_match(length); }
  const name_lengths& lengths() const noexcept { return lengths_; }

 private:
  struct words {
    std::uint64_t head, tail;
  };
  struct entry {
    std::string lowered;
    words key;
    std::uint8_t id, next;
  };

  static constexpr std::size_t slot(std::size_t length) noexcept { return length < 63 ? length : 63; }

  // The first and last 8 bytes, lowered (overlapping or packed for shorter names).
  static words words_of(std::string_view name) noexcept {
    const char* p = name.data();
    const std::size_t n = name.size();
    if (n >= 8) return {lower_word(load_word(p)), lower_word(load_word(p + n - 8))};
    std::uint64_t v = 0;
    if (n >= 4) {
      std::uint32_t head, tail;
      std::memcpy(&head, p, 4);
      std::memcpy(&tail, p + n - 4, 4);
      v = head | std::uint64_t{tail} << 32;
    } else {
      for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    }
    return {lower_word(v), 0};
  }

  std::vector<entry> entries_;
  std::uint8_t by_length_[64];  // length (63: longer) -> first entry of that length, or kNone
  name_lengths lengths_;
};

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_ASCII_HPP
