#!/usr/bin/env bash
# Instructions per request of one nginx worker, by callgrind: the module's cost measured in
# a way a busy shared machine does not disturb (nginx_wrk.sh measures time, which it does).
# Each mode runs one nginx (master_process off) under valgrind, proxying to the same plain
# nginx backend over upstream keepalive; after a warm-up the counters are zeroed, wrk sends
# requests for a few seconds, and the table gives instructions per request (the dumped
# total over wrk's request count) and the ratio to the baseline mode.
#
#   usage: bench/nginx_callgrind.sh [--module PATH] [--baseline-module PATH] [--seconds N]
#
# Modes: plain       proxy_pass, no routing
#        baseline    grayroute_route, static list of 1000, with --baseline-module (e.g. the
#                    module built from the commit before a change); skipped without it
#        static      the same with --module (route health on: the default)
#        health_off  static with `grayroute_health off` (breakers off; outcomes still counted)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
module="$here/../build/examples/nginx/ngx_http_grayroute_module.so"
baseline_module=""
seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --module) module=$2; shift 2 ;;
    --baseline-module) baseline_module=$(readlink -f "$2"); shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
. "$here/../scripts/lib.sh"
nginx_bench_setup "$module" nginx wrk valgrind callgrind_control python3

# $1 name, $2 module ("" for none), $3 http extras, $4 location body; prints the port.
write_conf() {
  local dir="$work/$1" port
  port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
${2:+load_module $2;}
daemon off;
master_process off;
$user_line
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    upstream client1 { server 127.0.0.1:${backend_port:-1}; keepalive 16; }
    upstream client2 { server 127.0.0.1:${backend_port:-1}; keepalive 16; }
    $3
    server {
        listen 127.0.0.1:$port;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location / { $4 }
    }
}
EOF
  echo "$port"
}

backend_port=$(write_conf backend "" "" 'return 200 "this 8080\n";')
nginx -p "$work/backend" -c "$work/backend/nginx.conf" >"$work/backend/stdout" 2>&1 &
pids+=($!)
wait_port "$backend_port"
python3 -c 'print("\n".join("10.0.%d.%d" % (i // 250, i % 250 + 1) for i in range(1000)))' >"$work/gray.list"

# $1 mode, $2 module, $3 http extras, $4 location body: "requests instructions".
measure() {
  local port vg out requests
  port=$(write_conf "$1" "$2" "$3" "$4")
  valgrind --tool=callgrind --callgrind-out-file="$work/$1/callgrind.out" \
    nginx -p "$work/$1" -c "$work/$1/nginx.conf" >"$work/$1/valgrind.log" 2>&1 &
  vg=$!
  pids+=("$vg")
  # nginx under valgrind starts slowly on a loaded machine: up to a minute.
  local tries
  for tries in 1 2 3 4 5 6; do wait_port "$port" 2>/dev/null && break; done
  wait_port "$port"
  wrk -t1 -c4 -d2s "http://127.0.0.1:$port/" >/dev/null  # warm-up: connections, code paths
  callgrind_control -z "$vg" >/dev/null 2>&1
  out=$(wrk -t1 -c4 -d"${seconds}s" "http://127.0.0.1:$port/")
  callgrind_control -d "$vg" >/dev/null 2>&1
  kill -QUIT "$vg"
  wait "$vg" || true
  [ -z "$(echo "$out" | awk '/Non-2xx|Socket errors/')" ] || { echo "$1: wrk saw errors" >&2; exit 1; }
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$requests $(awk '/^summary:/ {print $2}' "$work/$1/callgrind.out.1")"
}

route='grayroute_route client1 client2; proxy_pass http://$grayroute_upstream;'
list="grayroute_list_file $work/gray.list;"
declare -A per_request
modes=(plain)
[ -n "$baseline_module" ] && modes+=(baseline)
modes+=(static health_off)
for mode in "${modes[@]}"; do
  case "$mode" in
    plain) result=$(measure plain "$module" "" "proxy_pass http://client1;") ;;
    baseline) result=$(measure baseline "$baseline_module" "$list" "$route") ;;
    static) result=$(measure static "$module" "$list" "$route") ;;
    health_off) result=$(measure health_off "$module" "$list grayroute_health off;" "$route") ;;
  esac
  read -r requests instructions <<<"$result"
  per_request[$mode]=$(awk -v i="$instructions" -v n="$requests" 'BEGIN {printf "%.0f", i / n}')
  echo "$mode: $requests requests, $instructions instructions, ${per_request[$mode]} per request" >&2
done

reference=${per_request[baseline]:-${per_request[plain]}}
reference_name=plain
[ -n "$baseline_module" ] && reference_name=baseline
echo
echo "| mode | instructions per request | vs $reference_name | throughput if CPU-bound |"
echo "|---|---:|---:|---:|"
for mode in "${modes[@]}"; do
  awk -v m="$mode" -v a="${per_request[$mode]}" -v b="$reference" \
    'BEGIN {printf "| %s | %d | %+.1f%% | %.1f%% |\n", m, a, 100 * (a - b) / b, 100 * b / a}'
done
