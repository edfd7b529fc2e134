#!/usr/bin/env bash
# What including grayroute costs an embedder's translation unit, beside what the
# standard headers it is built on cost: <string> + <vector> + <optional> + <string_view>.
# Both measures in one run, for C++17 and C++20, and both gated at --max-ratio:
#   - preprocessed lines (`-E | wc -l`): deterministic;
#   - -O0 compile time (`-c`): the compiler's CPU time (user + system, which moves less
#     than wall time on a loaded machine), baseline and grayroute compiled alternately
#     --runs times after one discarded warm-up each, and the medians compared. Only
#     the ratio is gated, never a time: a loaded machine slows both sides alike.
#
#   bench/include_cost.sh [--compiler g++] [--header grayroute/grayroute.hpp]
#                         [--runs 7] [--max-ratio 3]
# Exits 1 when a line or time ratio exceeds --max-ratio. CTest runs it as `include_cost`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
compiler=${CXX:-g++}
header=grayroute/grayroute.hpp
runs=7
max_ratio=3
while [ $# -gt 0 ]; do
  case $1 in
    --compiler) compiler=$2; shift 2 ;;
    --header) header=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --max-ratio) max_ratio=$2; shift 2 ;;
    *) echo "usage: $0 [--compiler CXX] [--header grayroute/X.hpp] [--runs N] [--max-ratio R]" >&2; exit 2 ;;
  esac
done
command -v "$compiler" >/dev/null || { echo "include_cost: compiler \"$compiler\" not found" >&2; exit 1; }
[ -f "$root/include/$header" ] || { echo "include_cost: no include/$header" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/grayroute-include-cost-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf '#include <string>\n#include <vector>\n#include <optional>\n#include <string_view>\n' >"$tmp/baseline.cpp"
printf '#include <%s>\n' "$header" >"$tmp/grayroute.cpp"

lines() {  # std, source
  "$compiler" -std=c++"$1" -I"$root/include" -E "$2" | wc -l
}
milliseconds() {  # std, source: CPU time of one -O0 compile
  local TIMEFORMAT='%3U %3S' cpu
  cpu=$({ time "$compiler" -std=c++"$1" -I"$root/include" -O0 -c "$2" -o "$tmp/out.o"; } 2>&1)
  awk -v t="$cpu" 'BEGIN { split(t, f, " "); printf "%d\n", (f[1] + f[2]) * 1000 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "include cost of <$header> ($("$compiler" --version | head -n 1)), -O0 CPU time, median of $runs runs"
echo
echo "| standard | baseline lines | grayroute lines | ratio | baseline time | grayroute time | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
status=0
for std in 17 20; do
  base_lines=$(lines "$std" "$tmp/baseline.cpp")
  gray_lines=$(lines "$std" "$tmp/grayroute.cpp")
  : >"$tmp/base_ms"
  : >"$tmp/gray_ms"
  milliseconds "$std" "$tmp/baseline.cpp" >/dev/null  # warm-up: page cache, first-run costs
  milliseconds "$std" "$tmp/grayroute.cpp" >/dev/null
  for _ in $(seq "$runs"); do
    milliseconds "$std" "$tmp/baseline.cpp" >>"$tmp/base_ms"
    milliseconds "$std" "$tmp/grayroute.cpp" >>"$tmp/gray_ms"
  done
  base_ms=$(median <"$tmp/base_ms")
  gray_ms=$(median <"$tmp/gray_ms")
  line_ratio=$(awk -v a="$gray_lines" -v b="$base_lines" 'BEGIN { printf "%.2f", a / b }')
  time_ratio=$(awk -v a="$gray_ms" -v b="$base_ms" 'BEGIN { printf "%.2f", a / b }')
  printf '| C++%s | %s | %s | %s× | %.2f s | %.2f s | %s× |\n' "$std" "$base_lines" "$gray_lines" "$line_ratio" \
    "$(awk -v m="$base_ms" 'BEGIN { print m / 1000 }')" "$(awk -v m="$gray_ms" 'BEGIN { print m / 1000 }')" "$time_ratio"
  if awk -v r="$line_ratio" -v max="$max_ratio" 'BEGIN { exit !(r > max) }'; then
    echo "C++$std: <$header> preprocesses to ${line_ratio}× the baseline's lines; the limit is ${max_ratio}×" >&2
    status=1
  fi
  if awk -v r="$time_ratio" -v max="$max_ratio" 'BEGIN { exit !(r > max) }'; then
    echo "C++$std: <$header> takes ${time_ratio}× the baseline's compile time; the limit is ${max_ratio}×" >&2
    status=1
  fi
done
exit $status
