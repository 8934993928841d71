/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the bridge's JSON-lines side (daemon/bridge/json.c).
 * The input is one command line for sbb_json_parse(), given in an
 * exact-size heap copy with an exact-size scratch buffer, so that ASan
 * catches a read past the line or a write past the scratch. What it accepts
 * must satisfy what the bridge relies on: a known command, decoded strings
 * inside the scratch buffer, a topic and a token of valid UTF-8, and an
 * "id" that is a JSON string or number as written (the reply echoes it).
 * The input is also the value of "payload" in a PUB command, which then
 * must decode to valid UTF-8. Last, the input is the payload of a delivery
 * line, written into a buffer of exactly sbb_json_delivery_max() bytes: one
 * line of valid UTF-8 ending in "}\n", whose topic and payload, sent back
 * through the parser, decode to what was encoded.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/json.h"
#include "fuzz_check.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A decoded string lies inside @p scratch (@p len bytes). */
static void check_in(const struct sbb_jstr *s, const char *scratch, size_t len)
{
    if (s->p == NULL)
        return;
    CHECK(s->p >= scratch && (size_t)(s->p - scratch) <= len);
    CHECK(s->len <= len - (size_t)(s->p - scratch));
}

static size_t digits(const char *s, const char *e)
{
    const char *b = s;

    while (s < e && *s >= '0' && *s <= '9')
        s++;
    return (size_t)(s - b);
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number(const char *s, size_t n)
{
    const char *e = s + n;
    size_t d;

    s += s < e && *s == '-';
    d = digits(s, e);
    if (d == 0 || (d > 1 && *s == '0'))
        return 0;
    s += d;
    if (s < e && *s == '.') {
        d = digits(++s, e);
        if (d == 0)
            return 0;
        s += d;
    }
    if (s < e && (*s == 'e' || *s == 'E')) {
        s++;
        s += s < e && (*s == '+' || *s == '-');
        d = digits(s, e);
        if (d == 0)
            return 0;
        s += d;
    }
    return s == e;
}

/* Parse @p n bytes from exact-size copies; @return 0 with *c, or -1. */
static int parse(const void *data, size_t n, struct sbb_jcommand *c, char **line, char **scratch)
{
    char err[96];
    int rc;

    *line = malloc(n > 0 ? n : 1);
    *scratch = malloc(n > 0 ? n : 1);
    CHECK(*line != NULL && *scratch != NULL);
    if (n > 0)
        memcpy(*line, data, n);
    memset(err, 'x', sizeof(err));
    rc = sbb_json_parse(*line, n, *scratch, c, err, sizeof(err));
    if (rc != 0) {
        CHECK(rc == -1 && err[0] != 'x' && err[0] != '\0' && memchr(err, '\0', sizeof(err)));
        return -1;
    }
    CHECK(c->cmd >= SBB_J_SUB && c->cmd <= SBB_J_AUTH);
    check_in(&c->topic, *scratch, n);
    check_in(&c->payload, *scratch, n);
    check_in(&c->token, *scratch, n);
    CHECK(c->topic.p == NULL || sb_utf8_valid(c->topic.p, c->topic.len));
    CHECK(c->token.p == NULL || sb_utf8_valid(c->token.p, c->token.len));
    if (c->id.p != NULL) { /* as written in the line */
        const char *id = c->id.p;

        CHECK(id >= *line && (size_t)(id - *line) <= n && c->id.len <= n - (size_t)(id - *line));
        if (id[0] == '"')
            CHECK(c->id.len >= 2 && c->id.len <= 66 && id[c->id.len - 1] == '"');
        else
            CHECK(c->id.len <= 32 && json_number(id, c->id.len));
    }
    return 0;
}

/* The input as the value of "payload": text, so valid UTF-8. */
static void fuzz_payload(const uint8_t *data, size_t size)
{
    static const char head[] = "{\"command\":\"PUB\",\"topic\":\"t\",\"payload\":";
    size_t n = sizeof(head) - 1 + size + 1;
    char *cmd = malloc(n), *line, *scratch;
    struct sbb_jcommand c;

    CHECK(cmd != NULL);
    memcpy(cmd, head, sizeof(head) - 1);
    if (size > 0)
        memcpy(cmd + sizeof(head) - 1, data, size);
    cmd[n - 1] = '}';
    /* Accepted, the value came from "payload": "payload_base64" as well
     * would be refused, as would a second "payload". */
    if (parse(cmd, n, &c, &line, &scratch) == 0)
        CHECK(c.cmd == SBB_J_PUB && c.payload.p != NULL &&
              sb_utf8_valid(c.payload.p, c.payload.len));
    free(line);
    free(scratch);
    free(cmd);
}

/* Send the delivery's topic and payload back as a PUB command. */
static void check_delivery_back(const char *out, size_t n, const char *topic, size_t topicl,
                                const void *data, size_t len)
{
    const char *seq = memmem(out, n, ",\"seq\":", 7), *pl = memmem(out, n, ",\"payload", 9);
    char *cmd = malloc(n + 32), *line, *scratch;
    struct sbb_jcommand c;
    size_t k;

    CHECK(cmd != NULL && seq != NULL && pl != NULL && seq > out + 9 && pl > seq);
    k = (size_t)sprintf(cmd, "{\"command\":\"PUB\",\"topic\":");
    memcpy(cmd + k, out + 9, (size_t)(seq - out - 9));
    k += (size_t)(seq - out - 9);
    memcpy(cmd + k, pl, (size_t)(out + n - 1 - pl));
    k += (size_t)(out + n - 1 - pl);
    CHECK(parse(cmd, k, &c, &line, &scratch) == 0);
    CHECK(c.topic.len == topicl && memcmp(c.topic.p, topic, topicl) == 0);
    CHECK(c.payload.len == len && (len == 0 || memcmp(c.payload.p, data, len) == 0));
    /* Text only when it is UTF-8 (it may still go as base64, when
     * escaping would make it longer). */
    CHECK(memcmp(pl, ",\"payload\":", 11) != 0 || sb_utf8_valid(data, len));
    free(line);
    free(scratch);
    free(cmd);
}

/* The input as the payload of a delivery, on @p topic (valid UTF-8). */
static void fuzz_delivery(const uint8_t *data, size_t size, const char *topic, size_t topicl)
{
    size_t max = sbb_json_delivery_max(topicl, size), n;
    char *out = malloc(max);
    uint64_t lost = size % 3 == 0 ? 0 : size % 3 == 1 ? 1 : UINT64_MAX;

    CHECK(out != NULL);
    n = sbb_json_delivery(out, topic, topicl, data, size, size, UINT64_MAX - size, lost);
    CHECK(n <= max && n >= 2);
    CHECK(memcmp(out, "{\"topic\":\"", 10) == 0 && memcmp(out + n - 2, "}\n", 2) == 0);
    CHECK(memchr(out, '\n', n) == out + n - 1);
    CHECK(sb_utf8_valid(out, n));
    check_delivery_back(out, n, topic, topicl, data, size);
    free(out);
    if (sb_utf8_valid(data, size)) {
        max = SBB_JSON_STR_MAX(size);
        out = malloc(max);
        CHECK(out != NULL);
        n = sbb_json_str(out, (const char *)data, size);
        CHECK(n <= max && n >= 2 && out[0] == '"' && out[n - 1] == '"');
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sbb_jcommand c;
    char *line, *scratch;
    size_t tl = size < 16 ? size : 16;

    if (parse(data, size, &c, &line, &scratch) == 0 && c.topic.p != NULL)
        fuzz_delivery(data, size, c.topic.p, c.topic.len);
    else if (sb_utf8_valid(data, tl))
        fuzz_delivery(data, size, (const char *)data, tl);
    else
        fuzz_delivery(data, size, "fuzz.topic", 10);
    free(line);
    free(scratch);
    fuzz_payload(data, size);
    return 0;
}
