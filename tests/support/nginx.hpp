// Test support: a real, stock nginx with the grayroute module loaded, in its own prefix.
//
//   grayroute::test::temp_dir dir;
//   grayroute::test::nginx_server nginx(dir, "grayroute_list 10.1.2.3;", R"(
//       location / { grayroute_route client1 client2; proxy_pass http://$grayroute_upstream; })");
//   http_get(nginx.port(), "/");      // "this 8080\n" from the built-in backends
//
// Every instance has its own nginx.conf, pid file, error log and temp paths under its
// temp dir, a free port for the front server and one per backend, and runs in the
// foreground (`daemon off; master_process on;`) so the harness owns and stops it.
#ifndef GRAYROUTE_TESTS_SUPPORT_NGINX_HPP
#define GRAYROUTE_TESTS_SUPPORT_NGINX_HPP

#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "process.hpp"

#ifndef GRAYROUTE_NGINX_MODULE_PATH
#error "define GRAYROUTE_NGINX_MODULE_PATH to the built ngx_http_grayroute_module.so"
#endif

namespace grayroute::test {

/// Runs a command, returning its exit status and merged output.
inline std::pair<int, std::string> run_command(const std::string& command) {
  std::string out;
  int status = -1;
  if (FILE* pipe = ::popen((command + " 2>&1").c_str(), "r")) {
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    status = ::pclose(pipe);
  }
  return {status, out};
}

/// Backends served by the same nginx, as in the seed: `upstream client1` answers
/// "this 8080\n", `client2` "this 8090\n", and so on (each on a free port).
struct backend {
  std::string body;  // without the newline
  int port = 0;
};

class nginx_server {
 public:
  struct options {
    std::vector<std::string> backends{"this 8080", "this 8090"};  // what client1, client2, ... answer
    int worker_processes = 2;
    bool start = true;  // false: only write the configuration (for `nginx -t` tests)
  };

  /// `http_extra` goes into the http block; `locations` into the front server block.
  nginx_server(const temp_dir& dir, const std::string& http_extra, const std::string& locations)
      : nginx_server(dir, http_extra, locations, options{}) {}
  nginx_server(const temp_dir& dir, const std::string& http_extra, const std::string& locations, options opts)
      : dir_(dir), options_(std::move(opts)), port_(free_port()) {
    // Distinct (free_port never repeats itself): nginx would merge two servers listening
    // on one address into virtual servers of one socket, silently.
    for (const auto& body : options_.backends) backends_.push_back({body, free_port()});
    write_config(http_extra, locations);
    if (options_.start) start();
  }

  ~nginx_server() { stop(); }

  /// Starts nginx and waits until it has bound every port (it writes its pid file only
  /// then): a port that answers is not proof enough, another test's server may hold it.
  /// The front port was only free when picked: if another process took it meanwhile,
  /// it is picked again (3 tries); a taken port the test wrote itself fails the start.
  void start() {
    for (int attempt = 1;; ++attempt) {
      ::unlink(dir_.file("nginx.pid").c_str());
      ::unlink(dir_.file("nginx.stdout").c_str());
      process_ = process({"nginx", "-p", prefix(), "-c", conf_path()}, dir_.file("nginx.stdout"));
      const bool bound = eventually([&] { return !read_proc_file(dir_.file("nginx.pid")).empty() || !process_.running(); },
                                    std::chrono::seconds(15));
      if (bound && process_.running() && wait_for_port(port_)) return;
      process_.stop();
      const std::string said = read_proc_file(dir_.file("nginx.stdout")) + error_log();
      const bool front_taken =
          said.find("127.0.0.1:" + std::to_string(port_) + " failed (98: Address already in use)") != std::string::npos;
      if (!front_taken || attempt == 3) throw std::runtime_error("nginx did not start:\n" + said);
      port_ = free_port();
      write_config(http_extra_, locations_);
    }
  }

  void stop() { process_.stop(); }

