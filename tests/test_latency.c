/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The latency summary of `shmbus sub --latency` (tools/latency.c): the
 * nearest-rank percentiles of a few samples (exact below 64 ns), p99.9 of
 * 1000 samples not taking the one outlier, no samples, samples stamped in
 * the future, the largest values, and the summary line itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latency.h"

/* A zeroed summary per test: 30 KiB, on the heap. */
static int lat_setup(void **state)
{
    *state = calloc(1, sizeof(struct cli_latency));
    return *state != NULL ? 0 : -1;
}

static int lat_teardown(void **state)
{
    free(*state);
    return 0;
}

/* Add a sample of @p ns nanoseconds. */
static void lat_add(struct cli_latency *l, uint64_t ns)
{
    cli_latency_add(l, 1000000000ull + ns, 1000000000ull);
}

/* The summary line of @p l, in @p buf. */
static void lat_line(const struct cli_latency *l, char *buf, size_t cap)
{
    FILE *f = fmemopen(buf, cap, "w");

    assert_non_null(f);
    cli_latency_print(l, f);
    fclose(f);
}

static void test_latency_empty(void **state)
{
    struct cli_latency *l = *state;
    char line[256];

    assert_int_equal(cli_latency_quantile(l, 0.5), 0);
    assert_int_equal(cli_latency_quantile(l, 0.999), 0);
    lat_line(l, line, sizeof(line));
    assert_string_equal(line, "latency (us) over 0 messages: p50=0.000 p90=0.000 p99=0.000 "
                              "p99.9=0.000 max=0.000\n");
}

/* Ten exact samples, 1..10 ns: the nearest rank, ceil(q * n). */
static void test_latency_nearest_rank(void **state)
{
    struct cli_latency *l = *state;

    for (uint64_t v = 10; v >= 1; v--)
        lat_add(l, v);
    assert_int_equal(cli_latency_quantile(l, 0.5), 5);
    assert_int_equal(cli_latency_quantile(l, 0.9), 9);
    assert_int_equal(cli_latency_quantile(l, 0.99), 10);
    assert_int_equal(cli_latency_quantile(l, 0.999), 10);
    assert_int_equal(l->max, 10);
}

/* 999 samples of 40 ns and one of a second: p99.9 is the 999th, not the
 * outlier; p100 is (the middle of its bucket, capped at the exact max). */
static void test_latency_p999_outlier(void **state)
{
    struct cli_latency *l = *state;

    for (int i = 0; i < 999; i++)
        lat_add(l, 40);
    lat_add(l, 1000000000ull);
    assert_int_equal(cli_latency_quantile(l, 0.999), 40);
    assert_int_equal(cli_latency_quantile(l, 1.0), 1000000000ull);
}

/* A value in a wide bucket: within 1/64 of it, and never above the max. */
static void test_latency_bucket_error(void **state)
{
    struct cli_latency *l = *state;
    uint64_t q;

    lat_add(l, 1000000);
    lat_add(l, 1000001);
    q = cli_latency_quantile(l, 0.5);
    assert_true(q >= 1000000 - 1000000 / 64 && q <= 1000000 + 1000000 / 64);
    assert_true(cli_latency_quantile(l, 1.0) <= 1000001);
}

/* A clock stepped back: counted as 0, and said. */
static void test_latency_negative(void **state)
{
    struct cli_latency *l = *state;
    char line[256];

    cli_latency_add(l, 1000, 5000);
    assert_int_equal(l->n, 1);
    assert_int_equal(l->negative, 1);
    assert_int_equal(cli_latency_quantile(l, 0.5), 0);
    lat_line(l, line, sizeof(line));
    assert_non_null(strstr(line, "over 1 message: "));
    assert_non_null(strstr(line, "(1 stamped in the future, counted as 0)"));
}

/* The largest values land in the last bucket, without overflow. */
static void test_latency_huge(void **state)
{
    struct cli_latency *l = *state;

    cli_latency_add(l, UINT64_MAX, 0);
    cli_latency_add(l, UINT64_MAX - 1, 0);
    assert_int_equal(l->max, UINT64_MAX);
    assert_true(cli_latency_quantile(l, 1.0) >= UINT64_MAX - UINT64_MAX / 64);
    assert_int_equal(l->bucket[CLI_LAT_BUCKETS - 1], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_latency_empty, lat_setup, lat_teardown),
        cmocka_unit_test_setup_teardown(test_latency_nearest_rank, lat_setup, lat_teardown),
        cmocka_unit_test_setup_teardown(test_latency_p999_outlier, lat_setup, lat_teardown),
        cmocka_unit_test_setup_teardown(test_latency_bucket_error, lat_setup, lat_teardown),
        cmocka_unit_test_setup_teardown(test_latency_negative, lat_setup, lat_teardown),
        cmocka_unit_test_setup_teardown(test_latency_huge, lat_setup, lat_teardown),
    };

    return cmocka_run_group_tests_name("latency", tests, NULL, NULL);
}
