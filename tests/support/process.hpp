// Test support: real child processes on loopback, with their own temp dirs and ports.
//
//   grayroute::test::temp_dir dir;
//   grayroute::test::redis_server redis(dir, {/*password=*/"foobared"});
//   auto reply = grayroute::test::http_get(port, "/test/index.html", {{"X-Real-IP", "1.2.3.4"}});
//
// Every process is killed (SIGTERM, then SIGKILL) when its owner dies, so a failing
// test never leaves a server behind.
#ifndef GRAYROUTE_TESTS_SUPPORT_PROCESS_HPP
#define GRAYROUTE_TESTS_SUPPORT_PROCESS_HPP

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace grayroute::test {

/// The text of a /proc file, or "" when the process is gone. A process can exit
/// between being listed and being read, and std::ifstream then throws from deep in
/// its buffer (`basic_filebuf::underflow ... No such process`): read with plain
/// open/read, which report that as an error code.
inline std::string read_proc_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      text.clear();  // gone mid-read: as if it had never been there
      break;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

/// One "Name:\tvalue" field of /proc/<pid>/status as a number; -1 when absent or gone.
inline long proc_status_field(pid_t pid, const std::string& field) {
  std::istringstream status(read_proc_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 && line[field.size()] == ':') {
      return std::atol(line.c_str() + field.size() + 1);
    }
  }
  return -1;
}

/// A fresh directory under $TMPDIR, removed with its contents at the end.
class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/grayroute-test-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!::mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buffer.data();
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    const std::string command = "rm -rf '" + path_ + "'";
    if (std::system(command.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", path_.c_str());
  }

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  void write(const std::string& name, const std::string& text) const {
    // Write then rename, so a reader never sees half a file.
    const std::string tmp = file(name + ".tmp");
    std::ofstream(tmp, std::ios::binary | std::ios::trunc) << text;
    if (std::rename(tmp.c_str(), file(name).c_str()) != 0) throw std::runtime_error("rename failed: " + name);
  }

 private:
  std::string path_;
};

/// A loopback TCP port that was free a moment ago (bind to 0, read, close), never one
/// this process has had before: the kernel may hand the same port to two binds in a row,
/// and two servers of one test given one port would answer each other's requests.
inline int free_port() {
  static std::mutex given_mutex;
  static std::set<int> given;
  for (int tries = 0; tries < 1000; ++tries) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      throw std::runtime_error("bind failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    const int port = ntohs(addr.sin_port);
    const std::lock_guard<std::mutex> lock(given_mutex);
    if (given.insert(port).second) return port;
  }
  throw std::runtime_error("free_port: no port this process has not had already");
}

/// True once something accepts TCP connections on 127.0.0.1:port.
inline bool port_open(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

inline bool wait_for_port(int port, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (port_open(port)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

/// True when process `pid` itself holds a socket listening on 127.0.0.1:port (by
/// /proc/net/tcp and the process's descriptors): a port that merely answers may be
/// another test's server that took it between free_port() and our bind.
inline bool listens_on(pid_t pid, int port) {
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X", static_cast<unsigned>(port));
  std::vector<std::string> inodes;
  std::istringstream table(read_proc_file("/proc/net/tcp"));
  for (std::string line; std::getline(table, line);) {
    std::istringstream fields(line);
    std::string slot, address, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> address >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    if (address == local && state == "0A") inodes.push_back("socket:[" + inode + "]");
  }
  if (inodes.empty()) return false;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(fd_dir.c_str());
  if (!dir) return false;
  bool found = false;
  while (dirent* entry = ::readdir(dir)) {
    char target[64];
    const ssize_t n = ::readlink((fd_dir + "/" + entry->d_name).c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    for (const auto& inode : inodes) found = found || inode == target;
  }
  ::closedir(dir);
  return found;
}

/// Polls `done` every few ms until it holds or `timeout` passes.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

/// A child process; stdout and stderr go to `log_path`.
class process {
 public:
  process() = default;
  process(const std::vector<std::string>& argv, const std::string& log_path) : log_path_(log_path) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::setpgid(0, 0);  // its own group, so stop() also reaches its children (nginx workers)
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);
  }
  process(process&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)),
        reaped_(std::exchange(other.reaped_, false)),
        status_(other.status_),
        log_path_(std::move(other.log_path_)) {}
  process& operator=(process&& other) noexcept {
    if (this != &other) {
      stop();
      pid_ = std::exchange(other.pid_, -1);
      reaped_ = std::exchange(other.reaped_, false);
      status_ = other.status_;
      log_path_ = std::move(other.log_path_);
    }
    return *this;
  }
  ~process() { stop(); }

  pid_t pid() const { return pid_; }
  /// False once it has exited. An exited child is reaped here, so its status is kept
  /// for stop() and its pid, free for reuse, is never signalled again.
  bool running() const {
    if (pid_ <= 0 || reaped_) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = status;
    }
    return r == 0;
  }
  void signal(int sig) const {
    if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
  }

  /// SIGTERM to the group, SIGKILL after `grace`; returns the exit status (or -1).
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    if (pid_ <= 0) return -1;
    int status = status_;
    if (!reaped_) {
      ::kill(-pid_, SIGTERM);
      const auto deadline = std::chrono::steady_clock::now() + grace;
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(-pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    ::kill(-pid_, SIGKILL);  // stragglers in the group (which keep its id from reuse)
    pid_ = -1;
    reaped_ = false;
    return status;
  }

  /// Kills at once, like a crash.
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    if (!reaped_) ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    reaped_ = false;
  }

  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  pid_t pid_ = -1;
  mutable bool reaped_ = false;  // running() saw it exit and collected its status
  mutable int status_ = 0;
  std::string log_path_;
};

