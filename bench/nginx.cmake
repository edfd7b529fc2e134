# `cmake --build build --target bench_nginx`: wrk against stock nginx with and without
# the grayroute module (bench/nginx_wrk.sh; about two minutes). Not part of ctest.
include(GrayrouteNginx)
if(GRAYROUTE_BUILD_EXAMPLES AND GRAYROUTE_BUILD_NGINX_MODULE)
  add_custom_target(bench_nginx
    COMMAND "${CMAKE_CURRENT_SOURCE_DIR}/nginx_wrk.sh" --module "${GRAYROUTE_NGINX_MODULE_FILE}"
    USES_TERMINAL
    COMMENT "wrk: plain proxy_pass vs the grayroute module (static, Redis-synced, direct)")
  add_dependencies(bench_nginx grayroute_nginx_module)
endif()
