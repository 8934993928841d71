/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control path's socket and loop (control.h); the handlers of the
 * requests are control_cmd.c's. Requests are handled one at a time, in
 * arrival order per connection; a reply goes out before the next request of
 * that connection is read, so clients never need more than one in flight.
 * A connection that sends garbage gets an error reply per message and stays
 * connected (the next message may be fine); one that does not read its
 * replies (the socket buffer fills) is disconnected.
 */
#include "control_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "access.h"
#include "log.h"
#include "util/clock.h"
#include "util/proc.h"

#define CTL_BACKLOG         128
#define CTL_EVENTS          64
#define CTL_BURST           32              /* requests read from one connection per wake-up */
#define CTL_WAITING_MAX     SBD_WAITING_MAX /* connections yet to say hello */
#define CTL_HELLO_NS        (5ull * 1000 * 1000 * 1000) /* time they have to say it */
#define CTL_ACCEPT_PAUSE_NS (100ull * 1000 * 1000)      /* no accept after EMFILE */

/* Sentinels in epoll data: anything else is a session. */
static int tag_listen, tag_signal, tag_timer;

static int ctl_socket_mode(struct sbd_control *c)
{
    const struct sbd_config *cfg = c->cfg;
    mode_t mode = 0600;

    /* Other uids can reach the socket only if some are allowed in; the
     * daemon then checks each peer's credentials itself. */
    if (cfg->n_allow_uid > 0 || cfg->n_allow_gid > 0)
        mode = 0666;
    else if (cfg->have_group)
        mode = 0660;
    if (cfg->have_group && chown(cfg->sock_path, (uid_t)-1, cfg->group) < 0)
        return -errno;
    return chmod(cfg->sock_path, mode) < 0 ? -errno : 0;
}

static int ctl_listen(struct sbd_control *c)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t plen = strlen(c->cfg->sock_path);
    int rc;

    if (plen >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    memcpy(a.sun_path, c->cfg->sock_path, plen + 1);
    c->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->lfd < 0)
        return -errno;
    /* We hold the bus lock: a socket file here is a dead daemon's. */
    if (unlink(c->cfg->sock_path) < 0 && errno != ENOENT)
        return -errno;
    if (bind(c->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(c->lfd, CTL_BACKLOG) < 0)
        return -errno;
    rc = ctl_socket_mode(c);
    return rc;
}

static int ctl_watch(struct sbd_control *c, int fd, void *tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};

    return epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int sbd_control_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    return -pthread_sigmask(SIG_BLOCK, set, NULL);
}

int sbd_control_open(struct sbd_control *c, const struct sbd_config *cfg, struct sbd_registry *reg)
{
    sigset_t set;
    int rc;

    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->reg = reg;
    c->lfd = c->epfd = c->sigfd = -1;
    if ((rc = sbd_control_block_signals(&set)) < 0)
        goto err;
    if ((c->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
        (c->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        rc = -errno;
        goto err;
    }
    rc = sbd_reaper_init(&c->reaper, reg, c->epfd, cfg->reap_interval_ms, &tag_timer);
    if (rc == 0)
        rc = ctl_listen(c);
    if (rc == 0)
        rc = ctl_watch(c, c->lfd, &tag_listen);
    if (rc == 0)
        rc = ctl_watch(c, c->sigfd, &tag_signal);
    if (rc == 0)
        return 0;
err:
    sbd_control_close(c);
    return rc;
}

void sbd_control_close(struct sbd_control *c)
{
    if (c->lfd >= 0) {
        close(c->lfd);
        unlink(c->cfg->sock_path);
    }
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->sigfd >= 0)
        close(c->sigfd);
    if (c->reaper.buckets != NULL)
        sbd_reaper_fini(&c->reaper);
    c->lfd = c->epfd = c->sigfd = -1;
}

/* The bus's rule (access.h) for the peer on @p fd, with its credentials
 * @p cred and its groups from the kernel: all fixed at its connect. */
static int peer_allowed(const struct sbd_config *cfg, int fd, const struct ucred *cred)
{
    gid_t stack[64], *groups = stack, *heap = NULL;
    socklen_t len = sizeof(stack);
    int rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len), ok;

    /* More groups (a directory user's can be hundreds): len is the size
     * they need, at most NGROUPS_MAX of them. */
    if (rc < 0 && errno == ERANGE && (heap = malloc(len)) != NULL) {
        groups = heap;
        rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
    }
    if (rc < 0)
        len = 0; /* an old kernel, or no memory: the primary gid only */
    ok = sbd_access_allowed(cfg, cred->uid, cred->gid, groups, len / sizeof(gid_t));
    free(heap);
    return ok;
}

/* Session @p s waits for its hello (at most CTL_WAITING_MAX do). */
static void ctl_wait_add(struct sbd_control *c, struct sbd_session *s)
{
    s->waiter = c->waiting;
    c->waiters[c->waiting++] = s;
}

