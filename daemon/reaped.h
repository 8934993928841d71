/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the daemon took back from each dead process, per topic, gathered
 * for the "reaped" event (events.h): one event per dead process per topic
 * with the slots freed, the publisher records marked dead, the claims
 * ended and the acknowledged messages returned. A process's slots are
 * freed when its connection closes or when the reaper's walk meets them,
 * its records when the walk does, so the counts are noted as they happen
 * and told once the reaper has walked every topic since (two pass ends
 * after the first note). Control thread only.
 */
#ifndef SHMBUSD_REAPED_H
#define SHMBUSD_REAPED_H

#include <stdint.h>

struct sbd_topic;

/* What was taken back. */
enum sbd_reaped_what {
    SBD_REAPED_SLOTS,      /* subscriber slots freed */
    SBD_REAPED_PUBLISHERS, /* publisher records marked dead */
    SBD_REAPED_CLAIMS,     /* claims ended */
    SBD_REAPED_RETURNED,   /* acknowledged messages given back to their group */
    SBD_REAPED_WHATS
};

/* Most (process, topic) pairs waiting to be told: beyond, one is told
 * early to make room. */
#define SBD_REAPED_MAX 4096u

/* Count @p n of @p what taken back from dead process @p pid in @p t
 * (topics stay until the daemon stops). Out of memory, the pair is told at
 * once instead. */
void sbd_reaped_note(struct sbd_topic *t, uint32_t pid, enum sbd_reaped_what what, uint32_t n);

/* A reaper pass ended: tell (and forget) the pairs noted before the pass
 * before it began, which the walk has since met in every topic. */
void sbd_reaped_pass_end(void);

/* Tell every pair and free the table (the daemon stops). */
void sbd_reaped_flush(void);

#endif
