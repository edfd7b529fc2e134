#!/usr/bin/env bash
# grayroute in one minute: builds grayroute-proxy, starts two tiny backends
# ("production" and "gray") and the proxy in front of them on loopback, then sends
# requests as different clients and shows where each went and why. A client is added
# to the gray list while the proxy runs and its next request moves to gray.
#
#   ./scripts/demo.sh           the list is a file, held in memory (no Redis needed)
#   ./scripts/demo.sh --redis   the seed's flow: `SET ip ip` in a local redis-server
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mode=file
case "${1:-}" in
  "") ;;
  --redis) mode=redis ;;
  -h | --help) sed -n '2,8p' "$0" | cut -c3-; exit 0 ;;
  *) echo "usage: $0 [--redis]" >&2; exit 2 ;;
esac

packages=(cmake make g++ libboost-dev libcli11-dev curl)
[ "$mode" = redis ] && packages+=(pkg-config libhiredis-dev redis-server redis-tools)
ensure_packages "${packages[@]}"

if [ -t 1 ]; then b=$'\033[1m' g=$'\033[32m' y=$'\033[33m' d=$'\033[2m' n=$'\033[0m'; else b= g= y= d= n=; fi
step() { printf '\n%s== %s%s\n' "$b" "$*" "$n"; }
note() { printf '   %s%s%s\n' "$d" "$*" "$n"; }

step "Building grayroute-proxy and the demo backend (build-demo/; the first build takes 30-60 s)"
started=$SECONDS
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DGRAYROUTE_BUILD_TESTS=OFF -DGRAYROUTE_BUILD_BENCHMARKS=OFF -DGRAYROUTE_INSTALL=OFF >/dev/null
if ! cmake --build build-demo -j "$(build_jobs)" --target grayroute-proxy grayroute-backend >build-demo/demo-build.log 2>&1; then
  cat build-demo/demo-build.log
  exit 1
fi
note "built in $((SECONDS - started)) s"
bin=build-demo/examples/asio_proxy

# --- processes, ports and cleanup ---------------------------------------------------
start_scratch

wait_log() {  # wait_log FILE TEXT: up to 5 s for TEXT to appear in FILE
  local i
  for i in $(seq 100); do
    grep -q -- "$2" "$1" && return 0
    sleep 0.05
  done
  return 1
}

production_port=$(free_port)
gray_port=$(free_port)
proxy_port=$(free_port)
url="http://127.0.0.1:$proxy_port/"

"$bin/grayroute-backend" --name production --listen "127.0.0.1:$production_port" >"$tmp/production.log" 2>&1 &
pids+=($!)
"$bin/grayroute-backend" --name gray --listen "127.0.0.1:$gray_port" >"$tmp/gray.log" 2>&1 &
pids+=($!)
wait_port "$production_port"
wait_port "$gray_port"

# ask WHAT CLIENT [curl options]: one request through the proxy, with
# X-Forwarded-For: CLIENT (none when ""); prints where it went and why.
ask() {
  local what=$1 client=$2 headers backend reason
  shift 2
  [ -n "$client" ] && set -- -H "X-Forwarded-For: $client" "$@"
  headers=$(curl -s -o /dev/null -D - "$@" "$url" | tr -d '\r')
  backend=$(sed -n 's/^X-Backend: //Ip' <<<"$headers")
  reason=$(sed -n 's/^X-Grayroute: .*reason=//Ip' <<<"$headers")
  local colour=$g
  [ "$backend" = gray ] && colour=$y
  printf '   %-58s -> %s%-10s%s %s\n' "$what" "$colour" "${backend:-error}" "$n" "${reason:+(reason: $reason)}"
}

# wait_route CLIENT BACKEND: up to 3 s for CLIENT's requests to reach BACKEND.
wait_route() {
  local i
  for i in $(seq 60); do
    [ "$(curl -s -o /dev/null -D - -H "X-Forwarded-For: $1" "$url" | tr -d '\r' | sed -n 's/^X-Backend: //Ip')" = "$2" ] &&
      return 0
    sleep 0.05
  done
}

common=(--listen "127.0.0.1:$proxy_port" --production "127.0.0.1:$production_port" --gray "127.0.0.1:$gray_port"
        --trusted-proxy 127.0.0.1/32 --threads 1)

if [ "$mode" = file ]; then
  # --- the file demo ------------------------------------------------------------------
  cat >"$tmp/gray-list.txt" <<'EOF'
