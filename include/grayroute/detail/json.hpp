// JSON string quoting for the status and health reports (Redis store, proxy, nginx
// module): one escaper so every report escapes the same way.
#ifndef GRAYROUTE_DETAIL_JSON_HPP
#define GRAYROUTE_DETAIL_JSON_HPP

#include <string>
#include <string_view>

#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

/// Appends `text` as a quoted JSON string: quotes, backslashes and control bytes escaped.
inline void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      out += "\\u00";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

inline std::string json_string(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_JSON_HPP
