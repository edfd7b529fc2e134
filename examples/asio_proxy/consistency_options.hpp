// The options of issue 13 (decision tokens, pinning, ramps, PROXY protocol) as a plain
// struct, apart from the code that uses them so that main.cpp includes no Beast.
#ifndef GRAYROUTE_PROXY_CONSISTENCY_OPTIONS_HPP
#define GRAYROUTE_PROXY_CONSISTENCY_OPTIONS_HPP

#include <cstdint>
#include <string>
#include <vector>

namespace grayroute_proxy {

/// The flags of issue 13, as given (checked by decision_tier's constructor).
struct consistency_options {
  /// One file (one key, or the signing key then the previous one) or two files (the
  /// signing key's, then the previous key's, one key each). Empty: no tokens.
  std::vector<std::string> decision_key_files;
  std::string decision_header = "Grayroute-Decision";  ///< grayroute::kDecisionHeader
  std::int64_t decision_ttl = 60;   ///< seconds a token this tier signs stays good
  std::uint64_t policy_version = 0; ///< written into the tokens this tier signs
  std::string pin_cookie;           ///< "name=gr_uid max_age=31536000 path=/ secure httponly samesite=lax"; "": off
  std::string percent_schedule;     ///< "2026-12-01T10:00:00Z 1%, +1h 5%, +2h 100%"; "": the fixed --percent
  std::string percent_ramp = "steps";  ///< steps | linear
  std::vector<std::string> proxy_protocol_from;  ///< balancer networks (proxy_protocol_accept.hpp)
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_CONSISTENCY_OPTIONS_HPP
