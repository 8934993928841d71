/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's I/O thread (bridge.h): an epoll loop over the listening
 * socket, an eventfd (new topics, stop) and the connections (conn.c). It
 * accepts connections, runs the work of each pass (linking, paused
 * connections, evictions) and of each tick (deadlines, buffer trimming),
 * and starts and stops the bridge.
 *
 * Input is parsed straight from the read buffer; only a partial command is
 * copied into the connection; a drained output buffer larger than 4 KiB
 * is freed within a second, so an idle connection holds little memory.
 * Replies go through the same bounded output buffer as deliveries and are
 * written once per read. A publish into a full reliable topic leaves the
 * command unread and stops reading the connection (EPOLLIN off) until the
 * ring has room or --bridge-pub-timeout passes: back-pressure reaches the
 * client through TCP, and the daemon buffers nothing more for it.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "conn.h"
#include "link.h"
#include "listen.h"
#include "log.h"
#include "peer.h"
#include "pump.h"
#include "reply.h"
#include "state.h"

static_assert(SBB_ARGV_MAX == SBD_BRIDGE_SUBS_MAX + 2, "--bridge-max-subs bound");

#define SBB_EVENTS_MAX     64   /* epoll events taken in one wait */
#define SBB_LISTEN_BACKLOG 1024 /* connections the kernel queues before accept() */
/* TCP keepalive: probes start after SBB_KEEPIDLE_S idle seconds, one every
 * SBB_KEEPINTVL_S, and SBB_KEEPCNT unanswered ones close the connection. */
#define SBB_KEEPIDLE_S  60
#define SBB_KEEPINTVL_S 10
#define SBB_KEEPCNT     6
/* Out of descriptors: listening pauses this long, and the warning is
 * logged at most this often. */
#define SBB_ACCEPT_PAUSE_MS 100u
#define SBB_EMFILE_LOG_MS   1000u
/* The tick is a quarter of the shortest deadline, and of this at most:
 * a second (tick_ms()). */
#define SBB_TICK_MAX_MS 4000u

/* Out of descriptors: stop watching the listening socket a while (the
 * pending connection stays queued; accepting it now would fail again). */
static void accept_pause(struct sbb_io *io)
{
    struct sbd_bridge *b = io->b;
    struct epoll_event ev = {.events = 0, .data.ptr = &b->lfd};
    uint64_t now = sbb_now_ms();

    if (now >= io->log_emfile_ms) {
        sbd_log(SBD_WARN, "bridge: accept: %s (descriptor limit: see --bridge-max-conns)",
                strerror(errno));
        io->log_emfile_ms = now + SBB_EMFILE_LOG_MS;
    }
    epoll_ctl(b->epfd, EPOLL_CTL_MOD, b->lfd, &ev);
    io->accept_resume_ms = now + SBB_ACCEPT_PAUSE_MS;
}

static void accept_resume(struct sbb_io *io)
{
    struct sbd_bridge *b = io->b;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &b->lfd};

    if (io->accept_resume_ms == 0 || sbb_now_ms() < io->accept_resume_ms)
        return;
    epoll_ctl(b->epfd, EPOLL_CTL_MOD, b->lfd, &ev);
    io->accept_resume_ms = 0;
}

/* A connection's socket options: no Nagle delay for replies and
 * deliveries, and keepalive probes. */
