// Gray lists as text: comments, routes, and errors that name the line and the value.
#include <grayroute/list_file.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>

#include <fstream>

TEST_SUITE("list_file") {
  TEST_CASE("addresses, networks, comments, blank lines and routes") {
    const auto list = grayroute::parse_list(
        "# QA office\n"
        "192.168.116.0/24\n"
        "\n"
        "  10.1.2.3   # a tester\r\n"
        "2001:db8::/48\tbeta\n",
        {"production", "gray", "beta"});
    REQUIRE(list);
    REQUIRE(list.entries.size() == 3);
    CHECK(to_string(list.entries[0].network) == "192.168.116.0/24");
    CHECK(list.entries[0].route == grayroute::kGray);
    CHECK(to_string(list.entries[1].network) == "10.1.2.3/32");
    CHECK(list.entries[2].route == grayroute::route_id{2});
  }

  TEST_CASE("a bad line rejects the whole list, naming line and value") {
    const auto bad = grayroute::parse_list("10.0.0.0/8\n\n10.0.0.1/8\n1.2.3.4\n");
    REQUIRE_FALSE(bad);
    CHECK(bad.error->line == 3);
    CHECK(to_string(*bad.error) == "line 3: \"10.0.0.1/8\" is not an address or network (a network must have no host bits set)");
    const auto route = grayroute::parse_list("1.2.3.4 gamma\n");
    REQUIRE_FALSE(route);
    CHECK(to_string(*route.error) == "line 1: unknown route \"gamma\"");
  }

  TEST_CASE("files: read whole, or an error with line 0") {
    const std::string path = "list_file_test.tmp";
    std::ofstream(path) << "1.2.3.4\n5.6.7.0/24\n";
    const auto list = grayroute::load_list_file(path);
    CHECK(list.entries.size() == 2);
    std::remove(path.c_str());
    const auto missing = grayroute::load_list_file("/nonexistent/list");
    REQUIRE_FALSE(missing);
    CHECK(missing.error->line == 0);
    CHECK(missing.error->message.find("/nonexistent/list") != std::string::npos);
  }

  TEST_CASE("a directory is an error, not an empty list") {
    const auto dir = grayroute::load_list_file(".");
    REQUIRE_FALSE(dir);
    CHECK(dir.error->message.find("is a directory") != std::string::npos);
    grayroute::list_file_watch watch(".");
    CHECK(watch.check().state == grayroute::list_file_watch::failed);
    CHECK_FALSE(watch.check().list);
  }

  TEST_CASE("a watched file is handed out only complete and unchanged across two looks") {
    const std::string path = "list_file_watch_test.tmp";
    auto write = [&](const char* text) { std::ofstream(path, std::ios::trunc) << text; };
    grayroute::list_file_watch watch(path);
    using w = grayroute::list_file_watch;

    write("10.0.0.1\n10.0.0.2\n");
    CHECK(watch.check().state == w::settling);  // first sight
    auto look = watch.check();
    REQUIRE(look.state == w::ready);
    CHECK(look.list.entries.size() == 2);
    CHECK(watch.check().state == w::unchanged);

    SUBCASE("rewritten in place: truncated, then half-written") {
      write("");
      CHECK(watch.check().state == w::settling);  // emptied: wait
      write("127.0.0.2");                          // the first bytes of 127.0.0.21
      CHECK(watch.check().state == w::settling);
      CHECK(watch.check().state == w::settling);  // stable but no final newline: never applied
      write("127.0.0.21\n");
      CHECK(watch.check().state == w::settling);
      look = watch.check();
      REQUIRE(look.state == w::ready);
      REQUIRE(look.list.entries.size() == 1);
      CHECK(to_string(look.list.entries[0].network) == "127.0.0.21/32");
    }
    SUBCASE("emptied for good: applied after it stayed empty for two looks") {
      write("");
      CHECK(watch.check().state == w::settling);
      CHECK(watch.check().state == w::settling);  // an empty file is what a rewrite shows first
      look = watch.check();
      CHECK(look.state == w::ready);
      CHECK(look.list.entries.empty());
    }
    SUBCASE("the same bytes from two rewrites are two versions, not a stable one") {
      // Each look meets the empty file of a different rewrite (the writer's period
      // matching the watch interval); only the file's stamp tells them apart. The
      // modification times are set by hand: the kernel's clock may give two quick
      // rewrites the same one.
      const auto set_mtime = [&](long seconds) {
        const timespec times[2] = {{seconds, 0}, {seconds, 0}};
        REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
      };
      for (long i = 0; i < 4; ++i) {
        write("");
        set_mtime(1000000000 + i);
        CHECK(watch.check().state == w::settling);
        write("10.0.0.1\n10.0.0.2\n");
      }
      write("");
      set_mtime(1000000100);
      CHECK(watch.check().state == w::settling);
    }
    SUBCASE("a bad line is reported once and the applied list stays") {
      write("10.0.0.1\nnot-an-address\n");
      CHECK(watch.check().state == w::settling);
      look = watch.check();
      CHECK(look.state == w::failed);
      CHECK(watch.new_error());
      CHECK(watch.check().state == w::failed);
      CHECK_FALSE(watch.new_error());
      write("10.0.0.1\n10.0.0.2\n");  // back to the applied version
      CHECK(watch.check().state == w::settling);
      CHECK(watch.check().state == w::unchanged);
    }
    std::remove(path.c_str());
  }

  TEST_CASE("load() waits for a file to settle, and gives up on one that never ends a line") {
    const std::string path = "list_file_load_test.tmp";
    std::ofstream(path, std::ios::trunc) << "10.0.0.1\n";
    const auto list = grayroute::list_file_watch(path).load(std::chrono::milliseconds(1));
    REQUIRE(list);
    CHECK(list.entries.size() == 1);
    std::ofstream(path, std::ios::trunc) << "10.0.0.1\n10.0.0";
    const auto half = grayroute::list_file_watch(path).load(std::chrono::milliseconds(1), 3);
    REQUIRE_FALSE(half);
    CHECK(half.error->message.find("does not end in a newline") != std::string::npos);
    std::remove(path.c_str());
  }
}
