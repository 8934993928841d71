/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dead-letter pass: the daemon moves each message an acknowledged
 * group gave up on (delivered max_deliveries times, or held back for
 * redelivery past the stall timeout: admin.h sb_admin_ack_dead_next()) to
 * the group's dead-letter topic, wrapped in the envelope
 * (registry/deadletter.h), then frees its entry: it is acknowledged in
 * the original topic. The daemon publishes through its own publisher in
 * the dead-letter topic, made on first use, with timeout 0: the pass never
 * waits. A topic that does not exist is created reliable, with the
 * original's capacity, its max_msg_size plus the envelope's room, and the
 * bus's permissions. A message that cannot be moved (the topic is full,
 * too small for it, or cannot be opened or created) stays pending,
 * gating the original topic's publishers, is counted in the group's
 * dead_letter_failed, logged and told as a "dead_letter_failed" event
 * (both at most once a second per group: a cause that lasts fails at
 * every pass), and is tried again at the next pass.
 * Run from the reaper's scan one message a step (reaper.c). Control
 * thread only.
 */
#ifndef SHMBUSD_DEADLETTER_H
#define SHMBUSD_DEADLETTER_H

#include <stdint.h>

#include "registry.h"

/* Most messages one pass moves (or tries to) from one topic; the rest
 * wait for the next pass, so that a step stays one message. */
#define SBD_DL_PER_PASS 32u
/* Least time between two log lines about one group's failures. */
#define SBD_DL_WARN_NS 1000000000ull

/* Can @p t hold acknowledged groups (a reliable topic: pending tables)? */
int sbd_dl_topic(const struct sbd_topic *t);

/*
 * Move the next message of @p t due for a dead-letter topic, from
 * position *@p pos over its groups' pending tables (0 at the start of the
 * topic's pass; moved past it). Creates the dead-letter topic through
 * @p reg if it is missing.
 * @return 1 one was handled (moved, or failed and counted), 0 none left.
 * Control thread, under urcu_memb_read_lock.
 */
int sbd_dl_step(struct sbd_registry *reg, struct sbd_topic *t, uint32_t *pos);

/* Free what the pass keeps for @p t: its groups' log limits, and the
 * daemon's dead-letter publisher in it. Control thread, or the
 * registry's end (a topic's last moment). */
void sbd_dl_free(struct sbd_topic *t);

#endif
