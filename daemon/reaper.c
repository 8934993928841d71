/*
 * The reaper (reaper.h). Processes are identified by pid and start time;
 * the table maps a pid to the one process the daemon watches under it.
 * Work on the segments goes through admin.h, which acts only for processes
 * known to be dead.
 */
#include "reaper.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "registry/admin.h"
#include "util/proc.h"

#define REAPER_BUCKETS 1024u

struct sbd_proc {
    struct sbd_proc *next;
    pid_t pid;
    int pidfd;
    uint64_t start;
};

static int pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int sbd_reaper_dead(pid_t pid, uint64_t start)
{
    uint64_t now;
    int rc = sb_proc_start_get(pid, &now);

    if (rc == 0)
        return 1; /* no such process */
    if (rc < 0 || start == 0)
        return 0;        /* cannot tell (our own descriptors, /proc), or no start
                            time recorded: alive while the pid exists */
    return now != start; /* another start time: the pid was reused */
}

int sbd_reaper_init(struct sbd_reaper *r, struct sbd_registry *reg, int epfd, uint32_t interval_ms,
                    void *timer_tag)
{
    struct itimerspec its = {
        .it_interval = {.tv_sec = interval_ms / 1000,
                        .tv_nsec = (long)(interval_ms % 1000) * 1000000},
    };
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = timer_tag};

    memset(r, 0, sizeof(*r));
    r->reg = reg;
    r->epfd = epfd;
    r->nbuckets = REAPER_BUCKETS;
    r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
    if (r->buckets == NULL)
        return -ENOMEM;
    its.it_value = its.it_interval;
    r->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (r->timerfd < 0 || timerfd_settime(r->timerfd, 0, &its, NULL) < 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, r->timerfd, &ev) < 0) {
        int rc = -errno;

        sbd_reaper_fini(r);
        return rc;
    }
    return 0;
}

void sbd_reaper_fini(struct sbd_reaper *r)
{
    for (uint32_t b = 0; b < r->nbuckets && r->buckets != NULL; b++) {
        while (r->buckets[b] != NULL) {
            struct sbd_proc *p = r->buckets[b];

            r->buckets[b] = p->next;
            close(p->pidfd);
            free(p);
        }
    }
    free(r->buckets);
    if (r->timerfd > 0)
        close(r->timerfd);
    memset(r, 0, sizeof(*r));
}

static struct sbd_proc **proc_slot(struct sbd_reaper *r, pid_t pid)
{
    struct sbd_proc **pp = &r->buckets[(uint32_t)pid % r->nbuckets];

    while (*pp != NULL && (*pp)->pid != pid)
        pp = &(*pp)->next;
    return pp;
}

/* Start watching: @return 1 watched (alive), 0 already dead. */
static int proc_add(struct sbd_reaper *r, pid_t pid, uint64_t start)
{
    struct epoll_event ev = {.events = EPOLLIN};
    struct sbd_proc *p;
    int fd = pidfd_open(pid);

    if (fd < 0)
        return errno == ESRCH ? 0 : 1; /* not ours to judge (EMFILE...): next scan */
    /* The pidfd names whoever has the pid now: the process we mean only if
     * its start time is the one recorded. */
    if (sbd_reaper_dead(pid, start) || (p = calloc(1, sizeof(*p))) == NULL) {
        int dead = sbd_reaper_dead(pid, start);

        close(fd);
        return !dead;
    }
    *p = (struct sbd_proc){.pid = pid, .pidfd = fd, .start = start};
    ev.data.ptr = (void *)((uintptr_t)p | SBD_REAPER_TAG);
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        free(p);
        return 1;
    }
    p->next = *proc_slot(r, pid);
    *proc_slot(r, pid) = p;
    r->nprocs++;
    return 1;
}

void sbd_reaper_watch(struct sbd_reaper *r, pid_t pid, uint64_t start)
{
    struct sbd_proc *p = *proc_slot(r, pid);

    if (p != NULL && p->start == start)
        return;
    proc_add(r, pid, start);
}

/* End what the DEAD record @p i of @p t left open, if nothing holds it up. */
static void pub_settle(struct sbd_topic *t, uint32_t i)
{
    if (sb_admin_pub_settle(t->t, i))
        sbd_log(SBD_INFO, "topic %s: a dead publisher's claim ended", t->name);
}