/// A real redis-server on a free loopback port, with its own directory.
class redis_server {
 public:
  struct options {
    std::string password;       // requirepass; empty: none
    bool persistence = false;   // RDB/AOF off by default: tests want a clean slate
  };

  explicit redis_server(const temp_dir& dir) : redis_server(dir, options{}) {}
  redis_server(const temp_dir& dir, options opts) : dir_(dir), options_(std::move(opts)), port_(free_port()) {
    start();
  }

  /// (Re)starts on the same port, as after a crash or a restart. Started means this
  /// redis-server listens there itself; on the first start a port another process took
  /// meanwhile is picked again (3 tries).
  void start() {
    for (int attempt = 1;; ++attempt) {
      std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                       "--dir", dir_.path(), "--save", "", "--appendonly", "no", "--daemonize", "no"};
      if (!options_.password.empty()) argv.insert(argv.end(), {"--requirepass", options_.password});
      if (options_.persistence) argv.insert(argv.end(), {"--save", "1 1"});
      process_ = process(argv, dir_.file("redis-" + std::to_string(port_) + ".log"));
      eventually([&] { return listens_on(process_.pid(), port_) || !process_.running(); }, std::chrono::seconds(10));
      if (listens_on(process_.pid(), port_)) {
        started_ = true;
        return;
      }
      const std::string said = process_.log();
      process_.stop();
      if (started_ || attempt == 3 || said.find("Address already in use") == std::string::npos) {
        throw std::runtime_error("redis-server did not start: " + said);
      }
      port_ = free_port();
    }
  }

  void stop() { process_.stop(); }
  void kill_now() { process_.kill_now(); }
  /// SIGSTOP / SIGCONT: a server that accepts nothing and answers nothing (a blackhole).
  void pause() { process_.signal(SIGSTOP); }
  void resume() { process_.signal(SIGCONT); }

  int port() const { return port_; }
  const std::string& password() const { return options_.password; }

  /// Runs redis-cli against this server; returns its stdout (trimmed of the last newline).
  std::string cli(const std::vector<std::string>& args) const {
    std::string command = "redis-cli -h 127.0.0.1 -p " + std::to_string(port_);
    if (!options_.password.empty()) command += " --no-auth-warning -a '" + options_.password + "'";
    for (const auto& a : args) command += " '" + a + "'";
    command += " 2>&1";
    std::string out;
    if (FILE* pipe = ::popen(command.c_str(), "r")) {
      char buffer[4096];
      size_t n;
      while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
      ::pclose(pipe);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }

 private:
  const temp_dir& dir_;
  options options_;
  int port_;
  bool started_ = false;  // once it has served, a restart keeps its port
  process process_;
};

struct http_reply {
  int status = 0;  // 0: no response (connection refused, reset, timeout)
  std::string headers;
  std::string body;
};

/// The value of the first `name: value` line of a response head (the name spelled as the
/// server sends it), "" without one.
inline std::string header_value(const std::string& head, const std::string& name) {
  const std::string key = "\r\n" + name + ": ";
  const std::size_t at = head.find(key);
  if (at == std::string::npos) return "";
  const std::size_t start = at + key.size();
  return head.substr(start, head.find("\r\n", start) - start);
}
inline std::string header_value(const http_reply& reply, const std::string& name) { return header_value(reply.headers, name); }

/// A TCP connection to 127.0.0.1:port with send/receive timeouts, optionally from
/// another loopback source address (127.0.0.2, ...: a different client to the
/// server). Returns the socket, or -1 when nothing accepts.
inline int connect_loopback(int port, std::chrono::milliseconds timeout = std::chrono::seconds(5),
                            const std::string& bind_address = "") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (!bind_address.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, bind_address.c_str(), &local.sin_addr);
    ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Sends `request` (a whole HTTP/1.1 request) over a fresh loopback connection and
/// reads the response until the server closes it.
inline http_reply http_exchange(int port, const std::string& request,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                const std::string& bind_address = "") {
  http_reply reply;
  const int fd = connect_loopback(port, timeout, bind_address);
  if (fd < 0) return reply;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return reply;
  }
  std::string raw;
  char buffer[8192];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) raw.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  const size_t end = raw.find("\r\n\r\n");
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || end == std::string::npos) return reply;
  reply.status = std::atoi(raw.c_str() + 9);
  reply.headers = raw.substr(0, end);
  reply.body = raw.substr(end + 4);
  return reply;
}

/// One HTTP/1.1 request over a fresh loopback connection (Connection: close).
inline http_reply http_get(int port, const std::string& path,
                           const std::vector<std::pair<std::string, std::string>>& headers = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(5),
                           const std::string& bind_address = "") {
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "Connection: close\r\n\r\n";
  return http_exchange(port, request, timeout, bind_address);
}

}  // namespace grayroute::test

#endif  // GRAYROUTE_TESTS_SUPPORT_PROCESS_HPP
