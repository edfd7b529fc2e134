// A routing policy: N named routes, named gray lists, and ordered rules scoped by host
// and path, compiled once from a policy_config and asked per request.
//
//   grayroute::policy p(config);                          // throws config_error naming the value
//   grayroute::request_view request{peer, host, path};   // what the gateway knows besides headers
//   grayroute::decision d = p.decide(request, headers);   // never throws, never allocates
//   p.route_name(d.route); to_string(d.reason); d.rule;
//
// Order, first decision wins:
//   1. header / cookie - force_header, then force_cookie: "always" (-> force_route),
//      "never" (-> the first route) or a route name; other values are ignored.
//   2. the rules, in order. A rule applies when the request is in its scope (one of its
//      hosts, one of its path prefixes) and all its conditions hold; then its action
//      decides: a fixed route (reason `match`), what the list says (`list`), or a sticky
//      split (`percentage`). A split whose hash falls outside every share, a split with
//      none of its key sources present, and a list entry naming an unknown route do not
//      decide: the next rule is tried.
//   3. default - default_route.
// A decision names the rule that made it (d.rule), so a response header can say
// `gray; reason=percentage; rule=rollout`.
//
// Cost: one pass over the headers (each name is checked against the few names the
// policy reads, pre-filtered by length), then per rule a few compares; a list
// condition costs one store lookup and a split one hash. No regular expressions.
#ifndef GRAYROUTE_POLICY_HPP
#define GRAYROUTE_POLICY_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client_ip.hpp"
#include "config_error.hpp"
#include "cookie.hpp"
#include "decision.hpp"
#include "detail/ascii.hpp"
#include "headers.hpp"
#include "ip.hpp"
#include "layered_store.hpp"
#include "policy_config.hpp"
#include "policy_syntax.hpp"
#include "rollout.hpp"
#include "route_table.hpp"
#include "router.hpp"
#include "store.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// What a policy reads from a request besides its headers; nothing is copied.
struct request_view {
  request_view() = default;
  /// `request_view r{peer, host, path};` with the rest empty.
  request_view(const ip_address& from, std::string_view request_host = {}, std::string_view request_path = {},
               std::string_view request_query = {}, std::string_view given_key = {}) noexcept
      : peer(from), host(request_host), path(request_path), query(request_query), key(given_key) {}

  ip_address peer;         ///< the TCP peer
  std::string_view host;   ///< the request's host (port allowed); "": the Host header
  std::string_view path;   ///< the request target's path; a "?query" tail is split off
  std::string_view query;  ///< the query string without "?"; "": the tail of `path`, if any
  std::string_view key;    ///< a rollout key the gateway supplies (key source `given`)
};

class policy {
 public:
  /// At most this many distinct header names across force_header, conditions, keys and Host.
  static constexpr std::size_t kMaxHeaderNames = 16;
  /// Cookie lines read per request (HTTP/2 may split cookies over several lines).
  static constexpr std::size_t kMaxCookieLines = 8;

