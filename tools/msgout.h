/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgout.h - how the tool writes a message on standard output: the
 * payload's bytes and a newline, optionally after its latency or, for a
 * dead-letter topic, the envelope's metadata; losses before it go to
 * stderr. `shmbus sub` prints what it receives with it and `shmbus replay
 * --print` what it reads from a journal, so both print alike.
 */
#ifndef SHMBUS_TOOLS_MSGOUT_H
#define SHMBUS_TOOLS_MSGOUT_H

#include "shmbus/shmbus.h"

/* What to print of each message. */
struct cli_msgout {
    const char *topic; /* names the topic in loss and envelope messages */
    int latency;       /* start the line with the latency in µs and a tab */
    int dead_letters;  /* start it with a dead letter's metadata and a tab */
};

/* Their --help lines, the same for every command that prints. */
#define CLI_MSGOUT_USAGE                                                                           \
    "  --latency        start each line with the latency in microseconds\n"                        \
    "                   (now minus publish time, CLOCK_REALTIME) and a tab\n"                      \
    "  --dead-letters   read a dead-letter topic: start each line with the\n"                      \
    "                   original's topic=, seq=, group=, deliveries=, reason=\n"                   \
    "                   (nacked, died, evicted, stalled, left), publisher_pid=,\n"                 \
    "                   time_ns= (published) and dead_ns= (dead-lettered), then a\n"               \
    "                   tab and the original payload\n"

/*
 * Print message @p m, whose payload is @p buf (m->len bytes), on stdout
 * (buffered), after reporting m->lost on stderr.
 * @return 0, or cli_flush()'s error when stdout broke.
 */
int cli_msgout_print(const struct cli_msgout *o, const void *buf, const shmbus_msg *m);

#endif /* SHMBUS_TOOLS_MSGOUT_H */
