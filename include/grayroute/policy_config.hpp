// A routing policy as plain data: what a configuration file or a set of directives is
// translated into, and what grayroute::policy validates and compiles.
//
//   grayroute::policy_config c;
//   c.routes = {"production", "gray", "beta"};
//   c.lists.push_back({"qa", {grayroute::store_ref(qa_store)}});
//   grayroute::rule_config& r = c.rules.emplace_back();
//   r.name = "beta-api";
//   r.hosts = {"api.example.com"};
//   r.paths = {"/v2/"};
//   r.fields.push_back({grayroute::field_kind::header, "X-Beta", grayroute::field_test::equals, {"1", "yes"}});
//   r.route = "beta";
//
// The text spelling of the same (nginx-style rule words, key lists, conditions) is
// parsed into these structures by policy_syntax.hpp.
#ifndef GRAYROUTE_POLICY_CONFIG_HPP
#define GRAYROUTE_POLICY_CONFIG_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client_ip.hpp"
#include "layered_store.hpp"
#include "version.hpp"
#include "weight_schedule.hpp"

GRAYROUTE_NAMESPACE_BEGIN

// GCC (before 13) takes a scoped enumerator named `header` for a shadow of the type
// grayroute::header; it cannot shadow anything, so that warning is off for the enum.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
/// A part of the request a condition or a rollout key reads.
enum class field_kind : std::uint8_t {
  header,  ///< a request header (name case-insensitive; the first line carrying it)
  cookie,  ///< a cookie (name case-sensitive; the first occurrence over all Cookie lines)
  arg,     ///< a query-string argument (name case-insensitive, as nginx's $arg_; value not decoded)
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// "header", "cookie", "arg": as the text syntax spells them.
constexpr std::string_view to_string(field_kind kind) noexcept {
  switch (kind) {
    case field_kind::header: return "header";
    case field_kind::cookie: return "cookie";
    case field_kind::arg: return "arg";
  }
  return "header";
}

enum class field_test : std::uint8_t {
  present,  ///< the field is there (an empty header or cookie value counts as there)
  absent,   ///< the field is not there
  equals,   ///< the field is there and equals one of `values` exactly (case-sensitive)
};

/// "the header X-Beta equals 1 or yes", "the cookie uid is absent", ...
struct field_condition {
  field_kind field = field_kind::header;
  std::string name;
  field_test test = field_test::present;
  std::vector<std::string> values;  ///< for `equals`: at least one
};

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
/// Where a sticky split reads its key; the first source present in a request is used.
struct key_source {
  enum class kind : std::uint8_t {
    given,   ///< the key the gateway passes in request_view::key (e.g. an nginx variable)
    header,  ///< a header's value (surrounding whitespace trimmed)
    cookie,  ///< a cookie's value
    arg,     ///< a query argument's value
    ip,      ///< the resolved client address: always present, so nothing after it is read
  };
  kind source = kind::ip;
  std::string name;  ///< header, cookie or argument name
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// One route's share of a split, in percent (0.0001 steps), or a ramp: with `schedule`
/// set the share's weight is the schedule's at the moment of the decision (read from
/// policy_config::clock_ms) and `percent` must be 0. The shares are laid out in order, so
/// a rising weight moves keys only from production to gray when the scheduled share is
/// the split's last (weight_schedule.hpp).
struct route_share {
  std::string route;
  double percent = 0;
  std::optional<weight_schedule> schedule{};
};

/// One rule: where it applies (scope), what must hold (conditions), what it does (action).
/// Exactly one action: `route` (fixed route, reason `match`), `split` (sticky shares,
/// reason `percentage`; a request outside every share falls through to the next rule),
/// or neither with `list` set ("what the list says": the route stored for the client's
/// longest-prefix entry, reason `list`).
struct rule_config {
  std::string name;  ///< non-empty, unique: shown in decisions

  // Scope. Empty means every host / every path.
  std::vector<std::string> hosts;  ///< "api.example.com", "*.example.com" (one or more labels); case-insensitive, port ignored
  std::vector<std::string> paths;  ///< path prefixes, byte for byte ("/v2/"); the query is not part of the path

  // Conditions: all must hold.
  std::string list;                     ///< the client is on this named list (any route)
  std::vector<std::string> clients;     ///< the client is inside one of these networks
  std::vector<field_condition> fields;  ///< header / cookie / arg tests

  // Action.
  std::string route;
  std::vector<route_share> split;
  std::vector<key_source> key;  ///< split key; empty: the client address
  std::uint32_t seed = 0;       ///< another seed picks an independent set of keys

  /// Where this rule's decisions go when their route's breaker is open (health_table.hpp);
  /// "": the adapter's fallback setting, else the first route. Not the rule's own fixed route.
  std::string fallback;
};

/// A named gray list: one or more layers, the first that lists an address answers
/// (layered_store.hpp says why and in which order the adapters add them).
struct list_config {
  std::string name;
  std::vector<store_ref> layers;
};

struct policy_config {
  /// Route names (index = route_id); at least two. The first is production.
  std::vector<std::string> routes{"production", "gray"};
  /// Where a request goes when no rule decides; "": the first route.
  std::string default_route;
  resolver_config client_ip;

  // Forced routes, checked before every rule (values "always", "never" or a route name).
  std::string force_header;  ///< e.g. "X-Canary"; empty: off
  std::string force_cookie;  ///< e.g. "canary"; empty: off
  std::string force_route;   ///< where "always" sends; "": the second route

  std::vector<list_config> lists;
  std::vector<rule_config> rules;  ///< in order: the first that decides wins

  /// The wall clock scheduled shares are read from, in Unix milliseconds; nullptr: the
  /// system clock. A test injects a function of its own.
  std::int64_t (*clock_ms)() noexcept = nullptr;
};

/// Pinning anonymous users (issue 13): every split rule's key list gets `cookie:<pin_cookie>`
/// where it lists it, else before its `ip` (`ip` added when the list was empty), and
/// `given` just before that cookie unless it has `given` already. A gateway then passes a
/// fresh random id as the given key of a request that has no rollout key
/// (policy::has_rollout_key) and sets it in the pin cookie, which later requests carry:
/// the same key, so the same route.
inline void add_pin_key(policy_config& config, const std::string& pin_cookie) {
  using kind = key_source::kind;
  for (rule_config& rule : config.rules) {
    if (rule.split.empty()) continue;
    std::vector<key_source>& key = rule.key;
    bool has_given = false;
    std::size_t pin = key.size();
    for (std::size_t i = 0; i < key.size(); ++i) {
      has_given = has_given || key[i].source == kind::given;
      if (pin == key.size() && key[i].source == kind::cookie && key[i].name == pin_cookie) pin = i;
    }
    if (pin == key.size()) {  // not listed: before the client address
      pin = 0;
      while (pin < key.size() && key[pin].source != kind::ip) ++pin;
      if (key.empty()) key.push_back({kind::ip, {}});
      key.insert(key.begin() + static_cast<std::ptrdiff_t>(pin), key_source{kind::cookie, pin_cookie});
    }
    if (!has_given) key.insert(key.begin() + static_cast<std::ptrdiff_t>(pin), key_source{kind::given, {}});
  }
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_POLICY_CONFIG_HPP
