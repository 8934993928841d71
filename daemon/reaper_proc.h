/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The processes the reaper watches, shared by the reaper's two files and
 * no one else: reaper_proc.c keeps the table of processes (pidfds, looks
 * at /proc) and tells reaper.c, the scan, of each death. The rest of the
 * daemon uses reaper.h.
 */
#ifndef SHMBUSD_REAPER_PROC_H
#define SHMBUSD_REAPER_PROC_H

#include <stdint.h>
#include <sys/types.h>

#include "reaper.h"
#include "registry.h"

/* A step's cost, against SBD_REAPER_CLOCK_STEPS: the clock is read once
 * the steps since the last read add up to that, so after every costly
 * step. A cheap step is a load or two and a table lookup; the clock costs
 * more. */
#define SBD_REAP_STEP_CHEAP  1u
#define SBD_REAP_STEP_COSTLY SBD_REAPER_CLOCK_STEPS

struct sbd_proc {
    struct sbd_proc *next;
    pid_t pid;
    /* -1: none; checked in /proc at every pass (sbd_reaper_poll_step()) */
    int pidfd;
    uint64_t start;
    /* The topic whose slot or record named it first, which counts it in
     * its procs; NULL: watched for a client's hello. */
    struct sbd_topic *topic;
    /* Dead: kept (without a pidfd) so that the passes know it at once,
     * on the reaper's list of the dead (oldest first), until the walk has
     * been everywhere since its death: pass until_pass has finished
     * until_topics topics (UINT32_MAX: the whole pass). */
    int dead;
    uint32_t until_topics;
    uint64_t until_pass;
    struct sbd_proc *dead_next;
};

/*
 * Is the owner (@p pid, @p start) named in topic @p t known alive, or can
 * it be watched now (reaper_proc.c)? @p *cost becomes SBD_REAP_STEP_COSTLY when the
 * answer took more than the table. @return 0 when it is dead.
 */
int sbd_reaper_owner_check(struct sbd_reaper *r, struct sbd_topic *t, pid_t pid, uint64_t start,
                           uint32_t *cost);

/* One step of the look at the processes watched without a pidfd (a
 * bucket of the table). @return 1 when every bucket is done. */
int sbd_reaper_poll_step(struct sbd_reaper *r);

/* Drop dead process @p p from the table (its pidfd is closed already). */
void sbd_reaper_proc_remove(struct sbd_reaper *r, struct sbd_proc *p);

/* Process @p p is dead (its pidfd said so, or /proc): close its pidfd and
 * have the walk reap what it owns everywhere (reaper.c). */
void sbd_reaper_reap(struct sbd_reaper *r, struct sbd_proc *p);

#endif
