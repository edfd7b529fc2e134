// Sticky percentage rollout: the same key always gets the same answer.
//
//   grayroute::percentage_rollout five(5.0, /*seed=*/42);
//   five.includes("user-1234");             // stable for this user and seed
//
// bucket(key) = MurmurHash3_x86_32(key, seed) % 10000, and a key is in a rollout of
// p percent when bucket < p * 100. So raising p only ever adds keys, the granularity
// is 0.01%, and rollouts with different seeds pick independent sets of keys. An IP
// address key hashes its 4 or 16 network-order bytes.
#ifndef GRAYROUTE_ROLLOUT_HPP
#define GRAYROUTE_ROLLOUT_HPP

#include <cstdint>
#include <string>
#include <string_view>

#include "config_error.hpp"
#include "detail/murmur3.hpp"
#include "ip.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

class percentage_rollout {
 public:
  static constexpr std::uint32_t kBuckets = 10000;

  /// Nobody: 0%.
  constexpr percentage_rollout() noexcept = default;

  /// `percent` in [0, 100], rounded to 0.01; throws config_error otherwise.
  percentage_rollout(double percent, std::uint32_t seed) : seed_(seed) {
    if (!(percent >= 0.0 && percent <= 100.0)) {
      detail::throw_config_error("percentage " + std::to_string(percent) + " is outside 0..100");
    }
    // Round half up; percent is non-negative here (and <cmath> is not worth its
    // 10,000 lines to every includer for one lround).
    threshold_ = static_cast<std::uint32_t>(percent * 100.0 + 0.5);
  }

  static std::uint32_t bucket(std::string_view key, std::uint32_t seed) noexcept {
    return detail::murmur3_x86_32(key, seed) % kBuckets;
  }

  static std::uint32_t bucket(const ip_address& key, std::uint32_t seed) noexcept {
    unsigned char bytes[16];
    const std::size_t n = key.unmapped().to_bytes(bytes);
    return detail::murmur3_x86_32(bytes, n, seed) % kBuckets;
  }

  /// Finer buckets for shares in 0.0001% steps (policy splits): a key's fine bucket is
  /// bucket() * 100 plus a sub-bucket from the rest of the hash, so for a share that is a
  /// multiple of 0.01% "fine_bucket < share * 10000" picks exactly the keys "bucket <
  /// share * 100" picks: a policy split and this rollout agree on every such share.
  static constexpr std::uint32_t kFineBuckets = kBuckets * 100;

  static std::uint32_t fine_bucket(std::string_view key, std::uint32_t seed) noexcept {
    return refine(detail::murmur3_x86_32(key, seed));
  }

  static std::uint32_t fine_bucket(const ip_address& key, std::uint32_t seed) noexcept {
    unsigned char bytes[16];
    const std::size_t n = key.unmapped().to_bytes(bytes);
    return refine(detail::murmur3_x86_32(bytes, n, seed));
  }

  bool includes(std::string_view key) const noexcept { return threshold_ != 0 && bucket(key, seed_) < threshold_; }
  bool includes(const ip_address& key) const noexcept { return threshold_ != 0 && bucket(key, seed_) < threshold_; }

  /// The share in hundredths of a percent (500 is 5%).
  constexpr std::uint32_t basis_points() const noexcept { return threshold_; }
  constexpr std::uint32_t seed() const noexcept { return seed_; }

 private:
  static constexpr std::uint32_t refine(std::uint32_t hash) noexcept {
    return hash % kBuckets * 100 + hash / kBuckets % 100;
  }

  std::uint32_t threshold_ = 0;
  std::uint32_t seed_ = 0;
};

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_ROLLOUT_HPP
