// Set-Cookie values (RFC 6265 section 4.1), validated once so the response path only
// copies bytes: the pin cookie of anonymous users, and any cookie an adapter sets.
//
//   grayroute::set_cookie_builder pin({"gr_pin", 31536000, "example.com", "/", true, true, grayroute::same_site::lax});
//   pin.build(id->view());   // "gr_pin=3f0c...; Max-Age=31536000; Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Lax"
//
// Checked at construction (config_error naming the value): the name is an RFC 9110
// token; Max-Age is a positive number of seconds or 0 for a session cookie; Domain is a
// host name of letter-digit-hyphen labels (RFC 6265 4.1.1 via RFC 1034/1123), without the
// leading dot RFC 6265 4.1.2.3 says is ignored; Path starts with '/' and holds no CTL or
// ';'. From RFC 6265bis, which browsers enforce: SameSite=None needs Secure, a
// "__Secure-" name needs Secure, a "__Host-" name needs Secure, Path=/ and no Domain.
// At request time a value must be cookie-octets (no space, DQUOTE, ',', ';' or '\\').
//
// Defaults where the issue is silent: Path=/, HttpOnly (a routing pin is no business of
// scripts), SameSite=Lax (kept on top-level navigation from other sites, so a link into
// the site keeps the user's route), a year's Max-Age, and no Secure, which a site served
// over HTTPS should turn on.
#ifndef GRAYROUTE_SET_COOKIE_HPP
#define GRAYROUTE_SET_COOKIE_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config_error.hpp"
#include "detail/ascii.hpp"
#include "headers.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

enum class same_site : std::uint8_t { unset, lax, strict, none };

struct set_cookie_config {
  std::string name;
  std::int64_t max_age = 31536000;  ///< seconds; 0: a session cookie (no Max-Age)
  std::string domain;               ///< "": the host that answered only
  std::string path = "/";
  bool secure = false;
  bool http_only = true;
  grayroute::same_site same_site = grayroute::same_site::lax;
};

namespace detail {

// RFC 6265 4.1.1: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E.
constexpr bool is_cookie_octet(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e);
}

constexpr bool is_host_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 253) return false;
  while (true) {
    const std::size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

}  // namespace detail

class set_cookie_builder {
 public:
  /// Throws config_error naming the bad attribute value.
  explicit set_cookie_builder(const set_cookie_config& config) : name_(config.name) {
    const std::string what = "cookie " + detail::quote_value(config.name);
    if (config.name.empty()) detail::throw_config_error("a cookie needs a name");
    for (char c : config.name) {
      if (!detail::is_tchar(c)) detail::throw_config_error(what + ": the name is not a token");
    }
    if (config.max_age < 0) detail::throw_config_error(what + ": max-age " + std::to_string(config.max_age) + " is negative");
    if (!config.domain.empty() && !detail::is_host_name(config.domain)) {
      detail::throw_config_error(what + ": domain " + detail::quote_value(config.domain) +
                                 " is not a host name (letters, digits, '-' labels; no leading dot)");
    }
    if (config.path.empty() || config.path[0] != '/') {
      detail::throw_config_error(what + ": path " + detail::quote_value(config.path) + " does not start with '/'");
    }
    for (char c : config.path) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ';') {
        detail::throw_config_error(what + ": path " + detail::quote_value(config.path) + " holds a control byte or ';'");
      }
    }
    if (config.same_site == same_site::none && !config.secure) {
      detail::throw_config_error(what + ": SameSite=None needs Secure (browsers drop it otherwise)");
    }
    const std::string_view name(config.name);
    if ((name.substr(0, 9) == "__Secure-" || name.substr(0, 7) == "__Host-") && !config.secure) {
      detail::throw_config_error(what + ": a __Secure- or __Host- name needs Secure");
    }
    if (name.substr(0, 7) == "__Host-" && (!config.domain.empty() || config.path != "/")) {
      detail::throw_config_error(what + ": a __Host- cookie has Path=/ and no Domain");
    }
    if (config.max_age > 0) attributes_ += "; Max-Age=" + std::to_string(config.max_age);
    if (!config.domain.empty()) attributes_ += "; Domain=" + config.domain;
    attributes_ += "; Path=" + config.path;
    if (config.secure) attributes_ += "; Secure";
    if (config.http_only) attributes_ += "; HttpOnly";
    switch (config.same_site) {
      case same_site::unset: break;
      case same_site::lax: attributes_ += "; SameSite=Lax"; break;
      case same_site::strict: attributes_ += "; SameSite=Strict"; break;
      case same_site::none: attributes_ += "; SameSite=None"; break;
    }
  }

  const std::string& name() const noexcept { return name_; }

  /// The length of the Set-Cookie value for a cookie value of `value_length` bytes.
  std::size_t length(std::size_t value_length) const noexcept { return name_.size() + 1 + value_length + attributes_.size(); }

  /// Writes the Set-Cookie value into `out`; returns its length, or 0 when `value` is not
  /// cookie-octets or `capacity` is short. No allocation.
  std::size_t write(std::string_view value, char* out, std::size_t capacity) const noexcept {
    for (char c : value) {
      if (!detail::is_cookie_octet(c)) return 0;
    }
    const std::size_t n = length(value.size());
    if (n > capacity) return 0;
    char* p = out;
    for (std::string_view part : {std::string_view(name_), std::string_view("="), value, std::string_view(attributes_)}) {
      for (char c : part) *p++ = c;
    }
    return n;
  }

  /// write() into a new string; "" when `value` is not cookie-octets.
  std::string build(std::string_view value) const {
    std::string out(length(value.size()), '\0');
    out.resize(write(value, out.data(), out.size()));
    return out;
  }

 private:
  std::string name_;
  std::string attributes_;
};

