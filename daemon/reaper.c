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
 * slices of about SBD_REAPER_SLICE_NS, each followed by
 * SBD_REAPER_IDLE_FACTOR times its own CPU time without one. A pass starts
 * at a tick once the last one is done, and at once after a death if none
 * is under way. A process known dead stays in the table, marked, so that
 * every slot and record naming it is found dead at once, and the slices
 * run at SBD_REAPER_IDLE_FACTOR_DEAD (half a core) until the walk has been
 * everywhere once since the death: the rest of the pass under way, then
 * the next one as far as where the walk was at the death.
 */
#include "reaper.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "stall.h"
#include "registry/admin.h"
#include "util/clock.h"
#include "util/proc.h"

#define REAPER_BUCKETS 1024u

/* A step's cost, against SBD_REAPER_CLOCK_STEPS: the clock is read once
 * the steps since the last read add up to that, so after every costly
 * step. A cheap step is a load or two and a table lookup; the clock costs
 * more. */
#define STEP_CHEAP  1u
#define STEP_COSTLY SBD_REAPER_CLOCK_STEPS

struct sbd_proc {
    struct sbd_proc *next;
    pid_t pid;
    int pidfd; /* -1: none; checked in /proc at every pass (poll_step()) */
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

static struct sbd_proc **proc_slot(struct sbd_reaper *r, pid_t pid);

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

int sbd_reaper_gone(struct sbd_reaper *r, pid_t pid, uint64_t start)
{
    struct sbd_proc *p = *proc_slot(r, pid);

    if (p != NULL && p->start == start && p->dead)
        return 1; /* told by its pidfd; a zombie in /proc until waited for */
    return sbd_reaper_dead(pid, start);
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
    r->dead_tail = &r->dead;
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

/* Pidfds the descriptor limit leaves for the owners segments name: the
 * limit now (prlimit may change it), less what the daemon's limits need. */
static uint64_t pidfd_room(const struct sbd_reaper *r)
{
    uint64_t need = sbd_config_fds(r->reg->cfg);
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX; /* no limit known: pidfd_open() says when */
    return rl.rlim_cur > need ? (uint64_t)rl.rlim_cur - need : 0;
}

/* May another owner a segment names (@p t not NULL) have a pidfd? Not
 * beyond pidfd_room(); reached, that is said once, and again after it
 * has had room. */
static int pidfd_budget(struct sbd_reaper *r, const struct sbd_topic *t)
{
    uint64_t room;

    if (t == NULL)
        return 1; /* a client's hello: counted in sbd_config_fds() */
    room = pidfd_room(r);
    if (r->npidfds < room) {
        if (r->npidfds < room / 2)
            r->budget_said = 0;
        return 1;
    }
    if (!r->budget_said) {
        r->budget_said = 1;
        sbd_log(SBD_WARN,
                "%llu pidfds open for processes segments name, all the descriptor limit "
                "leaves: the others are looked up in /proc at every scan",
                (unsigned long long)r->npidfds);
    }
    return 0;
}

/* A pidfd for @p pid, if pidfds work here and, for an owner topic @p t
 * names (NULL: a client's hello), the budget allows. @return it; -1 when
 * there is none (the caller checks /proc instead); PIDFD_NO_PROCESS. */
static int proc_pidfd(struct sbd_reaper *r, pid_t pid, const struct sbd_topic *t)
{
    int fd;

    if (!r->pidfd_ok)
        return -1; /* forbidden here (sbd_reaper_probe()): not even tried */
    if (!pidfd_budget(r, t))
        return -1; /* the descriptors are the clients' and topics' */
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
    r->npidfds += p->topic != NULL;
    return 0;
}

/* Start watching, for topic @p t (NULL: a client's hello): through a
 * pidfd, else by a look at /proc at every scan. @return 1 alive (watched,
 * or checked again at the next scan), 0 dead. */
static int proc_add(struct sbd_reaper *r, pid_t pid, uint64_t start, struct sbd_topic *t)
{
    struct sbd_proc *p;
    int fd = proc_pidfd(r, pid, t);

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

/* Start a pass now if none is under way. */
static void pass_request(struct sbd_reaper *r)
{
    if (!r->active)
        pass_begin(r);
    r->next_ns = 0; /* due now */
}

/* Process @p p is dead: keep it, marked, on the list of the dead, so that
 * the walk reaps what it owns everywhere. The walk goes on from where it
 * is: through the rest of this pass, then the next one as far as the topic
 * it was in (the topics met before the death), which is one full round. */
static void reap(struct sbd_reaper *r, struct sbd_proc *p)
{
    r->reaped++;
    sbd_log(SBD_INFO, "process %d died: reaping its slots and claims", (int)p->pid);
    if (p->pidfd >= 0) {
        close(p->pidfd); /* leaves the epoll set with it */
        r->npidfds -= p->topic != NULL;
    } else {
        r->npolled--;
    }
    p->pidfd = -1;
    p->dead = 1;
    /* The first death starts its round at once; one under way keeps its
     * pace (a stream of exits must not make every slice due at once). */
    if (r->dead == NULL)
        r->next_ns = 0;
    if (!r->active || (r->cur == NULL && r->topics_done == 0)) {
        if (!r->active)
            pass_begin(r); /* a pass that meets every topic after the death */
        p->until_pass = r->pass;
        p->until_topics = UINT32_MAX;
    } else {
        /* The topic being scanned counts as met: its slots before the
         * step under way were looked at before the death. */
        p->until_pass = r->pass + 1;
        p->until_topics = r->topics_done + (r->cur != NULL);
    }
    p->dead_next = NULL;
    *r->dead_tail = p;
    r->dead_tail = &p->dead_next;
}

/* Drop dead process @p p from the table (its pidfd is closed already). */
static void proc_remove(struct sbd_reaper *r, struct sbd_proc *p)
{
    struct sbd_proc **pp = &r->buckets[(uint32_t)p->pid % r->nbuckets];

    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    /* The bound has room again: reaching it is said again (once per time
     * it fills, which takes a death of a watched owner each). */
    if (p->topic != NULL && p->topic->procs-- == SBD_REAPER_PROCS_PER_TOPIC)
        p->topic->procs_full = 0;
    free(p);
    r->nprocs--;
}

/* The walk has finished @p done topics of pass r->pass (UINT32_MAX: all of
 * them): drop the dead it has been everywhere for since they died. The
 * list is in order of death, which is the order of their bounds. */
static void dead_forget(struct sbd_reaper *r, uint32_t done)
{
    while (r->dead != NULL) {
        struct sbd_proc *p = r->dead;

        if (p->until_pass > r->pass || (p->until_pass == r->pass && p->until_topics > done))
            return; /* not everywhere yet, nor anyone who died after it */
        r->dead = p->dead_next;
        proc_remove(r, p);
    }
    r->dead_tail = &r->dead;
}

void sbd_reaper_event(struct sbd_reaper *r, void *tagged)
{
    struct sbd_proc *p = (struct sbd_proc *)((uintptr_t)tagged & ~(uintptr_t)SBD_REAPER_TAG);

    /* The slice that reaps it runs after the batch of events (control.c),
     * one slice however many died in it. */
    reap(r, p);
}

/* Is the owner (@p pid, @p start) named in topic @p t known alive, or can
 * it be watched now? A topic has at most SBD_REAPER_PROCS_PER_TOPIC
 * processes watched for it: a segment scribbled with thousands of pids
 * costs a look at /proc per slot per pass beyond that, bounded by the
 * slices, and never a descriptor. @p *cost becomes STEP_COSTLY when the
 * answer took more than the table (a look at /proc, a pidfd). @return 0
 * when it is dead. */
static int owner_check(struct sbd_reaper *r, struct sbd_topic *t, pid_t pid, uint64_t start,
                       uint32_t *cost)
{
    struct sbd_proc *p;

    if (pid <= 0)
        return 0; /* no process has such a pid */
    p = *proc_slot(r, pid);
    if (p != NULL && p->start == start)
        return !p->dead;
    *cost = STEP_COSTLY;
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
 * it is a member of, which the reconcile step then leaves alone.
 * @return the step's cost. */
static uint32_t slot_check(struct sbd_reaper *r, struct sbd_topic *t, uint32_t i)
{
    uint32_t pid, g, cost = STEP_CHEAP;
    uint64_t start;

    if (sb_admin_owner(t->t, SB_ADMIN_SLOT, i, &pid, &start) &&
        !owner_check(r, t, (pid_t)pid, start, &cost)) {
        sbd_slot_reap(r->reg, t, i); /* walks the sessions */
        return STEP_COSTLY;
    }
    g = sb_admin_slot_member(t->t, i);
    if (g != 0)
        r->busy[(g - 1) / 64] |= 1ull << ((g - 1) % 64);
    return cost;
}

/* Record @p i of @p t: end a DEAD one's claim (a retry, or left by a
 * daemon before us); mark it DEAD and end its claim if its owner died.
 * @return the step's cost. */
static uint32_t pub_check(struct sbd_reaper *r, struct sbd_topic *t, uint32_t i)
{
    uint32_t pid, cost = STEP_CHEAP;
    uint64_t start;

    if (sb_admin_pub_is_dead(t->t, i)) {
        pub_settle(t, i); /* up to 4096 cells and a sort of the claims */
        return STEP_COSTLY;
    }
    if (sb_admin_owner(t->t, SB_ADMIN_PUB, i, &pid, &start) &&
        !owner_check(r, t, (pid_t)pid, start, &cost) && sb_admin_pub_dead(t->t, i)) {
        pub_settle(t, i);
        return STEP_COSTLY;
    }
    return cost;
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

/* Item @p i of phase @p ph of @p t, at monotonic @p now_ms. The reconcile
 * and the stall checks may each look at every slot or record (an eviction,
 * ending a claim): costly. @return the step's cost. */
static uint32_t phase_item(struct sbd_reaper *r, struct sbd_topic *t, enum scan_phase ph,
                           uint32_t i, int64_t now_ms)
{
    shmbus_topic_info info;

    switch (ph) {
    case PH_SLOTS:
        return slot_check(r, t, i);
    case PH_PUBS:
        return pub_check(r, t, i);
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
    return STEP_COSTLY;
}

/* One step of the scan of topic @p t: the next item of the current phase;
 * r->cur becomes NULL when the topic is done for this pass. @return the
 * step's cost. */
static uint32_t topic_step(struct sbd_reaper *r, struct sbd_topic *t, int64_t now_ms)
{
    if (sbd_topic_broken(t) == 1)
        topic_broken(t);
    while (!sbd_topic_broken(t) && r->phase < PH_DONE && r->idx >= phase_items(t, r->phase)) {
        r->phase++;
        r->idx = 0;
    }
    /* Not served any more (nothing to scan), or every phase done. */
    if (sbd_topic_broken(t) || r->phase == PH_DONE) {
        r->cur = NULL;
        return STEP_CHEAP;
    }
    return phase_item(r, t, r->phase, r->idx++, now_ms);
}

/* Look at process @p p, watched without a pidfd: reap it if /proc says it
 * is dead; else watch it through a pidfd if one can be had now. A check
 * that cannot tell leaves it for the next scan. */
static void proc_poll(struct sbd_reaper *r, struct sbd_proc *p)
{
    pid_t pid = p->pid;
    uint64_t start = p->start;
    int fd = proc_pidfd(r, pid, p->topic);

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
 * next bucket, at the start of each pass, so that a process without a
 * pidfd found dead is reaped by the pass's walk. @return 1 when every
 * bucket is done. */
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
    r->poll_bucket = 0;
    r->cur = NULL;
    r->walking = 0;
    r->topics_done = 0;
}

/* The next topic of this pass, or NULL when it has been everywhere; one
 * created behind the iterator waits for the next pass. Call with
 * urcu_memb_read_lock held, in the section walk_resume() began. */
static struct sbd_topic *pass_next_topic(struct sbd_reaper *r)
{
    struct cds_lfht_node *n;

    if (!r->walking)
        cds_lfht_first(r->reg->topics, &r->it);
    else
        cds_lfht_next(r->reg->topics, &r->it);
    r->walking = 1;
    n = cds_lfht_iter_get_node(&r->it);
    if (n == NULL)
        return NULL;
    memcpy(r->at, sbd_topic_of(n)->name, sizeof(r->at));
    return sbd_topic_of(n);
}

/* A new RCU read section: find the walk's place again by the name of the
 * topic it is at. Neither the iterator (its cached next node) nor r->cur
 * is used from an earlier section, which a topic's removal may have
 * freed since. A topic gone from the table (only sbd_registry_fini()
 * removes one today) starts the walk over: the pass only gets longer,
 * and the dead are forgotten no earlier. Call with urcu_memb_read_lock
 * held. */
static void walk_resume(struct sbd_reaper *r)
{
    struct cds_lfht_node *n;

    if (!r->walking)
        return; /* not begun: cds_lfht_first() */
    sbd_topic_seek(r->reg, r->at, &r->it);
    n = cds_lfht_iter_get_node(&r->it);
    if (n == NULL) {
        r->walking = 0;
        r->cur = NULL;
        r->topics_done = 0;
        return;
    }
    if (r->cur != NULL)
        r->cur = sbd_topic_of(n); /* the same topic, or one made under its name */
}

/* The pass is over: forget the dead it reaped; go on at once with the next
 * if someone died during it (the walk goes round once from the death). */
static void pass_end(struct sbd_reaper *r)
{
    r->active = 0;
    r->passes++;
    dead_forget(r, UINT32_MAX);
    if (r->dead != NULL)
        pass_begin(r);
}

/* The steps since the clock was last read cost @p cost: note the most. */
static void slice_gap(struct sbd_reaper *r, uint32_t cost)
{
    if (cost > r->gap_max)
        r->gap_max = cost;
}

/* Is the slice begun at @p t0 (ns) over, with @p *cost the cost of the
 * steps since the clock was last read? */
static int slice_over(struct sbd_reaper *r, uint64_t t0, uint32_t *cost)
{
    if (*cost < SBD_REAPER_CLOCK_STEPS)
        return 0;
    slice_gap(r, *cost);
    *cost = 0;
    return sb_mono_ns() - t0 >= SBD_REAPER_SLICE_NS;
}

/* The walk through the topics: steps until the slice begun at @p t0 is
 * over or the pass ends. Call with urcu_memb_read_lock held. */
static void slice_topics(struct sbd_reaper *r, uint64_t t0, uint32_t *cost)
{
    int64_t now_ms = (int64_t)(t0 / 1000000u);

    walk_resume(r);
    while (r->active) {
        if (r->cur == NULL) {
            r->cur = pass_next_topic(r);
            r->phase = PH_SLOTS;
            r->idx = 0;
            memset(r->busy, 0, sizeof(r->busy));
            if (r->cur == NULL) {
                pass_end(r);
                return; /* a pass that goes on for the dead starts at the next slice */
            }
        }
        *cost += topic_step(r, r->cur, now_ms);
        if (r->cur == NULL)
            dead_forget(r, ++r->topics_done);
        if (slice_over(r, t0, cost))
            return;
    }
}

/* The idle time after a slice that took @p cpu_ns of the thread's CPU
 * time. CPU time, not wall time: a slice the machine stalled (a stop, a
 * VM's steal) did not busy the core for that long. */
static uint64_t slice_idle_ns(const struct sbd_reaper *r, uint64_t cpu_ns)
{
    uint64_t idle =
        (r->dead != NULL ? SBD_REAPER_IDLE_FACTOR_DEAD : SBD_REAPER_IDLE_FACTOR) * cpu_ns;

    return idle < SBD_REAPER_IDLE_MAX_NS ? idle : SBD_REAPER_IDLE_MAX_NS;
}

void sbd_reaper_slice(struct sbd_reaper *r)
{
    uint64_t t0 = sb_mono_ns(), c0 = sb_now_ns(CLOCK_THREAD_CPUTIME_ID), cpu;
    uint32_t cost = 0;

    r->slices++;
    while (r->active && !poll_step(r)) {
        cost += STEP_COSTLY; /* a bucket of /proc looks */
        if (slice_over(r, t0, &cost))
            goto paced;
    }
    urcu_memb_read_lock();
    slice_topics(r, t0, &cost);
    urcu_memb_read_unlock();
paced:
    slice_gap(r, cost);
    cpu = sb_now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    r->busy_ns += cpu;
    r->next_ns = sb_mono_ns() + slice_idle_ns(r, cpu);
}

void sbd_reaper_pass(struct sbd_reaper *r)
{
    pass_request(r);
}

int sbd_reaper_busy(const struct sbd_reaper *r)
{
    return r->active;
}

int sbd_reaper_wait_ms(const struct sbd_reaper *r)
{
    uint64_t now;

    if (!r->active)
        return -1; /* nothing to do until the timer, or a death */
    now = sb_mono_ns();
    if (r->next_ns <= now)
        return 0;
    /* Rounded up: a wake-up before the slice is due would spin. At most
     * SBD_REAPER_IDLE_MAX_NS away: fits an int. */
    return (int)((r->next_ns - now + 999999u) / 1000000u);
}

void sbd_reaper_run(struct sbd_reaper *r)
{
    if (r->active && r->next_ns <= sb_mono_ns())
        sbd_reaper_slice(r);
}

void sbd_reaper_tick(struct sbd_reaper *r)
{
    uint64_t expirations;

    if (read(r->timerfd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
        return;
    sbd_registry_retry(r->reg);
    if (!r->active)
        pass_request(r);
}
