/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON-lines side of the bridge's protocols (json.h): the command
 * parser and the encoders of replies and deliveries. Every read is
 * bounded by the length the caller gives; nothing here allocates.
 */
#include "json.h"

#include <stdio.h>
#include <string.h>

#include "resp.h"
#include "util/base64.h"
#include "util/utf8.h"

/* ------------------------------------------------------------- JSON lines */

static const char hexd[] = "0123456789abcdef";

size_t sbb_json_str(char *out, const char *s, size_t len)
{
    char *o = out;

    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        switch (c) {
        case '"':
            *o++ = '\\';
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                memcpy(o, "\\u00", 4);
                o[4] = hexd[c >> 4];
                o[5] = hexd[c & 15];
                o += 6;
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    return (size_t)(o - out);
}

/* Bytes of the JSON string of @p s without its quotes (sbb_json_str()). */
static size_t json_str_len(const unsigned char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += s[i] == '"' || s[i] == '\\' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t' ? 2
             : s[i] < 0x20 || s[i] == 0x7f                                               ? 6
                                                                                         : 1;
    return n;
}

size_t sbb_json_delivery_max(size_t topicl, size_t len)
{
    /* {"topic":,"seq":,"ts":,"lost":,"payload_base64":""}\n and three
     * numbers; the payload is never longer than its base64 form. */
    return 64 + 3 * 20 + SBB_JSON_STR_MAX(topicl) + sb_base64_len(len) + 2;
}

static char *put_lit(char *o, const char *s)
{
    size_t n = strlen(s);

    memcpy(o, s, n);
    return o + n;
}

size_t sbb_json_delivery(char *out, const char *topic, size_t topicl, const void *data, size_t len,
                         uint64_t seq, uint64_t ts_ns, uint64_t lost)
{
    char *o = out;

    o = put_lit(o, "{\"topic\":");
    o += sbb_json_str(o, topic, topicl);
    o = put_lit(o, ",\"seq\":");
    o = sbb_resp_put_dec(o, seq);
    o = put_lit(o, ",\"ts\":");
    o = sbb_resp_put_dec(o, ts_ns);
    if (lost != 0) {
        o = put_lit(o, ",\"lost\":");
        o = sbb_resp_put_dec(o, lost);
    }
    /* Text as text, unless escaping makes it longer than base64 (control
     * characters take six bytes each): output stays near the payload's
     * size whatever it holds. */
    if (sb_utf8_valid(data, len) && json_str_len(data, len) <= sb_base64_len(len)) {
        o = put_lit(o, ",\"payload\":");
        o += sbb_json_str(o, data, len);
    } else {
        o = put_lit(o, ",\"payload_base64\":\"");
        o += sb_base64_enc(o, data, len);
        *o++ = '"';
    }
    o = put_lit(o, "}\n");
    return (size_t)(o - out);
}

struct jparse {
    const char *start, *p, *end;
    char *scratch;
    char *err;
    size_t errlen;
};

static int jfail(struct jparse *j, const char *what)
{
    snprintf(j->err, j->errlen, "%s at byte %zu", what, (size_t)(j->p - j->start));
    return -1;
}

static void jws(struct jparse *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static int hex4(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

static char *put_utf8(char *o, uint32_t cp)
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

/* A \uXXXX escape at j->p (one, or a surrogate pair), as UTF-8 at *o.
 * Leaves j->p after it. */
static int junicode(struct jparse *j, char **o)
{
    uint32_t cp, lo;

    if (j->end - j->p < 6 || hex4(j->p + 2, &cp) < 0)
        return jfail(j, "bad \\u escape");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return jfail(j, "lone low surrogate");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (j->end - j->p < 12 || j->p[6] != '\\' || j->p[7] != 'u' || hex4(j->p + 8, &lo) < 0 ||
            lo < 0xdc00 || lo > 0xdfff)
            return jfail(j, "lone high surrogate");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        j->p += 6;
    }
    *o = put_utf8(*o, cp);
    j->p += 6;
    return 0;
}

/* The escape at j->p, decoded at *o. Leaves j->p after it. */
static int jescape(struct jparse *j, char **o)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *k;

    if (j->end - j->p < 2)
        return jfail(j, "unterminated escape");
    if (j->p[1] == 'u')
        return junicode(j, o);
    k = j->p[1] != '\0' ? strchr(from, j->p[1]) : NULL;
    if (k == NULL)
        return jfail(j, "bad escape");
    *(*o)++ = to[k - from];
    j->p += 2;
    return 0;
}

/* A JSON string at j->p (the opening quote), decoded into the scratch
 * buffer. The decoded form is never longer than the text it came from. */
static int jstring(struct jparse *j, struct sbb_jstr *s)
{
    char *o = j->scratch;

    if (j->p == j->end || *j->p != '"')
        return jfail(j, "expected a string");
    j->p++;
    s->p = o;
    for (;;) {
        unsigned char c;
        size_t n;

        if (j->p == j->end)
            return jfail(j, "unterminated string");
        c = (unsigned char)*j->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return jfail(j, "control character in string");
        if (c == '\\') {
            if (jescape(j, &o) < 0)
                return -1;
            continue;
        }
        n = sb_utf8_seq((const unsigned char *)j->p, (const unsigned char *)j->end);
        if (n == 0)
            return jfail(j, "invalid UTF-8 in string");
        memcpy(o, j->p, n);
        o += n;
        j->p += n;
    }
    j->p++;
    s->len = (size_t)(o - s->p);
    j->scratch = o;
    return 0;
}

/* Skip the digits at j->p. @return how many. */
static size_t jdigits(struct jparse *j)
{
    const char *b = j->p;

    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return (size_t)(j->p - b);
}

/* A JSON number (for "id"): kept as its text, which the reply echoes, so
 * it must be one by RFC 8259's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int jnumber(struct jparse *j, struct sbb_jstr *s)
{
    const char *b = j->p, *d;
    size_t n;

    if (j->p < j->end && *j->p == '-')
        j->p++;
    d = j->p;
    n = jdigits(j);
    if (n == 0)
        return jfail(j, "expected a value");
    if (n > 1 && *d == '0')
        return jfail(j, "bad number");
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (jdigits(j) == 0)
            return jfail(j, "bad number");
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (jdigits(j) == 0)
            return jfail(j, "bad number");
    }
    if (j->p - b > 32)
        return jfail(j, "number too long");
    s->p = b;
    s->len = (size_t)(j->p - b);
    return 0;
}

static int key_is(const struct sbb_jstr *k, const char *name)
{
    return k->len == strlen(name) && memcmp(k->p, name, k->len) == 0;
}

static const struct {
    const char *name;
    int cmd;
} jcmds[] = {{"SUB", SBB_J_SUB},
             {"UNSUB", SBB_J_UNSUB},
             {"PUB", SBB_J_PUB},
             {"PING", SBB_J_PING},
             {"AUTH", SBB_J_AUTH}};

/* The fields of a command as parsed, before they are checked together. */
struct jfields {
    struct sbb_jstr command, b64;
    struct sbb_jcommand *out;
};

/* "id": a string of at most 64 bytes or a number, kept as its text. */
static int jid(struct jparse *j, struct sbb_jcommand *out)
{
    const char *b = j->p;
    struct sbb_jstr val;

    if (out->id.p != NULL)
        return jfail(j, "repeated field");
    if (j->p == j->end || *j->p != '"')
        return jnumber(j, &out->id);
    if (jstring(j, &val) < 0)
        return -1;
    if (j->p - b > 66)
        return jfail(j, "\"id\" longer than 64 bytes");
    out->id = (struct sbb_jstr){.p = b, .len = (size_t)(j->p - b)};
    return 0;
}

/* The value of field @p key at j->p. */
static int jfield(struct jparse *j, const struct sbb_jstr *key, struct jfields *f)
{
    struct sbb_jstr *dst;

    if (key_is(key, "id"))
        return jid(j, f->out);
    if (key_is(key, "command"))
        dst = &f->command;
    else if (key_is(key, "topic"))
        dst = &f->out->topic;
    else if (key_is(key, "payload"))
        dst = &f->out->payload;
    else if (key_is(key, "payload_base64"))
        dst = &f->b64;
    else if (key_is(key, "token"))
        dst = &f->out->token;
    else
        return jfail(j, "unknown field");
    if (dst->p != NULL)
        return jfail(j, "repeated field");
    return jstring(j, dst);
}

/* The whole line: one object of string fields (and "id"). */
static int jobject(struct jparse *j, struct jfields *f)
{
    jws(j);
    if (j->p == j->end || *j->p != '{')
        return jfail(j, "expected a JSON object");
    j->p++;
    jws(j);
    if (j->p < j->end && *j->p == '}')
        j->p++;
    else
        for (;;) {
            struct sbb_jstr key;

            jws(j);
            if (jstring(j, &key) < 0)
                return -1;
            jws(j);
            if (j->p == j->end || *j->p != ':')
                return jfail(j, "expected ':'");
            j->p++;
            jws(j);
            if (jfield(j, &key, f) < 0)
                return -1;
            jws(j);
            if (j->p < j->end && (*j->p == ',' || *j->p == '}') && *j->p++ == '}')
                break;
            if (j->p[-1] != ',')
                return jfail(j, "expected ',' or '}'");
        }
    jws(j);
    return j->p == j->end ? 0 : jfail(j, "text after the object");
}

int sbb_json_parse(const char *line, size_t len, char *scratch, struct sbb_jcommand *out, char *err,
                   size_t errlen)
{
    struct jparse j = {.start = line,
                       .p = line,
                       .end = line + len,
                       .scratch = scratch,
                       .err = err,
                       .errlen = errlen};
    struct jfields f = {.out = out};
    long n;

    memset(out, 0, sizeof(*out));
    if (jobject(&j, &f) < 0)
        return -1;
    for (size_t i = 0; f.command.p != NULL && i < sizeof(jcmds) / sizeof(jcmds[0]); i++)
        if (key_is(&f.command, jcmds[i].name))
            out->cmd = jcmds[i].cmd;
    if (f.command.p == NULL)
        snprintf(err, errlen, "missing \"command\"");
    else if (out->cmd == 0)
        snprintf(err, errlen, "unknown command (SUB, UNSUB, PUB, PING, AUTH)");
    else if (out->payload.p != NULL && f.b64.p != NULL)
        snprintf(err, errlen, "both \"payload\" and \"payload_base64\"");
    else if (f.b64.p == NULL)
        return 0;
    /* Decode in place: base64 shrinks. */
    else if ((n = sb_base64_dec((char *)f.b64.p, f.b64.p, f.b64.len)) < 0)
        snprintf(err, errlen, "\"payload_base64\" is not padded base64");
    else {
        out->payload = (struct sbb_jstr){.p = f.b64.p, .len = (size_t)n};
        return 0;
    }
    return -1;
}
