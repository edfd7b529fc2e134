// How grayroute reads a request's headers: any forward range of (name, value).
//
// Each element may be
//   - pair-like: .first and .second (std::pair<std::string_view, std::string_view>,
//     std::map<std::string, std::string>::value_type, ...), or
//   - Beast-like: .name_string() and .value() (boost::beast::http::fields).
// Names compare case-insensitively and a header may appear on several lines, in
// the order the request carried them. Nothing is copied.
#ifndef GRAYROUTE_HEADERS_HPP
#define GRAYROUTE_HEADERS_HPP

#include <string_view>
#include <type_traits>
#include <utility>

#include "detail/ascii.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// The simplest header list: `header_list h{{"X-Forwarded-For", "1.2.3.4"}};`
using header = std::pair<std::string_view, std::string_view>;

namespace detail {

template <class T>
std::string_view as_string_view(const T& text) noexcept {
  if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return std::string_view(text);
  } else {
    return std::string_view(text.data(), text.size());
  }
}

template <class T, class = void>
struct has_first : std::false_type {};
template <class T>
struct has_first<T, std::void_t<decltype(std::declval<const T&>().first)>> : std::true_type {};

template <class T, class = void>
struct has_name_string : std::false_type {};
template <class T>
struct has_name_string<T, std::void_t<decltype(std::declval<const T&>().name_string())>> : std::true_type {};

template <class H>
std::string_view header_name(const H& h) noexcept {
  if constexpr (has_first<H>::value) {
    return as_string_view(h.first);
  } else {
    static_assert(has_name_string<H>::value, "a header must have .first/.second or .name_string()/.value()");
    return as_string_view(h.name_string());
  }
}

template <class H>
std::string_view header_value(const H& h) noexcept {
  if constexpr (has_first<H>::value) {
    return as_string_view(h.second);
  } else {
    return as_string_view(h.value());
  }
}

}  // namespace detail

/// ASCII case-insensitive equality, as header names and tokens compare (RFC 9110 5.1):
/// `grayroute::iequals(name, "Connection")`. Locale-free, no allocation.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept { return detail::iequals(a, b); }

/// A field value without its optional whitespace (SP / HTAB) at both ends (RFC 9110 5.5).
constexpr std::string_view trim_ows(std::string_view value) noexcept { return detail::trim_ows(value); }

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_HEADERS_HPP
