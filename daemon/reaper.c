/*
 * The reaper (reaper.h). Processes are identified by pid and start time;
 * the table maps a pid to the one process the daemon watches under it,
 * through a pidfd in the control loop's epoll set, or, where no pidfd can
 * be had (a sandbox forbids pidfd_open(), descriptors run out), by a look
 * at /proc at every scan. Work on the segments goes through admin.h, which
 * acts only for processes known to be dead.
 */
#include "reaper.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "stall.h"
#include "registry/admin.h"
#include "util/clock.h"
#include "util/proc.h"

#define REAPER_BUCKETS 1024u

struct sbd_proc {
    struct sbd_proc *next;
    pid_t pid;
    int pidfd; /* -1: none; checked in /proc at every scan (procs_poll()) */
    uint64_t start;
};

/* proc_pidfd(): no process has the pid. */
#define PIDFD_NO_PROCESS (-2)

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
    /* /proc cannot be read now (our descriptors, hidepid, not mounted):
     * only "no process has this pid" is sure; the caller asks again. */
    if (rc < 0)
        return kill(pid, 0) < 0 && errno == ESRCH;
    if (start == 0)
        return 0;        /* no start time recorded: alive while the pid exists */
    return now != start; /* another start time: the pid was reused */
}

unsigned sbd_reaper_probe(int *pidfd_err, int *proc_err)
{
    unsigned methods = 0;
    uint64_t start;
    int fd = pidfd_open(getpid()), rc;

    if (pidfd_err != NULL)
        *pidfd_err = fd < 0 ? -errno : 0;
    if (fd >= 0) {
        close(fd);
        methods |= SBD_REAP_PIDFD;
    }
    rc = sb_proc_start_get(getpid(), &start);
    if (proc_err != NULL)
        *proc_err = rc > 0 ? 0 : rc < 0 ? rc : -ENOENT;
    if (rc > 0)
        methods |= SBD_REAP_PROC;
    return methods;
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
    /* Without pidfds (forbidden here), every process is looked up in
     * /proc at every scan. */
    r->pidfd_ok = (sbd_reaper_probe(NULL, NULL) & SBD_REAP_PIDFD) != 0;
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
            if (p->pidfd >= 0)
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

/* pidfd_open(@p pid) failed with @p err: say so once per kind of failure,
 * not at every scan. */
static void pidfd_failed(struct sbd_reaper *r, pid_t pid, int err)
{
    if (err == r->pidfd_errno)
        return; /* said already */
    r->pidfd_errno = err;
    sbd_log(SBD_WARN,
            "cannot watch process %d with a pidfd (%s): falling back to a look at /proc at "
            "every scan for the processes without one",
            (int)pid, strerror(err));
}

/* A pidfd for @p pid, if pidfds work here. @return it; -1 when there is
 * none (the caller checks /proc instead); PIDFD_NO_PROCESS. */
static int proc_pidfd(struct sbd_reaper *r, pid_t pid)
{
    int fd;

    if (!r->pidfd_ok)
        return -1; /* forbidden here (sbd_reaper_probe()): not even tried */
    fd = pidfd_open(pid);
    if (fd >= 0)
        return fd;
    if (errno == ESRCH)
        return PIDFD_NO_PROCESS;
    pidfd_failed(r, pid, errno);
    return -1;
}

/* Watch @p p through @p fd, its pidfd, in the control loop. @return 0, or
 * -1 (@p fd closed): @p p stays without one. */
static int proc_arm(struct sbd_reaper *r, struct sbd_proc *p, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.ptr = (void *)((uintptr_t)p | SBD_REAPER_TAG)};

    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        return -1;
    }
    p->pidfd = fd;
    return 0;
}

/* Start watching: through a pidfd, else by a look at /proc at every scan.
 * @return 1 alive (watched, or checked again at the next scan), 0 dead. */
static int proc_add(struct sbd_reaper *r, pid_t pid, uint64_t start)
{
    struct sbd_proc *p;
    int fd = proc_pidfd(r, pid);

    if (fd == PIDFD_NO_PROCESS)
        return 0;
    /* The pidfd names whoever has the pid now: the process we mean only if
     * its start time is the one recorded. */
    if (sbd_reaper_dead(pid, start)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        if (fd >= 0)
            close(fd);
        return 1; /* not watched: a slot owner is asked about again at the next scan */
    }
    *p = (struct sbd_proc){.pid = pid, .pidfd = -1, .start = start};
    if (fd < 0 || proc_arm(r, p, fd) < 0)
        r->npolled++;
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
    if (p->pidfd >= 0)
        close(p->pidfd); /* leaves the epoll set with it */
    else
        r->npolled--;
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

/* Find owners the reaper does not watch yet in topic @p t; reap the dead;
 * then enforce its stall timeout (stall.h) at monotonic @p now_ms. */
static void scan_topic(struct sbd_reaper *r, struct sbd_topic *t, int64_t now_ms)
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
    if (sbd_topic_broken(t))
        return;
    sb_admin_groups_reconcile(t->t);
    sbd_stall_scan(t, now_ms);
}

/* Look at process @p p, watched without a pidfd: reap it if /proc says it
 * is dead; else watch it through a pidfd if one can be had now. A check
 * that cannot tell leaves it for the next scan. */
static void proc_poll(struct sbd_reaper *r, struct sbd_proc *p)
{
    pid_t pid = p->pid;
    uint64_t start = p->start;
    int fd = proc_pidfd(r, pid);

    if (fd != PIDFD_NO_PROCESS && !sbd_reaper_dead(pid, start)) {
        if (fd >= 0 && proc_arm(r, p, fd) == 0)
            r->npolled--;
        return;
    }
    if (fd >= 0)
        close(fd);
    proc_remove(r, p); /* never in the epoll set: no event of it is pending */
    reap(r, pid, start);
}

/* Check every process watched without a pidfd. Before the segments are
 * scanned, so that an owner found in the table is alive as of this scan. */
static void procs_poll(struct sbd_reaper *r)
{
    for (uint32_t b = 0; b < r->nbuckets && r->npolled > 0; b++) {
        struct sbd_proc *p = r->buckets[b], *next;

        for (; p != NULL; p = next) {
            next = p->next;
            if (p->pidfd < 0)
                proc_poll(r, p);
        }
    }
}

void sbd_reaper_tick(struct sbd_reaper *r)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    uint64_t expirations;
    int64_t now_ms;

    if (read(r->timerfd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
        return;
    procs_poll(r);
    now_ms = (int64_t)(sb_mono_ns() / 1000000u);
    urcu_memb_read_lock();
    cds_lfht_for_each(r->reg->topics, &it, n) scan_topic(r, sbd_topic_of(n), now_ms);
    urcu_memb_read_unlock();
    sbd_registry_retry(r->reg);
}
