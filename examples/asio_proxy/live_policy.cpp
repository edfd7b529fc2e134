// Building, reloading and reporting the served policy; see live_policy.hpp.
#include "live_policy.hpp"

#include "decision_tier.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <grayroute/config_error.hpp>
#include <grayroute/list_text.hpp>
#include <grayroute/policy_syntax.hpp>

#if GRAYROUTE_PROXY_REDIS
#include <grayroute/redis_store.hpp>
#endif

namespace grayroute_proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::string iso_time(std::time_t t) {
  if (t == 0) return "";
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// What identifies a Redis source across reloads: the same server, credentials, list and
// routes keep the running store (and its synced list). Compared in memory only.
std::string identity_of(const grayroute::redis_config& c) {
  std::string out = grayroute::redact(c);
  for (const std::string* part : {&c.username, &c.password}) out += '\n' + *part;
  for (const std::string& route : c.routes) out += '\n' + route;
  return out;
}

}  // namespace

tcp::endpoint resolve_endpoint(const std::string& where, const std::string& text) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close != std::string::npos) {
      host = text.substr(1, close - 1);
      port = text.substr(close + 2);
    }
  } else if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty()) throw policy_error(where + ": \"" + text + "\" is not host:port");
  asio::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  const auto results = resolver.resolve(host, port, tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) throw policy_error(where + ": cannot resolve \"" + text + "\": " + ec.message());
  return results.begin()->endpoint();
}

live_policy::live_policy(const proxy_options& options) : options_(options) {
  std::string text;
  const std::string* file_text = nullptr;
  if (!options.config_file.empty()) {
    grayroute::list_error error;
    if (!grayroute::read_list_file(options.config_file, text, error, &policy_stamp_)) {
      throw policy_error(options.config_file + ": " + grayroute::to_string(error));
    }
    policy_applied_ = policy_previous_ = text;
    policy_have_previous_ = true;
    file_text = &text;
  }
  proxy_policy spec = read_spec(file_text);
  if (!options.config_file.empty()) {
    listen_ = spec.listen;
    listen_where_ = spec.listen_where;
  }
  consistency_ = spec.consistency;
  build_result first = build(std::move(spec));
  current_ = first.snapshot;
  files_ = std::move(first.files);
  std::lock_guard<std::mutex> lock(status_mutex_);
  last_load_ = last_policy_load_ = std::time(nullptr);
  file_reloads_ = files_.empty() ? 0 : 1;
  policy_reloads_ = 1;
}

live_policy::~live_policy() { stop(); }

void live_policy::stop() {
#if GRAYROUTE_PROXY_REDIS
  if (const auto snapshot = load()) {
    for (const list_stores& list : snapshot->lists) {
      if (list.redis) list.redis->stop();
    }
  }
#endif
}

proxy_policy live_policy::read_spec(const std::string* text) const {
  if (options_.config_file.empty()) return policy_from_flags(options_);
  return text ? read_policy_text(*text, options_.config_file) : read_policy_file(options_.config_file);
}

