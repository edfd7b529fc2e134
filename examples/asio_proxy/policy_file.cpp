// The TOML policy file and the flags, both into a proxy_policy; see policy_file.hpp and
// README.md ("The policy file") for every key.
//
// The reader checks only the TOML shape (which keys, which types) and translates; the
// meaning (routes exist, shares add up, names are tokens...) is checked by
// grayroute::policy, whose config_error is placed afterwards on the node it came from.
#include "policy_file.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include <toml++/toml.h>

#include <grayroute/config_error.hpp>
#include <grayroute/health_syntax.hpp>
#include <grayroute/memory_store.hpp>
#include <grayroute/policy.hpp>
#include <grayroute/policy_syntax.hpp>
#include <grayroute/weight_schedule.hpp>

#include "decision_tier.hpp"
#include "proxy_protocol_accept.hpp"

namespace grayroute_proxy {

namespace {

std::string place_of(const toml::source_region& region, const std::string& fallback) {
  const std::string path = region.path ? *region.path : fallback;
  return path + ":" + std::to_string(region.begin.line) + ":" + std::to_string(region.begin.column);
}

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// A table's entries in the order the file wrote them (toml++ keeps tables sorted by key):
// route order makes the first route production, and split order lays out the shares.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (const auto& [key, node] : table) out.emplace_back(&key, &node);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto& x = a.first->source().begin;
    const auto& y = b.first->source().begin;
    return x.line != y.line ? x.line < y.line : x.column < y.column;
  });
  return out;
}

// The node under `node` (keys included) whose text the message quotes last: a library
// error names its context first (`rule "beta-api": `) and the bad value last, so this is
// usually the exact spot. A split share is quoted as "route:percent".
struct quoted_node {
  std::size_t at = 0;
  const toml::source_region* region = nullptr;

  void consider(const std::string& message, const std::string& needle, const toml::source_region& where) {
    const std::size_t found = message.rfind(needle);
    if (found != std::string::npos && (!region || found >= at)) {
      at = found;
      region = &where;
    }
  }
};

void find_quoted(const std::string& message, const toml::node& node, quoted_node& best) {
  if (const auto* text = node.as_string()) best.consider(message, quoted(text->get()), node.source());
  if (const auto* array = node.as_array()) {
    for (const toml::node& item : *array) find_quoted(message, item, best);
  }
  if (const auto* table = node.as_table()) {
    for (const auto& [key, value] : in_file_order(*table)) {
      best.consider(message, quoted(key->str()), key->source());
      best.consider(message, "\"" + std::string(key->str()) + ":", key->source());
      // "rule \"r\": split shares add up to more than 100%": the part the message names.
      for (const char* after : {" ", ":"}) best.consider(message, ": " + std::string(key->str()) + after, key->source());
      find_quoted(message, *value, best);
    }
  }
}

class reader {
 public:
  explicit reader(std::string path) : path_(std::move(path)) {
    const std::size_t slash = path_.rfind('/');
    directory_ = slash == std::string::npos ? "" : path_.substr(0, slash + 1);
  }

