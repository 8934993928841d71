/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The RESP2 (Redis) side of the bridge's protocols (resp.h): the command
 * parser, the line scan both protocols' framing uses, and the encoders of
 * replies and pushes. Every read is bounded by the length the caller
 * gives; nothing here allocates.
 */
#include "resp.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ RESP2 */

/* Parse a decimal integer line "123\r\n" at @p p (< end). @return 1 and
 * *v, *next on success; 0 if the line is not complete; -1 if malformed.
 * Adds the bytes it searched to *@p scanned. */
static int resp_int_line(const char *p, const char *end, long long *v, const char **next,
                         uint64_t *scanned)
{
    /* 34 bytes hold the longest line allowed, "-" 32 digits "\r\n". */
    size_t room = (size_t)(end - p) < 34 ? (size_t)(end - p) : 34;
    const char *nl = memchr(p, '\n', room);
    int neg = 0;
    long long x = 0;

    *scanned += nl != NULL ? (size_t)(nl - p) + 1 : room;
    if (nl == NULL)
        return (end - p) > 32 ? -1 : 0;
    /* The same bound on a complete line, or a command would be accepted or
     * refused depending on where the reads split it. */
    if (nl - p > 32 || nl == p || nl[-1] != '\r')
        return -1;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p == nl - 1)
        return -1;
    for (; p < nl - 1; p++) {
        if (*p < '0' || *p > '9' || x > 100000000000000ll)
            return -1;
        x = x * 10 + (*p - '0');
    }
    *v = neg ? -x : x;
    *next = nl + 1;
    return 1;
}

/* ------------------------------------------------------------ line scans */

const char *sbb_resp_scan_line(struct sbb_scan *s, const char *buf, size_t len, size_t limit)
{
    size_t end = len < limit ? len : limit;
    const char *nl;

    if (s->done >= end)
        return NULL;
    nl = memchr(buf + s->done, '\n', end - s->done);
    s->scanned += (nl != NULL ? (size_t)(nl - buf) + 1 : end) - s->done;
    s->done = nl != NULL ? (size_t)(nl - buf) : end;
    return nl;
}

static ssize_t resp_inline(const char *buf, size_t len, size_t max_inline, struct sbb_scan *scan,
                           struct sbb_argv *out, const char **err)
{
    /* One byte past the limit tells a line too long; SIZE_MAX must not wrap. */
    size_t limit = max_inline < SIZE_MAX ? max_inline + 1 : SIZE_MAX;
    const char *nl = sbb_resp_scan_line(scan, buf, len, limit);
    const char *p = buf, *end;

    if (nl == NULL) {
        if (len > max_inline) {
            *err = "ERR Protocol error: too big inline request";
            return -1;
        }
        return 0;
    }
    end = nl > buf && nl[-1] == '\r' ? nl - 1 : nl;
    out->argc = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            break;
        if (out->argc == SBB_ARGV_MAX) {
            *err = "ERR Protocol error: too many arguments in inline request";
            return -1;
        }
        out->argv[out->argc] = p;
        while (p < end && *p != ' ' && *p != '\t')
            p++;
        out->argl[out->argc] = (size_t)(p - out->argv[out->argc]);
        out->argc++;
    }
    return (ssize_t)(nl + 1 - buf);
}

/* The elements of a RESP array of @p n (1..SBB_ARGV_MAX) bulk strings
 * at @p p, from element @p from on (the calls before on this command
 * parsed those before it: their arguments are not in @p out). On an
 * incomplete command, @p scan records where its first incomplete element
 * starts. @return as sbb_resp_parse(). */
static ssize_t resp_array(const char *buf, const char *p, const char *end, long long n,
                          unsigned from, size_t max_bulk, struct sbb_scan *scan,
                          struct sbb_argv *out, const char **err)
{
    unsigned i = from;
    long long bl;
    int rc = 1;

