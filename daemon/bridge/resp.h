/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The RESP2 (Redis) side of the TCP bridge's protocols, as pure functions
 * over byte buffers: the command parser, the line scan that frames both
 * protocols' commands, and the encoders of replies and pushes. No I/O and
 * no state, so that libFuzzer drives them directly (fuzz/fuzz_resp.c).
 * docs/protocol.md describes the protocol.
 */
#ifndef SHMBUSD_BRIDGE_RESP_H
#define SHMBUSD_BRIDGE_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Most arguments of one RESP command (SUBSCRIBE with many channels):
 * bridge.h SBD_BRIDGE_SUBS_MAX and two more (io.c asserts it). */
#define SBB_ARGV_MAX 1026u

/* ------------------------------------------------------------ line scans */

/* How far a partial command was parsed: a command that arrives in N
 * reads is searched once in all, O(its length), not from its start at
 * every read, O(N x length). The caller keeps one per partial command and
 * zeroes it when a new command begins. */
struct sbb_scan {
    /* A line (JSON, inline RESP): bytes from its start known to hold no
     * '\n'. A RESP array: where its first incomplete element starts. */
    size_t done;
    unsigned args;    /* a RESP array: the complete elements before done */
    uint64_t scanned; /* bytes searched for this command, all calls together */
};

/* The '\n' ending the line at @p buf (@p len bytes), among its first
 * @p limit bytes, searched from s->done on. @return it (s->done stays
 * before it), or NULL: s->done moves to where the search stopped. */
const char *sbb_resp_scan_line(struct sbb_scan *s, const char *buf, size_t len, size_t limit);

/* ------------------------------------------------------------------ RESP2 */

struct sbb_argv {
    unsigned argc;
    const char *argv[SBB_ARGV_MAX]; /* into the parsed buffer, not terminated */
    size_t argl[SBB_ARGV_MAX];
};

/*
 * Parse one command from @p buf: a RESP array of bulk strings, or an
 * inline command (a line of words, as Redis accepts from telnet).
 * @p max_bulk bounds one argument, @p max_inline one inline line.
 * @p scan (may be NULL: parsed from the start) is how far the calls
 * before on the same command got; it is updated.
 * @return the bytes it took (> 0; argc may be 0 for an empty command,
 *         which is skipped); 0 when @p buf holds only part of a command;
 *         -1 on a protocol error: *err is Redis's message for it (without
 *         "-" and CRLF), and the connection must be closed after it.
 */
ssize_t sbb_resp_parse(const char *buf, size_t len, size_t max_bulk, size_t max_inline,
                       struct sbb_scan *scan, struct sbb_argv *out, const char **err);

/* Bytes of a "message" (pattern NULL) or "pmessage" push. */
size_t sbb_resp_message_len(size_t patl, size_t topicl, size_t len);

/* Write a "message" push of @p data on @p topic, or a "pmessage" push when
 * @p pat is not NULL and @p patl > 0, into @p out (sbb_resp_message_len() bytes).
 * @return the bytes written. */
size_t sbb_resp_message(char *out, const char *pat, size_t patl, const char *topic, size_t topicl,
                        const void *data, size_t len);

/* Write the integer reply ":v\r\n" (at most 24 bytes). @return bytes written. */
size_t sbb_resp_int(char *out, int64_t v);

/* Bytes of a bulk string of @p len bytes; write one. @return bytes written. */
size_t sbb_resp_bulk_len(size_t len);
size_t sbb_resp_bulk(char *out, const void *data, size_t len);

/* Write @p v in decimal at @p o (at most 20 bytes). @return the end of
 * what was written. Shared with the JSON encoders (json.c). */
char *sbb_resp_put_dec(char *o, uint64_t v);

#endif
