// One spelling for an integer conversion that is a no-op on some platforms and a real
// conversion on others (uint64_t to size_t or uintptr_t): written as a plain cast it
// trips g++'s -Wuseless-cast where the types coincide, left implicit it trips
// -Wconversion where they do not. The cast inside a template is neither.
#ifndef GRAYROUTE_DETAIL_CONVERT_HPP
#define GRAYROUTE_DETAIL_CONVERT_HPP

#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

template <class To, class From>
constexpr To convert(From value) noexcept {
  return static_cast<To>(value);
}

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_CONVERT_HPP
