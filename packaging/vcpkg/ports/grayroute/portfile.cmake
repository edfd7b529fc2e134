# grayroute: header-only, installed by the project's own CMake build.
#
# From a checkout (how tests/packages/vcpkg.sh checks the working tree):
#   GRAYROUTE_SOURCE_DIR=$PWD vcpkg install 'grayroute[redis]' --overlay-ports=packaging/vcpkg/ports
# Otherwise the release archive of this port's version is downloaded.
if(DEFINED ENV{GRAYROUTE_SOURCE_DIR})
    set(SOURCE_PATH "$ENV{GRAYROUTE_SOURCE_DIR}")
    if(NOT EXISTS "${SOURCE_PATH}/include/grayroute/grayroute.hpp")
        message(FATAL_ERROR "GRAYROUTE_SOURCE_DIR=${SOURCE_PATH} is not a grayroute checkout")
    endif()
else()
    vcpkg_from_github(
        OUT_SOURCE_PATH SOURCE_PATH
        REPO grayroute/grayroute
        REF "v${VERSION}"
        # The tag's archive hash, filled in when v${VERSION} is tagged (vcpkg prints the
        # actual value when it differs).
        SHA512 0
        HEAD_REF main
    )
endif()

set(VCPKG_BUILD_TYPE release) # headers only: one configuration is enough

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        redis GRAYROUTE_REDIS
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        -DGRAYROUTE_BUILD_TESTS=OFF
        -DGRAYROUTE_BUILD_BENCHMARKS=OFF
        -DGRAYROUTE_BUILD_EXAMPLES=OFF
        -DGRAYROUTE_INSTALL=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/grayroute)
vcpkg_fixup_pkgconfig()

# The license is installed below as vcpkg wants it.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
