// The one text spelling of policy parts, shared by every adapter: a rule as words
// (nginx's `grayroute_rule NAME word...`), a key list, a condition, a split. Parsing
// checks the spelling and throws config_error naming the word; policy (policy.hpp)
// checks the meaning (routes and lists exist, shares add up). An adapter adds where the
// text came from (file and line) to the message.
//
//   grayroute::rule_config r = grayroute::parse_rule(
//       "beta-api host=api.example.com path=/v2/ header:X-Beta=1,yes route=beta");
//
// Rule words (any order; the repeatable ones add up):
//   host=api.example.com,*.example.com   scope: hosts (repeatable)
//   path=/v2/,/beta/                     scope: path prefixes (repeatable)
//   list=NAME                            condition: the client is on the named list
//   client=10.0.0.0/8,2001:db8::/32      condition: the client is inside a network (repeatable)
//   header:NAME  !header:NAME  header:NAME=v1,v2     present / absent / equals one of
//   cookie:NAME  !cookie:NAME  cookie:NAME=v1,v2     (the same for cookies)
//   arg:NAME     !arg:NAME     arg:NAME=v1,v2        (the same for query arguments)
//   route=NAME                           action: a fixed route
//   split=gray:10,beta:0.5               action: sticky shares in percent, step 0.0001
//   key=header:X-User-Id,cookie:uid,ip   split key: the first source present (also arg:NAME, given)
//   seed=N                               split seed (default 0)
//   fallback=NAME                        where the rule's decisions go when their route is open
//   split=gray:schedule schedule=2026-12-01T10:00:00Z/1%,+1h/5%,+1h/25% ramp=linear
//                                        a ramp: the share written `schedule` takes its
//                                        weight from the schedule (weight_schedule.hpp; the
//                                        `<when>/<weight>` spelling has no spaces); ramp=steps
//                                        (default) or linear
// A rule with list= and neither route= nor split= sends the client where the list says.
#ifndef GRAYROUTE_POLICY_SYNTAX_HPP
#define GRAYROUTE_POLICY_SYNTAX_HPP

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config_error.hpp"
#include "detail/ascii.hpp"
#include "headers.hpp"
#include "ip.hpp"
#include "policy_config.hpp"
#include "version.hpp"
#include "weight_schedule.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// `text` as a network (a bare address is a host network), or config_error:
/// `<what> "10.0.0.1/8": not an address or network (a network must have no host bits set)`.
inline ip_network require_network(std::string_view text, std::string_view what) {
  if (const auto network = parse_network(text)) return *network;
  detail::throw_config_error(std::string(what) + " " + detail::quote_value(text) +
                             ": not an address or network (a network must have no host bits set)");
}

