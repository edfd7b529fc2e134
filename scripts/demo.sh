#!/usr/bin/env bash
# Builds grayroute and routes a handful of sample requests, printing where each went and why.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages cmake make g++
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release -DGRAYROUTE_BUILD_TESTS=OFF -DGRAYROUTE_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build-demo -j "$(nproc)" --target route_requests
./build-demo/examples/route_requests