/// A cookie from words, as a gateway's configuration writes it (nginx's
/// `grayroute_pin_cookie name=gr_uid max_age=600 path=/ secure httponly=off samesite=strict`):
/// name= max_age= (seconds; 0 a session cookie) domain= path= secure httponly (bare, =on or
/// =off) samesite=lax|strict|none|unset; what the words leave out keeps set_cookie_config's
/// default. Throws config_error naming `what` and the word; the builder checks the values.
template <class Words>
[[nodiscard]] set_cookie_config parse_set_cookie_words(const Words& words, std::string_view what) {
  set_cookie_config c;
  for (const auto& item : words) {
    const std::string_view word = detail::as_string_view(item);
    const std::size_t eq = word.find('=');
    const std::string_view name = word.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : word.substr(eq + 1);
    const std::string quoted = std::string(what) + ": " + detail::quote_value(word);
    auto on_off = [&]() {
      if (value.empty() || value == "on") return true;
      if (value != "off") detail::throw_config_error(quoted + ": use on or off");
      return false;
    };
    if (name == "name") {
      c.name = std::string(value);
    } else if (name == "max_age" || name == "max-age") {
      std::int64_t seconds = 0;
      for (char d : value) {
        if (!detail::is_digit(d) || seconds > 99999999999LL) detail::throw_config_error(quoted + ": not a number of seconds");
        seconds = seconds * 10 + (d - '0');
      }
      if (value.empty()) detail::throw_config_error(quoted + ": not a number of seconds");
      c.max_age = seconds;
    } else if (name == "domain") {
      c.domain = std::string(value);
    } else if (name == "path") {
      c.path = std::string(value);
    } else if (name == "secure") {
      c.secure = on_off();
    } else if (name == "httponly") {
      c.http_only = on_off();
    } else if (name == "samesite" && value == "lax") {
      c.same_site = same_site::lax;
    } else if (name == "samesite" && value == "strict") {
      c.same_site = same_site::strict;
    } else if (name == "samesite" && value == "none") {
      c.same_site = same_site::none;
    } else if (name == "samesite" && value == "unset") {
      c.same_site = same_site::unset;
    } else if (name == "samesite") {
      detail::throw_config_error(quoted + ": samesite is lax, strict, none or unset");
    } else {
      detail::throw_config_error(quoted + ": not one of name= max_age= domain= path= secure httponly samesite=");
    }
  }
  if (c.name.empty()) detail::throw_config_error(std::string(what) + ": needs name=<cookie name>");
  return c;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_SET_COOKIE_HPP
