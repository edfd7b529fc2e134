#!/usr/bin/env bash
# package_conan: `conan create` of packaging/conan with with_redis=False and =True, offline,
# each building and running its test_package (CMakeDeps and PkgConfigDeps consumers).
# hiredis is Debian's libhiredis-dev behind packaging/conan/hiredis-system.
#   conan.sh SOURCE_DIR VERSION TOOLS_DIR
# shellcheck source=tests/packages/common.sh
. "$(dirname "$0")/common.sh"
src=$1
version=$2
conan=$3/conan

export CONAN_HOME=$tmp/conan-home
run "$tmp/setup.log" "$conan" profile detect
run "$tmp/setup.log" "$conan" remote remove conancenter
hiredis_version=$(pkg-config --modversion hiredis)
run "$tmp/export.log" "$conan" export "$src/packaging/conan/hiredis-system" --version "$hiredis_version"

for with_redis in False True; do
  step "conan create with_redis=$with_redis"
  log=$tmp/create-$with_redis.log
  test_folder=$tmp/test-$with_redis
  # --build grayroute/*: the package is built (cmake.install) each time, although both
  # option values share one package id (headers only).
  run "$log" "$conan" create "$src/packaging/conan" -o "grayroute/*:with_redis=$with_redis" \
    --build=missing --build="grayroute/*" -c tools.cmake.cmake_layout:test_folder="$test_folder"
  expect "$log" "grayroute/$version: Created package" "conan create did not build grayroute/$version"
  expect "$log" "RUN: \./consumer/grayroute_consumer$" "test_package did not run the CMakeDeps consumer"
  expect "$log" "RUN: \./consumer/grayroute_consumer_pkgconfig$" "test_package did not run the PkgConfigDeps consumer"
  [ "$(grep -Ec "^$(routed_line "$version")$" "$log")" -eq 2 ] || fail "both consumers must route 10.1.2.3 to gray"
  consumer=$(find "$test_folder" -type f -name grayroute_consumer -perm -u+x | head -n 1)
  [ -n "$consumer" ] || fail "no grayroute_consumer under $test_folder"
  readelf -d "$consumer" >"$tmp/readelf.txt"
  if [ "$with_redis" = True ]; then
    expect "$log" "hiredis/\[>=0\.14 <2\]: hiredis/$hiredis_version" "the version range did not resolve to the system hiredis"
    expect "$log" "^redis store: redis disconnected, never synced, .*last error: redis 127\.0\.0\.1:1: connect" \
      "the redis_store status line is missing"
    expect "$tmp/readelf.txt" "NEEDED.*libhiredis\.so" "grayroute_consumer does not link hiredis"
  else
    if grep -q "hiredis" "$log"; then fail "with_redis=False must not bring hiredis"; fi
    if grep -q "libhiredis" "$tmp/readelf.txt"; then fail "with_redis=False links hiredis"; fi
  fi
  grep -E "^(grayroute [0-9]|redis store:)" "$log" | sort -u
done
step "README's conanfile.txt: conan install, then CMake with conan_toolchain.cmake"
consumer=$tmp/consumer
mkdir -p "$consumer"
cp "$src/packaging/consumer/CMakeLists.txt" "$src/packaging/consumer/main.cpp" "$consumer"/
printf '[requires]\ngrayroute/%s\n[options]\ngrayroute/*:with_redis=True\n[generators]\nCMakeDeps\nCMakeToolchain\nPkgConfigDeps\n' \
  "$version" >"$consumer/conanfile.txt"
run "$tmp/install.log" "$conan" install "$consumer" --output-folder="$consumer/build" --build=missing
run "$tmp/consumer.log" cmake -S "$consumer" -B "$consumer/build" -DCMAKE_TOOLCHAIN_FILE="$consumer/build/conan_toolchain.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DGRAYROUTE_CONSUMER_REDIS=ON
run "$tmp/consumer.log" cmake --build "$consumer/build"
"$consumer/build/grayroute_consumer" | tee "$tmp/consumer.out"
expect "$tmp/consumer.out" "^$(routed_line "$version")$" "the conanfile.txt consumer did not route"
expect "$tmp/consumer.out" "^redis store: redis disconnected" "the conanfile.txt consumer printed no redis_store status"

if [ -e "$src/packaging/conan/test_package/CMakeUserPresets.json" ]; then
  fail "conan wrote CMakeUserPresets.json into the source tree"
fi
echo "conan: both option values created and tested"
