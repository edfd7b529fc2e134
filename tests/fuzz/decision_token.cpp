// Decision tokens from the network: never a crash or a read past the input, nothing the
// fuzzer makes up is ever valid, and whatever encode signs, verify accepts.
#include <grayroute/decision_token.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

namespace {

const grayroute::decision_keys& keys() {
  static const grayroute::decision_keys k(grayroute::decision_keys::key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  return k;
}

const grayroute::route_table& routes() {
  static const grayroute::route_table r({"production", "gray", "beta"});
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::unique_ptr<char[]> copy(new char[size ? size : 1]);
  if (size) std::memcpy(copy.get(), data, size);
  const std::string_view token(copy.get(), size);
  const auto v = grayroute::verify_decision_token(token, keys(), routes(), 1796119200);
  if (v.status == grayroute::token_status::valid) {
    // A forgery the fuzzer found would be a 2^-64 event: treat it as a bug in the codec.
    std::abort();
  }
  if (v.status == grayroute::token_status::malformed || v.status == grayroute::token_status::bad_mac) {
    if (!v.claims.route.empty()) std::abort();  // claims are only filled in for genuine tokens
  }
  // The input as a rule name: encode refuses what a token cannot carry, and what it signs verifies.
  const auto t = grayroute::encode_decision_token({"gray", grayroute::route_reason::percentage, token.substr(0, 40), 1,
                                                   1796119260},
                                                  keys());
  if (t && grayroute::verify_decision_token(t->view(), keys(), routes(), 1796119200).status !=
               grayroute::token_status::valid) {
    std::abort();
  }
  return 0;
}
