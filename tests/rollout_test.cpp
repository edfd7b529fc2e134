// Sticky percentages: MurmurHash3 against its published vectors, and rollout properties.
#include <grayroute/config_error.hpp>
#include <grayroute/rollout.hpp>

#include <doctest/doctest.h>

#include <string>

using grayroute::percentage_rollout;
using grayroute::detail::murmur3_x86_32;

TEST_SUITE("rollout") {
  TEST_CASE("MurmurHash3 x86_32 matches the published test vectors") {
    struct row {
      std::string key;
      std::uint32_t seed;
      std::uint32_t hash;
    };
    for (const row& r : {row{"", 0, 0}, row{"", 1, 0x514E28B7}, row{"", 0xffffffff, 0x81F16F39},
                         row{std::string("\xff\xff\xff\xff", 4), 0, 0x76293B50},
                         row{std::string("\x21\x43\x65\x87", 4), 0, 0xF55B516B},
                         row{std::string("\x21\x43\x65\x87", 4), 0x5082EDEE, 0x2362F9DE},
                         row{std::string("\x21\x43\x65", 3), 0, 0x7E4A8634},
                         row{std::string("\x21\x43", 2), 0, 0xA0F7B07A}, row{std::string("\x21", 1), 0, 0x72661CF4},
                         row{std::string(4, '\0'), 0, 0x2362F9DE}, row{std::string(3, '\0'), 0, 0x85F0B427},
                         row{std::string(2, '\0'), 0, 0x30F4C306}, row{std::string(1, '\0'), 0, 0x514E28B7},
                         row{"Hello, world!", 0x9747b28c, 0x24884CBA}, row{"aaaa", 0x9747b28c, 0x5A97808A},
                         row{"aaa", 0x9747b28c, 0x283E0130}, row{"aa", 0x9747b28c, 0x5D211726},
                         row{"a", 0x9747b28c, 0x7FA09EA6}, row{"abcd", 0x9747b28c, 0xF0478627},
                         row{"abc", 0x9747b28c, 0xC84A62DD}, row{"ab", 0x9747b28c, 0x74875592},
                         row{"The quick brown fox jumps over the lazy dog", 0x9747b28c, 0x2FA826CD}}) {
      CAPTURE(r.key);
      CHECK(murmur3_x86_32(r.key, r.seed) == r.hash);
    }
  }

  TEST_CASE("the same key always gets the same answer") {
    percentage_rollout r(30, 42);
    for (int i = 0; i < 1000; ++i) {
      const std::string key = "user-" + std::to_string(i);
      CHECK(r.includes(key) == r.includes(key));
      CHECK(r.includes(key) == (percentage_rollout::bucket(key, 42) < 3000));
    }
  }

  TEST_CASE("the share lands near the target and raising it only adds keys") {
    percentage_rollout five(5, 9), twenty(20, 9);
    int in5 = 0, in20 = 0, lost = 0;
    for (int i = 0; i < 100000; ++i) {
      const std::string key = "uid" + std::to_string(i);
      const bool a = five.includes(key), b = twenty.includes(key);
      in5 += a;
      in20 += b;
      lost += a && !b;
    }
    CHECK(in5 > 4500);
    CHECK(in5 < 5500);
    CHECK(in20 > 19000);
    CHECK(in20 < 21000);
    CHECK(lost == 0);
  }

  TEST_CASE("different seeds pick independent sets") {
    percentage_rollout a(50, 1), b(50, 2);
    int both = 0;
    for (int i = 0; i < 100000; ++i) {
      const std::string key = std::to_string(i);
      both += a.includes(key) && b.includes(key);
    }
    CHECK(both > 24000);  // independent halves overlap by about a quarter
    CHECK(both < 26000);
  }

  TEST_CASE("0% and 100% are exact, IP keys hash their bytes") {
    percentage_rollout none(0, 0), all(100, 0);
    const auto a = *grayroute::parse_ip("192.0.2.1");
    CHECK_FALSE(none.includes(a));
    CHECK(all.includes(a));
    CHECK(percentage_rollout::bucket(a, 5) == percentage_rollout::bucket(*grayroute::parse_ip("::ffff:192.0.2.1"), 5));
    const unsigned char bytes[4] = {192, 0, 2, 1};
    CHECK(percentage_rollout::bucket(a, 5) == murmur3_x86_32(bytes, 4, 5) % 10000);
    CHECK(percentage_rollout(0.01, 0).basis_points() == 1);
  }

  TEST_CASE("a percentage outside 0..100 is a configuration error") {
    CHECK_THROWS_AS(percentage_rollout(-1, 0), grayroute::config_error);
    CHECK_THROWS_AS(percentage_rollout(100.5, 0), grayroute::config_error);
    CHECK_THROWS_AS(percentage_rollout(std::nan(""), 0), grayroute::config_error);
  }
}
