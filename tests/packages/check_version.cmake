# package_version: the version lives in the top CMakeLists.txt's project() call; the
# copies that cannot read it from there must agree with it. (The Conan recipe reads
# project() itself, the .debs use PROJECT_VERSION, the port's portfile uses ${VERSION}.)
#   cmake -DSOURCE_DIR=... -DVERSION=<project version> -P check_version.cmake
set(errors "")

file(READ "${SOURCE_DIR}/include/grayroute/version.hpp" header)
string(REPLACE "." ";" parts "${VERSION}")
list(GET parts 0 major)
list(GET parts 1 minor)
list(GET parts 2 patch)
foreach(check "MAJOR ${major}" "MINOR ${minor}" "PATCH ${patch}" "STRING \"${VERSION}\"")
  separate_arguments(check)
  list(GET check 0 name)
  list(GET check 1 value)
  if(NOT header MATCHES "#define GRAYROUTE_VERSION_${name} ${value}\n")
    string(APPEND errors "include/grayroute/version.hpp: GRAYROUTE_VERSION_${name} is not ${value}\n")
  endif()
endforeach()

file(READ "${SOURCE_DIR}/packaging/vcpkg/ports/grayroute/vcpkg.json" manifest)
string(JSON port_version GET "${manifest}" version)
if(NOT port_version STREQUAL VERSION)
  string(APPEND errors "packaging/vcpkg/ports/grayroute/vcpkg.json: version is ${port_version}\n")
endif()

if(errors)
  message(FATAL_ERROR "the project() version is ${VERSION}, but\n${errors}")
endif()
message(STATUS "version ${VERSION}: version.hpp and the vcpkg port agree")
