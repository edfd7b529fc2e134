// What the routing decision costs grayroute-proxy per request, beside what the proxy
// spends anyway on the same request: Beast parsing its header.
//
//   BM_Proxy_ParseRequestHeader   baseline: Beast parses the header wrk sends
//   BM_Proxy_Decide               router.decide on those parsed fields, 10k-network list
//   BM_Proxy_DecideUntrustedPeer  the same from a peer whose headers are not read
//
// The request's whole CPU cost (about 20-30 µs on loopback, see bench/proxy_wrk.sh)
// is the denominator for "the decision is under 2% of a request".
#include <benchmark/benchmark.h>

#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <grayroute/memory_store.hpp>
#include <grayroute/router.hpp>

namespace {

namespace http = boost::beast::http;

const std::string kRequest =
    "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n"
    "X-Forwarded-For: 10.3.7.9, 203.0.113.9\r\nCookie: session=abc; theme=dark\r\n\r\n";

http::request<http::empty_body> parsed_request() {
  http::request_parser<http::empty_body> parser;
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(kRequest), ec);
  return parser.release();
}

grayroute::memory_store& list_of_10k() {
  static grayroute::memory_store store = [] {
    std::vector<grayroute::store_entry> entries;
    for (std::uint32_t i = 0; i < 10000; ++i) {
      const auto address = grayroute::ip_address::v4((10u << 24) | ((i / 256 % 256) << 16) | (i % 256) << 8);
      entries.push_back({*grayroute::ip_network::make(address, 24), grayroute::kGray});
    }
    return grayroute::memory_store(entries);
  }();
  return store;
}

void BM_Proxy_ParseRequestHeader(benchmark::State& state) {
  for (auto _ : state) {
    http::request_parser<http::empty_body> parser;
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(kRequest), ec);
    benchmark::DoNotOptimize(parser.get().target().size());
  }
  state.SetItemsProcessed(state.iterations());
}

void decide(benchmark::State& state, const char* peer) {
  grayroute::router_config config;
  config.client_ip.trusted_proxies = {"127.0.0.1/32"};
  config.force_header = "X-Canary";
  config.force_cookie = "canary";
  const grayroute::router<grayroute::memory_store> router(list_of_10k(), config);
  const auto request = parsed_request();
  const http::fields& headers = request;
  const auto address = *grayroute::parse_ip(peer);
  for (auto _ : state) benchmark::DoNotOptimize(router.decide(address, headers));
  state.SetItemsProcessed(state.iterations());
}

void BM_Proxy_Decide(benchmark::State& state) { decide(state, "127.0.0.1"); }
void BM_Proxy_DecideUntrustedPeer(benchmark::State& state) { decide(state, "192.0.2.1"); }

}  // namespace

BENCHMARK(BM_Proxy_ParseRequestHeader);
BENCHMARK(BM_Proxy_Decide);
BENCHMARK(BM_Proxy_DecideUntrustedPeer);
BENCHMARK_MAIN();
