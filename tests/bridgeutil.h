/*
 * Helpers for the tests that talk to the daemon's TCP bridge through
 * hiredis (test_bridge.c, test_bridge_budget.c).
 */
#ifndef SHMBUS_TESTS_BRIDGEUTIL_H
#define SHMBUS_TESTS_BRIDGEUTIL_H

#include "testutil.h"

#include <hiredis/hiredis.h>

/* A hiredis connection to the bridge on 127.0.0.1:@p port, whose connect,
 * reads and writes time out after @p ms: a hang fails the test. */
static inline redisContext *bu_redis_open(int port, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", port, tv);

    if (r == NULL || r->err)
        fail_msg("hiredis connect: %s", r != NULL ? r->errstr : "out of memory");
    assert_int_equal(redisSetTimeout(r, tv), REDIS_OK);
    return r;
}

#endif
