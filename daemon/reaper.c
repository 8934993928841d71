/*
 * The reaper (reaper.h). Processes are identified by pid and start time;
 * the table maps a pid to the one process the daemon watches under it,
 * through a pidfd in the control loop's epoll set, or, where no pidfd can
 * be had (a sandbox forbids pidfd_open(), descriptors run out), by a look
 * at /proc at every scan. Work on the segments goes through admin.h, which
 * acts only for processes known to be dead.
 *
 * The scan is a pass over every topic, one slot, record or group at a time
 * (a step: a bounded amount of work whatever the segment holds), run in
 * slices of SBD_REAPER_SLICE_NS: the control loop runs the next slice
 * whenever it has no event waiting, so a control call waits for one slice
 * at most, however large the bus. A pass starts at each tick once the last
 * one is done, and at once after a death, which the pass reaps: a process
 * known dead stays in the table, marked, so that every slot and record
 * naming it is found dead at once, until a pass that began after its
 * death has been everywhere.
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
    int pidfd; /* -1: none; checked in /proc at every pass (poll_step()) */
    uint64_t start;
    /* The topic whose slot or record named it first, which counts it in
     * its procs; NULL: watched for a client's hello. */
    struct sbd_topic *topic;
    /* Dead: kept (without a pidfd) so that the passes know it at once,
     * on the reaper's list of the dead, until a pass begun after its
     * death (dead_pass: the pass under way, or the last, when it died)
     * has finished. */
    int dead;
    uint32_t dead_pass;
    struct sbd_proc *dead_next;
};

/* The steps of a topic's scan, in order (topic_step()). */
enum scan_phase {
    PH_SLOTS,     /* dead slot owners: reaped */
    PH_PUBS,      /* dead publishers: records marked, claims ended */
    PH_RECONCILE, /* groups counted without members (admin.h) */
    PH_CLAIMS,    /* stall timeouts (stall.h): claims first */
    PH_GATES,
    PH_GROUPS,
    PH_DONE
};

static void pass_begin(struct sbd_reaper *r);

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

/* Start watching, for topic @p t (NULL: a client's hello): through a
 * pidfd, else by a look at /proc at every scan. @return 1 alive (watched,
 * or checked again at the next scan), 0 dead. */
static int proc_add(struct sbd_reaper *r, pid_t pid, uint64_t start, struct sbd_topic *t)
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
    *p = (struct sbd_proc){.pid = pid, .pidfd = -1, .start = start, .topic = t};
    if (fd < 0 || proc_arm(r, p, fd) < 0)
        r->npolled++;
    if (t != NULL)
        t->procs++;
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
    proc_add(r, pid, start, NULL);
}

/* End what the DEAD record @p i of @p t left open, if nothing holds it up. */
static void pub_settle(struct sbd_topic *t, uint32_t i)
{
    if (sb_admin_pub_settle(t->t, i))
        sbd_log(SBD_INFO, "topic %s: a dead publisher's claim ended", t->name);
}

/* Start a pass now if none is under way; else the next one at once when
 * it ends. */
static void pass_request(struct sbd_reaper *r)
{
    if (r->active)
        r->again = 1;
    else
        pass_begin(r);
}

/* Process @p p is dead: keep it, marked, on the list of the dead, so that
 * the passes reap what it owns everywhere. */
static void reap(struct sbd_reaper *r, struct sbd_proc *p)
{
    r->reaped++;
    sbd_log(SBD_INFO, "process %d died: reaping its slots and claims", (int)p->pid);
    if (p->pidfd >= 0)
        close(p->pidfd); /* leaves the epoll set with it */
    else
        r->npolled--;
    p->pidfd = -1;
    p->dead = 1;
    p->dead_pass = r->pass;
    p->dead_next = r->dead;
    r->dead = p;
    pass_request(r);
}

/* Drop dead process @p p from the table (its pidfd is closed already). */
static void proc_remove(struct sbd_reaper *r, struct sbd_proc *p)
{
    struct sbd_proc **pp = &r->buckets[(uint32_t)p->pid % r->nbuckets];

    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    if (p->topic != NULL)
        p->topic->procs--;
    free(p);
    r->nprocs--;
}

/* Pass @p r->pass ended: drop the dead it has reaped everywhere (those
 * that died before it began). */
static void dead_forget(struct sbd_reaper *r)
{
    struct sbd_proc **pp = &r->dead;

    while (*pp != NULL) {
        struct sbd_proc *p = *pp;

        if (p->dead_pass >= r->pass) {
            pp = &p->dead_next;
            continue; /* died during this pass: the next one reaps it */
        }
        *pp = p->dead_next;
        proc_remove(r, p);
    }
}

