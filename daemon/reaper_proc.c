/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The processes the reaper watches (reaper_proc.h): identified by pid and
 * start time, the table maps a pid to the one process the daemon watches
 * under it, through a pidfd in the control loop's epoll set, or, where no
 * pidfd can be had (a sandbox forbids pidfd_open(), descriptors run out),
 * by a look at /proc at every scan. A death found either way goes to the
 * scan (reaper.c sbd_reaper_reap()), which reaps what the process held.
 */
#include "reaper_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "util/proc.h"

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

/* Drop dead process @p p from the table (its pidfd is closed already). */
void sbd_reaper_proc_remove(struct sbd_reaper *r, struct sbd_proc *p)
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

/* Is the owner (@p pid, @p start) named in topic @p t known alive, or can
 * it be watched now? A topic has at most SBD_REAPER_PROCS_PER_TOPIC
 * processes watched for it: a segment scribbled with thousands of pids
 * costs a look at /proc per slot per pass beyond that, bounded by the
 * slices, and never a descriptor. @p *cost becomes SBD_REAP_STEP_COSTLY when the
 * answer took more than the table (a look at /proc, a pidfd). @return 0
 * when it is dead. */
int sbd_reaper_owner_check(struct sbd_reaper *r, struct sbd_topic *t, pid_t pid, uint64_t start,
                           uint32_t *cost)
{
    struct sbd_proc *p;

    if (pid <= 0)
        return 0; /* no process has such a pid */
    p = *proc_slot(r, pid);
    if (p != NULL && p->start == start)
        return !p->dead;
    *cost = SBD_REAP_STEP_COSTLY;
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
    sbd_reaper_reap(r, p); /* never in the epoll set: no event of it is pending */
}

/* One step of the look at the processes watched without a pidfd: the
 * next bucket, at the start of each pass, so that a process without a
 * pidfd found dead is reaped by the pass's walk. @return 1 when every
 * bucket is done. */
int sbd_reaper_poll_step(struct sbd_reaper *r)
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
