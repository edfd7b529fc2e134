#include <grayroute/rollout.hpp>
#include <grayroute/weight_schedule.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using grayroute::parse_weight_schedule;
using grayroute::ramp_shape;

namespace {

constexpr std::int64_t kStart = 1796119200000;  // 2026-12-01T10:00:00Z
constexpr std::int64_t kHour = 3600000;
constexpr std::int64_t kMinute = 60000;
const char* const kRamp = "2026-12-01T10:00:00Z 1%, +1h 5%, +1h 25%, +2h 100%";

}  // namespace

TEST_SUITE("weight_schedule") {
  TEST_CASE("RFC 3339 UTC times: Unix milliseconds, strictly") {
    using grayroute::detail::parse_rfc3339_utc;
    CHECK(parse_rfc3339_utc("2026-12-01T10:00:00Z") == kStart);
    CHECK(parse_rfc3339_utc("1970-01-01T00:00:00Z") == 0);
    CHECK(parse_rfc3339_utc("2000-02-29T23:59:59Z") == 951868799000);
    CHECK(parse_rfc3339_utc("2100-03-01T00:00:00Z") == 4107542400000);
    CHECK(parse_rfc3339_utc("9999-12-31T23:59:59Z") == 253402300799000);
    CHECK(parse_rfc3339_utc("2026-12-01t10:00:00.25z") == kStart + 250);  // RFC 3339 5.6: t, z allowed
    CHECK(parse_rfc3339_utc("2026-12-01T10:00:00.1234Z") == kStart + 123);
    for (const char* bad : {"2026-12-01T10:00:00", "2026-12-01T10:00:00+00:00", "2026-12-01 10:00:00Z",
                            "2026-12-1T10:00:00Z", "2026-13-01T10:00:00Z", "2026-02-29T10:00:00Z",
                            "2100-02-29T00:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T10:60:00Z",
                            "2026-12-01T10:00:60Z", "2026-12-01T10:00:00.Z", "2026-12-00T10:00:00Z",
                            "+026-12-01T10:00:00Z", "2026-12-01T10:00:00.1234567890Z"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_rfc3339_utc(bad));
    }
  }

  TEST_CASE("weights in steps of 0.0001%") {
    using grayroute::detail::parse_ppm_percent;
    CHECK(parse_ppm_percent("1%") == 10000u);
    CHECK(parse_ppm_percent("0.0001%") == 1u);
    CHECK(parse_ppm_percent("12.5%") == 125000u);
    CHECK(parse_ppm_percent("100%") == 1000000u);
    CHECK(parse_ppm_percent("0%") == 0u);
    for (const char* bad : {"100.0001%", "0.00001%", "1", "%", ".5%", "1.%", "-1%", "1000%", "1 %"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_ppm_percent(bad));
    }
  }

  TEST_CASE("the issue's ramp, linear and stepwise, with the next step for status") {
    const auto linear = parse_weight_schedule(kRamp, ramp_shape::linear);
    const auto steps = parse_weight_schedule(kRamp, ramp_shape::steps);
    REQUIRE(linear.steps().size() == 4);
    CHECK(linear.steps()[3].at_ms == kStart + 4 * kHour);
    CHECK(linear.ppm_at(kStart - 1) == 0);
    CHECK(linear.ppm_at(kStart) == 10000);
    CHECK(linear.ppm_at(kStart + 30 * kMinute) == 30000);
    CHECK(steps.ppm_at(kStart + 30 * kMinute) == 10000);
    CHECK(linear.ppm_at(kStart + kHour) == 50000);
    CHECK(steps.ppm_at(kStart + kHour - 1) == 10000);
    CHECK(steps.ppm_at(kStart + kHour) == 50000);
    CHECK(linear.ppm_at(kStart + 3 * kHour) == 625000);
    CHECK(linear.ppm_at(kStart + 4 * kHour) == 1000000);
    CHECK(linear.ppm_at(kStart + 400 * kHour) == 1000000);
    CHECK(linear.next_step(kStart - 1)->at_ms == kStart);
    CHECK(linear.next_step(kStart)->ppm == 50000);
    CHECK(linear.next_step(kStart + 3 * kHour)->at_ms == kStart + 4 * kHour);
    CHECK_FALSE(linear.next_step(kStart + 4 * kHour));
    const grayroute::ramp_status status = linear.status(kStart + 90 * kMinute);
    CHECK(status.ppm == 150000);
    CHECK(status.next->at_ms == kStart + 2 * kHour);
    CHECK(status.next->ppm == 250000);
    // The issue's own notation.
    const auto arrows = parse_weight_schedule("2026-12-01T10:00:00Z 1% → +1h 5% → +1h 25% → +2h 100%", ramp_shape::linear);
    CHECK(arrows.steps().size() == 4);
    CHECK(arrows.ppm_at(kStart + 3 * kHour) == 625000);
    // Absolute times after the first, compound offsets, the finest weight.
    const auto mixed = parse_weight_schedule("2026-12-01T10:00:00Z 0.0001%, 2026-12-01T10:30:00Z 0.01%, +1h30m 1%",
                                             ramp_shape::steps);
    CHECK(mixed.ppm_at(kStart) == 1);
    CHECK(mixed.steps()[2].at_ms == kStart + 2 * kHour);
  }

  TEST_CASE("bad schedules name the step and the value") {
    struct row {
      const char* text;
      const char* message;
    };
    for (const row& r : {
             row{"", "step 1 \"\": empty"},
             row{"+1h 5%", "step 1 \"+1h 5%\": \"+1h\" is not an RFC 3339 UTC time"},
             row{"2026-12-01T10:00:00+01:00 1%", "\"2026-12-01T10:00:00+01:00\" is not an RFC 3339 UTC time"},
             row{"2026-12-01T10:00:00Z 1%, +1x 5%", "step 2 \"+1x 5%\": \"+1x\" is not an offset"},
             row{"2026-12-01T10:00:00Z 1%, +1h 5", "step 2 \"+1h 5\": \"5\" is not a weight"},
             row{"2026-12-01T10:00:00Z 1%, +1h 101%", "\"101%\" is not a weight"},
             row{"2026-12-01T10:00:00Z 5%, +1h 1%", "step 2 \"+1h 1%\": the weight goes down"},
             row{"2026-12-01T10:00:00Z 1%, 2026-12-01T09:00:00Z 5%", "step 2 \"2026-12-01T09:00:00Z 5%\": not after"},
             row{"2026-12-01T10:00:00Z 1%,", "step 2 \"\": empty"},
             row{"2026-12-01T10:00:00Z 1%, +0s 2%", "\"+0s\" is not an offset"},
             row{"2026-12-01T10:00:00Z 1%, +30m1h 2%", "\"+30m1h\" is not an offset"},
             row{"2026-12-01T10:00:00Z 1%, +1h1h 2%", "\"+1h1h\" is not an offset"},
             row{"2026-12-01T10:00:00Z 1%, +36601d 2%", "step 2 \"+36601d 2%\": more than 100 years"},
         }) {
      CAPTURE(r.text);
      CHECK_THROWS_WITH_AS((void)parse_weight_schedule(r.text, ramp_shape::linear), doctest::Contains(r.message),
                           grayroute::config_error);
    }
  }

  TEST_CASE("over the whole ramp, a rising weight only moves users from production to gray") {
    // 10,000 users through the sticky hash the policy's splits use (1,000,000 fine buckets).
    constexpr std::uint32_t kSeed = 7;
    std::vector<std::uint32_t> bucket(10000);
    for (std::size_t i = 0; i < bucket.size(); ++i) {
      bucket[i] = grayroute::percentage_rollout::fine_bucket("user-" + std::to_string(i), kSeed);
    }
    for (ramp_shape shape : {ramp_shape::linear, ramp_shape::steps}) {
      CAPTURE(static_cast<int>(shape));
      const auto ramp = parse_weight_schedule("2026-12-01T10:00:00Z 0.0001%, +5m 0.01%, +10m 1%, +1h 5%, +1h 25%, +2h 100%",
                                              shape);
      std::vector<bool> gray(bucket.size(), false);
      std::size_t moved = 0, checked = 0;
      std::uint32_t last_ppm = 0;
      // Every 30 seconds from 10 minutes before the start to 10 minutes after the end,
      // plus a millisecond either side of every step.
      std::vector<std::int64_t> times;
      for (std::int64_t t = kStart - 10 * kMinute; t <= ramp.steps().back().at_ms + 10 * kMinute; t += 30000) times.push_back(t);
      for (const auto& s : ramp.steps()) times.insert(times.end(), {s.at_ms - 1, s.at_ms, s.at_ms + 1});
      std::sort(times.begin(), times.end());
      for (std::int64_t t : times) {
        const std::uint32_t ppm = ramp.ppm_at(t);
        REQUIRE(ppm >= last_ppm);
        last_ppm = ppm;
        std::size_t in_gray = 0;
        for (std::size_t i = 0; i < bucket.size(); ++i) {
          const bool now_gray = bucket[i] < ppm;
          if (gray[i] && !now_gray) FAIL("user-" << i << " moved back to production at " << t);
          if (!gray[i] && now_gray) ++moved;
          gray[i] = now_gray;
          in_gray += now_gray;
          ++checked;
        }
        // The measured share follows the weight (binomial: within 1.5 points at 10,000 users).
        CHECK(std::fabs(100.0 * static_cast<double>(in_gray) / 10000.0 - ppm / 10000.0) < 1.5);
      }
      CHECK(moved == bucket.size());  // at 100% everyone has moved, each exactly once
      CHECK(checked > 10000u * 500u);
    }
  }

  TEST_CASE("fine buckets refine the 0.01% buckets: a ramp and a plain rollout agree") {
    for (std::uint32_t i = 0; i < 2000; ++i) {
      const std::string key = "k" + std::to_string(i);
      CHECK(grayroute::percentage_rollout::fine_bucket(key, 3) / 100 == grayroute::percentage_rollout::bucket(key, 3));
    }
  }
}
