// Reading a gray list file (the format is in list_text.hpp). Not in the umbrella
// header: file I/O is for who needs it (the proxy, the nginx module, the Redis
// store's snapshot file).
//
//   auto list = grayroute::load_list_file("/etc/gateway/gray.txt");
//   if (!list) log(to_string(*list.error));     // "line 3: ..." names the bad line
//   else store.replace(list.entries);
#ifndef GRAYROUTE_LIST_FILE_HPP
#define GRAYROUTE_LIST_FILE_HPP

#include <cstdio>
#include <string>
#include <vector>

#include "detail/ascii.hpp"
#include "list_text.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// Reads and parses a list file; an unreadable file is an error with line 0.
[[nodiscard]] inline parsed_list load_list_file(const std::string& path,
                                                const std::vector<std::string>& routes = {"production", "gray"}) {
  parsed_list out;
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    out.error = list_error{0, "cannot read " + detail::quote_value(path)};
    return out;
  }
  std::string text;
  char buffer[16384];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) {
    out.error = list_error{0, "cannot read " + detail::quote_value(path)};
    return out;
  }
  return parse_list(text, routes);
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_LIST_FILE_HPP
