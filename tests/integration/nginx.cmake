# Tests of the nginx module: stock nginx (/usr/sbin/nginx) loading the module built by
# examples/nginx, with real backends and redis-server on loopback. nginx is not built
# with the sanitizers, hence `no-sanitizer`.
include(GrayrouteNginx)
find_program(GRAYROUTE_NGINX_BINARY nginx PATHS /usr/sbin)

if(GRAYROUTE_BUILD_EXAMPLES AND GRAYROUTE_BUILD_NGINX_MODULE AND GRAYROUTE_NGINX_BINARY)
  find_package(Threads REQUIRED)
  set(_module "${GRAYROUTE_NGINX_MODULE_FILE}")
  if(GRAYROUTE_NGINX_WITH_REDIS)
    set(_module_redis 1)
  else()
    set(_module_redis 0)
  endif()

  grayroute_add_test(nginx_module_test SOURCES integration/nginx_module_test.cpp
                     LIBRARIES Threads::Threads LABELS "server;no-sanitizer")
  target_compile_definitions(nginx_module_test PRIVATE
    "GRAYROUTE_NGINX_MODULE_PATH=\"${_module}\"" GRAYROUTE_NGINX_HAS_REDIS=${_module_redis})
  add_dependencies(nginx_module_test grayroute_nginx_module)

  # Route health (issue 12) and consistent decisions (issue 13) through the module; the
  # metrics page is read by prometheus_client's parser (nginx_metrics_samples.py).
  grayroute_add_test(nginx_health_test SOURCES integration/nginx_health_test.cpp
                     LIBRARIES Threads::Threads LABELS "server;no-sanitizer")
  target_compile_definitions(nginx_health_test PRIVATE "GRAYROUTE_NGINX_MODULE_PATH=\"${_module}\""
    "GRAYROUTE_TEST_PYTHON3=\"${GRAYROUTE_SYSTEM_PYTHON3}\""
    "GRAYROUTE_METRICS_SAMPLES=\"${CMAKE_CURRENT_SOURCE_DIR}/nginx_metrics_samples.py\"")
  add_dependencies(nginx_health_test grayroute_nginx_module)
  grayroute_add_test(nginx_token_test SOURCES integration/nginx_token_test.cpp
                     LIBRARIES Threads::Threads LABELS "server;no-sanitizer")
  target_compile_definitions(nginx_token_test PRIVATE "GRAYROUTE_NGINX_MODULE_PATH=\"${_module}\"")
  add_dependencies(nginx_token_test grayroute_nginx_module)
  # Scheduled ramps and pinning of anonymous users (issue 13).
  grayroute_add_test(nginx_consistency_test SOURCES integration/nginx_consistency_test.cpp
                     LIBRARIES Threads::Threads LABELS "server;no-sanitizer")
  target_compile_definitions(nginx_consistency_test PRIVATE "GRAYROUTE_NGINX_MODULE_PATH=\"${_module}\"")
  add_dependencies(nginx_consistency_test grayroute_nginx_module)
  set_tests_properties(nginx_consistency_test PROPERTIES TIMEOUT 120)

  if(_module_redis)
    grayroute_add_test(nginx_redis_test SOURCES integration/nginx_redis_test.cpp
                       LIBRARIES Threads::Threads LABELS "server;no-sanitizer")
    target_compile_definitions(nginx_redis_test PRIVATE "GRAYROUTE_NGINX_MODULE_PATH=\"${_module}\"")
    add_dependencies(nginx_redis_test grayroute_nginx_module)

    # Issue 9's policy directives: named lists (a file, Redis), rules, inheritance, errors.
    grayroute_add_test(nginx_policy_test SOURCES integration/nginx_policy_test.cpp
                       LIBRARIES Threads::Threads LABELS "server;no-sanitizer")
    target_compile_definitions(nginx_policy_test PRIVATE "GRAYROUTE_NGINX_MODULE_PATH=\"${_module}\"")
    add_dependencies(nginx_policy_test grayroute_nginx_module)
    set_tests_properties(nginx_policy_test PROPERTIES TIMEOUT 120)
  endif()
endif()

# nginx and grayroute-proxy deciding the same requests.
include("${CMAKE_CURRENT_LIST_DIR}/parity.cmake")