  /// Validates and compiles `config`; throws config_error naming the bad value.
  explicit policy(const policy_config& config)
      : routes_(config.routes), resolver_(config.client_ip), force_cookie_(config.force_cookie) {
    clock_ = config.clock_ms;
    interesting_ = resolver_.header_name_lengths();
    default_route_ = config.default_route.empty() ? kProduction : routes_.require(config.default_route, "default_route");
    force_route_ = config.force_route.empty() ? kGray : routes_.require(config.force_route, "force_route");
    if (!config.force_header.empty()) force_header_slot_ = header_slot(config.force_header, "force_header");
    if (!force_cookie_.empty()) {
      require_cookie_name(force_cookie_, "force_cookie");
      want_cookies_ = true;
    }
    for (const list_config& list : config.lists) {
      if (list.name.empty()) detail::throw_config_error("a list has no name");
      if (find_list(list.name)) detail::throw_config_error("list " + detail::quote_value(list.name) + " is defined twice");
      if (list.layers.empty()) detail::throw_config_error("list " + detail::quote_value(list.name) + " has no store");
      list_names_.push_back(list.name);
      lists_.emplace_back(list.layers);
    }
    rules_.reserve(config.rules.size());
    for (std::size_t i = 0; i < config.rules.size(); ++i) compile(config.rules[i], i);
    if (want_cookies_) {
      interesting_.add(std::string_view("Cookie").size());
      // A Cookie header that is also a condition's header keeps its slot.
      for (std::size_t i = 0; i < slot_names_.size(); ++i) {
        if (slot_names_[i] == "cookie") cookie_id_ = static_cast<std::uint8_t>(i);
      }
      if (cookie_id_ == detail::header_name_index::kNone) {
        cookie_id_ = kCookieLine;
        fields_index_.add("cookie", kCookieLine);
      }
    }
    for (const std::string& name : resolver_.header_names()) {
      for (const std::string& slot : slot_names_) slots_share_resolver_names_ |= detail::iequals_lowered(name, slot);
      slots_share_resolver_names_ |= detail::iequals_lowered(name, "cookie");
    }
  }

  /// Where the request goes, and why. Never throws, never allocates.
  template <class Headers>
  decision decide(const request_view& request, const Headers& headers) const noexcept {
    fields f;
    typename client_ip_resolver::scan scan(resolver_, request.peer);
    for (const auto& h : headers) {
      const std::string_view name = detail::header_name(h);
      if (!interesting_.may_match(name.size())) continue;
      const std::string_view value = detail::header_value(h);
      if (scan.feed(name, value) && !slots_share_resolver_names_) continue;
      if (!fields_index_.may_match(name.size())) continue;
      const std::uint8_t id = fields_index_.find(name);
      if (id == cookie_id_ && f.cookie_lines < kMaxCookieLines) f.add_cookie_line(value);
      if (id < kCookieLine && !f.has(id)) f.set(id, value);
    }
    decision d;
    d.client = scan.finish();
    if (force_header_slot_ >= 0 && f.has(force_header_slot_)) {
      if (const auto forced = forced_route(f.at(force_header_slot_))) {
        return decided(d, *forced, route_reason::header);
      }
    }
    if (!force_cookie_.empty()) {
      if (const auto value = f.cookie_value(force_cookie_)) {
        if (const auto forced = forced_route(*value)) return decided(d, *forced, route_reason::cookie);
      }
    }
    const std::string_view host = host_slot_ < 0 ? std::string_view()
                                  : !request.host.empty() ? normal_host(request.host)
                                  : f.has(host_slot_) ? normal_host(f.at(host_slot_))
                                                      : std::string_view();
    std::string_view path = request.path, query = request.query;
    if (const std::size_t q = path.find('?'); q != std::string_view::npos) {
      if (query.empty()) query = path.substr(q + 1);
      path = path.substr(0, q);
    }
    for (const rule& r : rules_) {
      if (!r.in_scope(host, path)) continue;
      std::optional<route_id> listed;
      if (r.list >= 0) {
        listed = lists_[static_cast<std::size_t>(r.list)].lookup(d.client.address);
        if (!listed) continue;
      }
      if (!r.clients.empty() && !r.client_inside(d.client.address)) continue;
      if (!conditions_hold(r, f, query)) continue;
      switch (r.action) {
        case action_kind::route:
          return decided(d, r.route, route_reason::match, r.name, r.fallback);
        case action_kind::list:
          if (*listed >= routes_.size()) continue;
          return decided(d, *listed, route_reason::list, r.name, r.fallback);
        case action_kind::split:
          if (const auto route = split(r, f, request, query, d.client.address)) {
            return decided(d, *route, route_reason::percentage, r.name, r.fallback);
          }
          continue;
      }
    }
    d.route = default_route_;
    d.reason = route_reason::default_route;
    return d;
  }