  proxy_policy read(const std::string* source_text) {
    auto root = std::make_shared<toml::table>();
    try {
      *root = source_text ? toml::parse(*source_text, path_) : toml::parse_file(path_);
    } catch (const toml::parse_error& e) {
      throw policy_error(place_of(e.source(), path_) + ": " + std::string(e.description()));
    }
    out_.source = path_;
    out_.config.routes.clear();
    const toml::node* routes = nullptr;
    for (const auto& [key, node] : in_file_order(*root)) {
      const std::string_view name = key->str();
      if (name == "listen") {
        out_.listen = text(*node, "listen");
        out_.listen_where = place_of(node->source(), path_) + ": listen";
      } else if (name == "default" || name == "force_header" || name == "force_cookie" || name == "force_route") {
        top_level(name, *node);
      } else if (name == "health" || name == "fallback") {
        health_key(name, *node);
      } else if (name == "probes") {
        const auto* probes = node->as_array();
        if (!probes || !probes->is_array_of_tables()) fail(*node, "probes is an array of tables: write [[probes]]");
        for (const toml::node& probe : *probes) read_probe(*probe.as_table());
      } else if (name == "client_ip") {
        client_ip(table(*node, "[client_ip]"));
      } else if (name == "routes") {
        routes = node;
        read_routes(table(*node, "[routes]"));
      } else if (name == "lists") {
        read_lists(table(*node, "[lists]"));
      } else if (name == "decision") {
        read_decision(table(*node, "[decision]"));
      } else if (name == "pin_cookie") {
        read_pin_cookie(*node);
      } else if (name == "listener") {
        read_listener(table(*node, "[listener]"));
      } else if (name == "rules") {
        const auto* rules = node->as_array();
        if (!rules || !rules->is_array_of_tables()) fail(*node, "rules is an array of tables: write [[rules]]");
        for (const toml::node& rule : *rules) read_rule(*rule.as_table());
      } else {
        fail(key->source(), "unknown key " + quoted(name) +
                                " (listen, default, force_header, force_cookie, force_route, health, fallback, pin_cookie, "
                                "[client_ip], [routes], [lists], [decision], [listener], [[rules]], [health], [[probes]])");
      }
    }
    if (!routes) throw policy_error(path_ + ": no [routes] table (at least two routes, each with its servers)");
    // Key files, header, ttl and the pin cookie's words are checked as decision_tier reads them.
    if (consistency_node_) {
      try {
        const decision_tier probe(out_.consistency);
      } catch (const std::exception& e) {
        fail(*consistency_node_, without_library_prefix(e.what()));
      }
    }
    // The nodes point into the parsed document: the closure keeps it alive.
    out_.place = [root, path = path_, nodes = nodes_](const std::string& message, const grayroute::policy_config& built) {
      return place(path, nodes, message, built);
    };
    return std::move(out_);
  }

 private:
  // Where the parts that policy validates came from, by part.
  struct node_map {
    const toml::node* routes = nullptr;
    const toml::node* client_ip = nullptr;
    const toml::node* lists = nullptr;
    const toml::node* default_route = nullptr;
    const toml::node* force_header = nullptr;
    const toml::node* force_cookie = nullptr;
    const toml::node* force_route = nullptr;
    std::vector<const toml::node*> rules;
  };

  [[noreturn]] void fail(const toml::source_region& region, const std::string& message) const {
    throw policy_error(place_of(region, path_) + ": " + message);
  }
  [[noreturn]] void fail(const toml::node& node, const std::string& message) const { fail(node.source(), message); }

  std::string text(const toml::node& node, const std::string& what) const {
    const auto* value = node.as_string();
    if (!value) fail(node, what + " is a string");
    return value->get();
  }

  // A string, or an array of strings.
  std::vector<std::string> texts(const toml::node& node, const std::string& what) const {
    if (node.is_string()) return {text(node, what)};
    const auto* array = node.as_array();
    if (!array) fail(node, what + " is a string or an array of strings");
    std::vector<std::string> out;
    for (const toml::node& item : *array) out.push_back(text(item, what + " item"));
    return out;
  }

  const toml::table& table(const toml::node& node, const std::string& what) const {
    const auto* t = node.as_table();
    if (!t) fail(node, what + " is a table");
    return *t;
  }

  // `default` and force_* after the last [[rules]] belong to that rule by TOML's grammar
  // (the example writes `default` there): they are taken as the policy's own.
  void top_level(std::string_view name, const toml::node& node) {
    const toml::node** seen = name == "default"        ? &nodes_.default_route
                              : name == "force_header" ? &nodes_.force_header
                              : name == "force_cookie" ? &nodes_.force_cookie
                                                       : &nodes_.force_route;
    if (*seen) fail(node, std::string(name) + " is already given at " + place_of((*seen)->source(), path_));
    *seen = &node;
    const std::string value = text(node, std::string(name));
    grayroute::policy_config& c = out_.config;
    (name == "default" ? c.default_route : name == "force_header" ? c.force_header
                                         : name == "force_cookie" ? c.force_cookie
                                                                  : c.force_route) = value;
  }

