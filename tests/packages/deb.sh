#!/usr/bin/env bash
# package_deb: builds libgrayroute-dev and libnginx-mod-http-grayroute with `cpack -G DEB`,
# checks their files and control fields, installs them with apt-get (offline: the
# dependencies are Debian's and already there), builds a consumer against the installed
# headers, runs stock nginx from a temp prefix on examples/nginx/README.md's
# configuration with the installed module, and purges both packages, also when a step
# fails. Needs root; exits 77 (skipped) otherwise.
#   deb.sh SOURCE_DIR BINARY_DIR VERSION WITH_NGINX_PACKAGE(ON|OFF)
# shellcheck source=tests/packages/common.sh
. "$(dirname "$0")/common.sh"
src=$1
bin=$2
version=$3
with_nginx=$4
# shellcheck source=scripts/lib.sh
. "$src/scripts/lib.sh" # free_port, wait_port

packages=(libgrayroute-dev)
if [ "$with_nginx" = ON ]; then packages+=(libnginx-mod-http-grayroute); fi
module=/usr/lib/nginx/modules/ngx_http_grayroute_module.so
enabled=/etc/nginx/modules-enabled/50-mod-http-grayroute.conf

if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: installing packages needs root"
  exit 77
fi
package_status() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true; }
for p in "${packages[@]}"; do
  status=$(package_status "$p")
  if [ -n "$status" ] && [ "$status" != not-installed ]; then
    fail "$p is on this machine ($status); this test installs and purges it, so remove it first"
  fi
done

export DEBIAN_FRONTEND=noninteractive
apt_options=(-y -qq --no-install-recommends -o DPkg::Lock::Timeout=300)

# Purges what this test installed and checks that nothing of it is left; an exit hook.
purge_packages() {
  local p status left=0 path
  for p in "${packages[@]}"; do
    status=$(package_status "$p")
    if [ -n "$status" ] && [ "$status" != not-installed ]; then
      apt-get purge "${apt_options[@]}" "$p" >>"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log" >&2; left=1; }
    fi
  done
  for path in /usr/include/grayroute /usr/share/cmake/grayroute /usr/share/pkgconfig/grayroute.pc \
    /usr/share/doc/libgrayroute-dev "$module" /usr/share/nginx/modules-available/mod-http-grayroute.conf \
    "$enabled" "$enabled.removed"; do
    if [ -e "$path" ] || [ -L "$path" ]; then
      echo "left behind: $path" >&2
      left=1
    fi
  done
  return "$left"
}

step "cpack -G DEB"
run "$tmp/cpack.log" cpack -G DEB --config "$bin/CPackConfig.cmake" -B "$tmp/debs"
dev=$tmp/debs/libgrayroute-dev_${version}_all.deb
mod=$tmp/debs/libnginx-mod-http-grayroute_${version}_$(dpkg --print-architecture).deb
debs=("$dev")
if [ "$with_nginx" = ON ]; then debs+=("$mod"); fi
for deb in "${debs[@]}"; do
  [ -f "$deb" ] || fail "cpack made no $(basename "$deb"): $(ls "$tmp/debs")"
done

# has_field DEB FIELD REGEX
has_field() {
  local value
  value=$(dpkg-deb -f "$1" "$2")
  echo "$(basename "$1") $2: $value"
  [[ $value =~ $3 ]] || fail "$(basename "$1"): $2 is '$value', expected /$3/"
}
# has_files DEB PATH...: every PATH is in the package, and nothing is outside /usr.
has_files() {
  local deb=$1 path
  shift
  dpkg-deb -c "$deb" | awk '{print $6}' >"$tmp/contents"
  for path in "$@"; do
    grep -qxF "./usr/$path" "$tmp/contents" || fail "$(basename "$deb") lacks /usr/$path"
  done
  if grep -v '^\./usr/' "$tmp/contents" | grep -q .; then fail "$(basename "$deb") installs outside /usr"; fi
}

step "libgrayroute-dev: control fields and files"
has_field "$dev" Package '^libgrayroute-dev$'
has_field "$dev" Version "^${version//./\\.}$"
has_field "$dev" Architecture '^all$'
has_field "$dev" Depends '^$' # the core needs only the standard library
has_field "$dev" Recommends '(^|, )libhiredis-dev(,|$)'
has_files "$dev" include/grayroute/grayroute.hpp include/grayroute/version.hpp include/grayroute/redis_store.hpp \
  share/cmake/grayroute/grayrouteConfig.cmake share/cmake/grayroute/grayrouteConfigVersion.cmake \
  share/cmake/grayroute/grayrouteTargets.cmake share/pkgconfig/grayroute.pc \
  share/doc/libgrayroute-dev/copyright share/doc/grayroute/LICENSE