  /// Whether the request carries a key of any split rule's key list other than `ip`: a
  /// header, cookie or argument it names, or (key source `given`) a non-empty
  /// request.key. A gateway pinning anonymous users gives a request without one a random
  /// id as request.key and sets it as the pin cookie (add_pin_key, random_id.hpp,
  /// set_cookie.hpp). Never throws, never allocates.
  template <class Headers>
  bool has_rollout_key(const request_view& request, const Headers& headers) const noexcept {
    fields f;
    for (const auto& h : headers) {
      const std::string_view name = detail::header_name(h);
      if (!fields_index_.may_match(name.size())) continue;
      const std::uint8_t id = fields_index_.find(name);
      if (id == cookie_id_ && f.cookie_lines < kMaxCookieLines) f.add_cookie_line(detail::header_value(h));
      if (id < kCookieLine && !f.has(id)) f.set(id, detail::header_value(h));
    }
    std::string_view query = request.query;
    if (const std::size_t q = request.path.find('?'); q != std::string_view::npos && query.empty()) {
      query = request.path.substr(q + 1);
    }
    for (const rule& r : rules_) {
      if (r.action != action_kind::split) continue;
      for (const key_compiled& k : r.key) {
        if (k.source == key_source::kind::ip) break;  // nothing after it is read
        const std::optional<std::string_view> value = key_value(k, f, request, query);
        if (value && !value->empty()) return true;
      }
    }
    return false;
  }

  /// decide() for a request known only by its peer and headers (no host, path or query).
  template <class Headers>
  decision decide(const ip_address& peer, const Headers& headers) const noexcept {
    request_view request;
    request.peer = peer;
    return decide(request, headers);
  }

  /// The configured name of `route`; "" when out of range.
  std::string_view route_name(route_id route) const noexcept { return routes_.name(route); }
  std::optional<route_id> find_route(std::string_view name) const noexcept { return routes_.find(name); }
  const route_table& routes() const noexcept { return routes_; }
  route_id default_route() const noexcept { return default_route_; }
  const client_ip_resolver& resolver() const noexcept { return resolver_; }

  /// A split share whose weight is a schedule, for status output: the rule, the route,
  /// and the schedule (its status(clock_now_ms()) is the weight now and the next step).
  struct scheduled_share_view {
    std::string_view rule;
    route_id route;
    const weight_schedule* schedule;
  };
  std::vector<scheduled_share_view> scheduled_shares() const {
    std::vector<scheduled_share_view> out;
    for (const rule& r : rules_) {
      for (std::size_t i = 0; i < r.timed.size(); ++i) {
        const int at = r.timed[i].schedule;
        if (at >= 0) out.push_back({r.name, r.shares[i].route, &schedules_[static_cast<std::size_t>(at)]});
      }
    }
    return out;
  }
  /// The clock scheduled shares are read from (policy_config::clock_ms), Unix milliseconds.
  std::int64_t clock_now_ms() const noexcept { return now_ms(); }

