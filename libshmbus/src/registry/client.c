/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client connections to shmbusd: naming the bus and its socket, the hello,
 * and opening topics (the daemon sends the segment's descriptor); the
 * monitoring requests are in monitor.c. Each connection
 * serialises its requests under a mutex; the daemon answers them in order.
 */
#include "registry/client.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "registry/admin.h"
#include "registry/trust.h"
#include "ring/ring.h"
#include "util/clock.h"
#include "util/name.h"

/* A daemon that does not answer a control request in this time is hung. */
#define SB_BUS_REPLY_TIMEOUT_S 10

/* The system bus's runtime directory, where a client looks when its own
 * has no socket (shmbus_connect()). A compile-time seam: the tests build
 * client.c with their own directory (tests/CMakeLists.txt), never an
 * environment variable any caller could set. */
#ifndef SB_RUNTIME_DIR_SYSTEM
#define SB_RUNTIME_DIR_SYSTEM SHMBUS_RUNTIME_DIR_SYSTEM
#endif

#define SB_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)

/* The directory of the bus's socket and lock (shmbus_bus_resolve()).
 * secure_getenv(): a setuid caller never takes its directory, nor whose
 * daemon it trusts (bus_configured_uid()), from whoever started it.
 * *own is set when it is $XDG_RUNTIME_DIR/shmbus, the user's own place
 * by default, where no socket means "try the system bus". */
static const char *bus_runtime_dir(char *buf, size_t cap, int *own)
{
    const char *dir = secure_getenv("SHMBUS_RUNTIME_DIR");

    *own = 0;
    if (dir != NULL && dir[0] != '\0')
        return dir;
    dir = secure_getenv("XDG_RUNTIME_DIR");
    if (dir == NULL || dir[0] == '\0')
        return SB_RUNTIME_DIR_SYSTEM;
    snprintf(buf, cap, "%s/shmbus", dir);
    *own = 1;
    return buf;
}

/* $SHMBUS_SOCKET, the socket named outright. @return NULL when unset or
 * empty, else the path, which *rc says whether to take: 0; SHMBUS_ERR_INVALID
 * when it is not absolute or names a directory; -ENAMETOOLONG when it does
 * not fit sockaddr_un. */
static const char *bus_socket_env(int *rc)
{
    const char *path = secure_getenv("SHMBUS_SOCKET");
    size_t n;

    *rc = 0;
    if (path == NULL || path[0] == '\0')
        return NULL;
    n = strlen(path);
    if (path[0] != '/' || path[n - 1] == '/')
        *rc = SHMBUS_ERR_INVALID; /* relative: its meaning depends on the cwd */
    else if (n >= SB_SUN_PATH)
        *rc = -ENAMETOOLONG;
    return path;
}

/* shmbus_bus_resolve(), and whether the path is the user's default one,
 * with the system bus to try when nothing is there (*own, may be NULL). */
static int bus_resolve(const char *name, char *name_out, char *path_out, size_t path_cap, int *own)
{
    char buf[SB_SUN_PATH + 8];
    const char *sock, *dir;
    int n, rc, mine = 0;

    if (name == NULL) {
        name = getenv("SHMBUS_BUS");
        if (name == NULL || name[0] == '\0')
            name = SHMBUS_BUS_DEFAULT;
    }
    if (!sb_name_bus_valid(name))
        return SHMBUS_ERR_BAD_NAME;
    if (name_out != NULL)
        snprintf(name_out, SHMBUS_BUS_NAME_MAX + 1, "%s", name);
    if (path_out == NULL)
        return 0;
    sock = bus_socket_env(&rc);
    if (rc < 0)
        return rc;
    dir = sock != NULL ? NULL : bus_runtime_dir(buf, sizeof(buf), &mine);
    n = sock != NULL ? snprintf(path_out, path_cap, "%s", sock)
                     : snprintf(path_out, path_cap, "%s/%s.sock", dir, name);
    if (n < 0 || (size_t)n >= path_cap || (size_t)n >= SB_SUN_PATH)
        return -ENAMETOOLONG;
    if (own != NULL)
        *own = mine;
    return 0;
}

int shmbus_bus_resolve(const char *name, char *name_out, char *path_out, size_t path_cap)
{
    return bus_resolve(name, name_out, path_out, path_cap, NULL);
}

/* Connect to the daemon at @p path, if we trust it (trust.h).
 * @return the socket; SHMBUS_ERR_UNTRUSTED; -errno (-ENOENT: no socket
 * there; -ECONNREFUSED: one nobody listens on). */
static int bus_dial(const char *path)
{
    struct timeval tv = {.tv_sec = SB_BUS_REPLY_TIMEOUT_S};
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), rc;

    if (s < 0)
        return -errno;
    rc = setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0
             ? -errno
             : sb_bus_connect_trusted(s, path);
    if (rc < 0) {
        close(s);
        return rc;
    }
    return s;
}

