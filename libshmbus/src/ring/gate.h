/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gates: the positions that hold reliable publishers back, where a new
 * reader (plain subscriber or a group seated anew) may safely begin, and a
 * reliable publisher's limit and its wait for room below it.
 */
#ifndef SHMBUS_RING_GATE_H
#define SHMBUS_RING_GATE_H

#include <stdint.h>

#include "shm/segment.h"

enum sb_gate_kind {
    /* What publishers respect: every plain slot that is JOINING or ACTIVE,
     * every group member's hold, every group with members, every pending
     * entry of an acknowledged group (HELD, RETURNED, DEAD). */
    SB_GATE_ALL,
    /* What a joiner may seat on: only settled positions (ACTIVE plain
     * slots, groups with members not being seated). Provisional positions
     * and holds can be below what a publisher saw earlier. */
    SB_GATE_SETTLED
};

/* Lowest gate of @p kind, skipping @p self (may be NULL); UINT64_MAX if
 * none. seq_cst loads: see gate.c. */
uint64_t sb_min_gate(const struct sb_segment *seg, const struct sb_shm_slot *self,
                     enum sb_gate_kind kind);

/* Reliable: the first seq a reader wanting @p start may read, never below
 * @p at_least. Call once the reader's provisional gate is visible (seq_cst):
 * the result is never below a position a publisher that has not seen that
 * gate may still overwrite. */
uint64_t sb_seat(const struct sb_segment *seg, const struct sb_shm_slot *self, uint32_t start,
                 uint64_t at_least);

struct shmbus_pub;

/* Recompute @p p's private limit from the gates and the tail @p s it read
 * (seq_cst) before. @return the limit (also in p->limit). */
uint64_t sb_pub_refresh_limit(struct shmbus_pub *p, uint64_t s);

/* Wait for room below @p p's limit for seq *@p s, the ring being full:
 * spin briefly, then sleep on space_futex; *@p s is the tail reloaded
 * after. *@p deadline: 0 on the first call, then kept by the caller.
 * @return 0 (check and call again), -EAGAIN (@p timeout_ns 0),
 * SHMBUS_ERR_TIMEOUT, SHMBUS_ERR_TOPIC_GONE, or -EINTR. */
int sb_pub_wait_space(struct shmbus_pub *p, uint64_t *s, int64_t timeout_ns, uint64_t *deadline);

#endif
