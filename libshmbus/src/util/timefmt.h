/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wall-clock times as users write them: parsing RFC 3339 timestamps
 * ("2026-12-07T15:04:05.123Z", "2026-12-07T17:04:05+02:00") or integer
 * nanoseconds since the epoch into CLOCK_REALTIME nanoseconds, and
 * formatting nanoseconds as RFC 3339 in UTC with all nine fraction digits.
 * The tool's --from-time options (`shmbus replay`, `shmbus sub`) and its
 * journal listing use it. Pure functions on bounded input, no shared
 * state. Header-only (static inline): the tool links the shared library,
 * whose internal symbols are hidden.
 *
 * The range is what a uint64_t of nanoseconds holds: 1970-01-01T00:00:00Z
 * to 2554-07-21T23:34:33.709551615Z. A leap second (":60") has no POSIX
 * time and is refused, as are fractions of more than nine digits (finer
 * than the clock) and times without a zone; lower-case 'z' and 't' are
 * accepted (RFC 3339 section 5.6).
 */
#ifndef SHMBUS_UTIL_TIMEFMT_H
#define SHMBUS_UTIL_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for a formatted time: "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" and its NUL. */
#define SB_TIME_STR_LEN 31
/* Longest string sb_time_parse() looks at: any valid input is shorter. */
#define SB_TIME_PARSE_MAX 64

#define SB_TIME_NS_PER_S 1000000000ull

/* The parser's cursor: the text and how far it got. */
struct sb_time_cur {
    const char *s;
    size_t i;
};

/* Read exactly @p n digits into *out. @return 0; -1 when they are not. */
static inline int sb_time_digits(struct sb_time_cur *c, unsigned n, uint64_t *out)
{
    uint64_t v = 0;

    for (unsigned k = 0; k < n; k++) {
        char ch = c->s[c->i];

        if (ch < '0' || ch > '9')
            return -1; /* short, or not a digit */
        v = v * 10 + (uint64_t)(ch - '0');
        c->i++;
    }
    *out = v;
    return 0;
}

/* Consume @p ch (or, when @p alt is non-zero, @p alt). @return 0; -1. */
static inline int sb_time_expect(struct sb_time_cur *c, char ch, char alt)
{
    if (c->s[c->i] != ch && (alt == 0 || c->s[c->i] != alt))
        return -1; /* another character, or the end */
    c->i++;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), for years from 1 on (negative before the epoch). */
static inline int64_t sb_time_days(uint64_t y, uint64_t m, uint64_t d)
{
    uint64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)(era * 146097 + doe) - 719468;
}

/* Days in month @p m of year @p y. */
static inline unsigned sb_time_mdays(uint64_t y, uint64_t m)
{
    static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return mdays[m - 1] + (m == 2 && leap);
}

/* The fraction after a '.', 1..9 digits, as nanoseconds. @return 0; -1. */
static inline int sb_time_frac(struct sb_time_cur *c, uint64_t *ns)
{
    uint64_t scale = SB_TIME_NS_PER_S / 10;
    unsigned n = 0;

    *ns = 0;
    while (c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        /* Finer than a nanosecond: refused rather than silently cut. */
        if (++n > 9)
            return -1;
        *ns += (uint64_t)(c->s[c->i] - '0') * scale;
        scale /= 10;
        c->i++;
    }
    return n == 0 ? -1 : 0; /* a '.' needs a digit */
}

/* The zone: 'Z' (0) or +hh:mm / -hh:mm, as seconds east of UTC. @return 0; -1. */
static inline int sb_time_zone(struct sb_time_cur *c, int64_t *east_s)
{
    uint64_t hh, mm;
    char sign = c->s[c->i];

    if (sign == 'Z' || sign == 'z') {
        c->i++;
        *east_s = 0;
        return 0;
    }
    /* RFC 3339 requires a zone: a local time is ambiguous. */
    if (sign != '+' && sign != '-')
        return -1;
    c->i++;
    if (sb_time_digits(c, 2, &hh) < 0 || sb_time_expect(c, ':', 0) < 0 ||
        sb_time_digits(c, 2, &mm) < 0 || hh > 23 || mm > 59)
        return -1; /* malformed or impossible offset */
    *east_s = (int64_t)(hh * 3600 + mm * 60) * (sign == '-' ? -1 : 1);
    return 0;
}

