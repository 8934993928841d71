/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting at a seq or a time (SHMBUS_START_SEQ, SHMBUS_START_TIME): in
 * the ring when it still holds the start, else from the topic's journal
 * (a bus topic the daemon records), then on into the ring with no gap and
 * no duplicate: replay-merge. docs/design.md "Starting at a seq or a
 * time" gives the algorithm and why it delivers every seq once, in order.
 */
#ifndef SHMBUS_RING_MERGE_H
#define SHMBUS_RING_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "ring/read.h"
#include "ring/ring.h"

/*
 * Place plain subscriber @p sub (its slot ours, filled and INIT) at the
 * start @p o names (SHMBUS_START_SEQ or SHMBUS_START_TIME): seated in the
 * ring, or reading the journal (sub->merge set, the slot left INIT).
 * @return 0; SHMBUS_ERR_RANGE (neither the ring nor a journal holds it);
 *         SHMBUS_ERR_EVICTED; the journal's or the daemon's errors. On
 *         failure the slot is INIT again and sub->merge may be set (freed
 *         by sb_merge_free()). Blocks for a round trip to the daemon.
 */
int sb_merge_start(shmbus_sub *sub, const shmbus_sub_opts *o);

/* Is @p m still delivering from the journal (or seated, reading the
 * journal's last part), rather than from the ring? */
int sb_merge_reading(const struct sb_merge *m);

/* One step of sub_poll() while reading the journal: enum sb_step, or an
 * error (-EMSGSIZE leaves the message for a bigger buffer). */
int sb_merge_step(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap);

/* A lossy ring lapped @p sub at sub->pos: back to the journal there
 * rather than to a loss. @return SB_STEP_MOVED. */
int sb_merge_lapped(shmbus_sub *sub);

/* While reading the journal: may a poll find something? 1 unless the last
 * read found the journal's end and its retry time has not come. */
int sb_merge_ready(const struct sb_merge *m);

/* When a sleeper reading @p sub's journal must wake to look again (a
 * journal has no futex), monotonic ns; UINT64_MAX: no need. */
uint64_t sb_merge_wake_at(const shmbus_sub *sub);

/* Free @p sub's merge state, closing the journal. NULL merge: nothing. */
void sb_merge_free(shmbus_sub *sub);

#endif
