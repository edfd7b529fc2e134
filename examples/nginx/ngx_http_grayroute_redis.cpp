// ngx_http_grayroute_module: each worker's Redis store (grayroute_redis), compiled in
// when hiredis is there (the module's `config`); ngx_http_grayroute_no_redis.cpp
// stands in otherwise.
//
// Every worker owns one grayroute::redis_store, created in init_process and destroyed
// in exit_process. The store keeps a snapshot in memory and syncs it on its own thread
// (one per worker, with all signals blocked so nginx's signals still reach the event
// loop), so a request only reads memory and never waits on Redis. A reload starts new
// workers with new stores; old workers destroy theirs (joining the thread, closing the
// connection) when they exit.
extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include <grayroute/redis_store.hpp>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {
namespace {

// A wrong Redis password is logged once when it starts, then at most every ten
// minutes while it lasts: the sync thread retries every few seconds, the log must not.
constexpr ngx_msec_t kCredentialsCheck = 1000, kCredentialsRepeat = 600000;

void check_redis_credentials(ngx_event_t* ev) {
  auto* m = static_cast<list_state*>(ev->data);
  if (!m->redis_store) return;
  const grayroute::redis_status status = m->redis_store->status();
  if (status.credentials_refused()) {
    if (!m->credentials_logged || ngx_current_msec - m->credentials_logged_at >= kCredentialsRepeat) {
      ngx_log_error(NGX_LOG_ERR, ev->log, 0, "grayroute: Redis refused the credentials (check password=): %s",
                    status.last_error.c_str());
      m->credentials_logged = true;
      m->credentials_logged_at = ngx_current_msec;
    }
  } else if (status.connected) {
    m->credentials_logged = false;
  }
  ngx_add_timer(ev, kCredentialsCheck);
}

// Without snapshot= the store still keeps one, in the client body temp directory that
// nginx creates for its workers: workers started by a reload while Redis is down begin
// from the list the old workers had, not from an empty one. (snapshot= names a file
// that also survives restarts.) One file per list, named by a hash of where the list
// lives — never of the password.
std::string default_snapshot_file(ngx_cycle_t* cycle, const list_state& list, const grayroute::redis_config& config) {
  auto* cmcf = static_cast<ngx_http_core_main_conf_t*>(ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module));
  if (!cmcf || cmcf->servers.nelts == 0) return {};
  auto* const* servers = static_cast<ngx_http_core_srv_conf_t**>(cmcf->servers.elts);
  auto* clcf = static_cast<ngx_http_core_loc_conf_t*>(servers[0]->ctx->loc_conf[ngx_http_core_module.ctx_index]);
  if (!clcf || !clcf->client_body_temp_path) return {};
  const std::string where = config.unix_socket + "|" + config.host + "|" + std::to_string(config.port) + "|" +
                            std::to_string(config.database) + "|" +
                            std::to_string(static_cast<int>(config.schema)) + "|" + config.key +
                            (list.name.empty() ? "" : "|" + list.name);
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a
  for (const char c : where) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  char name[48];
  std::snprintf(name, sizeof name, "/grayroute-%016llx.snapshot", static_cast<unsigned long long>(hash));
  return to_string(clcf->client_body_temp_path->name) + name;
}

}  // namespace

bool redis_built_in() noexcept { return true; }

void start_redis(ngx_cycle_t* cycle, main_state& m) {
  // The sync threads inherit this mask: signals for the worker (QUIT, TERM, HUP,
  // USR1) must go to the event-loop thread, whose handlers nginx relies on.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  for (const auto& list : m.lists) {
    if (!list->redis) continue;
    const std::string which = list->name.empty() ? "the gray list" : "list \"" + list->name + "\"";
    try {
      grayroute::redis_config config = *list->redis;
      if (config.snapshot_file.empty()) config.snapshot_file = default_snapshot_file(cycle, *list, config);
      list->redis_store = std::make_shared<grayroute::redis_store>(std::move(config));
      list->redis_layer.attach(grayroute::store_ref(*list->redis_store));
      ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0, "grayroute: worker %P syncing %s from %s", ngx_pid, which.c_str(),
                    grayroute::redact(*list->redis).c_str());
      list->credentials_timer.handler = check_redis_credentials;
      list->credentials_timer.data = list.get();
      list->credentials_timer.log = cycle->log;
      list->credentials_timer.cancelable = 1;  // never holds up a graceful shutdown
      ngx_add_timer(&list->credentials_timer, kCredentialsCheck);
    } catch (const std::exception& e) {
      // A worker without Redis still serves, from the other layers and the defaults.
      ngx_log_error(NGX_LOG_ALERT, cycle->log, 0, "grayroute: no Redis store for %s in worker %P: %s", which.c_str(), ngx_pid,
                    e.what());
    }
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void stop_redis(ngx_cycle_t* cycle, main_state& m) {
  for (const auto& list : m.lists) {
    if (!list->redis_store) continue;
    if (list->credentials_timer.timer_set) ngx_del_timer(&list->credentials_timer);
    list->redis_layer.detach();
    list->redis_store.reset();  // joins the sync thread and closes the connection
    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0, "grayroute: worker %P stopped its Redis sync", ngx_pid);
  }
}

redis_report read_redis(const list_state& l) {
  if (!l.redis_store) return {{}, l.redis ? "{\"configured\":true,\"running\":false}" : "null"};
  const grayroute::redis_status status = l.redis_store->status();
  return {status.problem(), grayroute::to_json(status)};
}

}  // namespace grayroute_nginx
