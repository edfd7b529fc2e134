// Client-IP resolution and the full decision, against what a gateway writes by hand:
// split the header into strings, inet_pton each hop, look the text up in a hash set;
// and the decision against the sum of its parts, each benchmarked alone.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <grayroute/grayroute.hpp>

#include <memory>
#include <sstream>
#include <string>
#include <unordered_set>

#include "inputs.hpp"

namespace {

using grayroute::header;
using grayroute::ip_address;
using grayroute::bench::kTableSize;

constexpr std::size_t kHosts = 1000000;
// Requests (or clients) taken over and over, a power of two: kTableSize, every client
// cold; kHotClients, the working set of real traffic (the lookup target's "hot").
constexpr std::size_t kHotClients = 1 << 16;

// One request as a gateway sees it: a few ordinary headers and X-Forwarded-For with
// three hops, the client first and two of our proxies after it.
struct request {
  std::string xff;
  std::vector<header> headers;
};

struct fixture {
  std::vector<std::uint32_t> listed = grayroute::bench::distinct_v4(kHosts, 21);
  std::vector<std::uint32_t> unlisted =
      grayroute::bench::distinct_v4(kHosts, 22, std::unordered_set<std::uint32_t>(listed.begin(), listed.end()));
  grayroute::memory_store store{[this] {
    std::vector<grayroute::store_entry> e;
    for (auto v : listed) e.push_back({grayroute::ip_network::host(ip_address::v4(v)), grayroute::kGray});
    return e;
  }()};
  std::unordered_set<std::string> listed_text = [this] {
    std::unordered_set<std::string> s;
    for (auto v : listed) s.insert(to_string(ip_address::v4(v)));
    return s;
  }();
  ip_address peer = *grayroute::parse_ip("10.0.0.3");

