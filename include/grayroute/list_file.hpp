// Reading a gray list file (the format is in list_text.hpp). Not in the umbrella
// header: file I/O is for who needs it (the proxy, the nginx module, the Redis
// store's snapshot file).
//
//   auto list = grayroute::load_list_file("/etc/gateway/gray.txt");
//   if (!list) log(to_string(*list.error));     // "line 3: ..." names the bad line
//   else store.replace(list.entries);
//
// A file is applied only when it is complete and stable (list_file_watch): it ends in a
// newline (or is empty) and two looks some time apart read the same bytes, so a file
// rewritten in place (truncated, then written) is never applied empty or half-written.
// Writing a new file and renaming it over the old one is still the way to update a
// list: the rename is atomic, and the next two looks apply it.
#ifndef GRAYROUTE_LIST_FILE_HPP
#define GRAYROUTE_LIST_FILE_HPP

#include <sys/stat.h>
#include <time.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "detail/ascii.hpp"
#include "list_text.hpp"
#include "detail/convert.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// What identifies one version of a file without reading it: rewriting the file in place
/// changes its modification time (and usually its size), renaming another file over it
/// changes the inode. Two looks with equal bytes but different stamps saw two versions.
struct list_file_stamp {
  long long mtime_ns = -1, ctime_ns = -1, size = -1;
  unsigned long long inode = 0;

  friend bool operator==(const list_file_stamp& a, const list_file_stamp& b) noexcept {
    return a.mtime_ns == b.mtime_ns && a.ctime_ns == b.ctime_ns && a.size == b.size && a.inode == b.inode;
  }
  friend bool operator!=(const list_file_stamp& a, const list_file_stamp& b) noexcept { return !(a == b); }
};

namespace detail {
inline list_file_stamp stamp_of(const struct ::stat& info) noexcept {
  list_file_stamp s;
  s.mtime_ns = static_cast<long long>(info.st_mtim.tv_sec) * 1000000000LL + info.st_mtim.tv_nsec;
  s.ctime_ns = static_cast<long long>(info.st_ctim.tv_sec) * 1000000000LL + info.st_ctim.tv_nsec;
  s.size = static_cast<long long>(info.st_size);
  s.inode = static_cast<unsigned long long>(info.st_ino);
  return s;
}
}  // namespace detail

/// Reads a list file whole into `text`; false with an error (line 0) when the path is
/// missing, unreadable or not a regular file (a directory is not an empty list).
/// `stamp`, when given, receives the file's stamp, or -1s when it changed during the read.
[[nodiscard]] inline bool read_list_file(const std::string& path, std::string& text, list_error& error,
                                         list_file_stamp* stamp = nullptr) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    error = list_error{0, "cannot read " + detail::quote_value(path)};
    return false;
  }
  struct ::stat before {};
  if (::fstat(::fileno(file), &before) == 0 && S_ISDIR(before.st_mode)) {
    std::fclose(file);
    error = list_error{0, detail::quote_value(path) + " is a directory, not a list file"};
    return false;
  }
  std::string content;
  char buffer[16384];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) content.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  struct ::stat after {};
  const bool stamped = ::fstat(::fileno(file), &after) == 0;
  std::fclose(file);
  if (failed) {
    error = list_error{0, "cannot read " + detail::quote_value(path)};
    return false;
  }
  if (stamp != nullptr) {
    *stamp = stamped ? detail::stamp_of(after) : list_file_stamp{};
    if (!stamped || detail::stamp_of(before) != *stamp) *stamp = list_file_stamp{};  // written while we read
  }
  text = std::move(content);
  return true;
}

/// Reads and parses a list file; an unreadable file (or a directory) is an error with line 0.
[[nodiscard]] inline parsed_list load_list_file(const std::string& path,
                                                const std::vector<std::string>& routes = {"production", "gray"}) {
  parsed_list out;
  std::string text;
  list_error error;
  if (!read_list_file(path, text, error)) {
    out.error = std::move(error);
    return out;
  }
  return parse_list(text, routes);
}

