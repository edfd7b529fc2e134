# Install rules: headers, exported targets, a version file, grayroute.pc and the license.
# Header-only, so the package is architecture-independent and lives in the data dir.
# Everything here is the `dev` component (the libgrayroute-dev package, cmake/GrayroutePackaging.cmake).
include(CMakePackageConfigHelpers)

set(GRAYROUTE_CMAKE_DIR "${CMAKE_INSTALL_DATADIR}/cmake/grayroute")

install(DIRECTORY include/grayroute DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT dev)
install(FILES LICENSE DESTINATION "${CMAKE_INSTALL_DOCDIR}" COMPONENT dev)

# grayroute::redis has its own export set, loaded only when hiredis is found at
# find_package time: the core must load on a machine without hiredis.
install(TARGETS grayroute EXPORT grayrouteTargets COMPONENT dev)
install(EXPORT grayrouteTargets NAMESPACE grayroute:: DESTINATION "${GRAYROUTE_CMAKE_DIR}" COMPONENT dev)
export(EXPORT grayrouteTargets NAMESPACE grayroute:: FILE "${PROJECT_BINARY_DIR}/grayrouteTargets.cmake")
if(GRAYROUTE_HAS_REDIS)
  install(TARGETS grayroute_redis EXPORT grayrouteRedisTargets COMPONENT dev)
  install(EXPORT grayrouteRedisTargets NAMESPACE grayroute:: DESTINATION "${GRAYROUTE_CMAKE_DIR}" COMPONENT dev)
  export(EXPORT grayrouteRedisTargets NAMESPACE grayroute:: FILE "${PROJECT_BINARY_DIR}/grayrouteRedisTargets.cmake")
endif()

configure_package_config_file(cmake/grayrouteConfig.cmake.in
  "${PROJECT_BINARY_DIR}/grayrouteConfig.cmake"
  INSTALL_DESTINATION "${GRAYROUTE_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/grayrouteConfigVersion.cmake"
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/grayrouteConfig.cmake" "${PROJECT_BINARY_DIR}/grayrouteConfigVersion.cmake"
  DESTINATION "${GRAYROUTE_CMAKE_DIR}" COMPONENT dev)

configure_file(cmake/grayroute.pc.in "${PROJECT_BINARY_DIR}/grayroute.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/grayroute.pc" DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig" COMPONENT dev)