/* Session @p s waits no more: the last waiter takes its place. */
void sbd_control_wait_del(struct sbd_control *c, struct sbd_session *s)
{
    struct sbd_session *last = c->waiters[--c->waiting];

    c->waiters[s->waiter] = last;
    last->waiter = s->waiter;
}

/*
 * Is there a client place for a hello of @p uid? Other uids than the
 * daemon's share all places but the last quarter (--max-clients / 4),
 * kept for the daemon's own uid: an allowed uid holding every place does
 * not lock the bus's owner out.
 */
int sbd_control_client_room(const struct sbd_control *c, uid_t uid)
{
    uint32_t max = c->cfg->max_clients;

    if (c->clients >= max)
        return 0; /* every place taken */
    return uid == geteuid() || c->clients_other < max - max / 4;
}

static void ctl_drop(struct sbd_control *c, struct sbd_session *s)
{
    if (s->hello) {
        c->clients--;
        c->clients_other -= s->uid != geteuid();
        s->dead = sbd_reaper_gone(&c->reaper, s->pid, s->start);
        sbd_log(SBD_INFO, "client %u disconnected: pid %d (%s)%s, %u holds released", s->id,
                (int)s->pid, s->name, s->dead ? ", dead" : "", s->nholds);
    } else {
        sbd_control_wait_del(c, s);
    }
    sbd_session_remove(c->reg, s);
}

/* Connections that did not say hello in time make room for others. */
static void ctl_expire(struct sbd_control *c)
{
    uint64_t now = sb_mono_ns();

    /* Downwards: a drop moves the last waiter, already seen, to i. */
    for (uint32_t i = c->waiting; i-- > 0;) {
        struct sbd_session *s = c->waiters[i];

        if (now - s->accepted_ns > CTL_HELLO_NS) {
            sbd_log(SBD_DEBUG, "client %u: no hello in time: disconnecting", s->id);
            ctl_drop(c, s);
        }
    }
}

/* A zero-byte read is the peer's hang-up or an empty packet; only the
 * hang-up sets RDHUP. */
static int ctl_peer_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};

    return poll(&p, 1, 0) != 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Read up to CTL_BURST requests of one connection. */
static void ctl_readable(struct sbd_control *c, struct sbd_session *s)
{
    uint8_t msg[SB_WIRE_MAX];

    if (s->fd < 0)
        return; /* dropped earlier in this batch */
    for (int i = 0; i < CTL_BURST; i++) {
        /* A short packet must not show an earlier request's header. */
        memset(msg, 0, sizeof(struct sb_wire_hdr));
        long n = sb_wire_recv(s->fd, msg, sizeof(msg), NULL);

        if (n == -EAGAIN)
            return;
        if ((n == 0 && ctl_peer_gone(s->fd)) || (n < 0 && n != SHMBUS_ERR_PROTOCOL) ||
            sbd_control_request(c, s, msg, n) < 0) {
            ctl_drop(c, s);
            return;
        }
    }
}

/* Out of descriptors or memory: stop watching the listening socket until
 * the timer's tick CTL_ACCEPT_PAUSE_NS later (ctl_accept_resume()). The
 * pending connections stay queued; accepting them now would fail again,
 * and the level-triggered socket would wake us at once, for ever. */
static void ctl_accept_pause(struct sbd_control *c, int err)
{
    struct epoll_event ev = {.events = 0, .data.ptr = &tag_listen};
    uint64_t now = sb_mono_ns();

    if (now >= c->accept_log_ns) {
        sbd_log(SBD_WARN, "accept: %s: not accepting for %llu ms%s", strerror(err),
                (unsigned long long)(CTL_ACCEPT_PAUSE_NS / 1000000),
                err == EMFILE || err == ENFILE ? " (descriptor limit: see --max-clients)" : "");
        c->accept_log_ns = now + 1000000000ull;
    }
    if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->lfd, &ev) == 0)
        c->accept_resume_ns = now + CTL_ACCEPT_PAUSE_NS;
}

/* Watch the listening socket again once a pause is over (the timer's tick). */
static void ctl_accept_resume(struct sbd_control *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_listen};

    if (c->accept_resume_ns == 0 || sb_mono_ns() < c->accept_resume_ns)
        return;
    if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->lfd, &ev) == 0)
        c->accept_resume_ns = 0;
}

/* The oldest waiter of uid @p uid, or with @p any_denied the oldest
 * waiter the bus's rule refuses. */
static struct sbd_session *ctl_oldest(const struct sbd_control *c, uid_t uid, int any_denied)
{
    struct sbd_session *victim = NULL;

    for (uint32_t i = 0; i < c->waiting; i++) {
        struct sbd_session *w = c->waiters[i];

        if ((any_denied ? !w->allowed : w->uid == uid) &&
            (victim == NULL || w->accepted_ns < victim->accepted_ns))
            victim = w;
    }
    return victim;
}

