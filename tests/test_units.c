/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The option values shmbusd and the shmbus command share (util/units.h):
 * counts, sizes, ages, retentions and sync policies, each good form read
 * right and every kind of bad input refused without touching the output.
 */
#include "testutil.h"

#include <string.h>

#include "util/units.h"

#define SEC 1000000000ull

static void test_units_u64_bounds(void **state)
{
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "1 ",
                                      "0x10",
                                      "1e3",
                                      "12a",
                                      "18446744073709551616",
                                      "99999999999999999999999"};
    uint64_t v = 7;
    (void)state;

    assert_int_equal(sb_units_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(sb_units_u64("0", 0, 5, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(sb_units_u64("0", 1, 5, &v), -1);
    assert_int_equal(sb_units_u64("6", 1, 5, &v), -1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        if (sb_units_u64(bad[i], 0, UINT64_MAX, &v) != -1 || v != 7)
            fail_msg("'%s' taken as a number", bad[i]);
    }
}

static void test_units_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {{"1", 1},
                {"64K", 64ull << 10},
                {"64k", 64ull << 10},
                {"10M", 10ull << 20},
                {"10m", 10ull << 20},
                {"3G", 3ull << 30},
                {"3g", 3ull << 30},
                {"17179869183G", 17179869183ull << 30},
                {"18446744073709551615", UINT64_MAX}};
    static const char *const bad[] = {"",
                                      "0",
                                      "0K",
                                      "K",
                                      "-1K",
                                      "+1K",
                                      " 1K",
                                      "1K ",
                                      "1KB",
                                      "1T",
                                      "1t",
                                      "1.5M",
                                      "1 K",
                                      "1\tK",
                                      "1@",
                                      "17179869184G",
                                      "18446744073709551616",
                                      "1`",
                                      "1KK",
                                      "10d",
                                      "1s"};
    uint64_t v;
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = 0;
        if (sb_units_size(good[i].s, &v) != 0 || v != good[i].v)
            fail_msg("'%s' not read as %llu", good[i].s, (unsigned long long)good[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        if (sb_units_size(bad[i], &v) != -1 || v != 7)
            fail_msg("'%s' taken as a size", bad[i]);
    }
}

static void test_units_age(void **state)
{
    static const char *const bad[] = {
        "",    "s",   "0s",  "1",       "1S",           "1M",
        "1H",  "1D",  "1w",  "-1s",     "+1s",          "1.5h",
        " 1h", "1h ", "1ms", "213504d", "18446744074s", "99999999999999999999999d"};
    uint64_t ns;
    (void)state;

    assert_int_equal(sb_units_age("90s", &ns), 0);
    assert_true(ns == 90 * SEC);
    assert_int_equal(sb_units_age("10m", &ns), 0);
    assert_true(ns == 600 * SEC);
    assert_int_equal(sb_units_age("2h", &ns), 0);
    assert_true(ns == 7200 * SEC);
    /* The longest age whose nanoseconds fit 64 bits. */
    assert_int_equal(sb_units_age("213503d", &ns), 0);
    assert_true(ns == 213503ull * 86400 * SEC);
    assert_int_equal(sb_units_age("18446744073s", &ns), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ns = 7;
        if (sb_units_age(bad[i], &ns) != -1 || ns != 7)
            fail_msg("'%s' taken as an age", bad[i]);
    }
}

static void test_units_retain(void **state)
{
    static const char *const bad[] = {"",
                                      ",",
                                      "1G,",
                                      ",1h",
                                      "1h,2h",
                                      "1G,2G",
                                      "1,2,3",
                                      "1G,1h,",
                                      "0s",
                                      "0",
                                      "h",
                                      "1G;1h",
                                      "1h 1G",
                                      "1G, 1h",
                                      "99999999999d",
                                      "123456789012345678901234567890123,1h"};
    uint64_t bytes, ns;
    (void)state;

    assert_int_equal(sb_units_retain("10M", &bytes, &ns), 0);
    assert_true(bytes == 10ull << 20 && ns == 0);
    assert_int_equal(sb_units_retain("10m", &bytes, &ns), 0);
    assert_true(bytes == 0 && ns == 600 * SEC);
    assert_int_equal(sb_units_retain("2d,10M", &bytes, &ns), 0);
    assert_true(bytes == 10ull << 20 && ns == 2 * 86400 * SEC);
    assert_int_equal(sb_units_retain("1g,1s", &bytes, &ns), 0);
    assert_true(bytes == 1ull << 30 && ns == SEC);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bytes = ns = 7;
        if (sb_units_retain(bad[i], &bytes, &ns) != -1)
            fail_msg("'%s' taken as a retention", bad[i]);
        /* A refused retention leaves no half of it behind. */
        assert_true(bytes == 0 && ns == 0);
    }
}

static void test_units_sync(void **state)
{
    static const char *const bad[] = {"",       "0",  "3600001", "fast", "None", "BATCH", "none ",
                                      " batch", "-5", "+5",      "1.5",  "10ms", "1K"};
    uint32_t mode, ms;
    (void)state;

    assert_int_equal(sb_units_sync("none", &mode, &ms), 0);
    assert_true(mode == SHMBUS_JOURNAL_SYNC_NONE && ms == 0);
    assert_int_equal(sb_units_sync("batch", &mode, &ms), 0);
    assert_true(mode == SHMBUS_JOURNAL_SYNC_BATCH && ms == 0);
    assert_int_equal(sb_units_sync("1", &mode, &ms), 0);
    assert_true(mode == SHMBUS_JOURNAL_SYNC_INTERVAL && ms == 1);
    assert_int_equal(sb_units_sync("3600000", &mode, &ms), 0);
    assert_true(mode == SHMBUS_JOURNAL_SYNC_INTERVAL && ms == SB_UNITS_SYNC_MAX_MS);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mode = ms = 7;
        if (sb_units_sync(bad[i], &mode, &ms) != -1 || mode != 7 || ms != 7)
            fail_msg("'%s' taken as a sync policy", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_u64_bounds), cmocka_unit_test(test_units_size),
        cmocka_unit_test(test_units_age),        cmocka_unit_test(test_units_retain),
        cmocka_unit_test(test_units_sync),
    };
    return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
