/*
 * The TCP bridge's two protocols, as pure functions over byte buffers: the
 * parsers for JSON lines and RESP2 (Redis) commands, the encoders of
 * replies and deliveries, and the glob matcher of pattern subscriptions.
 * No I/O and no state, so that libFuzzer drives them directly
 * (fuzz/fuzz_json.c, fuzz/fuzz_resp.c). docs/protocol.md describes both
 * protocols.
 */
#ifndef SHMBUSD_BRIDGE_PROTO_H
#define SHMBUSD_BRIDGE_PROTO_H

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
const char *sbb_scan_line(struct sbb_scan *s, const char *buf, size_t len, size_t limit);

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

/* ------------------------------------------------------------- JSON lines */

enum sbb_jcmd { SBB_J_SUB = 1, SBB_J_UNSUB, SBB_J_PUB, SBB_J_PING, SBB_J_AUTH };

/* A text field of a command, decoded. NULL when absent. */
struct sbb_jstr {
    const char *p;
    size_t len;
};

struct sbb_jcommand {
    int cmd; /* enum sbb_jcmd */
    struct sbb_jstr topic, payload, token;
    struct sbb_jstr id; /* the raw JSON text of "id" (a string or a number), echoed in the reply */
};

/*
 * Parse one JSON line (without its newline) into @p out. Strings are
 * decoded into @p scratch, which must hold @p len bytes (decoding never
 * grows a string). "payload" is a JSON string whose characters are sent
 * as UTF-8; "payload_base64" carries any bytes.
 * @return 0, or -1 with a reason in @p err (terminated).
 */
int sbb_json_parse(const char *line, size_t len, char *scratch, struct sbb_jcommand *out, char *err,
                   size_t errlen);

/* Most bytes sbb_json_delivery() writes for these lengths. */
size_t sbb_json_delivery_max(size_t topicl, size_t len);

/*
 * Write the delivery line of one message (with its newline):
 * {"topic":..,"seq":..,"ts":..,"lost":..,"payload":".."} with the payload as
 * a JSON string when it is valid UTF-8 and its escaped form is no longer
 * than its base64 form, else as "payload_base64".
 * "lost" appears only when non-zero. @return the bytes written.
 */
size_t sbb_json_delivery(char *out, const char *topic, size_t topicl, const void *data, size_t len,
                         uint64_t seq, uint64_t ts_ns, uint64_t lost);

/* Most bytes sbb_json_str() writes for @p len input bytes. */
#define SBB_JSON_STR_MAX(len) (6u * (len) + 2u)

/* Write @p s as a quoted JSON string; bytes that are not valid UTF-8 must
 * not be passed (sbb_utf8_valid()). @return the bytes written. */
size_t sbb_json_str(char *out, const char *s, size_t len);

/* Is @p s valid UTF-8 (no overlong forms, no surrogates)? */
int sbb_utf8_valid(const void *s, size_t len);

/* ------------------------------------------------------------------- glob */

/* Redis's glob: * ? [abc] [^a-z] and \ escapes. @return 1 on a match. */
int sbb_glob_match(const char *pat, size_t patl, const char *s, size_t len);
/* sbb_glob_match(), adding to *@p steps the work it did: one a character
 * compared, one a byte of a [class] scanned. A star restarts at most
 * @p len times from its place, so a match costs at most
 * (@p patl + 1) * (@p len + 1) steps. */
int sbb_glob_steps(const char *pat, size_t patl, const char *s, size_t len, uint64_t *steps);

#endif