# Who gets the pre-release: one address or network per line.
192.168.116.0/24   # the QA office
EOF
  step "Starting: backend \"production\" on :$production_port, backend \"gray\" on :$gray_port, grayroute-proxy on :$proxy_port"
  "$bin/grayroute-proxy" "${common[@]}" --gray-list-file "$tmp/gray-list.txt" --watch-interval 200 \
    --force-header X-Canary --percent 10 --percent-key X-User-Id >"$tmp/proxy.log" 2>&1 &
  proxy_pid=$!
  pids+=($proxy_pid)
  wait_port "$proxy_port"
  sed 's/^/   | /' "$tmp/proxy.log"
  note "The gray list file:"
  sed 's/^/   | /' "$tmp/gray-list.txt"

  step "Requests through our load balancer (127.0.0.1, trusted), which adds X-Forwarded-For"
  ask "QA laptop 192.168.116.20" 192.168.116.20
  ask "customer 203.0.113.9" 203.0.113.9
  ask "customer 198.51.100.4" 198.51.100.4
  ask "tester 198.51.100.4 sending X-Canary: always" 198.51.100.4 -H "X-Canary: always"

  step "A client connecting directly from 127.0.0.2 (not a trusted proxy) claims to be QA"
  ask "127.0.0.2 sending X-Forwarded-For: 192.168.116.20" 192.168.116.20 --interface 127.0.0.2
  note "Its header is ignored: only --trusted-proxy peers may name the client. (The seed believed anyone.)"

  step "10% rollout keyed by X-User-Id (sticky: a user always gets the same answer)"
  in_gray=()
  for i in $(seq 1 40); do
    backend=$(curl -s -o /dev/null -D - -H "X-Forwarded-For: 203.0.113.50" -H "X-User-Id: user-$i" "$url" | tr -d '\r' |
      sed -n 's/^X-Backend: //Ip')
    [ "$backend" = gray ] && in_gray+=("user-$i")
  done
  printf '   %d of 40 users went to gray: %s\n' "${#in_gray[@]}" "${in_gray[*]}"
  [ ${#in_gray[@]} -gt 0 ] && ask "${in_gray[0]} again" 203.0.113.50 -H "X-User-Id: ${in_gray[0]}"

  step "Adding customer 203.0.113.9 to the list file while the proxy runs"
  printf '   $ echo "203.0.113.9   # beta customer" >> gray-list.txt\n'
  echo "203.0.113.9   # beta customer" >>"$tmp/gray-list.txt"
  wait_log "$tmp/proxy.log" "gray list reloaded" && grep "gray list reloaded" "$tmp/proxy.log" | tail -n 1 | sed 's/^/   | /'
  ask "customer 203.0.113.9" 203.0.113.9

  step "A typo in the list file is rejected with its line number; the old list stays"
  printf '   $ echo "203.0.113.300" >> gray-list.txt\n'
  echo "203.0.113.300" >>"$tmp/gray-list.txt"
  wait_log "$tmp/proxy.log" "NOT reloaded" && grep "NOT reloaded" "$tmp/proxy.log" | tail -n 1 | sed "s|$tmp/||; s/^/   | /"
  ask "customer 203.0.113.9" 203.0.113.9
else
  # --- the Redis demo: the seed's own flow ---------------------------------------------
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp" --save "" --appendonly no --daemonize no \
    >"$tmp/redis.log" 2>&1 &
  redis_pid=$!
  pids+=($redis_pid)
  wait_port "$redis_port"
  rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
  step "Starting: redis-server on :$redis_port, backends on :$production_port and :$gray_port, grayroute-proxy on :$proxy_port"
  "$bin/grayroute-proxy" "${common[@]}" --redis "127.0.0.1:$redis_port" --redis-schema seed >"$tmp/proxy.log" 2>&1 &
  proxy_pid=$!
  pids+=($proxy_pid)
  wait_port "$proxy_port"
  sed 's/^/   | /' "$tmp/proxy.log"
  note "The list lives in Redis as the seed kept it: a key per address (SET ip ip)."
  note "grayroute keeps a synced copy in memory: no Redis round trip per request."

  step "Before: nobody is listed"
  ask "customer 203.0.113.9" 203.0.113.9

  step "The seed's way to move a client: SET ip ip"
  printf '   $ redis-cli SET 203.0.113.9 203.0.113.9   -> %s\n' "$(rcli SET 203.0.113.9 203.0.113.9)"
  wait_route 203.0.113.9 gray
  ask "customer 203.0.113.9" 203.0.113.9
  ask "customer 198.51.100.4" 198.51.100.4

  step "And back: DEL ip"
  printf '   $ redis-cli DEL 203.0.113.9   -> %s\n' "$(rcli DEL 203.0.113.9)"
  wait_route 203.0.113.9 production
  ask "customer 203.0.113.9" 203.0.113.9
  rcli SET 203.0.113.9 203.0.113.9 >/dev/null
  wait_route 203.0.113.9 gray
  note "(listed again with SET, before the next scene)"

  step "Redis goes away: the seed answered \"failed to connect\"; grayroute keeps its last list"
  kill "$redis_pid"
  wait "$redis_pid" 2>/dev/null || true
  ask "customer 203.0.113.9" 203.0.113.9
  ask "customer 198.51.100.4" 198.51.100.4
fi

step "Health: GET /-/grayroute/health"
printf '   %s\n' "$(curl -s "${url}-/grayroute/health")"

step "The proxy's access log (one line per request)"
grep " route=" "$tmp/proxy.log" | tail -n 4 | sed 's/^/   | /'

step "Stopping (SIGTERM: in-flight requests finish, then the proxy exits)"
kill -TERM "$proxy_pid"
wait "$proxy_pid" 2>/dev/null || true
tail -n 2 "$tmp/proxy.log" | sed 's/^/   | /'
printf '\n%sDone in %d s.%s Next: examples/asio_proxy/README.md (every flag, the benchmark).\n' "$b" "$SECONDS" "$n"
