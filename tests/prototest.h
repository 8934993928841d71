/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the bridge codec tests (test_bridge_proto_{resp,json,glob}.c):
 * literals with their lengths, the parsers' limits, a cmocka state of
 * zeroed bytes, and exact-size heap copies for ASan to guard.
 */
#ifndef SHMBUS_TESTS_PROTOTEST_H
#define SHMBUS_TESTS_PROTOTEST_H

#include "testutil.h"

/* A string literal and its length, for tables of inputs. */
#define LIT(s) s, sizeof(s) - 1

#define MAX_BULK   64
#define MAX_INLINE 64

/* cmocka setup of a parser's state: *state becomes @p size zeroed bytes. */
static inline int state_alloc(void **state, size_t size)
{
    *state = calloc(1, size);
    return *state != NULL ? 0 : -1;
}

/* A copy of the @p n bytes at @p s in a heap block of exactly that size
 * (1 byte when empty), so that ASan catches any access past them. */
static inline char *exact_copy(const void *s, size_t n)
{
    char *c = malloc(n > 0 ? n : 1);

    assert_non_null(c);
    if (n > 0)
        memcpy(c, s, n);
    return c;
}

#endif
