// Route health for the nginx module, shared by all workers.
//
//   grayroute_health zone=grayroute_health:128k error_ratio=50% min_requests=20 window=10s cooldown=10s;
//   location = /-/grayroute/metrics { grayroute_metrics; }
//
// One route_health per route lives in a shared-memory zone (ngx_shm_zone_t, slab): every
// worker records into the same lock-free counters and reads the same breaker, so a gray
// route that fails is seen failing by the whole server, each request counted once, by the
// worker that served it. Each process builds its own health_table over the zone (in the
// master, when the zone is ready; workers inherit it), with the same configuration.
//
// Feeding: a decision made by the module (guard_health) leaves a note in the request's
// pool cleanup list - found again after an internal redirect (error_page), which resets
// module contexts; ngx_http_realip_module finds its context the same way. The upstream
// attempts that followed the decision are in r->upstream_states (what $upstream_status and
// $upstream_header_time print), the last attempt of that group being the route's outcome:
//   a response (header received): its status, 5xx an error;
//   504 without a response: timeout (nginx's proxy_connect_timeout / proxy_read_timeout);
//   502 without a response: connect_failure (refused, reset, no live upstreams).
// It is recorded when the request's response header goes out (a header filter), before
// the client can have any byte of the response: the next request a client sends after a
// response, to either worker, is decided with that response's outcome counted. The log
// phase records only what no response header carried (a request that sent none); a note
// is counted and recorded once. A request the client abandoned (no status) has no outcome.
// What goes wrong after the header (a body cut short) is not an outcome, as for nginx's
// own max_fails.
//
// A breaker change is logged once, by the worker whose compare-and-swap made it, at
// `warn`, with the figures that made it.

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>

#include <grayroute/health_metrics.hpp>
#include <grayroute/health_syntax.hpp>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

constexpr std::string_view kDefaultZone = "grayroute_health";
constexpr std::size_t kDefaultZoneSize = 128 * 1024;

// grayroute_requests_total{route,reason,status_class}, the same family grayroute-proxy
// serves: by the route that served, the reason, and the status class the client got
// (none: no status).
constexpr std::size_t kReasons = 8;         // route_reason's enumerators
constexpr std::size_t kStatusClasses = 6;   // none, 1xx .. 5xx
constexpr std::size_t kRequestCounters = kReasons * kStatusClasses;
static_assert(static_cast<std::size_t>(grayroute::route_reason::upstream) + 1 == kReasons,
              "a new route_reason needs its counters");
constexpr const char* kStatusClassNames[kStatusClasses] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

std::chrono::milliseconds now_ms() noexcept {
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ngx_current_msec));
}

// ---- the zone ----------------------------------------------------------------------

// The states of one set of routes in the zone. A reload that keeps the zone (same name and
// size) keeps the states of the same routes, so a reload does not close an open breaker;
// a reload with other routes gets new states beside the old ones, which old workers may
// still be writing until they exit (never freed: a handful of bytes per reload).
struct shared_states {
  std::uint64_t signature;
  std::size_t routes;
  shared_states* next;
  grayroute::route_health* states;
  std::atomic<std::uint64_t>* requests;  // [route][reason][status class]: grayroute_requests_total
};

