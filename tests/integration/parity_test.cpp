// One model, proven (issue 9): the same policy as nginx directives and as
// grayroute-proxy's TOML file, the same lists (qa.txt and a real redis-server with
// seed-schema keys behind requirepass), then 2,000 generated requests sent to both.
// Route, reason and rule in the X-Grayroute response header must be identical for
// every request.
//
// Needs `grayroute-proxy --config FILE`; a proxy without it makes this program exit 77,
// which CTest reports as skipped (SKIP_RETURN_CODE), never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../support/nginx.hpp"
#include "../support/process.hpp"
#include "policy_example.hpp"

using namespace grayroute::test;

namespace {

constexpr int kSkipped = 77;

bool proxy_reads_policy_files() {
  const auto [status, output] = run_command(std::string(GRAYROUTE_PROXY_BIN) + " --help");
  (void)status;
  return output.find("--config") != std::string::npos;
}

// A gateway has synced its Redis list once a seed client is routed by it.
bool synced(int port) {
  const example::request probe{"www.example.com", "/", {{"X-Forwarded-For", example::seed_addresses().front()}}};
  return eventually([&] { return example::grayroute_header(example::send(port, probe)) == "gray; reason=list; rule=seed"; },
                    std::chrono::seconds(10));
}

}  // namespace

TEST_SUITE("parity") {
  TEST_CASE("nginx and grayroute-proxy decide 2,000 generated requests identically") {
    temp_dir dir;
    redis_server redis(dir, redis_server::options{example::kRedisPassword, false});
    const std::string qa_path = example::write_lists(dir, redis);

    nginx_server nginx(dir, "", "", nginx_server::options{{"production", "gray", "beta"}, 1, false});
    const auto& b = nginx.backends();
    nginx.write_config(example::nginx_http(qa_path, redis, b[0].port, b[1].port, b[2].port), example::nginx_location());
    nginx.start();

    // The proxy forwards to the same three backends (served by the nginx above).
    const int proxy_port = free_port();
    dir.write("policy.toml", example::proxy_toml(proxy_port, qa_path, redis, b[0].port, b[1].port, b[2].port));
    process proxy({GRAYROUTE_PROXY_BIN, "--config", dir.file("policy.toml")}, dir.file("proxy.log"));
    REQUIRE_MESSAGE(wait_for_port(proxy_port), proxy.log());

    REQUIRE_MESSAGE(synced(nginx.port()), nginx.error_log());
    REQUIRE_MESSAGE(synced(proxy_port), proxy.log());

    const std::vector<example::request> requests = example::generate(2000, 2026);
    int mismatches = 0;
    std::vector<int> per_reason(3, 0);  // list, percentage, match: the generator must reach every rule
    for (const example::request& r : requests) {
      const std::string from_nginx = example::grayroute_header(example::send(nginx.port(), r));
      const std::string from_proxy = example::grayroute_header(example::send(proxy_port, r));
      if (from_nginx.find("reason=list") != std::string::npos) ++per_reason[0];
      if (from_nginx.find("reason=percentage") != std::string::npos) ++per_reason[1];
      if (from_nginx.find("reason=match") != std::string::npos) ++per_reason[2];
      if (from_nginx != from_proxy || from_nginx.empty()) {
        // Every request is checked; only the first few differences are spelled out.
        if (++mismatches <= 10) {
          CAPTURE(r.describe());
          CHECK(from_nginx == from_proxy);
          CHECK_FALSE(from_nginx.empty());
        }
      }
    }
    MESSAGE(requests.size() << " requests; nginx decided by list " << per_reason[0] << ", percentage " << per_reason[1]
                            << ", match " << per_reason[2] << "; " << mismatches << " differ from the proxy");
    CHECK(mismatches == 0);
    CHECK(per_reason[0] > 100);
    CHECK(per_reason[1] > 10);
    CHECK(per_reason[2] > 10);
  }
}

int main(int argc, char** argv) {
  if (!proxy_reads_policy_files()) {
    std::printf("parity_test: skipped: %s has no --config FILE (the proxy half of issue 9)\n", GRAYROUTE_PROXY_BIN);
    return kSkipped;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
