// grayroute: gray release (canary) routing for C++ gateways. What a decision needs, in
// one include. Opt-in parts have their own headers, so a translation unit that does not
// use them does not pay for them: Redis (redis_store.hpp), route health and fallback
// (health_table.hpp, health_metrics.hpp, health_syntax.hpp), policy reloads
// (shared_policy.hpp), decision tokens (decision_token.hpp), PROXY protocol
// (proxy_protocol.hpp), pin cookies (set_cookie.hpp, random_id.hpp), ramps
// (weight_schedule.hpp), list files (list_file.hpp).
#ifndef GRAYROUTE_GRAYROUTE_HPP
#define GRAYROUTE_GRAYROUTE_HPP

#include "client_ip.hpp"
#include "config_error.hpp"
#include "cookie.hpp"
#include "decision.hpp"
#include "forwarded.hpp"
#include "headers.hpp"
#include "ip.hpp"
#include "layered_store.hpp"
#include "list_text.hpp"
#include "memory_store.hpp"
#include "policy.hpp"
#include "policy_config.hpp"
#include "policy_syntax.hpp"
#include "rollout.hpp"
#include "route_table.hpp"
#include "router.hpp"
#include "store.hpp"
#include "version.hpp"

#endif  // GRAYROUTE_GRAYROUTE_HPP