std::uint64_t signature_of(const grayroute::route_table& routes) noexcept {
  // FNV-1a over the layout's version and the names, NUL-separated.
  std::uint64_t hash = (14695981039346656037ull ^ 2u) * 1099511628211ull;
  for (const auto& name : routes.names()) {
    for (const char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    hash = (hash ^ 0u) * 1099511628211ull;
  }
  return hash;
}

const shared_states* zone_states(ngx_slab_pool_t* pool, const grayroute::route_table& routes, bool reused) {
  const std::uint64_t signature = signature_of(routes);
  auto* list = reused ? static_cast<shared_states*>(pool->data) : nullptr;
  for (shared_states* s = list; s; s = s->next) {
    if (s->signature == signature && s->routes == routes.size()) return s;
  }
  constexpr std::size_t kAlign = alignof(grayroute::route_health);
  const std::size_t counters = routes.size() * kRequestCounters;
  const std::size_t bytes = sizeof(shared_states) + kAlign + routes.size() * sizeof(grayroute::route_health) +
                            counters * sizeof(std::atomic<std::uint64_t>);
  auto* block = static_cast<u_char*>(ngx_slab_alloc_locked(pool, bytes));
  if (!block) return nullptr;
  auto* header = new (block) shared_states{signature, routes.size(), list, nullptr, nullptr};
  auto at = reinterpret_cast<std::uintptr_t>(block + sizeof(shared_states));
  at = (at + kAlign - 1) / kAlign * kAlign;
  auto* states = reinterpret_cast<grayroute::route_health*>(at);
  for (std::size_t i = 0; i < routes.size(); ++i) new (states + i) grayroute::route_health();
  auto* requests = reinterpret_cast<std::atomic<std::uint64_t>*>(states + routes.size());
  for (std::size_t i = 0; i < counters; ++i) new (requests + i) std::atomic<std::uint64_t>(0);
  header->states = states;
  header->requests = requests;
  pool->data = header;
  return header;
}

void log_change(const grayroute::route_table& routes, const grayroute::health_event& e) noexcept {
  const std::string_view route = routes.name(e.route);
  ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                "grayroute: route \"%*s\" %*s -> %*s (%*s): %uD of %uD outcomes in the window failed (%.1f%%), "
                "baseline %.1f%%, %uD connect failures in a row, %uD probe successes",
                route.size(), route.data(), to_string(e.from).size(), to_string(e.from).data(), to_string(e.to).size(),
                to_string(e.to).data(), to_string(e.cause).size(), to_string(e.cause).data(), e.window_errors,
                e.window_requests, e.error_ratio * 100.0, e.baseline_error_ratio * 100.0, e.connect_failures_in_row,
                e.probe_successes);
}

ngx_int_t init_zone(ngx_shm_zone_t* zone, void* old_data) {
  auto& s = *static_cast<decide_state*>(zone->data);
  auto* pool = reinterpret_cast<ngx_slab_pool_t*>(zone->shm.addr);
  // Only the master allocates here; the lock keeps the slab consistent all the same.
  ngx_shmtx_lock(&pool->mutex);
  const shared_states* shared = zone_states(pool, *s.routes, old_data != nullptr || zone->shm.exists);
  ngx_shmtx_unlock(&pool->mutex);
  if (!shared) {
    ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0, "grayroute_health: zone \"%V\" is too small for %uz routes",
                  &zone->shm.name, s.routes->size());
    return NGX_ERROR;
  }
  try {
    const grayroute::route_table* routes = s.routes.get();
    s.request_counts = shared->requests;
    s.health = std::make_unique<grayroute::health_table>(
        s.health_config, shared->states, routes->size(),
        [routes](const grayroute::health_event& e) { log_change(*routes, e); });
  } catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0, "grayroute_health: %s", e.what());
    return NGX_ERROR;
  }
  return NGX_OK;
}

// ---- recording: the response header, else the log phase ----------------------------

// What guard_health leaves in the request pool: one allocation of 40 bytes holding its own
// link in the pool's cleanup list (the request pool is 4k by default and a second
// allocation was measured to spill it into another block more often).
struct routed_note {
  ngx_pool_cleanup_t link;      // handler routed_marker, data this note
  ngx_http_request_t* request;  // the (sub)request whose upstream attempts follow
  std::uint32_t first_state;    // r->upstream_states->nelts when the decision was made
  grayroute::route_id route;
  grayroute::route_reason reason;
  std::uint8_t done;            // kCounted | kRecorded: each is done once, header or log phase
};
static_assert(sizeof(routed_note) <= 40, "routed_note stays within its 40 bytes (see above)");
constexpr std::uint8_t kCounted = 1;   // grayroute_requests_total has the request
constexpr std::uint8_t kRecorded = 2;  // the route's health has the outcome

void routed_marker(void*) {}  // identifies the notes among the pool's cleanups

struct route_outcome {
  grayroute::outcome what;
  std::chrono::microseconds latency;
};

