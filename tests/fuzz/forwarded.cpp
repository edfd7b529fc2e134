// Forwarded / X-Forwarded-For / X-Real-IP through the resolver: never a crash, an
// untrusted peer is always its own client whatever the headers say, and the lazy
// right-to-left X-Forwarded-For walk agrees with walking every hop.
#include <grayroute/client_ip.hpp>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

namespace {

const grayroute::client_ip_resolver& resolver(bool recursive) {
  static const grayroute::client_ip_resolver on(
      {{"10.0.0.0/8", "127.0.0.1", "2001:db8::/32"}, {"X-Real-IP", "X-Forwarded-For", "Forwarded"}, true});
  static const grayroute::client_ip_resolver off(
      {{"10.0.0.0/8", "127.0.0.1", "2001:db8::/32"}, {"Forwarded", "X-Forwarded-For", "X-Real-IP"}, false});
  return recursive ? on : off;
}

// X-Forwarded-For only, to hold the lazy right-to-left walk to the plain reading.
const grayroute::client_ip_resolver& xff_resolver() {
  static const grayroute::client_ip_resolver r({{"10.0.0.0/8", "2001:db8::/32"}, {"X-Forwarded-For"}, true});
  return r;
}

// Every element of every line, walked from the right: the first untrusted hop, or
// the last trusted one before an invalid hop, or the leftmost when all are trusted.
std::optional<grayroute::ip_address> plain_walk(const std::vector<grayroute::header>& headers) {
  std::vector<std::optional<grayroute::ip_address>> hops;
  for (const auto& [name, line] : headers) {
    if (name != "X-Forwarded-For" && name != "x-forwarded-for") continue;
    grayroute::for_each_x_forwarded_for(line, [&](const std::optional<grayroute::ip_address>& hop) {
      hops.push_back(hop ? std::optional(hop->unmapped()) : std::nullopt);
    });
  }
  std::optional<grayroute::ip_address> last_trusted;
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    if (!*it) return last_trusted;
    if (!xff_resolver().is_trusted(**it)) return *it;
    last_trusted = *it;
  }
  return last_trusted;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  // Lines of the input become header lines, their names chosen by the mode bits.
  static constexpr std::string_view kNames[] = {"X-Forwarded-For", "Forwarded", "X-Real-IP", "x-forwarded-for"};
  std::vector<grayroute::header> headers;
  for (std::size_t i = 0; !rest.empty(); ++i) {
    const std::size_t newline = rest.find('\n');
    headers.push_back({kNames[(mode >> (2 * (i % 3))) & 3], rest.substr(0, newline)});
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
  }
  for (const auto& [name, line] : headers) {
    grayroute::for_each_forwarded_for(line, [](const std::optional<grayroute::ip_address>&) {});
    grayroute::for_each_x_forwarded_for(line, [](const std::optional<grayroute::ip_address>&) {});
    if (const auto a = grayroute::parse_forwarded_address(line); a && *grayroute::parse_ip(grayroute::to_string(*a)) != *a) {
      std::abort();
    }
  }
  const auto trusted_peer = *grayroute::parse_ip("10.1.2.3");
  const auto stranger = *grayroute::parse_ip("203.0.113.7");
  const auto& r = resolver(mode & 0x80);
  const auto who = r.resolve(trusted_peer, headers);
  if (!who.from_header() && who.address != trusted_peer) std::abort();
  if (who.address.is_v4_mapped()) std::abort();  // results come out unmapped
  const auto other = r.resolve(stranger, headers);
  if (other.from_header() || other.address != stranger) std::abort();
  const auto expected = plain_walk(headers);
  const auto lazy = xff_resolver().resolve(trusted_peer, headers);
  if (expected ? lazy.address != *expected || !lazy.from_header() : lazy.from_header()) std::abort();
  return 0;
}
