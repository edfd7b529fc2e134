// grayroute version and the versioned namespace every header opens.
//
// The public names live in grayroute::v1 through an inline namespace, so two
// incompatible copies of the library in one program fail to link instead of
// silently mixing layouts (the same trick fmt and nlohmann/json use).
#ifndef GRAYROUTE_VERSION_HPP
#define GRAYROUTE_VERSION_HPP

#define GRAYROUTE_VERSION_MAJOR 0
#define GRAYROUTE_VERSION_MINOR 1
#define GRAYROUTE_VERSION_PATCH 0
#define GRAYROUTE_VERSION_STRING "0.1.0"

#define GRAYROUTE_NAMESPACE_BEGIN \
  namespace grayroute {           \
  inline namespace v1 {
#define GRAYROUTE_NAMESPACE_END \
  }                             \
  }

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define GRAYROUTE_HAS_EXCEPTIONS 1
#else
#define GRAYROUTE_HAS_EXCEPTIONS 0
#endif

#endif  // GRAYROUTE_VERSION_HPP
