// Redis source URLs: the one spelling every adapter reads, parsed into redis_config
// (no hiredis needed), with errors that name the URL and never its password.
#include <grayroute/config_error.hpp>
#include <grayroute/redis_config.hpp>

#include <doctest/doctest.h>

#include <string>

using grayroute::parse_redis_url;
using grayroute::redis_mode;
using grayroute::redis_schema;

namespace {

std::string error_of(const char* url) {
  try {
    (void)parse_redis_url(url);
  } catch (const grayroute::config_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_SUITE("redis URL") {
  TEST_CASE("the issue's example and the defaults") {
    const auto c = parse_redis_url("redis://:foobared@127.0.0.1:6379/0?schema=seed");
    CHECK(c.host == "127.0.0.1");
    CHECK(c.port == 6379);
    CHECK(c.password == "foobared");
    CHECK(c.username.empty());
    CHECK(c.database == 0);
    CHECK(c.schema == redis_schema::seed);
    CHECK(c.mode == redis_mode::synced);
    const auto d = parse_redis_url("redis://localhost");
    CHECK(d.host == "localhost");
    CHECK(d.port == 6379);
    CHECK(d.password.empty());
    CHECK(d.schema == redis_schema::seed);
  }

  TEST_CASE("user, percent-escapes, IPv6, database, schemas, mode") {
    const auto c = parse_redis_url("redis://gray%40ops:p%3Ass@w%2Fd@[::1]:6380/3?schema=hash:routes&mode=synced");
    CHECK(c.username == "gray@ops");
    CHECK(c.password == "p:ss@w/d");
    CHECK(c.host == "::1");
    CHECK(c.port == 6380);
    CHECK(c.database == 3);
    CHECK(c.schema == redis_schema::hash);
    CHECK(c.key == "routes");
    const auto s = parse_redis_url("redis://user@10.0.0.5/?schema=set:gray:list");
    CHECK(s.username == "user");
    CHECK(s.password.empty());
    CHECK(s.schema == redis_schema::set);
    CHECK(s.key == "gray:list");
    CHECK(parse_redis_url("redis://h?mode=direct").mode == redis_mode::direct);
  }

  TEST_CASE("unix sockets") {
    const auto c = parse_redis_url("unix://:secret@/run/redis/redis.sock?db=2&schema=set:gray");
    CHECK(c.unix_socket == "/run/redis/redis.sock");
    CHECK(c.password == "secret");
    CHECK(c.database == 2);
    CHECK(c.schema == redis_schema::set);
    CHECK(parse_redis_url("unix:///tmp/r.sock").unix_socket == "/tmp/r.sock");
  }

  TEST_CASE("mistakes are named, the password never shown") {
    CHECK(error_of("redis://:foobared@127.0.0.1:6379/0?schema=sed") ==
          "grayroute: redis URL \"redis://:***@127.0.0.1:6379/0?schema=sed\": schema \"sed\" is not seed, set:NAME or hash:NAME");
    CHECK(error_of("redis://:foobared@127.0.0.1:99999") ==
          "grayroute: redis URL \"redis://:***@127.0.0.1:99999\": host \"127.0.0.1:99999\" is not host[:port] with a port in 1..65535");
    CHECK(error_of("redis://u:foobared@h/x") == "grayroute: redis URL \"redis://u:***@h/x\": database \"x\" is not a number");
    CHECK(error_of("redis://:foobared@h?schema=set:a&mode=direct") ==
          "grayroute: redis URL \"redis://:***@h?schema=set:a&mode=direct\": redis direct mode reads the seed schema only (one GET per lookup)");
    CHECK(error_of("redis://:foobared@h?mode=fast") == "grayroute: redis URL \"redis://:***@h?mode=fast\": mode \"fast\" is not synced or direct");
    CHECK(error_of("redis://:foobared@h?password=x") ==
          "grayroute: redis URL \"redis://:***@h?password=x\": unknown parameter \"password\" (schema, mode)");
    CHECK(error_of("redis://h?schema=seed&schema=seed") ==
          "grayroute: redis URL \"redis://h?schema=seed&schema=seed\": parameter \"schema\" given twice");
    CHECK(error_of("redis://h/0?db=1") ==
          "grayroute: redis URL \"redis://h/0?db=1\": db= is for unix sockets; write the database as the path (/0)");
    CHECK(error_of("redis://:foo%zzbar@h") == "grayroute: redis URL \"redis://:***@h\": bad %-escape in the password");
    CHECK(error_of("redis://%zz:foobared@h") == "grayroute: redis URL \"redis://%zz:***@h\": bad %-escape in the user name");
    CHECK(error_of("redis://u:@h") == "grayroute: redis URL \"redis://u:***@h\": empty password after ':'");
    CHECK(error_of("rediss://:foobared@h").find("rediss:// and TLS are not supported") != std::string::npos);
    CHECK(error_of("127.0.0.1:6379 password=foobared") ==
          "grayroute: redis URL \"127.0.0.1:***\" (and more after a space): a URL has no spaces (options are written "
          "in it: redis://:PASSWORD@host:port/db?schema=...)");
    CHECK(error_of("127.0.0.1:6379").find("not redis://host[:port][/db]?... or unix:///path?...") != std::string::npos);
    CHECK(error_of("redis://h password=foobared").find("\"redis://h\" (and more after a space)") != std::string::npos);
    CHECK(error_of("redis:/:foobared@h") .find("\"redis:***\"") != std::string::npos);
    CHECK(error_of("unix://:foobared@run/redis.sock") ==
          "grayroute: redis URL \"unix://:***@run/redis.sock\": a unix socket needs an absolute path (unix:///run/redis.sock)");
    CHECK(error_of("redis://:foobared@") .find("host \"\" is not host[:port]") != std::string::npos);
    // a password with unescaped '/', '?' or '@' is still user information, and hidden
    const auto raw = parse_redis_url("redis://:fo/o?b@r@h:6380/1?schema=set:gray%40list");
    CHECK(raw.password == "fo/o?b@r");
    CHECK(raw.host == "h");
    CHECK(raw.port == 6380);
    CHECK(raw.key == "gray@list");
    CHECK(error_of("redis://x@y:fo/o?b@r@h:0") == "grayroute: redis URL \"redis://x@y:***@h:0\": host \"h:0\" is not host[:port] with a port in 1..65535");
    for (const char* url : {"redis://x@y:foobared@h:0", "redis://:foo?bared@h:0", "redis://:foo/bared@h?schema=x", "127.0.0.1:6379 password=foobared",
                            "redis://h password=foobared", "redis:/:foobared@h", "redis://h?schema=set:a&x=1 foobared","redis://:foobared@h?schema=x", "redis://u:foobared@h:0", "unix://:foobared@x",
                            "redis://:foobared@h/0?db=1", "rediss://:foobared@h"}) {
      CHECK_MESSAGE(error_of(url).find("foobared") == std::string::npos, url);
    }
  }

  TEST_CASE("validate: direct mode needs the seed schema, in one place") {
    grayroute::redis_config c;
    c.mode = redis_mode::direct;
    c.schema = redis_schema::set;
    try {
      grayroute::detail::validate(c);
      FAIL("no error");
    } catch (const grayroute::config_error& e) {
      CHECK(std::string(e.what()) == "grayroute: redis direct mode reads the seed schema only (one GET per lookup)");
    }
  }
}
