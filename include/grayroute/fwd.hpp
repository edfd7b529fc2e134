// Forward declarations of grayroute's public types, for headers that only name
// them (a member pointer, a function taking `const grayroute::decision&`): this costs
// <cstdint> and nothing else, where the full headers cost the standard containers.
//
//   #include <grayroute/fwd.hpp>
//   void log_decision(const grayroute::decision& d);   // defined where router.hpp is included
//
// Text conversion, everywhere in the API: a free `to_string(x)` beside the type,
// found qualified (`grayroute::to_string(x)`) and by argument-dependent lookup
// (`to_string(x)`); std::string for values, std::string_view for enumerations.
#ifndef GRAYROUTE_FWD_HPP
#define GRAYROUTE_FWD_HPP

#include <cstdint>

#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

// ip.hpp
enum class ip_family : std::uint8_t;
class ip_address;
class ip_network;

// store.hpp, memory_store.hpp
using route_id = std::uint16_t;
struct store_entry;
template <class Unused>
class basic_memory_store;
using memory_store = basic_memory_store<void>;

// client_ip.hpp
enum class header_format : std::uint8_t;
struct resolver_config;
struct client_ip;
class client_ip_resolver;

// rollout.hpp
class percentage_rollout;

// router.hpp
enum class route_reason : std::uint8_t;
struct router_config;
struct decision;
template <class Store>
class router;

// config_error.hpp
class config_error;

// list_text.hpp (list_file.hpp reads files)
struct list_error;
struct parsed_list;

// redis_config.hpp, redis_store.hpp (target grayroute::redis)
enum class redis_schema;
enum class redis_mode;
struct redis_config;
struct redis_status;
class redis_store;

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_FWD_HPP
