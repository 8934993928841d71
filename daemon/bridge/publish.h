/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publishing for remote clients: the topic a client names (checked, and
 * created with the default options if missing, as `shmbus pub` does), the
 * bridge's one publisher in it, back-pressure from a full reliable topic,
 * and the delivery the I/O thread makes itself right after publishing
 * (the publish does not wake the topic's pump). I/O thread only.
 */
#ifndef SHMBUSD_BRIDGE_PUBLISH_H
#define SHMBUSD_BRIDGE_PUBLISH_H

#include <stddef.h>

#include "shmbus/shmbus.h"
#include "state.h"
#include "util/name.h"

#define SBB_BAD_NAME_TEXT "invalid topic name: " SB_NAME_TOPIC_RULE

/* A publish a client asked for: the topic name as it sent it (checked by
 * sbb_publish()) and the payload; what came of it: the receivers counted,
 * or -1 with why filled. */
struct sbb_pub {
    const char *name;
    size_t name_len;
    const void *data;
    size_t len;
    long long receivers;
    char *why;
    size_t why_len;
};

/* A topic name from a client, checked and terminated into @p out.
 * @return 0, or -1 if it is not a valid topic name. */
int sbb_publish_topic_name(const char *p, size_t len, char out[SHMBUS_TOPIC_NAME_MAX + 1]);

/*
 * Publish @p p's payload on the topic it names for @p c.
 * @return SBB_RUN_OK: p->receivers is the count (>= 0), or -1 with p->why
 * filled; SBB_RUN_PAUSE when a reliable topic is full and the wait goes on.
 */
int sbb_publish(struct sbb_io *io, struct sbb_conn *c, struct sbb_pub *p);

/* Deliver what this read published, now, from this thread. */
void sbb_publish_deliver(struct sbb_io *io);

#endif