void sbd_reaper_event(struct sbd_reaper *r, void *tagged)
{
    struct sbd_proc *p = (struct sbd_proc *)((uintptr_t)tagged & ~(uintptr_t)SBD_REAPER_TAG);

    reap(r, p);
    /* At once rather than after the other events: readers waiting at its
     * claim, and publishers it gated, go on within the slice. */
    sbd_reaper_slice(r);
}

/* Is the owner (@p pid, @p start) named in topic @p t known alive, or can
 * it be watched now? A topic has at most SBD_REAPER_PROCS_PER_TOPIC
 * processes watched for it: a segment scribbled with thousands of pids
 * costs a look at /proc per slot per pass beyond that, bounded by the
 * slices, and never a descriptor. @return 0 when it is dead. */
static int owner_check(struct sbd_reaper *r, struct sbd_topic *t, pid_t pid, uint64_t start)
{
    struct sbd_proc *p;

    if (pid <= 0)
        return 0; /* no process has such a pid */
    p = *proc_slot(r, pid);
    if (p != NULL && p->start == start)
        return !p->dead;
    if (p != NULL)
        return !sbd_reaper_dead(pid, start); /* another process with this pid is watched */
    if (t->procs >= SBD_REAPER_PROCS_PER_TOPIC) {
        if (!t->procs_full) {
            t->procs_full = 1;
            sbd_log(SBD_WARN,
                    "topic %s: its slots and records name more than %u live processes: "
                    "the others are looked up in /proc at every scan",
                    t->name, SBD_REAPER_PROCS_PER_TOPIC);
        }
        return !sbd_reaper_dead(pid, start);
    }
    return proc_add(r, pid, start, t);
}

/* A client truncated the segment of @p t (guard.h): stop serving it. */
static void topic_broken(struct sbd_topic *t)
{
    sbd_log(SBD_ERROR, "topic %s: a client truncated segment %s: removing it", t->name, t->seg);
    shmbus_topic_unlink(t->seg);
    /* relaxed: a flag (sbd_topic_broken()). */
    atomic_store_explicit(&t->broken, 2, memory_order_relaxed);
}

/* Slot @p i of @p t: reap it if its owner is dead; else note the group
 * it is a member of, which the reconcile step then leaves alone. */
static void slot_check(struct sbd_reaper *r, struct sbd_topic *t, uint32_t i)
{
    uint32_t pid, g;
    uint64_t start;

    if (sb_admin_owner(t->t, SB_ADMIN_SLOT, i, &pid, &start) &&
        !owner_check(r, t, (pid_t)pid, start)) {
        sbd_slot_reap(r->reg, t, i);
        return;
    }
    g = sb_admin_slot_member(t->t, i);
    if (g != 0)
        r->busy[(g - 1) / 64] |= 1ull << ((g - 1) % 64);
}

/* Record @p i of @p t: end a DEAD one's claim (a retry, or left by a
 * daemon before us); mark it DEAD and end its claim if its owner died. */
static void pub_check(struct sbd_reaper *r, struct sbd_topic *t, uint32_t i)
{
    uint32_t pid;
    uint64_t start;

    if (sb_admin_pub_is_dead(t->t, i))
        pub_settle(t, i);
    else if (sb_admin_owner(t->t, SB_ADMIN_PUB, i, &pid, &start) &&
             !owner_check(r, t, (pid_t)pid, start) && sb_admin_pub_dead(t->t, i))
        pub_settle(t, i);
}

/* The items of phase @p ph of @p t; 0 when it is skipped. */
static uint32_t phase_items(const struct sbd_topic *t, enum scan_phase ph)
{
    switch (ph) {
    case PH_SLOTS:
        return t->info.max_subscribers;
    case PH_PUBS:
        return t->info.max_publishers;
    case PH_RECONCILE:
        return 1;
    case PH_CLAIMS:
        return sbd_stall_claims(t) ? t->info.max_publishers : 0;
    case PH_GATES:
        return sbd_stall_gates(t) ? t->info.max_subscribers : 0;
    case PH_GROUPS:
        return sbd_stall_gates(t) ? t->info.max_groups : 0;
    default:
        return 0;
    }
}

/* Item @p i of phase @p ph of @p t, at monotonic @p now_ms. */
static void phase_item(struct sbd_reaper *r, struct sbd_topic *t, enum scan_phase ph, uint32_t i,
                       int64_t now_ms)
{
    shmbus_topic_info info;

    switch (ph) {
    case PH_SLOTS:
        slot_check(r, t, i);
        break;
    case PH_PUBS:
        pub_check(r, t, i);
        break;
    case PH_RECONCILE:
        sb_admin_groups_reconcile_except(t->t, r->busy);
        /* The tail, a line every publish writes, is read once per pass,
         * and only for a topic whose gates have a stall timeout. */
        if (sbd_stall_gates(t)) {
            shmbus_topic_info_get(t->t, &info);
            r->tail = info.published;
        }
        break;
    case PH_CLAIMS:
        sbd_stall_claim(t, i, now_ms);
        break;
    case PH_GATES:
        sbd_stall_slot(t, i, r->tail, now_ms);
        break;
    case PH_GROUPS:
        sbd_stall_group(t, i, r->tail, now_ms);
        break;
    default:
        break;
    }
}