// The outcome of the route's attempts, once the last one has a status: its response's
// (header received) or the 502/504 nginx made of it. The latency runs to each attempt's
// response header (or to its failure), as grayroute-proxy measures it, so it is the same
// whether the outcome is recorded from the header filter or from the log phase.
std::optional<route_outcome> outcome_of(const routed_note& note) noexcept {
  const ngx_array_t* array = note.request->upstream_states;
  if (!array) return std::nullopt;
  const auto* states = static_cast<const ngx_http_upstream_state_t*>(array->elts);
  ngx_uint_t i = note.first_state;
  // An upstream started after another one (an internal redirect) begins with an empty
  // entry, the " : " of $upstream_status; the route's attempts follow until the next one.
  while (i < array->nelts && states[i].peer == nullptr) ++i;
  const ngx_http_upstream_state_t* last = nullptr;
  ngx_msec_t total = 0;
  constexpr auto kUnset = static_cast<ngx_msec_t>(-1);
  for (; i < array->nelts && states[i].peer != nullptr; ++i) {
    last = &states[i];
    if (last->header_time != kUnset) {
      total += last->header_time;
    } else if (last->response_time != kUnset) {
      total += last->response_time;
    }
  }
  if (!last || last->status == 0) return std::nullopt;
  grayroute::outcome what = grayroute::outcome_of_status(static_cast<unsigned>(last->status));
  if (last->header_time == kUnset) {
    if (last->status == NGX_HTTP_GATEWAY_TIME_OUT) what = grayroute::outcome::timeout;
    if (last->status == NGX_HTTP_BAD_GATEWAY) what = grayroute::outcome::connect_failure;
  }
  return route_outcome{what, std::chrono::microseconds(static_cast<std::int64_t>(total) * 1000)};
}

void count_request(const decide_state& s, const routed_note& note) noexcept {
  const ngx_uint_t status = note.request->headers_out.status;
  const std::size_t status_class = status >= 100 && status < 600 ? status / 100 : 0;
  const auto reason = static_cast<std::size_t>(note.reason);
  if (note.route >= s.routes->size() || reason >= kReasons) return;
  s.request_counts[(note.route * kReasons + reason) * kStatusClasses + status_class].fetch_add(1, std::memory_order_relaxed);
}

// Counts and records what is known of each note not done yet: of `only`'s notes (its
// response header is going out), or of every note (nullptr: the log phase).
void settle_notes(const decide_state& s, ngx_http_request_t* r, const ngx_http_request_t* only) noexcept {
  for (ngx_pool_cleanup_t* c = r->pool->cleanup; c; c = c->next) {
    if (c->handler != routed_marker) continue;
    auto& note = *static_cast<routed_note*>(c->data);
    if ((only && note.request != only) || note.done == (kCounted | kRecorded)) continue;
    if (!(note.done & kCounted)) {
      count_request(s, note);
      note.done |= kCounted;
    }
    if (!(note.done & kRecorded)) {
      if (const auto o = outcome_of(note)) {
        s.health->record(note.route, o->what, o->latency, now_ms());
        note.done |= kRecorded;
      }
    }
  }
}

ngx_http_output_header_filter_pt next_header_filter = nullptr;

// Before the response header leaves: what the client is about to get is its outcome's
// consequence, so a client (or another worker) that has the response has the outcome
// counted too. Stock nginx's max_fails is as early: peer.free in upstream finalize, before
// the error page or the response is sent.
ngx_int_t header_filter(ngx_http_request_t* r) noexcept {
  const decide_state& s = decide_of(r);
  if (s.health) settle_notes(s, r, r);
  return next_header_filter(r);
}

// What no response header carried: a request that sent none (an error_page to a location
// that answers `return 444`, for one) still has its route's outcome recorded here, and a
// request the client abandoned (no status) is counted under status class none.
ngx_int_t log_handler(ngx_http_request_t* r) {
  const decide_state& s = decide_of(r);
  if (s.health) settle_notes(s, r, nullptr);
  return NGX_OK;
}

