// The core builds and routes with exceptions turned off (-fno-exceptions), as
// gateways such as nginx modules often compile; and a configuration error then does
// what the README promises: the message on stderr, then abort().
#include <grayroute/grayroute.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

namespace {

bool routes() {
  grayroute::memory_store store;
  store.insert(*grayroute::parse_network("10.0.0.0/8"));
  grayroute::router_config config;
  config.client_ip.trusted_proxies = {"127.0.0.1"};
  grayroute::router<grayroute::memory_store> router(store, config);
  const std::vector<grayroute::header> headers = {{"X-Forwarded-For", "10.1.2.3"}};
  const auto d = router.decide(*grayroute::parse_ip("127.0.0.1"), headers);
  return d.route == grayroute::kGray && d.reason == grayroute::route_reason::list;
}

// Builds a router from a bad configuration in a child process; true when the child
// aborted and its stderr was exactly the message naming the value.
bool bad_configuration_aborts_with_message() {
  int out[2];
  if (::pipe(out) != 0) return false;
  const pid_t child = ::fork();
  if (child < 0) return false;
  if (child == 0) {
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);  // an expected abort leaves no core file behind
    ::dup2(out[1], 2);
    ::close(out[0]);
    grayroute::memory_store store;
    grayroute::router_config config;
    config.client_ip.trusted_proxies = {"10.0.0.1/8"};
    grayroute::router<grayroute::memory_store> router(store, config);
    std::printf("no abort\n");
    ::_exit(0);  // not reached when the library keeps its promise
  }
  ::close(out[1]);
  std::string text;
  char buffer[512];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  if (::waitpid(child, &status, 0) != child) return false;
  const std::string expected =
      "grayroute: trusted proxy \"10.0.0.1/8\" is not an address or network (a network must have no host bits set)\n";
  const bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  if (!aborted || text != expected) {
    std::printf("child: %s, stderr: %s", aborted ? "aborted" : "did not abort", text.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main() {
  const bool ok_routes = routes();
  const bool ok_abort = bad_configuration_aborts_with_message();
  std::printf("routes: %s\nbad configuration aborts with its message: %s\n", ok_routes ? "ok" : "WRONG",
              ok_abort ? "ok" : "WRONG");
  return ok_routes && ok_abort ? 0 : 1;
}
