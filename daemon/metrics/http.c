/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP request reader of the metrics endpoint (http.h). Strict on the
 * request line, lenient on headers it does not use; it only ever reads
 * inside the @p len bytes it is given.
 */
#include "http.h"

#include <string.h>
#include <strings.h>

/* One line of @p buf from @p at: its end (before CR LF or LF) in *eol and
 * the start of the next in *next. @return 1, or 0 if no LF yet. */
static int http_line(const char *buf, size_t len, size_t at, size_t *eol, size_t *next)
{
    const char *lf = memchr(buf + at, '\n', len - at);
    size_t e;

    /* Not complete yet. */
    if (lf == NULL)
        return 0;
    e = (size_t)(lf - buf);
    *next = e + 1;
    if (e > at && buf[e - 1] == '\r')
        e--;
    *eol = e;
    return 1;
}

/* Is @p c a token character of RFC 9110 (tchar)? */
static int http_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Case-insensitive: do the @p n bytes at @p p equal lower-case @p lit? */
static int http_ieq(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(p, lit, n) == 0;
}

/* The request line [@p p, @p p + @p n) into @p out. @return 0 or -1. */
static int http_request_line(const char *p, size_t n, struct sbm_http_req *out)
{
    size_t m = 0, t, tl;

    while (m < n && http_tchar(p[m]))
        m++;
    /* A method, one space, a target from '/', one space, the version. */
    if (m == 0 || m + 1 >= n || p[m] != ' ' || p[m + 1] != '/')
        return -1;
    t = m + 1;
    tl = 0;
    while (t + tl < n && p[t + tl] > ' ' && p[t + tl] != 0x7f)
        tl++;
    if (t + tl + 1 + 8 != n || p[t + tl] != ' ')
        return -1;
    if (memcmp(p + t + tl + 1, "HTTP/1.0", 8) != 0 && memcmp(p + t + tl + 1, "HTTP/1.1", 8) != 0)
        return -1;
    out->method = m == 3 && memcmp(p, "GET", 3) == 0    ? SBM_HTTP_GET
                  : m == 4 && memcmp(p, "HEAD", 4) == 0 ? SBM_HTTP_HEAD
                                                        : SBM_HTTP_OTHER;
    out->metrics = tl >= 8 && memcmp(p + t, "/metrics", 8) == 0 && (tl == 8 || p[t + 8] == '?');
    return 0;
}

/* Header line [@p p, @p p + @p n) into @p out. @return 0 or -1. */
static int http_header(const char *p, size_t n, struct sbm_http_req *out)
{
    const char *colon = memchr(p, ':', n);
    size_t nl, v;

    /* A token, then ':' at once (no space before it: RFC 9112 5.1). */
    if (colon == NULL || colon == p)
        return -1;
    nl = (size_t)(colon - p);
    for (size_t i = 0; i < nl; i++)
        if (!http_tchar(p[i]))
            return -1;
    for (size_t i = nl + 1; i < n; i++)
        if ((p[i] < ' ' && p[i] != '\t') || p[i] == 0x7f)
            return -1;
    if (!http_ieq(p, nl, "authorization"))
        return 0;
    v = nl + 1;
    while (v < n && (p[v] == ' ' || p[v] == '\t'))
        v++;
    if (n - v < 7 || !http_ieq(p + v, 6, "bearer") || p[v + 6] != ' ')
        return 0; /* another scheme: no token */
    v += 7;
    while (n > v && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    out->token = p + v;
    out->token_len = n - v;
    return 0;
}

int sbm_http_parse(const char *buf, size_t len, struct sbm_http_req *out)
{
    struct sbm_http_req r = {.method = SBM_HTTP_OTHER};
    size_t at = 0, eol, next;
    unsigned headers = 0;

    if (len > SBM_HTTP_REQ_MAX)
        len = SBM_HTTP_REQ_MAX;
    if (!http_line(buf, len, 0, &eol, &next))
        return len >= SBM_HTTP_REQ_MAX ? SBM_HTTP_LARGE : SBM_HTTP_MORE;
    if (http_request_line(buf, eol, &r) < 0)
        return SBM_HTTP_BAD;
    for (at = next;; at = next) {
        if (!http_line(buf, len, at, &eol, &next))
            return len >= SBM_HTTP_REQ_MAX ? SBM_HTTP_LARGE : SBM_HTTP_MORE;
        /* The empty line: the request is complete. */
        if (eol == at)
            break;
        if (++headers > SBM_HTTP_HEADERS_MAX)
            return SBM_HTTP_LARGE;
        if (http_header(buf + at, eol - at, &r) < 0)
            return SBM_HTTP_BAD;
    }
    *out = r;
    return SBM_HTTP_OK;
}
