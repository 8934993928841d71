/*
 * The reaper: notices dead processes and takes back what they held in the
 * bus's segments. A process is watched through a pidfd (pidfd_open on its
 * pid, checked against its start time so that a reused pid never passes
 * for the dead process): connected clients from their hello, and every
 * other owner of a subscriber slot or publisher record (direct attachers,
 * or processes a previous daemon served) from a periodic scan of the
 * segments. A process no pidfd can be had for (pidfd_open() forbidden by
 * a sandbox, descriptors exhausted) is looked up in /proc at every scan
 * instead, by pid and start time; where /proc cannot be read either, only
 * kill(pid, 0) failing with ESRCH counts as dead, and the process is asked
 * about again at the next scan: nothing it cannot check is taken as alive
 * for good. When one dies: its sessions are dropped, its slots freed
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
    uint32_t npolled; /* of nprocs, those without a pidfd (checked at every scan) */
    int pidfd_ok;     /* pidfd_open() works here (sbd_reaper_probe()) */
    int pidfd_errno;  /* the last pidfd_open() failure logged; 0: none */
    uint64_t reaped;  /* dead processes handled */
};

/* Ways of telling that a process died (sbd_reaper_probe()). */
enum sbd_reaper_method {
    SBD_REAP_PIDFD = 1, /* pidfd_open(): told at once, through epoll */
    SBD_REAP_PROC = 2   /* /proc/PID/stat: pid and start time, at every scan */
};

/* epoll data of a watched process: the proc pointer with this bit set. */
#define SBD_REAPER_TAG 1u

/* Which methods work in this process: pidfd_open() of our own pid, and
 * reading /proc/self/stat. @p pidfd_err and @p proc_err (may be NULL)
 * receive -errno of a method that fails, else 0. Without either, the
 * daemon must not run: kill(pid, 0) alone cannot tell a reused pid from
 * the process that died. Any thread. @return enum sbd_reaper_method bits. */
unsigned sbd_reaper_probe(int *pidfd_err, int *proc_err);

/* Set up, with a scan every @p interval_ms, registered in @p epfd under
 * @p timer_tag; without pidfds if sbd_reaper_probe() finds none.
 * @return 0 or -errno. */
int sbd_reaper_init(struct sbd_reaper *r, struct sbd_registry *reg, int epfd, uint32_t interval_ms,
                    void *timer_tag);

void sbd_reaper_fini(struct sbd_reaper *r);

/* Watch process @p pid started at @p start (a client said hello). */
void sbd_reaper_watch(struct sbd_reaper *r, pid_t pid, uint64_t start);

/* Is process @p pid (started at @p start) gone? @return 1 when sure: no
 * process has the pid, or its start time is another; 0 alive, or cannot
 * be told now (/proc unreadable and the pid exists): ask again later. */
int sbd_reaper_dead(pid_t pid, uint64_t start);

/* The scan timer fired. */
void sbd_reaper_tick(struct sbd_reaper *r);

/* A watched process's pidfd is readable (epoll data @p tagged). */
void sbd_reaper_event(struct sbd_reaper *r, void *tagged);

#endif