/*
 * Dial the bus's daemon at bus->path; when that is the user's default
 * place (@p own) and holds no socket at all, the system bus's, whose
 * path bus->path then keeps for reconnecting. A socket a dead daemon left
 * (ECONNREFUSED) is the user's own bus, down: no fallback. The system
 * daemon passes the trust checks as any other (sb_bus_connect_trusted():
 * root, or the owner of /run/shmbus when the directory is given to one of
 * our groups). @return the socket; SHMBUS_ERR_NO_DAEMON; as bus_dial().
 */
static int bus_dial_first(shmbus_bus *bus, int own)
{
    char sys[SB_SUN_PATH];
    int s = bus_dial(bus->path), n;

    if (s == -ENOENT && own) {
        n = snprintf(sys, sizeof(sys), "%s/%s.sock", SB_RUNTIME_DIR_SYSTEM, bus->name);
        if (n > 0 && (size_t)n < sizeof(sys)) {
            s = bus_dial(sys);
            if (s >= 0)
                memcpy(bus->path, sys, (size_t)n + 1);
        }
    }
    /* Nobody listens: no socket file, or one a dead daemon left. */
    return (s == -ENOENT || s == -ECONNREFUSED) ? SHMBUS_ERR_NO_DAEMON : s;
}

static int bus_call_locked(shmbus_bus *bus, uint16_t type, const void *body, uint32_t len,
                           void *reply, uint32_t cap, int *fd);

/* Say hello, with the lock held. */
static int bus_hello(shmbus_bus *bus)
{
    struct sb_wire_hello h = {.pid = bus->pid};
    struct sb_wire_hello_ok ok;
    char comm[SB_WIRE_CLIENT_NAME] = "";
    FILE *f = fopen("/proc/self/comm", "re");
    int rc;

    if (f != NULL) {
        if (fgets(comm, sizeof(comm), f) != NULL)
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    snprintf(h.name, sizeof(h.name), "%s", comm);
    rc = bus_call_locked(bus, SB_MSG_HELLO, &h, sizeof(h), &ok, sizeof(ok), NULL);
    if (rc < 0)
        return rc;
    if (rc != (int)sizeof(ok))
        return SHMBUS_ERR_PROTOCOL;
    bus->session = ok.session;
    bus->daemon_pid = ok.daemon_pid;
    return 0;
}

int shmbus_connect(const char *bus_name, shmbus_bus **out)
{
    shmbus_bus *bus;
    int rc, own;

    if (out == NULL)
        return SHMBUS_ERR_INVALID;
    *out = NULL;
    bus = calloc(1, sizeof(*bus));
    if (bus == NULL)
        return -ENOMEM;
    rc = bus_resolve(bus_name, bus->name, bus->path, sizeof(bus->path), &own);
    if (rc < 0)
        goto err_free;
    rc = bus->sock = bus_dial_first(bus, own);
    if (rc < 0)
        goto err_free;
    pthread_mutex_init(&bus->lock, NULL);
    bus->pid = (uint32_t)getpid();
    /* No order: the connection is not shared yet (the caller's reference). */
    atomic_init(&bus->refs, 1);
    pthread_mutex_lock(&bus->lock);
    rc = bus_hello(bus);
    pthread_mutex_unlock(&bus->lock);
    if (rc < 0)
        goto err_close;
    *out = bus;
    return 0;
err_close:
    close(bus->sock);
    pthread_mutex_destroy(&bus->lock);
err_free:
    free(bus);
    return rc;
}

void sb_bus_ref_get(shmbus_bus *bus)
{
    /* relaxed: the caller already holds a reference. */
    atomic_fetch_add_explicit(&bus->refs, 1, memory_order_relaxed);
}

void sb_bus_ref_put(shmbus_bus *bus)
{
    /* acq_rel: see struct shmbus_bus. */
    if (atomic_fetch_sub_explicit(&bus->refs, 1, memory_order_acq_rel) != 1)
        return;
    close(bus->sock); /* the daemon frees what the session still held */
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

void shmbus_close(shmbus_bus *bus)
{
    if (bus != NULL)
        sb_bus_ref_put(bus);
}

/* Wait until the daemon's reply can be read, up to @p deadline
 * (CLOCK_MONOTONIC ns): a signal shortens the wait, never restarts it.
 * @return 0, or SHMBUS_ERR_TIMEOUT. */
static int bus_reply_wait(int sock, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = sock, .events = POLLIN};
        uint64_t now = sb_mono_ns();
        int rc;

        if (now >= deadline)
            return SHMBUS_ERR_TIMEOUT;
        rc = poll(&p, 1, (int)((deadline - now + 999999) / 1000000));
        if (rc > 0)
            return 0; /* a reply or a hang-up: the read tells which */
        if (rc < 0 && errno != EINTR)
            return 0; /* the read reports it */
    }
}