    for (; i < n && rc > 0; i++) {
        const char *q;

        if (p == end || *p != '$') {
            *err = "ERR Protocol error: expected '$'";
            rc = p == end ? 0 : -1;
            break;
        }
        rc = resp_int_line(p + 1, end, &bl, &q, &scan->scanned);
        if (rc > 0 && (bl < 0 || (unsigned long long)bl > max_bulk))
            rc = -1;
        if (rc < 0)
            *err = "ERR Protocol error: invalid bulk length";
        if (rc <= 0)
            break;
        if ((size_t)(end - q) < (size_t)bl + 2) {
            rc = 0;
            break;
        }
        if (q[bl] != '\r' || q[bl + 1] != '\n') {
            *err = "ERR Protocol error: bulk string not ended by CRLF";
            return -1;
        }
        out->argv[out->argc] = q;
        out->argl[out->argc] = (size_t)bl;
        out->argc++;
        p = q + bl + 2;
    }
    if (rc <= 0) {
        scan->args = i; /* incomplete: element i starts at p */
        scan->done = (size_t)(p - buf);
        return rc;
    }
    return (ssize_t)(p - buf);
}

ssize_t sbb_resp_parse(const char *buf, size_t len, size_t max_bulk, size_t max_inline,
                       struct sbb_scan *scan, struct sbb_argv *out, const char **err)
{
    struct sbb_scan whole = {0};
    const char *p = buf + 1, *end = buf + len;
    unsigned from;
    long long n;
    ssize_t rc;

    if (len == 0)
        return 0;
    if (scan == NULL)
        scan = &whole;
    if (buf[0] != '*')
        return resp_inline(buf, len, max_inline, scan, out, err);
    rc = resp_int_line(p, end, &n, &p, &scan->scanned);
    if (rc <= 0) {
        *err = "ERR Protocol error: invalid multibulk length";
        return rc;
    }
    out->argc = 0;
    if (n <= 0) /* as Redis: an empty or null array is no command */
        return (ssize_t)(p - buf);
    if (n > (long long)SBB_ARGV_MAX) {
        *err = "ERR Protocol error: invalid multibulk length";
        return -1;
    }
    /* Resume after the elements the calls before on this command took. */
    from = scan->args;
    rc = resp_array(buf, from > 0 ? buf + scan->done : p, end, n, from, max_bulk, scan, out, err);
    if (rc <= 0 || from == 0)
        return rc;
    /* Complete, but its first arguments are not in @p out: one more pass
     * over the whole command, each byte of it seen once more. */
    whole.scanned = scan->scanned;
    out->argc = 0;
    rc = resp_array(buf, p, end, n, 0, max_bulk, &whole, out, err);
    scan->scanned = whole.scanned;
    return rc;
}

static size_t dec_len(size_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

char *sbb_resp_put_dec(char *o, uint64_t v)
{
    char tmp[24];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *o++ = tmp[--n];
    return o;
}

size_t sbb_resp_int(char *out, int64_t v)
{
    char *o = out;

    *o++ = ':';
    if (v < 0)
        *o++ = '-';
    o = sbb_resp_put_dec(o, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    *o++ = '\r';
    *o++ = '\n';
    return (size_t)(o - out);
}

size_t sbb_resp_bulk_len(size_t len)
{
    return 1 + dec_len(len) + 2 + len + 2;
}

size_t sbb_resp_bulk(char *out, const void *data, size_t len)
{
    char *o = out;

    *o++ = '$';
    o = sbb_resp_put_dec(o, len);
    *o++ = '\r';
    *o++ = '\n';
    if (len > 0)
        memcpy(o, data, len);
    o += len;
    *o++ = '\r';
    *o++ = '\n';
    return (size_t)(o - out);
}

size_t sbb_resp_message_len(size_t patl, size_t topicl, size_t len)
{
    if (patl == 0)
        return 4 + sbb_resp_bulk_len(7) + sbb_resp_bulk_len(topicl) + sbb_resp_bulk_len(len);
    return 4 + sbb_resp_bulk_len(8) + sbb_resp_bulk_len(patl) + sbb_resp_bulk_len(topicl) +
           sbb_resp_bulk_len(len);
}

size_t sbb_resp_message(char *out, const char *pat, size_t patl, const char *topic, size_t topicl,
                        const void *data, size_t len)
{
    char *o = out;

    /* patl, not pat, as in sbb_resp_message_len(): the length must agree. */
    if (pat == NULL || patl == 0) {
        memcpy(o, "*3\r\n", 4);
        o += 4;
        o += sbb_resp_bulk(o, "message", 7);
    } else {
        memcpy(o, "*4\r\n", 4);
        o += 4;
        o += sbb_resp_bulk(o, "pmessage", 8);
        o += sbb_resp_bulk(o, pat, patl);
    }
    o += sbb_resp_bulk(o, topic, topicl);
    o += sbb_resp_bulk(o, data, len);
    return (size_t)(o - out);
}