  // Issue 13. [decision] key_files = [...], header = "...", ttl = "60s", policy_version = N
  void read_decision(const toml::table& t) {
    consistency_node_ = &t;
    consistency_options& c = out_.consistency;
    for (const auto& [key, node] : in_file_order(t)) {
      const std::string_view name = key->str();
      if (name == "key_files") {
        c.decision_key_files = texts(*node, "key_files");
        for (std::string& file : c.decision_key_files) {
          if (!file.empty() && file.front() != '/') file = directory_ + file;
        }
      } else if (name == "header") {
        c.decision_header = text(*node, "header");
      } else if (name == "ttl") {
        c.decision_ttl = seconds(*node, "ttl");
      } else if (name == "policy_version") {
        const auto* version = node->as_integer();
        if (!version || version->get() < 0) fail(*node, "policy_version is an integer, 0 or more");
        c.policy_version = static_cast<std::uint64_t>(version->get());
      } else {
        fail(key->source(), "unknown key " + quoted(name) + " in [decision] (key_files, header, ttl, policy_version)");
      }
    }
  }

  // 60, "60s", "5m", "1h".
  std::int64_t seconds(const toml::node& node, const std::string& what) const {
    if (const auto* n = node.as_integer()) return n->get();
    const std::string value = text(node, what + " (seconds, or \"60s\", \"5m\", \"1h\")");
    std::size_t used = 0;
    long long number = -1;
    try {
      number = std::stoll(value, &used);
    } catch (const std::logic_error&) {
    }
    const std::string unit = number < 0 ? "" : value.substr(used);
    const long long scale = unit == "s" || unit.empty() ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
    if (number < 0 || scale == 0) fail(node, what + " " + quoted(value) + ": seconds, or a number with s, m or h");
    return number * scale;
  }

  // pin_cookie = "name=gr_uid max_age=86400 ..." or { name = "gr_uid", max_age = 86400, secure = true, ... }
  void read_pin_cookie(const toml::node& node) {
    consistency_node_ = &node;
    if (node.is_string()) {
      out_.consistency.pin_cookie = text(node, "pin_cookie");
      return;
    }
    std::string words;
    for (const auto& [key, value] : in_file_order(table(node, "pin_cookie (a string of words or a table)"))) {
      const std::string_view name = key->str();
      std::string word(name);
      if (name == "name" || name == "domain" || name == "path" || name == "samesite") {
        word += "=" + text(*value, "pin_cookie." + std::string(name));
      } else if (name == "max_age") {
        word += "=" + std::to_string(seconds(*value, "pin_cookie.max_age"));
      } else if (name == "secure" || name == "httponly") {
        const auto* flag = value->as_boolean();
        if (!flag) fail(*value, "pin_cookie." + std::string(name) + " is true or false");
        word += flag->get() ? "=on" : "=off";
      } else {
        fail(key->source(), "unknown key " + quoted(name) +
                                " in pin_cookie (name, max_age, domain, path, secure, httponly, samesite)");
      }
      if (word.find_first_of(" \t") != std::string::npos) fail(*value, "pin_cookie." + std::string(name) + ": no spaces");
      words += (words.empty() ? "" : " ") + word;
    }
    out_.consistency.pin_cookie = words;
  }

  // [listener] proxy_protocol_from = ["10.0.0.0/8", ...]
  void read_listener(const toml::table& t) {
    for (const auto& [key, node] : in_file_order(t)) {
      if (key->str() != "proxy_protocol_from") fail(key->source(), "unknown key " + quoted(key->str()) + " in [listener] (proxy_protocol_from)");
      out_.consistency.proxy_protocol_from = texts(*node, "proxy_protocol_from");
      try {
        const proxy_protocol_gate probe(out_.consistency.proxy_protocol_from);
      } catch (const std::exception& e) {
        fail(*node, without_library_prefix(e.what()));
      }
    }
  }

  // #12: `health = "words"` or [health] (parse_health's words as keys), `fallback = "route"`.
  void health_key(std::string_view name, const toml::node& node) {
    const toml::node*& seen = name == "health" ? health_node_ : fallback_node_;
    if (seen) fail(node, std::string(name) + " is already given at " + place_of(seen->source(), path_));
    seen = &node;
    if (name == "fallback") {
      out_.fallback = text(node, "fallback");
      out_.fallback_where = place_of(node.source(), path_) + ": fallback";
      return;
    }
    std::string words;
    if (const auto* t = node.as_table()) {
      for (const auto& [key, value] : in_file_order(*t)) {
        const std::string setting(key->str());
        std::string word;
        if (const auto* flag = value->as_boolean()) {
          word = setting == "enabled" ? (flag->get() ? "on" : "off") : setting + (flag->get() ? "=on" : "=off");
        } else if (const auto* number = value->as_integer()) {
          word = setting + "=" + std::to_string(number->get());
        } else if (const auto* string = value->as_string()) {
          word = setting + "=" + string->get();
        } else {
          fail(*value, "health: " + setting + " is a string, an integer or true/false");
        }
        health_words(word, *key);  // each word placed on its own key
        words += (words.empty() ? "" : " ") + word;
      }
    } else {
      words = text(node, "health (parse_health's words, or a [health] table)");
    }
    out_.health = health_words(words, node);
    out_.health_words = words.empty() ? "on" : words;
  }

