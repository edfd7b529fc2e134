# Debian packages with CPack (`cpack -G DEB` in the build directory):
#   libgrayroute-dev_<version>_all.deb               the `dev` component (GrayrouteInstall.cmake)
#   libnginx-mod-http-grayroute_<version>_amd64.deb  the `nginx` component: the module for
#                                                    Debian's stock nginx, enabled like Debian's own
# Both install under /usr. The version is the project() version, like everything else.
include(GrayrouteNginx)

set(GRAYROUTE_DEB_MAINTAINER "grayroute maintainers <grayroute@users.noreply.github.com>"
  CACHE STRING "Maintainer field of the Debian packages")

# Debian wants the license as /usr/share/doc/<package>/copyright. Component-only rules
# (EXCLUDE_FROM_ALL): a plain `cmake --install` does not get these Debian-specific files.
install(FILES LICENSE DESTINATION share/doc/libgrayroute-dev RENAME copyright COMPONENT dev EXCLUDE_FROM_ALL)
set(_grayroute_deb_components dev)

# The module package needs the module and the ABI name its nginx provides: Debian's
# nginx-dev ships it as the `nginx:abi` substitution variable its own module packages use.
set(_grayroute_abi_file "${GRAYROUTE_NGINX_SRC}/debian/libnginx-mod.abisubstvars")
if(GRAYROUTE_BUILD_EXAMPLES AND GRAYROUTE_BUILD_NGINX_MODULE AND EXISTS "${_grayroute_abi_file}")
  file(STRINGS "${_grayroute_abi_file}" _grayroute_abi REGEX "^nginx:abi=")
  string(REPLACE "nginx:abi=" "" _grayroute_abi "${_grayroute_abi}")
endif()
if(_grayroute_abi)
  # Absolute, so the line also works for an nginx started with another prefix (-p).
  set(GRAYROUTE_DEB_MODULE_PATH "/usr/lib/nginx/modules/ngx_http_grayroute_module.so")
  configure_file(packaging/debian/mod-http-grayroute.conf.in "${PROJECT_BINARY_DIR}/mod-http-grayroute.conf" @ONLY)
  install(FILES "${GRAYROUTE_NGINX_MODULE_FILE}" DESTINATION lib/nginx/modules COMPONENT nginx EXCLUDE_FROM_ALL)
  install(FILES "${PROJECT_BINARY_DIR}/mod-http-grayroute.conf" DESTINATION share/nginx/modules-available
    COMPONENT nginx EXCLUDE_FROM_ALL)
  install(FILES LICENSE DESTINATION share/doc/libnginx-mod-http-grayroute RENAME copyright
    COMPONENT nginx EXCLUDE_FROM_ALL)
  list(APPEND _grayroute_deb_components nginx)

  set(CPACK_DEBIAN_NGINX_PACKAGE_NAME libnginx-mod-http-grayroute)
  set(CPACK_DEBIAN_NGINX_PACKAGE_SECTION httpd)
  # libc6, libstdc++6 and (with grayroute_redis) libhiredis0.14 come from dpkg-shlibdeps.
  set(CPACK_DEBIAN_NGINX_PACKAGE_DEPENDS "${_grayroute_abi}")
  set(CPACK_DEBIAN_NGINX_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_NGINX_PACKAGE_RECOMMENDS nginx)
  set(CPACK_DEBIAN_NGINX_DESCRIPTION "Gray release (canary) routing module for nginx
ngx_http_grayroute_module routes each request to the production or the gray
(pre-release) upstream from a gray list of addresses and networks (static or
synced from Redis), a sticky percentage or a forced header/cookie, trusting
forwarded headers only from configured proxies.")
  set(CPACK_DEBIAN_NGINX_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/packaging/debian/postinst"
    "${PROJECT_SOURCE_DIR}/packaging/debian/prerm"
    "${PROJECT_SOURCE_DIR}/packaging/debian/postrm")
  set(CPACK_DEBIAN_NGINX_PACKAGE_CONTROL_STRICT_PERMISSION ON)
elseif(GRAYROUTE_BUILD_EXAMPLES AND GRAYROUTE_BUILD_NGINX_MODULE)
  message(STATUS "grayroute: no ${_grayroute_abi_file}, so no libnginx-mod-http-grayroute package")
endif()

set(CPACK_PACKAGE_NAME grayroute)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR grayroute)
# Empty, so each package's description below starts with its own synopsis line.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")
set(CPACK_PACKAGE_CONTACT "${GRAYROUTE_DEB_MAINTAINER}")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)   # as Debian ships modules (no -dbgsym package here)
set(CPACK_COMPONENTS_ALL ${_grayroute_deb_components})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${PROJECT_HOMEPAGE_URL}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libgrayroute-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# The core needs only the standard library; grayroute::redis appears when hiredis is there.
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS libhiredis-dev)
set(CPACK_DEBIAN_DEV_DESCRIPTION "Gray release (canary) routing for C++ gateways (headers)
grayroute is a header-only C++17 library that decides, per request, whether a
client goes to production or to the gray (pre-release) upstream. This package
holds the headers, the CMake package (grayroute::grayroute, and grayroute::redis
when libhiredis-dev is installed) and grayroute.pc.")

include(CPack)
