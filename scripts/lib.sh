# Shared by the scripts: package installation and build helpers.
# Sourced, not run.

# Debian packages every script may need; each script asks only for its own.
ensure_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: need root to install ${missing[*]} (or install them yourself)" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # nginx's postinst tries to start the distribution's own server on port 80; the
  # tests start their own, so ask invoke-rc.d not to start anything while we install.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
  fi
  # Under the callers' `set -e` a failing apt-get would leave the function at once:
  # catch its status so the policy file goes away whatever happens.
  local rc=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi
  return "$rc"
}

# Packages for building and testing everything.
GRAYROUTE_BUILD_PACKAGES=(cmake make g++ pkg-config doctest-dev libhiredis-dev libboost-dev libcli11-dev
  libtomlplusplus-dev nlohmann-json3-dev)  # the last two: grayroute-proxy's policy file and health JSON
GRAYROUTE_TEST_PACKAGES=(redis-server redis-tools nginx nginx-dev curl clang libclang-rt-14-dev python3-prometheus-client)
# The package tests (tests/packages): Conan 2 run from source needs these Python modules,
# the vcpkg tool and its ports the build tools, cpack's DEB generator dpkg-shlibdeps.
GRAYROUTE_TEST_PACKAGES+=(python3-yaml python3-requests python3-jinja2 python3-fasteners python3-distro
  python3-dateutil python3-colorama python3-urllib3 python3-patch-ng
  ninja-build git zip unzip tar xz-utils libcurl4-openssl-dev dpkg-dev binutils)
GRAYROUTE_BENCH_PACKAGES=(libbenchmark-dev wrk valgrind libabsl-dev dpdk-dev)  # absl, DPDK: bench_lookup peers; valgrind: nginx_callgrind.sh

build_jobs() { nproc 2>/dev/null || echo 2; }

# --- servers on loopback, for the demo and the wrk benchmarks -------------------------
# start_scratch: a fresh directory in $tmp and a $pids list; every process in $pids is
# stopped and $tmp removed when the script exits, however it exits.
start_scratch() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/grayroute-XXXXXX")
  pids=()
  trap stop_scratch EXIT
  trap 'exit 130' INT TERM
}
stop_scratch() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}

# A loopback port nothing listens on: random candidates, each checked by connecting.
# Candidates lie below the kernel's ephemeral range, so no client socket of another test
# can hold one as its source port (a bind over it fails even with SO_REUSEADDR).
free_port() {
  local p low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$low" -gt 11000 ] || low=32768
  for p in $(shuf -i 10000-$((low - 1)) -n 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free port found" >&2
  return 1
}

# Waits up to 10 s for something to accept connections on 127.0.0.1:$1; on failure
# shows the end of the logs in $tmp.
wait_port() {
  local i
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing is listening on port $1; last log lines:" >&2
  tail -n 20 "$tmp"/*.log >&2 2>/dev/null || true
  return 1
}

# nginx_bench_setup MODULE TOOL...: for the nginx benchmarks. Exits unless the module
# (made absolute in $module) and every tool are there; then start_scratch, $work (the
# scratch directory) and $user_line (nginx's `user root;` when running as root).
nginx_bench_setup() {
  local tool
  module=$(readlink -f "$1")
  shift
  [ -f "$module" ] || { echo "no module at $module: build the grayroute_nginx_module target first" >&2; exit 1; }
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
  done
  start_scratch
  work=$tmp
  user_line=""
  [ "$(id -u)" = 0 ] && user_line="user root;"
  return 0
}