if [ "$with_nginx" = ON ]; then
  step "libnginx-mod-http-grayroute: control fields and files"
  # The ABI name the installed stock nginx provides, as Debian's module packages depend on it.
  abi=$(dpkg-query -W -f='${Provides}' nginx | grep -oE 'nginx-abi-[^ ,]+')
  [ -n "$abi" ] || fail "the installed nginx provides no nginx-abi-*"
  has_field "$mod" Package '^libnginx-mod-http-grayroute$'
  has_field "$mod" Version "^${version//./\\.}$"
  has_field "$mod" Architecture "^$(dpkg --print-architecture)$"
  has_field "$mod" Depends "(^|, )${abi//./\\.}(,|$)"
  if readelf -d "$bin/examples/nginx/ngx_http_grayroute_module.so" | grep -q 'NEEDED.*libhiredis\.so\.0\.14'; then
    has_field "$mod" Depends '(^|, )libhiredis0\.14( \(|,|$)'
  fi
  has_files "$mod" lib/nginx/modules/ngx_http_grayroute_module.so \
    share/nginx/modules-available/mod-http-grayroute.conf share/doc/libnginx-mod-http-grayroute/copyright
  dpkg-deb --fsys-tarfile "$mod" | tar -xO ./usr/share/nginx/modules-available/mod-http-grayroute.conf >"$tmp/mod.conf"
  expect "$tmp/mod.conf" "^load_module $module;$" "mod-http-grayroute.conf does not load $module"
  dpkg-deb --ctrl-tarfile "$mod" | tar -t >"$tmp/control-files"
  for script in postinst prerm postrm; do expect "$tmp/control-files" "^\./$script$" "no $script"; done
fi

step "apt-get install ${debs[*]##*/}"
exit_hooks+=(purge_packages)
run "$tmp/install.log" apt-get install "${apt_options[@]}" "${debs[@]}"
for p in "${packages[@]}"; do
  [ "$(package_status "$p")" = installed ] || fail "$p is not installed: $(package_status "$p")"
done

step "a consumer of the installed libgrayroute-dev (find_package, pkg-config)"
run "$tmp/consumer.log" cmake -S "$src/tests/find-package/consumer" -B "$tmp/consumer" -DCONSUME=find_package
expect "$tmp/consumer/CMakeCache.txt" "^grayroute_DIR:PATH=/usr/share/cmake/grayroute$" \
  "find_package(grayroute) did not find the installed package"
run "$tmp/consumer.log" cmake --build "$tmp/consumer"
"$tmp/consumer/consumer" | tee "$tmp/consumer.out"
expect "$tmp/consumer.out" "^$(routed_line "$version")$" "the consumer did not route"
expect "$tmp/consumer.out" "^redis store: redis disconnected" "the consumer did not use grayroute::redis"
[ "$(pkg-config --modversion grayroute)" = "$version" ] || fail "pkg-config grayroute: $(pkg-config --modversion grayroute)"
# libhiredis-dev is only recommended: without it (hidden here) the core still loads, and
# only `COMPONENTS redis` fails.
no_hiredis=(-DCMAKE_DISABLE_FIND_PACKAGE_hiredis=ON -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON)
run "$tmp/consumer-core.log" cmake -S "$src/tests/find-package/consumer" -B "$tmp/consumer-core" \
  -DCONSUME=find_package "${no_hiredis[@]}"
run "$tmp/consumer-core.log" cmake --build "$tmp/consumer-core"
"$tmp/consumer-core/consumer" | tee "$tmp/consumer-core.out"
expect "$tmp/consumer-core.out" "^$(routed_line "$version")$" "the consumer without hiredis did not route"
if grep -q "redis store" "$tmp/consumer-core.out"; then fail "grayroute::redis was defined without hiredis"; fi
mkdir -p "$tmp/needs-redis"
echo 'cmake_minimum_required(VERSION 3.16)
project(needs_redis LANGUAGES CXX)
find_package(grayroute REQUIRED COMPONENTS redis)' >"$tmp/needs-redis/CMakeLists.txt"
if cmake -S "$tmp/needs-redis" -B "$tmp/needs-redis/build" "${no_hiredis[@]}" >"$tmp/needs-redis.log" 2>&1; then
  fail "find_package(grayroute COMPONENTS redis) succeeded without hiredis"
fi
expect "$tmp/needs-redis.log" 'component "redis"' "no error naming the redis component"

