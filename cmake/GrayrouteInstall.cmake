# Install rules: headers, exported targets, a version file and grayroute.pc.
# Header-only, so the package is architecture-independent and lives in the data dir.
include(CMakePackageConfigHelpers)

set(GRAYROUTE_CMAKE_DIR "${CMAKE_INSTALL_DATADIR}/cmake/grayroute")

install(DIRECTORY include/grayroute DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

set(_grayroute_targets grayroute)
if(GRAYROUTE_HAS_REDIS)
  list(APPEND _grayroute_targets grayroute_redis)
endif()
install(TARGETS ${_grayroute_targets} EXPORT grayrouteTargets)
install(EXPORT grayrouteTargets NAMESPACE grayroute:: DESTINATION "${GRAYROUTE_CMAKE_DIR}")
export(EXPORT grayrouteTargets NAMESPACE grayroute:: FILE "${PROJECT_BINARY_DIR}/grayrouteTargets.cmake")

configure_package_config_file(cmake/grayrouteConfig.cmake.in
  "${PROJECT_BINARY_DIR}/grayrouteConfig.cmake"
  INSTALL_DESTINATION "${GRAYROUTE_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/grayrouteConfigVersion.cmake"
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/grayrouteConfig.cmake" "${PROJECT_BINARY_DIR}/grayrouteConfigVersion.cmake"
  DESTINATION "${GRAYROUTE_CMAKE_DIR}")

configure_file(cmake/grayroute.pc.in "${PROJECT_BINARY_DIR}/grayroute.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/grayroute.pc" DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig")