live_policy::build_result live_policy::build(proxy_policy spec) const {
  build_result out;
  const std::vector<std::string>& routes = spec.config.routes;
  const auto previous = load();
  std::vector<list_stores> lists;
  for (std::size_t i = 0; i < spec.lists.size(); ++i) {
    const list_spec& source = spec.lists[i];
    const std::string what = source.where + ": list \"" + source.name + "\"";
    list_stores stores;
    stores.name = source.name;
    std::vector<grayroute::store_ref>& layers = spec.config.lists[i].layers;
    if (!source.addresses.empty() || (source.file.empty() && !source.redis)) {
      // Each address is a list line: an address or network, then optionally a route.
      std::string lines;
      for (const std::string& address : source.addresses) lines += address + "\n";
      const grayroute::parsed_list parsed = grayroute::parse_list(lines, routes);
      if (!parsed) {
        throw policy_error(what + ": address " + std::to_string(parsed.error->line) + ": " + parsed.error->message);
      }
      stores.configured = std::make_shared<grayroute::memory_store>(parsed.entries);
      stores.configured_entries = parsed.entries.size();
      layers.emplace_back(stores.configured);
    }
    if (!source.file.empty()) {
      auto file = std::make_shared<watched_file>(watched_file{source.name, std::make_shared<grayroute::memory_store>(),
                                                              grayroute::list_file_watch(source.file, routes)});
      const grayroute::parsed_list parsed = file->watch.load();
      if (!parsed) throw policy_error(source.file_where + ": " + grayroute::to_string(*parsed.error));
      file->store->replace(parsed.entries);
      stores.file = source.file;
      stores.from_file = file->store;
      layers.emplace_back(file->store);
      out.files.push_back(std::move(file));
    }
    if (source.redis) {
#if GRAYROUTE_PROXY_REDIS
      grayroute::redis_config config = *source.redis;
      config.routes = routes;
      stores.redis_description = grayroute::redact(config);
      stores.redis_identity = identity_of(config);
      if (previous) {
        for (const list_stores& old : previous->lists) {
          if (old.redis && old.redis_identity == stores.redis_identity) stores.redis = old.redis;
        }
      }
      if (!stores.redis) {
        try {
          stores.redis = std::make_shared<grayroute::redis_store>(std::move(config));
        } catch (const grayroute::config_error& e) {
          throw policy_error(what + ": " + without_library_prefix(e.what()));
        }
      }
      layers.emplace_back(stores.redis);
#else
      throw policy_error(what + ": this grayroute-proxy was built without the Redis store (needs libhiredis-dev)");
#endif
    }
    lists.push_back(std::move(stores));
  }
  std::shared_ptr<policy_snapshot> snapshot;
  std::vector<grayroute::key_source> rollout_keys = with_pin_key(spec.config, consistency_.pin_cookie);  // issue 13
  try {
    snapshot = std::make_shared<policy_snapshot>(spec.config);
    snapshot->rollout_keys = std::move(rollout_keys);
  } catch (const grayroute::config_error& e) {
    throw policy_error(spec.place(e.what(), spec.config));
  }
  snapshot->lists = std::move(lists);
  snapshot->source = spec.source.empty() ? "flags" : spec.source;
  const grayroute::resolver_config& client_ip = spec.config.client_ip;
  if (client_ip.trusted_proxies.empty()) {
    snapshot->client_ip = "the TCP peer (no trusted proxies)";
  } else {
    std::string headers, trusted;
    for (const auto& h : client_ip.headers) headers += (headers.empty() ? "" : ", ") + h;
    for (const auto& t : client_ip.trusted_proxies) trusted += (trusted.empty() ? "" : ", ") + t;
    snapshot->client_ip = headers + " from trusted proxies " + trusted + ", else the TCP peer";
  }
  for (std::size_t route = 0; route < spec.servers.size(); ++route) {
    std::vector<upstream_server> servers;
    for (const std::string& server : spec.servers[route]) {
      servers.push_back({resolve_endpoint(spec.servers_where[route], server), server});
    }
    snapshot->servers.push_back(std::move(servers));
  }
  build_health(spec, *snapshot, previous.get());
  out.snapshot = std::move(snapshot);
  return out;
}

// #12: the routes' health for `next`: the previous feed when the routes and the health
// settings are the same, else a new one sharing the cells of the routes that remain
// (never a copy: requests of the previous policy still in flight record into them).
void live_policy::build_health(const proxy_policy& spec, policy_snapshot& next, const policy_snapshot* previous) {
  const grayroute::route_table& routes = next.policy.routes();
  std::optional<grayroute::route_id> fallback;
  if (!spec.fallback.empty()) {
    fallback = routes.find(spec.fallback);
    if (!fallback) throw policy_error(spec.fallback_where + ": \"" + spec.fallback + "\" is not a route");
  }
  for (probe_spec probe : spec.probes) {
    const auto route = routes.find(probe.route_name);
    if (!route) throw policy_error(probe.where + ": route \"" + probe.route_name + "\" is not a route");
    probe.route = *route;
    next.probes.push_back(std::move(probe));
  }
  if (previous && previous->health && previous->health->same_as(routes, spec.health_words, fallback)) {
    next.health = previous->health;
    return;
  }
  try {
    next.health = std::make_shared<health_feed>(routes, spec.health, fallback, previous ? previous->health.get() : nullptr);
  } catch (const grayroute::config_error& e) {
    throw policy_error("health \"" + spec.health_words + "\": " + without_library_prefix(e.what()));
  }
  next.health->words = spec.health_words;
}

