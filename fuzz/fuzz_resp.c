/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the bridge's RESP2 side (daemon/bridge/resp.c). The
 * input is what a client sends: it is parsed command after command with
 * small limits, as the bridge does, and what the parser accepts must
 * satisfy what the bridge relies on: it takes no more than it was given,
 * every argument lies inside what it took and within max_bulk (max_inline
 * for an inline command), every proper prefix of an accepted command is
 * incomplete (so the answer cannot depend on how reads split the stream),
 * and the arguments, encoded again with sbb_resp_bulk() into buffers of
 * exactly sbb_resp_bulk_len() bytes, parse back to themselves. The input cut
 * in two is also a glob pattern and a string: matching must end, agree with
 * the recursive reference matcher (tests/ref_glob.h) on short inputs, and
 * an escaped copy of the string must match it. A broken guarantee aborts,
 * so libFuzzer keeps the input; ASan watches libFuzzer's exact-size copy
 * and every buffer here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/glob.h"
#include "bridge/resp.h"
#include "fuzz_check.h"
#include "ref_glob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small, so that inputs reach past them. */
#define MAX_BULK   64
#define MAX_INLINE 128

/* Large (24 KiB each): kept off the stack. */
static struct sbb_argv cmd, other;

/* sbb_resp_parse() with the limits above, into @p out; @p scan as the
 * bridge keeps it over the reads of one command (NULL: a fresh search). */
static ssize_t parse_scan(const char *buf, size_t len, struct sbb_scan *scan, struct sbb_argv *out)
{
    const char *err = NULL;
    ssize_t rc = sbb_resp_parse(buf, len, MAX_BULK, MAX_INLINE, scan, out, &err);

    CHECK(rc >= -1 && (rc < 0 || (size_t)rc <= len));
    if (rc < 0)
        CHECK(err != NULL && strncmp(err, "ERR Protocol error: ", 20) == 0);
    return rc;
}

static ssize_t parse(const char *buf, size_t len, struct sbb_argv *out)
{
    return parse_scan(buf, len, NULL, out);
}

/* What the command just taken (cmd, @p took bytes of @p buf) guarantees. */
static void check_taken(const char *buf, size_t took)
{
    int inl = buf[0] != '*';

    CHECK(cmd.argc <= SBB_ARGV_MAX);
    if (inl)
        CHECK(buf[took - 1] == '\n' && took <= MAX_INLINE + 1);
    for (unsigned i = 0; i < cmd.argc; i++) {
        const char *a = cmd.argv[i];
        size_t l = cmd.argl[i];

        CHECK(a >= buf && (size_t)(a - buf) <= took && l <= took - (size_t)(a - buf));
        CHECK(l <= (inl ? MAX_INLINE : MAX_BULK));
        if (inl) /* words: not empty, no blank, no end of line */
            CHECK(l > 0 && memchr(a, ' ', l) == NULL && memchr(a, '\t', l) == NULL &&
                  memchr(a, '\n', l) == NULL);
    }
    /* Shorter reads of the same bytes wait for more; read in three
     * pieces, each call going on where the one before stopped, it is the
     * same command (an inline one's end searched for once). */
    struct sbb_scan scan = {0};

    CHECK(parse_scan(buf, took / 2, &scan, &other) == 0);
    CHECK(parse_scan(buf, took - 1, &scan, &other) == 0);
    CHECK(parse_scan(buf, took, &scan, &other) == (ssize_t)took && other.argc == cmd.argc);
    for (unsigned i = 0; i < cmd.argc; i++)
        CHECK(other.argv[i] == cmd.argv[i] && other.argl[i] == cmd.argl[i]);
    CHECK(!inl || scan.scanned == took);
}

/* Encode cmd again, each bulk string into a buffer of its exact size, and
 * parse it back: the same arguments, taken whole. */
