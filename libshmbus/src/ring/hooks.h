/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ring tells the owner of a topic handle opened through the
 * daemon: a publisher was added or removed, a subscriber wants a slot or
 * gives one back, the handle is closing. The ring never includes the
 * daemon client (registry/) nor sends wire messages itself, and shm/
 * includes neither: the client implements these hooks (registry/hooks.c),
 * as plain functions resolved at link time. The ring calls them only for
 * a handle whose reg is set (ring.h), and never on the publish or receive
 * path. A hook may block for a round trip to the daemon.
 */
#ifndef SHMBUS_RING_HOOKS_H
#define SHMBUS_RING_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "shmbus/shmbus.h"

/* The client's record of a handle opened through the daemon (defined in
 * registry/client.h); the ring only tells NULL from set. */
struct sb_topic_reg;

/* Publisher created on @p t (its record taken, in the segment).
 * @return 0, or an error that fails the create (nothing to undo: the
 * daemon counts publishers for monitoring only). */
int sb_hook_pub_added(shmbus_topic *t);

/* The creating process destroyed a publisher of @p t. Best effort. */
void sb_hook_pub_removed(shmbus_topic *t);

/* An acknowledging member's wishes for its group (SHMBUS_SUB_ACK), from
 * shmbus_sub_opts: 0 and NULL take what the group has (or the default). */
struct sb_hook_ack {
    uint32_t max_deliveries;
    const char *dead_letter;
};

/* A new subscriber of @p t wants a slot, in group @p group_name (NULL:
 * none), acknowledging if @p ack is not NULL (then the daemon sets the
 * group's max_deliveries and dead-letter topic in the segment before it
 * answers, or refuses with SHMBUS_ERR_MISMATCH). @return 0 with *slot
 * (taken for us: INIT, our pid) and *group (the group's number, 0 for
 * none) set; or an error, no slot taken. */
int sb_hook_slot_want(shmbus_topic *t, const char *group_name, const struct sb_hook_ack *ack,
                      uint32_t *slot, uint32_t *group);

/* The creating process gives back slot @p slot of @p t, stored INIT
 * (gating nothing): its holder frees it. Best effort. */
void sb_hook_slot_give_back(shmbus_topic *t, uint32_t slot);

/* Where the daemon records @p t's journal: its directory into @p dir
 * (@p cap bytes) and the topic's name, the journal's name within it, into
 * @p name (SHMBUS_TOPIC_NAME_MAX + 1 bytes). A subscriber starting before
 * the ring (ring/merge.c) asks; the answer is trusted as the daemon's
 * segments are. @return 0; -ENOENT (the daemon does not record it); or an
 * error of the round trip. */
int sb_hook_journal_dir(shmbus_topic *t, char *dir, size_t cap, char *name);

/* Handle @p t is being destroyed (its mapping still there); afterwards
 * t->reg is gone. Best effort: a daemon that is gone has nothing to count. */
void sb_hook_topic_closing(shmbus_topic *t);

#endif
