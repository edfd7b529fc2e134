# grayroute-proxy: its header rules without sockets (needs only Boost's headers), and
# the proxy against real backends on loopback. The latter needs the example programs,
# which examples/asio_proxy builds when Boost and CLI11 are there (tests/ is configured
# before examples/, so the targets are named here and resolved at generate time).
find_package(Boost 1.70 QUIET)
find_package(Threads)
find_path(GRAYROUTE_CLI11_INCLUDE CLI/CLI.hpp)
find_package(tomlplusplus QUIET)
find_package(nlohmann_json 3 QUIET)
if(Boost_FOUND AND Threads_FOUND)
  grayroute_add_test(proxy_forwarding_test
                     SOURCES proxy_forwarding_test.cpp ${PROJECT_SOURCE_DIR}/examples/asio_proxy/forwarding.cpp
                     LIBRARIES Boost::boost Threads::Threads)
endif()
if(GRAYROUTE_BUILD_EXAMPLES AND Boost_FOUND AND GRAYROUTE_CLI11_INCLUDE AND tomlplusplus_FOUND AND nlohmann_json_FOUND)
  foreach(test proxy_test proxy_server_test proxy_hostile_test proxy_consistency_test)
    grayroute_add_test(${test} SOURCES integration/${test}.cpp LIBRARIES Threads::Threads LABELS server)
    target_compile_definitions(${test} PRIVATE GRAYROUTE_PROXY_BIN="$<TARGET_FILE:grayroute-proxy>"
                                               GRAYROUTE_BACKEND_BIN="$<TARGET_FILE:grayroute-backend>")
    add_dependencies(${test} grayroute-proxy grayroute-backend)
  endforeach()
  set_tests_properties(proxy_test proxy_server_test proxy_hostile_test proxy_consistency_test PROPERTIES TIMEOUT 120)
  # Issue 13: the tier's pure steps (tokens, pinning, ramp, PROXY preface) without sockets.
  grayroute_add_test(proxy_decision_tier_test
                     SOURCES proxy_decision_tier_test.cpp ${PROJECT_SOURCE_DIR}/examples/asio_proxy/decision_tier.cpp
                             ${PROJECT_SOURCE_DIR}/examples/asio_proxy/proxy_protocol_accept.cpp
                     LIBRARIES grayroute_asio nlohmann_json::nlohmann_json)
  # Route health (#12): the metrics page is read by the same Prometheus parser as the library's.
  grayroute_add_test(proxy_health_test SOURCES integration/proxy_health_test.cpp LIBRARIES Threads::Threads LABELS server)
  target_compile_definitions(proxy_health_test PRIVATE GRAYROUTE_PROXY_BIN="$<TARGET_FILE:grayroute-proxy>"
                                                       GRAYROUTE_BACKEND_BIN="$<TARGET_FILE:grayroute-backend>"
                                                       GRAYROUTE_PYTHON3="${GRAYROUTE_SYSTEM_PYTHON3}"
                                                       GRAYROUTE_METRICS_CHECK="${PROJECT_SOURCE_DIR}/tests/health_metrics_check.py")
  add_dependencies(proxy_health_test grayroute-proxy grayroute-backend)
  set_tests_properties(proxy_health_test PROPERTIES TIMEOUT 120)
endif()
if(TARGET proxy_server_test AND GRAYROUTE_HAS_REDIS)
  target_compile_definitions(proxy_server_test PRIVATE GRAYROUTE_PROXY_HAS_REDIS=1)
  target_compile_definitions(proxy_health_test PRIVATE GRAYROUTE_PROXY_HAS_REDIS=1)
  # --config with the issue's example policy file: real backends and a real redis-server.
  grayroute_add_test(proxy_policy_test SOURCES integration/proxy_policy_test.cpp LIBRARIES Threads::Threads LABELS server)
  target_compile_definitions(proxy_policy_test PRIVATE GRAYROUTE_PROXY_BIN="$<TARGET_FILE:grayroute-proxy>"
                                                       GRAYROUTE_BACKEND_BIN="$<TARGET_FILE:grayroute-backend>"
                                                       GRAYROUTE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_dependencies(proxy_policy_test grayroute-proxy grayroute-backend)
  set_tests_properties(proxy_policy_test PROPERTIES TIMEOUT 120)
endif()
# Issue 13 across adapters: an nginx edge deciding, a grayroute-proxy inner tier obeying.
if(TARGET nginx_token_test AND TARGET proxy_consistency_test)
  grayroute_add_test(nginx_proxy_tier_test SOURCES integration/nginx_proxy_tier_test.cpp
                     LIBRARIES Threads::Threads LABELS "server;no-sanitizer")
  target_compile_definitions(nginx_proxy_tier_test PRIVATE "GRAYROUTE_NGINX_MODULE_PATH=\"${GRAYROUTE_NGINX_MODULE_FILE}\""
                                                           GRAYROUTE_PROXY_BIN="$<TARGET_FILE:grayroute-proxy>")
  add_dependencies(nginx_proxy_tier_test grayroute_nginx_module grayroute-proxy)
  set_tests_properties(nginx_proxy_tier_test PROPERTIES TIMEOUT 120)
endif()
