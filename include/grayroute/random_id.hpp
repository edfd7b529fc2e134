// Random ids for anonymous users, from the kernel's CSPRNG (getrandom(2)).
//
//   if (auto id = grayroute::random_id()) key = id->view();   // 32 lower-case hex digits
//
// An id is 128 random bits: unguessable (one user cannot pick another's route or
// collide with them on purpose) and unique in practice. It is the sticky-hash key of a
// request that carries none of the rollout keys, and goes back to the browser in a
// Set-Cookie (set_cookie.hpp) so later requests keep it. Linux only (getrandom(2), glibc
// 2.25), hence kept out of the portable core umbrella grayroute.hpp.
#ifndef GRAYROUTE_RANDOM_ID_HPP
#define GRAYROUTE_RANDOM_ID_HPP

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

/// 128 random bits as 32 lower-case hex digits, in place: no allocation.
class anonymous_id {
 public:
  static constexpr std::size_t kBytes = 16;
  static constexpr std::size_t kLength = 2 * kBytes;

  std::string_view view() const noexcept { return {text_.data(), text_.size()}; }

 private:
  std::array<char, kLength> text_{};
  friend std::optional<anonymous_id> random_id() noexcept;
};

/// A fresh id from getrandom(2); nullopt only if the kernel refuses (ENOSYS, a seccomp
/// filter), in which case the caller goes without a pin rather than a weak id.
[[nodiscard]] inline std::optional<anonymous_id> random_id() noexcept {
  unsigned char bytes[anonymous_id::kBytes];
  std::size_t have = 0;
  // Blocks only until the pool is first initialized at boot, then never; a signal or
  // a short read just asks again (bounded: each round makes progress or is EINTR).
  for (int attempts = 0; have < sizeof bytes && attempts < 64; ++attempts) {
    const ssize_t n = getrandom(bytes + have, sizeof bytes - have, 0);
    if (n > 0) {
      have += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      return std::nullopt;
    }
  }
  if (have < sizeof bytes) return std::nullopt;
  static constexpr char kHex[] = "0123456789abcdef";
  anonymous_id id;
  for (std::size_t i = 0; i < sizeof bytes; ++i) {
    id.text_[2 * i] = kHex[bytes[i] >> 4];
    id.text_[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return id;
}

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_RANDOM_ID_HPP
