// The policy of issue 9's examples, shared by the tests that run it through real
// gateways: its rules word for word, its lists, the nginx configuration and the
// proxy's TOML that spell it, generated requests, and the library's own decision as
// the oracle.
//
//   example::lists lists(dir, redis);                  // qa.txt and the seed keys in Redis
//   nginx_server nginx(dir, example::nginx_http(...), example::nginx_location(), ...);
//   for (const example::request& r : example::generate(2000, seed)) send(port, r) ...
#ifndef GRAYROUTE_TESTS_INTEGRATION_POLICY_EXAMPLE_HPP
#define GRAYROUTE_TESTS_INTEGRATION_POLICY_EXAMPLE_HPP

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <grayroute/list_text.hpp>
#include <grayroute/memory_store.hpp>
#include <grayroute/policy.hpp>

#include "../support/process.hpp"

namespace grayroute::test::example {

/// The rules of the example, as `grayroute_rule` spells them.
inline const std::vector<std::string>& rule_lines() {
  static const std::vector<std::string> lines = {
      "beta-api host=api.example.com path=/v2/ header:X-Beta=1,yes route=beta",
      "qa-office list=qa",
      "seed list=seed",
      "rollout host=www.example.com split=gray:10 key=header:X-User-Id,cookie:uid,ip",
  };
  return lines;
}

/// qa.txt: the QA office (a network and one address).
constexpr const char* kQaFile = "# QA office\n10.20.0.0/16\n192.0.2.33\n";
/// Seed-schema keys in Redis (SET ip ip): the seed's testers.
inline const std::vector<std::string>& seed_addresses() {
  static const std::vector<std::string> addresses = {"203.0.113.7", "203.0.113.8", "198.51.100.99", "10.30.0.1"};
  return addresses;
}
constexpr const char* kRedisPassword = "foobared";

/// Writes qa.txt into `dir` and the seed keys into `redis`; returns qa.txt's path.
inline std::string write_lists(const temp_dir& dir, const redis_server& redis) {
  dir.write("qa.txt", kQaFile);
  for (const std::string& address : seed_addresses()) redis.cli({"SET", address, address});
  return dir.file("qa.txt");
}

inline std::string redis_url(const redis_server& redis) {
  return "redis://:" + std::string(kRedisPassword) + "@127.0.0.1:" + std::to_string(redis.port()) + "/0?schema=seed";
}

/// The http-level directives, with the backends' ports for the three upstreams.
inline std::string nginx_http(const std::string& qa_path, const redis_server& redis, int production, int gray, int beta) {
  return "grayroute_list_file qa " + qa_path + ";\n" +                                //
         "grayroute_redis seed " + redis_url(redis) + ";\n" +                         //
         "grayroute_trusted_proxies 127.0.0.1/32;\n"                                  //
         "grayroute_client_ip_headers X-Forwarded-For;\n"                             //
         "upstream production { server 127.0.0.1:" + std::to_string(production) + "; }\n" +  //
         "upstream gray { server 127.0.0.1:" + std::to_string(gray) + "; }\n" +               //
         "upstream beta { server 127.0.0.1:" + std::to_string(beta) + "; }\n";
}

/// The location, exactly.
inline std::string nginx_location() {
  std::string out = "        location / {\n            grayroute_routes production gray beta;\n";
  for (const std::string& line : rule_lines()) out += "            grayroute_rule " + line + ";\n";
  out +=
      "            grayroute_default production;\n"
      "            add_header X-Grayroute \"$grayroute_route; reason=$grayroute_reason; rule=$grayroute_rule\" always;\n"
      "            proxy_pass http://$grayroute_upstream;\n"
      "        }\n";
  return out;
}

/// The TOML for grayroute-proxy --config, with this run's ports and paths.
inline std::string proxy_toml(int listen, const std::string& qa_path, const redis_server& redis, int production, int gray,
                              int beta) {
  const auto upstream = [](int port) { return "[\"127.0.0.1:" + std::to_string(port) + "\"]"; };
  return "listen = \"127.0.0.1:" + std::to_string(listen) + "\"\n\n" +
         "[client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\nheaders = [\"X-Forwarded-For\"]\n\n" +
         "[routes]\nproduction = " + upstream(production) + "\ngray = " + upstream(gray) + "\nbeta = " + upstream(beta) +
         "\n\n[lists]\nqa = { file = \"" + qa_path + "\" }\nseed = { redis = \"" + redis_url(redis) + "\" }\n\n" +
         "[[rules]]\nname = \"beta-api\"\nhosts = [\"api.example.com\"]\npaths = [\"/v2/\"]\n"
         "header = { X-Beta = [\"1\", \"yes\"] }\nroute = \"beta\"\n\n"
         "[[rules]]\nname = \"qa-office\"\nlist = \"qa\"\n\n"
         "[[rules]]\nname = \"seed\"\nlist = \"seed\"\n\n"
         "[[rules]]\nname = \"rollout\"\nhosts = [\"www.example.com\"]\nsplit = { gray = 10 }\n"
         "key = [\"header:X-User-Id\", \"cookie:uid\", \"ip\"]\n\n"
         "default = \"production\"\n";
}

struct request {
  std::string host, target;
  std::vector<std::pair<std::string, std::string>> headers;

