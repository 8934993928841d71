/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stall timeouts: a reliable topic's subscriber that holds publishers back
 * for longer than the topic's stall_timeout_ms is evicted, and a claim any
 * live publisher keeps open that long is ended (Aeron's untethered
 * subscriptions and publication unblock); so is an acknowledged group's
 * pending message that holds them back that long (its member evicted, or
 * the message dead-lettered). Run from the reaper's periodic
 * scan, one slot, group or record at a time, so that each call is a
 * bounded amount of work whatever the segment holds (the reaper budgets
 * its slices by them); what is done to the segment is in admin.h. Control
 * thread only.
 */
#ifndef SHMBUSD_STALL_H
#define SHMBUSD_STALL_H

#include <stdint.h>

#include "registry.h"

/* Most members one look at a stalled group evicts (sbd_stall_group()). */
#define SBD_STALL_EVICT_MAX 16u

/* Are @p t's subscriber and group gates subject to a stall timeout? */
int sbd_stall_gates(const struct sbd_topic *t);

/* Are @p t's publishers' claims? */
int sbd_stall_claims(const struct sbd_topic *t);

/* Look at record @p i's claim at monotonic time @p now_ms; end it if it
 * stayed on one seq past the timeout. Claims go first in a pass: a reader
 * waiting at a stuck claim is not stalling (admin.h sb_admin_slot_gate()).
 * Only when sbd_stall_claims(). */
void sbd_stall_claim(struct sbd_topic *t, uint32_t i, int64_t now_ms);

/* Look at slot @p i (the ring's @p tail read once for the pass); evict it
 * if it held a full ring past the timeout. Only when sbd_stall_gates(). */
void sbd_stall_slot(struct sbd_topic *t, uint32_t i, uint64_t tail, int64_t now_ms);

/* Look at group @p g's cursor; evict up to SBD_STALL_EVICT_MAX of its
 * members if it held a full ring past the timeout. Only when
 * sbd_stall_gates(). */
void sbd_stall_group(struct sbd_topic *t, uint32_t g, uint64_t tail, int64_t now_ms);

/* Look at acknowledged group @p g's lowest pending message (admin.h
 * sb_admin_ack_gate()); if it held a full ring past the timeout, evict
 * the member holding it, or dead-letter it (reason STALLED) if it waits
 * for redelivery. Only when sbd_stall_gates(). */
void sbd_stall_acks(struct sbd_topic *t, uint32_t g, uint64_t tail, int64_t now_ms);

/* Free the marks the sbd_stall_*() checks kept for a topic. Accepts NULL. */
void sbd_stall_free(struct sbd_stall *s);

#endif
