// grayroute: gray release (canary) routing for C++ gateways. The whole core, in
// one include; Redis support is separate (grayroute/redis_store.hpp).
#ifndef GRAYROUTE_GRAYROUTE_HPP
#define GRAYROUTE_GRAYROUTE_HPP

#include "client_ip.hpp"
#include "config_error.hpp"
#include "cookie.hpp"
#include "decision.hpp"
#include "decision_token.hpp"
#include "forwarded.hpp"
#include "headers.hpp"
#include "health_metrics.hpp"
#include "health_syntax.hpp"
#include "health_table.hpp"
#include "ip.hpp"
#include "layered_store.hpp"
#include "list_text.hpp"
#include "memory_store.hpp"
#include "policy.hpp"
#include "policy_config.hpp"
#include "policy_syntax.hpp"
#include "proxy_protocol.hpp"
#include "rollout.hpp"
#include "route_health.hpp"
#include "route_table.hpp"
#include "router.hpp"
#include "set_cookie.hpp"
#include "shared_policy.hpp"
#include "store.hpp"
#include "version.hpp"
#include "weight_schedule.hpp"

#endif  // GRAYROUTE_GRAYROUTE_HPP