/* Send and wait for the matching reply, SB_BUS_REPLY_TIMEOUT_S at most
 * from the send, whatever signals arrive; with the lock held. */
static int bus_roundtrip(shmbus_bus *bus, uint16_t type, uint32_t req, const void *body,
                         uint32_t len, uint8_t *msg, int *fd)
{
    uint64_t deadline = sb_mono_ns() + SB_BUS_REPLY_TIMEOUT_S * 1000000000ull;
    const void *rbody = NULL;
    long n;
    int rc;

    rc = sb_wire_send(bus->sock, type, req, body, len, -1);
    if (rc < 0)
        return rc == -EPIPE || rc == -ECONNRESET ? SHMBUS_ERR_DAEMON_LOST : rc;
    if (bus_reply_wait(bus->sock, deadline) < 0)
        return SHMBUS_ERR_TIMEOUT;
    n = sb_wire_recv(bus->sock, msg, SB_WIRE_MAX, fd);
    if (n == 0 || n == -ECONNRESET)
        return SHMBUS_ERR_DAEMON_LOST;
    if (n == -EAGAIN)
        return SHMBUS_ERR_TIMEOUT; /* SO_RCVTIMEO: the daemon did not answer */
    if (n < 0)
        return (int)n;
    rc = sb_wire_decode_reply(msg, (size_t)n, req, &rbody);
    if (rc >= 0 && rbody != (const void *)(msg + sizeof(struct sb_wire_hdr)))
        return SHMBUS_ERR_PROTOCOL;
    return rc;
}

