# The nginx module's switches, in one place for examples/nginx, its tests and its
# benchmark (each part may be configured first). Sets:
#   GRAYROUTE_BUILD_NGINX_MODULE   option, ON when Debian's nginx-dev is installed
#   GRAYROUTE_NGINX_SRC            the nginx source tree with conf_flags
#   GRAYROUTE_NGINX_MODULE_FILE    where examples/nginx puts the .so
#   GRAYROUTE_NGINX_WITH_REDIS     ON when grayroute_redis is built in (with hiredis)
# Included from several directories: plain variables are per directory, so no include_guard.

set(GRAYROUTE_NGINX_SRC "/usr/share/nginx/src" CACHE PATH "nginx source tree with conf_flags (Debian's nginx-dev)")
if(EXISTS "${GRAYROUTE_NGINX_SRC}/conf_flags")
  set(_grayroute_nginx_dev ON)
else()
  set(_grayroute_nginx_dev OFF)
endif()
option(GRAYROUTE_BUILD_NGINX_MODULE "Build the nginx dynamic module (needs Debian's nginx-dev)" ${_grayroute_nginx_dev})

set(GRAYROUTE_NGINX_MODULE_FILE "${PROJECT_BINARY_DIR}/examples/nginx/ngx_http_grayroute_module.so")
if(GRAYROUTE_HAS_REDIS)
  set(GRAYROUTE_NGINX_WITH_REDIS ON)
else()
  set(GRAYROUTE_NGINX_WITH_REDIS OFF)
endif()
