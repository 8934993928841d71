/* SPDX-License-Identifier: Apache-2.0 */
/* Consumer groups: members share a cursor; each message goes to one. */
#ifndef SHMBUS_RING_GROUP_H
#define SHMBUS_RING_GROUP_H

#include <stddef.h>

#include "ring/read.h"

/* Join the subscriber's group (its slot is ACTIVE and holds nothing). The
 * first member of an empty group seats the cursor. */
void sb_group_join(shmbus_sub *sub);

/* Place the cursor of group @p grp, SEATING at provisional position
 * @p prov, at the start a reader wanting @p start may take (gate.c), and
 * clear SEATING. @p self: the seating member's slot (skipped as a gate).
 * Called by the seating member, or by the daemon for one that died. */
void sb_group_seat_finish(const struct sb_segment *seg, struct sb_shm_group *grp,
                          const struct sb_shm_slot *self, uint32_t start, uint64_t prov);

/* Leave the group; the last member out stops it holding publishers back. */
void sb_group_leave(shmbus_sub *sub);

/* Take one member out of group @p grp's count, never below zero: a
 * member's leave, or the daemon's for a member it evicted or reaped. */
void sb_group_uncount(struct sb_shm_group *grp);

/* One step of a member: deliver, move, or nothing (enum sb_step), or an
 * error. @p cap as in sb_cell_fits(). An acknowledging member's step is
 * ring/ack.c's (redeliveries first). */
int sb_group_step(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap);

/* The same at the group's cursor only (ring/ack.c calls it once it holds
 * a reservation). */
int sb_group_cursor_step(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap);

/* Store the member's hold on @p seq (SB_POS_IDLE: none) in its slot: a
 * gate publishers see before the cursor moves past @p seq (reliable;
 * seq_cst), and a mark for the daemon. */
void sb_group_hold(shmbus_sub *sub, uint64_t seq);

/* Take the message at cursor word @p w, whose cell showed @p v: hold it,
 * then move the cursor past it. @return 1 taken, the hold in place (the
 * caller drops it once the message is delivered or recorded); 0 not ours
 * (another member moved the cursor) or a skipped seq (counted as lost),
 * the hold dropped. Shared by plain and acknowledging members' takes. */
int sb_group_claim(shmbus_sub *sub, uint64_t w, uint64_t v);

/* The cursor seq, for readiness checks and statistics; UINT64_MAX while
 * the group is being seated. @p order: the load's memory order. */
uint64_t sb_group_pos(const shmbus_sub *sub, memory_order order);

#endif
