/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The test oracle for libshmbus/src/util/glob.h's sb_glob_match(): a plain
 * recursive glob matcher written again from the documented rules (Redis's
 * util.c stringmatchlen), not from the module's code. It is exponential on
 * '*', so callers keep their inputs short. Shared by tests/test_bridge_proto_glob.c
 * and fuzz/fuzz_resp.c (built with -I tests, scripts/fuzz.sh); static, so
 * each program gets its own copy.
 */
#ifndef SHMBUS_TESTS_REF_GLOB_H
#define SHMBUS_TESTS_REF_GLOB_H

/* One element of a pattern other than '*', at @p p (< @p pe): does it match
 * @p c? *next: the element after it. '?' matches any byte; classes follow
 * Redis: '\' escapes, "x-y" is a range in either order unless y is the
 * closing ']', and an unterminated class runs to the end. */
static int ref_glob_one(const char *p, const char *pe, char c, const char **next)
{
    int neg, hit = 0;

    *next = p + 1;
    if (*p == '?')
        return 1;
    if (*p == '\\' && pe - p >= 2) {
        *next = p + 2;
        return p[1] == c;
    }
    if (*p != '[')
        return *p == c;
    p++;
    neg = p < pe && *p == '^';
    p += neg;
    for (; p < pe && *p != ']'; p++) {
        if (*p == '\\' && pe - p >= 2) {
            hit |= *++p == c;
        } else if (pe - p >= 3 && p[1] == '-' && p[2] != ']') {
            char lo = p[0] < p[2] ? p[0] : p[2], hi = p[0] < p[2] ? p[2] : p[0];

            hit |= c >= lo && c <= hi;
            p += 2;
        } else {
            hit |= *p == c;
        }
    }
    *next = p < pe ? p + 1 : pe;
    return hit != neg;
}

/* Does the pattern [@p p, @p pe) match all of [@p s, @p se)? Plain
 * recursion: '*' matches nothing, or one byte and is tried again. */
static int ref_glob(const char *p, const char *pe, const char *s, const char *se)
{
    const char *next;

    if (p == pe)
        return s == se;
    if (*p == '*')
        return ref_glob(p + 1, pe, s, se) || (s < se && ref_glob(p, pe, s + 1, se));
    if (s == se)
        return 0;
    return ref_glob_one(p, pe, *s, &next) && ref_glob(next, pe, s + 1, se);
}

#endif
