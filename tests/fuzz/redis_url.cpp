// parse_redis_url: any text is either rejected with config_error or gives a config that
// validates; a password written in the URL never shows in the error.
#include <grayroute/redis_config.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(data), size);
  try {
    const grayroute::redis_config config = grayroute::parse_redis_url(url);
    grayroute::detail::validate(config);
  } catch (const grayroute::config_error& e) {
    // A distinctive password planted by the dictionary (and written only there) must not leak.
    const std::size_t planted = url.find(":Secr3tPw@");
    if (planted != std::string_view::npos && url.find("Secr3tPw", planted + 2) == std::string_view::npos &&
        url.find("Secr3tPw") == planted + 1 && std::string(e.what()).find("Secr3tPw") != std::string::npos) {
      std::abort();
    }
  }
  return 0;
}
