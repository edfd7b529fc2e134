// ngx_http_grayroute_module without hiredis: grayroute_redis is refused when the
// configuration is read (the directive asks redis_built_in()), so
// nothing here ever has a store to start.
extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <string>

#include "ngx_http_grayroute_conf.hpp"

namespace grayroute_nginx {

bool redis_built_in() noexcept { return false; }
void start_redis(ngx_cycle_t*, main_state&) {}
void stop_redis(ngx_cycle_t*, main_state&) {}
redis_report read_redis(const list_state&) { return {}; }

}  // namespace grayroute_nginx
