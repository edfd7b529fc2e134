#!/usr/bin/env bash
# grayroute-proxy vs stock nginx as plain reverse proxies to the same backend, under wrk
# on loopback: one worker thread each, same concurrency, medians of several runs.
# Also grayroute-proxy with routing off (--no-routing), with route health off (--health
# off; it is on by default), and each proxy's CPU time per request (from /proc), so the
# routing decision's and the health tracking's shares of a request are visible.
#
#   bench/proxy_wrk.sh [path/to/grayroute-proxy [path/to/grayroute-backend]]
#   RUNS=3 DURATION=5 CONNECTIONS=50 LIST_SIZE=10000   (the defaults)
# or: cmake --build build --target bench_proxy_wrk
set -euo pipefail
cd "$(dirname "$0")/.."
proxy_bin=${1:-build/examples/asio_proxy/grayroute-proxy}
backend_bin=${2:-build/examples/asio_proxy/grayroute-backend}
runs=${RUNS:-3}
duration=${DURATION:-5}
connections=${CONNECTIONS:-50}
list_size=${LIST_SIZE:-10000}
for tool in wrk nginx "$proxy_bin" "$backend_bin"; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install wrk nginx; build grayroute-proxy)" >&2; exit 1; }
done

. scripts/lib.sh
start_scratch

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, in clock ticks

backend_port=$(free_port)
"$backend_bin" --name backend --listen "127.0.0.1:$backend_port" >"$tmp/backend.log" 2>&1 &
pids+=($!)
wait_port "$backend_port"

# nginx: stock Debian binary, one worker, upstream keepalive, the same headers the proxy sets.
nginx_port=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  upstream backend { server 127.0.0.1:$backend_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
pids+=($!)
wait_port "$nginx_port"
nginx_worker=$(pgrep -P "$(cat "$tmp/nginx/nginx.pid")" | head -n 1)

# grayroute-proxy: one worker thread, a gray list of $list_size networks, the client
# named by X-Forwarded-For from a trusted loopback hop (so the router does real work).
awk -v n="$list_size" 'BEGIN { for (i = 0; i < n; i++) printf "10.%d.%d.0/24\n", int(i / 256) % 256, i % 256 }' >"$tmp/list.txt"
start_proxy() {  # start_proxy PORT [extra flags]
  local port=$1
  shift
  "$proxy_bin" --listen "127.0.0.1:$port" --production "127.0.0.1:$backend_port" --gray "127.0.0.1:$backend_port" \
    --threads 1 --access-log off --gray-list-file "$tmp/list.txt" --trusted-proxy 127.0.0.1/32 "$@" \
    >"$tmp/proxy-$port.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
}
routing_port=$(free_port)
start_proxy "$routing_port"
routing_pid=${pids[-1]}
plain_port=$(free_port)
start_proxy "$plain_port" --no-routing
plain_pid=${pids[-1]}
health_off_port=$(free_port)
start_proxy "$health_off_port" --health off
health_off_pid=${pids[-1]}

# run NAME PORT PID: one wrk run; appends "rps p99_ms cpu_us_per_request" to $tmp/NAME.
run() {
  local name=$1 port=$2 pid=$3 out before after rps p99 requests
  before=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c"$connections" -d"${duration}s" --latency -H "X-Forwarded-For: 10.3.7.9, 203.0.113.9" \
    "http://127.0.0.1:$port/")
  after=$(cpu_ticks "$pid")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } print v }' <<<"$out")
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
    echo "warning: $name: $(grep "Non-2xx\|Socket errors" <<<"$out")" >&2
  fi
  echo "$rps $p99 $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v r="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / r }')" >>"$tmp/r.$name"
  printf '  %-28s run: %9.0f req/s  p99 %6.2f ms\n' "$name" "$rps" "$p99"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
column_median() { awk -v c="$2" '{print $c}' "$tmp/r.$1" | median; }

echo "wrk -t1 -c$connections -d${duration}s, $runs runs each, interleaved; one worker thread per proxy; $(nproc) cores"
wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$nginx_port/" >/dev/null  # warm-up
wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$routing_port/" >/dev/null
for i in $(seq "$runs"); do
  run nginx "$nginx_port" "$nginx_worker"
  run grayroute-proxy "$routing_port" "$routing_pid"
  run grayroute-proxy-no-routing "$plain_port" "$plain_pid"
  run grayroute-proxy-health-off "$health_off_port" "$health_off_pid"
done

nginx_rps=$(column_median nginx 1)
echo
echo "| proxy (1 worker thread) | requests/s (median) | p99 latency | CPU per request | vs nginx |"
echo "|---|---:|---:|---:|---:|"
for name in nginx grayroute-proxy grayroute-proxy-no-routing grayroute-proxy-health-off; do
  rps=$(column_median "$name" 1)
  printf '| %s | %.0f | %.2f ms | %.1f µs | %.0f%% |\n' "$name" "$rps" "$(column_median "$name" 2)" \
    "$(column_median "$name" 3)" "$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { print 100 * a / b }')"
done
on=$(column_median grayroute-proxy 3)
off=$(column_median grayroute-proxy-no-routing 3)
echo
awk -v on="$on" -v off="$off" -v n="$list_size" 'BEGIN {
  printf "routing on - off (list of %d networks, X-Forwarded-For walk): %.2f µs of %.2f µs CPU per request = %.1f%%\n",
         n, on - off, on, 100 * (on - off) / on
  print "(a difference of medians, within run-to-run noise on a busy machine; bench_proxy measures the decision alone)" }'
health_on_rps=$(column_median grayroute-proxy 1)
health_off_rps=$(column_median grayroute-proxy-health-off 1)
awk -v on="$health_on_rps" -v off="$health_off_rps" -v con="$on" -v coff="$(column_median grayroute-proxy-health-off 3)" 'BEGIN {
  printf "route health on (default) vs --health off: %.1f%% of the requests/s; CPU per request %.2f vs %.2f µs\n",
         100 * on / off, con, coff }'
