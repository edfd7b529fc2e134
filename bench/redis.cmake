# bench_redis starts its own redis-server on a free loopback port.
if(GRAYROUTE_HAS_REDIS)
  grayroute_add_benchmark(bench_redis SOURCES bench_redis.cpp LIBRARIES grayroute::redis)
  target_compile_options(bench_redis PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic>)
endif()
