// Test support: a small blocking Redis client for writing test data fast (redis-cli
// costs a process per command), plus a pipelined bulk writer for big lists.
//
//   grayroute::test::redis_client redis(server.port(), server.password());
//   redis.run({"SET", "10.1.2.3", "10.1.2.3"});
//   redis.pipeline(commands);   // a million SETs in a few seconds
#ifndef GRAYROUTE_TESTS_SUPPORT_REDIS_CLIENT_HPP
#define GRAYROUTE_TESTS_SUPPORT_REDIS_CLIENT_HPP

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace grayroute::test {

class redis_client {
 public:
  explicit redis_client(int port, const std::string& password = "", const std::string& username = "") {
    timeval tv{5, 0};
    ctx_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!ctx_ || ctx_->err) {
      const std::string error = ctx_ ? ctx_->errstr : "out of memory";
      if (ctx_) redisFree(ctx_);
      throw std::runtime_error("redis_client: connect to port " + std::to_string(port) + ": " + error);
    }
    redisSetTimeout(ctx_, tv);
    if (!password.empty()) {
      if (username.empty()) {
        run({"AUTH", password});
      } else {
        run({"AUTH", username, password});
      }
    }
  }
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;
  ~redis_client() { redisFree(ctx_); }

  /// One command; returns the reply as text ("(nil)" for nil, "ERR ..." errors as is,
  /// integers in decimal, arrays as their element count).
  std::string run(const std::vector<std::string>& args) {
    append(args);
    return read();
  }

  /// Sends every command, then reads every reply: one round trip per socket buffer.
  /// Throws on the first error reply.
  void pipeline(const std::vector<std::vector<std::string>>& commands, std::size_t window = 10000) {
    std::size_t sent = 0, received = 0;
    while (received < commands.size()) {
      while (sent < commands.size() && sent - received < window) append(commands[sent++]);
      const std::string r = read();
      if (r.compare(0, 3, "ERR") == 0 || r.compare(0, 9, "WRONGTYPE") == 0) {
        throw std::runtime_error("redis_client: pipeline reply " + r);
      }
      ++received;
    }
  }

 private:
  void append(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lengths.data()) != REDIS_OK) {
      throw std::runtime_error(std::string("redis_client: ") + ctx_->errstr);
    }
  }

  std::string read() {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) throw std::runtime_error(std::string("redis_client: ") + ctx_->errstr);
    auto* r = static_cast<redisReply*>(raw);
    std::string out;
    switch (r->type) {
      case REDIS_REPLY_NIL: out = "(nil)"; break;
      case REDIS_REPLY_INTEGER: out = std::to_string(r->integer); break;
      case REDIS_REPLY_ARRAY: out = std::to_string(r->elements); break;
      default: out.assign(r->str, r->len); break;
    }
    freeReplyObject(r);
    return out;
  }

  redisContext* ctx_ = nullptr;
};

}  // namespace grayroute::test

#endif  // GRAYROUTE_TESTS_SUPPORT_REDIS_CLIENT_HPP
