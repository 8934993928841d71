/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Growable arrays (util/vec.h): growth by doubling from the first
 * capacity, room already there moving nothing, and counts whose bytes
 * would wrap or pass the largest object failing with -ENOMEM instead of
 * wrapping to a small allocation, the array left as it was.
 */
#include "testutil.h"

#include "util/vec.h"

struct item {
    uint64_t a, b;
};

static void test_vec_grows_by_doubling(void **state)
{
    struct item *v = NULL;
    size_t n = 0, cap = 0;

    (void)state;
    assert_int_equal(SB_VEC_RESERVE(v, cap, n, 1, 4), 0);
    assert_non_null(v);
    assert_int_equal(cap, 4);
    for (; n < 4; n++)
        v[n] = (struct item){.a = n, .b = ~n};
    assert_int_equal(SB_VEC_RESERVE(v, cap, n, 1, 4), 0);
    assert_int_equal(cap, 8);
    assert_int_equal(SB_VEC_RESERVE(v, cap, n, 100, 4), 0);
    assert_int_equal(cap, 128);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(v[i].a, i);
        assert_int_equal(v[i].b, ~i);
    }
    free(v);
}

static void test_vec_room_moves_nothing(void **state)
{
    uint32_t *v = NULL, *before;
    size_t cap = 0;

    (void)state;
    assert_int_equal(SB_VEC_RESERVE(v, cap, 0, 8, 8), 0);
    before = v;
    assert_int_equal(SB_VEC_RESERVE(v, cap, 3, 5, 8), 0);
    assert_ptr_equal(v, before);
    assert_int_equal(cap, 8);
    free(v);
}

static void test_vec_first_capacity_zero_means_one(void **state)
{
    char *v = NULL;
    size_t cap = 0;

    (void)state;
    assert_int_equal(SB_VEC_RESERVE(v, cap, 0, 1, 0), 0);
    assert_int_equal(cap, 1);
    assert_int_equal(SB_VEC_RESERVE(v, cap, 1, 1, 0), 0);
    assert_int_equal(cap, 2);
    free(v);
}

static void test_vec_overflow_fails(void **state)
{
    struct item *v = NULL;
    size_t n = 0, cap = 0;

    (void)state;
    assert_int_equal(SB_VEC_RESERVE(v, cap, n, 2, 2), 0);
    v[0] = (struct item){.a = 7};
    /* count * size wraps: must fail, not allocate a few bytes */
    assert_int_equal(SB_VEC_RESERVE(v, cap, 1, SIZE_MAX / sizeof(*v), 2), -ENOMEM);
    assert_int_equal(SB_VEC_RESERVE(v, cap, SIZE_MAX / 2, SIZE_MAX / 2 + 2, 2), -ENOMEM);
    assert_int_equal(SB_VEC_RESERVE(v, cap, SIZE_MAX, 1, 2), -ENOMEM);
    /* the array is as it was */
    assert_int_equal(cap, 2);
    assert_int_equal(v[0].a, 7);
    free(v);
}

static void test_vec_past_largest_object_fails(void **state)
{
    char *v = NULL;
    size_t cap = 0;

    (void)state;
    /* fits a size_t, but no object may be that large */
    assert_int_equal(SB_VEC_RESERVE(v, cap, 0, SB_VEC_BYTES_MAX + 1, 1), -ENOMEM);
    assert_null(v);
    assert_int_equal(cap, 0);
}

/* The capacity a caller that accounts memory first is told to grow to is
 * the one SB_VEC_RESERVE() grows to. */
static void test_vec_cap_for_is_what_reserve_takes(void **state)
{
    char *v = NULL;
    size_t cap = 0;

    (void)state;
    assert_int_equal(sb_vec_cap_for(1, 0, 0, 0, 1024), 0);        /* nothing asked: no array */
    assert_int_equal(sb_vec_cap_for(1, 0, 1, 0, 1024), 1024);     /* the first capacity */
    assert_int_equal(sb_vec_cap_for(1, 1000, 24, 1024, 1), 1024); /* fits */
    assert_int_equal(sb_vec_cap_for(1, 1000, 25, 1024, 1), 2048); /* doubles */
    assert_int_equal(sb_vec_cap_for(1, 1000, 5000, 1024, 1), 8192);
    assert_int_equal(sb_vec_cap_for(8, 1, SIZE_MAX / 8, 2, 1), 0); /* wraps */
    assert_int_equal(sb_vec_cap_for(1, 0, SB_VEC_BYTES_MAX + 1, 0, 1), 0);
    for (size_t n = 0; n < 5000; n += 333) {
        size_t want = sb_vec_cap_for(1, n, 333, cap, 1024);

        assert_int_equal(SB_VEC_RESERVE(v, cap, n, 333, 1024), 0);
        assert_int_equal(cap, want);
    }
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec_grows_by_doubling),
        cmocka_unit_test(test_vec_room_moves_nothing),
        cmocka_unit_test(test_vec_first_capacity_zero_means_one),
        cmocka_unit_test(test_vec_overflow_fails),
        cmocka_unit_test(test_vec_past_largest_object_fails),
        cmocka_unit_test(test_vec_cap_for_is_what_reserve_takes),
    };

    return cmocka_run_group_tests_name("vec", tests, NULL, NULL);
}
