#!/usr/bin/env bash
# Requests per second of stock nginx with and without the grayroute module, by wrk on
# loopback. Every mode proxies to the same backend (an nginx `return 200` server) over
# the same upstream keepalive; modes run interleaved, several times, and the table
# reports medians and the ratio to plain proxy_pass. Besides requests per second it
# reports the front nginx worker's CPU time per request (from /proc), which a busy
# shared machine disturbs far less than throughput.
#
#   usage: bench/nginx_wrk.sh [--module PATH] [--runs N] [--duration SECONDS] [--connections N] [--modes "plain static ..."]
#                             [--baseline-module PATH]
#
# Modes: plain  proxy_pass, no routing (the baseline)
#        static grayroute_route with a static grayroute_list of 1000 entries (route health on,
#               the default: every response recorded in the shared zone from the log phase)
#        health_off  static with `grayroute_health off` (breakers off; outcomes still counted)
#        baseline    static with the module given by --baseline-module (e.g. one built from a
#                    commit before a change: the same configuration, the other code)
#        redis  grayroute_route with the list synced from Redis (1000 keys, seed schema)
#        direct grayroute_redis mode=direct: one Redis GET per request, like the seed's Lua
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
module="$here/../build/examples/nginx/ngx_http_grayroute_module.so"
runs=7
duration=3
connections=32
modes_wanted="plain static health_off redis direct"
baseline_module=""
while [ $# -gt 0 ]; do
  case "$1" in
    --module) module=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --modes) modes_wanted=$2; shift 2 ;;
    --baseline-module) baseline_module=$(readlink -f "$2"); shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
. "$here/../scripts/lib.sh"
nginx_bench_setup "$module" nginx wrk redis-server redis-cli python3

# nginx.conf for one instance in its own prefix: $1 name, $2 port, $3 http extras, $4 location body,
# $5 the module (default: --module).
write_conf() {
  local dir="$work/$1"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
load_module ${5:-$module};
daemon off;
master_process on;
worker_processes 1;
$user_line
pid $dir/nginx.pid;
error_log $dir/error.log notice;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
    upstream client1 { server 127.0.0.1:$backend_port; keepalive 64; }
    upstream client2 { server 127.0.0.1:$backend_port; keepalive 64; }
    $3
    server {
        listen 127.0.0.1:$2 reuseport backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location / {
            $4
        }
    }
}
EOF
}

start_nginx() {
  nginx -p "$work/$1" -c "$work/$1/nginx.conf" >"$work/$1/stdout" 2>&1 &
  pids+=($!)
  eval "pid_$1=$!"
  wait_port "$2"
}

stop_nginx() {
  local pid_var="pid_$1"
  kill "${!pid_var}" 2>/dev/null || true
  wait "${!pid_var}" 2>/dev/null || true
}

# The backend and Redis run for the whole benchmark.
backend_port=$(free_port)
mkdir -p "$work/backend"
cat >"$work/backend/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
$user_line
pid $work/backend/nginx.pid;
error_log $work/backend/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/backend/body; proxy_temp_path $work/backend/proxy;
    fastcgi_temp_path $work/backend/fastcgi; uwsgi_temp_path $work/backend/uwsgi; scgi_temp_path $work/backend/scgi;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$backend_port backlog=4096; location / { return 200 "this 8080\n"; } }
}
EOF
nginx -p "$work/backend" -c "$work/backend/nginx.conf" >"$work/backend/stdout" 2>&1 &
pids+=($!)
wait_port "$backend_port"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --requirepass foobared --save '' --appendonly no \
  --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"
