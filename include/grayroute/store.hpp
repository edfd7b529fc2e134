// What a gray-list store must offer the router, and the route ids it answers with.
//
// A store maps networks to a route id. The router asks it one question per request,
// from many threads at once:
//
//   std::optional<route_id> lookup(const ip_address&) const noexcept;
//
// nullopt means "not listed". The answer must come from memory the store already
// holds (no I/O, no lock a writer can hold for long, no exception): a store backed
// by a remote system (Redis, a config service) keeps a local snapshot and refreshes
// it off the request path. memory_store and redis_store both satisfy this; so can a
// shared-memory table of your own.
#ifndef GRAYROUTE_STORE_HPP
#define GRAYROUTE_STORE_HPP

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "ip.hpp"
#include "version.hpp"

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
#include <concepts>
#endif

GRAYROUTE_NAMESPACE_BEGIN

/// Index of a route in the router's route list.
using route_id = std::uint16_t;
inline constexpr route_id kProduction = 0;  ///< the first route: where everyone goes by default
inline constexpr route_id kGray = 1;        ///< the second route: the seed's "pre-release"

namespace detail {
template <class S, class = void>
struct has_store_lookup : std::false_type {};
template <class S>
struct has_store_lookup<S, std::void_t<decltype(std::declval<const S&>().lookup(std::declval<const ip_address&>()))>>
    : std::bool_constant<
          std::is_same_v<decltype(std::declval<const S&>().lookup(std::declval<const ip_address&>())),
                         std::optional<route_id>> &&
          noexcept(std::declval<const S&>().lookup(std::declval<const ip_address&>()))> {};
}  // namespace detail

/// C++17 spelling of the store requirement: `static_assert(grayroute::is_store_v<my_store>);`
template <class S>
inline constexpr bool is_store_v = detail::has_store_lookup<S>::value;

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
/// C++20 spelling of the same requirement.
template <class S>
concept store = requires(const S& s, const ip_address& a) {
  { s.lookup(a) } noexcept -> std::same_as<std::optional<route_id>>;
};
#endif

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_STORE_HPP