  /// The named list, to look an address up the way the rules do (status pages, tests).
  const layered_store* find_list(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < list_names_.size(); ++i) {
      if (list_names_[i] == name) return &lists_[i];
    }
    return nullptr;
  }

  /// Rule names in order.
  std::vector<std::string_view> rule_names() const {
    std::vector<std::string_view> out;
    for (const rule& r : rules_) out.push_back(r.name);
    return out;
  }

 private:
  enum class action_kind : std::uint8_t { route, list, split };

  static decision decided(decision& d, route_id route, route_reason reason, std::string_view rule = {},
                          std::optional<route_id> fallback = std::nullopt) noexcept {
    d.route = route;
    d.reason = reason;
    d.rule = rule;
    d.fallback_route = fallback;
    return d;
  }

  struct field_test_compiled {
    field_kind field;
    field_test test;
    int slot;            // header: index into the scanned header values
    std::string name;    // cookie name, or arg name lowered
    std::vector<std::string> values;
  };

  struct key_compiled {
    key_source::kind source;
    int slot;
    std::string name;
  };

  struct share {
    std::uint32_t below;  // cumulative upper bound in fine buckets
    route_id route;
  };

  // A share of a split that has a schedule: its own weight, or its schedule's index.
  struct timed_share {
    std::uint32_t width;
    int schedule;  // index into schedules_; -1: `width` is fixed
  };

  struct rule {
    std::string name;
    std::vector<std::string> exact_hosts;  // lowered, no trailing dot
    std::vector<std::string> host_suffixes;  // "*.example.com" -> ".example.com", lowered
    std::vector<std::string> paths;
    int list = -1;
    std::vector<ip_network> clients;
    std::vector<field_test_compiled> fields;
    action_kind action = action_kind::route;
    route_id route = kProduction;
    std::vector<share> shares;
    std::vector<key_compiled> key;
    std::uint32_t seed = 0;
    std::vector<timed_share> timed;  // by share, when one has a schedule; else empty
    std::optional<route_id> fallback;  // rule_config::fallback; nullopt: the adapter's

    bool has_hosts() const noexcept { return !exact_hosts.empty() || !host_suffixes.empty(); }

    bool in_scope(std::string_view host, std::string_view path) const noexcept {
      if (has_hosts() && !host_matches(host)) return false;
      if (paths.empty()) return true;
      for (const std::string& prefix : paths) {
        if (path.substr(0, prefix.size()) == prefix) return true;
      }
      return false;
    }

    bool host_matches(std::string_view host) const noexcept {
      for (const std::string& exact : exact_hosts) {
        if (detail::iequals_lowered(host, exact)) return true;
      }
      for (const std::string& suffix : host_suffixes) {
        if (host.size() > suffix.size() && detail::iequals_lowered(host.substr(host.size() - suffix.size()), suffix)) {
          return true;
        }
      }
      return false;
    }

    bool client_inside(const ip_address& client) const noexcept {
      for (const ip_network& n : clients) {
        if (n.contains(client)) return true;
      }
      return false;
    }
  };

  // The request headers the policy reads, found in one pass. The arrays are left
  // uninitialised (a slot is read only once its `present` bit is set): zeroing ~400
  // bytes per request was a measurable share of a decision.
  struct fields {
    std::uint32_t present = 0;
    std::size_t cookie_lines = 0;
    const char* header_data[kMaxHeaderNames];
    std::size_t header_size[kMaxHeaderNames];
    const char* cookie_data[kMaxCookieLines];
    std::size_t cookie_size[kMaxCookieLines];

    bool has(int slot) const noexcept { return (present >> slot & 1u) != 0; }
    std::string_view at(int slot) const noexcept {
      const auto i = static_cast<std::size_t>(slot);
      return {header_data[i], header_size[i]};
    }
    void set(std::size_t i, std::string_view value) noexcept {
      present |= std::uint32_t{1} << i;
      header_data[i] = value.data();
      header_size[i] = value.size();
    }
    void add_cookie_line(std::string_view value) noexcept {
      cookie_data[cookie_lines] = value.data();
      cookie_size[cookie_lines++] = value.size();
    }

    std::optional<std::string_view> cookie_value(std::string_view name) const noexcept {
      for (std::size_t i = 0; i < cookie_lines; ++i) {
        if (auto v = find_cookie({cookie_data[i], cookie_size[i]}, name)) return v;
      }
      return std::nullopt;
    }
  };

  // The value of query argument `lowered_name` (nginx's $arg_: names case-insensitive,
  // values as sent); an argument without "=" is present and empty.
  static std::optional<std::string_view> find_arg(std::string_view query, std::string_view lowered_name) noexcept {
    while (!query.empty()) {
      const std::size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      const std::size_t eq = pair.find('=');
      if (detail::iequals_lowered(pair.substr(0, eq), lowered_name)) {
        return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
    return std::nullopt;
  }

  // "api.example.com:8080" -> "api.example.com"; "[::1]:80" -> "[::1]"; one trailing dot dropped.
  static std::string_view normal_host(std::string_view host) noexcept {
    host = detail::trim_ows(host);
    if (!host.empty() && host.front() == '[') {
      const std::size_t close = host.find(']');
      if (close != std::string_view::npos) host = host.substr(0, close + 1);
    } else if (const std::size_t colon = host.find(':'); colon != std::string_view::npos) {
      host = host.substr(0, colon);
    }
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    return host;
  }

  static bool conditions_hold(const rule& r, const fields& f, std::string_view query) noexcept {
    for (const field_test_compiled& c : r.fields) {
      std::optional<std::string_view> value;
      switch (c.field) {
        case field_kind::header:
          if (f.has(c.slot)) value = detail::trim_ows(f.at(c.slot));
          break;
        case field_kind::cookie: value = f.cookie_value(c.name); break;
        case field_kind::arg: value = find_arg(query, c.name); break;
      }
      switch (c.test) {
        case field_test::present:
          if (!value) return false;
          break;
        case field_test::absent:
          if (value) return false;
          break;
        case field_test::equals: {
          if (!value) return false;
          bool any = false;
          for (const std::string& v : c.values) any = any || *value == v;
          if (!any) return false;
          break;
        }
      }
    }
    return true;
  }

  // A key source's value in the request; nullopt for `ip` (the caller's) and an absent field.
  static std::optional<std::string_view> key_value(const key_compiled& k, const fields& f, const request_view& request,
                                                   std::string_view query) noexcept {
    switch (k.source) {
      case key_source::kind::given: return request.key;
      case key_source::kind::header:
        if (f.has(k.slot)) return detail::trim_ows(f.at(k.slot));
        return std::nullopt;
      case key_source::kind::cookie: return f.cookie_value(k.name);
      case key_source::kind::arg: return find_arg(query, k.name);
      case key_source::kind::ip: return std::nullopt;
    }
    return std::nullopt;
  }

  std::optional<route_id> split(const rule& r, const fields& f, const request_view& request, std::string_view query,
                                const ip_address& client) const noexcept {
    std::uint32_t bucket = percentage_rollout::kFineBuckets;
    for (const key_compiled& k : r.key) {
      if (k.source == key_source::kind::ip) {
        bucket = percentage_rollout::fine_bucket(client, r.seed);
        break;
      }
      const std::optional<std::string_view> value = key_value(k, f, request, query);
      if (value && !value->empty()) {
        bucket = percentage_rollout::fine_bucket(*value, r.seed);
        break;
      }
    }
    if (!r.timed.empty()) return scheduled_share(r, bucket);
    for (const share& s : r.shares) {
      if (bucket < s.below) return s.route;
    }
    return std::nullopt;
  }

  // A split with a scheduled share: its bounds are laid out again from this moment's weights.
  std::optional<route_id> scheduled_share(const rule& r, std::uint32_t bucket) const noexcept {
    const std::int64_t now = now_ms();
    std::uint32_t below = 0;
    for (std::size_t i = 0; i < r.shares.size(); ++i) {
      const timed_share& t = r.timed[i];
      below += t.schedule < 0 ? t.width : schedules_[static_cast<std::size_t>(t.schedule)].ppm_at(now);
      if (bucket < below) return r.shares[i].route;
    }
    return std::nullopt;
  }

  std::optional<route_id> forced_route(std::string_view value) const noexcept {
    value = detail::trim_ows(value);
    if (value == "always") return force_route_;
    if (value == "never") return kProduction;
    return routes_.find(value);
  }

  static void require_cookie_name(const std::string& name, const std::string& what) {
    if (name.empty()) detail::throw_config_error(what + ": empty cookie name");
    for (char c : name) {
      if (!detail::is_tchar(c)) detail::throw_config_error(what + ": cookie name " + detail::quote_value(name) + " is not a token");
    }
  }

  // The slot of header `name` in the per-request scan, adding it if new.
  int header_slot(const std::string& name, const std::string& what) {
    if (name.empty()) detail::throw_config_error(what + ": empty header name");
    for (char c : name) {
      if (!detail::is_tchar(c)) detail::throw_config_error(what + ": header name " + detail::quote_value(name) + " is not a token");
    }
    std::string lowered;
    detail::lowered_copy(name, lowered);
    for (std::size_t i = 0; i < slot_names_.size(); ++i) {
      if (slot_names_[i] == lowered) return static_cast<int>(i);
    }
    if (slot_names_.size() == kMaxHeaderNames) {
      detail::throw_config_error(what + ": header " + detail::quote_value(name) + " is one too many (at most " +
                                 std::to_string(kMaxHeaderNames) + " distinct header names)");
    }
    fields_index_.add(lowered, static_cast<std::uint8_t>(slot_names_.size()));
    slot_names_.push_back(lowered);
    interesting_.add(lowered.size());
    return static_cast<int>(slot_names_.size() - 1);
  }

  void compile(const rule_config& in, std::size_t index) {
    if (in.name.empty()) detail::throw_config_error("rule " + std::to_string(index + 1) + " has no name");
    for (const rule& seen : rules_) {
      if (seen.name == in.name) detail::throw_config_error("rule " + detail::quote_value(in.name) + " is defined twice");
    }
    const std::string what = "rule " + detail::quote_value(in.name);
    rule r;
    r.name = in.name;
    if (!in.hosts.empty() && host_slot_ < 0) host_slot_ = header_slot("Host", "Host");
    for (const std::string& host : in.hosts) {
      const std::string normal = normal_host_pattern(host, what);
      (normal.front() == '.' ? r.host_suffixes : r.exact_hosts).push_back(normal);
    }
    for (const std::string& path : in.paths) {
      if (path.empty() || path.front() != '/' || path.find('?') != std::string::npos) {
        detail::throw_config_error(what + ": path " + detail::quote_value(path) + " is not a path prefix (starts with /, no ?)");
      }
      r.paths.push_back(path);
    }
    if (!in.list.empty()) {
      for (std::size_t i = 0; i < list_names_.size(); ++i) {
        if (list_names_[i] == in.list) r.list = static_cast<int>(i);
      }
      if (r.list < 0) detail::throw_config_error(what + ": unknown list " + detail::quote_value(in.list));
    }
    for (const std::string& text : in.clients) r.clients.push_back(require_network(text, what + ": client"));
    for (const field_condition& c : in.fields) {
      field_test_compiled out{c.field, c.test, -1, {}, c.values};
      const std::string field_what = what + ": " + std::string(to_string(c.field));
      switch (c.field) {
        case field_kind::header: out.slot = header_slot(c.name, field_what); break;
        case field_kind::cookie:
          require_cookie_name(c.name, field_what);
          out.name = c.name;
          want_cookies_ = true;
          break;
        case field_kind::arg:
          require_arg_name(c.name, field_what);
          detail::lowered_copy(c.name, out.name);
          break;
      }
      if (c.test == field_test::equals && c.values.empty()) {
        detail::throw_config_error(field_what + ":" + c.name + ": no value to compare with");
      }
      if (c.test != field_test::equals && !c.values.empty()) {
        detail::throw_config_error(field_what + ":" + c.name + ": values given to a presence test");
      }
      r.fields.push_back(std::move(out));
    }
    if (!in.route.empty() && !in.split.empty()) {
      detail::throw_config_error(what + ": route and split together (a rule has one action)");
    }
    if (!in.route.empty()) {
      r.action = action_kind::route;
      r.route = routes_.require(in.route, what + ": route");
    } else if (!in.split.empty()) {
      r.action = action_kind::split;
      compile_split(in, r, what);
    } else if (r.list >= 0) {
      r.action = action_kind::list;
    } else {
      detail::throw_config_error(what + ": no action (a route, a split, or a list to follow)");
    }
    if (r.action != action_kind::split && (!in.key.empty() || in.seed != 0)) {
      detail::throw_config_error(what + ": a key or seed without a split");
    }
    if (!in.fallback.empty()) {
      r.fallback = routes_.require(in.fallback, what + ": fallback");
      if (r.action == action_kind::route && *r.fallback == r.route) {
        detail::throw_config_error(what + ": fallback " + detail::quote_value(in.fallback) +
                                   " is the rule's own route (it would fall back to itself)");
      }
    }
    rules_.push_back(std::move(r));
  }

  void compile_split(const rule_config& in, rule& r, const std::string& what) {
    std::uint32_t total = 0;
    std::vector<timed_share> timed;
    for (const route_share& s : in.split) {
      const route_id route = routes_.require(s.route, what + ": split");
      for (const share& seen : r.shares) {
        if (seen.route == route) detail::throw_config_error(what + ": split names route " + detail::quote_value(s.route) + " twice");
      }
      if (s.schedule) {
        if (s.percent != 0.0) {
          detail::throw_config_error(what + ": split " + detail::quote_value(s.route) + ": a percent and a schedule (give one)");
        }
        // Checked at its highest weight, the last step's, so the shares never overlap.
        total += s.schedule->steps().back().ppm;
        if (total > percentage_rollout::kFineBuckets) {
          detail::throw_config_error(what + ": split shares add up to more than 100% (a schedule counts at its last step)");
        }
        r.shares.push_back({total, route});
        timed.push_back({0, static_cast<int>(schedules_.size())});
        schedules_.push_back(*s.schedule);
        continue;
      }
      // Units of 0.0001%, rounded half up by hand: the share is positive here, and
      // <cmath> is not worth its compile time to every includer (as in rollout.hpp).
      const bool in_range = s.percent > 0.0 && s.percent <= 100.0;
      const double units = s.percent * 10000.0;
      const std::uint32_t whole = in_range ? static_cast<std::uint32_t>(units + 0.5) : 0;
      const double off = units - static_cast<double>(whole);
      if (!in_range || off > 1e-6 || off < -1e-6) {
        detail::throw_config_error(what + ": split " + detail::quote_value(s.route + ":" + format_percent(s.percent)) +
                                   ": a share is a percentage in (0, 100] in steps of 0.0001");
      }
      total += whole;
      if (total > percentage_rollout::kFineBuckets) {
        detail::throw_config_error(what + ": split shares add up to more than 100%");
      }
      r.shares.push_back({total, route});
      timed.push_back({whole, -1});
    }
    for (const timed_share& t : timed) {
      if (t.schedule >= 0) {  // a fixed split keeps no table: its decide path stays one compare
        r.timed = std::move(timed);
        break;
      }
    }
    r.seed = in.seed;
    const std::vector<key_source> key = in.key.empty() ? std::vector<key_source>{{key_source::kind::ip, {}}} : in.key;
    for (const key_source& k : key) {
      key_compiled out{k.source, -1, {}};
      const std::string key_what = what + ": key";
      switch (k.source) {
        case key_source::kind::header: out.slot = header_slot(k.name, key_what); break;
        case key_source::kind::cookie:
          require_cookie_name(k.name, key_what);
          out.name = k.name;
          want_cookies_ = true;
          break;
        case key_source::kind::arg:
          require_arg_name(k.name, key_what);
          detail::lowered_copy(k.name, out.name);
          break;
        case key_source::kind::given:
        case key_source::kind::ip: break;
      }
      r.key.push_back(std::move(out));
    }
  }

  static std::string format_percent(double percent) {
    std::string text = std::to_string(percent);
    while (text.size() > 1 && text.back() == '0') text.pop_back();
    if (!text.empty() && text.back() == '.') text.pop_back();
    return text;
  }

  static void require_arg_name(const std::string& name, const std::string& what) {
    if (name.empty()) detail::throw_config_error(what + ": empty argument name");
    for (char c : name) {
      if (c == '&' || c == '=' || c == '#' || static_cast<unsigned char>(c) <= 0x20) {
        detail::throw_config_error(what + ": argument name " + detail::quote_value(name) + " is not a query name");
      }
    }
  }

  // "API.Example.com." -> "api.example.com"; "*.example.com" -> ".example.com".
  static std::string normal_host_pattern(const std::string& text, const std::string& what) {
    std::string_view host = text;
    const bool wildcard = host.substr(0, 2) == "*.";
    if (wildcard) host.remove_prefix(1);
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    bool ok = host.size() > (wildcard ? 1u : 0u) && (wildcard || host.front() != '.');
    for (char c : host) {
      const bool name_char = detail::is_tchar(c) || c == '[' || c == ']' || c == ':';
      if (!name_char || c == '*' || (c == ':' && host.front() != '[')) ok = false;
    }
    if (!ok) {
      detail::throw_config_error(what + ": host " + detail::quote_value(text) +
                                 " is not a host name or *.wildcard (no port, no path)");
    }
    std::string lowered;
    detail::lowered_copy(host, lowered);
    return lowered;
  }

  std::int64_t now_ms() const noexcept { return clock_ ? clock_() : unix_ms(std::chrono::system_clock::now()); }

  route_table routes_;
  client_ip_resolver resolver_;
  std::string force_cookie_;
  route_id default_route_ = kProduction, force_route_ = kGray;
  int force_header_slot_ = -1, host_slot_ = -1;
  bool want_cookies_ = false;
  bool slots_share_resolver_names_ = false;  // a client-IP header is also read by a rule
  std::vector<std::string> slot_names_;  // lowered header names the policy reads
  // Those names -> their slot, and "cookie" -> kCookieLine when cookies are read.
  detail::header_name_index fields_index_;
  static constexpr std::uint8_t kCookieLine = kMaxHeaderNames;
  std::uint8_t cookie_id_ = detail::header_name_index::kNone;  // the id that carries Cookie lines
  detail::name_lengths interesting_;     // ... plus the resolver's and Cookie
  std::vector<std::string> list_names_;
  std::vector<layered_store> lists_;
  std::vector<rule> rules_;
  std::int64_t (*clock_)() noexcept = nullptr;  // policy_config::clock_ms
  std::vector<weight_schedule> schedules_;      // scheduled shares' weights (timed_share::schedule)
};

/// The policy a router_config describes, deciding as router<Store> does: forced header,
/// forced cookie, then rule "list" (what `list` says), then rule "percentage" (a split
/// of `percent` to percent_route keyed by the given key, percent_key_header,
/// percent_key_cookie, then the client address), then the default.
inline policy_config to_policy_config(const router_config& shorthand, store_ref list) {
  policy_config c;
  c.routes = shorthand.routes;
  c.default_route = shorthand.default_route;
  c.client_ip = shorthand.client_ip;
  c.force_header = shorthand.force_header;
  c.force_cookie = shorthand.force_cookie;
  c.force_route = shorthand.force_route;
  c.lists.push_back({"list", {std::move(list)}});
  rule_config listed;
  listed.name = "list";
  listed.list = "list";
  c.rules.push_back(std::move(listed));
  // router_config's step is 0.01%: round as percentage_rollout does (and reject as it does).
  const percentage_rollout coarse(shorthand.percent, shorthand.percent_seed);
  if (coarse.basis_points() != 0) {
    rule_config rollout;
    rollout.name = "percentage";
    const std::string route = shorthand.percent_route.empty() && c.routes.size() > 1 ? c.routes[1] : shorthand.percent_route;
    rollout.split.push_back({route, coarse.basis_points() / 100.0});
    rollout.key.push_back({key_source::kind::given, {}});
    if (!shorthand.percent_key_header.empty()) rollout.key.push_back({key_source::kind::header, shorthand.percent_key_header});
    if (!shorthand.percent_key_cookie.empty()) rollout.key.push_back({key_source::kind::cookie, shorthand.percent_key_cookie});
    rollout.key.push_back({key_source::kind::ip, {}});
    rollout.seed = shorthand.percent_seed;
    c.rules.push_back(std::move(rollout));
  }
  return c;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_POLICY_HPP
