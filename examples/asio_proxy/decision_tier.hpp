// Consistent decisions in grayroute-proxy (issue 13): what happens to a request before
// and after the router decides, as pure functions of the header, the peer and the time,
// like forwarding.hpp's (tests/proxy_decision_tier_test.cpp calls them without sockets).
//
// - Decision tokens (decision_token.hpp). A token in the decision header is believed only
//   when the peer is a trusted proxy (--trusted-proxy; the PROXY-protocol source when the
//   listener has one) and it verifies under this tier's keys, is unexpired and names one
//   of this tier's routes: then it IS the decision (reason `upstream`, the token's rule
//   kept). Whatever the client sent in that header is removed before proxying, believed
//   or not; a tier holding keys sends upstream the token it obeyed, unchanged (so a third
//   tier obeys the same decision), or else a token of its own decision.
// - Pinning (random_id.hpp, set_cookie.hpp). A request with none of the rollout keys (the
//   --percent-key header, the pin cookie) gets a random id as its key, and the response
//   sets it as the pin cookie, whichever route it got, so the split keeps its weight.
// - A ramp (weight_schedule.hpp). The two-route split's weight is read from the wall
//   clock per request; it decides where the router's own percentage would (after forced
//   routes and the list, before the default), with the library's fine buckets.
#ifndef GRAYROUTE_PROXY_DECISION_TIER_HPP
#define GRAYROUTE_PROXY_DECISION_TIER_HPP

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/message.hpp>

#include <grayroute/decision_token.hpp>
#include <grayroute/random_id.hpp>
#include <grayroute/route_table.hpp>
#include <grayroute/router.hpp>
#include <grayroute/set_cookie.hpp>
#include <grayroute/weight_schedule.hpp>

#include "consistency_options.hpp"

namespace grayroute_proxy {

namespace http = boost::beast::http;

/// "name=gr_uid max_age=86400 domain=example.com path=/ secure httponly=off samesite=lax":
/// words separated by spaces; throws config_error naming the bad word.
[[nodiscard]] grayroute::set_cookie_config parse_pin_cookie(std::string_view text);

/// What one request brought and drew, between admit() and respond(). No allocation.
struct tier_request {
  bool had_token = false;                 ///< a decision header came in (and was removed)
  bool honoured = false;                  ///< valid from a trusted peer: it is the decision
  grayroute::route_id token_route = grayroute::kProduction;
  std::optional<grayroute::anonymous_id> pin;  ///< a new id: the key now, the cookie later
  std::string_view key;                   ///< the rollout key found in the request, if any

  /// Why a token that came was not obeyed, for the log: "untrusted_peer", "no_key",
  /// "several", "bad_mac", "expired", ... (a static string); "" when obeyed or none came.
  std::string_view token_refusal;

  /// The token text as it came (kept to pass on and to hold the rule name), and its rule.
  /// Offsets, not views, so that a tier_request can be copied.
  std::string_view token() const noexcept { return {token_text_.data(), token_size_}; }
  std::string_view token_rule() const noexcept { return token().substr(rule_offset_, rule_size_); }
  /// The key the split hashes: the request's, the new pin, or "" (the client address).
  std::string_view rollout_key() const noexcept { return pin ? pin->view() : key; }

 private:
  std::array<char, grayroute::kMaxDecisionTokenLength> token_text_{};
  std::size_t token_size_ = 0, rule_offset_ = 0, rule_size_ = 0;
  friend class decision_tier;
};

class decision_tier {
 public:
  /// Reads the key files and checks every option against the routing flags; throws
  /// config_error (or std::runtime_error) naming the flag and the value.
  decision_tier(const consistency_options& options, const grayroute::router_config& routing);

  /// The router's configuration with this tier's needs: the pin cookie as the rollout
  /// cookie; the percentage left to the ramp when there is one.
  const grayroute::router_config& routing() const noexcept { return routing_; }

  bool has_keys() const noexcept { return keys_.has_value(); }
  bool pins() const noexcept { return pin_.has_value(); }
  bool ramps() const noexcept { return ramp_.has_value(); }

  /// Before the router: takes the decision header out of `req` (verifying it when
  /// `peer_trusted`), and finds the rollout key or draws a pin. `now` in Unix seconds.
  tier_request admit(http::request_header<>& req, bool peer_trusted, std::int64_t now) const noexcept;

  /// After the router: a believed token replaces the decision; else the ramp decides
  /// where the router fell through to its default. `now_ms` in Unix milliseconds.
  void settle(grayroute::decision& d, const tier_request& t, std::int64_t now_ms) const noexcept;

  /// After plan_request: the token for the tier behind us (the one obeyed, or our own).
  void forward(http::request_header<>& req, const grayroute::decision& d, const tier_request& t,
               std::int64_t now) const;

  /// On the response to the client: the pin cookie for a newly drawn id.
  void respond(http::response_header<>& res, const tier_request& t) const;

  /// `"ramp":{...}` (current weight and next step), `"decision_tokens":{...}`,
  /// `"pin_cookie":...` for the status JSON; "" when none is configured.
  std::string status_json(std::int64_t now_ms) const;
  /// Adds status_json() to a JSON object's text (before its closing brace).
  void append_status(std::string& json, std::int64_t now_ms) const;

  /// Lines for the start-up log: tokens (or that client tokens are removed), pin, ramp.
  std::string describe() const;

 private:
  grayroute::router_config routing_;
  grayroute::route_table routes_;
  std::optional<grayroute::decision_keys> keys_;
  std::string header_;
  std::int64_t ttl_;
  std::uint64_t policy_version_;
  std::optional<grayroute::set_cookie_builder> pin_;
  std::optional<grayroute::weight_schedule> ramp_;
  grayroute::route_id ramp_route_ = grayroute::kGray;
  std::string key_files_;
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_DECISION_TIER_HPP
