// The named routes of a policy: at least two, each a non-empty unique token; the
// index of a name is its route_id. Validated once here for everything that names
// routes (policies, rule parsing, list files, Redis hash values).
//
//   grayroute::route_table routes({"production", "gray", "beta"});   // throws config_error
//   routes.find("beta");   // route_id 2
#ifndef GRAYROUTE_ROUTE_TABLE_HPP
#define GRAYROUTE_ROUTE_TABLE_HPP

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config_error.hpp"
#include "detail/ascii.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

class route_table {
 public:
  /// Throws config_error naming the bad name: fewer than two, empty, not a token
  /// (an nginx upstream or a TOML key must be able to carry it), or listed twice.
  explicit route_table(std::vector<std::string> names = {"production", "gray"}) : names_(std::move(names)) {
    if (names_.size() < 2) detail::throw_config_error("at least two routes are needed (production and gray)");
    if (names_.size() > 0xffff) detail::throw_config_error("too many routes");
    for (std::size_t i = 0; i < names_.size(); ++i) {
      const std::string& name = names_[i];
      if (name.empty()) detail::throw_config_error("route " + std::to_string(i) + " has an empty name");
      for (char c : name) {
        if (!detail::is_tchar(c)) detail::throw_config_error("route " + detail::quote_value(name) + " is not a token");
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (names_[j] == name) detail::throw_config_error("route " + detail::quote_value(name) + " is listed twice");
      }
    }
  }

  /// The id of the route called `name`, if there is one.
  std::optional<route_id> find(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return static_cast<route_id>(i);
    }
    return std::nullopt;
  }

  /// find(), or config_error naming `what` and the unknown name.
  route_id require(std::string_view name, std::string_view what) const {
    if (const auto id = find(name)) return *id;
    detail::throw_config_error(std::string(what) + ": unknown route " + detail::quote_value(name));
  }

  /// The name of `route`; "" when out of range.
  std::string_view name(route_id route) const noexcept {
    return route < names_.size() ? std::string_view(names_[route]) : std::string_view();
  }

  std::size_t size() const noexcept { return names_.size(); }
  const std::vector<std::string>& names() const noexcept { return names_; }

 private:
  std::vector<std::string> names_;
};

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_ROUTE_TABLE_HPP