static void sock_setup(int fd)
{
    int one = 1, keep_idle = SBB_KEEPIDLE_S, keep_intvl = SBB_KEEPINTVL_S, keep_cnt = SBB_KEEPCNT;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A peer that vanished (host down, cable out) is found in about 2 min
     * and closed, instead of holding its place for good. */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keep_idle, sizeof(keep_idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keep_intvl, sizeof(keep_intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keep_cnt, sizeof(keep_cnt));
}

static void conn_accept(struct sbb_io *io)
{
    static const char full[] = "-ERR max number of clients reached\r\n";
    struct sbd_bridge *b = io->b;

    for (;;) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        int fd = accept4(b->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(io);
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                sbd_log(SBD_WARN, "bridge: accept: %s", strerror(errno));
            return;
        }
        if (b->nconns >= b->cfg->bridge_max_conns) {
            /* relaxed: a counter. */
            atomic_fetch_add_explicit(&b->count.refused, 1, memory_order_relaxed);
            if (send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                sbd_log(SBD_DEBUG, "bridge: refused connection: %s", strerror(errno));
            close(fd);
            continue;
        }
        sock_setup(fd);
        if (sbb_conn_new(b, fd, &sa, sl) < 0)
            close(fd);
    }
}

/* What the I/O thread does every tick: deadlines, buffer trimming. */
static void tick_work(struct sbb_io *io)
{
    sbb_conn_expire_all(io);
    sbb_conn_trim_all(io->b);
    sbb_admit_tick(io->b);
}

/* The tick: a second, or a quarter of the shortest deadline, so that each
 * is kept to within a quarter of itself. */
static uint64_t tick_ms(const struct sbd_config *cfg)
{
    uint64_t t = SBB_TICK_MAX_MS;

    if (cfg->bridge_cmd_ms < t)
        t = cfg->bridge_cmd_ms;
    if (cfg->bridge_auth_ms < t)
        t = cfg->bridge_auth_ms;
    return (t + 3) / 4;
}

static void *io_main(void *arg)
{
    struct sbd_bridge *b = arg;
    struct sbb_io *io = &b->io;
    struct epoll_event ev[SBB_EVENTS_MAX];
    uint64_t tick = tick_ms(b->cfg);
    uint64_t next_tick = sbb_now_ms() + tick;
    struct sbb_conn *c;

    urcu_memb_register_thread();
    /* relaxed: nothing is published with the flag (sbd_bridge_stop() only
     * wants the loop to end). The eventfd write that follows its store
     * wakes us, and it is re-read after every wait; a stale read costs at
     * most one more timeout (tick). */
    while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
        int timeout = sbb_link_busy(b)            ? 0
                      : io->npaused > 0           ? 1
                      : io->accept_resume_ms != 0 ? (int)SBB_ACCEPT_PAUSE_MS
                                                  : (int)tick;
        int n = epoll_wait(b->epfd, ev, SBB_EVENTS_MAX, timeout);

        if (n < 0 && errno != EINTR) {
            sbd_log(SBD_ERROR, "bridge: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;

            if (p == &b->lfd) {
                conn_accept(io);
            } else if (p == &b->evfd) {
                uint64_t v;

                if (read(b->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    sbd_log(SBD_WARN, "bridge: eventfd: %s", strerror(errno));
                sbb_link_topics_new(b);
            } else {
                sbb_conn_event(io, p, ev[i].events);
            }
        }
        sbb_conn_evict_marked(io);
        sbb_link_work(b);
        sbb_conn_retry_paused(io);
        accept_resume(io);
        if (sbb_now_ms() >= next_tick) {
            tick_work(io);
            next_tick = sbb_now_ms() + tick;
        }
    }
    sbb_rlist_each (c, nx, &b->conns, struct sbb_conn, node)
        sbb_conn_close(io, c);
    free(io->paused);
    urcu_memb_unregister_thread();
    return NULL;
}

static int listen_on(struct sbd_bridge *b, const struct sbd_config *cfg)
{
    int fd = sbd_listen_tcp("bridge", cfg->bridge_host, cfg->bridge_port, SBB_LISTEN_BACKLOG,
                            b->listen, sizeof(b->listen));

    /* Logged by sbd_listen_tcp() or by the caller. */
    if (fd < 0)
        return fd;
    b->lfd = fd;
    return 0;
}

static void bridge_free(struct sbd_bridge *b)
{
    struct sbb_io *io = &b->io;

    if (b->lfd >= 0)
        close(b->lfd);
    if (b->epfd >= 0)
        close(b->epfd);
    if (b->evfd >= 0)
        close(b->evfd);
    pthread_mutex_destroy(&b->new_mu);
    sbb_pump_batch_free(&io->direct);
    sbb_link_fini(b);
    free(b->pubt);
    free(io->rbuf);
    free(io->rep);
    free(io->jscratch);
    free(b);
}

/* Sockets and buffers of a new bridge. @return 0 or -errno. */
static int bridge_open(struct sbd_bridge *b)
{
    struct sbb_io *io = &b->io;
    struct epoll_event ev = {.events = EPOLLIN};
    int rc;

    io->rbuf = malloc(SBB_READ_CHUNK);
    io->rep = malloc(SBB_REP_MAX);
    io->jscratch = malloc(b->cfg->bridge_max_request + 1);
    if (io->rbuf == NULL || io->rep == NULL || io->jscratch == NULL || sbb_link_init(b) < 0)
        return -ENOMEM;
    rc = listen_on(b, b->cfg);
    if (rc < 0)
        return rc;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    b->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->epfd < 0 || b->evfd < 0)
        return -errno;
    ev.data.ptr = &b->lfd;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->lfd, &ev) < 0)
        return -errno;
    ev.data.ptr = &b->evfd;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->evfd, &ev) < 0)
        return -errno;
    return 0;
}

int sbd_bridge_start(const struct sbd_config *cfg, struct sbd_registry *reg,
                     struct sbd_bridge **out)
{
    struct sbd_bridge *b = calloc(1, sizeof(*b));
    int rc;

    if (b == NULL)
        return -ENOMEM;
    sbb_peer_warn(cfg);
    b->cfg = cfg;
    b->reg = reg;
    b->lfd = b->epfd = b->evfd = -1;
    b->io.b = b;
    b->io.direct.mark = 1;
    sbb_rlist_init(&b->conns);
    pthread_mutex_init(&b->new_mu, NULL);
    rc = bridge_open(b);
    if (rc < 0) {
        bridge_free(b);
        return rc;
    }
    sbb_link_hook(reg, b);
    rc = pthread_create(&b->io_thread, NULL, io_main, b);
    if (rc != 0) {
        sbb_link_hook(reg, NULL);
        bridge_free(b);
        return -rc;
    }
    sbd_log(SBD_INFO, "bridge: listening on %s (JSON lines and Redis protocol%s)", b->listen,
            cfg->bridge_token[0] != '\0' ? ", AUTH required" : "");
    *out = b;
    return 0;
}

void sbd_bridge_stop(struct sbd_bridge *b)
{
    uint64_t one = 1;

    if (b == NULL)
        return;
    sbb_link_hook(b->reg, NULL);
    /* relaxed: read by the I/O thread alone (io_main()), which the eventfd
     * written below wakes to re-read it; nothing is published with it. The
     * pumps have their own stop (sbb_pump_stop()). */
    atomic_store_explicit(&b->stop, 1, memory_order_relaxed);
    if (write(b->evfd, &one, sizeof(one)) < 0)
        sbd_log(SBD_WARN, "bridge: eventfd: %s", strerror(errno));
    pthread_join(b->io_thread, NULL);
    for (unsigned i = 0; i < b->npumps; i++)
        sbb_pump_stop(b->pumps[i]);
    for (size_t i = 0; i < b->npub; i++) {
        shmbus_pub_destroy(b->pubt[i]->bridge_pub);
        b->pubt[i]->bridge_pub = NULL;
    }
    /* The frees queued by the threads run before the registry goes. */
    urcu_memb_barrier();
    bridge_free(b);
}
