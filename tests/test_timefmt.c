/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Times as users write them (util/timefmt.h): RFC 3339 with 'Z' and with
 * offsets, fractions of 1..9 digits, integer nanoseconds, the edges of the
 * range (the epoch, the last uint64_t nanosecond), leap days; every kind
 * of bad input refused; and formatting, checked against gmtime_r() and
 * round-tripped through the parser.
 */
#include "testutil.h"

#include <string.h>
#include <time.h>

#include "util/timefmt.h"

/* 2026-12-07T15:04:05Z in seconds since the epoch. */
#define T0 1796655845ull
#define NS SB_TIME_NS_PER_S

static uint64_t parse_ok(const char *s)
{
    uint64_t ns = 12345;

    if (sb_time_parse(s, &ns) != 0)
        fail_msg("'%s' refused", s);
    return ns;
}

static void test_timefmt_parses_rfc3339(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2026-12-07T15:04:05Z"), T0 * NS);
    assert_int_equal(parse_ok("2026-12-07t15:04:05z"), T0 * NS);
    assert_int_equal(parse_ok("2026-12-07T15:04:05.123Z"), T0 * NS + 123000000);
    assert_int_equal(parse_ok("2026-12-07T15:04:05.1Z"), T0 * NS + 100000000);
    assert_int_equal(parse_ok("2026-12-07T15:04:05.000000001Z"), T0 * NS + 1);
    assert_int_equal(parse_ok("2026-12-07T15:04:05.987654321Z"), T0 * NS + 987654321);
    /* Offsets: the same instant written in other zones. */
    assert_int_equal(parse_ok("2026-12-07T17:04:05+02:00"), T0 * NS);
    assert_int_equal(parse_ok("2026-12-07T10:34:05.5-04:30"), T0 * NS + 500000000);
    assert_int_equal(parse_ok("2026-12-08T00:04:05+09:00"), T0 * NS);
    assert_int_equal(parse_ok("2026-12-07T15:04:05+00:00"), T0 * NS);
    assert_int_equal(parse_ok("2026-12-07T15:04:05-00:00"), T0 * NS);
}

static void test_timefmt_parses_edges(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("1969-12-31T23:00:00-01:00"), 0);
    assert_int_equal(parse_ok("1970-01-01T01:00:00.5+01:00"), 500000000);
    assert_int_equal(parse_ok("2000-02-29T00:00:00Z"), 951782400ull * NS);
    assert_int_equal(parse_ok("2024-02-29T12:00:00Z"), 1709208000ull * NS);
    assert_int_equal(parse_ok("2554-07-21T23:34:33.709551615Z"), UINT64_MAX);
    /* Integers: nanoseconds as they are, the whole uint64_t range. */
    assert_int_equal(parse_ok("0"), 0);
    assert_int_equal(parse_ok("1796655845123456789"), 1796655845123456789ull);
    assert_int_equal(parse_ok("18446744073709551615"), UINT64_MAX);
    assert_int_equal(parse_ok("000000000000000000000000000042"), 42);
}