/* An RFC 3339 date-time. @return 0 with *out_ns; -1. */
static inline int sb_time_parse_rfc3339(const char *s, uint64_t *out_ns)
{
    struct sb_time_cur c = {.s = s, .i = 0};
    uint64_t y, mo, d, h, mi, sec, frac = 0;
    int64_t east, total_s;

    if (sb_time_digits(&c, 4, &y) < 0 || sb_time_expect(&c, '-', 0) < 0 ||
        sb_time_digits(&c, 2, &mo) < 0 || sb_time_expect(&c, '-', 0) < 0 ||
        sb_time_digits(&c, 2, &d) < 0 || sb_time_expect(&c, 'T', 't') < 0 ||
        sb_time_digits(&c, 2, &h) < 0 || sb_time_expect(&c, ':', 0) < 0 ||
        sb_time_digits(&c, 2, &mi) < 0 || sb_time_expect(&c, ':', 0) < 0 ||
        sb_time_digits(&c, 2, &sec) < 0)
        return -1; /* not the shape of a date-time */
    /* Fields out of range; a leap second has no POSIX time. */
    if (y < 1969 || mo < 1 || mo > 12 || d < 1 || d > sb_time_mdays(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return -1;
    if (c.s[c.i] == '.' && (c.i++, sb_time_frac(&c, &frac) < 0))
        return -1; /* a bad fraction */
    if (sb_time_zone(&c, &east) < 0 || c.s[c.i] != '\0')
        return -1; /* no zone, a bad one, or trailing text */
    /* Years up to 9999 keep this far inside int64_t. 1969-12-31 passes
     * when its zone brings it into 1970. */
    total_s = sb_time_days(y, mo, d) * 86400 + (int64_t)(h * 3600 + mi * 60 + sec) - east;
    if (total_s < 0)
        return -1; /* before the epoch */
    /* Past what uint64_t nanoseconds hold (2554). */
    if ((uint64_t)total_s > (UINT64_MAX - frac) / SB_TIME_NS_PER_S)
        return -1;
    *out_ns = (uint64_t)total_s * SB_TIME_NS_PER_S + frac;
    return 0;
}

/*
 * Parse a time: integer nanoseconds since the epoch (digits only, as a
 * uint64_t), or an RFC 3339 date-time with a zone ('Z' or +hh:mm), a
 * fraction of up to nine digits, from the epoch to 2554-07-21.
 * @return 0 with *out_ns set (CLOCK_REALTIME ns); -1 for anything else
 *         (NULL, empty, too long, malformed, out of range).
 */
static inline int sb_time_parse(const char *s, uint64_t *out_ns)
{
    uint64_t v = 0;
    size_t n = 0;

    if (s == NULL || s[0] == '\0')
        return -1; /* nothing to parse */
    while (n < SB_TIME_PARSE_MAX && s[n] != '\0')
        n++;
    if (n == SB_TIME_PARSE_MAX)
        return -1; /* longer than any valid time */
    for (n = 0; s[n] >= '0' && s[n] <= '9'; n++) {
        /* An integer that overflows uint64_t is no time. */
        if (v > (UINT64_MAX - (uint64_t)(s[n] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[n] - '0');
    }
    if (s[n] == '\0') {
        *out_ns = v;
        return 0;
    }
    return sb_time_parse_rfc3339(s, out_ns);
}

/* Write @p v as @p n decimal digits, zero-padded, at @p p. @return p + n. */
static inline char *sb_time_put(char *p, uint64_t v, unsigned n)
{
    for (unsigned k = n; k > 0; k--) {
        p[k - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

/*
 * Format @p ns (CLOCK_REALTIME nanoseconds) as RFC 3339 in UTC with nine
 * fraction digits, "2026-12-07T15:04:05.123456789Z", into @p buf
 * (SB_TIME_STR_LEN bytes). @return @p buf.
 */
static inline char *sb_time_format(uint64_t ns, char buf[SB_TIME_STR_LEN])
{
    uint64_t s = ns / SB_TIME_NS_PER_S, z = s / 86400 + 719468, sod = s % 86400;
    uint64_t era = z / 146097, doe = z - era * 146097;
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    uint64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    uint64_t y = yoe + era * 400 + (m <= 2);
    char *p = buf;

    /* H. Hinnant's civil_from_days; the year is at most 2554: four digits. */
    p = sb_time_put(p, y, 4);
    *p++ = '-';
    p = sb_time_put(p, m, 2);
    *p++ = '-';
    p = sb_time_put(p, d, 2);
    *p++ = 'T';
    p = sb_time_put(p, sod / 3600, 2);
    *p++ = ':';
    p = sb_time_put(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = sb_time_put(p, sod % 60, 2);
    *p++ = '.';
    p = sb_time_put(p, ns % SB_TIME_NS_PER_S, 9);
    *p++ = 'Z';
    *p = '\0';
    return buf;
}

#endif /* SHMBUS_UTIL_TIMEFMT_H */