  /// Rewrites nginx.conf; takes effect at the next reload().
  void write_config(const std::string& http_extra, const std::string& locations) {
    http_extra_ = http_extra;
    locations_ = locations;
    std::ostringstream c;
    c << "load_module " << GRAYROUTE_NGINX_MODULE_PATH << ";\n"
      << "daemon off;\nmaster_process on;\n"
      << "worker_processes " << options_.worker_processes << ";\n"
      << (::geteuid() == 0 ? "user root;\n" : "")
      << "pid " << dir_.file("nginx.pid") << ";\n"
      << "error_log " << dir_.file("error.log") << " notice;\n"
      << "events { worker_connections 1024; }\n"
      << "http {\n"
      << "    access_log off;\n"
      << "    client_body_temp_path " << dir_.file("body") << ";\n"
      << "    proxy_temp_path " << dir_.file("proxy") << ";\n"
      << "    fastcgi_temp_path " << dir_.file("fastcgi") << ";\n"
      << "    uwsgi_temp_path " << dir_.file("uwsgi") << ";\n"
      << "    scgi_temp_path " << dir_.file("scgi") << ";\n";
    for (std::size_t i = 0; i < backends_.size(); ++i) {
      const backend& b = backends_[i];
      c << "    upstream client" << i + 1 << " { server 127.0.0.1:" << b.port << "; keepalive 16; }\n"
        << "    server { listen 127.0.0.1:" << b.port << "; location / { return 200 \"" << b.body
        << "\\n\"; } }\n";
    }
    c << http_extra << "\n"
      << "    server {\n"
      << "        listen 127.0.0.1:" << port_ << ";\n"
      << "        proxy_http_version 1.1;\n"
      << "        proxy_set_header Connection \"\";\n"
      << locations << "\n"
      << "    }\n"
      << "}\n";
    dir_.write("nginx.conf", c.str());
  }

  /// `nginx -t` on the current nginx.conf: exit status and output.
  std::pair<int, std::string> test_config() const {
    return run_command("nginx -t -p '" + prefix() + "' -c '" + conf_path() + "'");
  }

  /// SIGHUP, then waits until the old workers are gone and the new ones are there.
  bool reload(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const std::vector<int> before = worker_pids();
    process_.signal(SIGHUP);
    return eventually(
        [&] {
          const std::vector<int> now = worker_pids();
          if (static_cast<int>(now.size()) != options_.worker_processes) return false;
          for (int pid : now) {
            for (int old : before) {
              if (pid == old) return false;
            }
          }
          return true;
        },
        timeout);
  }

  /// The worker processes (children of the master), by /proc.
  std::vector<int> worker_pids() const {
    std::vector<int> pids;
    DIR* proc = ::opendir("/proc");
    if (!proc) return pids;
    while (dirent* entry = ::readdir(proc)) {
      const int pid = std::atoi(entry->d_name);
      if (pid <= 0) continue;
      // Workers come and go (a reload): a pid listed above may be gone by now.
      const std::string text = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
      // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
      const std::size_t close = text.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(text.substr(close + 1));
      std::string state;
      int ppid = 0;
      rest >> state >> ppid;
      if (ppid == process_.pid() && state != "Z") pids.push_back(pid);
    }
    ::closedir(proc);
    return pids;
  }

  /// Threads of all workers together (each worker has its main thread, plus a Redis
  /// sync thread when grayroute_redis is configured).
  int worker_threads() const {
    int threads = 0;
    for (int pid : worker_pids()) {
      const long n = proc_status_field(pid, "Threads");  // -1: the worker just exited
      if (n > 0) threads += static_cast<int>(n);
    }
    return threads;
  }

  int port() const { return port_; }
  int worker_processes() const { return options_.worker_processes; }
  const std::vector<backend>& backends() const { return backends_; }
  std::string prefix() const { return dir_.path(); }
  std::string conf_path() const { return dir_.file("nginx.conf"); }
  std::string error_log() const {
    std::ifstream in(dir_.file("error.log"));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  const temp_dir& dir_;
  options options_;
  int port_;
  std::vector<backend> backends_;
  std::string http_extra_, locations_;  // what the last write_config wrote, to write again on a new port
  process process_;
};

/// Keeps `threads` clients sending requests until stopped; counts the ones that
/// failed (no response, not 200, or an empty body: every backend answers something).
class load_generator {
 public:
  load_generator(int port, std::string path, int threads = 2) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, port, path] {
        while (!stop_.load()) {
          const http_reply reply = http_get(port, path);
          const bool ok = reply.status == 200 && !reply.body.empty();
          (ok ? ok_ : failed_).fetch_add(1);
          if (!ok) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (first_failure_.empty()) first_failure_ = std::to_string(reply.status) + " " + reply.body;
          }
        }
      });
    }
  }
  ~load_generator() { stop(); }

  void stop() {
    stop_.store(true);
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  long ok() const { return ok_.load(); }
  long failed() const { return failed_.load(); }
  std::string first_failure() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return first_failure_;
  }

  /// Waits until at least `n` requests have succeeded (bounded).
  bool wait_for(long n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    return eventually([&] { return ok_.load() >= n; }, timeout);
  }

 private:
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<long> ok_{0}, failed_{0};
  mutable std::mutex mutex_;
  std::string first_failure_;
};

}  // namespace grayroute::test

#endif  // GRAYROUTE_TESTS_SUPPORT_NGINX_HPP
