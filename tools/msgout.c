/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writing a message on standard output, for `shmbus sub` and `shmbus
 * replay --print` (msgout.h): one line per message, raw payload bytes,
 * with the latency or a dead letter's metadata in front when asked.
 */
#include "msgout.h"

#include <stdint.h>
#include <stdio.h>

#include "cli.h"

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

int cli_msgout_print(const struct cli_msgout *o, const void *buf, const shmbus_msg *m)
{
    if (m->lost > 0)
        cli_err("%s: lost %llu message%s before seq %llu", o->topic, (unsigned long long)m->lost,
                m->lost == 1 ? "" : "s", (unsigned long long)m->seq);
    if (o->latency) {
        int64_t ns = (int64_t)(cli_realtime_ns() - m->timestamp_ns);

        printf("%.3f\t", (double)ns / 1e3);
    }
    if (o->dead_letters)
        msgout_dead_letter(o, buf, m);
    else
        fwrite(buf, 1, m->len, stdout);
    putchar('\n');
    return ferror(stdout) ? cli_flush() : 0;
}
