// One line per request, written whole so lines from several threads never interleave.
#ifndef GRAYROUTE_PROXY_ACCESS_LOG_HPP
#define GRAYROUTE_PROXY_ACCESS_LOG_HPP

#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

namespace grayroute_proxy {

class access_log {
 public:
  /// `target`: a file to append to, "-" for stdout, "off" for nothing.
  explicit access_log(const std::string& target) {
    if (target == "off") return;
    if (target == "-") {
      file_ = stdout;
      return;
    }
    file_ = std::fopen(target.c_str(), "a");
    if (!file_) throw std::runtime_error("--access-log: cannot open \"" + target + "\"");
    owned_ = true;
  }
  ~access_log() {
    if (owned_) std::fclose(file_);
  }
  access_log(const access_log&) = delete;
  access_log& operator=(const access_log&) = delete;

  bool enabled() const noexcept { return file_ != nullptr; }

  void write(std::string_view line) noexcept {
    if (!file_) return;
    // stdio locks the stream per call: one fwrite + fflush per line keeps lines whole
    // and readable by a test or `tail -f` at once.
    flockfile(file_);
    std::fwrite(line.data(), 1, line.size(), file_);
    std::fflush(file_);
    funlockfile(file_);
  }

 private:
  std::FILE* file_ = nullptr;
  bool owned_ = false;
};

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_ACCESS_LOG_HPP
