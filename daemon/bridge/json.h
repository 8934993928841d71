/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON-lines side of the TCP bridge's protocols, as pure functions
 * over byte buffers: the command parser and the encoders of replies and
 * deliveries. No I/O and no state, so that libFuzzer drives them directly
 * (fuzz/fuzz_json.c). docs/protocol.md describes the protocol.
 */
#ifndef SHMBUSD_BRIDGE_JSON_H
#define SHMBUSD_BRIDGE_JSON_H

#include <stddef.h>
#include <stdint.h>

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
 * not be passed (sb_utf8_valid()). @return the bytes written. */
size_t sbb_json_str(char *out, const char *s, size_t len);

#endif