static void check_reencode(void)
{
    size_t cap = 16, n;
    char *all;
    const char *err = NULL;

    for (unsigned i = 0; i < cmd.argc; i++)
        cap += sbb_resp_bulk_len(cmd.argl[i]);
    all = malloc(cap);
    CHECK(all != NULL);
    n = (size_t)snprintf(all, cap, "*%u\r\n", cmd.argc);
    for (unsigned i = 0; i < cmd.argc; i++) {
        size_t want = sbb_resp_bulk_len(cmd.argl[i]);
        char *one = malloc(want);

        CHECK(one != NULL);
        CHECK(sbb_resp_bulk(one, cmd.argv[i], cmd.argl[i]) == want);
        CHECK(one[0] == '$' && memcmp(one + want - 2, "\r\n", 2) == 0);
        CHECK(memcmp(one + want - 2 - cmd.argl[i], cmd.argv[i], cmd.argl[i]) == 0);
        memcpy(all + n, one, want);
        n += want;
        free(one);
    }
    CHECK(sbb_resp_parse(all, n, MAX_INLINE, MAX_INLINE, NULL, &other, &err) == (ssize_t)n);
    CHECK(other.argc == cmd.argc);
    for (unsigned i = 0; i < cmd.argc; i++)
        CHECK(other.argl[i] == cmd.argl[i] && memcmp(other.argv[i], cmd.argv[i], cmd.argl[i]) == 0);
    free(all);
}

/* The first three arguments as a push (the first as its pattern): the
 * length it announces is the length it writes, and it parses back. */
static void check_message(void)
{
    const char *err = NULL;
    size_t want, i0;
    char *out;

    if (cmd.argc < 3)
        return;
    want = sbb_resp_message_len(cmd.argl[0], cmd.argl[1], cmd.argl[2]);
    out = malloc(want);
    CHECK(out != NULL);
    CHECK(sbb_resp_message(out, cmd.argv[0], cmd.argl[0], cmd.argv[1], cmd.argl[1], cmd.argv[2],
                           cmd.argl[2]) == want);
    CHECK(sbb_resp_parse(out, want, MAX_INLINE, MAX_INLINE, NULL, &other, &err) == (ssize_t)want);
    i0 = other.argc == 4 ? 2 : 1;
    CHECK(other.argc == (cmd.argl[0] > 0 ? 4u : 3u));
    CHECK(other.argl[i0] == cmd.argl[1] && memcmp(other.argv[i0], cmd.argv[1], cmd.argl[1]) == 0);
    CHECK(other.argl[i0 + 1] == cmd.argl[2] &&
          memcmp(other.argv[i0 + 1], cmd.argv[2], cmd.argl[2]) == 0);
    free(out);
}

static void fuzz_glob(const char *buf, size_t size)
{
    size_t half = size / 2, sl = size - half;
    const char *s = buf + half;
    char *esc = malloc(2 * sl + 1);
    int m = sb_glob_match(buf, half, s, sl);

    CHECK(m == 0 || m == 1);
    if (size <= 24)
        CHECK(m == ref_glob(buf, buf + half, s, s + sl));
    CHECK(esc != NULL);
    for (size_t i = 0; i < sl; i++) {
        esc[2 * i] = '\\';
        esc[2 * i + 1] = s[i];
    }
    CHECK(sb_glob_match(esc, 2 * sl, s, sl) == 1);
    esc[2 * sl] = '*';
    CHECK(sb_glob_match(esc + 2 * sl, 1, s, sl) == 1);
    /* The string then anything: matches the input when it starts with the string. */
    CHECK(sb_glob_match(esc, 2 * sl + 1, buf, size) == (memcmp(buf, s, sl) == 0));
    free(esc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;
    ssize_t rc;

    while (off < size && (rc = parse(buf + off, size - off, &cmd)) > 0) {
        check_taken(buf + off, (size_t)rc);
        check_reencode();
        check_message();
        off += (size_t)rc;
    }
    fuzz_glob(buf, size);
    return 0;
}
