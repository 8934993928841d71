/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redis's glob matcher (* ? [abc] [^a-z] and \ escapes): the TCP
 * bridge's pattern subscriptions, federation's and recording's topic
 * patterns, and `shmbus stat PATTERN`, `top PATTERN` and `sub --pattern`.
 * A pure function over byte buffers, which libFuzzer drives directly
 * (fuzz/fuzz_resp.c); header-only so that the shmbus command, which links
 * only the public library, shares it.
 * Every read is bounded by the lengths the caller gives.
 */
#ifndef SB_UTIL_GLOB_H
#define SB_UTIL_GLOB_H

#include <stddef.h>
#include <stdint.h>

/* Does class [..] at @p p (after '[') match @p c? *next: after ']'.
 * An unterminated class runs to the end of the pattern, as in Redis. */
static inline int sb_glob_class(const char *p, const char *end, char c, const char **next)
{
    int neg = 0, hit = 0;

    if (p < end && *p == '^') {
        neg = 1;
        p++;
    }
    while (p < end && *p != ']') {
        if (*p == '\\' && p + 1 < end) {
            p++;
            hit |= *p == c;
            p++;
        } else if (p + 2 < end && p[1] == '-' && p[2] != ']') {
            char a = p[0], b = p[2];

            if (a > b) {
                char t = a;
                a = b;
                b = t;
            }
            hit |= c >= a && c <= b;
            p += 3;
        } else {
            hit |= *p == c;
            p++;
        }
    }
    *next = p < end ? p + 1 : p;
    return neg ? !hit : hit;
}

/* sb_glob_match(), adding to *@p steps the work it did: one a character
 * compared, one a byte of a [class] scanned. A star restarts at most
 * @p len times from its place, so a match costs at most
 * (@p patl + 1) * (@p len + 1) steps. @return 1 on a match. */
static inline int sb_glob_steps(const char *pat, size_t patl, const char *s, size_t len,
                                uint64_t *steps)
{
    const char *p = pat, *pe = pat + patl, *q = s, *qe = s + len;
    const char *star_p = NULL, *star_q = NULL;
    uint64_t n = 0;

    while (q < qe) {
        n++;
        if (p < pe && *p == '*') {
            while (p < pe && *p == '*')
                p++;
            if (p == pe) {
                *steps += n;
                return 1;
            }
            star_p = p;
            star_q = q;
            continue;
        }
        if (p < pe) {
            const char *next = p + 1;
            int ok;

            if (*p == '?') {
                ok = 1;
            } else if (*p == '[') {
                ok = sb_glob_class(p + 1, pe, *q, &next);
                n += (uint64_t)(next - p);
            } else if (*p == '\\' && p + 1 < pe) {
                ok = p[1] == *q;
                next = p + 2;
            } else {
                ok = *p == *q;
            }
            if (ok) {
                p = next;
                q++;
                continue;
            }
        }
        if (star_p == NULL) {
            *steps += n;
            return 0;
        }
        p = star_p;
        q = ++star_q;
    }
    *steps += n + (uint64_t)(pe - p);
    while (p < pe && *p == '*')
        p++;
    return p == pe;
}

/* Does @p s (@p len bytes) match pattern @p pat (@p patl bytes)?
 * @return 1 on a match. */
static inline int sb_glob_match(const char *pat, size_t patl, const char *s, size_t len)
{
    uint64_t steps = 0;

    return sb_glob_steps(pat, patl, s, len, &steps);
}

#endif