# 1000 listed addresses (10.0.x.y), not including the benchmark client 127.0.0.1.
python3 - "$work/keys.txt" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        ip = "10.0.%d.%d" % (i // 250, i % 250 + 1)
        f.write("SET %s %s\n" % (ip, ip))
EOF
redis-cli -p "$redis_port" -a foobared --no-auth-warning <"$work/keys.txt" >/dev/null
python3 -c 'print("\n".join("10.0.%d.%d" % (i // 250, i % 250 + 1) for i in range(1000)))' >"$work/gray.list"

redis="grayroute_redis 127.0.0.1:$redis_port password=foobared;"
route='grayroute_route client1 client2; proxy_pass http://$grayroute_upstream;'
read -r -a modes <<<"$modes_wanted"
declare -A port
for mode in plain static health_off baseline redis direct; do port[$mode]=$(free_port); done
write_conf plain "${port[plain]}" "" "proxy_pass http://client1;"
write_conf static "${port[static]}" "grayroute_list_file $work/gray.list;" "$route"
write_conf health_off "${port[health_off]}" "grayroute_list_file $work/gray.list; grayroute_health off;" "$route"
if [ -n "$baseline_module" ]; then
  write_conf baseline "${port[baseline]}" "grayroute_list_file $work/gray.list;" "$route" "$baseline_module"
fi
write_conf redis "${port[redis]}" "$redis" "$route"
write_conf direct "${port[direct]}" "grayroute_redis 127.0.0.1:$redis_port password=foobared mode=direct;" "$route"

declare -A results cpu
echo "wrk -t1 -c$connections -d${duration}s, $runs runs per mode, interleaved; nginx $(nginx -v 2>&1 | sed 's/.*\///'), 1 worker" >&2
for run in $(seq 1 "$runs"); do
  for mode in "${modes[@]}"; do
    start_nginx "$mode" "${port[$mode]}"
    curl_body=$(exec 3<>"/dev/tcp/127.0.0.1/${port[$mode]}"; printf 'GET / HTTP/1.0\r\n\r\n' >&3; cat <&3 | tail -n 1)
    [ "$curl_body" = "this 8080" ] || { echo "$mode: unexpected answer: $curl_body" >&2; cat "$work/$mode/error.log" >&2; exit 1; }
    wrk -t1 -c"$connections" -d1s "http://127.0.0.1:${port[$mode]}/" >/dev/null  # warm-up: connections, Redis sync
    pid_var="pid_$mode"
    worker=$(pgrep -P "${!pid_var}" | head -n 1)
    cpu_before=$(awk '{print $14 + $15}' "/proc/$worker/stat")
    out=$(wrk -t1 -c"$connections" -d"${duration}s" "http://127.0.0.1:${port[$mode]}/")
    cpu_after=$(awk '{print $14 + $15}' "/proc/$worker/stat")
    stop_nginx "$mode"
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    errors=$(echo "$out" | awk '/Non-2xx|Socket errors/' | tr '\n' ' ')
    [ -z "$errors" ] || { echo "$mode: wrk saw errors: $errors" >&2; exit 1; }
    cpu_us=$(awk -v t=$((cpu_after - cpu_before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
    results[$mode]="${results[$mode]:-} $rps"
    cpu[$mode]="${cpu[$mode]:-} $cpu_us"
    echo "run $run $mode: $rps req/s, $cpu_us us CPU/request in the worker" >&2
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
base=$(echo "${results[plain]}" | median)
base_cpu=$(echo "${cpu[plain]}" | median)
echo
echo "| mode | what it does | runs (req/s) | median req/s | vs plain | worker CPU µs/request (median) | vs plain |"
echo "|---|---|---|---:|---:|---:|---:|"
describe() {
  case "$1" in
    plain) echo "proxy_pass, no routing" ;;
    static) echo "module, static list (1000 entries), route health on (default)" ;;
    health_off) echo "module, static list, grayroute_health off" ;;
    baseline) echo "static list, --baseline-module" ;;
    redis) echo "module, Redis-synced list (1000 keys)" ;;
    direct) echo "module, one Redis GET per request (seed-like)" ;;
  esac
}
for mode in "${modes[@]}"; do
  m=$(echo "${results[$mode]}" | median)
  ratio=$(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.1f%%", 100 * a / b}')
  c=$(echo "${cpu[$mode]}" | median)
  cpu_ratio=$(awk -v a="$c" -v b="$base_cpu" 'BEGIN {printf "%+.1f%%", 100 * (a - b) / b}')
  echo "| $mode | $(describe "$mode") |$(echo "${results[$mode]}" | sed 's/ \([0-9.]*\)/ \1,/g; s/,$//') | $m | $ratio | $c | $cpu_ratio |"
done