live_policy::reload_counts live_policy::counts() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  return {last_load_, last_policy_load_, file_reloads_, file_rejected_, policy_reloads_, policy_rejected_};
}

void live_policy::apply(build_result next, const char* why) {
  std::atomic_store(&current_, next.snapshot);
  files_ = std::move(next.files);
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    last_load_ = last_policy_load_ = std::time(nullptr);
    ++policy_reloads_;
    if (!files_.empty()) ++file_reloads_;
    last_error_.clear();
  }
  const policy_snapshot& s = *next.snapshot;
  std::printf("policy reloaded (%s): %zu routes, %zu rules, %zu lists from %s\n", why, s.policy.routes().size(),
              s.policy.rule_names().size(), s.lists.size(), s.source.c_str());
  for (const auto& file : files_) {
    std::printf("gray list reloaded (%s): list \"%s\": %zu entries from %s\n", why, file->list.c_str(),
                file->store->size(), file->watch.path().c_str());
  }
  std::fflush(stdout);
  if (on_reload_) on_reload_(next.snapshot);
}

void live_policy::rejected(const std::string& error, refused what, const char* why) {
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    last_error_ = error;
    ++(what == refused::policy ? policy_rejected_ : file_rejected_);
  }
  std::printf("%s NOT reloaded (%s): %s; the previous one keeps serving\n",
              what == refused::policy ? "policy" : "gray list", why, error.c_str());
  std::fflush(stdout);
}

void live_policy::reload(const char* why) {
  try {
    apply(build(read_spec(nullptr)), why);
  } catch (const policy_error& e) {
    rejected(e.what(), refused::policy, why);
  }
}

bool live_policy::watches_files() const { return !options_.config_file.empty() || !files_.empty(); }

void live_policy::poll() {
  if (!options_.config_file.empty()) {
    std::string text;
    grayroute::list_error error;
    grayroute::list_file_stamp stamp;
    if (grayroute::read_list_file(options_.config_file, text, error, &stamp)) {
      const bool stable = policy_have_previous_ && stamp.mtime_ns >= 0 && stamp == policy_stamp_ && text == policy_previous_;
      policy_previous_ = text;
      policy_stamp_ = stamp;
      policy_have_previous_ = true;
      if (stable && text != policy_applied_) {
        policy_applied_ = text;  // a bad version is reported once, not at every look
        try {
          apply(build(read_spec(&text)), "policy file changed");
        } catch (const policy_error& e) {
          rejected(e.what(), refused::policy, "policy file changed");
        }
        return;
      }
    } else {
      policy_have_previous_ = false;
    }
  }
  for (const auto& file : files_) {
    auto look = file->watch.check();
    if (look.state == grayroute::list_file_watch::ready) {
      file->store->replace(look.list.entries);
      {
        std::lock_guard<std::mutex> lock(status_mutex_);
        last_load_ = std::time(nullptr);
        last_error_.clear();
        ++file_reloads_;
      }
      std::printf("gray list reloaded (file changed): list \"%s\": %zu entries from %s\n", file->list.c_str(),
                  file->store->size(), file->watch.path().c_str());
      std::fflush(stdout);
    } else if (look.state == grayroute::list_file_watch::failed && file->watch.new_error()) {
      rejected(file->watch.path() + ": " + grayroute::to_string(*look.list.error), refused::list_file, "file changed");
    }
  }
}