namespace detail {

inline std::vector<std::string_view> split_commas(std::string_view text) {
  std::vector<std::string_view> out;
  while (true) {
    const std::size_t comma = text.find(',');
    out.push_back(text.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
  }
}

// "header:X-User-Id" -> (header, "X-User-Id"); false when the word names no field.
inline bool split_field(std::string_view word, field_kind& kind, std::string_view& name) {
  for (const field_kind k : {field_kind::header, field_kind::cookie, field_kind::arg}) {
    const std::string_view prefix = to_string(k);
    if (word.size() > prefix.size() && word.substr(0, prefix.size()) == prefix && word[prefix.size()] == ':') {
      kind = k;
      name = word.substr(prefix.size() + 1);
      return true;
    }
  }
  return false;
}

}  // namespace detail

/// "header:X-User-Id,cookie:uid,ip" -> the key sources of a split, in order.
[[nodiscard]] inline std::vector<key_source> parse_key_list(std::string_view text) {
  std::vector<key_source> out;
  for (const std::string_view item : detail::split_commas(text)) {
    field_kind kind;
    std::string_view name;
    if (item == "ip") {
      out.push_back({key_source::kind::ip, {}});
    } else if (item == "given") {
      out.push_back({key_source::kind::given, {}});
    } else if (detail::split_field(item, kind, name) && !name.empty()) {
      const key_source::kind source = kind == field_kind::header   ? key_source::kind::header
                                      : kind == field_kind::cookie ? key_source::kind::cookie
                                                                   : key_source::kind::arg;
      out.push_back({source, std::string(name)});
    } else {
      detail::throw_config_error("key " + detail::quote_value(text) + ": " + detail::quote_value(item) +
                                 " is not header:NAME, cookie:NAME, arg:NAME, given or ip");
    }
  }
  return out;
}

/// "header:X-Beta=1,yes", "!cookie:uid", "arg:lang" -> a field condition.
[[nodiscard]] inline field_condition parse_condition(std::string_view word) {
  field_condition out;
  std::string_view rest = word;
  const bool negated = !rest.empty() && rest.front() == '!';
  if (negated) rest.remove_prefix(1);
  std::string_view name;
  if (!detail::split_field(rest, out.field, name)) {
    detail::throw_config_error("condition " + detail::quote_value(word) +
                               " is not header:NAME, cookie:NAME or arg:NAME (with =VALUES, or ! before it)");
  }
  const std::size_t equals = name.find('=');
  out.name = std::string(name.substr(0, equals));
  if (out.name.empty()) detail::throw_config_error("condition " + detail::quote_value(word) + " has no name");
  if (equals == std::string_view::npos) {
    out.test = negated ? field_test::absent : field_test::present;
    return out;
  }
  if (negated) detail::throw_config_error("condition " + detail::quote_value(word) + ": ! tests absence, it takes no values");
  out.test = field_test::equals;
  for (const std::string_view value : detail::split_commas(name.substr(equals + 1))) {
    if (value.empty()) detail::throw_config_error("condition " + detail::quote_value(word) + " has an empty value");
    out.values.emplace_back(value);
  }
  return out;
}

/// "gray:10,beta:0.5" -> shares in percent. Up to four decimals (a 0.0001% step), so
/// a share is exact; whether routes exist and shares add up is checked by policy.
[[nodiscard]] inline std::vector<route_share> parse_split(std::string_view text) {
  std::vector<route_share> out;
  for (const std::string_view item : detail::split_commas(text)) {
    const std::size_t colon = item.rfind(':');
    const std::string_view route = item.substr(0, colon);
    const std::string_view number = colon == std::string_view::npos ? std::string_view() : item.substr(colon + 1);
    // Integer units of 0.0001% avoid binary rounding in the text itself.
    std::uint64_t units = 0;
    std::size_t digits = 0, decimals = 0;
    bool dot = false, ok = !route.empty() && !number.empty();
    for (char c : number) {
      if (c == '.' && !dot) {
        dot = true;
      } else if (detail::is_digit(c) && digits < 9 && decimals < 4) {
        units = units * 10 + static_cast<std::uint64_t>(c - '0');
        ++digits;
        if (dot) ++decimals;
      } else {
        ok = false;
      }
    }
    ok = ok && digits > 0;
    for (; decimals < 4; ++decimals) units *= 10;
    if (!ok) {
      detail::throw_config_error("split " + detail::quote_value(item) +
                                 " is not ROUTE:PERCENT (a number with at most four decimals)");
    }
    out.push_back({std::string(route), static_cast<double>(units) / 10000.0});
  }
  return out;
}

/// One rule from its name and its words (what follows the name in
/// `grayroute_rule NAME word...`); the spelling is in this file's banner.
template <class Words>
[[nodiscard]] rule_config parse_rule(std::string_view name, const Words& words) {
  rule_config r;
  r.name = std::string(name);
  const std::string what = "rule " + detail::quote_value(name);
  bool have_list = false, have_route = false, have_split = false, have_key = false, have_seed = false,
       have_fallback = false;
  std::string_view schedule, ramp;  // split=ROUTE:schedule's weight
  std::size_t scheduled = 0;        // 1 + the index of that share; 0: none
  auto once = [&](bool& seen, std::string_view word) {
    if (seen) detail::throw_config_error(what + ": " + detail::quote_value(word) + " repeats a word that may appear once");
    seen = true;
  };
  for (const auto& item : words) {
    const std::string_view word = detail::as_string_view(item);
    const std::size_t equals = word.find('=');
    const std::string_view key = word.substr(0, equals);
    const std::string_view value = equals == std::string_view::npos ? std::string_view() : word.substr(equals + 1);
    const bool assignment = equals != std::string_view::npos;
    if (assignment && value.empty() && key.find(':') == std::string_view::npos) {
      detail::throw_config_error(what + ": " + detail::quote_value(word) + " has no value");
    }
    if (assignment && key == "host") {
      for (const std::string_view host : detail::split_commas(value)) r.hosts.emplace_back(host);
    } else if (assignment && key == "path") {
      for (const std::string_view path : detail::split_commas(value)) r.paths.emplace_back(path);
    } else if (assignment && key == "client") {
      for (const std::string_view network : detail::split_commas(value)) {
        (void)require_network(network, what + ": client");
        r.clients.emplace_back(network);
      }
    } else if (assignment && key == "list") {
      once(have_list, word);
      r.list = std::string(value);
    } else if (assignment && key == "route") {
      once(have_route, word);
      r.route = std::string(value);
    } else if (assignment && key == "fallback") {
      once(have_fallback, word);
      r.fallback = std::string(value);
    } else if (assignment && key == "split") {
      once(have_split, word);
      for (const std::string_view share : detail::split_commas(value)) {
        constexpr std::string_view kScheduled = ":schedule";
        const bool timed = share.size() > kScheduled.size() && share.substr(share.size() - kScheduled.size()) == kScheduled;
        if (timed && scheduled) detail::throw_config_error(what + ": " + detail::quote_value(word) + ": one share may be \"schedule\"");
        if (timed) scheduled = r.split.size() + 1;
        r.split.push_back(timed ? route_share{std::string(share.substr(0, share.size() - kScheduled.size()))}
                                : parse_split(share).front());
      }
    } else if (assignment && (key == "schedule" || key == "ramp")) {
      std::string_view& seen = key == "schedule" ? schedule : ramp;
      if (!seen.empty()) detail::throw_config_error(what + ": " + detail::quote_value(word) + " repeats a word that may appear once");
      seen = value;
    } else if (assignment && key == "key") {
      once(have_key, word);
      r.key = parse_key_list(value);
    } else if (assignment && key == "seed") {
      once(have_seed, word);
      std::uint64_t seed = 0;
      for (char c : value) {
        if (!detail::is_digit(c) || seed > 0xffffffffull / 10) {
          detail::throw_config_error(what + ": " + detail::quote_value(word) + ": the seed is a number below 2^32");
        }
        seed = seed * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (seed > 0xffffffffull) detail::throw_config_error(what + ": " + detail::quote_value(word) + ": the seed is a number below 2^32");
      r.seed = static_cast<std::uint32_t>(seed);
    } else {
      field_kind kind;
      std::string_view field_name;
      const std::string_view bare = !word.empty() && word.front() == '!' ? word.substr(1) : word;
      if (!detail::split_field(bare, kind, field_name)) {
        detail::throw_config_error(what + ": unknown word " + detail::quote_value(word) +
                                   " (host= path= list= client= header: cookie: arg: route= split= key= seed= fallback= schedule= ramp=)");
      }
      r.fields.push_back(parse_condition(word));
    }
  }
  if (scheduled || !schedule.empty() || !ramp.empty()) {
    if (!scheduled || schedule.empty()) {
      detail::throw_config_error(what + ": a ramp needs both split=ROUTE:schedule and schedule=STEPS");
    }
    if (!ramp.empty() && ramp != "steps" && ramp != "linear") {
      detail::throw_config_error(what + ": ramp=" + std::string(ramp) + " is steps or linear");
    }
    r.split[scheduled - 1].schedule = parse_weight_schedule(schedule, ramp == "linear" ? ramp_shape::linear : ramp_shape::steps);
  }
  return r;
}

/// A whole rule line: its name, then its words, separated by spaces or tabs.
[[nodiscard]] inline rule_config parse_rule(std::string_view line) {
  std::vector<std::string_view> words;
  while (true) {
    line = detail::trim_ows(line);
    if (line.empty()) break;
    std::size_t end = 0;
    while (end < line.size() && !detail::is_ows(line[end])) ++end;
    words.push_back(line.substr(0, end));
    line.remove_prefix(end);
  }
  if (words.empty()) detail::throw_config_error("a rule needs a name");
  const std::string_view name = words.front();
  words.erase(words.begin());
  return parse_rule(name, words);
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_POLICY_SYNTAX_HPP
