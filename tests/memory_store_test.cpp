// memory_store: longest-prefix match, updates, bulk replace, and readers racing writers.
#include <grayroute/memory_store.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using grayroute::ip_address;
using grayroute::kGray;
using grayroute::kProduction;
using grayroute::memory_store;
using grayroute::parse_ip;
using grayroute::parse_network;
using grayroute::route_id;

namespace {
grayroute::ip_network net(const char* text) {
  const auto n = parse_network(text);
  REQUIRE_MESSAGE(n.has_value(), text);
  return *n;
}
std::optional<route_id> lookup(const memory_store& s, const char* ip) { return s.lookup(*parse_ip(ip)); }
}  // namespace

// Two readers check that `inside` answers `route`, through lookup() and
// lookup_batch(), all through 3000 rounds of `change(round)` on this thread.
template <class Change>
void readers_keep_seeing(memory_store& s, const ip_address& inside, route_id route, Change change) {
  std::atomic<bool> stop{false};
  std::atomic<long> lookups{0}, violations{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      std::vector<ip_address> batch(32, inside);
      std::vector<std::optional<route_id>> routes(32);
      while (!stop.load(std::memory_order_relaxed)) {
        if (s.lookup(inside) != route) violations.fetch_add(1);
        s.lookup_batch(batch.data(), routes.data(), batch.size());
        for (const auto& r : routes) violations += r != route;
        lookups.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (std::uint64_t round = 0; round < 3000; ++round) change(round);
  stop = true;
  for (auto& r : readers) r.join();
  CHECK(violations.load() == 0);
  CHECK(lookups.load() > 0);
}

TEST_SUITE("memory_store") {
  TEST_CASE("exact addresses and networks, both families") {
    memory_store s;
    s.insert(net("10.1.2.3"));
    s.insert(net("192.168.116.0/24"));
    s.insert(net("2001:db8::1"));
    s.insert(net("2001:db8:7::/48"));
    CHECK(s.size() == 4);
    CHECK(s.contains(*parse_ip("10.1.2.3")));
    CHECK_FALSE(s.contains(*parse_ip("10.1.2.4")));
    CHECK(s.contains(*parse_ip("192.168.116.255")));
    CHECK_FALSE(s.contains(*parse_ip("192.168.117.0")));
    CHECK(s.contains(*parse_ip("2001:db8::1")));
    CHECK_FALSE(s.contains(*parse_ip("2001:db8::2")));
    CHECK(s.contains(*parse_ip("2001:db8:7:ffff::1")));
    CHECK_FALSE(s.contains(*parse_ip("2001:db8:8::1")));
  }

  TEST_CASE("longest prefix wins, so an exception can carve a hole") {
    memory_store s;
    s.insert(net("10.0.0.0/8"));
    s.insert(net("10.1.0.0/16"), kProduction);
    s.insert(net("10.1.2.0/24"), 2);
    s.insert(net("10.1.2.3"), kProduction);
    CHECK(lookup(s, "10.9.9.9") == kGray);
    CHECK(lookup(s, "10.1.9.9") == kProduction);
    CHECK(lookup(s, "10.1.2.9") == route_id{2});
    CHECK(lookup(s, "10.1.2.3") == kProduction);
    CHECK_FALSE(lookup(s, "11.0.0.1").has_value());
    s.erase(net("10.1.0.0/16"));
    CHECK(lookup(s, "10.1.9.9") == kGray);
    CHECK(lookup(s, "10.1.2.9") == route_id{2});
  }

  TEST_CASE("v4-mapped addresses and entries are their IPv4 selves") {
    memory_store s;
    s.insert(*grayroute::ip_network::make(*parse_ip("::ffff:10.0.0.0"), 104));  // text refuses it; code may build it
    s.insert(net("::ffff:1.2.3.4"));
    CHECK(s.contains(*parse_ip("10.200.1.1")));
    CHECK(s.contains(*parse_ip("::ffff:10.200.1.1")));
    CHECK(s.contains(*parse_ip("1.2.3.4")));
    CHECK(s.erase(net("1.2.3.4")));
    CHECK_FALSE(s.contains(*parse_ip("::ffff:1.2.3.4")));
  }

  TEST_CASE("the marker keys 0.0.0.0 and 255.255.255.255 are ordinary entries") {
    memory_store s;
    CHECK_FALSE(s.contains(*parse_ip("0.0.0.0")));
    s.insert(net("0.0.0.0"));
    s.insert(net("255.255.255.255"));
    CHECK(s.contains(*parse_ip("0.0.0.0")));
    CHECK(s.contains(*parse_ip("255.255.255.255")));
    CHECK(s.size() == 2);
    CHECK(s.erase(net("0.0.0.0")));
    CHECK_FALSE(s.contains(*parse_ip("0.0.0.0")));
    CHECK(s.contains(*parse_ip("255.255.255.255")));
  }

  TEST_CASE("insert replaces the route, erase removes exactly what was listed") {
    memory_store s;
    s.insert(net("1.2.3.4"));
    s.insert(net("1.2.3.4"), 3);
    CHECK(s.size() == 1);
    CHECK(lookup(s, "1.2.3.4") == route_id{3});
    s.insert(net("1.2.3.4"));
    CHECK(s.size() == 1);
    CHECK(lookup(s, "1.2.3.4") == kGray);
    s.insert(net("1.2.0.0/16"));
    CHECK_FALSE(s.erase(net("1.2.0.0/17")));
    CHECK(s.erase(net("1.2.3.4")));
    CHECK_FALSE(s.erase(net("1.2.3.4")));
    CHECK(s.contains(*parse_ip("1.2.3.4")));  // still inside 1.2.0.0/16
    CHECK(s.size() == 1);
  }

  TEST_CASE("the store agrees with a plain model under random churn") {
    std::mt19937 rng(7);
    memory_store s;
    std::set<std::uint32_t> model;
    for (int i = 0; i < 200000; ++i) {
      const std::uint32_t key = rng() % 50000;  // dense enough to revisit keys and tombstones
      const ip_address a = ip_address::v4(key);
      if (rng() % 3 == 0) {
        CHECK(s.erase(grayroute::ip_network::host(a)) == (model.erase(key) == 1));
      } else {
        s.insert(grayroute::ip_network::host(a));
        model.insert(key);
      }
    }
    CHECK(s.size() == model.size());
    std::size_t mismatches = 0;
    for (std::uint32_t key = 0; key < 50000; ++key) {
      mismatches += s.contains(ip_address::v4(key)) != (model.count(key) == 1);
    }
    CHECK(mismatches == 0);
    CHECK(s.entries().size() == model.size());
  }

  TEST_CASE("IPv6 hosts grow and survive erase/re-insert") {
    memory_store s;
    for (std::uint64_t i = 0; i < 5000; ++i) s.insert(grayroute::ip_network::host(ip_address::v6(0x20010db8ull << 32, i)));
    for (std::uint64_t i = 0; i < 5000; i += 2) CHECK(s.erase(grayroute::ip_network::host(ip_address::v6(0x20010db8ull << 32, i))));
    for (std::uint64_t i = 0; i < 5000; i += 4) s.insert(grayroute::ip_network::host(ip_address::v6(0x20010db8ull << 32, i)));
    std::size_t listed = 0;
    for (std::uint64_t i = 0; i < 5000; ++i) listed += s.contains(ip_address::v6(0x20010db8ull << 32, i));
    CHECK(listed == 2500 + 1250);
    CHECK(s.size() == 3750);
  }

  TEST_CASE("replace swaps the whole list and later duplicates win") {
    memory_store s;
    s.insert(net("1.1.1.1"));
    s.replace({{net("2.2.2.2"), kGray}, {net("3.0.0.0/8"), kGray}, {net("2.2.2.2"), 4}});
    CHECK_FALSE(s.contains(*parse_ip("1.1.1.1")));
    CHECK(lookup(s, "2.2.2.2") == route_id{4});
    CHECK(s.contains(*parse_ip("3.3.3.3")));
    CHECK(s.size() == 2);
    s.clear();
    CHECK(s.empty());
    CHECK_FALSE(s.contains(*parse_ip("3.3.3.3")));
  }

  TEST_CASE("a million IPv4 hosts plus 10,000 networks load and stay compact") {
    std::vector<grayroute::store_entry> entries;
    entries.reserve(1010000);
    std::mt19937 rng(1);
    std::vector<std::uint32_t> seen(1100000);
    for (auto& key : seen) key = static_cast<std::uint32_t>(rng()) | 1u;
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    REQUIRE(seen.size() >= 1000000);
    seen.resize(1000000);
    for (auto key : seen) entries.push_back({grayroute::ip_network::host(ip_address::v4(key)), kGray});
    for (std::uint32_t i = 0; i < 10000; ++i) {
      entries.push_back({*grayroute::ip_network::make(ip_address::v4((i * 2u + 1) << 8), 24), kGray});
    }
    memory_store s(entries);
    CHECK(s.size() == 1010000);
    // Hash table + filter for the hosts must stay under 12 bytes per host.
    CHECK(s.memory_bytes() < 12 * 1000000 + 2 * 1024 * 1024);
    CHECK(s.contains(ip_address::v4(*seen.begin())));
    CHECK(s.contains(ip_address::v4((5u * 2 + 1) << 8 | 77)));
  }

#if GRAYROUTE_HUGE_PAGES
  // Whether the kernel then backs it with 2 MiB pages depends on its THP mode and on
  // free contiguous memory, so that is reported, not asserted; the benchmarks count it.
  TEST_CASE("a large table is its own 2 MiB-aligned mapping, advised for huge pages") {
    grayroute::detail::atomic_array<std::uint32_t> table(std::size_t{1} << 20);  // 4 MiB
    const auto at = reinterpret_cast<std::uintptr_t>(&table[0]);
    CHECK(at % (std::uintptr_t{2} << 20) == 0);
    std::ifstream smaps("/proc/self/smaps");
    bool inside = false, found = false;
    std::string anon_huge;
    for (std::string line; std::getline(smaps, line);) {
      std::uintptr_t from = 0, to = 0;
      char dash = 0;
      if (std::istringstream(line) >> std::hex >> from >> dash >> to && dash == '-') {
        inside = from <= at && at < to;
        if (inside) CHECK(at + table.bytes() <= to);  // one mapping holds the whole table
        continue;
      }
      if (!inside) continue;
      if (line.rfind("AnonHugePages:", 0) == 0) anon_huge = line;
      if (line.rfind("VmFlags:", 0) == 0) {
        found = true;
        CHECK_MESSAGE(line.find(" hg") != std::string::npos, line);  // MADV_HUGEPAGE
      }
    }
    CHECK(found);
    MESSAGE(anon_huge);
  }
#endif

  TEST_CASE("readers racing a writer never see a half-applied replace") {
    // Both lists carry 10.0.0.0/8 (on different routes), so a reader that ever finds
    // it missing saw a half-applied replace or an index being rebuilt under it.
    memory_store s;
    std::vector<grayroute::store_entry> even, odd;
    for (std::uint32_t k = 0; k < 2000; k += 2) even.push_back({grayroute::ip_network::host(ip_address::v4(k + 1000)), kGray});
    for (std::uint32_t k = 1; k < 2000; k += 2) odd.push_back({grayroute::ip_network::host(ip_address::v4(k + 1000)), kGray});
    even.push_back({net("10.0.0.0/8"), kGray});
    odd.push_back({net("10.0.0.0/8"), kProduction});
    s.replace(even);
    std::atomic<bool> stop{false};
    std::atomic<long> lookups{0}, violations{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
      readers.emplace_back([&, t] {
        std::uint32_t k = static_cast<std::uint32_t>(t);
        while (!stop.load(std::memory_order_relaxed)) {
          k = (k + 7) % 2000;
          (void)s.contains(ip_address::v4(k + 1000));
          if (!s.lookup(*parse_ip("10.1.1.1"))) violations.fetch_add(1);
          lookups.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    for (int round = 0; round < 200; ++round) {
      s.replace(round % 2 ? even : odd);
      s.insert(grayroute::ip_network::host(ip_address::v4(50000 + static_cast<std::uint32_t>(round))));
      s.insert(net("172.16.0.0/12"));
      s.erase(net("172.16.0.0/12"));
    }
    stop = true;
    for (auto& r : readers) r.join();
    CHECK(violations.load() == 0);
    CHECK(lookups.load() > 0);
    CHECK(s.size() == 1000 + 1 + 1);  // the last list (even) + one host from round 199
  }

  TEST_CASE("IPv4 networks changed one at a time agree with a plain longest-prefix model") {
    // Prefixes from /4 to /31, so that changes land in one /16 (a chunk rebuilt in
    // place), span many /16s (the directory copied and republished), nest, and
    // carve holes; probes at every network's edges and at random.
    std::mt19937 rng(21);
    memory_store s;
    std::map<std::pair<std::uint32_t, unsigned>, route_id> model;
    auto expected = [&](std::uint32_t a) -> std::optional<route_id> {
      for (unsigned p = 32; p-- > 0;) {
        const std::uint32_t mask = p == 0 ? 0u : ~0u << (32 - p);
        const auto it = model.find({a & mask, p});
        if (it != model.end()) return it->second;
      }
      return std::nullopt;
    };
    std::vector<std::pair<std::uint32_t, unsigned>> listed;
    std::size_t mismatches = 0, checks = 0;
    for (int step = 0; step < 4000; ++step) {
      if (!listed.empty() && rng() % 3 == 0) {
        const std::size_t i = rng() % listed.size();
        const auto n = listed[i];
        listed.erase(listed.begin() + static_cast<std::ptrdiff_t>(i));
        CHECK(s.erase(*grayroute::ip_network::make(ip_address::v4(n.first), n.second)) == (model.erase(n) == 1));
      } else {
        const unsigned p = rng() % 8 == 0 ? 4 + rng() % 12 : 16 + rng() % 16;
        // Addresses within 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16, so that
        // networks nest, hundreds of them in one /16.
        const std::uint32_t r = static_cast<std::uint32_t>(rng());
        const int region = static_cast<int>(rng() % 3);
        std::uint32_t a = region == 0   ? 0x0a000000u | (r & 0x00ffffffu)
                          : region == 1 ? 0xac100000u | (r & 0x000fffffu)
                                        : 0xc0a80000u | (r & 0x0000ffffu);
        a &= ~0u << (32 - p);
        const route_id route = static_cast<route_id>(rng() % 3);
        if (model.insert_or_assign({a, p}, route).second) listed.push_back({a, p});
        s.insert(*grayroute::ip_network::make(ip_address::v4(a), p), route);
      }
      if (step % 100 != 99) continue;
      std::vector<std::uint32_t> probes;
      for (const auto& [n, r] : model) {
        const std::uint32_t last = n.first | (n.second == 0 ? ~0u : ~0u >> n.second);
        probes.insert(probes.end(), {n.first, n.first - 1, last, last + 1, n.first + (last - n.first) / 2});
      }
      for (int i = 0; i < 2000; ++i) probes.push_back(static_cast<std::uint32_t>(rng()));
      for (std::uint32_t a : probes) {
        ++checks;
        mismatches += s.lookup(ip_address::v4(a)) != expected(a);
      }
    }
    CHECK(checks > 100000);
    CHECK(mismatches == 0);
    CHECK(s.size() == model.size());
  }

  TEST_CASE("IPv6 networks changed one at a time agree with a plain longest-prefix model") {
    // Prefixes from /0 to /127, so that changes land in every level of the index,
    // nest within one entry and across levels, and share entries (networks of one
    // level under one key); probes at every network's edges and at random.
    std::mt19937_64 rng(22);
    memory_store s;
    using key = std::pair<std::pair<std::uint64_t, std::uint64_t>, unsigned>;
    std::map<key, route_id> model;
    const auto mask = [](std::uint64_t high, std::uint64_t low, unsigned p) {
      const std::uint64_t hm = p >= 64 ? ~0ull : (p == 0 ? 0ull : ~0ull << (64 - p));
      const std::uint64_t lm = p <= 64 ? 0ull : (p == 128 ? ~0ull : ~0ull << (128 - p));
      return std::make_pair(high & hm, low & lm);
    };
    auto expected = [&](std::uint64_t high, std::uint64_t low) -> std::optional<route_id> {
      for (unsigned p = 128; p-- > 0;) {
        const auto it = model.find({mask(high, low, p), p});
        if (it != model.end()) return it->second;
      }
      return std::nullopt;
    };
    std::vector<key> listed;
    std::size_t mismatches = 0, checks = 0;
    for (int step = 0; step < 3000; ++step) {
      if (!listed.empty() && rng() % 3 == 0) {
        const std::size_t i = rng() % listed.size();
        const key n = listed[i];
        listed.erase(listed.begin() + static_cast<std::ptrdiff_t>(i));
        const auto network = *grayroute::ip_network::make(ip_address::v6(n.first.first, n.first.second), n.second);
        CHECK(s.erase(network) == (model.erase(n) == 1));
      } else {
        // Mostly /32-/64 within 2001:db8::/32 and a few other /32s, some shorter
        // and longer, so that networks nest and share entries.
        const unsigned roll = static_cast<unsigned>(rng() % 10);
        const unsigned p = roll == 0 ? static_cast<unsigned>(rng() % 32) : roll == 1 ? 65 + static_cast<unsigned>(rng() % 63)
                                                                               : 32 + static_cast<unsigned>(rng() % 33);
        const std::uint64_t high = (0x20010db8ull + rng() % 3) << 32 | (rng() & 0xffff000000ffffffull);
        const auto [h, l] = mask(high, rng() & 0xff000000000000ffull, p);
        const route_id route = static_cast<route_id>(rng() % 3);
        if (model.insert_or_assign({{h, l}, p}, route).second) listed.push_back({{h, l}, p});
        s.insert(*grayroute::ip_network::make(ip_address::v6(h, l), p), route);
      }
      if (step % 100 != 99) continue;
      std::vector<std::pair<std::uint64_t, std::uint64_t>> probes;
      for (const auto& [n, r] : model) {
        const auto [h, l] = n.first;
        const unsigned p = n.second;
        const std::uint64_t last_high = p >= 64 ? h : h | (p == 0 ? ~0ull : ~0ull >> p);
        const std::uint64_t last_low = p <= 64 ? ~0ull : l | (~0ull >> (p - 64));
        probes.push_back({h, l});
        probes.push_back({last_high, last_low});
        probes.push_back(l == 0 ? std::make_pair(h - 1, ~std::uint64_t{0}) : std::make_pair(h, l - 1));
        probes.push_back(last_low == ~0ull ? std::make_pair(last_high + 1, std::uint64_t{0}) : std::make_pair(last_high, last_low + 1));
      }
      for (int i = 0; i < 2000; ++i) probes.push_back({(0x20010db8ull + rng() % 3) << 32 | (rng() & 0xffff00ffffffffffull), rng()});
      for (const auto& [h, l] : probes) {
        ++checks;
        mismatches += s.lookup(ip_address::v6(h, l)) != expected(h, l);
      }
    }
    CHECK(checks > 50000);
    CHECK(mismatches == 0);
    CHECK(s.size() == model.size());
    std::size_t v6_networks = 0;
    for (const auto& e : s.entries()) v6_networks += e.network.address().is_v6() && !e.network.is_host();
    CHECK(v6_networks == model.size());
  }

  TEST_CASE("readers never miss an IPv6 network while its entry and the table change under them") {
    // 2001:db8:7::/48 stays listed while networks in its entry (/49-/63 of the same
    // /48) and in thousands of other entries come and go (the hash table grows and
    // is replaced), and 2001:db8::/32 flips (another level).
    memory_store s;
    s.insert(net("2001:db8:7::/48"), 2);
    readers_keep_seeing(s, *parse_ip("2001:db8:7:8000::1"), 2, [&](std::uint64_t round) {
      const auto neighbour = *grayroute::ip_network::make(ip_address::v6(0x20010db800070000ull | (round % 100) << 8, 0), 56);
      s.insert(neighbour, 1);
      if (round % 3 == 0) s.erase(neighbour);
      s.insert(*grayroute::ip_network::make(ip_address::v6(0x20010db900000000ull | round << 16, 0), 48));
      if (round % 50 == 0) s.insert(net("2001:db8::/32"), kProduction);
      if (round % 50 == 25) s.erase(net("2001:db8::/32"));
    });
  }

  TEST_CASE("a list built piece by piece publishes as replace() of the same entries does") {
    // The builder starts too small, so its tables are rebuilt while it adds; later
    // duplicates override earlier ones, as in replace().
    std::mt19937 rng(23);
    std::vector<grayroute::store_entry> entries;
    for (int i = 0; i < 20000; ++i) {
      const std::uint32_t a = 0x0a000000u | (rng() & 0x3fffu);
      entries.push_back({grayroute::ip_network::host(ip_address::v4(a)), static_cast<route_id>(rng() % 3)});
      if (i % 50 == 0) entries.push_back({grayroute::ip_network::host(ip_address::v6(0x20010db8ull << 32, rng() & 0xfff)), kGray});
      if (i % 100 == 0) entries.push_back({*grayroute::ip_network::make(ip_address::v4(0x0a000000u | (rng() & 0xff00u)), 24), kProduction});
      if (i % 100 == 50) entries.push_back({*grayroute::ip_network::make(ip_address::v6(0x20010db8ull << 32 | (rng() & 0xff) << 8, 0), 56), 2});
    }
    memory_store::builder list(16);
    for (const auto& e : entries) list.add(e);
    memory_store built, replaced;
    built.insert(net("192.0.2.0/24"));  // gone after the swap
    built.replace(std::move(list));
    replaced.replace(entries);
    CHECK(built.size() == replaced.size());
    std::size_t mismatches = 0;
    for (std::uint32_t a = 0; a < 0x10000; ++a) {
      mismatches += built.lookup(ip_address::v4(0x0a000000u | a)) != replaced.lookup(ip_address::v4(0x0a000000u | a));
      mismatches += built.lookup(ip_address::v6(0x20010db8ull << 32 | (a & 0xff) << 8, a)) !=
                    replaced.lookup(ip_address::v6(0x20010db8ull << 32 | (a & 0xff) << 8, a));
    }
    CHECK(mismatches == 0);
    CHECK_FALSE(built.contains(*parse_ip("192.0.2.1")));
    built.insert(net("10.0.0.1"), 2);  // the published tables keep working
    CHECK(built.lookup(*parse_ip("10.0.0.1")) == route_id{2});
  }

  TEST_CASE("lookup_batch answers as lookup does, both families and v4-mapped") {
    memory_store s;
    s.insert(net("10.0.0.0/8"));
    s.insert(net("10.1.0.0/16"), kProduction);
    s.insert(net("10.1.2.0/24"), 2);
    s.insert(net("10.1.2.3"), 3);
    s.insert(net("192.0.2.7"));
    s.insert(net("0.0.0.0"), 4);
    s.insert(net("2001:db8::/32"));
    s.insert(net("2001:db8::1"), kProduction);
    std::vector<ip_address> addresses;
    for (const char* text : {"10.9.9.9", "10.1.9.9", "10.1.2.9", "10.1.2.3", "192.0.2.7", "192.0.2.8", "0.0.0.0",
                             "255.255.255.255", "2001:db8::1", "2001:db8::2", "2001:db9::1", "::ffff:10.1.2.3",
                             "::ffff:192.0.2.7"}) {
      addresses.push_back(*parse_ip(text));
    }
    std::mt19937 rng(5);
    for (int i = 0; i < 1000; ++i) addresses.push_back(ip_address::v4(0x0a000000u | (rng() & 0x01ffffffu)));
    for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, addresses.size()}) {
      std::vector<std::optional<route_id>> routes(count, route_id{99});
      s.lookup_batch(addresses.data(), routes.data(), count);
      std::size_t mismatches = 0;
      for (std::size_t i = 0; i < count; ++i) mismatches += routes[i] != s.lookup(addresses[i]);
      CHECK(mismatches == 0);
    }
  }

  TEST_CASE("readers never miss a network while its /16 is rebuilt under them") {
    // 10.1.7.0/24 stays listed while its neighbours in 10.1.0.0/16 come and go
    // (the /16's ranges are rebuilt and swapped each time) and 10.0.0.0/12 flips
    // (the whole directory is copied and republished).
    memory_store s;
    s.insert(net("10.1.7.0/24"), 2);
    readers_keep_seeing(s, *parse_ip("10.1.7.77"), 2, [&](std::uint64_t round) {
      const auto neighbour =
          *grayroute::ip_network::make(ip_address::v4(0x0a010000u | static_cast<std::uint32_t>((round % 200 + 8) << 8)), 24);
      s.insert(neighbour);
      if (round % 3 == 0) s.erase(neighbour);
      if (round % 50 == 0) s.insert(net("10.0.0.0/12"), kProduction);
      if (round % 50 == 25) s.erase(net("10.0.0.0/12"));
    });
  }

  TEST_CASE("a host inserted by one thread is seen by lookups that start after it returns") {
    memory_store s;
    std::atomic<int> published{-1};
    std::atomic<long> missed{0};
    std::thread reader([&] {
      int last = -1;
      while (last < 4999) {
        const int p = published.load(std::memory_order_acquire);
        if (p > last) {
          for (int i = last + 1; i <= p; ++i) {
            if (!s.contains(ip_address::v4(0x0a000000u + static_cast<std::uint32_t>(i)))) missed.fetch_add(1);
          }
          last = p;
        }
      }
    });
    for (int i = 0; i < 5000; ++i) {
      s.insert(grayroute::ip_network::host(ip_address::v4(0x0a000000u + static_cast<std::uint32_t>(i))));
      published.store(i, std::memory_order_release);
    }
    reader.join();
    CHECK(missed.load() == 0);
  }
}

static_assert(grayroute::is_store_v<memory_store>);
struct not_a_store {
  bool lookup(const ip_address&) const { return false; }
};
static_assert(!grayroute::is_store_v<not_a_store>);