  grayroute::health_config health_words(const std::string& words, const toml::node& node) const {
    try {
      return grayroute::parse_health(words);
    } catch (const grayroute::config_error& e) {
      fail(node, without_library_prefix(e.what()));
    }
  }
  grayroute::health_config health_words(const std::string& words, const toml::key& key) const {
    try {
      return grayroute::parse_health(words);
    } catch (const grayroute::config_error& e) {
      fail(key.source(), without_library_prefix(e.what()));
    }
  }

  // #12: [[probes]] route = "gray", path = "/healthz", interval = "1s", expect = 200, timeout = "500ms"
  void read_probe(const toml::table& t) {
    probe_spec spec;
    const std::string what = "probe " + std::to_string(out_.probes.size() + 1);
    spec.where = place_of(t.source(), path_) + ": " + what;
    for (const auto& [key, node] : in_file_order(t)) {
      const std::string_view name = key->str();
      std::string value;
      if (const auto* number = node->as_integer(); number && name == "expect") {
        value = std::to_string(number->get());
      } else {
        value = text(*node, what + ": " + std::string(name));
      }
      try {
        set_probe_setting(spec, name, value);
      } catch (const std::runtime_error& e) {
        fail(name == "route" || name == "path" || name == "interval" || name == "expect" || name == "timeout"
                 ? node->source()
                 : key->source(),
             what + ": " + std::string(name) + " " + quoted(value) + ": " + e.what());
      }
      if (name == "route") spec.where = place_of(node->source(), path_) + ": " + what;
    }
    try {
      finish_probe(spec);
    } catch (const std::runtime_error& e) {
      fail(t, what + ": " + e.what());
    }
    out_.probes.push_back(std::move(spec));
  }

  void client_ip(const toml::table& t) {
    nodes_.client_ip = &t;
    for (const auto& [key, node] : in_file_order(t)) {
      const std::string_view name = key->str();
      if (name == "trusted_proxies") {
        out_.config.client_ip.trusted_proxies = texts(*node, "trusted_proxies");
      } else if (name == "headers") {
        out_.config.client_ip.headers = texts(*node, "headers");
      } else if (name == "recursive") {
        const auto* flag = node->as_boolean();
        if (!flag) fail(*node, "recursive is true or false");
        out_.config.client_ip.recursive = flag->get();
      } else {
        fail(key->source(), "unknown key " + quoted(name) + " in [client_ip] (trusted_proxies, headers, recursive)");
      }
    }
  }

  void read_routes(const toml::table& t) {
    nodes_.routes = &t;
    for (const auto& [key, node] : in_file_order(t)) {
      const std::string what = "route " + quoted(key->str());
      std::vector<std::string> servers = texts(*node, what);
      if (servers.empty()) fail(*node, what + " has no server");
      out_.config.routes.emplace_back(key->str());
      out_.servers.push_back(std::move(servers));
      out_.servers_where.push_back(place_of(node->source(), path_));
    }
  }

