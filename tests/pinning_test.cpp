// Anonymous pinning: random ids from the CSPRNG, the Set-Cookie that carries them, and
// the split they go through, which stays at its weight because every anonymous user is
// pinned whichever route they got.
#include <grayroute/policy.hpp>
#include <grayroute/policy_syntax.hpp>
#include <grayroute/random_id.hpp>
#include <grayroute/set_cookie.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

using grayroute::same_site;
using grayroute::set_cookie_builder;
using grayroute::set_cookie_config;

namespace {

// A split by X-User-Id, else the pin cookie, else the key the gateway supplies (the
// fresh random id of a request that has neither).
grayroute::policy split_policy(double gray_percent) {
  grayroute::policy_config config;
  grayroute::rule_config rule;
  rule.name = "ramp";
  rule.split = {{"gray", gray_percent}};
  rule.key = {{grayroute::key_source::kind::header, "X-User-Id"},
              {grayroute::key_source::kind::cookie, "gr_pin"},
              {grayroute::key_source::kind::given, ""}};
  rule.seed = 11;
  config.rules.push_back(rule);
  return grayroute::policy(config);
}

}  // namespace

TEST_SUITE("pinning") {
  TEST_CASE("random ids: 32 hex digits, all different") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
      const auto id = grayroute::random_id();
      REQUIRE(id);
      CHECK(id->view().size() == 32);
      CHECK(id->view().find_first_not_of("0123456789abcdef") == std::string_view::npos);
      seen.insert(std::string(id->view()));
    }
    CHECK(seen.size() == 1000);
  }

  TEST_CASE("anonymous users through the split: share at the weight, same id same route") {
    // Random ids make the share a binomial variable: the client counts are chosen so that
    // ±1 point is at least 4.5 standard deviations (a spurious failure below 1 in 10^5):
    // 10,000 clients at 1% and 5% (sd 0.10, 0.22 points), 100,000 at 50% (sd 0.16).
    struct row {
      double percent;
      int clients;
    };
    const auto peer = *grayroute::parse_ip("198.51.100.7");
    const set_cookie_builder pin({"gr_pin", 31536000, "", "/", true, true, same_site::lax});
    for (const row r : {row{1, 10000}, row{5, 10000}, row{50, 100000}}) {
      CAPTURE(r.percent);
      const grayroute::policy p = split_policy(r.percent);
      int gray = 0;
      for (int i = 0; i < r.clients; ++i) {
        const auto id = grayroute::random_id();
        REQUIRE(id);
        // First request: no user id, no cookie: the gateway's fresh id is the key, and
        // the cookie is set for this user whatever the route.
        const std::vector<grayroute::header> none = {{"Accept", "text/html"}};
        const auto first = p.decide({peer, "shop.example.com", "/", "", id->view()}, none);
        const std::string set_cookie = pin.build(id->view());
        REQUIRE(set_cookie.rfind("gr_pin=" + std::string(id->view()) + ";", 0) == 0);
        // Later requests bring the cookie back (and no given key): the same route.
        const std::string cookie_line = "theme=dark; gr_pin=" + std::string(id->view());
        const std::vector<grayroute::header> later = {{"Cookie", cookie_line}};
        const auto second = p.decide({peer, "shop.example.com", "/api/cart", "", ""}, later);
        REQUIRE(first.route == second.route);
        if (first.route == grayroute::kGray) ++gray;
      }
      const double share = 100.0 * gray / r.clients;
      MESSAGE("weight " << r.percent << "%: measured " << share << "% over " << r.clients << " anonymous clients");
      CHECK(std::fabs(share - r.percent) <= 1.0);
    }
  }

  TEST_CASE("Set-Cookie values per RFC 6265") {
    CHECK(set_cookie_builder({"gr_pin", 31536000, "example.com", "/", true, true, same_site::lax}).build("ab12") ==
          "gr_pin=ab12; Max-Age=31536000; Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Lax");
    CHECK(set_cookie_builder({"p", 0, "", "/app", false, false, same_site::unset}).build("1") == "p=1; Path=/app");
    CHECK(set_cookie_builder({"__Host-pin", 60, "", "/", true, true, same_site::strict}).build("x") ==
          "__Host-pin=x; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Strict");
    CHECK(set_cookie_builder({"p", 60, "", "/", true, false, same_site::none}).build("x") ==
          "p=x; Max-Age=60; Path=/; Secure; SameSite=None");
    const set_cookie_builder b({"p", 0, "", "/", false, false, same_site::unset});
    for (const char* bad : {"a b", "a;b", "a,b", "\"a\"", "a\\b", "\x7f", "\xc3\xa9"}) {
      CAPTURE(bad);
      CHECK(b.build(bad).empty());
    }
    char small[8];
    CHECK(b.write("abcdef", small, sizeof small) == 0);
    char fits[16];
    CHECK(std::string_view(fits, b.write("ab", fits, sizeof fits)) == "p=ab; Path=/");
  }

  TEST_CASE("bad cookie settings name the value") {
    struct row {
      set_cookie_config config;
      const char* message;
    };
    for (const row& r : {
             row{{"", 1, "", "/", false, true, same_site::lax}, "a cookie needs a name"},
             row{{"gr pin", 1, "", "/", false, true, same_site::lax}, "cookie \"gr pin\": the name is not a token"},
             row{{"p", -1, "", "/", false, true, same_site::lax}, "max-age -1 is negative"},
             row{{"p", 1, ".example.com", "/", false, true, same_site::lax}, "domain \".example.com\" is not a host name"},
             row{{"p", 1, "exa_mple.com", "/", false, true, same_site::lax}, "domain \"exa_mple.com\""},
             row{{"p", 1, "-a.example.com", "/", false, true, same_site::lax}, "domain \"-a.example.com\""},
             row{{"p", 1, "", "app", false, true, same_site::lax}, "path \"app\" does not start with '/'"},
             row{{"p", 1, "", "/a;b", false, true, same_site::lax}, "path \"/a;b\" holds a control byte or ';'"},
             row{{"p", 1, "", "/", false, true, same_site::none}, "SameSite=None needs Secure"},
             row{{"__Secure-p", 1, "", "/", false, true, same_site::lax}, "needs Secure"},
             row{{"__Host-p", 1, "example.com", "/", true, true, same_site::lax}, "Path=/ and no Domain"},
             row{{"__Host-p", 1, "", "/app", true, true, same_site::lax}, "Path=/ and no Domain"},
         }) {
      CAPTURE(r.message);
      CHECK_THROWS_WITH_AS(set_cookie_builder{r.config}, doctest::Contains(r.message), grayroute::config_error);
    }
  }

  TEST_CASE("pin cookie words, add_pin_key and has_rollout_key: what a gateway needs to pin") {
    const std::vector<std::string> words{"name=gr_uid", "max_age=600", "path=/", "secure", "httponly=off", "samesite=strict"};
    const set_cookie_config c = grayroute::parse_set_cookie_words(words, "grayroute_pin_cookie");
    CHECK(set_cookie_builder(c).build("ab") == "gr_uid=ab; Max-Age=600; Path=/; Secure; SameSite=Strict");
    for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
             {"name=x", "colour=red"}, {"max_age=1h", "name=x"}, {"name=x", "secure=yes"}, {"name=x", "samesite=loose"}, {"path=/"}}) {
      CAPTURE(bad.front());
      CHECK_THROWS_WITH_AS((void)grayroute::parse_set_cookie_words(bad, "grayroute_pin_cookie"),
                           doctest::Contains("grayroute_pin_cookie"), grayroute::config_error);
    }

    grayroute::policy_config config;
    config.rules.push_back(grayroute::parse_rule("half key=header:X-User-Id,ip split=gray:50"));
    config.rules.push_back(grayroute::parse_rule("bare split=gray:5 host=other.example"));
    config.rules.push_back(grayroute::parse_rule("fixed header:X-Beta route=gray"));
    grayroute::add_pin_key(config, "gr_uid");
    grayroute::add_pin_key(config, "gr_uid");  // twice: nothing more
    using kind = grayroute::key_source::kind;
    REQUIRE(config.rules[0].key.size() == 4);
    CHECK(config.rules[0].key[0].source == kind::header);
    CHECK(config.rules[0].key[1].source == kind::given);
    CHECK((config.rules[0].key[2].source == kind::cookie && config.rules[0].key[2].name == "gr_uid"));
    CHECK(config.rules[0].key[3].source == kind::ip);
    REQUIRE(config.rules[1].key.size() == 3);  // given, cookie, then the default ip
    CHECK(config.rules[1].key[2].source == kind::ip);
    CHECK(config.rules[2].key.empty());  // not a split

    const grayroute::policy p(config);
    grayroute::request_view view;
    view.peer = *grayroute::parse_ip("198.51.100.7");
    using headers = std::vector<grayroute::header>;
    CHECK(!p.has_rollout_key(view, headers{}));
    CHECK(!p.has_rollout_key(view, headers{{"X-Beta", "1"}, {"Cookie", "theme=dark"}, {"X-User-Id", "  "}}));
    CHECK(p.has_rollout_key(view, headers{{"x-user-id", "u1"}}));
    CHECK(p.has_rollout_key(view, headers{{"Cookie", "theme=dark; gr_uid=0123"}}));
    view.key = "fresh-id";
    CHECK(p.has_rollout_key(view, headers{}));
    // The given key decides like the cookie that carries it later.
    const auto first = p.decide(view, headers{});
    view.key = {};
    const auto later = p.decide(view, headers{{"Cookie", "gr_uid=fresh-id"}});
    CHECK(first.route == later.route);
    CHECK(first.rule == later.rule);
  }
}
