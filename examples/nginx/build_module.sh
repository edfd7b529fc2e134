#!/usr/bin/env bash
# Builds ngx_http_grayroute_module.so against Debian's nginx-dev source tree, the way
# Debian builds its own dynamic modules: nginx's ./configure with the flags the
# packaged nginx was built with (conf_flags), plus --add-dynamic-module.
#
#   usage: build_module.sh configure|make BUILD_DIR [NGINX_SRC]
#     configure  copy the nginx tree into BUILD_DIR/nginx and run ./configure (slow, ~30 s)
#     make       compile and link the module (fast; only what changed)
set -euo pipefail

step=${1:?usage: build_module.sh configure|make BUILD_DIR [NGINX_SRC]}
build_dir=${2:?usage: build_module.sh configure|make BUILD_DIR [NGINX_SRC]}
nginx_src=${3:-/usr/share/nginx/src}
module_dir=$(cd "$(dirname "$0")" && pwd)
tree="$build_dir/nginx"

case "$step" in
  configure)
    [ -f "$nginx_src/conf_flags" ] || { echo "no $nginx_src/conf_flags: install nginx-dev" >&2; exit 1; }
    rm -rf "$tree"
    mkdir -p "$build_dir"
    cp -a "$nginx_src" "$tree"
    # shellcheck disable=SC1091
    . "$nginx_src/conf_flags"   # defines the NGX_CONF_FLAGS array
    cd "$tree"
    # The compiler and linker hardening flags of Debian's own build (nginx -V).
    ./configure "${NGX_CONF_FLAGS[@]}" \
      --with-cc-opt='-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2' \
      --with-ld-opt='-Wl,-z,relro -Wl,-z,now -fPIC' \
      --add-dynamic-module="$module_dir" >configure.log 2>&1 \
      || { tail -n 30 configure.log >&2; exit 1; }
    ;;
  make)
    cd "$tree"
    # nginx's CFLAGS also compile C files, which reject -std=c++17; this fragment adds
    # the C++ flags to the module's C++ objects only (a pattern-specific variable).
    cat >grayroute.mk <<'MK'
objs/addon/nginx/ngx_http_grayroute_%.o: CFLAGS += -std=c++17 -fvisibility=hidden -fvisibility-inlines-hidden
MK
    # Run as a plain make, not as a sub-make of the caller (CMake's jobserver is not ours).
    env -u MAKEFLAGS -u MFLAGS make -s -f objs/Makefile -f grayroute.mk modules
    # Copied only when it changed, so its timestamp means something to dependants.
    cmp -s objs/ngx_http_grayroute_module.so "$build_dir/ngx_http_grayroute_module.so" \
      || cp objs/ngx_http_grayroute_module.so "$build_dir/ngx_http_grayroute_module.so"
    ;;
  *)
    echo "unknown step: $step" >&2
    exit 2
    ;;
esac
