// parse_rule + policy: any rule line is either rejected with config_error or compiles
// into a policy whose decisions name a route it has and, when a rule decided, that rule.
#include <grayroute/memory_store.hpp>
#include <grayroute/policy.hpp>
#include <grayroute/policy_syntax.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The request is the input's second line, if any: host, path, header values.
  const std::size_t newline = text.find('\n');
  const std::string_view line = text.substr(0, newline);
  const std::string_view request = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
  static const grayroute::memory_store qa(std::vector<grayroute::store_entry>{
      {*grayroute::parse_network("10.0.0.0/8"), 2}, {*grayroute::parse_network("2001:db8::/32"), 9}});
  grayroute::policy_config config;
  config.routes = {"production", "gray", "beta"};
  config.client_ip.trusted_proxies = {"127.0.0.1"};
  config.lists.push_back({"qa", {grayroute::store_ref(qa)}});
  try {
    config.rules.push_back(grayroute::parse_rule(line));
    const grayroute::policy policy(config);
    const std::vector<grayroute::header> headers = {
        {"Host", request}, {"X-Forwarded-For", request}, {"Cookie", request}, {"X-Beta", request}, {"X-User-Id", request}};
    for (const char* peer : {"127.0.0.1", "10.1.2.3", "2001:db8::1"}) {
      const grayroute::request_view view(*grayroute::parse_ip(peer), request, request, request, request);
      const grayroute::decision d = policy.decide(view, headers);
      if (d.route >= 3) std::abort();
      if (!d.rule.empty() && d.rule != config.rules.front().name) std::abort();
    }
  } catch (const grayroute::config_error&) {
  }
  return 0;
}
