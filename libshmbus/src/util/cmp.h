/* SPDX-License-Identifier: Apache-2.0 */
/* Comparison functions for qsort() and bsearch(). */
#ifndef SHMBUS_UTIL_CMP_H
#define SHMBUS_UTIL_CMP_H

#include <stdint.h>

/* Order two uint64_t by value. */
static inline int sb_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

#endif
