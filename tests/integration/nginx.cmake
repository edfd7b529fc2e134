# Tests of the nginx module: stock nginx (/usr/sbin/nginx) loading the module built by
# examples/nginx, with real backends and redis-server on loopback. nginx is not built
# with the sanitizers, hence `no-sanitizer`.
if(EXISTS "/usr/share/nginx/src/conf_flags")
  set(_grayroute_nginx_dev ON)
else()
  set(_grayroute_nginx_dev OFF)
endif()
option(GRAYROUTE_BUILD_NGINX_MODULE "Build the nginx dynamic module (needs Debian's nginx-dev)" ${_grayroute_nginx_dev})
find_program(GRAYROUTE_NGINX_BINARY nginx PATHS /usr/sbin)

if(GRAYROUTE_BUILD_EXAMPLES AND GRAYROUTE_BUILD_NGINX_MODULE AND GRAYROUTE_NGINX_BINARY)
  find_package(Threads REQUIRED)
  # examples/nginx/CMakeLists.txt builds it there (and decides about Redis the same way).
  set(_module "${PROJECT_BINARY_DIR}/examples/nginx/ngx_http_grayroute_module.so")
  if(GRAYROUTE_HAS_REDIS AND EXISTS "${PROJECT_SOURCE_DIR}/include/grayroute/redis_store.hpp")
    set(_module_redis 1)
  else()
    set(_module_redis 0)
  endif()

  grayroute_add_test(nginx_module_test SOURCES integration/nginx_module_test.cpp
                     LIBRARIES Threads::Threads LABELS "server;no-sanitizer")
  target_compile_definitions(nginx_module_test PRIVATE
    "GRAYROUTE_NGINX_MODULE_PATH=\"${_module}\"" GRAYROUTE_NGINX_HAS_REDIS=${_module_redis})
  add_dependencies(nginx_module_test grayroute_nginx_module)

  if(_module_redis)
    grayroute_add_test(nginx_redis_test SOURCES integration/nginx_redis_test.cpp
                       LIBRARIES Threads::Threads LABELS "server;no-sanitizer")
    target_compile_definitions(nginx_redis_test PRIVATE "GRAYROUTE_NGINX_MODULE_PATH=\"${_module}\"")
    add_dependencies(nginx_redis_test grayroute_nginx_module)
  endif()
endif()