  void read_lists(const toml::table& t) {
    nodes_.lists = &t;
    for (const auto& [key, node] : in_file_order(t)) {
      const std::string what = "list " + quoted(key->str());
      const auto* sources = node->as_table();
      if (!sources) fail(*node, what + " is a table: { file = \"...\" }, { redis = \"redis://...\" } or { addresses = [...] }");
      list_spec list;
      list.name = std::string(key->str());
      list.where = place_of(node->source(), path_);
      for (const auto& [source_key, source] : in_file_order(*sources)) {
        const std::string_view kind = source_key->str();
        if (kind == "file") {
          list.file = text(*source, what + ": file");
          if (!list.file.empty() && list.file.front() != '/') list.file = directory_ + list.file;
          list.file_where = place_of(source->source(), path_) + ": " + what + ": " + list.file;
        } else if (kind == "redis") {
          try {
            list.redis = grayroute::parse_redis_url(text(*source, what + ": redis"));
          } catch (const grayroute::config_error& e) {
            fail(*source, what + ": " + without_library_prefix(e.what()));
          }
        } else if (kind == "addresses") {
          list.addresses = texts(*source, what + ": addresses");
        } else {
          fail(source_key->source(), what + ": unknown key " + quoted(kind) + " (file, redis, addresses)");
        }
      }
      if (list.file.empty() && !list.redis && list.addresses.empty()) fail(*node, what + " has no source");
      out_.config.lists.push_back({list.name, {}});
      out_.lists.push_back(std::move(list));
    }
  }

  // header = { X-Beta = ["1", "yes"] }, cookie = { uid = true }, arg = { debug = false }
  void read_fields(grayroute::field_kind kind, const toml::node& node, grayroute::rule_config& rule,
                   const std::string& what) {
    const std::string part = what + ": " + std::string(grayroute::to_string(kind));
    for (const auto& [key, value] : in_file_order(table(node, part))) {
      grayroute::field_condition c;
      c.field = kind;
      c.name = std::string(key->str());
      if (const auto* flag = value->as_boolean()) {
        c.test = flag->get() ? grayroute::field_test::present : grayroute::field_test::absent;
      } else {
        c.test = grayroute::field_test::equals;
        c.values = texts(*value, part + " " + quoted(c.name) + " (true: present, false: absent, or the values)");
        if (c.values.empty()) fail(*value, part + " " + quoted(c.name) + ": an empty array matches nothing");
      }
      rule.fields.push_back(std::move(c));
    }
  }

  void read_rule(const toml::table& t) {
    nodes_.rules.push_back(&t);
    grayroute::rule_config rule;
    const std::string what = "rule " + std::to_string(out_.config.rules.size() + 1);
    const toml::node *schedule = nullptr, *ramp = nullptr, *scheduled_share = nullptr;
    std::size_t scheduled_index = 0;
    for (const auto& [key, node] : in_file_order(t)) {
      const std::string_view name = key->str();
      if (name == "name") {
        rule.name = text(*node, what + ": name");
      } else if (name == "hosts") {
        rule.hosts = texts(*node, what + ": hosts");
      } else if (name == "paths") {
        rule.paths = texts(*node, what + ": paths");
      } else if (name == "list") {
        rule.list = text(*node, what + ": list");
      } else if (name == "client") {
        rule.clients = texts(*node, what + ": client");
      } else if (name == "header") {
        read_fields(grayroute::field_kind::header, *node, rule, what);
      } else if (name == "cookie") {
        read_fields(grayroute::field_kind::cookie, *node, rule, what);
      } else if (name == "arg") {
        read_fields(grayroute::field_kind::arg, *node, rule, what);
      } else if (name == "route") {
        rule.route = text(*node, what + ": route");
      } else if (name == "split") {
        for (const auto& [route, share] : in_file_order(table(*node, what + ": split"))) {
          if (share->is_string() && share->as_string()->get() == "schedule") {  // the rule's schedule is its weight
            if (scheduled_share) fail(*share, what + ": split: one share is \"schedule\"");
            scheduled_share = share;
            scheduled_index = rule.split.size();
            rule.split.push_back({std::string(route->str()), 0, {}});
            continue;
          }
          const auto percent = share->value<double>();  // an integer or a float
          if (!percent || share->is_boolean()) {
            fail(*share, what + ": split " + quoted(route->str()) + " is a number (percent) or \"schedule\"");
          }
          rule.split.push_back({std::string(route->str()), *percent, {}});
        }
      } else if (name == "schedule") {
        schedule = node;
      } else if (name == "ramp") {
        ramp = node;
      } else if (name == "key") {
        for (const std::string& item : texts(*node, what + ": key")) {
          try {
            const auto sources = grayroute::parse_key_list(item);
            rule.key.insert(rule.key.end(), sources.begin(), sources.end());
          } catch (const grayroute::config_error& e) {
            fail(*node, without_library_prefix(e.what()));
          }
        }
      } else if (name == "seed") {
        const auto* seed = node->as_integer();
        if (!seed || seed->get() < 0 || seed->get() > 0xffffffffLL) fail(*node, what + ": seed is an integer in 0..4294967295");
        rule.seed = static_cast<std::uint32_t>(seed->get());
      } else if (name == "default" || name == "force_header" || name == "force_cookie" || name == "force_route") {
        top_level(name, *node);
      } else if (name == "fallback") {
        rule.fallback = text(*node, what + ": fallback");  // the rule's own (#12); the policy's goes before the tables
      } else if (name == "health") {
        health_key(name, *node);  // after the last [[rules]], like `default` (see top_level)
      } else {
        fail(key->source(), what + ": unknown key " + quoted(name) +
                                " (name, hosts, paths, list, client, header, cookie, arg, route, split, key, seed, "
                                "schedule, ramp, fallback)");
      }
    }
    if (schedule || ramp || scheduled_share) read_schedule(rule, what, schedule, ramp, scheduled_share, scheduled_index);
    out_.config.rules.push_back(std::move(rule));
  }