/* Take back what process (@p pid, @p start) held in topic @p t. */
static void reap_topic(struct sbd_reaper *r, struct sbd_topic *t, pid_t pid, uint64_t start)
{
    uint32_t opid;
    uint64_t ostart;

    for (uint32_t i = 0; i < t->info.max_subscribers && !sbd_topic_broken(t); i++)
        if (sb_admin_owner(t->t, SB_ADMIN_SLOT, i, &opid, &ostart) && (pid_t)opid == pid &&
            ostart == start)
            sbd_slot_reap(r->reg, t, i);
    for (uint32_t i = 0; i < t->info.max_publishers && !sbd_topic_broken(t); i++) {
        if (!sb_admin_owner(t->t, SB_ADMIN_PUB, i, &opid, &ostart) || (pid_t)opid != pid ||
            ostart != start)
            continue;
        /* Marked in the segment, so the scan (or a later daemon) retries
         * what cannot be ended yet. */
        if (sb_admin_pub_dead(t->t, i))
            pub_settle(t, i);
    }
}

/* Process (@p pid, @p start) is dead: reap it everywhere. */
static void reap(struct sbd_reaper *r, pid_t pid, uint64_t start)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;

    r->reaped++;
    sbd_log(SBD_INFO, "process %d died: reaping its slots and claims", (int)pid);
    urcu_memb_read_lock();
    cds_lfht_for_each(r->reg->topics, &it, n) reap_topic(r, sbd_topic_of(n), pid, start);
    urcu_memb_read_unlock();
}

static void proc_remove(struct sbd_reaper *r, struct sbd_proc *p)
{
    struct sbd_proc **pp = &r->buckets[(uint32_t)p->pid % r->nbuckets];

    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    close(p->pidfd); /* leaves the epoll set with it */
    free(p);
    r->nprocs--;
}

void sbd_reaper_event(struct sbd_reaper *r, void *tagged)
{
    struct sbd_proc *p = (struct sbd_proc *)((uintptr_t)tagged & ~(uintptr_t)SBD_REAPER_TAG);
    pid_t pid = p->pid;
    uint64_t start = p->start;

    proc_remove(r, p);
    reap(r, pid, start);
}

/* Is the owner (@p pid, @p start) known alive, or can it be watched now?
 * @return 0 when it is dead. */
static int owner_check(struct sbd_reaper *r, pid_t pid, uint64_t start)
{
    struct sbd_proc *p = *proc_slot(r, pid);

    if (p != NULL && p->start == start)
        return 1;
    if (p != NULL)
        return !sbd_reaper_dead(pid, start); /* another process with this pid is watched */
    return proc_add(r, pid, start);
}

/* A client truncated the segment of @p t (guard.h): stop serving it. */
static void topic_broken(struct sbd_topic *t)
{
    sbd_log(SBD_ERROR, "topic %s: a client truncated segment %s: removing it", t->name, t->seg);
    shmbus_topic_unlink(t->seg);
    /* relaxed: a flag (sbd_topic_broken()). */
    atomic_store_explicit(&t->broken, 2, memory_order_relaxed);
}

/* Find owners the reaper does not watch yet in topic @p t; reap the dead. */
static void scan_topic(struct sbd_reaper *r, struct sbd_topic *t)
{
    uint32_t pid;
    uint64_t start;

    if (sbd_topic_broken(t) == 1)
        topic_broken(t);
    if (sbd_topic_broken(t))
        return;
    for (uint32_t i = 0; i < t->info.max_subscribers && !sbd_topic_broken(t); i++)
        if (sb_admin_owner(t->t, SB_ADMIN_SLOT, i, &pid, &start) &&
            !owner_check(r, (pid_t)pid, start))
            reap_topic(r, t, (pid_t)pid, start);
    for (uint32_t i = 0; i < t->info.max_publishers && !sbd_topic_broken(t); i++) {
        if (sb_admin_pub_is_dead(t->t, i))
            pub_settle(t, i); /* a retry, or left by a daemon before us */
        else if (sb_admin_owner(t->t, SB_ADMIN_PUB, i, &pid, &start) &&
                 !owner_check(r, (pid_t)pid, start))
            reap_topic(r, t, (pid_t)pid, start);
    }
    if (!sbd_topic_broken(t))
        sb_admin_groups_reconcile(t->t);
}

void sbd_reaper_tick(struct sbd_reaper *r)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    uint64_t expirations;

    if (read(r->timerfd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
        return;
    urcu_memb_read_lock();
    cds_lfht_for_each(r->reg->topics, &it, n) scan_topic(r, sbd_topic_of(n));
    urcu_memb_read_unlock();
    sbd_registry_retry(r->reg);
}