/*
 * Every place for a connection yet to say hello is taken: make room for
 * one of @p uid, which the bus's rule lets in if @p allowed. A peer the
 * rule refuses can never say hello: it takes no place from anyone, and
 * is the first to lose its own. Else drop the oldest waiting connection
 * of the uid that holds the most places, if that uid would still hold
 * more than @p uid. So the places are shared among the uids that may
 * use the bus: one uid holding connections open without a hello never
 * locks others out. Bounded by the places, whatever the sessions.
 * @return 1 if there is room now, 0 if the connection is to be refused.
 */
static int ctl_make_room(struct sbd_control *c, uid_t uid, int allowed)
{
    struct sbd_session *victim;
    unsigned mine = 0, top = 0;
    uid_t top_uid = uid;

    if (!allowed)
        return 0;
    victim = ctl_oldest(c, 0, 1);
    for (uint32_t i = 0; i < c->waiting && victim == NULL; i++) {
        unsigned k = 0;

        for (uint32_t j = 0; j < c->waiting; j++)
            k += c->waiters[j]->uid == c->waiters[i]->uid;
        mine += c->waiters[i]->uid == uid;
        if (k > top) {
            top = k;
            top_uid = c->waiters[i]->uid;
        }
    }
    if (victim == NULL && top <= mine + 1)
        return 0; /* @p uid would hold as many: its own turn to wait */
    if (victim == NULL)
        victim = ctl_oldest(c, top_uid, 0);
    sbd_log(SBD_DEBUG, "client %u: uid %u%s holds a place before hello: dropped for uid %u",
            victim->id, (unsigned)victim->uid, victim->allowed ? "" : " (not allowed)",
            (unsigned)uid);
    ctl_drop(c, victim);
    return 1;
}

static void ctl_accept(struct sbd_control *c)
{
    for (;;) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        struct sbd_session *s;
        int allowed, fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                ctl_accept_pause(c, errno);
            else if (errno != EAGAIN)
                sbd_log(SBD_WARN, "accept: %s", strerror(errno));
            return;
        }
        /* Over the client limit by more than can be told so, or no place
         * before hello for this uid: do not even keep the descriptor. */
        if ((uint64_t)c->reg->nsessions >= (uint64_t)c->cfg->max_clients + CTL_WAITING_MAX ||
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
            close(fd);
            continue;
        }
        allowed = peer_allowed(c->cfg, fd, &cred);
        if ((c->waiting >= CTL_WAITING_MAX && !ctl_make_room(c, cred.uid, allowed)) ||
            (s = sbd_session_add(c->reg, fd)) == NULL) {
            close(fd);
            continue;
        }
        s->pid = cred.pid;
        if (sb_proc_start_get(cred.pid, &s->start) <= 0)
            s->start = 0; /* unknown: the pidfd alone tells its death */
        s->accepted_ns = sb_mono_ns();
        s->allowed = allowed;
        ctl_wait_add(c, s);
        s->uid = cred.uid;
        s->gid = cred.gid;
        if (!sbd_control_client_room(c, s->uid))
            s->refused = SHMBUS_ERR_LIMIT;
        if (ctl_watch(c, fd, s) < 0)
            ctl_drop(c, s);
    }
}

/* @return 1 when a stop signal arrived. */
static int ctl_signalled(struct sbd_control *c)
{
    struct signalfd_siginfo si;

    while (read(c->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            sbd_log(SBD_INFO, "signal %u: shutting down", si.ssi_signo);
            return 1;
        }
    }
    return 0;
}

int sbd_control_run(struct sbd_control *c)
{
    struct epoll_event ev[CTL_EVENTS];

    for (;;) {
        /* Until the next slice of a scan pass under way is due. */
        int n = epoll_wait(c->epfd, ev, CTL_EVENTS, sbd_reaper_wait_ms(&c->reaper));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        /* A session dropped while this batch is handled (hello deadline,
         * reaper) stays allocated until the batch is done: its later
         * events see it closed. */
        urcu_memb_read_lock();
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == &tag_signal) {
                if (ctl_signalled(c)) {
                    urcu_memb_read_unlock();
                    return 0;
                }
            } else if (ev[i].data.ptr == &tag_listen) {
                ctl_accept(c);
            } else if (ev[i].data.ptr == &tag_timer) {
                sbd_reaper_tick(&c->reaper);
                ctl_expire(c);
                ctl_accept_resume(c);
            } else if ((uintptr_t)ev[i].data.ptr & SBD_REAPER_TAG) {
                sbd_reaper_event(&c->reaper, ev[i].data.ptr);
            } else {
                ctl_readable(c, ev[i].data.ptr);
            }
        }
        urcu_memb_read_unlock();
        /* One slice at most per batch, when due: however many deaths or
         * requests the batch held, a control call waits for one slice. */
        sbd_reaper_run(&c->reaper);
    }
}
