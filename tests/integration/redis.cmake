# redis_store against a real redis-server (tests start their own on a free loopback port).
if(GRAYROUTE_HAS_REDIS)
  grayroute_add_test(redis_store_test
    SOURCES integration/redis_store_test.cpp
    LIBRARIES grayroute::redis
    LABELS server)
  grayroute_add_test(redis_concurrency_test
    SOURCES integration/redis_concurrency_test.cpp
    LIBRARIES grayroute::redis
    LABELS "server;concurrency")
  # A fake RESP server injecting faults (tests/support/fake_redis.hpp); the sync thread
  # races status readers and the fake's threads, so it runs under TSan too.
  grayroute_add_test(redis_faults_test
    SOURCES integration/redis_faults_test.cpp
    LIBRARIES grayroute::redis
    LABELS "server;concurrency")
  set_tests_properties(redis_store_test redis_concurrency_test redis_faults_test PROPERTIES TIMEOUT 120)
endif()
