// JSON string quoting for status and health reports (the Redis store's, the proxy's,
// the nginx module's status page): one escaper, so every report escapes the same way,
// for adapters that write a small JSON document by hand rather than through a JSON library.
//
//   std::string out = "{\"route\":";
//   grayroute::append_json_string(out, name);   // "gray", quotes and control bytes escaped
#ifndef GRAYROUTE_JSON_STRING_HPP
#define GRAYROUTE_JSON_STRING_HPP

#include <string>
#include <string_view>

#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

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

/// `text` as a quoted JSON string.
inline std::string json_string(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_JSON_STRING_HPP