/// Watches a list file and hands out a version only once it is complete and stable:
/// it ends in a newline (or is empty), and the previous look read the same bytes. An
/// emptied file is applied only after it has stayed empty, untouched, for two looks.
/// "The same" means the same bytes and the same file stamp (modification and change
/// time, size, inode), so a file rewritten between two looks never counts as stable even
/// when it happens to read the same. Call check() at
/// an interval (the proxy's --watch-interval); the interval is how long a writer may
/// pause mid-file without its half being applied.
///
///   grayroute::list_file_watch watch("/etc/gray.list");
///   auto look = watch.check();
///   if (look.state == grayroute::list_file_watch::ready) store.replace(look.list.entries);
class list_file_watch {
 public:
  enum state_type : unsigned char {
    unchanged,  ///< the version already handed out
    settling,   ///< changed or incomplete since the previous look: look again later
    ready,      ///< a new complete, stable version: `list` holds it, parsed
    failed      ///< unreadable, not a file, or a bad line: `list.error` says which
  };
  struct look {
    state_type state = unchanged;
    parsed_list list;
  };

  explicit list_file_watch(std::string path, std::vector<std::string> routes = {"production", "gray"})
      : path_(std::move(path)), routes_(std::move(routes)) {}

  const std::string& path() const noexcept { return path_; }

  /// Looks at the file once.
  [[nodiscard]] look check() {
    new_error_ = false;
    look out;
    std::string text;
    list_error error;
    list_file_stamp stamp;
    if (!read_list_file(path_, text, error, &stamp)) {
      have_previous_ = false;
      out.state = failed;
      out.list.error = std::move(error);
      return report(std::move(out));
    }
    const bool complete = text.empty() || text.back() == '\n';
    // The same bytes *and* the same stamp: equal bytes alone may be two versions (the
    // empty file of one rewrite and the empty file of the next).
    const bool stable = have_previous_ && stamp.mtime_ns >= 0 && stamp == previous_stamp_ && text == previous_;
    quiet_looks_ = stable ? quiet_looks_ + 1 : 0;
    previous_ = std::move(text);
    previous_stamp_ = stamp;
    have_previous_ = true;
    // An emptied list is the one a rewrite in place shows most often: it must stay empty
    // and untouched for two intervals, not one.
    if (!complete || !stable || (previous_.empty() && quiet_looks_ < 2)) {
      out.state = settling;
      return out;
    }
    if (have_applied_ && previous_ == applied_) return out;  // unchanged
    out.list = parse_list(previous_, routes_);
    if (!out.list) {
      out.state = failed;
      return report(std::move(out));
    }
    applied_ = previous_;
    have_applied_ = true;
    reported_error_.clear();
    out.state = ready;
    return out;
  }

  /// Looks until the file is complete and stable, `settle` apart, at most `looks` times
  /// — for start-up and configuration time, when there is no interval to wait for.
  /// Returns the list, or an error (a file that never settled is one).
  [[nodiscard]] parsed_list load(std::chrono::milliseconds settle = std::chrono::milliseconds(50), int looks = 20) {
    have_previous_ = false;
    have_applied_ = false;
    for (int i = 0; i < looks; ++i) {
      if (i > 0) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(settle).count();
        timespec pause{};
        pause.tv_sec = detail::convert<time_t>(ns / 1000000000);
        pause.tv_nsec = detail::convert<long>(ns % 1000000000);
        ::nanosleep(&pause, nullptr);
      }
      look l = check();
      if (l.state == ready || l.state == failed) return std::move(l.list);
    }
    parsed_list out;
    out.error = list_error{0, detail::quote_value(path_) +
                                  " kept changing or does not end in a newline (still being written?)"};
    return out;
  }

  /// True once per distinct error: a caller logs failed looks only when this is true.
  [[nodiscard]] bool new_error() const noexcept { return new_error_; }

 private:
  look report(look out) {
    const std::string message = out.list.error ? to_string(*out.list.error) : std::string();
    new_error_ = message != reported_error_;
    reported_error_ = message;
    // A failed version is not applied; the next good one must differ from it or from
    // the applied one to be handed out, which it does.
    return out;
  }

  std::string path_;
  std::vector<std::string> routes_;
  std::string previous_, applied_, reported_error_;
  list_file_stamp previous_stamp_;
  int quiet_looks_ = 0;  // consecutive looks that found the file unchanged
  bool have_previous_ = false, have_applied_ = false, new_error_ = false;
};

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_LIST_FILE_HPP
