# The parity test (issue 9): the same policy as nginx directives and as grayroute-proxy's
# TOML file, the same lists, the same 2,000 requests to both. Included at the end of
# nginx.cmake: it needs the nginx module with Redis (nginx_policy_test is registered
# then) and the proxy with its policy files (Boost, CLI11, toml++). It exits 77
# (reported as skipped) while the proxy has no --config.
find_package(Boost 1.70 QUIET)
find_path(GRAYROUTE_CLI11_INCLUDE CLI/CLI.hpp)
find_package(tomlplusplus QUIET)
if(TARGET nginx_policy_test AND GRAYROUTE_BUILD_EXAMPLES AND Boost_FOUND AND GRAYROUTE_CLI11_INCLUDE AND tomlplusplus_FOUND)
  add_executable(parity_test integration/parity_test.cpp)
  target_link_libraries(parity_test PRIVATE grayroute::grayroute doctest::doctest Threads::Threads)
  target_compile_options(parity_test PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Werror>)
  target_compile_definitions(parity_test PRIVATE
    "GRAYROUTE_NGINX_MODULE_PATH=\"${GRAYROUTE_NGINX_MODULE_FILE}\""
    GRAYROUTE_PROXY_BIN="$<TARGET_FILE:grayroute-proxy>")
  add_dependencies(parity_test grayroute_nginx_module grayroute-proxy)
  add_test(NAME parity_test COMMAND parity_test)
  set_tests_properties(parity_test PROPERTIES LABELS "server;no-sanitizer" SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