static void test_timefmt_refuses_bad(void **state)
{
    static const char *const bad[] = {
        "",
        " 2026-12-07T15:04:05Z",
        "2026-12-07T15:04:05Z ",
        "2026-12-07T15:04:05",             /* no zone: a local time is ambiguous */
        "2026-12-07 15:04:05Z",            /* a space for the T */
        "2026-12-07",                      /* a date only */
        "2026-12-7T15:04:05Z",             /* one digit */
        "26-12-07T15:04:05Z",              /* two-digit year */
        "2026-13-07T15:04:05Z",            /* month 13 */
        "2026-00-07T15:04:05Z",            /* month 0 */
        "2026-12-00T15:04:05Z",            /* day 0 */
        "2026-11-31T15:04:05Z",            /* November 31 */
        "2026-02-29T15:04:05Z",            /* not a leap year */
        "1900-02-29T00:00:00Z",            /* a century, not a leap year */
        "2026-12-07T24:00:00Z",            /* hour 24 */
        "2026-12-07T15:60:05Z",            /* minute 60 */
        "2016-12-31T23:59:60Z",            /* a leap second */
        "2026-12-07T15:04:05.Z",           /* a point without digits */
        "2026-12-07T15:04:05.1234567891Z", /* ten digits */
        "2026-12-07T15:04:05+2:00",        /* one-digit offset */
        "2026-12-07T15:04:05+02",          /* offset without minutes */
        "2026-12-07T15:04:05+0200",        /* offset without a colon */
        "2026-12-07T15:04:05+24:00",       /* offset hour 24 */
        "2026-12-07T15:04:05+02:60",       /* offset minute 60 */
        "2026-12-07T15:04:05ZZ",           /* trailing text */
        "1969-12-31T23:59:59Z",            /* before the epoch */
        "1970-01-01T00:30:00+01:00",       /* before the epoch by its zone */
        "0001-01-01T00:00:00Z",
        "2554-07-21T23:34:33.709551616Z", /* one ns past uint64_t */
        "9999-12-31T23:59:59Z",
        "18446744073709551616", /* an integer past uint64_t */
        "99999999999999999999999",
        "-1",
        "+5",
        "12s",
        "0x10",
        "1.5",
        "now",
        "2026-12-07T15:04:05.000000000000000000000000000000000000000000000000000000001Z",
    };
    uint64_t ns = 777;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sb_time_parse(bad[i], &ns) != -1)
            fail_msg("'%s' accepted as %llu", bad[i], (unsigned long long)ns);
        assert_int_equal(ns, 777);
    }
    assert_int_equal(sb_time_parse(NULL, &ns), -1);
}

/* A string that stops mid-way is refused at every length: no read past its end. */
static void test_timefmt_refuses_every_prefix(void **state)
{
    const char *full = "2026-12-07T15:04:05.123456789+02:00";
    char buf[64];
    uint64_t ns;

    (void)state;
    for (size_t n = 1; n < strlen(full); n++) {
        memcpy(buf, full, n);
        buf[n] = '\0';
        /* The first four digits alone are a (tiny) integer time. */
        if (n <= 4)
            continue;
        if (sb_time_parse(buf, &ns) != -1)
            fail_msg("prefix '%s' accepted", buf);
    }
}

static void test_timefmt_formats(void **state)
{
    char buf[SB_TIME_STR_LEN];

    (void)state;
    assert_string_equal(sb_time_format(0, buf), "1970-01-01T00:00:00.000000000Z");
    assert_string_equal(sb_time_format(T0 * NS + 123000000, buf), "2026-12-07T15:04:05.123000000Z");
    assert_string_equal(sb_time_format(951782400ull * NS + 1, buf),
                        "2000-02-29T00:00:00.000000001Z");
    assert_string_equal(sb_time_format(UINT64_MAX, buf), "2554-07-21T23:34:33.709551615Z");
    assert_int_equal(strlen(buf) + 1, SB_TIME_STR_LEN);
}

/* Formatting agrees with gmtime_r(), and parsing gives back the same ns,
 * for times spread over the whole range. */
static void test_timefmt_round_trips(void **state)
{
    char buf[SB_TIME_STR_LEN], want[64];
    uint64_t ns = 0x9e3779b97f4a7c15ull, back;

    (void)state;
    for (int i = 0; i < 20000; i++) {
        time_t s;
        struct tm tm;

        ns = ns * 6364136223846793005ull + 1442695040888963407ull;
        s = (time_t)(ns / NS);
        assert_non_null(gmtime_r(&s, &tm));
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned long long)(ns % NS));
        assert_string_equal(sb_time_format(ns, buf), want);
        assert_int_equal(sb_time_parse(buf, &back), 0);
        assert_int_equal(back, ns);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timefmt_parses_rfc3339),
        cmocka_unit_test(test_timefmt_parses_edges),
        cmocka_unit_test(test_timefmt_refuses_bad),
        cmocka_unit_test(test_timefmt_refuses_every_prefix),
        cmocka_unit_test(test_timefmt_formats),
        cmocka_unit_test(test_timefmt_round_trips),
    };

    return cmocka_run_group_tests_name("timefmt", tests, NULL, NULL);
}
