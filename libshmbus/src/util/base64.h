/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Base64 (RFC 4648, padded, the standard alphabet), for the bridge's JSON
 * lines and `shmbus sub --format json`. Header-only (static inline), as
 * utf8.h: the tool links the shared library, whose internal symbols are
 * hidden, and includes it directly. Pure functions over byte buffers;
 * fuzz/fuzz_json.c drives them through the bridge's parser and encoder.
 */
#ifndef SHMBUS_UTIL_BASE64_H
#define SHMBUS_UTIL_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const char sb_base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Bytes of @p len bytes in base64, padded. */
static inline size_t sb_base64_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

/* Write @p len bytes of @p s in base64 to @p out, which holds
 * sb_base64_len(@p len) bytes (not terminated). @return the bytes written. */
static inline size_t sb_base64_enc(char *out, const unsigned char *s, size_t len)
{
    const char *b64 = sb_base64_alphabet;
    char *o = out;
    size_t i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = '=';
    }
    return (size_t)(o - out);
}

/* The value of base64 digit @p c, or -1. */
static inline int sb_base64_val(char c)
{
    const char *p = c != '\0' ? strchr(sb_base64_alphabet, c) : NULL;

    return p != NULL ? (int)(p - sb_base64_alphabet) : -1;
}

/* Decode strict base64 (padded, canonical, no whitespace) of @p len bytes
 * into @p out, which may be @p s itself (decoding shrinks).
 * @return the decoded length or -1. */
static inline long sb_base64_dec(char *out, const char *s, size_t len)
{
    size_t n = 0;

    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;

        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == len && k >= 2) {
                pad++;
                v[k] = 0;
                continue;
            }
            if (pad > 0 || (v[k] = sb_base64_val(s[i + k])) < 0)
                return -1;
        }
        uint32_t x =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[n++] = (char)(x >> 16);
        if (pad < 2)
            out[n++] = (char)(x >> 8);
        if (pad < 1)
            out[n++] = (char)x;
        /* Padding bits must be zero, as RFC 4648 canonical encoding. */
        if ((pad == 2 && (x & 0xffff) != 0) || (pad == 1 && (x & 0xff) != 0))
            return -1;
    }
    return (long)n;
}

#endif