if [ "$with_nginx" = ON ]; then
  step "stock nginx with the installed module, on examples/nginx/README.md's configuration"
  [ "$(readlink "$enabled")" = /usr/share/nginx/modules-available/mod-http-grayroute.conf ] \
    || fail "postinst did not enable the module in /etc/nginx/modules-enabled"
  mkdir -p "$tmp/redis" "$tmp/nginx"
  # free_port only probes: another process on this machine may take the port before the
  # server binds it. Each server is started until it is seen serving on ports of its own
  # (3 tries), judged by what it reports itself, not by a connect that anyone could answer.
  #   serve LOG READY COMMAND...: READY is a command that succeeds once COMMAND serves;
  #   1 when a port was taken (pick again), fails the test for any other reason.
  serve() {
    local log=$1 ready=$2 pid
    shift 2
    : >"$log" # there before READY reads it
    "$@" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
      if $ready; then
        pids+=("$pid")
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    grep -q "Address already in use" "$log" || { cat "$log" >&2; fail "$1 did not start"; }
    echo "a port picked for $1 was taken meanwhile; picking again"
    return 1
  }
  redis_ready() { grep -q "Ready to accept connections" "$tmp/redis.log"; }
  nginx_ready() { [ -s "$tmp/nginx/nginx.pid" ]; } # written once it has bound its ports

  for attempt in 1 2 3; do
    redis_port=$(free_port)
    serve "$tmp/redis.log" redis_ready redis-server --bind 127.0.0.1 --port "$redis_port" --requirepass foobared \
      --save "" --appendonly no --dir "$tmp/redis" && break
    [ "$attempt" -lt 3 ] || fail "redis-server found no free port"
  done
  for attempt in 1 2 3; do
    front=$(free_port)
    production=$(free_port)
    gray=$(free_port)
    rm -f "$tmp/nginx/nginx.pid"
    # The README's example, with free ports, a temp prefix and the backends in the same nginx;
    # the module is loaded the way Debian's nginx.conf does (include modules-enabled).
    cat >"$tmp/nginx/nginx.conf" <<CONF
include $enabled;
daemon off;
master_process on;
worker_processes 1;
user root;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log notice;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;

    grayroute_redis 127.0.0.1:$redis_port password=foobared;    # the gray list, synced in the background
    upstream client1 { server 127.0.0.1:$production; }          # production
    upstream client2 { server 127.0.0.1:$gray; }                # pre-release

    server {
        listen 127.0.0.1:$front;
        location ^~ /test {
            grayroute_route client1 client2;                    # production, gray
            proxy_pass http://\$grayroute_upstream;
        }
    }
    server { listen 127.0.0.1:$production; location / { return 200 "this 8080\n"; } }
    server { listen 127.0.0.1:$gray; location / { return 200 "8090\n"; } }
}
CONF
    run "$tmp/nginx-t.log" nginx -t -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
    expect "$tmp/nginx-t.log" "test is successful" "nginx -t failed"
    serve "$tmp/nginx.log" nginx_ready nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" && break
    [ "$attempt" -lt 3 ] || fail "nginx found no free ports"
  done
  wait_port "$front"

  # until_answer BODY: the answer to /test/index.html becomes BODY (the Redis sync is
  # asynchronous), within 10 s.
  until_answer() {
    local answer=""
    for _ in $(seq 200); do
      answer=$(curl -s --max-time 5 "http://127.0.0.1:$front/test/index.html" || true)
      if [ "$answer" = "$1" ]; then
        echo "curl 127.0.0.1/test/index.html -> $answer"
        return 0
      fi
      sleep 0.05
    done
    tail -n 20 "$tmp/nginx/error.log" >&2
    fail "expected '$1' from /test/index.html, got '$answer'"
  }
  redis() { redis-cli -p "$redis_port" -a foobared --no-auth-warning "$@" >/dev/null; }
  until_answer "this 8080"
  redis set 127.0.0.1 127.0.0.1
  until_answer "8090"
  redis del 127.0.0.1
  until_answer "this 8080"
  expect "$tmp/nginx/error.log" "grayroute: worker [0-9]+ syncing the gray list from redis://:\*\*\*@127\.0\.0\.1:$redis_port" \
    "the module did not log its Redis sync"
  if grep -q foobared "$tmp/nginx/error.log"; then fail "the password reached nginx's error log"; fi
fi

step "apt-get purge"
purge_packages || fail "purge left files behind"
echo "deb: ${debs[*]##*/} built, checked, installed, used and purged"
