// Gray lists as text: comments, routes, and errors that name the line and the value.
#include <grayroute/list_file.hpp>

#include <doctest/doctest.h>

#include <cstdio>
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
}
