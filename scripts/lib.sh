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
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  local rc=$?
  [ "$created_policy" -eq 1 ] && rm -f "$policy"
  return $rc
}

# Packages for building and testing everything.
GRAYROUTE_BUILD_PACKAGES=(cmake make g++ pkg-config doctest-dev libhiredis-dev libboost-dev libcli11-dev)
GRAYROUTE_TEST_PACKAGES=(redis-server redis-tools nginx nginx-dev curl clang libclang-rt-14-dev)
GRAYROUTE_BENCH_PACKAGES=(libbenchmark-dev wrk)

jobs() { nproc 2>/dev/null || echo 2; }
