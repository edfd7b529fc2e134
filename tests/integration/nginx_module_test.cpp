// The nginx module on stock nginx, with static lists: trust, rollout, forcing,
// variables, status, and `nginx -t` errors. Real nginx processes on loopback.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "../support/nginx.hpp"
#include "../support/process.hpp"

using namespace grayroute::test;

namespace {

const char* const kRouteLocation = R"(
        location / {
            grayroute_route client1 client2;
            add_header X-Grayroute "$grayroute_route $grayroute_reason $grayroute_client_ip" always;
            proxy_pass http://$grayroute_upstream;
        })";

// One GET over IPv6 loopback (process.hpp's http_get speaks IPv4 only); the body.
std::string http_get_v6(int port, const std::string& path) {
  const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  addr.sin6_port = htons(static_cast<uint16_t>(port));
  std::string raw;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n;
      while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) raw.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const std::size_t end = raw.find("\r\n\r\n");
  return end == std::string::npos ? "" : raw.substr(end + 4);
}

}  // namespace

TEST_SUITE("nginx module") {
  TEST_CASE("a listed client goes to the gray upstream and everyone else to production") {
    temp_dir dir;
    nginx_server nginx(dir, "grayroute_list 127.0.0.2 127.0.1.0/24;", kRouteLocation);

    const http_reply production = http_get(nginx.port(), "/test/index.html");
    CHECK(production.status == 200);
    CHECK(production.body == "this 8080\n");
    CHECK(header_value(production, "X-Grayroute") == "production default 127.0.0.1");

    const http_reply gray = http_get(nginx.port(), "/test/index.html", {}, std::chrono::seconds(5), "127.0.0.2");
    CHECK(gray.body == "this 8090\n");
    CHECK(header_value(gray, "X-Grayroute") == "gray list 127.0.0.2");

    const http_reply network = http_get(nginx.port(), "/", {}, std::chrono::seconds(5), "127.0.1.77");
    CHECK(network.body == "this 8090\n");
  }

  TEST_CASE("the variables work in log_format") {
    temp_dir dir;
    nginx_server nginx(dir,
                       "grayroute_list 127.0.0.2;\n"
                       "log_format gray '$grayroute_client_ip $grayroute_route $grayroute_reason $grayroute_upstream';",
                       R"(
        location / {
            grayroute_route client1 client2;
            access_log )" + dir.file("access.log") + R"( gray;
            proxy_pass http://$grayroute_upstream;
        })");
    CHECK(http_get(nginx.port(), "/").body == "this 8080\n");
    CHECK(http_get(nginx.port(), "/", {}, std::chrono::seconds(5), "127.0.0.2").body == "this 8090\n");
    std::string log;
    CHECK(eventually([&] {
      std::ifstream in(dir.file("access.log"));
      log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      return log.find("127.0.0.2 gray list client2\n") != std::string::npos;
    }));
    CHECK(log.find("127.0.0.1 production default client1\n") != std::string::npos);
  }

  TEST_CASE("an IPv6 peer is matched against IPv6 entries") {
    temp_dir dir;
    const int v6_port = free_port();
    const std::string location = R"(
            location / {
                grayroute_route client1 client2;
                proxy_pass http://$grayroute_upstream;
            })";
    SUBCASE("listed") {
      nginx_server nginx(dir, "grayroute_list ::1;\nserver { listen [::1]:" + std::to_string(v6_port) + ";" + location + " }",
                         location);
      CHECK(http_get_v6(v6_port, "/") == "this 8090\n");
      CHECK(http_get(nginx.port(), "/").body == "this 8080\n");
    }
    SUBCASE("not listed") {
      nginx_server nginx(dir, "grayroute_list 2001:db8::/32 127.0.0.1;\nserver { listen [::1]:" + std::to_string(v6_port) + ";" +
                                  location + " }",
                         location);
      CHECK(http_get_v6(v6_port, "/") == "this 8080\n");
      CHECK(http_get(nginx.port(), "/").body == "this 8090\n");
    }
  }

  TEST_CASE("without trusted proxies no header can choose the route") {
    temp_dir dir;
    nginx_server nginx(dir,
                       "grayroute_list 10.9.9.9;\n"
                       "grayroute_client_ip_headers X-Real-IP X-Forwarded-For Forwarded;",
                       kRouteLocation);
    const std::vector<std::pair<std::string, std::string>> spoofs = {
        {"X-Real-IP", "10.9.9.9"}, {"X-Forwarded-For", "10.9.9.9"}, {"Forwarded", "for=10.9.9.9"}};
    for (const auto& spoof : spoofs) {
      CAPTURE(spoof.first);
      const http_reply reply = http_get(nginx.port(), "/", {spoof});
      CHECK(reply.body == "this 8080\n");
      CHECK(header_value(reply, "X-Grayroute") == "production default 127.0.0.1");
    }
  }

  TEST_CASE("behind a trusted proxy the rightmost untrusted address is the client") {
    temp_dir dir;
    nginx_server nginx(dir,
                       "grayroute_list 10.9.9.9;\n"
                       "grayroute_trusted_proxies 127.0.0.2 192.168.0.0/16;\n"
                       "grayroute_client_ip_headers X-Real-IP X-Forwarded-For Forwarded;",
                       kRouteLocation);
    const auto from = [&](const std::string& source, std::vector<std::pair<std::string, std::string>> headers) {
      return http_get(nginx.port(), "/", headers, std::chrono::seconds(5), source);
    };

    SUBCASE("X-Forwarded-For, walked from the right past trusted hops") {
      const http_reply gray = from("127.0.0.2", {{"X-Forwarded-For", "1.1.1.1, 10.9.9.9, 192.168.1.1"}});
      CHECK(gray.body == "this 8090\n");
      CHECK(header_value(gray, "X-Grayroute") == "gray list 10.9.9.9");
      // A client prepending the gray address gains nothing: the rightmost untrusted hop counts.
      const http_reply spoofed = from("127.0.0.2", {{"X-Forwarded-For", "10.9.9.9, 1.1.1.1"}});
      CHECK(spoofed.body == "this 8080\n");
      CHECK(header_value(spoofed, "X-Grayroute") == "production default 1.1.1.1");
    }
    SUBCASE("X-Forwarded-For over several header lines") {
      const http_reply gray = from("127.0.0.2", {{"X-Forwarded-For", "10.9.9.9"}, {"X-Forwarded-For", "192.168.4.4"}});
      CHECK(header_value(gray, "X-Grayroute") == "gray list 10.9.9.9");
    }
    SUBCASE("X-Real-IP comes first in the configured order") {
      const http_reply gray = from("127.0.0.2", {{"X-Forwarded-For", "1.1.1.1"}, {"X-Real-IP", "10.9.9.9"}});
      CHECK(header_value(gray, "X-Grayroute") == "gray list 10.9.9.9");
    }
    SUBCASE("Forwarded") {
      const http_reply gray = from("127.0.0.2", {{"Forwarded", "for=10.9.9.9;proto=http, for=\"192.168.0.9:4711\""}});
      CHECK(header_value(gray, "X-Grayroute") == "gray list 10.9.9.9");
    }
    SUBCASE("the same headers from an untrusted peer are ignored") {
      const http_reply reply = from("127.0.0.3", {{"X-Forwarded-For", "10.9.9.9"}, {"X-Real-IP", "10.9.9.9"}});
      CHECK(reply.body == "this 8080\n");
      CHECK(header_value(reply, "X-Grayroute") == "production default 127.0.0.3");
    }
  }

  TEST_CASE("a percentage rollout splits clients near the target and is sticky") {
    temp_dir dir;
    nginx_server nginx(dir, "", R"(
        location / {
            grayroute_route client1 client2;
            grayroute_percent 20 key=$http_x_user_id seed=7;
            add_header X-Grayroute "$grayroute_reason" always;
            proxy_pass http://$grayroute_upstream;
        })");
    constexpr int kUsers = 1500;
    std::map<int, bool> gray_users;
    for (int user = 0; user < kUsers; ++user) {
      const http_reply reply = http_get(nginx.port(), "/", {{"X-User-Id", "user-" + std::to_string(user)}});
      REQUIRE(reply.status == 200);
      const bool gray = reply.body == "this 8090\n";
      if (gray) CHECK(header_value(reply, "X-Grayroute") == "percentage");
      gray_users[user] = gray;
    }
    int gray = 0;
    for (const auto& [user, in] : gray_users) gray += in;
    const double share = 100.0 * gray / kUsers;
    CAPTURE(share);
    CHECK(share > 17.0);
    CHECK(share < 23.0);
    // Sticky: the same users get the same answers again (and from the other worker).
    for (int user = 0; user < kUsers; user += 7) {
      const http_reply reply = http_get(nginx.port(), "/", {{"X-User-Id", "user-" + std::to_string(user)}});
      CHECK((reply.body == "this 8090\n") == gray_users[user]);
    }
    // Without the key the client address is the key; 127.0.0.1 gets one stable answer.
    const std::string first = http_get(nginx.port(), "/").body;
    for (int i = 0; i < 20; ++i) CHECK(http_get(nginx.port(), "/").body == first);
  }

  TEST_CASE("a forcing header or cookie picks the route when configured, and only then") {
    temp_dir dir;
    nginx_server nginx(dir, "grayroute_list 127.0.0.2;", R"(
        location /forced {
            grayroute_route client1 client2;
            grayroute_force header=X-Canary cookie=canary;
            add_header X-Grayroute "$grayroute_route $grayroute_reason" always;
            proxy_pass http://$grayroute_upstream;
        }
        location / {
            grayroute_route client1 client2;
            proxy_pass http://$grayroute_upstream;
        })",
                       nginx_server::options{{"this 8080", "this 8090"}, 1, true});
    const auto get = [&](const std::string& path, std::vector<std::pair<std::string, std::string>> headers,
                         const std::string& source = "") {
      return http_get(nginx.port(), path, headers, std::chrono::seconds(5), source);
    };
    CHECK(header_value(get("/forced", {{"X-Canary", "always"}}), "X-Grayroute") == "gray header");
    CHECK(header_value(get("/forced", {{"Cookie", "a=b; canary=gray"}}), "X-Grayroute") == "gray cookie");
    CHECK(header_value(get("/forced", {{"X-Canary", "never"}}, "127.0.0.2"), "X-Grayroute") == "production header");
    CHECK(header_value(get("/forced", {{"X-Canary", "bogus"}}, "127.0.0.2"), "X-Grayroute") == "gray list");
    CHECK(get("/other", {{"X-Canary", "always"}, {"Cookie", "canary=always"}}).body == "this 8080\n");
  }

  TEST_CASE("more than two routes, named in a list file") {
    temp_dir dir;
    dir.write("gray.list", "# testers\n127.0.0.2\n127.0.0.3 beta\n127.0.0.0/24 production\n");
    nginx_server nginx(dir,
                       "grayroute_routes production gray beta;\n"
                       "grayroute_list_file " + dir.file("gray.list") + ";\n"
                       "grayroute_list 127.0.2.0/24 route=beta;",
                       R"(
        location / {
            grayroute_route production=client1 gray=client2 beta=client3;
            proxy_pass http://$grayroute_upstream;
        })",
                       nginx_server::options{{"this 8080", "this 8090", "this 8100"}, 1, true});
    const auto from = [&](const std::string& source) {
      return http_get(nginx.port(), "/", {}, std::chrono::seconds(5), source).body;
    };
    CHECK(from("127.0.0.2") == "this 8090\n");
    CHECK(from("127.0.0.3") == "this 8100\n");
    CHECK(from("127.0.0.4") == "this 8080\n");
    CHECK(from("127.0.2.9") == "this 8100\n");  // grayroute_list route=beta
  }

  TEST_CASE("the status handler reports the worker's state as JSON") {
    temp_dir dir;
    nginx_server nginx(dir, "grayroute_list 10.0.0.0/8 10.1.2.3;", R"(
        location = /grayroute { grayroute_status; })");
    const http_reply reply = http_get(nginx.port(), "/grayroute");
    CHECK(reply.status == 200);
    CHECK(header_value(reply, "Content-Type") == "application/json");
    CHECK(reply.body.find("\"routes\":[\"production\",\"gray\"]") != std::string::npos);
    CHECK(reply.body.find("\"static_entries\":2") != std::string::npos);
    CHECK(reply.body.find("\"redis\":null") != std::string::npos);
  }

  TEST_CASE("a location without grayroute_route leaves the variables empty") {
    temp_dir dir;
    nginx_server nginx(dir, "", R"(
        location / { return 200 "[$grayroute_upstream][$grayroute_reason]"; })");
    CHECK(http_get(nginx.port(), "/").body == "[][]");
  }

  TEST_CASE("nginx -t warns about a route to an upstream that has no block") {
    temp_dir dir;
    nginx_server nginx(dir, "", "location / { grayroute_route client1 clinet2; proxy_pass http://$grayroute_upstream; }",
                       nginx_server::options{{"this 8080", "this 8090"}, 1, false});
    const auto result = nginx.test_config();
    const int status = result.first;
    const std::string& output = result.second;
    CAPTURE(output);
    CHECK(status == 0);
    CHECK(output.find("[warn]") != std::string::npos);
    CHECK(output.find("no upstream block named \"clinet2\"") != std::string::npos);
    CHECK(output.find("no upstream block named \"client1\"") == std::string::npos);
  }

  TEST_CASE("nginx -t names the bad value and its line") {
    struct bad_config {
      const char* what;
      std::string http;
      std::string location;
      std::string expected;
    };
    const std::string route = "location / { grayroute_route client1 client2; proxy_pass http://$grayroute_upstream; }";
    const std::vector<bad_config> cases = {
        {"host bits in a network", "grayroute_list 10.0.0.1/8;", route, "\"10.0.0.1/8\" is not an address or network"},
        {"not an address", "grayroute_list 10.0.0.256;", route, "\"10.0.0.256\""},
        {"bad trusted proxy", "grayroute_trusted_proxies 10.0.0.0/33;", route, "\"10.0.0.0/33\""},
        {"repeated client-IP header", "grayroute_client_ip_headers X-Real-IP x-real-ip;", route, "\"x-real-ip\" is listed twice"},
        {"missing route", "", "location / { grayroute_route client1; }", "grayroute_route: missing the upstream for route \"gray\""},
        {"unknown route name", "", "location / { grayroute_route production=client1 canary=client2; }", "unknown route \"canary\""},
        {"percentage out of range", "", "location / { grayroute_route client1 client2; grayroute_percent 120; }", "\"120\" is not a percentage"},
        {"unknown percent option", "", "location / { grayroute_route client1 client2; grayroute_percent 5 salt=1; }", "unknown option \"salt=1\""},
        {"unknown force route", "", "location / { grayroute_route client1 client2; grayroute_force header=X-Canary route=beta; }", "unknown route \"beta\""},
        {"bad list file line", "grayroute_list_file gray.list;", route, "line 2: \"10.1.2.300\""},
        {"missing list file", "grayroute_list_file missing.list;", route, "cannot read"},
        {"list file is a directory", "grayroute_list_file .;", route, "is a directory"},
        {"list file half-written", "grayroute_list_file half.list;", route, "does not end in a newline"},
        {"repeated option", "grayroute_list route=gray route=production 10.0.0.1;", route, "option route= is given twice"},
#if GRAYROUTE_NGINX_HAS_REDIS
        {"unknown redis option", "grayroute_redis 127.0.0.1:6379 passwrd=s3cret;", route, "unknown option \"passwrd\""},
        {"bad redis address", "grayroute_redis 127.0.0.1:99999;", route, "\"127.0.0.1:99999\" is not host:port"},
        {"bad redis schema", "grayroute_redis 127.0.0.1 schema=list:x;", route, "schema=\"list:x\""},
        {"bad redis timeout", "grayroute_redis 127.0.0.1 connect_timeout=soon;", route, "connect_timeout=\"soon\""},
        {"repeated password", "grayroute_redis 127.0.0.1 password=s3cret password=s3cret2;", route, "option password= is given twice"},
#endif
    };
    for (const auto& c : cases) {
      CAPTURE(std::string(c.what));
      temp_dir dir;
      dir.write("gray.list", "10.1.2.3\n10.1.2.300\n");
      dir.write("half.list", "10.1.2.3\n10.1.2");  // a writer caught mid-line
      nginx_server nginx(dir, c.http, c.location, nginx_server::options{{"this 8080", "this 8090"}, 1, false});
      const auto result = nginx.test_config();
      const int status = result.first;
      const std::string& output = result.second;
      CAPTURE(output);
      CHECK(status != 0);
      CHECK(output.find(c.expected) != std::string::npos);
      CHECK(output.find("nginx.conf:") != std::string::npos);  // the file and line
      CHECK(output.find("s3cret") == std::string::npos);       // secrets never reach the output
    }
  }
}
