// A request as grayroute sees it: the TCP peer and a forward range of header lines
// read straight out of nginx's r->headers_in.headers list, nothing copied.
//
// Include after the nginx headers (ngx_http.h), inside C++.
#ifndef GRAYROUTE_NGINX_REQUEST_HEADERS_HPP
#define GRAYROUTE_NGINX_REQUEST_HEADERS_HPP

#include <cstddef>
#include <iterator>
#include <string_view>

#include <grayroute/headers.hpp>
#include <grayroute/ip.hpp>

namespace grayroute_nginx {

inline std::string_view to_view(const ngx_str_t& s) noexcept {
  return {reinterpret_cast<const char*>(s.data), s.len};
}

/// The header lines of a request, in arrival order. Iterating walks the ngx_list_t parts.
class request_headers {
 public:
  class iterator {
   public:
    using value_type = grayroute::header;
    using reference = value_type;
    using pointer = void;
    using difference_type = std::ptrdiff_t;
    using iterator_category = std::input_iterator_tag;

    iterator() = default;
    explicit iterator(const ngx_list_part_t* part) noexcept : part_(part) { settle(); }

    value_type operator*() const noexcept {
      const ngx_table_elt_t& e = element();
      return {to_view(e.key), to_view(e.value)};
    }

    iterator& operator++() noexcept {
      ++index_;
      settle();
      return *this;
    }

    bool operator==(const iterator& o) const noexcept { return part_ == o.part_ && index_ == o.index_; }
    bool operator!=(const iterator& o) const noexcept { return !(*this == o); }

   private:
    const ngx_table_elt_t& element() const noexcept {
      return static_cast<const ngx_table_elt_t*>(part_->elts)[index_];
    }

    // Skips to the next live line; a header some module deleted has hash 0.
    void settle() noexcept {
      while (part_) {
        if (index_ >= part_->nelts) {
          part_ = part_->next;
          index_ = 0;
        } else if (element().hash == 0) {
          ++index_;
        } else {
          return;
        }
      }
    }

    const ngx_list_part_t* part_ = nullptr;
    ngx_uint_t index_ = 0;
  };

  explicit request_headers(const ngx_list_t& list) noexcept : list_(&list) {}

  iterator begin() const noexcept { return iterator(&list_->part); }
  iterator end() const noexcept { return iterator(); }

 private:
  const ngx_list_t* list_;
};

/// The TCP peer's address; a Unix-socket peer has none and is reported as 0.0.0.0.
inline grayroute::ip_address peer_address(const sockaddr* sa) noexcept {
  switch (sa->sa_family) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
      return grayroute::ip_address::v4(ntohl(in->sin_addr.s_addr));
    }
#if (NGX_HAVE_INET6)
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
      return grayroute::ip_address::from_bytes(in6->sin6_addr.s6_addr, 16).value_or(grayroute::ip_address());
    }
#endif
    default:
      return grayroute::ip_address();
  }
}

}  // namespace grayroute_nginx

#endif  // GRAYROUTE_NGINX_REQUEST_HEADERS_HPP
