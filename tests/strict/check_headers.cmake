# Compiles every public header on its own, then tests/strict/usage.cpp (which
# instantiates the templates), with one compiler, one standard and the strict flags,
# -Werror. Run by the strict_headers_* tests (tests/CMakeLists.txt):
#
#   cmake -DCOMPILER=clang++ -DSTD=17 -DFLAGS="-Weverything|-Wno-padded" -DSOURCE_DIR=<repo>
#         -DWORK_DIR=<scratch> [-DREDIS=ON -DSYSTEM_INCLUDES="dir|dir"] -P check_headers.cmake
#
# Every header in include/grayroute/ is checked, found here rather than listed, so a
# header added later is covered without anyone remembering to register it. Without
# hiredis (REDIS off) the redis_*.hpp headers are skipped.
cmake_minimum_required(VERSION 3.16)

foreach(var COMPILER STD FLAGS SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "check_headers.cmake: ${var} is not set")
  endif()
endforeach()
if(NOT EXISTS "${COMPILER}")
  message(FATAL_ERROR "strict header test: compiler \"${COMPILER}\" not found "
                      "(Debian: apt-get install g++ clang; see scripts/lib.sh)")
endif()

string(REPLACE "|" ";" flags "${FLAGS}")
set(includes "-I${SOURCE_DIR}/include")
if(SYSTEM_INCLUDES)
  string(REPLACE "|" ";" system_dirs "${SYSTEM_INCLUDES}")
  foreach(dir IN LISTS system_dirs)
    list(APPEND includes "-isystem" "${dir}")
  endforeach()
endif()
set(defines "-DGRAYROUTE_STRICT_REDIS=0")
if(REDIS)
  set(defines "-DGRAYROUTE_STRICT_REDIS=1")
endif()

file(GLOB headers RELATIVE "${SOURCE_DIR}/include/grayroute" "${SOURCE_DIR}/include/grayroute/*.hpp")
list(SORT headers)
file(MAKE_DIRECTORY "${WORK_DIR}")
set(sources)
foreach(header IN LISTS headers)
  if(NOT REDIS AND header MATCHES "^redis_")
    continue()
  endif()
  get_filename_component(name "${header}" NAME_WE)
  set(source "${WORK_DIR}/${name}.cpp")
  file(WRITE "${source}" "#include <grayroute/${header}>\n")
  list(APPEND sources "${source}")
endforeach()
list(APPEND sources "${SOURCE_DIR}/tests/strict/usage.cpp")

set(failed)
foreach(source IN LISTS sources)
  execute_process(
    COMMAND "${COMPILER}" "-std=c++${STD}" -fsyntax-only -Werror ${flags} ${defines} ${includes} "${source}"
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  get_filename_component(name "${source}" NAME_WE)
  if(rc EQUAL 0)
    message(STATUS "ok      ${name}")
  else()
    message(STATUS "FAILED  ${name}\n${output}")
    list(APPEND failed "${name}")
  endif()
endforeach()

list(LENGTH sources total)
if(failed)
  list(LENGTH failed count)
  string(REPLACE ";" ", " failed "${failed}")
  message(FATAL_ERROR "${count} of ${total} failed with ${COMPILER} -std=c++${STD}: ${failed}")
endif()
string(REPLACE ";" " " flags "${flags}")
message(STATUS "all ${total} clean with ${COMPILER} -std=c++${STD} -Werror ${flags}")