  std::string describe() const {
    std::string out = "GET " + target + " Host: " + host;
    for (const auto& [name, value] : headers) out += " | " + name + ": " + value;
    return out;
  }
};

/// `n` requests mixing hosts (case, ports), paths (in and out of /v2/, queries),
/// X-Beta values, user ids, uid cookies and client addresses behind the trusted hop,
/// some on the lists. Deterministic for a seed.
inline std::vector<request> generate(std::size_t n, std::uint32_t seed) {
  std::mt19937 random(seed);
  const auto pick = [&](const auto& options) { return options[random() % options.size()]; };
  const std::vector<std::string> hosts = {"api.example.com", "API.Example.COM", "api.example.com:8000", "www.example.com",
                                          "WWW.example.com:80", "www.example.com", "other.example.com", "example.com",
                                          "api.example.org"};
  const std::vector<std::string> paths = {"/", "/v2/", "/v2/items?id=3", "/v2/a/b", "/v1/", "/v2", "/static/app.js",
                                          "/V2/", "/v2?x=1"};
  const std::vector<std::string> betas = {"", "1", "yes", "no", "YES", "0", "1,yes"};
  std::vector<request> out;
  for (std::size_t i = 0; i < n; ++i) {
    request r;
    r.host = pick(hosts);
    r.target = pick(paths);
    if (const std::string beta = pick(betas); !beta.empty()) r.headers.emplace_back("X-Beta", beta);
    if (random() % 2) r.headers.emplace_back("X-User-Id", "user-" + std::to_string(random() % 500));
    switch (random() % 4) {
      case 0: r.headers.emplace_back("Cookie", "uid=c" + std::to_string(random() % 500)); break;
      case 1: r.headers.emplace_back("Cookie", "theme=dark; uid=c" + std::to_string(random() % 500)); break;
      case 2: r.headers.emplace_back("Cookie", "theme=light"); break;
      default: break;
    }
    // The client, as the trusted hop 127.0.0.1 reports it (or the hop itself).
    std::string client;
    switch (random() % 9) {
      case 0: client = "10.20." + std::to_string(random() % 256) + "." + std::to_string(random() % 256); break;  // qa
      case 1: client = "192.0.2.33"; break;                                                                    // qa
      case 2: client = pick(seed_addresses()); break;                                                          // seed
      case 3: client = "198.51.100." + std::to_string(random() % 256); break;
      case 4: client = "1.2.3.4, 10.20.1." + std::to_string(random() % 256); break;  // walked from the right
      default: break;  // no header (a third of the requests): the client is the hop, 127.0.0.1
    }
    if (!client.empty()) r.headers.emplace_back("X-Forwarded-For", client);
    out.push_back(std::move(r));
  }
  return out;
}

/// The library's decision for the same policy and lists: what every adapter must say.
class oracle {
 public:
  oracle() {
    qa_ = std::make_unique<memory_store>(parse_list(kQaFile).entries);
    std::vector<store_entry> seed;
    for (const std::string& address : seed_addresses()) seed.push_back({*parse_network(address), kGray});
    seed_ = std::make_unique<memory_store>(seed);
    policy_config c;
    c.routes = {"production", "gray", "beta"};
    c.default_route = "production";
    c.client_ip.trusted_proxies = {"127.0.0.1/32"};
    c.client_ip.headers = {"X-Forwarded-For"};
    c.lists.push_back({"qa", {store_ref(*qa_)}});
    c.lists.push_back({"seed", {store_ref(*seed_)}});
    for (const std::string& line : rule_lines()) c.rules.push_back(parse_rule(line));
    policy_ = std::make_unique<policy>(c);
  }

  /// "route; reason=R; rule=NAME" (rule empty when none), for a request from 127.0.0.1.
  std::string expect(const request& r) const {
    std::vector<header> headers;
    for (const auto& [name, value] : r.headers) headers.emplace_back(name, value);
    const decision d = policy_->decide(request_view(*parse_ip("127.0.0.1"), r.host, r.target), headers);
    return std::string(policy_->route_name(d.route)) + "; reason=" + std::string(to_string(d.reason)) +
           "; rule=" + std::string(d.rule);
  }

 private:
  std::unique_ptr<memory_store> qa_, seed_;
  std::unique_ptr<policy> policy_;
};

/// One request over a fresh loopback connection with its own Host header.
inline http_reply send(int port, const request& r, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::string raw = "GET " + r.target + " HTTP/1.1\r\nHost: " + r.host + "\r\n";
  for (const auto& [name, value] : r.headers) raw += name + ": " + value + "\r\n";
  raw += "Connection: close\r\n\r\n";
  return http_exchange(port, raw, timeout);
}

/// The X-Grayroute header as "route; reason=R; rule=NAME": nginx writes "rule=" with
/// an empty name when no rule decided, the proxy leaves the field out; both read alike.
inline std::string grayroute_header(const http_reply& reply) {
  std::string value;
  std::size_t at = 0;
  while ((at = reply.headers.find("\r\n", at)) != std::string::npos) {
    at += 2;
    const std::size_t colon = reply.headers.find(':', at);
    if (colon == std::string::npos) break;
    std::string name = reply.headers.substr(at, colon - at);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name != "x-grayroute") continue;
    const std::size_t end = reply.headers.find("\r\n", colon);
    value = reply.headers.substr(colon + 1, end == std::string::npos ? std::string::npos : end - colon - 1);
    break;
  }
  while (!value.empty() && value.front() == ' ') value.erase(0, 1);
  if (value.empty()) return value;
  if (value.find("; rule=") == std::string::npos) value += "; rule=";
  return value;
}

}  // namespace grayroute::test::example

#endif  // GRAYROUTE_TESTS_INTEGRATION_POLICY_EXAMPLE_HPP