// Route names are tokens (route_table refuses others) and the rest are fixed words: no
// label value needs the format's escapes.
void write_request_metrics(std::string& out, const decide_state& s) {
  out += "# HELP grayroute_requests_total Requests routed, by the route that served, the reason and the status "
         "class sent to the client (none: no status).\n# TYPE grayroute_requests_total counter\n";
  for (std::size_t r = 0; r < s.routes->size(); ++r) {
    for (std::size_t reason = 0; reason < kReasons; ++reason) {
      for (std::size_t c = 0; c < kStatusClasses; ++c) {
        const std::uint64_t count =
            s.request_counts[(r * kReasons + reason) * kStatusClasses + c].load(std::memory_order_relaxed);
        if (count == 0) continue;  // a sparse family: only the combinations that happened
        out.append("grayroute_requests_total{route=\"").append(s.routes->name(static_cast<grayroute::route_id>(r)));
        out.append("\",reason=\"").append(grayroute::to_string(static_cast<grayroute::route_reason>(reason)));
        out.append("\",status_class=\"").append(kStatusClassNames[c]).append("\"} ").append(std::to_string(count));
        out += '\n';
      }
    }
  }
}

// ---- grayroute_metrics ---------------------------------------------------------------

ngx_int_t metrics_handler(ngx_http_request_t* r) {
  const decide_state& s = decide_of(r);
  if (!s.health) return NGX_HTTP_NOT_FOUND;
  return serve_page(r, "text/plain; version=0.0.4; charset=utf-8", [&s] {
    std::string page;
    grayroute::write_health_metrics(page, *s.health, *s.routes, now_ms());
    write_request_metrics(page, s);
    return page;
  });
}

ngx_shm_zone_t* add_zone(ngx_conf_t* cf, decide_state& s, std::string_view name, std::size_t size) {
  ngx_str_t zone_name{name.size(), static_cast<u_char*>(ngx_pnalloc(cf->pool, name.size()))};
  if (!zone_name.data) return nullptr;
  ngx_memcpy(zone_name.data, name.data(), name.size());
  ngx_shm_zone_t* zone = ngx_shared_memory_add(cf, &zone_name, size, &ngx_http_grayroute_module);
  if (!zone) return nullptr;
  if (zone->data && zone->data != &s) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "grayroute_health: zone \"%V\" is already used", &zone_name);
    return nullptr;
  }
  zone->init = init_zone;
  zone->data = &s;
  return zone;
}

}  // namespace

// ---- directives ----------------------------------------------------------------------

char* set_health(ngx_conf_t* cf, ngx_command_t*, void*) {
  try {
    decide_state& s = decide_of(cf);
    if (s.health_set) return conf_duplicate();
    const auto* args = static_cast<ngx_str_t*>(cf->args->elts);
    std::string words;
    std::string_view zone_name = kDefaultZone;
    std::size_t zone_size = kDefaultZoneSize;
    for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) {
      const std::string_view word = to_view(args[i]);
      if (word.substr(0, 5) != "zone=") {
        words.append(word).append(" ");
        continue;
      }
      // zone=NAME:SIZE, as limit_req_zone and upstream zone spell it.
      const std::string_view spec = word.substr(5);
      const std::size_t colon = spec.rfind(':');
      ngx_str_t size_text{colon == std::string_view::npos ? 0 : spec.size() - colon - 1,
                          args[i].data + 5 + (colon == std::string_view::npos ? 0 : colon + 1)};
      const ssize_t size = size_text.len ? ngx_parse_size(&size_text) : NGX_ERROR;
      if (colon == 0 || colon == std::string_view::npos || size == NGX_ERROR) {
        return conf_error(cf, "grayroute_health: \"" + std::string(word) + "\" is not zone=NAME:SIZE (e.g. zone=grayroute_health:128k)");
      }
      if (static_cast<std::size_t>(size) < 8 * ngx_pagesize) {
        return conf_error(cf, "grayroute_health: zone \"" + std::string(spec.substr(0, colon)) + "\" is too small (at least " +
                                      std::to_string(8 * ngx_pagesize / 1024) + "k)");
      }
      zone_name = spec.substr(0, colon);
      zone_size = static_cast<std::size_t>(size);
    }
    s.health_config = grayroute::parse_health(words);  // throws naming the word
    s.health_set = true;
    s.zone = add_zone(cf, s, zone_name, zone_size);
    return s.zone ? NGX_CONF_OK : static_cast<char*>(NGX_CONF_ERROR);
  } catch (const std::exception& e) {
    return conf_error(cf, e.what());  // "grayroute: health: ..." naming the word
  }
}