  // schedule = "2026-12-01T10:00:00Z 1%, +1h 5%", ramp = "steps" | "linear": the weight of
  // the split's share written as "schedule".
  void read_schedule(grayroute::rule_config& rule, const std::string& what, const toml::node* schedule,
                     const toml::node* ramp, const toml::node* share, std::size_t index) const {
    if (!schedule) fail(share ? *share : *ramp, what + ": a schedule share or ramp without schedule = \"...\"");
    if (!share) fail(*schedule, what + ": schedule without a split share written \"schedule\" (split = { gray = \"schedule\" })");
    grayroute::ramp_shape shape = grayroute::ramp_shape::steps;
    if (ramp) {
      const std::string r = text(*ramp, what + ": ramp");
      if (r == "linear") shape = grayroute::ramp_shape::linear;
      else if (r != "steps") fail(*ramp, what + ": ramp " + quoted(r) + " is steps or linear");
    }
    const std::string steps = text(*schedule, what + ": schedule");
    try {
      rule.split[index].schedule = grayroute::parse_weight_schedule(steps, shape);
    } catch (const grayroute::config_error& e) {
      fail(*schedule, what + ": schedule: " + without_library_prefix(e.what()));
    }
  }

  // Builds the policy part by part, in the order policy validates, until it fails: the
  // part that fails is where the error is; within it, the node the message quotes.
  static std::string place(const std::string& path, const node_map& nodes, const std::string& message,
                           const grayroute::policy_config& built) {
    const std::string text = without_library_prefix(message);
    auto fails = [](const grayroute::policy_config& c) {
      try {
        grayroute::policy p(c);
        return false;
      } catch (const grayroute::config_error&) {
        return true;
      }
    };
    auto at = [&](const toml::node* node) {
      if (!node) return path + ": " + text;
      quoted_node best;
      find_quoted(text, *node, best);
      return place_of(best.region ? *best.region : node->source(), path) + ": " + text;
    };
    grayroute::policy_config c;
    c.routes = built.routes;
    if (fails(c)) return at(nodes.routes);
    c.client_ip = built.client_ip;
    if (fails(c)) return at(nodes.client_ip);
    c.lists = built.lists;
    if (fails(c)) return at(nodes.lists);
    c.default_route = built.default_route;
    if (fails(c)) return at(nodes.default_route);
    c.force_route = built.force_route;
    if (fails(c)) return at(nodes.force_route);
    c.force_header = built.force_header;
    if (fails(c)) return at(nodes.force_header);
    c.force_cookie = built.force_cookie;
    if (fails(c)) return at(nodes.force_cookie);
    for (std::size_t i = 0; i < built.rules.size(); ++i) {
      c.rules.push_back(built.rules[i]);
      if (fails(c)) return at(i < nodes.rules.size() ? nodes.rules[i] : nullptr);
    }
    return path + ": " + text;
  }

  std::string path_, directory_;
  const toml::node* consistency_node_ = nullptr;  // [decision] or pin_cookie, for their errors
  proxy_policy out_;
  node_map nodes_;
  const toml::node* health_node_ = nullptr;
  const toml::node* fallback_node_ = nullptr;
};

