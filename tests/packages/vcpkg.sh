#!/usr/bin/env bash
# package_vcpkg: the overlay port packaging/vcpkg/ports/grayroute, installed from this
# working tree (GRAYROUTE_SOURCE_DIR) in classic mode, offline: `grayroute`, then
# `grayroute[redis]` (which builds the registry's hiredis port from its archive), each
# followed by packaging/consumer built through scripts/buildsystems/vcpkg.cmake and run.
#   vcpkg.sh SOURCE_DIR VERSION TOOLS_DIR
# shellcheck source=tests/packages/common.sh
. "$(dirname "$0")/common.sh"
src=$1
version=$2
tools=$3

root=$("$tools/vcpkg-root")
export VCPKG_FORCE_SYSTEM_BINARIES=1 VCPKG_DISABLE_METRICS=1
export VCPKG_BINARY_SOURCES=clear # a local-source port would be restored from the cache
export VCPKG_DOWNLOADS=$tmp/downloads
mkdir -p "$VCPKG_DOWNLOADS"
cp "$tools"/downloads/* "$VCPKG_DOWNLOADS"/
export GRAYROUTE_SOURCE_DIR=$src

installed=$tmp/installed
vcpkg_install() {
  "$root/vcpkg" install "$1" --recurse --triplet=x64-linux \
    --overlay-ports="$src/packaging/vcpkg/ports" --overlay-triplets="$tools/triplets" \
    --x-install-root="$installed" --x-buildtrees-root="$tmp/buildtrees" --x-packages-root="$tmp/packages"
}

# consume NAME CMAKE_OPTIONS...: configures, builds and runs packaging/consumer.
consume() {
  local name=$1
  shift
  local build=$tmp/consumer-$name
  run "$tmp/$name-configure.log" cmake -S "$src/packaging/consumer" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$root/scripts/buildsystems/vcpkg.cmake" -DVCPKG_TARGET_TRIPLET=x64-linux \
    -DVCPKG_MANIFEST_MODE=OFF -DVCPKG_INSTALLED_DIR="$installed" "$@"
  expect "$build/CMakeCache.txt" "^grayroute_DIR:PATH=$installed/x64-linux/share/grayroute$" \
    "find_package(grayroute) did not use the vcpkg installation"
  run "$tmp/$name-build.log" cmake --build "$build"
  "$build/grayroute_consumer" | tee "$tmp/$name.out"
  expect "$tmp/$name.out" "^$(routed_line "$version")$" "$name: the consumer did not route"
}

step "vcpkg install grayroute"
run "$tmp/install.log" vcpkg_install grayroute
expect "$tmp/install.log" "grayroute(\[core\])?:x64-linux" "vcpkg did not install grayroute"
[ -f "$installed/x64-linux/share/grayroute/copyright" ] || fail "the port installs no copyright"
cmp -s "$installed/x64-linux/share/grayroute/copyright" "$src/LICENSE" || fail "copyright is not LICENSE"
[ -f "$installed/x64-linux/share/grayroute/usage" ] || fail "the port installs no usage"
if [ -e "$installed/x64-linux/share/grayroute/grayrouteRedisTargets.cmake" ]; then
  fail "grayroute without the redis feature exports grayroute::redis"
fi
consume core -DGRAYROUTE_CONSUMER_PKG_CONFIG=ON
"$tmp/consumer-core/grayroute_consumer_pkgconfig" | tee "$tmp/pkgconfig.out"
expect "$tmp/pkgconfig.out" "^$(routed_line "$version")$" "the pkg-config consumer did not route"

step "vcpkg install grayroute[redis]"
run "$tmp/install-redis.log" vcpkg_install "grayroute[redis]"
expect "$tmp/install-redis.log" "hiredis:x64-linux" "vcpkg did not build the hiredis port"
consume redis -DGRAYROUTE_CONSUMER_REDIS=ON
expect "$tmp/consumer-redis/CMakeCache.txt" "^hiredis_DIR:PATH=$installed/x64-linux/share/hiredis$" \
  "grayroute::redis did not use vcpkg's hiredis"
expect "$tmp/redis.out" "^redis store: redis disconnected, never synced, .*last error: redis 127\.0\.0\.1:1: connect" \
  "the redis_store status line is missing"

step "manifest mode: README's vcpkg.json, installed by the toolchain at configure time"
mkdir -p "$tmp/manifest"
cat >"$tmp/manifest/vcpkg.json" <<'JSON'
{
  "dependencies": [
    { "name": "grayroute", "features": ["redis"] }
  ]
}
JSON
installed=$tmp/manifest-installed
consume manifest -DGRAYROUTE_CONSUMER_REDIS=ON -DVCPKG_MANIFEST_MODE=ON -DVCPKG_MANIFEST_DIR="$tmp/manifest" \
  -DVCPKG_OVERLAY_PORTS="$src/packaging/vcpkg/ports" -DVCPKG_OVERLAY_TRIPLETS="$tools/triplets" \
  -DVCPKG_INSTALL_OPTIONS="--x-buildtrees-root=$tmp/buildtrees;--x-packages-root=$tmp/packages"
expect "$tmp/manifest.out" "^redis store: redis disconnected" "the manifest-mode consumer printed no redis_store status"
echo "vcpkg: grayroute and grayroute[redis] installed and consumed (classic and manifest mode)"