/* One request and its reply, with the lock held (sb_bus_call()). */
static int bus_call_locked(shmbus_bus *bus, uint16_t type, const void *body, uint32_t len,
                           void *reply, uint32_t cap, int *fd)
{
    uint8_t msg[SB_WIRE_MAX];
    int rc, got = -1;

    rc = bus_roundtrip(bus, type, ++bus->next_req, body, len, msg, fd ? fd : &got);
    if (rc == SHMBUS_ERR_DAEMON_LOST || rc == SHMBUS_ERR_TIMEOUT || rc == SHMBUS_ERR_PROTOCOL ||
        rc == SHMBUS_ERR_PROTO_VERSION)
        bus->lost = 1; /* the stream is out of step or gone: never reuse it */
    /* Nothing more is read from it: a late reply fails in the daemon,
     * which then knows we never had it (a slot it handed out is freed). */
    if (rc == SHMBUS_ERR_TIMEOUT)
        shutdown(bus->sock, SHUT_RD);
    if (got >= 0)
        close(got); /* a descriptor nobody asked for */
    if (rc >= 0 && (uint32_t)rc > cap)
        rc = SHMBUS_ERR_PROTOCOL;
    if (rc > 0)
        memcpy(reply, msg + sizeof(struct sb_wire_hdr), (size_t)rc);
    if (rc < 0 && fd != NULL && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

/* Does @p fd name the same segment file as our mapping of @p t?
 * @return 1 yes, 0 no, or -errno when it cannot be told. */
static int same_segment(const shmbus_topic *t, int fd)
{
    struct stat a, b;

    if (fstat(fd, &a) < 0 || fstat(t->seg.fd, &b) < 0)
        return -errno;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* topic_reregister(): the daemon does not serve the topic as our segment. */
#define SB_NOT_SERVED 1

/* The id of a topic handle whose segment no daemon will serve again (it
 * is marked gone); id 0 is one the daemon refuses to serve (its segment
 * was truncated: its header is not touched). Daemon ids count from 1. */
#define SB_TOPIC_GONE_ID UINT32_MAX

/* Tell a new daemon about the slots of @p t: each one that is still ours
 * (the daemon checks its owner in the segment) is recorded as this
 * connection's. One that is not (the daemon took it back from an owner it
 * judged dead) is dropped from the list; its subscriber's topic is served
 * all the same. */
static int slots_reregister(shmbus_bus *bus, struct sb_topic_reg *reg)
{
    int rc = 0;

    for (uint32_t i = 0; i < reg->nslots && rc >= 0;) {
        struct sb_wire_ref r = {.topic = reg->id, .slot = reg->slots[i]};

        rc = bus_call_locked(bus, SB_MSG_SUB_ADOPT, &r, sizeof(r), NULL, 0, NULL);
        if (rc == -ENOENT) {
            reg->slots[i] = reg->slots[--reg->nslots];
            rc = 0;
            continue;
        }
        i++;
    }
    return rc;
}

/* Tell a new daemon about the topic of @p reg: open it again by name (the same
 * segment, which it adopted), then our publishers and slots.
 * @return 0; SB_NOT_SERVED when the daemon has no topic of that name
 * (-ENOENT) or another segment under it; the daemon's error, among them
 * SHMBUS_ERR_NOT_READY while it takes the segment over. Only the OPEN
 * decides SB_NOT_SERVED. */
static int topic_reregister(shmbus_bus *bus, struct sb_topic_reg *reg)
{
    struct sb_wire_open q = {.flags = SHMBUS_OPEN_NOCREATE};
    struct sb_wire_open_ok ok;
    int rc, fd = -1;

    snprintf(q.name, sizeof(q.name), "%s", reg->name);
    rc = bus_call_locked(bus, SB_MSG_OPEN, &q, sizeof(q), &ok, sizeof(ok), &fd);
    if (rc >= 0 && (rc != (int)sizeof(ok) || fd < 0))
        rc = SHMBUS_ERR_PROTOCOL; /* a reply without its segment tells nothing */
    else if (rc >= 0 && (rc = same_segment(reg->topic, fd)) >= 0)
        rc = rc ? (int)sizeof(ok) : -ESTALE; /* -ESTALE: another segment has the name */
    if (fd >= 0)
        close(fd);
    if (rc == -ENOENT || rc == -ESTALE)
        return SB_NOT_SERVED;
    if (rc < 0)
        return rc;
    reg->id = ok.topic;
    for (uint32_t i = 0; i < reg->npubs && rc >= 0; i++) {
        struct sb_wire_ref r = {.topic = reg->id};

        rc = bus_call_locked(bus, SB_MSG_PUB_ADD, &r, sizeof(r), NULL, 0, NULL);
    }
    if (rc >= 0)
        rc = slots_reregister(bus, reg);
    return rc < 0 ? rc : 0;
}

/*
 * The daemon does not serve the topic of @p reg as our segment: it had no topic of
 * that name (the segment was removed, or is one it cannot serve) or
 * serves another segment under it. No daemon will serve ours again, so
 * it is gone for every process that maps it: publishing, claiming,
 * polling and receiving fail with SHMBUS_ERR_TOPIC_GONE (sleepers are
 * woken for it) instead of going into memory nobody reads, and so do its
 * control calls (id 0 is nobody's).
 */
static void topic_orphan(struct sb_topic_reg *reg)
{
    reg->id = SB_TOPIC_GONE_ID;
    sb_admin_topic_gone(reg->topic);
}

/*
 * The daemon was lost: connect to the one now serving the bus, if any,
 * and re-register everything this connection holds. With the lock held.
 * @return 0, SHMBUS_ERR_UNTRUSTED (a daemon we do not trust listens), or
 * SHMBUS_ERR_DAEMON_LOST (still none, or it could not take every topic
 * back yet); tried again next call.
 */
static int bus_reconnect_locked(shmbus_bus *bus)
{
    int s = bus_dial(bus->path), rc;

    /* A daemon we do not trust serves the bus: say so, not merely lost. */
    if (s < 0)
        return s == SHMBUS_ERR_UNTRUSTED ? s : SHMBUS_ERR_DAEMON_LOST;
    close(bus->sock);
    bus->sock = s;
    bus->lost = 0;
    rc = bus_hello(bus);
    for (struct sb_topic_reg *reg = bus->topics; reg != NULL && rc >= 0 && !bus->lost;
         reg = reg->next) {
        int trc;

        if (reg->id == SB_TOPIC_GONE_ID)
            continue; /* nothing to tell any daemon */
        trc = topic_reregister(bus, reg);
        if (trc == SB_NOT_SERVED)
            topic_orphan(reg);
        else if (trc == SHMBUS_ERR_TRUNCATED)
            reg->id = 0; /* served no more; its header may lie past the file's end */
        else if (trc < 0)
            bus->lost = 1; /* may pass (NOT_READY, ...): all again later */
    }
    if (rc < 0 || bus->lost) {
        bus->lost = 1;
        return SHMBUS_ERR_DAEMON_LOST;
    }
    return 0;
}

/* Note a hang-up of the daemon, with the lock held. */
static void bus_hangup_note(shmbus_bus *bus)
{
    struct pollfd p = {.fd = bus->sock, .events = POLLRDHUP};

    /* The daemon never writes unasked: anything readable is its hang-up. */
    if (!bus->lost && poll(&p, 1, 0) > 0)
        bus->lost = 1;
}

int shmbus_bus_check(shmbus_bus *bus)
{
    int rc;

    if (bus == NULL || bus->pid != (uint32_t)getpid())
        return SHMBUS_ERR_INVALID;
    pthread_mutex_lock(&bus->lock);
    bus_hangup_note(bus);
    rc = bus->lost ? bus_reconnect_locked(bus) : 0;
    pthread_mutex_unlock(&bus->lock);
    return rc;
}

static void slot_late_release(shmbus_topic *t);

/*
 * One call under the lock, reconnecting first if the daemon was lost and
 * @p reconnect. With a topic @p t, its current id (a reconnect renumbers
 * topics) is written into the body's first field under the same lock.
 */
static int bus_call(shmbus_bus *bus, shmbus_topic *t, int reconnect, uint16_t type, void *body,
                    uint32_t len, void *reply, uint32_t cap, int *fd)
{
    int rc = 0;

    if (bus->pid != (uint32_t)getpid())
        return SHMBUS_ERR_INVALID; /* a forked child shares the parent's socket */
    pthread_mutex_lock(&bus->lock);
    if (bus->lost)
        rc = reconnect ? bus_reconnect_locked(bus) : SHMBUS_ERR_DAEMON_LOST;
    if (rc == 0 && t != NULL && t->reg->id == SB_TOPIC_GONE_ID)
        rc = SHMBUS_ERR_TOPIC_GONE; /* no daemon serves it, nor ever will */
    else if (rc == 0 && t != NULL && t->reg->id == 0)
        rc = -ENOENT; /* no daemon serves it: its segment was truncated */
    if (rc == 0 && t != NULL)
        memcpy(body, &t->reg->id, sizeof(t->reg->id));
    if (rc == 0)
        rc = bus_call_locked(bus, type, body, len, reply, cap, fd);
    if (rc == SHMBUS_ERR_TIMEOUT && type == SB_MSG_SUB_ADD && t != NULL)
        slot_late_release(t);
    pthread_mutex_unlock(&bus->lock);
    return rc;
}

int sb_bus_call(shmbus_bus *bus, uint16_t type, const void *body, uint32_t len, void *reply,
                uint32_t cap, int *fd)
{
    /* Without a topic the body is only read. */
    return bus_call(bus, NULL, 1, type, (void *)body, len, reply, cap, fd);
}

int sb_bus_topic_call(shmbus_topic *t, uint16_t type, void *body, uint32_t len, void *reply,
                      uint32_t cap)
{
    return bus_call(t->reg->bus, t, 1, type, body, len, reply, cap, NULL);
}

/* Is the daemon that said hello last gone? Only a definite "no such
 * process" counts: a reused pid reads as alive. */
static int bus_daemon_dead(const shmbus_bus *bus)
{
    return bus->daemon_pid != 0 && kill((pid_t)bus->daemon_pid, 0) < 0 && errno == ESRCH;
}

/*
 * Give slot @p slot of @p t back (SUB_DEL), with the lock held. The
 * subscriber has left the topic's list, so a reconnect does not adopt the
 * slot: a daemon met by reconnecting in this call adopts it first. When
 * no daemon serves the bus and the daemon that handed the slot out is
 * dead, or the topic is gone, nobody's books hold the slot: it is freed
 * here (it is INIT, gating nothing); otherwise it would stay taken, and
 * its topic in use, for as long as this process lives.
 */
static int slot_release_locked(shmbus_topic *t, uint32_t slot)
{
    shmbus_bus *bus = t->reg->bus;
    struct sb_wire_ref r = {.slot = slot};
    int rc = 0, fresh = 0;

    bus_hangup_note(bus); /* a request to a daemon that hung up is never read */
    if (bus->lost) {
        rc = bus_reconnect_locked(bus);
        fresh = rc == 0;
    }
    if (((rc == SHMBUS_ERR_DAEMON_LOST || rc == SHMBUS_ERR_UNTRUSTED) && bus_daemon_dead(bus)) ||
        (rc == 0 && t->reg->id == SB_TOPIC_GONE_ID)) {
        sb_admin_slot_free(t, slot, 0);
        return rc;
    }
    if (rc < 0)
        return rc; /* it stays INIT; the daemon frees it when we die */
    if (t->reg->id == 0)
        return -ENOENT; /* a truncated segment: left alone */
    r.topic = t->reg->id;
    if (fresh)
        rc = bus_call_locked(bus, SB_MSG_SUB_ADOPT, &r, sizeof(r), NULL, 0, NULL);
    if (rc >= 0)
        rc = bus_call_locked(bus, SB_MSG_SUB_DEL, &r, sizeof(r), NULL, 0, NULL);
    return rc;
}

/*
 * A SUB_ADD on @p t (request bus->next_req) timed out, and the socket is
 * shut for reading (bus_call_locked()): a reply the daemon sends from now
 * on fails there, and it frees the slot itself. One it sent before is
 * still queued: find it and give its slot back, as a subscriber would.
 * With the lock held.
 */
static void slot_late_release(shmbus_topic *t)
{
    shmbus_bus *bus = t->reg->bus;
    uint8_t msg[SB_WIRE_MAX];
    long n;
    int fd;

    /* Shut for reading, an empty socket reads 0 at once. */
    while ((n = sb_wire_recv(bus->sock, msg, sizeof(msg), &fd)) > 0) {
        const void *body = NULL;
        struct sb_wire_sub_ok ok;

        if (fd >= 0)
            close(fd);
        if (sb_wire_decode_reply(msg, (size_t)n, bus->next_req, &body) != (int)sizeof(ok))
            continue; /* an earlier request's reply, or an error: no slot */
        memcpy(&ok, body, sizeof(ok));
        if (ok.slot < t->seg.g.max_subs)
            slot_release_locked(t, ok.slot);
        return;
    }
}

int sb_bus_ref(shmbus_topic *t, uint16_t type)
{
    struct sb_wire_ref r = {0}; /* the topic id is filled in by the call */

    return sb_bus_topic_call(t, type, &r, sizeof(r), NULL, 0);
}

int sb_bus_journal_dir(shmbus_topic *t, char *dir, size_t cap)
{
    struct sb_wire_ref r = {0}; /* the topic id is filled in by the call */
    struct sb_wire_journal_ok *ok = malloc(sizeof(*ok));
    size_t len;
    int rc;

    if (ok == NULL)
        return -ENOMEM;
    rc = sb_bus_topic_call(t, SB_MSG_JOURNAL, &r, sizeof(r), ok, sizeof(*ok));
    if (rc >= 0) {
        len = strnlen(ok->dir, sizeof(ok->dir));
        /* A reply of the wrong size, unterminated or empty is no
         * directory; a relative one would name a place in the daemon's
         * working directory, which is not ours. */
        if (rc != (int)sizeof(*ok) || len == sizeof(ok->dir) || ok->dir[0] != '/')
            rc = SHMBUS_ERR_PROTOCOL;
        else if (len >= cap)
            rc = -ENAMETOOLONG;
        else
            rc = 0;
    }
    if (rc == 0)
        memcpy(dir, ok->dir, len + 1);
    free(ok);
    return rc;
}

int sb_bus_slot_release(shmbus_topic *t, uint32_t slot)
{
    int rc;

    if (t->reg->bus->pid != (uint32_t)getpid())
        return SHMBUS_ERR_INVALID; /* a forked child: the slot is the parent's */
    pthread_mutex_lock(&t->reg->bus->lock);
    rc = slot_release_locked(t, slot);
    pthread_mutex_unlock(&t->reg->bus->lock);
    return rc;
}

static int open_request(const char *topic, const shmbus_topic_opts *o, unsigned flags,
                        struct sb_wire_open *req)
{
    memset(req, 0, sizeof(*req));
    if (!sb_name_valid(topic, SHMBUS_TOPIC_NAME_MAX))
        return SHMBUS_ERR_BAD_NAME;
    snprintf(req->name, sizeof(req->name), "%s", topic);
    req->flags = flags;
    if (o != NULL) {
        /* The daemon decides the segment's mode; reserved fields are 0. */
        if (o->perm != 0 || !sb_topic_opts_clean(o))
            return SHMBUS_ERR_INVALID;
        req->mode = o->mode;
        req->capacity = o->capacity;
        req->max_msg_size = o->max_msg_size;
        req->max_subscribers = o->max_subscribers;
        req->max_groups = o->max_groups;
        req->max_publishers = o->max_publishers;
        req->topic_flags = o->flags;
        req->stall_timeout_ms = o->stall_timeout_ms;
    }
    return 0;
}

int shmbus_open(shmbus_bus *bus, const char *topic, const shmbus_topic_opts *opts, unsigned flags,
                shmbus_topic **out)
{
    struct sb_wire_open req;
    struct sb_wire_open_ok ok;
    struct sb_segment seg;
    int rc, fd = -1;

    if (out == NULL)
        return SHMBUS_ERR_INVALID;
    *out = NULL;
    if (bus == NULL || topic == NULL)
        return SHMBUS_ERR_INVALID;
    rc = open_request(topic, opts, flags, &req);
    if (rc < 0)
        return rc;
    rc = sb_bus_call(bus, SB_MSG_OPEN, &req, sizeof(req), &ok, sizeof(ok), &fd);
    if (rc < 0)
        return rc;
    if (rc != (int)sizeof(ok)) {
        if (fd >= 0)
            close(fd);
        return SHMBUS_ERR_PROTOCOL; /* no topic id to give back */
    }
    rc = fd < 0 ? SHMBUS_ERR_PROTOCOL : sb_segment_map_fd(fd, &seg);
    if (rc < 0 || (rc = sb_topic_wrap(&seg, out)) < 0)
        goto err_close;
    rc = sb_topic_reg_attach(bus, *out, ok.topic, topic);
    if (rc < 0) {
        shmbus_topic_destroy(*out); /* not registered: only unmapped */
        *out = NULL;
        goto err_close;
    }
    close(fd);
    return 0;
err_close:
    if (fd >= 0)
        close(fd);
    /* The daemon counted us as a holder of the topic: undo that, unless
     * it is gone (a new one would read the id as another topic's). */
    {
        struct sb_wire_ref r = {.topic = ok.topic};

        bus_call(bus, NULL, 0, SB_MSG_CLOSE, &r, sizeof(r), NULL, 0, NULL);
    }
    return rc;
}

int shmbus_topic_remove(shmbus_bus *bus, const char *name, unsigned flags)
{
    struct sb_wire_remove req;
    int rc;

    if (bus == NULL || name == NULL || (flags & ~(unsigned)SHMBUS_REMOVE_FORCE) != 0)
        return SHMBUS_ERR_INVALID;
    memset(&req, 0, sizeof(req));
    if (!sb_name_valid(name, SHMBUS_TOPIC_NAME_MAX))
        return SHMBUS_ERR_BAD_NAME;
    snprintf(req.name, sizeof(req.name), "%s", name);
    req.flags = flags;
    rc = sb_bus_call(bus, SB_MSG_REMOVE, &req, sizeof(req), NULL, 0, NULL);
    /* The reply has no body: anything in it is a daemon we do not speak to. */
    return rc > 0 ? SHMBUS_ERR_PROTOCOL : rc;
}