  std::vector<request> requests(double hit_share, std::uint32_t seed) const {
    std::vector<request> out(kTableSize);
    const auto clients = grayroute::bench::queries(listed, unlisted, hit_share, kTableSize, seed);
    for (std::size_t i = 0; i < kTableSize; ++i) {
      out[i].xff = to_string(ip_address::v4(clients[i])) + ", 10.0.0." + std::to_string(1 + i % 200) + ", 10.0.0.2";
    }
    for (auto& r : out) {
      r.headers = {{"Host", "shop.example.com"},
                   {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"},
                   {"Accept", "text/html,application/xhtml+xml"},
                   {"Accept-Encoding", "gzip, deflate, br"},
                   {"X-Forwarded-For", r.xff},
                   {"Cookie", "session=7d1f0c; theme=dark"}};
    }
    return out;
  }
};

const fixture& data() {
  static const fixture f;
  return f;
}
const std::vector<request>& half_listed() {
  static const auto r = data().requests(0.5, 23);
  return r;
}
const std::vector<request>& one_pct_listed() {
  static const auto r = data().requests(0.01, 24);
  return r;
}

grayroute::router_config config() {
  grayroute::router_config c;
  c.client_ip.trusted_proxies = {"10.0.0.0/8"};
  c.client_ip.headers = {"X-Real-IP", "X-Forwarded-For"};
  c.percent = 5;
  return c;
}

// The hand-written way: find the header, split it into strings, walk from the right
// with inet_pton and a trusted-prefix check, then look the text up.
std::string naive_client(const request& r) {
  std::string value;
  for (const auto& [name, v] : r.headers) {
    if (name == "X-Forwarded-For") value = std::string(v);
  }
  std::vector<std::string> hops;
  std::stringstream in(value);
  for (std::string hop; std::getline(in, hop, ',');) {
    hop.erase(0, hop.find_first_not_of(' '));
    hops.push_back(hop);
  }
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    in_addr a;
    if (inet_pton(AF_INET, it->c_str(), &a) != 1) break;
    if ((ntohl(a.s_addr) >> 24) != 10) return *it;
  }
  return "10.0.0.3";
}

// Requests cycled over `cycle` (a power of two): kTableSize, every request's text cold
// in memory; kParsedRequests, text in cache, as in a gateway that has just parsed the
// request it asks about (its bytes are in L1/L2 then, whatever the client).
constexpr std::size_t kParsedRequests = 1 << 10;

void resolve(benchmark::State& state, std::size_t cycle) {
  const grayroute::client_ip_resolver resolver(config().client_ip);
  const auto& requests = half_listed();
  const ip_address peer = data().peer;
  std::size_t i = 0;
  for (auto _ : state) {
    auto who = resolver.resolve(peer, requests[i++ & (cycle - 1)].headers);
    benchmark::DoNotOptimize(who);
  }
  state.SetItemsProcessed(state.iterations());
}

void resolve_naive(benchmark::State& state, std::size_t cycle) {
  const auto& requests = half_listed();
  std::size_t i = 0;
  for (auto _ : state) {
    auto who = naive_client(requests[i++ & (cycle - 1)]);
    benchmark::DoNotOptimize(who);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Resolve_Xff3Hops(benchmark::State& state) { resolve(state, kTableSize); }
void BM_Resolve_Xff3Hops_Naive(benchmark::State& state) { resolve_naive(state, kTableSize); }
void BM_Resolve_Xff3Hops_Parsed(benchmark::State& state) { resolve(state, kParsedRequests); }
void BM_Resolve_Xff3Hops_Parsed_Naive(benchmark::State& state) { resolve_naive(state, kParsedRequests); }

void run_decide(benchmark::State& state, const std::vector<request>& requests, std::size_t cycle = kTableSize) {
  const grayroute::router<grayroute::memory_store> router(data().store, config());
  const ip_address peer = data().peer;
  std::size_t i = 0, gray = 0;
  for (auto _ : state) {
    gray += router.decide(peer, requests[i++ & (cycle - 1)].headers).route;
  }
  benchmark::DoNotOptimize(gray);
  grayroute::bench::count_huge_pages(state);
  state.SetItemsProcessed(state.iterations());
}

// The decision with nothing listed (the store's tables are tiny, in L1): what it
// costs besides the list lookup's miss.
void BM_DecideParts_DecideEmptyStore(benchmark::State& state) {
  const grayroute::memory_store empty;
  const grayroute::router<grayroute::memory_store> router(empty, config());
  const auto& requests = half_listed();
  const ip_address peer = data().peer;
  std::size_t i = 0, gray = 0;
  for (auto _ : state) {
    gray += router.decide(peer, requests[i++ & (kTableSize - 1)].headers).route;
  }
  benchmark::DoNotOptimize(gray);
  state.SetItemsProcessed(state.iterations());
}

void run_decide_naive(benchmark::State& state, const std::vector<request>& requests, std::size_t cycle = kTableSize) {
  const auto& listed = data().listed_text;
  std::size_t i = 0, gray = 0;
  for (auto _ : state) {
    gray += listed.count(naive_client(requests[i++ & (cycle - 1)]));
  }
  benchmark::DoNotOptimize(gray);
  state.SetItemsProcessed(state.iterations());
}

// The parts of one decision, each alone over the same requests in the same order:
// parse_ip of every hop the walk examines (all three here: the two on the right are
// trusted proxies), one store lookup of the client, one rollout hash. A decision
// should cost little more than their sum.
struct parts {
  std::vector<std::string_view> hops;  // three per request, into the requests' own text
  std::vector<ip_address> clients;
};

const parts& half_listed_parts() {
  static const parts p = [] {
    parts out;
    for (const auto& r : half_listed()) {
      std::string_view line = r.xff;
      for (int k = 0; k < 3; ++k) {
        const std::size_t comma = line.find(',');
        out.hops.push_back(grayroute::detail::trim_ows(line.substr(0, comma)));
        line.remove_prefix(comma == std::string_view::npos ? line.size() : comma + 1);
      }
      out.clients.push_back(*grayroute::parse_ip(out.hops[out.hops.size() - 3]));
    }
    return out;
  }();
  return p;
}

void BM_DecideParts_ParseHops(benchmark::State& state) {
  const auto& hops = half_listed_parts().hops;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t at = 3 * (i++ & (kTableSize - 1));
    for (std::size_t k = 0; k < 3; ++k) {
      auto a = grayroute::parse_ip(hops[at + k]);
      benchmark::DoNotOptimize(a);
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_DecideParts_Lookup(benchmark::State& state) {
  const auto& clients = half_listed_parts().clients;
  const auto& store = data().store;
  std::size_t i = 0;
  for (auto _ : state) {
    auto route = store.lookup(clients[i++ & (kTableSize - 1)]);
    benchmark::DoNotOptimize(route);
  }
  state.SetItemsProcessed(state.iterations());
}

// The same lookups one after another, each waiting for the one before (as one
// request's lookup cannot overlap the next request's): the latency a decision pays
// for a cold entry, where BM_DecideParts_Lookup lets the CPU overlap the misses.
void lookup_chained(benchmark::State& state, std::size_t cycle) {
  const auto& clients = half_listed_parts().clients;
  const auto& store = data().store;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto route = store.lookup(clients[i & (cycle - 1)]);
    std::size_t found = route.has_value();
    benchmark::DoNotOptimize(found);
    i += 1 + (found >> 8);  // always 1, but only known once the lookup is done
  }
  grayroute::bench::count_huge_pages(state);
  state.counters["bytes_per_host"] = static_cast<double>(store.memory_bytes()) / kHosts;
  state.SetItemsProcessed(state.iterations());
}

void BM_DecideParts_LookupChained(benchmark::State& state) { lookup_chained(state, kTableSize); }
void BM_DecideParts_LookupChained_Hot(benchmark::State& state) { lookup_chained(state, kHotClients); }

void BM_DecideParts_RolloutHash(benchmark::State& state) {
  const auto& clients = half_listed_parts().clients;
  const grayroute::percentage_rollout rollout(config().percent, config().percent_seed);
  std::size_t i = 0;
  for (auto _ : state) {
    const bool in = rollout.includes(clients[i++ & (kTableSize - 1)]);
    benchmark::DoNotOptimize(in);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Decide_HalfListed(benchmark::State& state) { run_decide(state, half_listed()); }
void BM_Decide_HalfListed_Naive(benchmark::State& state) { run_decide_naive(state, half_listed()); }
void BM_Decide_HalfListed_Hot(benchmark::State& state) { run_decide(state, half_listed(), kHotClients); }
void BM_Decide_HalfListed_Hot_Naive(benchmark::State& state) { run_decide_naive(state, half_listed(), kHotClients); }
void BM_Decide_1PctListed(benchmark::State& state) { run_decide(state, one_pct_listed()); }
void BM_Decide_1PctListed_Naive(benchmark::State& state) { run_decide_naive(state, one_pct_listed()); }

BENCHMARK(BM_Resolve_Xff3Hops);
BENCHMARK(BM_Resolve_Xff3Hops_Naive);
BENCHMARK(BM_Resolve_Xff3Hops_Parsed);
BENCHMARK(BM_Resolve_Xff3Hops_Parsed_Naive);
BENCHMARK(BM_DecideParts_ParseHops);
BENCHMARK(BM_DecideParts_Lookup);
BENCHMARK(BM_DecideParts_LookupChained);
BENCHMARK(BM_DecideParts_LookupChained_Hot);
BENCHMARK(BM_DecideParts_RolloutHash);
BENCHMARK(BM_DecideParts_DecideEmptyStore);
BENCHMARK(BM_Decide_HalfListed);
BENCHMARK(BM_Decide_HalfListed_Naive);
BENCHMARK(BM_Decide_HalfListed_Hot);
BENCHMARK(BM_Decide_HalfListed_Hot_Naive);
BENCHMARK(BM_Decide_1PctListed);
BENCHMARK(BM_Decide_1PctListed_Naive);

}  // namespace

BENCHMARK_MAIN();
