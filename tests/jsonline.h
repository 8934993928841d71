/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON lines and base64 as the TCP bridge's clients see them (tests only):
 * a flat object parser (strings decoded, other values as their text) and
 * base64 both ways. Shared by the bridge tests (bridgetest.h) and the
 * chaos test's remote subscribers. Include after testutil.h (cmocka).
 */
#ifndef SHMBUS_TESTS_JSONLINE_H
#define SHMBUS_TESTS_JSONLINE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- base64 */

static const char b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static inline size_t b64_encode(char *out, const void *data, size_t len)
{
    const unsigned char *s = data;
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;

        if (i + 1 < len)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < len)
            v |= s[i + 2];
        out[o++] = b64c[v >> 18];
        out[o++] = b64c[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64c[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64c[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

/* @return the decoded length, or -1. */
static inline long b64_decode(unsigned char *out, const char *s, size_t len)
{
    long n = 0;

    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        int pad = 0;

        for (int k = 0; k < 4; k++) {
            const char *p = s[i + k] == '=' ? NULL : strchr(b64c, s[i + k]);

            if (s[i + k] == '=' && i + 4 == len && k >= 2)
                pad++;
            else if (p == NULL || s[i + k] == '\0' || pad > 0)
                return -1;
            v = v << 6 | (p != NULL ? (uint32_t)(p - b64c) : 0u);
        }
        out[n++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[n++] = (unsigned char)(v >> 8);
        if (pad < 1)
            out[n++] = (unsigned char)v;
    }
    return n;
}

/* ----------------------------------------------------------------- JSON */

#define JF_MAX 12

/* A flat JSON object: string values decoded, other values as their text. */
struct jobj {
    int n;
    struct {
        char key[32];
        char *val;
        size_t len;
        int str;
    } f[JF_MAX];
    char *mem;
};

static inline int hexval(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

static inline char *utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 63));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | ((cp >> 6) & 63));
        *o++ = (char)(0x80 | (cp & 63));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | ((cp >> 12) & 63));
        *o++ = (char)(0x80 | ((cp >> 6) & 63));
        *o++ = (char)(0x80 | (cp & 63));
    }
    return o;
}

/* Decode the JSON string at *pp (after its quote) into @p o. @return the
 * end of the output, or NULL if malformed. */
static inline char *jstr_decode(const char **pp, char *o)
{
    const char *p = *pp;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

    while (*p != '"') {
        uint32_t cp, lo;
        const char *e;

        if (*p == '\0' || (unsigned char)*p < 0x20)
            return NULL;
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        if (p[1] != 'u') {
            e = p[1] != '\0' ? strchr(from, p[1]) : NULL;
            if (e == NULL)
                return NULL;
            *o++ = to[e - from];
            p += 2;
            continue;
        }
        if (hexval(p + 2, &cp) < 0)
            return NULL;
        p += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (p[0] != '\\' || p[1] != 'u' || hexval(p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                return NULL;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        }
        o = utf8_put(o, cp);
    }
    *pp = p + 1;
    return o;
}

/* Parse a flat object (values: strings, numbers, true, false, null).
 * @return 0, or -1 if it is not one. Free o->mem. */
static inline int jobj_parse(const char *s, struct jobj *o)
{
    const char *p = s;
    char *w;

    memset(o, 0, sizeof(*o));
    o->mem = w = malloc(strlen(s) + 1);
    assert_non_null(w);
    if (*p++ != '{')
        return -1;
    while (*p != '}') {
        char *k = w, *ke;

        if (o->n == JF_MAX || *p++ != '"' || (ke = jstr_decode(&p, w)) == NULL ||
            ke - k >= (long)sizeof(o->f[0].key) || *p++ != ':')
            return -1;
        memcpy(o->f[o->n].key, k, (size_t)(ke - k));
        o->f[o->n].key[ke - k] = '\0';
        o->f[o->n].val = w;
        if (*p == '"') {
            p++;
            o->f[o->n].str = 1;
            if ((ke = jstr_decode(&p, w)) == NULL)
                return -1;
        } else {
            for (ke = w; *p != ',' && *p != '}' && *p != '\0';)
                *ke++ = *p++;
        }
        o->f[o->n].len = (size_t)(ke - w);
        *ke = '\0';
        w = ke + 1;
        o->n++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return -1;
    }
    return p[1] == '\0' ? 0 : -1;
}

/* The value of @p key, or NULL. */
static inline const char *jobj_get(const struct jobj *o, const char *key, size_t *len)
{
    for (int i = 0; i < o->n; i++) {
        if (strcmp(o->f[i].key, key) == 0) {
            if (len != NULL)
                *len = o->f[i].len;
            return o->f[i].val;
        }
    }
    return NULL;
}

#endif
