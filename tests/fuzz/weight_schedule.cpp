// Weight schedules from configuration text: a bad one is a config_error, never a crash;
// a good one never lowers its weight over time and stays within 0..100%.
#include <grayroute/weight_schedule.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto shape = data[0] & 1 ? grayroute::ramp_shape::linear : grayroute::ramp_shape::steps;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const auto ramp = grayroute::parse_weight_schedule(text, shape);
    const auto& steps = ramp.steps();
    std::uint32_t last = 0;
    const std::int64_t from = steps.front().at_ms - 1, to = steps.back().at_ms + 1;
    const std::int64_t stride = (to - from) / 64 + 1;
    for (std::int64_t t = from; t <= to; t += stride) {
      const std::uint32_t ppm = ramp.ppm_at(t);
      if (ppm < last || ppm > 1000000) std::abort();
      last = ppm;
    }
    for (const auto& s : steps) {
      if (ramp.ppm_at(s.at_ms) != s.ppm) std::abort();
    }
  } catch (const grayroute::config_error&) {
  }
  return 0;
}
