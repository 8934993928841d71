/* SPDX-License-Identifier: Apache-2.0 */
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
 *
 * The periodic scan of the segments is done in passes, each cut into
 * slices of about SBD_REAPER_SLICE_NS (the clock is read after every
 * costly step and every 32 cheap ones; a step is one slot, record,
 * group or dead letter, a bounded amount of work whatever the segment
 * holds). The control
 * loop runs at most one slice after each batch of events, when it is due
 * (sbd_reaper_wait_ms(), sbd_reaper_run()): a slice that took d of the
 * thread's CPU time is followed by SBD_REAPER_IDLE_FACTOR x d without one
 * (at most SBD_REAPER_IDLE_MAX_NS), so the scan takes at most a tenth of a
 * core on any bus; while a dead process waits for the walk, by
 * SBD_REAPER_IDLE_FACTOR_DEAD x d, at most half a core, until the walk has
 * been everywhere once. A
 * topic watches at most SBD_REAPER_PROCS_PER_TOPIC processes for owners
 * its segment names. Control thread only.
 */
#ifndef SHMBUSD_REAPER_H
#define SHMBUSD_REAPER_H

#include <stdint.h>
#include <sys/types.h>

#include "registry.h"
#include "registry/admin.h"

struct sbd_proc;

/* A slice of a scan pass ends at the first look at the clock past this. */
#define SBD_REAPER_SLICE_NS 1000000u
/* The clock is read once the cost of the steps since the last read reaches
 * this: a cheap step costs 1, a costly one all of it. Between two reads, a
 * slice runs at most 2 x SBD_REAPER_CLOCK_STEPS - 1 of cost (31 cheap
 * steps and a costly one). */
#define SBD_REAPER_CLOCK_STEPS 32u
/* Idle time after a slice, in multiples of the slice's own CPU time (with
 * nobody dead waiting): the scan's share of a core is at most 1/(1 + it). */
#define SBD_REAPER_IDLE_FACTOR 9u
/* The same while a dead process waits for the walk: at most half a core. */
#define SBD_REAPER_IDLE_FACTOR_DEAD 1u
/* Idle time after a slice is at most this, however long the slice took. */
#define SBD_REAPER_IDLE_MAX_NS (50u * 1000000u)
/* Most processes watched (a pidfd each, or a look at /proc at every pass)
 * for the owners one topic's segment names; clients' hellos do not count. */
#define SBD_REAPER_PROCS_PER_TOPIC 64u

struct sbd_reaper {
    struct sbd_registry *reg;
    int epfd;    /* the control loop's epoll: pidfds are added to it */
    int timerfd; /* the periodic scan */
    struct sbd_proc **buckets;
    uint32_t nbuckets, nprocs;
    uint32_t npolled; /* of nprocs, those without a pidfd (checked at every scan) */
    int pidfd_ok;     /* pidfd_open() works here (sbd_reaper_probe()) */
    /* Pidfds open for owners segments name (not clients' hellos), at most
     * what the descriptor limit leaves (config.h sbd_config_fds()); that
     * budget reached was logged (said again once it is not). */
    uint64_t npidfds;
    int budget_said;
    int pidfd_errno; /* the last pidfd_open() failure logged; 0: none */
    uint64_t reaped; /* dead processes handled */
    /* Dead processes the walk reaps, still in the table, in order of
     * death (reaper.c): the list and the link to append at. */
    struct sbd_proc *dead, **dead_tail;
    /* The scan: pass number (the current one, or the last), whether one
     * is under way, topics it has finished; when the next slice is due
     * (monotonic ns; 0: now); CPU time spent in slices. */
    uint64_t pass;
    int active;
    uint32_t topics_done;
    uint64_t next_ns, busy_ns;
    /* The most step cost run between two looks at the clock in any slice
     * (at most 2 x SBD_REAPER_CLOCK_STEPS - 1: the segment fuzzer checks
     * it). */
    uint32_t gap_max;
    /* Where the pass stands: the bucket of processes without a pidfd to
     * look at next; the walk through the topic table (begun or not), and
     * the name of the topic it is at, by which each slice finds its place
     * again; the topic being scanned (NULL: between topics), its phase
     * and item; its tail read for the stall gates. */
    uint32_t poll_bucket;
    struct cds_lfht_iter it;
    int walking;
    char at[SHMBUS_TOPIC_NAME_MAX + 1];
    struct sbd_topic *cur;
    uint32_t phase, idx;
    uint64_t tail;
    /* Where the dead-letter phase stands in the topic's pending tables
     * (deadletter.h sbd_dl_step()). */
    uint32_t dl_pos;
    /* Groups of the topic a member slot in use was seen in, by the slot
     * phase, for the reconcile step (admin.h). */
    uint64_t busy[(SB_ADMIN_GROUPS_MAX + 63) / 64];
    uint64_t passes, slices; /* finished passes, slices run */
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
 * @p timer_tag; without pidfds if sbd_reaper_probe() finds none. The
 * owners segments name get pidfds only as far as RLIMIT_NOFILE, read at
 * each, leaves beyond sbd_config_fds(). @return 0 or -errno. */
int sbd_reaper_init(struct sbd_reaper *r, struct sbd_registry *reg, int epfd, uint32_t interval_ms,
                    void *timer_tag);

void sbd_reaper_fini(struct sbd_reaper *r);

/* Watch process @p pid started at @p start (a client said hello). */
void sbd_reaper_watch(struct sbd_reaper *r, pid_t pid, uint64_t start);

/* Is process @p pid (started at @p start) gone? @return 1 when sure: no
 * process has the pid, or its start time is another; 0 alive, or cannot
 * be told now (/proc unreadable and the pid exists): ask again later. */
int sbd_reaper_dead(pid_t pid, uint64_t start);

/* sbd_reaper_dead(), but first the table: a process whose pidfd said it
 * died is dead, though /proc still shows it until its parent waits for it
 * (a session closed in the batch of events that told its death, before
 * the slice that reaps it). */
int sbd_reaper_gone(struct sbd_reaper *r, pid_t pid, uint64_t start);

/* The scan timer fired: retry pending adoptions, and start a pass if none
 * is under way (its first slice is due at once). */
void sbd_reaper_tick(struct sbd_reaper *r);

/* Run the next slice of the pass under way, if any, due or not. */
void sbd_reaper_slice(struct sbd_reaper *r);

/* Run the next slice if one is due (the control loop, after each batch of
 * events). */
void sbd_reaper_run(struct sbd_reaper *r);

/* How long the control loop may wait for events before the next slice is
 * due: ms (rounded up), 0 when it is due, -1 when no pass is under way. */
int sbd_reaper_wait_ms(const struct sbd_reaper *r);

/* Start a pass now if none is under way, with its next slice due at once
 * (the segment fuzzer, fuzz/fuzz_segment.c, and the bench drive passes
 * with it). */
void sbd_reaper_pass(struct sbd_reaper *r);

/* Is a pass under way? */
int sbd_reaper_busy(const struct sbd_reaper *r);

/* A watched process's pidfd is readable (epoll data @p tagged): mark it
 * dead; the next slice, due at once, starts reaping it. */
void sbd_reaper_event(struct sbd_reaper *r, void *tagged);

#endif
