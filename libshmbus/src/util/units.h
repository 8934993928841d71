/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The option values shmbusd and the shmbus command both parse, parsed
 * once: counts, sizes with a K, M or G suffix, ages with s, m, h or d, a
 * journal's retention (SIZE|AGE|SIZE,AGE) and sync policy (none|batch|MS).
 * Header-only, so that daemon/ and tools/ share it without linking
 * libshmbus's internals (docs/design.md, Source map). Each parser takes
 * the whole string: no sign, no spaces, nothing after the value; on an
 * error it writes nothing and says nothing, the caller naming the option
 * (the SB_UNITS_*_WANTS texts word what each one wants).
 */
#ifndef SHMBUS_UTIL_UNITS_H
#define SHMBUS_UTIL_UNITS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shmbus/journal.h"

/* shmbus_journal_opts' bounds: segment_size, sync_interval_ms. */
#define SB_UNITS_SEGMENT_MIN (64ull << 10)
#define SB_UNITS_SEGMENT_MAX (1ull << 40)
#define SB_UNITS_SYNC_MAX_MS 3600000u

#define SB_UNITS_NS_PER_S 1000000000ull

/* What each parser wants, for the callers' error messages. */
#define SB_UNITS_RETAIN_WANTS "SIZE (K, M, G), AGE (s, m, h, d) or SIZE,AGE"
#define SB_UNITS_SYNC_WANTS   "'none', 'batch' or milliseconds from 1 to 3600000"

/* The first @p n bytes of @p s: 1 to 20 digits and nothing else, at most
 * UINT64_MAX. @return 0 with *out; -1. */
static inline int sb_units_digits(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return -1; /* no digits */
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';

        /* Not a digit, or one more would overflow. */
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A decimal from @p min to @p max. @return 0 with *out; -1. */
static inline int sb_units_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;

    if (sb_units_digits(s, strlen(s), &v) < 0 || v < min || v > max)
        return -1; /* not a number, or out of range */
    *out = v;
    return 0;
}

/* A positive size: digits and an optional K, M or G (either case; 2^10,
 * 2^20, 2^30) that fits 64 bits. @return 0 with *out; -1. */
static inline int sb_units_size(const char *s, uint64_t *out)
{
    static const char units[] = "KMG";
    size_t n = strspn(s, "0123456789");
    unsigned shift = 0;
    uint64_t v;

    if (s[n] != '\0') {
        const char *u = s[n + 1] == '\0' ? strchr(units, s[n] & ~0x20) : NULL;

        /* Not one suffix letter ending the string (strchr finds the NUL
         * of "\0" & ~0x20 too: the end is no unit). */
        if (u == NULL || *u == '\0')
            return -1;
        shift = 10u * (unsigned)(u - units + 1);
    }
    if (sb_units_digits(s, n, &v) < 0 || v == 0 || v > (UINT64_MAX >> shift))
        return -1; /* no digits, zero, or too large once scaled */
    *out = v << shift;
    return 0;
}

/* An age: digits and s, m, h or d (lower case: 10m is ten minutes, 10M
 * a size), positive, whose nanoseconds fit 64 bits. @return 0 with
 * *out_ns; -1. */
static inline int sb_units_age(const char *s, uint64_t *out_ns)
{
    static const char units[] = "smhd";
    static const uint64_t unit_s[] = {1, 60, 3600, 86400};
    size_t n = strlen(s);
    const char *u = n > 0 ? strchr(units, s[n - 1]) : NULL;
    uint64_t v;

    /* No unit of time at the end. */
    if (u == NULL || *u == '\0')
        return -1;
    if (sb_units_digits(s, n - 1, &v) < 0 || v == 0 ||
        v > UINT64_MAX / SB_UNITS_NS_PER_S / unit_s[u - units])
        return -1; /* no digits, zero, or too long for 64-bit nanoseconds */
    *out_ns = v * unit_s[u - units] * SB_UNITS_NS_PER_S;
    return 0;
}

/* One part of a retention: an age if it ends in s, m, h or d, else a
 * size; each kind at most once (*bytes or *ns still 0). @return 0; -1. */
static inline int sb_units_retain_part(const char *s, uint64_t *bytes, uint64_t *ns)
{
    size_t n = strlen(s);

    if (n > 0 && strchr("smhd", s[n - 1]) != NULL)
        return *ns != 0 ? -1 : sb_units_age(s, ns);
    return *bytes != 0 ? -1 : sb_units_size(s, bytes);
}

/* A retention, SIZE|AGE|SIZE,AGE (either order): *bytes and *ns, 0 for
 * the one not given. @return 0; -1 (both then 0). */
static inline int sb_units_retain(const char *s, uint64_t *bytes, uint64_t *ns)
{
    const char *comma = strchr(s, ',');
    char first[32];

    *bytes = 0;
    *ns = 0;
    if (comma == NULL)
        return sb_units_retain_part(s, bytes, ns);
    /* A first part longer than any valid one, or a second comma. */
    if ((size_t)(comma - s) >= sizeof(first) || strchr(comma + 1, ',') != NULL)
        return -1;
    memcpy(first, s, (size_t)(comma - s));
    first[comma - s] = '\0';
    if (sb_units_retain_part(first, bytes, ns) == 0 &&
        sb_units_retain_part(comma + 1, bytes, ns) == 0)
        return 0;
    *bytes = 0;
    *ns = 0;
    return -1;
}

/* A sync policy, none|batch|MS: *mode (enum shmbus_journal_sync) and
 * *ms (0 but for MS, 1 to SB_UNITS_SYNC_MAX_MS). @return 0; -1. */
static inline int sb_units_sync(const char *s, uint32_t *mode, uint32_t *ms)
{
    uint64_t v;

    if (strcmp(s, "none") == 0 || strcmp(s, "batch") == 0) {
        *mode = s[0] == 'n' ? SHMBUS_JOURNAL_SYNC_NONE : SHMBUS_JOURNAL_SYNC_BATCH;
        *ms = 0;
        return 0;
    }
    if (sb_units_u64(s, 1, SB_UNITS_SYNC_MAX_MS, &v) < 0)
        return -1; /* neither a word nor milliseconds in range */
    *mode = SHMBUS_JOURNAL_SYNC_INTERVAL;
    *ms = (uint32_t)v;
    return 0;
}

#endif