grayroute::redis_config redis_config_of(const redis_options& r) {
  grayroute::redis_config config;
  const auto address = grayroute::parse_redis_address(r.address);
  if (!address) throw policy_error("--redis: \"" + r.address + "\" is not host:port, [v6]:port or unix:/path");
  if (address->second == 0) {
    config.unix_socket = address->first;
  } else {
    config.host = address->first;
    config.port = address->second;
  }
  config.username = r.user;
  config.password = r.password;
  config.database = r.database;
  if (r.schema == "seed") {
    config.schema = grayroute::redis_schema::seed;
  } else if (r.schema == "set") {
    config.schema = grayroute::redis_schema::set;
  } else if (r.schema == "hash") {
    config.schema = grayroute::redis_schema::hash;
  } else {
    throw policy_error("--redis-schema: \"" + r.schema + "\" is not seed, set or hash");
  }
  config.key = r.key;
  return config;
}

}  // namespace

std::string without_library_prefix(const std::string& message) {
  constexpr std::string_view prefix = "grayroute: ";
  return message.compare(0, prefix.size(), prefix) == 0 ? message.substr(prefix.size()) : message;
}

proxy_policy read_policy_file(const std::string& path) { return reader(path).read(nullptr); }

proxy_policy read_policy_text(const std::string& text, const std::string& path) { return reader(path).read(&text); }

proxy_policy policy_from_flags(const proxy_options& options) {
  proxy_policy out;
  out.listen = options.listen;
  // Issue 13: the flags' ramp is the weight of the "percentage" rule's one share: the rule
  // to_policy_config builds for a percentage (its keys, seed, route), the share then
  // replaced by the schedule.
  out.consistency = options.consistency;
  const consistency_options& c = options.consistency;
  grayroute::router_config routing = options.routing;
  if (!c.percent_schedule.empty()) {
    if (c.percent_ramp != "steps" && c.percent_ramp != "linear") {
      throw policy_error("--percent-ramp \"" + c.percent_ramp + "\": steps or linear");
    }
    if (routing.percent != 0) throw policy_error("--percent-schedule replaces --percent; give one of them");
    routing.percent = 100;
  }
  // The list's stores are attached by live_policy; to_policy_config needs one to build.
  const grayroute::memory_store placeholder;
  try {
    out.config = grayroute::to_policy_config(routing, grayroute::store_ref(placeholder));
  } catch (const grayroute::config_error& e) {
    throw policy_error("--percent: " + without_library_prefix(e.what()));
  }
  out.config.lists.front().layers.clear();
  if (!c.percent_schedule.empty()) {
    grayroute::route_share& share = out.config.rules.back().split.front();
    share.percent = 0;
    try {
      share.schedule = grayroute::parse_weight_schedule(
          c.percent_schedule, c.percent_ramp == "linear" ? grayroute::ramp_shape::linear : grayroute::ramp_shape::steps);
    } catch (const grayroute::config_error& e) {
      throw policy_error("--percent-schedule: " + without_library_prefix(e.what()));
    }
  }
  out.servers = {{options.production}, {options.gray}};
  out.servers_where = {"--production", "--gray"};
  list_spec list;
  list.name = out.config.lists.front().name;
  list.addresses = options.gray_list;
  list.file = options.gray_list_file;
  list.file_where = "--gray-list-file " + list.file;
  if (!options.redis.address.empty()) list.redis = redis_config_of(options.redis);
  list.where = !list.file.empty() ? "--gray-list-file " + list.file : list.redis ? "--redis" : "--gray-list";
  out.lists.push_back(std::move(list));
  out.place = [](const std::string& message, const grayroute::policy_config&) { return without_library_prefix(message); };
  // #12: route health
  try {
    out.health = grayroute::parse_health(options.health);
  } catch (const grayroute::config_error& e) {
    throw policy_error("--health \"" + options.health + "\": " + e.what());
  }
  out.health_words = options.health;
  out.fallback = options.fallback_route;
  for (const std::string& words : options.probes) {
    try {
      out.probes.push_back(parse_probe(words));
    } catch (const std::runtime_error& e) {
      throw policy_error(e.what());
    }
  }
  return out;
}

}  // namespace grayroute_proxy
