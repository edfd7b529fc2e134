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
// - Pinning (random_id.hpp, set_cookie.hpp). A request with none of the key sources of
//   the policy's splits (headers, cookies, arguments; the pin cookie is one of them) gets
//   a random id, passed to the policy as the given key, and the response sets it as the
//   pin cookie, whichever route it got, so the split keeps its weight. with_pin_key() puts
//   the pin cookie in every split rule's key list: where the rule lists `cookie:NAME`
//   (the pin cookie's name), with the drawn id just before it; else before the client
//   address (or at the end).
// - Ramps are the library's (a split share with a weight_schedule, policy_config.hpp);
//   append_status() shows each scheduled share's weight now and its next step.
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
#include <grayroute/policy.hpp>
#include <grayroute/set_cookie.hpp>

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

/// Adds the pin cookie `pin_cookie` (the --pin-cookie / pin_cookie words; "": none) to
/// every split rule's key list (see above) and returns the key sources of all the splits
/// but the client address: a request with none of them present draws a pin.
std::vector<grayroute::key_source> with_pin_key(grayroute::policy_config& config, const std::string& pin_cookie);

class decision_tier {
 public:
  /// Reads the key files and checks every option; throws config_error (or
  /// std::runtime_error) naming the option and the value.
  explicit decision_tier(const consistency_options& options);

  bool has_keys() const noexcept { return keys_.has_value(); }
  bool pins() const noexcept { return pin_.has_value(); }

  /// Before the policy decides: takes the decision header out of `req` (verifying it
  /// against the routes of `policy` when `peer_trusted`), and finds one of the `keys`
  /// (with_pin_key's) or draws a pin. `now` in Unix seconds.
  tier_request admit(http::request_header<>& req, bool peer_trusted, std::int64_t now, const grayroute::policy& policy,
                     const std::vector<grayroute::key_source>& keys) const noexcept;

  /// After the policy: a believed token replaces the decision (reason `upstream`, its rule).
  void settle(grayroute::decision& d, const tier_request& t) const noexcept;

  /// After plan_request: the token for the tier behind us (the one obeyed, or our own).
  void forward(http::request_header<>& req, const grayroute::decision& d, const tier_request& t,
               const grayroute::policy& policy, std::int64_t now) const;

  /// On the response to the client: the pin cookie for a newly drawn id.
  void respond(http::response_header<>& res, const tier_request& t) const;

  /// `"decision_tokens":{...}`, `"pin_cookie":...` and `"ramps":[...]` (each scheduled
  /// share: rule, route, weight now, next step) added to a JSON object's text.
  void append_status(std::string& json, const grayroute::policy& policy) const;

  /// Lines for the start-up log: tokens (or that client tokens are removed), pin.
  std::string describe() const;

 private:
  std::optional<grayroute::decision_keys> keys_;
  std::string header_;
  std::int64_t ttl_;
  std::uint64_t policy_version_;
  std::optional<grayroute::set_cookie_builder> pin_;
  std::string key_files_;
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_DECISION_TIER_HPP
