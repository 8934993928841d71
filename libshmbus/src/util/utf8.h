/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UTF-8 validation, for the JSON the bridge writes and `shmbus stat
 * --json` prints. Header-only (static inline): the tool links the shared
 * library, whose internal symbols are hidden, and includes it directly.
 */
#ifndef SHMBUS_UTIL_UTF8_H
#define SHMBUS_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at @p s (< @p end), or 0: a
 * continuation or invalid lead byte, a sequence cut short by @p end or by
 * a byte that does not continue it (a terminating NUL included), an
 * overlong form, a surrogate, or a code point above U+10FFFF. Reads the
 * bytes of the sequence in order and none after the first bad one. */
static inline size_t sb_utf8_seq(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0];
    size_t n;
    uint32_t cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Is @p s, @p len bytes, valid UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF)? @return 1 or 0. */
static inline int sb_utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s, *end = p + len;

    while (p < end) {
        size_t n = sb_utf8_seq(p, end);

        if (n == 0)
            return 0;
        p += n;
    }
    return 1;
}

#endif