std::string live_policy::describe() const {
  const auto s = load();
  std::string out;
  for (std::size_t route = 0; route < s->servers.size(); ++route) {
    out += "  route " + std::string(s->policy.route_name(static_cast<grayroute::route_id>(route))) + " ->";
    for (const upstream_server& server : s->servers[route]) out += " " + server.name;
    out += "\n";
  }
  for (const list_stores& list : s->lists) {
    out += "  list \"" + list.name + "\": ";
    std::string parts;
    if (list.configured) parts += std::to_string(list.configured_entries) + " entries from the configuration";
    if (list.from_file) {
      parts += (parts.empty() ? "" : ", then ") + std::to_string(list.from_file->size()) + " entries from " + list.file +
               " (reloaded on SIGHUP or change)";
    }
    if (list.redis) parts += (parts.empty() ? "" : ", then ") + std::string("Redis ") + list.redis_description;
    out += (parts.empty() ? "empty" : parts) + "\n";
  }
  std::string rules;
  for (const std::string_view rule : s->policy.rule_names()) rules += (rules.empty() ? "" : ", ") + std::string(rule);
  out += "  rules: " + (rules.empty() ? std::string("none") : rules) + "; default " +
         std::string(s->policy.route_name(s->policy.default_route())) + "\n";
  out += "  client IP: " + s->client_ip + "\n";
  out += "  policy from " + s->source;
  return out;
}

std::string live_policy::health_json() const {
  using json = nlohmann::ordered_json;  // keys in the order written: status first
  const auto s = load();
  std::size_t entries = 0;
  std::string source, problem;  // problem "": healthy
  std::time_t last_sync = 0;
  json redis_connected = nullptr, redis_status = nullptr;
  json lists = json::array();
  bool any_file = false;
  for (const list_stores& list : s->lists) {
    json item = {{"name", list.name}};
    std::size_t list_entries = 0;
    if (list.configured) list_entries += list.configured_entries;
    if (list.from_file) {
      list_entries += list.from_file->size();
      item["file"] = list.file;
      source += (source.empty() ? "" : " + ") + std::string("file ") + list.file;
      any_file = true;
    } else if (list.configured) {
      source += source.empty() ? "flags" : " + flags";
    }
#if GRAYROUTE_PROXY_REDIS
    if (list.redis) {
      const auto status = list.redis->status();
      if (!status.healthy() && problem.empty()) problem = "redis: " + status.problem();
      list_entries += status.entries;
      source += source.empty() ? "redis" : " + redis";
      if (status.synced_once) last_sync = std::max(last_sync, std::chrono::system_clock::to_time_t(status.last_sync));
      const bool connected = status.connected && (redis_connected.is_null() || redis_connected.get<bool>());
      redis_connected = connected;
      item["redis"] = json::parse(grayroute::to_json(status));
      if (redis_status.is_null()) redis_status = item["redis"];
    }
#endif
    item["entries"] = list_entries;
    entries += list_entries;
    lists.push_back(std::move(item));
  }
  json out;
  out["status"] = problem.empty() ? "ok" : "degraded";
  if (!problem.empty()) out["reason"] = problem;
  out["entries"] = entries;
  out["source"] = source;
  json policy = {{"source", s->source}};
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    if (redis_connected.is_null() || any_file) last_sync = std::max(last_sync, last_load_);
    out["last_sync"] = iso_time(last_sync);
    out["file_reloads"] = file_reloads_;
    out["file_rejected"] = file_rejected_;
    out["last_error"] = last_error_;
    policy["reloads"] = policy_reloads_;
    policy["rejected"] = policy_rejected_;
    policy["last_reload"] = iso_time(last_policy_load_);
  }
  out["redis_connected"] = redis_connected;
  if (!redis_status.is_null()) out["redis"] = redis_status;
  json routes = json::array();
  for (std::size_t route = 0; route < s->servers.size(); ++route) {
    json servers = json::array();
    for (const upstream_server& server : s->servers[route]) servers.push_back(server.name);
    routes.push_back({{"name", std::string(s->policy.route_name(static_cast<grayroute::route_id>(route)))},
                      {"servers", servers}});
  }
  policy["routes"] = routes;
  json rules = json::array();
  for (const std::string_view rule : s->policy.rule_names()) rules.push_back(std::string(rule));
  policy["rules"] = rules;
  policy["default"] = std::string(s->policy.route_name(s->policy.default_route()));
  out["policy"] = policy;
  out["lists"] = lists;
  if (s->health) out["routes"] = json::parse(s->health->routes_json(std::chrono::steady_clock::now()));  // #12
  return out.dump();
}

}  // namespace grayroute_proxy
