/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgout.h - how the tool writes a message on standard output, in one of
 * four formats (--format): text (the payload's bytes and a newline,
 * optionally after the topic, its latency or, for a dead-letter topic, the
 * envelope's metadata), json (one object per line), raw (length-prefixed
 * binary frames) and hex (a dump per message); losses before it go to
 * stderr. `shmbus sub` prints what it receives with it and `shmbus replay
 * --print` what it reads from a journal, so both print alike.
 */
#ifndef SHMBUS_TOOLS_MSGOUT_H
#define SHMBUS_TOOLS_MSGOUT_H

#include "shmbus/shmbus.h"

/* Output formats (--format). */
enum cli_msgfmt { CLI_FMT_TEXT = 0, CLI_FMT_JSON, CLI_FMT_RAW, CLI_FMT_HEX };

/* What to print of each message. */
struct cli_msgout {
    const char *topic; /* names the topic in loss and envelope messages, and output */
    int format;        /* enum cli_msgfmt */
    int topic_prefix;  /* text: start each line with the topic and a tab */
    int latency;       /* text: start each line with the latency in µs and a tab */
    int dead_letters;  /* text: start it with a dead letter's metadata and a tab */
};

/* The fixed header of a raw frame (--format raw), little-endian, then the
 * topic's name (topic_len bytes, no NUL), then the payload (len bytes). */
#define CLI_RAW_HEADER 40

/* Their --help lines, the same for every command that prints (--latency
 * is each command's own). */
#define CLI_MSGOUT_USAGE                                                                           \
    "  --format FMT     text (default): each payload's bytes as they are, then a\n"                \
    "                   newline (a payload holding newlines or binary bytes loses\n"               \
    "                   its framing: use json or raw for those);\n"                                \
    "                   json: one object per line: topic, seq, timestamp_ns, pid,\n"               \
    "                   lost, and data, a JSON string when the payload is valid\n"                 \
    "                   UTF-8, else its base64 with \"encoding\":\"base64\";\n"                    \
    "                   raw: binary frames for programs, each a 40-byte header of\n"               \
    "                   little-endian fields: u32 payload length, u32 topic name\n"                \
    "                   length, u64 seq, u64 timestamp_ns, u64 lost, u32 pid,\n"                   \
    "                   u32 zero; then the topic's name, then the payload;\n"                      \
    "                   hex: per message a line 'TOPIC seq=N len=N pid=N ts=NS',\n"                \
    "                   then a dump as `hexdump -C` writes it, then an empty line\n"               \
    "  --dead-letters   read a dead-letter topic (text only): start each line with\n"              \
    "                   the original's topic=, seq=, group=, deliveries=, reason=\n"               \
    "                   (nacked, died, evicted, stalled, left), publisher_pid=,\n"                 \
    "                   time_ns= (published) and dead_ns= (dead-lettered), then a\n"               \
    "                   tab and the original payload\n"

/*
 * Parse a --format value into *@p out. @return 0; -1 when it names none.
 */
int cli_msgout_format(const char *s, int *out);

/*
 * Print message @p m, whose payload is @p buf (m->len bytes), on stdout
 * (buffered), after reporting m->lost on stderr. @p now_ns is the
 * receive time (CLOCK_REALTIME) of o->latency's column, taken once by the
 * caller that also feeds it to a latency summary; unused without it.
 * @return 0, or cli_flush()'s error when stdout broke.
 */
int cli_msgout_print(const struct cli_msgout *o, const void *buf, const shmbus_msg *m,
                     uint64_t now_ns);

#endif /* SHMBUS_TOOLS_MSGOUT_H */
