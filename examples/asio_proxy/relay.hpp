// One relay for both directions (Beast's http_relay example, made asynchronous): given
// a parser whose header has been read (and rewritten by forwarding.hpp), write that
// header, then move the body across as it arrives — each read_some is written out
// before the next read, through one fixed buffer. A server-sent-events stream or a slow
// upload flows piece by piece, and a 1 GiB body costs kChunk bytes.
//
// Every timeout is "silent this long": it is armed before each single read or write.
// The header is written before the first body byte is read (or with the body bytes that
// arrived with it, for a body that is not chunked), so trailer fields Beast's parser
// adds to the message later are never serialised (forwarding.hpp: trailers are dropped). A message that had no body at header time (HEAD, 204, 304, length 0) is
// the header alone: a chunked serializer would otherwise add a last chunk.
#ifndef GRAYROUTE_PROXY_RELAY_HPP
#define GRAYROUTE_PROXY_RELAY_HPP

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>

#include <boost/asio/compose.hpp>
#include <boost/asio/coroutine.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

namespace grayroute_proxy {

constexpr std::size_t kChunk = 32 * 1024;
using relay_chunk = std::array<char, kChunk>;

/// Which side ended a relay with an error.
enum class relay_side { none, input, output };

struct relay_timeouts {
  std::chrono::milliseconds input, output;
};

namespace detail {

// A stream with a Beast timeout (basic_stream) gets one; others (test streams) do not.
template <class Stream>
auto arm(Stream& s, std::chrono::milliseconds d, int) -> decltype(s.expires_after(d), void()) {
  s.expires_after(d);
}
template <class Stream>
void arm(Stream&, std::chrono::milliseconds, long) {}

template <bool isRequest, class Output, class Input>
class relay_op : boost::asio::coroutine {
 public:
  using parser_type = boost::beast::http::parser<isRequest, boost::beast::http::buffer_body>;
  using serializer_type = boost::beast::http::serializer<isRequest, boost::beast::http::buffer_body>;

  relay_op(Output& output, Input& input, boost::beast::flat_buffer& buffer, parser_type& parser,
           std::optional<serializer_type>& serializer, relay_chunk& chunk, relay_timeouts timeouts, relay_side& failed)
      : output_(output), input_(input), buffer_(buffer), parser_(parser), serializer_(serializer), chunk_(chunk),
        timeouts_(timeouts), failed_(failed) {}

  template <class Self>
  void operator()(Self& self, boost::beast::error_code ec = {}, std::size_t = 0) {
    namespace http = boost::beast::http;
    auto& body = parser_.get().body();
    BOOST_ASIO_CORO_REENTER(*this) {
      failed_ = relay_side::none;
      serializer_.emplace(parser_.get());
      if (!parser_.is_done() && !parser_.chunked() && buffer_.size() != 0) {
        // Body bytes that came with the header (a small response, usually) go out in the
        // same write: one syscall and one packet, not two. Only bytes already here —
        // never a wait — and never for chunked bodies, whose trailers must not be
        // parsed into the message before its header is serialised.
        body.data = chunk_.data();
        body.size = chunk_.size();
        buffer_.consume(parser_.put(buffer_.data(), ec));
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          failed_ = relay_side::input;
          return self.complete(ec, 0);
        }
        {
          const std::size_t got = chunk_.size() - body.size;
          body.data = got == 0 ? nullptr : chunk_.data();
          body.size = got;
          body.more = !parser_.is_done();
        }
        arm(output_, timeouts_.output, 0);
        BOOST_ASIO_CORO_YIELD http::async_write(output_, *serializer_, std::move(self));
        if (ec == http::error::need_buffer) ec = {};
      } else {
        header_only_ = parser_.is_done();
        arm(output_, timeouts_.output, 0);
        BOOST_ASIO_CORO_YIELD http::async_write_header(output_, *serializer_, std::move(self));
      }
      if (ec) {
        failed_ = relay_side::output;
        return self.complete(ec, 0);
      }
      if (header_only_ || serializer_->is_done()) return self.complete(ec, 0);
      for (;;) {
        if (!parser_.is_done()) {
          body.data = chunk_.data();
          body.size = chunk_.size();
          arm(input_, timeouts_.input, 0);
          BOOST_ASIO_CORO_YIELD http::async_read_some(input_, buffer_, parser_, std::move(self));
          if (ec == http::error::need_buffer) ec = {};
          if (ec) {
            failed_ = relay_side::input;
            return self.complete(ec, 0);
          }
          {
            const std::size_t got = chunk_.size() - body.size;
            if (got == 0 && !parser_.is_done()) continue;  // a chunk header, say: nothing to send yet
            // No data: a null pointer, or Beast's chunked serializer writes the last chunk
            // for the empty buffer and again at the end (found by fuzz_proxy_request).
            body.data = got == 0 ? nullptr : chunk_.data();
            body.size = got;
            body.more = !parser_.is_done();
          }
        } else {
          body.data = nullptr;
          body.size = 0;
          body.more = false;
        }
        arm(output_, timeouts_.output, 0);
        BOOST_ASIO_CORO_YIELD http::async_write(output_, *serializer_, std::move(self));
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          failed_ = relay_side::output;
          return self.complete(ec, 0);
        }
        if (serializer_->is_done()) break;
      }
      self.complete(ec, 0);
    }
  }

 private:
  Output& output_;
  Input& input_;
  boost::beast::flat_buffer& buffer_;
  parser_type& parser_;
  std::optional<serializer_type>& serializer_;
  relay_chunk& chunk_;
  relay_timeouts timeouts_;
  relay_side& failed_;
  bool header_only_ = false;
};

}  // namespace detail

/// Relays the message `parser` is reading from `input` (header done) to `output`.
/// Completes with the first error; `failed` says on which side it happened.
template <bool isRequest, class Output, class Input, class Handler>
auto async_relay(Output& output, Input& input, boost::beast::flat_buffer& input_buffer,
                 boost::beast::http::parser<isRequest, boost::beast::http::buffer_body>& parser,
                 std::optional<boost::beast::http::serializer<isRequest, boost::beast::http::buffer_body>>& serializer,
                 relay_chunk& chunk, relay_timeouts timeouts, relay_side& failed, Handler&& handler) {
  return boost::asio::async_compose<Handler, void(boost::beast::error_code, std::size_t)>(
      detail::relay_op<isRequest, Output, Input>(output, input, input_buffer, parser, serializer, chunk, timeouts,
                                                 failed),
      handler, output, input);
}

}  // namespace grayroute_proxy

#endif  // GRAYROUTE_PROXY_RELAY_HPP