char* set_metrics(ngx_conf_t* cf, ngx_command_t*, void*) {
  auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
  clcf->handler = metrics_handler;
  decide_of(cf).metrics_used = true;
  return NGX_CONF_OK;
}

std::vector<grayroute::route_id> health_routes(decide_state& s, const grayroute::route_table& routes) {
  std::vector<grayroute::route_id> ids;
  for (const std::string& name : routes.names()) {
    std::size_t id = 0;
    while (id < s.route_names.size() && s.route_names[id] != name) ++id;
    if (id == s.route_names.size()) s.route_names.push_back(name);
    ids.push_back(static_cast<grayroute::route_id>(id));
  }
  return ids;
}

ngx_int_t finish_decide_config(ngx_conf_t* cf, decide_state& s, bool routing) {
  try {
    s.routes = std::make_unique<grayroute::route_table>(s.route_names);
  } catch (const std::exception& e) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "grayroute_routes: %s", e.what());
    return NGX_ERROR;
  }
  // On by default: routing without grayroute_health gets a zone with the defaults.
  if (!s.zone && (routing || s.metrics_used)) s.zone = add_zone(cf, s, kDefaultZone, kDefaultZoneSize);
  if (!s.zone && (routing || s.metrics_used)) return NGX_ERROR;
  if (!s.zone) return NGX_OK;
  auto* cmcf = static_cast<ngx_http_core_main_conf_t*>(ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module));
  auto* handler = static_cast<ngx_http_handler_pt*>(ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers));
  if (!handler) return NGX_ERROR;
  *handler = log_handler;
  next_header_filter = ngx_http_top_header_filter;
  ngx_http_top_header_filter = header_filter;
  return NGX_OK;
}

std::string health_json(const decide_state& s) {
  if (!s.health) return "null";
  std::string out = "[";
  for (std::size_t r = 0; r < s.health->size(); ++r) {
    const auto id = static_cast<grayroute::route_id>(r);
    const grayroute::health_snapshot snap = s.health->snapshot(id, now_ms());
    // Route names are tokens (route_table): nothing to escape.
    out.append(r ? "," : "").append("{\"route\":\"").append(s.routes->name(id)).append("\",\"state\":\"");
    out.append(to_string(snap.state)).append("\",\"window_outcomes\":").append(std::to_string(snap.window_requests));
    out.append(",\"window_errors\":").append(std::to_string(snap.window_errors)).append("}");
  }
  return out + "]";
}

// ---- the request path ------------------------------------------------------------------

void guard_health(ngx_http_request_t* r, decide_state& s, const std::vector<grayroute::route_id>& health_route,
                  grayroute::decision& d) noexcept {
  if (!s.health || d.route >= health_route.size()) return;
  // Asked in the zone's ids; the fallback is the deciding rule's (fallback=), else the
  // location's first route.
  const grayroute::route_id to = d.fallback_route.value_or(grayroute::kProduction);
  if (to >= health_route.size()) return;
  grayroute::decision shared = d;
  shared.route = health_route[d.route];
  shared.fallback_route = health_route[to];
  shared = grayroute::apply_health(shared, *s.health, now_ms());
  if (shared.reason == grayroute::route_reason::fallback) {
    d.original_route = d.route;
    d.route = to;
    d.reason = grayroute::route_reason::fallback;
  }
  auto* note = static_cast<routed_note*>(ngx_palloc(r->pool, sizeof(routed_note)));
  if (!note) return;  // the outcome goes unrecorded; the request is still served
  note->link = ngx_pool_cleanup_t{routed_marker, note, r->pool->cleanup};
  note->request = r;
  note->first_state = r->upstream_states ? static_cast<std::uint32_t>(r->upstream_states->nelts) : 0;
  note->route = shared.route;
  note->reason = d.reason;
  note->done = 0;
  r->pool->cleanup = &note->link;
}

}  // namespace grayroute_nginx
