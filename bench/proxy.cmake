# grayroute-proxy's benchmarks. bench/ is configured before examples/, so the example
# targets are named here and resolved at generate time; they exist when Boost, CLI11,
# toml++ and nlohmann-json do.
find_package(Boost 1.70 QUIET)
find_path(GRAYROUTE_CLI11_INCLUDE CLI/CLI.hpp)
find_package(tomlplusplus QUIET)
find_package(nlohmann_json 3 QUIET)
if(Boost_FOUND)
  # The routing decision beside Beast parsing the same request header.
  grayroute_add_benchmark(bench_proxy SOURCES bench_proxy.cpp LIBRARIES Boost::boost)
  target_compile_definitions(bench_proxy PRIVATE BOOST_ASIO_NO_DEPRECATED)
endif()
if(GRAYROUTE_BUILD_EXAMPLES AND Boost_FOUND AND GRAYROUTE_CLI11_INCLUDE AND tomlplusplus_FOUND AND nlohmann_json_FOUND)
  # grayroute-proxy vs nginx under wrk: `cmake --build build --target bench_proxy_wrk`.
  add_custom_target(bench_proxy_wrk
    COMMAND "${CMAKE_CURRENT_SOURCE_DIR}/proxy_wrk.sh" "$<TARGET_FILE:grayroute-proxy>" "$<TARGET_FILE:grayroute-backend>"
    WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
    USES_TERMINAL VERBATIM)
  add_dependencies(bench_proxy_wrk grayroute-proxy grayroute-backend)
endif()
