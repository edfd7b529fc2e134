// parse_list: either every line parsed or one error naming a line that exists.
#include <grayroute/list_file.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto list = grayroute::parse_list(text, {"production", "gray", "beta"});
  const std::size_t lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  if (list.error && (list.error->line == 0 || list.error->line > lines || !list.entries.empty())) std::abort();
  if (!list.error) {
    for (const auto& e : list.entries) {
      if (e.route > 2) std::abort();
    }
  }
  return 0;
}
