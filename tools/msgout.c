/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writing a message on standard output, for `shmbus sub` and `shmbus
 * replay --print` (msgout.h): a text line (raw payload bytes, with the
 * topic, the latency or a dead letter's metadata in front when asked), a
 * JSON line, a raw frame or a hex dump.
 */
#include "msgout.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util/base64.h"
#include "util/utf8.h"

/* Payload bytes encoded per base64 chunk: a multiple of 3. */
#define MSGOUT_B64_CHUNK 3072
/* Bytes per line of a hex dump. */
#define MSGOUT_HEX_LINE 16

int cli_msgout_format(const char *s, int *out)
{
    static const char *const names[] = {[CLI_FMT_TEXT] = "text",
                                        [CLI_FMT_JSON] = "json",
                                        [CLI_FMT_RAW] = "raw",
                                        [CLI_FMT_HEX] = "hex"};

    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1; /* no such format */
}

/* --dead-letters: the metadata, a tab, and the original payload; a message
 * that is no dead letter is reported and printed as it is. */
static void msgout_dead_letter(const struct cli_msgout *o, const void *buf, const shmbus_msg *m)
{
    shmbus_dead_letter dl;
    int rc = shmbus_dead_letter_parse(buf, m->len, &dl);

    if (rc < 0) {
        cli_err("%s: seq %llu is no dead letter (%s): printed as it is", o->topic,
                (unsigned long long)m->seq, shmbus_strerror(rc));
        fwrite(buf, 1, m->len, stdout);
        return;
    }
    printf("topic=%s seq=%llu group=%s deliveries=%u reason=%s publisher_pid=%u time_ns=%llu "
           "dead_ns=%llu\t",
           dl.topic, (unsigned long long)dl.seq, dl.group, dl.deliveries,
           shmbus_dead_letter_reason(dl.reason), dl.publisher_pid,
           (unsigned long long)dl.timestamp_ns, (unsigned long long)dl.dead_ns);
    fwrite(dl.data, 1, dl.len, stdout);
}

static void msgout_text(const struct cli_msgout *o, const void *buf, const shmbus_msg *m,
                        uint64_t now_ns)
{
    if (o->topic_prefix)
        printf("%s\t", o->topic);
    if (o->latency) {
        int64_t ns = (int64_t)(now_ns - m->timestamp_ns);

        printf("%.3f\t", (double)ns / 1e3);
    }
    if (o->dead_letters)
        msgout_dead_letter(o, buf, m);
    else
        fwrite(buf, 1, m->len, stdout);
    putchar('\n');
}

/* The payload as base64, in chunks through a buffer on the stack. */
static void msgout_base64(const unsigned char *p, size_t len)
{
    char enc[MSGOUT_B64_CHUNK / 3 * 4];

    for (size_t off = 0; off < len; off += MSGOUT_B64_CHUNK) {
        size_t n = len - off < MSGOUT_B64_CHUNK ? len - off : MSGOUT_B64_CHUNK;

        fwrite(enc, 1, sb_base64_enc(enc, p + off, n), stdout);
    }
}

static void msgout_json(const struct cli_msgout *o, const void *buf, const shmbus_msg *m)
{
    int text = sb_utf8_valid(buf, m->len);

    fputs("{\"topic\":", stdout);
    cli_json_strn(o->topic, strlen(o->topic));
    printf(",\"seq\":%llu,\"timestamp_ns\":%llu,\"pid\":%u,\"lost\":%llu,",
           (unsigned long long)m->seq, (unsigned long long)m->timestamp_ns, m->publisher_pid,
           (unsigned long long)m->lost);
    if (text) {
        fputs("\"data\":", stdout);
        cli_json_strn(buf, m->len);
    } else {
        fputs("\"encoding\":\"base64\",\"data\":\"", stdout);
        msgout_base64(buf, m->len);
        putchar('"');
    }
    fputs("}\n", stdout);
}

/* Store @p v at @p p, little-endian, in @p n bytes. */
static void msgout_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void msgout_raw(const struct cli_msgout *o, const void *buf, const shmbus_msg *m)
{
    unsigned char h[CLI_RAW_HEADER] = {0};
    size_t tl = strlen(o->topic);

    msgout_le(h, m->len, 4);
    msgout_le(h + 4, tl, 4);
    msgout_le(h + 8, m->seq, 8);
    msgout_le(h + 16, m->timestamp_ns, 8);
    msgout_le(h + 24, m->lost, 8);
    msgout_le(h + 32, m->publisher_pid, 4);
    fwrite(h, 1, sizeof(h), stdout);
    fwrite(o->topic, 1, tl, stdout);
    fwrite(buf, 1, m->len, stdout);
}

static void msgout_hex(const struct cli_msgout *o, const void *buf, const shmbus_msg *m)
{
    const unsigned char *p = buf;

    printf("%s seq=%llu len=%u pid=%u ts=%llu\n", o->topic, (unsigned long long)m->seq, m->len,
           m->publisher_pid, (unsigned long long)m->timestamp_ns);
    for (size_t off = 0; off < m->len; off += MSGOUT_HEX_LINE) {
        size_t n = m->len - off < MSGOUT_HEX_LINE ? m->len - off : MSGOUT_HEX_LINE;

        printf("%08zx ", off);
        for (size_t i = 0; i < MSGOUT_HEX_LINE; i++) {
            if (i == MSGOUT_HEX_LINE / 2)
                putchar(' ');
            if (i < n)
                printf(" %02x", p[off + i]);
            else
                fputs("   ", stdout);
        }
        fputs("  |", stdout);
        for (size_t i = 0; i < n; i++)
            putchar(p[off + i] >= 0x20 && p[off + i] < 0x7f ? p[off + i] : '.');
        fputs("|\n", stdout);
    }
    /* hexdump -C prints nothing at all for no bytes, not even the length. */
    if (m->len > 0)
        printf("%08x\n", m->len);
    putchar('\n');
}

int cli_msgout_print(const struct cli_msgout *o, const void *buf, const shmbus_msg *m,
                     uint64_t now_ns)
{
    if (m->lost > 0)
        cli_err("%s: lost %llu message%s before seq %llu", o->topic, (unsigned long long)m->lost,
                m->lost == 1 ? "" : "s", (unsigned long long)m->seq);
    switch (o->format) {
    case CLI_FMT_JSON:
        msgout_json(o, buf, m);
        break;
    case CLI_FMT_RAW:
        msgout_raw(o, buf, m);
        break;
    case CLI_FMT_HEX:
        msgout_hex(o, buf, m);
        break;
    default:
        msgout_text(o, buf, m, now_ns);
        break;
    }
    return ferror(stdout) ? cli_flush() : 0;
}
