/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Acknowledged consumer groups (SHMBUS_SUB_ACK, work queues): a member's
 * take records the message in its group's pending table (layout.h) until
 * shmbus_ack() frees it (or keeps it as the member's reservation for its
 * next take) or shmbus_nack() gives it back for redelivery;
 * and the pending-table operations the daemon's primitives share with the
 * members (registry/admin_ack.c). The protocol is at the top of ack.c.
 */
#ifndef SHMBUS_RING_ACK_H
#define SHMBUS_RING_ACK_H

#include <stdint.h>

#include "ring/read.h"

/* One message an acknowledging member holds: entry index, its seq and the
 * HELD word it holds it by (a CAS from that word proves it still does). */
struct sb_ack_held {
    uint64_t seq;
    uint64_t word;
    uint32_t entry;
    uint32_t pad0;
};

/* An acknowledging member's private state (shmbus_sub.ack). */
struct sb_ack {
    struct sb_shm_group *grp;
    struct sb_shm_pending *pend; /* its group's entries */
    uint32_t entries;            /* ack_entries */
    uint32_t owner;              /* 1 + our slot index */
    uint32_t max_deliveries;     /* the group's, read at join */
    uint32_t max_inflight;
    uint32_t inflight; /* used entries of held[] */
    int32_t resv;      /* our RESERVED entry, or -1 */
    uint64_t resv_word;
    int exposed;   /* resv's seq and our hold were shown for a take that did not end HELD */
    uint32_t hint; /* where the next reservation scan starts */
    struct sb_ack_held held[SHMBUS_INFLIGHT_MAX];
};

/* Set up @p sub (a member of group @p group, 1-based, slot taken) as an
 * acknowledging member holding at most @p max_inflight (0: 1) messages.
 * @return 0; SHMBUS_ERR_MISMATCH if the group does not acknowledge (the
 * daemon did not configure it); -ENOMEM. */
int sb_ack_init(shmbus_sub *sub, uint32_t group, uint32_t max_inflight);

/* Give back what the member holds (reason SHMBUS_DL_LEFT) and free its
 * reservation and private state; before it leaves the group. */
void sb_ack_fini(shmbus_sub *sub);

/* One step of an acknowledging member: a due redelivery, else the message
 * at the cursor while under max_inflight. As sb_group_step(). */
int sb_ack_step(shmbus_sub *sub, sb_deliver_fn fn, void *arg, size_t cap);

/* The take of the message at cursor word @p w (cell @p cell, stamp @p v),
 * called by group.c's step for an acknowledging member. */
int sb_ack_take(shmbus_sub *sub, const struct sb_shm_cell *cell, uint64_t v, uint64_t w,
                sb_deliver_fn fn, void *arg);

/* Is something there for the member (as sb_sub_ready_order()), @p order
 * the loads' order? */
int sb_ack_ready(shmbus_sub *sub, memory_order order);

/* The earliest CLOCK_MONOTONIC time a nacked entry of the member's group
 * becomes due, UINT64_MAX if none or if the member is at its limit (it
 * would not take it): a sleeper wakes then. */
uint64_t sb_ack_wake_at(const shmbus_sub *sub);

/*
 * Shared with the daemon's primitives (registry/admin.c, admin_ack.c).
 *
 * Give entry @p e of group @p grp, whose word was @p w (HELD, or a
 * RESERVED entry whose take was in flight), back to the group: RETURNED
 * with @p deliveries and @p reason (enum shmbus_dead_letter_reason),
 * raising the group's returned hint. The caller wakes readers.
 * @return 1 done, 0 the word had changed (nothing done).
 */
int sb_ack_return(struct sb_shm_group *grp, struct sb_shm_pending *e, uint64_t w,
                  uint32_t deliveries, uint32_t reason);

/* Lower group @p grp's returned hint after a CAS moved an entry out of
 * RETURNED (never below 0). */
void sb_ack_returned_less(struct sb_shm_group *grp);

/* Give back what slot @p idx (a member of group @p g, 1-based) holds in
 * its group's pending table: HELD entries, and a RESERVED one whose take
 * was in flight (its seq the slot's hold, the cursor past it), become
 * RETURNED with @p reason; when @p gone (the owner is dead, or left
 * without destroying its subscriber) its other RESERVED entry is freed.
 * Wakes sleeping readers if it gave anything back. Nothing for a group
 * that does not acknowledge. @return the messages given back. */
uint32_t sb_ack_slot_return(const struct sb_segment *seg, uint32_t idx, uint32_t g, uint32_t reason,
                            int gone);

#endif
