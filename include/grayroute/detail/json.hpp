// JSON string quoting for the status and health reports: the public json_string.hpp,
// under the names the library's own headers use.
#ifndef GRAYROUTE_DETAIL_JSON_HPP
#define GRAYROUTE_DETAIL_JSON_HPP

#include "../json_string.hpp"
#include "../version.hpp"

GRAYROUTE_NAMESPACE_BEGIN
namespace detail {

using ::grayroute::append_json_string;
using ::grayroute::json_string;

}  // namespace detail
GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_DETAIL_JSON_HPP
