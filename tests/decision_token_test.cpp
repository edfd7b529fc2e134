#include <grayroute/decision_token.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <string>

// Counts allocations, to show that verification makes none. (g++ cannot see that this
// pair replaces the global operators, and under sanitizers takes free() for a mismatch.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<std::size_t> allocations{0};
}
void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using grayroute::decision_claims;
using grayroute::decision_keys;
using grayroute::route_reason;
using grayroute::token_status;

namespace {

decision_keys::key key_of(std::uint8_t first) {
  decision_keys::key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(first + i);
  return k;
}

const grayroute::route_table kRoutes({"production", "gray", "beta"});
constexpr std::int64_t kNow = 1796119200;  // 2026-12-01T10:00:00Z

std::string sign(const decision_claims& c, const decision_keys& keys) {
  const auto t = grayroute::encode_decision_token(c, keys);
  REQUIRE(t.has_value());
  return std::string(t->view());
}

}  // namespace

TEST_SUITE("decision_token") {
  TEST_CASE("SipHash-2-4 matches the 64 reference vectors of the paper") {
    // veorq/SipHash vectors.h: key 00..0f, message 00..(n-1) for n = 0..63, output as a little-endian u64.
    static constexpr std::uint64_t kVectors[64] = {
        0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d, 0xcf2794e0277187b7,
        0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137, 0x93f5f5799a932462, 0x9e0082df0ba9e4b0,
        0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7, 0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee,
        0xa129ca6149be45e5, 0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
        0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8, 0xb8ad50c6f649af94,
        0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad, 0xde4daaaca71dc9a5, 0xa6a2506687956571,
        0xad87a3535c49ef28, 0x32d892fad841c342, 0x7127512f72f27cce, 0xa7f32346f95978e3, 0x12e0b01abb051238,
        0x15e034d40fa197ae, 0x314dffbe0815a3b4, 0x027990f029623981, 0xcadcd4e59ef40c4d, 0x9abfd8766a33735c,
        0x0e3ea96b5304a7d0, 0xad0c42d6fc585992, 0x187306c89bc215a9, 0xd4a60abcf3792b95, 0xf935451de4f21df2,
        0xa9538f0419755787, 0xdb9acddff56ca510, 0xd06c98cd5c0975eb, 0xe612a3cb9ecba951, 0xc766e62cfcadaf96,
        0xee64435a9752fe72, 0xa192d576b245165a, 0x0a8787bf8ecb74b2, 0x81b3e73d20b49b6f, 0x7fa8220ba3b2ecea,
        0x245731c13ca42499, 0xb78dbfaf3a8d83bd, 0xea1ad565322a1a0b, 0x60e61c23a3795013, 0x6606d7e446282b93,
        0x6ca4ecb15c5f91e1, 0x9f626da15c9625f3, 0xe51b38608ef25f57, 0x958a324ceb064572};
    const auto key_bytes = key_of(0);
    const auto key = grayroute::detail::siphash_key_from_bytes(key_bytes.data());
    unsigned char message[64];
    for (unsigned i = 0; i < 64; ++i) message[i] = static_cast<unsigned char>(i);
    for (std::size_t n = 0; n < 64; ++n) {
      CAPTURE(n);
      CHECK(grayroute::detail::siphash24(key, message, n) == kVectors[n]);
    }
    static_assert(grayroute::detail::siphash24({0x0706050403020100, 0x0f0e0d0c0b0a0908}, nullptr, 0) == 0x726fdb47dd0e0e31);
  }

  TEST_CASE("a token round-trips and verifies without allocating") {
    const decision_keys keys(key_of(0x40));
    const std::string token = sign({"beta", route_reason::percentage, "api-canary", 7, kNow + 60}, keys);
    CHECK(token.rfind("gr1:beta:percentage:api-canary:7:1796119260:", 0) == 0);
    CHECK(token.size() == 44 + 16);
    const std::size_t before = allocations.load();
    const auto v = grayroute::verify_decision_token(token, keys, kRoutes, kNow);
    const std::size_t after = allocations.load();
    CHECK(after == before);
    const std::string copy(token);  // the counter does count
    CHECK(allocations.load() > after);
    REQUIRE(v.status == token_status::valid);
    CHECK(v.route == 2);
    CHECK(v.claims.route == "beta");
    CHECK(v.claims.reason == route_reason::percentage);
    CHECK(v.claims.rule == "api-canary");
    CHECK(v.claims.policy_version == 7);
    CHECK(v.claims.expires == kNow + 60);
    SUBCASE("an empty rule, a zero version, reason upstream") {
      const std::string t = sign({"gray", route_reason::upstream, "", 0, kNow + 1}, keys);
      const auto w = grayroute::verify_decision_token(t, keys, kRoutes, kNow);
      CHECK(w.status == token_status::valid);
      CHECK(w.claims.rule.empty());
      CHECK(w.claims.reason == route_reason::upstream);
    }
  }

  TEST_CASE("every altered byte, a forged tag and a foreign key are rejected") {
    const decision_keys keys(key_of(0x40));
    const std::string token = sign({"gray", route_reason::percentage, "canary", 3, kNow + 60}, keys);
    for (std::size_t i = 0; i < token.size(); ++i) {
      for (char replacement : {'0', 'f', 'x', ':', 'G'}) {
        if (token[i] == replacement) continue;
        std::string altered = token;
        altered[i] = replacement;
        CAPTURE(altered);
        CHECK(grayroute::verify_decision_token(altered, keys, kRoutes, kNow).status != token_status::valid);
      }
    }
    std::string upper = token;
    for (std::size_t i = upper.size() - 16; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
    if (upper != token) CHECK(grayroute::verify_decision_token(upper, keys, kRoutes, kNow).status != token_status::valid);
    CHECK(grayroute::verify_decision_token(token + "0", keys, kRoutes, kNow).status != token_status::valid);
    CHECK(grayroute::verify_decision_token(token.substr(0, token.size() - 1), keys, kRoutes, kNow).status !=
          token_status::valid);
    CHECK(grayroute::verify_decision_token(token, decision_keys(key_of(0x41)), kRoutes, kNow).status ==
          token_status::bad_mac);
    CHECK(grayroute::verify_decision_token("", keys, kRoutes, kNow).status == token_status::malformed);
    CHECK(grayroute::verify_decision_token("gr1:gray", keys, kRoutes, kNow).status == token_status::malformed);
    CHECK(grayroute::verify_decision_token(std::string(300, 'a'), keys, kRoutes, kNow).status == token_status::malformed);
    // Moving a route into the rule field keeps the bytes but not the MAC.
    CHECK(grayroute::verify_decision_token("gr1:production:percentage:canary:3:1796119260" + token.substr(token.rfind(':')),
                                           keys, kRoutes, kNow)
              .status == token_status::bad_mac);
  }

  TEST_CASE("expired and unknown-route tokens are genuine but not obeyed") {
    const decision_keys keys(key_of(0x40));
    const std::string token = sign({"gray", route_reason::list, "vip", 1, kNow}, keys);
    CHECK(grayroute::verify_decision_token(token, keys, kRoutes, kNow - 1).status == token_status::valid);
    CHECK(grayroute::verify_decision_token(token, keys, kRoutes, kNow).status == token_status::expired);
    const std::string other = sign({"staging", route_reason::match, "", 1, kNow + 10}, keys);
    const auto v = grayroute::verify_decision_token(other, keys, kRoutes, kNow);
    CHECK(v.status == token_status::unknown_route);
    CHECK(v.claims.route == "staging");
    // A tier with its own route table finds routes by name, not by the edge's ids.
    const grayroute::route_table inner({"stable", "staging"});
    CHECK(grayroute::verify_decision_token(other, keys, inner, kNow).route == 1);
  }

  TEST_CASE("every reason travels, and only reasons do") {
    const decision_keys keys(key_of(0x40));
    for (unsigned i = 0; i <= static_cast<unsigned>(route_reason::upstream); ++i) {
      const auto reason = static_cast<route_reason>(i);
      const auto v = grayroute::verify_decision_token(sign({"gray", reason, "r", 1, kNow + 1}, keys), keys, kRoutes, kNow);
      CHECK(v.status == token_status::valid);
      CHECK(v.claims.reason == reason);
    }
    CHECK_FALSE(grayroute::detail::parse_route_reason("bogus"));
    CHECK_FALSE(grayroute::detail::parse_route_reason(""));
    CHECK(grayroute::detail::parse_route_reason("default") == route_reason::default_route);
  }

  TEST_CASE("a genuine tag over junk fields is still malformed") {
    // What a buggy tier holding the key might sign: the fields are checked after the tag.
    const auto key_bytes = key_of(0x40);
    const auto sip = grayroute::detail::siphash_key_from_bytes(key_bytes.data());
    auto with_tag = [&](const std::string& body) {
      char tag[17];
      std::snprintf(tag, sizeof tag, "%016llx",
                    static_cast<unsigned long long>(grayroute::detail::siphash24(
                        sip, reinterpret_cast<const unsigned char*>(body.data()), body.size())));
      return body + ":" + tag;
    };
    const decision_keys keys(key_of(0x40));
    CHECK(grayroute::verify_decision_token(with_tag("gr1:gray:list:r:1:1796119260"), keys, kRoutes, kNow).status ==
          token_status::valid);
    for (const char* body : {"gr1:gray:bogus:r:1:1796119260", "gr1:gray:list:r:01:1796119260", "gr1::list:r:1:1796119260",
                             "gr1:gray:list:r:1:1796119260:x", "gr1:gray:list:r:1", "gr1:gray:list:r b:1:1796119260",
                             "gr1:gray:list:r:1:99999999999999999999", "gr1:gray:list:r:1:-5"}) {
      CAPTURE(body);
      CHECK(grayroute::verify_decision_token(with_tag(body), keys, kRoutes, kNow).status == token_status::malformed);
    }
  }

  TEST_CASE("rotation: the new key signs, the previous one is still accepted") {
    const decision_keys old_only(key_of(0x10));
    const decision_keys rotating(key_of(0x20), key_of(0x10));
    const decision_keys new_only(key_of(0x20));
    const std::string old_token = sign({"gray", route_reason::percentage, "r", 1, kNow + 60}, old_only);
    const std::string new_token = sign({"gray", route_reason::percentage, "r", 1, kNow + 60}, rotating);
    CHECK(new_token == sign({"gray", route_reason::percentage, "r", 1, kNow + 60}, new_only));
    CHECK(grayroute::verify_decision_token(old_token, rotating, kRoutes, kNow).status == token_status::valid);
    CHECK(grayroute::verify_decision_token(new_token, rotating, kRoutes, kNow).status == token_status::valid);
    CHECK(grayroute::verify_decision_token(new_token, old_only, kRoutes, kNow).status == token_status::bad_mac);
    CHECK(grayroute::verify_decision_token(old_token, new_only, kRoutes, kNow).status == token_status::bad_mac);
  }

  TEST_CASE("encoding refuses what a token cannot carry") {
    const decision_keys keys(key_of(0));
    CHECK_FALSE(grayroute::encode_decision_token({"", route_reason::percentage, "", 1, kNow}, keys));
    CHECK_FALSE(grayroute::encode_decision_token({"gray", route_reason::percentage, "has space", 1, kNow}, keys));
    CHECK_FALSE(grayroute::encode_decision_token({"gr:ay", route_reason::percentage, "", 1, kNow}, keys));
    CHECK_FALSE(grayroute::encode_decision_token({"gray", route_reason::percentage, "", 1, -1}, keys));
    CHECK_FALSE(grayroute::encode_decision_token({std::string(250, 'r'), route_reason::percentage, "", 1, kNow}, keys));
    const auto biggest = grayroute::encode_decision_token(
        {"gray", route_reason::percentage, "", UINT64_MAX, INT64_MAX}, keys);
    REQUIRE(biggest);
    CHECK(grayroute::verify_decision_token(biggest->view(), keys, kRoutes, kNow).status == token_status::valid);
  }

  TEST_CASE("key files: one or two keys, errors name the file and line, never the key") {
    const std::string a = "000102030405060708090a0b0c0d0e0f", b = "F0E1D2C3B4A5968778695A4B3C2D1E0F";
    SUBCASE("two keys with comments") {
      const auto keys = grayroute::parse_decision_keys("# rotated 2026-11-29\n" + a + "\r\n\n  " + b + "  # old\n", "k");
      CHECK(keys.has_previous());
      const auto single = grayroute::parse_decision_keys(a, "k");
      CHECK_FALSE(single.has_previous());
      const std::string t = sign({"gray", route_reason::percentage, "", 1, kNow + 5}, single);
      CHECK(grayroute::verify_decision_token(t, keys, kRoutes, kNow).status == token_status::valid);
      CHECK(t == sign({"gray", route_reason::percentage, "", 1, kNow + 5}, decision_keys(key_of(0))));
    }
    SUBCASE("errors") {
      struct row {
        std::string text, message;
      };
      const std::string secret = "00112233445566778899aabbccddeeff";
      for (const row& r : {row{"", "no key in it"}, row{"# nothing\n\n", "no key in it"},
                           row{a + "\n" + b + "\n" + secret, "line 3: more than two keys"},
                           row{"\n" + secret.substr(0, 31), "line 2: a key is 32 hex digits (128 bits); this line has 31"},
                           row{secret.substr(0, 31) + "g", "line 1: a key is 32 hex digits (128 bits); this line has a"},
                           row{secret + "00", "line 1: a key is 32 hex digits"}}) {
        CAPTURE(r.text);
        try {
          (void)grayroute::parse_decision_keys(r.text, "/etc/grayroute/decision.key");
          FAIL("accepted");
        } catch (const grayroute::config_error& e) {
          const std::string what = e.what();
          CHECK(what.find("decision key file \"/etc/grayroute/decision.key\"") != std::string::npos);
          CHECK(what.find(r.message) != std::string::npos);
          CHECK(what.find(secret.substr(0, 8)) == std::string::npos);
          CHECK(what.find("0011") == std::string::npos);
        }
      }
    }
    SUBCASE("a file") {
      char path[] = "/tmp/grayroute_key_XXXXXX";
      const int fd = mkstemp(path);
      REQUIRE(fd >= 0);
      std::FILE* f = fdopen(fd, "w");
      std::fputs((a + "\n").c_str(), f);
      std::fclose(f);
      CHECK_FALSE(grayroute::load_decision_keys(path).has_previous());
      std::remove(path);
      CHECK_THROWS_WITH_AS((void)grayroute::load_decision_keys(path),
                           doctest::Contains("cannot be read"), grayroute::config_error);
    }
  }
}