/* One step of the scan of topic @p t: the next item of the current phase.
 * @return 1 when the topic is done for this pass. */
static int topic_step(struct sbd_reaper *r, struct sbd_topic *t, int64_t now_ms)
{
    if (sbd_topic_broken(t) == 1)
        topic_broken(t);
    if (sbd_topic_broken(t))
        return 1; /* not served any more: nothing to scan */
    while (r->phase < PH_DONE && r->idx >= phase_items(t, r->phase)) {
        r->phase++;
        r->idx = 0;
    }
    if (r->phase == PH_DONE)
        return 1;
    phase_item(r, t, r->phase, r->idx++, now_ms);
    return 0;
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
    reap(r, p); /* never in the epoll set: no event of it is pending */
}

/* One step of the look at the processes watched without a pidfd: the
 * next bucket. Before the segments are scanned, so that an owner found in
 * the table is alive as of this pass. @return 1 when every bucket is done. */
static int poll_step(struct sbd_reaper *r)
{
    struct sbd_proc *p, *next;

    if (r->npolled == 0 || r->poll_bucket >= r->nbuckets)
        return 1;
    for (p = r->buckets[r->poll_bucket++]; p != NULL; p = next) {
        next = p->next;
        if (p->pidfd < 0 && !p->dead)
            proc_poll(r, p);
    }
    return 0;
}

static void pass_begin(struct sbd_reaper *r)
{
    r->pass++;
    r->active = 1;
    r->again = 0;
    r->poll_bucket = 0;
    r->cur = NULL;
    r->walking = 0;
}

/* The next topic of this pass, or NULL when it has been everywhere. Topics
 * are never removed while the daemon runs, so the iterator stays valid
 * from one slice to the next; one created behind it waits for the next
 * pass. Call with urcu_memb_read_lock held. */
static struct sbd_topic *pass_next_topic(struct sbd_reaper *r)
{
    struct cds_lfht_node *n;

    if (!r->walking)
        cds_lfht_first(r->reg->topics, &r->it);
    else
        cds_lfht_next(r->reg->topics, &r->it);
    r->walking = 1;
    n = cds_lfht_iter_get_node(&r->it);
    return n != NULL ? sbd_topic_of(n) : NULL;
}

/* The pass is over: forget the dead it reaped; start the next at once if
 * a death asked for it. */
static void pass_end(struct sbd_reaper *r)
{
    r->active = 0;
    r->passes++;
    dead_forget(r);
    if (r->again)
        pass_begin(r);
}

/* Steps between two looks at the clock: a step is often a load or two,
 * and the clock costs more. */
#define SLICE_CLOCK_STEPS 32u

/* Is the slice begun at @p t0 (ns) over, after its @p steps-th step? */
static int slice_over(uint64_t t0, uint32_t steps)
{
    return steps % SLICE_CLOCK_STEPS == 0 && sb_mono_ns() - t0 >= SBD_REAPER_SLICE_NS;
}

void sbd_reaper_slice(struct sbd_reaper *r)
{
    uint64_t t0 = sb_mono_ns();
    int64_t now_ms = (int64_t)(t0 / 1000000u);
    uint32_t steps = 0;

    r->slices++;
    while (r->active && !poll_step(r))
        if (slice_over(t0, ++steps))
            return;
    urcu_memb_read_lock();
    while (r->active) {
        if (r->cur == NULL) {
            r->cur = pass_next_topic(r);
            r->phase = PH_SLOTS;
            r->idx = 0;
            memset(r->busy, 0, sizeof(r->busy));
            if (r->cur == NULL) {
                pass_end(r);
                break; /* a pass asked for by a death starts at the next slice */
            }
        }
        if (topic_step(r, r->cur, now_ms))
            r->cur = NULL;
        if (slice_over(t0, ++steps))
            break;
    }
    urcu_memb_read_unlock();
}

void sbd_reaper_pass(struct sbd_reaper *r)
{
    pass_request(r);
}

int sbd_reaper_busy(const struct sbd_reaper *r)
{
    return r->active;
}

void sbd_reaper_tick(struct sbd_reaper *r)
{
    uint64_t expirations;

    if (read(r->timerfd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
        return;
    sbd_registry_retry(r->reg);
    if (!r->active)
        pass_begin(r);
    sbd_reaper_slice(r);
}
