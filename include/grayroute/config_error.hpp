// The one exception grayroute throws: a configuration mistake, reported once
// when a resolver, router or list is built, never on the request path.
#ifndef GRAYROUTE_CONFIG_ERROR_HPP
#define GRAYROUTE_CONFIG_ERROR_HPP

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// Thrown while building configuration; what() names the bad value, e.g.
/// `grayroute: trusted proxy "10.0.0.1/8": not a network (host bits set?)`.
class config_error : public std::invalid_argument {
 public:
  explicit config_error(const std::string& what) : std::invalid_argument("grayroute: " + what) {}
};

/// `value` in double quotes, control bytes shown hex-escaped, for configuration error
/// messages that name the bad value (the convention every adapter's errors follow):
///   throw grayroute::config_error("unknown option " + grayroute::quote_value(name));
inline std::string quote_value(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out += '"';
  for (char c : value) {
    // Control bytes would garble a log line; show them escaped.
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += kHex[static_cast<unsigned char>(c) & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

namespace detail {

// With -fno-exceptions a bad configuration is fatal and says why, like an
// assertion: there is no request path yet to protect when it happens.
[[noreturn]] inline void throw_config_error(const std::string& what) {
#if GRAYROUTE_HAS_EXCEPTIONS
  throw config_error(what);
#else
  std::fprintf(stderr, "grayroute: %s\n", what.c_str());
  std::abort();
#endif
}

using ::grayroute::quote_value;

}  // namespace detail

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_CONFIG_ERROR_HPP
