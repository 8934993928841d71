/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Growable arrays: the one place that grows a malloc'd array by doubling
 * its capacity. The array stays the caller's plain pointer, count and
 * capacity (a size_t); SB_VEC_RESERVE() makes room for more elements,
 * with the element size taken from the pointer's type and every size
 * checked for overflow, so that a huge count fails instead of wrapping
 * to a small allocation. Not thread-safe: the caller serialises access
 * to its array.
 */
#ifndef SHMBUS_UTIL_VEC_H
#define SHMBUS_UTIL_VEC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The largest array in bytes: the largest object C lets pointers span
 * (a difference of two pointers into it must fit a ptrdiff_t). */
#define SB_VEC_BYTES_MAX ((size_t)PTRDIFF_MAX)

/*
 * The capacity, in elements of @p size bytes, that an array of capacity
 * @p cap grows to for @p more elements after the first @p n: @p cap itself
 * if they fit, else @p cap doubled (from @p first if @p cap is 0, 1 if both
 * are) until they do, or just n + more where doubling would pass
 * SB_VEC_BYTES_MAX. For callers that must account for memory before they
 * grow (sb_vec_reserve() uses it too).
 * @return the capacity, or 0 if n + more elements of @p size bytes pass
 * SB_VEC_BYTES_MAX (a count that would wrap included).
 */
static inline size_t sb_vec_cap_for(size_t size, size_t n, size_t more, size_t cap, size_t first)
{
    size_t want = cap != 0 ? cap : (first != 0 ? first : 1);
    size_t max = size != 0 ? SB_VEC_BYTES_MAX / size : 0;

    /* Room already. */
    if (more <= cap && n <= cap - more)
        return cap;
    /* n + more would wrap, or its bytes pass the largest object. */
    if (more > SIZE_MAX - n || n + more > max)
        return 0;
    while (want < n + more)
        want = want > max / 2 ? n + more : want * 2;
    if (want > max)
        want = n + more; /* doubling overshoots: take just what is asked */
    return want;
}

/*
 * Make room in the array whose pointer is at @p basep (an lvalue of any
 * object pointer type, @p size bytes an element) for @p more elements
 * after the first @p n: if they do not fit in *@p cap, it grows to
 * sb_vec_cap_for()'s capacity and the array moves with realloc(). On
 * failure the array and *@p cap are left as they were (still the caller's
 * to free). Use SB_VEC_RESERVE().
 * @return 0, or -ENOMEM if memory is short or n + more elements of
 * @p size bytes pass SB_VEC_BYTES_MAX (a count that would wrap included).
 */
static inline int sb_vec_reserve(void *basep, size_t size, size_t n, size_t more, size_t *cap,
                                 size_t first)
{
    size_t want;
    void *base, *grown;

    /* Room already: nothing moves. */
    if (more <= *cap && n <= *cap - more)
        return 0;
    want = sb_vec_cap_for(size, n, more, *cap, first);
    if (want == 0)
        return -ENOMEM;
    /* memcpy: the pointer is of the caller's type, read and written as
     * bytes rather than through a void ** that would alias it. */
    memcpy(&base, basep, sizeof(base));
    grown = realloc(base, want * size);
    if (grown == NULL)
        return -ENOMEM;
    memcpy(basep, &grown, sizeof(grown));
    *cap = want;
    return 0;
}

/* Make room in array @p arr (a pointer lvalue, its capacity the size_t
 * lvalue @p cap) for @p more elements after the first @p n; @p first is
 * the capacity of an empty array. @return 0 or -ENOMEM (sb_vec_reserve()). */
#define SB_VEC_RESERVE(arr, cap, n, more, first)                                                   \
    sb_vec_reserve(&(arr), sizeof(*(arr)), (n), (more), &(cap), (first))

#endif
