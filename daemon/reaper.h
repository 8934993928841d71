/*
 * The reaper: notices dead processes and takes back what they held in the
 * bus's segments. A process is watched through a pidfd (pidfd_open on its
 * pid, checked against its start time so that a reused pid never passes
 * for the dead process): connected clients from their hello, and every
 * other owner of a subscriber slot or publisher record (direct attachers,
 * or processes a previous daemon served) from a periodic scan of the
 * segments. When one dies: its sessions are dropped, its slots freed
 * (admin.h), its publisher records marked DEAD and the claims they held
 * ended, retried by the next scans (or by a later daemon: the mark is in
 * the segment) while a live writer has to finish first.
 * Control thread only.
 */
#ifndef SHMBUSD_REAPER_H
#define SHMBUSD_REAPER_H

#include <stdint.h>
#include <sys/types.h>

#include "registry.h"

struct sbd_proc;

struct sbd_reaper {
    struct sbd_registry *reg;
    int epfd;    /* the control loop's epoll: pidfds are added to it */
    int timerfd; /* the periodic scan */
    struct sbd_proc **buckets;
    uint32_t nbuckets, nprocs;
    uint64_t reaped; /* dead processes handled */
};

/* epoll data of a watched process: the proc pointer with this bit set. */
#define SBD_REAPER_TAG 1u

/* Set up, with a scan every @p interval_ms, registered in @p epfd under
 * @p timer_tag. @return 0 or -errno. */
int sbd_reaper_init(struct sbd_reaper *r, struct sbd_registry *reg, int epfd, uint32_t interval_ms,
                    void *timer_tag);

void sbd_reaper_fini(struct sbd_reaper *r);

/* Watch process @p pid started at @p start (a client said hello). */
void sbd_reaper_watch(struct sbd_reaper *r, pid_t pid, uint64_t start);

/* Is process @p pid (started at @p start) gone? */
int sbd_reaper_dead(pid_t pid, uint64_t start);

/* The scan timer fired. */
void sbd_reaper_tick(struct sbd_reaper *r);

/* A watched process's pidfd is readable (epoll data @p tagged). */
void sbd_reaper_event(struct sbd_reaper *r, void *tagged);

#endif
