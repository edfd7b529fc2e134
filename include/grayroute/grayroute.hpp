// grayroute: gray release (canary) routing for C++ gateways. What a decision with a
// router needs, in one include: addresses, client-IP resolution, the in-memory gray
// list, the rollout and the router. It costs under 3x what <string>, <vector>,
// <optional> and <string_view> cost to compile (README, "What it costs your build";
// bench/include_cost.sh, CTest include_cost). Opt-in parts have their own headers, so
// a translation unit that does not use them does not pay for them: the policy model
// (policy.hpp, which brings policy_config.hpp, policy_syntax.hpp, route_table.hpp and
// layered_store.hpp), list text and files (list_text.hpp, list_file.hpp), Redis
// (redis_store.hpp), route health and fallback (health_table.hpp, health_metrics.hpp,
// health_syntax.hpp), policy reloads (shared_policy.hpp), decision tokens
// (decision_token.hpp), PROXY protocol (proxy_protocol.hpp), pin cookies
// (set_cookie.hpp, random_id.hpp), ramps (weight_schedule.hpp).
#ifndef GRAYROUTE_GRAYROUTE_HPP
#define GRAYROUTE_GRAYROUTE_HPP

#include "client_ip.hpp"
#include "config_error.hpp"
#include "cookie.hpp"
#include "decision.hpp"
#include "forwarded.hpp"
#include "headers.hpp"
#include "ip.hpp"
#include "memory_store.hpp"
#include "rollout.hpp"
#include "router.hpp"
#include "store.hpp"
#include "version.hpp"

#endif  // GRAYROUTE_GRAYROUTE_HPP
