/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's connections (conn.h): accepted, read and run (JSON lines
 * or RESP2, told apart by the first byte), paused for back-pressure and
 * resumed, timed out, evicted and closed. I/O thread, but for what the
 * pumps do under the connection's mutex (out.h).
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "events.h"
#include "admit.h"
#include "link.h"
#include "log.h"
#include "mem.h"
#include "out.h"
#include "publish.h"
#include "reply.h"
#include "tsan.h"
#include "util/vec.h"

#define SBB_READS_MAX  16u    /* reads of one connection per event: fairness */
#define SBB_INLINE_MAX 65536u /* one inline RESP command */
/* Input held for one incomplete RESP command beyond --bridge-max-request
 * before it is refused as too large. */
#define SBB_REQ_SLACK 65536u

/* Paused connections are retried this often. */
#define SBB_RETRY_MS 1u

/* Set the connection's epoll interest from its state. Under c->mu. */
static void conn_interest(struct sbb_conn *c)
{
    struct epoll_event ev = {.events = sbb_conn_events(c), .data.ptr = c};

    if (!c->dead && epoll_ctl(c->b->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        sbb_out_doom(c);
}

/* Stop reading @p c and close it once its output is written. */
void sbb_conn_finish(struct sbb_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    conn_interest(c);
    pthread_mutex_unlock(&c->mu);
}

void sbb_conn_fail(struct sbb_conn *c, const char *resp, const char *json)
{
    c->reply = SBB_REPLY_ON; /* whatever CLIENT REPLY says: the last word it gets */
    if (c->proto == SB_BRIDGE_JSON)
        sbb_reply_json_err(c, NULL, NULL, json);
    else
        sbb_reply_err(c, "-%s", resp);
    sbb_conn_finish(c);
}

static void conn_free_cb(struct rcu_head *h)
{
    struct sbb_conn *c = caa_container_of(h, struct sbb_conn, rcu);

    SBD_TSAN_ACQUIRE(c);
    SBD_TSAN_GRACE();
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void unpause(struct sbb_io *io, struct sbb_conn *c)
{
    for (size_t i = 0; i < io->npaused; i++) {
        if (io->paused[i] == c) {
            io->paused[i] = io->paused[--io->npaused];
            break;
        }
    }
    pthread_mutex_lock(&c->mu);
    c->paused = 0;
    conn_interest(c);
    pthread_mutex_unlock(&c->mu);
}

/* Resize @p c's input buffer to @p cap bytes (0: free it), within
 * --bridge-max-memory. @return 0 or -1. */
static int in_resize(struct sbb_conn *c, size_t cap)
{
    char *p = NULL;

    if (cap > c->in_cap && sbb_mem_charge(c->b, c, cap - c->in_cap, 0) < 0)
        return -1;
    if (cap > 0 && (p = realloc(c->in, cap)) == NULL) {
        sbb_mem_charge(c->b, c, 0, cap - c->in_cap);
        return -1;
    }
    if (cap == 0)
        free(c->in);
    if (cap < c->in_cap)
        sbb_mem_charge(c->b, c, 0, c->in_cap - cap);
    c->in = p;
    c->in_cap = cap;
    return 0;
}

void sbb_conn_close(struct sbb_io *io, struct sbb_conn *c)
{
    struct sbd_bridge *b = io->b;
    struct sbb_sub *s;

    for (size_t i = 0; i < io->npaused; i++) {
        if (io->paused[i] == c) {
            io->paused[i] = io->paused[--io->npaused];
            break;
        }
    }
    if (io->rep_conn == c) {
        io->rep_len = 0;
        io->rep_conn = NULL;
    }
    sbb_rlist_each (s, nx, &c->subs, struct sbb_sub, cnode)
        sbb_link_sub_del(s);
    pthread_mutex_lock(&c->mu);
    if (c->doomed)
        sbd_log(SBD_DEBUG, "bridge: connection %llu closed after its output overflowed",
                (unsigned long long)c->id);
    c->dead = 1;
    epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    sbb_out_release(c);
    /* relaxed: a monitoring value. */
    atomic_store_explicit(&c->buffered, 0, memory_order_relaxed);
    pthread_mutex_unlock(&c->mu);
    in_resize(c, 0);
    c->in_len = 0;
    sbb_mem_evict_done(c);
    sbb_rlist_remove(&b->conns, &c->node);
    b->nconns--;
    SBD_TSAN_RELEASE(c);
    urcu_memb_call_rcu(&c->rcu, conn_free_cb);
}

/* A new connection on @p fd: listed and watched. @return 0 or -1. */
int sbb_conn_new(struct sbd_bridge *b, int fd, const struct sockaddr_storage *sa, socklen_t sl)
{
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
    struct sbb_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        sbd_log(SBD_ERROR, "bridge: out of memory: connection refused");
        return -1;
    }
    getnameinfo((const struct sockaddr *)sa, sl, host, sizeof(host), port, sizeof(port),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
    c->b = b;
    c->fd = fd;
    c->id = ++b->next_id;
    c->accepted_ns = sb_mono_ns();
    sbb_admit_judge(b, c, sa);
    sbb_rlist_init(&c->subs);
    pthread_mutex_init(&c->mu, NULL);
    ev.data.ptr = c;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        sbd_log(SBD_WARN, "bridge: epoll: %s", strerror(errno));
        pthread_mutex_destroy(&c->mu);
        free(c);
        return -1;
    }
    sbb_rlist_append(&b->conns, &c->node);
    b->nconns++;
    /* relaxed: a counter (the refused are counted by sbb_admit_judge()). */
    if (!c->refused)
        atomic_fetch_add_explicit(&b->count.accepted, 1, memory_order_relaxed);
    sbd_log(SBD_DEBUG, "bridge: connection %llu from %s", (unsigned long long)c->id, c->peer);
    return 0;
}

/* A request that breaks the protocol: say why (in the connection's
 * protocol) and close once that is written. */
static void conn_protocol_error(struct sbd_bridge *b, struct sbb_conn *c, const char *why)
{
    /* relaxed: a counter. */
    atomic_fetch_add_explicit(&b->count.proto_errors, 1, memory_order_relaxed);
    sbb_conn_fail(c, why, why);
}

static int blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/* The next JSON line of @p p: run it. @return the bytes taken (0: no
 * complete line yet); sets *paused. */
static size_t json_step(struct sbb_io *io, struct sbb_conn *c, const char *p, size_t left,
                        int *paused)
{
    struct sbd_bridge *b = io->b;
    const char *nl = sbb_resp_scan_line(&c->scan, p, left, b->cfg->bridge_max_request + 1);
    size_t ll;

    if (nl == NULL) {
        if (left > b->cfg->bridge_max_request)
            conn_protocol_error(b, c, "line longer than --bridge-max-request");
        return 0;
    }
    ll = (size_t)(nl - p);
    if (ll > 0 && p[ll - 1] == '\r')
        ll--;
    if (!blank(p, ll) && sbb_cmd_json_run(io, c, p, ll) == SBB_RUN_PAUSE) {
        *paused = 1;
        return 0;
    }
    return (size_t)(nl - p) + 1;
}

/* The next RESP command of @p p: run it. As json_step(). */
static size_t resp_step(struct sbb_io *io, struct sbb_conn *c, const char *p, size_t left,
                        int *paused)
{
    struct sbd_bridge *b = io->b;
    uint64_t max_req = b->cfg->bridge_max_request;
    const char *err = NULL;
    int http = c->started || p[0] == '*' ? 0 : sbb_admit_http_like(p, left);
    ssize_t n;

    /* The first word of the first inline command, before any parsing: a
     * request line is refused before its line, or the next, could run. */
    if (http != 0) {
        if (http > 0)
            sbb_admit_http(b, c, p, left);
        return 0;
    }
    n = sbb_resp_parse(p, left, max_req, SBB_INLINE_MAX, &c->scan, &io->argv, &err);
    if (n > 0 && io->argv.argc > 0 && sbb_admit_http_word(io->argv.argv[0], io->argv.argl[0])) {
        sbb_admit_http(b, c, io->argv.argv[0], io->argv.argl[0]);
        return 0;
    }
    if (n > 0 && io->argv.argc > 0)
        c->started = 1;
    if (n < 0) {
        conn_protocol_error(b, c, err);
        return 0;
    }
    if (n == 0) {
        if (left > max_req + SBB_REQ_SLACK)
            conn_protocol_error(b, c, "ERR Protocol error: request too large");
        return 0;
    }
    if (sbb_cmd_resp_run(io, c, &io->argv) == SBB_RUN_PAUSE) {
        *paused = 1;
        return 0;
    }
    return (size_t)n;
}

/* Run the complete commands in @p buf. @return the bytes consumed; sets
 * *paused when a publish must wait. */
static size_t conn_run(struct sbb_io *io, struct sbb_conn *c, const char *buf, size_t len,
                       int *paused)
{
    size_t off = 0, n;

    *paused = 0;
    while (off < len && !c->closing) {
        if (c->proto == SB_BRIDGE_UNKNOWN) {
            while (off < len && strchr(" \t\r\n", buf[off]) != NULL && buf[off] != '\0')
                off++;
            if (off == len)
                break;
            pthread_mutex_lock(&c->mu);
            c->proto = buf[off] == '{' ? SB_BRIDGE_JSON : SB_BRIDGE_RESP;
            pthread_mutex_unlock(&c->mu);
        }
        if (c->refused) {
            sbb_admit_refuse(c); /* nothing it sent runs */
            return len;
        }
        if (c->proto == SB_BRIDGE_JSON)
            n = json_step(io, c, buf + off, len - off, paused);
        else
            n = resp_step(io, c, buf + off, len - off, paused);
        if (n == 0)
            break;
        off += n;
        memset(&c->scan, 0, sizeof(c->scan)); /* the next command's search */
    }
    return off;
}

/* Keep the unconsumed input. @return 0 or -1 (out of memory). */
static int conn_keep(struct sbb_conn *c, const char *p, size_t len)
{
    if (len == 0) {
        c->in_len = 0;
        return in_resize(c, 0);
    }
    /* @p p is in the read buffer, or already in c->in. */
    if (p != c->in) {
        if (len > c->in_cap && in_resize(c, len) < 0)
            return -1;
        memmove(c->in, p, len);
    }
    c->in_len = len;
    return 0;
}

static void conn_pause(struct sbb_io *io, struct sbb_conn *c)
{
    if (SB_VEC_RESERVE(io->paused, io->paused_cap, io->npaused, 1, 16) < 0)
        return; /* it stays readable: the next event retries */
    for (size_t i = 0; i < io->npaused; i++)
        if (io->paused[i] == c)
            return;
    io->paused[io->npaused++] = c;
    pthread_mutex_lock(&c->mu);
    c->paused = 1;
    conn_interest(c);
    pthread_mutex_unlock(&c->mu);
}

/* Run what @p c has buffered (and @p data just read), keep the rest.
 * @return 0; 1 when a publish waits for room (the connection is paused);
 * -1 to close the connection now. */
static int conn_input(struct sbb_io *io, struct sbb_conn *c, const char *data, size_t n)
{
    const char *buf = data;
    size_t len = n, used;
    int paused;

    if (c->in_len > 0) {
        if (n > 0) {
            /* in_len > 0: in_cap is too, so the buffer doubles from it. */
            size_t cap = sb_vec_cap_for(1, c->in_len, n, c->in_cap, 0);

            if (cap == 0 || (cap > c->in_cap && in_resize(c, cap) < 0))
                return -1;
            memcpy(c->in + c->in_len, data, n);
            c->in_len += n;
        }
        buf = c->in;
        len = c->in_len;
    }
    used = conn_run(io, c, buf, len, &paused);
    if (conn_keep(c, buf + used, len - used) < 0)
        return -1;
    /* --bridge-cmd-timeout counts from the first byte of the command left
     * incomplete: a command ended in this read leaves one begun in it.
     * A paused publish is complete; --bridge-pub-timeout bounds it. */
    if (paused || c->in_len == 0)
        c->cmd_ns = 0;
    else if (used > 0 || c->cmd_ns == 0)
        c->cmd_ns = sb_mono_ns();
    if (paused)
        conn_pause(io, c);
    return paused;
}

static void conn_flush(struct sbb_io *io, struct sbb_conn *c)
{
    sbb_reply_flush(io);
    pthread_mutex_lock(&c->mu);
    sbb_out_flush(c);
    pthread_mutex_unlock(&c->mu);
}

/* Output drained and QUIT seen (or a protocol error): time to close. */
static int conn_done(struct sbb_conn *c)
{
    int done;

    pthread_mutex_lock(&c->mu);
    done = c->doomed || (c->closing && c->out_off == c->out_len);
    pthread_mutex_unlock(&c->mu);
    return done;
}

/* Read and run what @p c sent. @return 1 if the connection was closed. */
static int conn_readable(struct sbb_io *io, struct sbb_conn *c)
{
    struct sbd_bridge *b = io->b;
    int end = 0;

    for (unsigned r = 0; r < SBB_READS_MAX && !c->paused && !c->closing; r++) {
        ssize_t n = recv(c->fd, io->rbuf, SBB_READ_CHUNK, MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            end = 1; /* end of stream, or reset: the replies so far still go */
            break;
        }
        if (conn_input(io, c, io->rbuf, (size_t)n) < 0) {
            /* relaxed: a counter. */
            atomic_fetch_add_explicit(&b->count.proto_errors, 1, memory_order_relaxed);
            sbd_log(SBD_WARN,
                    "bridge: connection %llu (%s): no memory for its input "
                    "(--bridge-max-memory or the system's): closed",
                    (unsigned long long)c->id, c->peer);
            end = 1;
            break;
        }
        if ((size_t)n < SBB_READ_CHUNK)
            break;
    }
    sbb_publish_deliver(io);
    conn_flush(io, c);
    if (!end && !conn_done(c))
        return 0;
    sbb_conn_close(io, c);
    return 1;
}

/* Write what @p c has waiting. @return 1 if the connection was closed. */
static int conn_writable(struct sbb_io *io, struct sbb_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->epout = 0;
    sbb_out_flush(c);
    if (!c->epout)
        conn_interest(c);
    pthread_mutex_unlock(&c->mu);
    if (!conn_done(c))
        return 0;
    sbb_conn_close(io, c);
    return 1;
}

/* One epoll event of a connection. Input is read even when the peer hung
 * up: commands it sent before closing still run. */
void sbb_conn_event(struct sbb_io *io, struct sbb_conn *c, uint32_t events)
{
    if ((events & EPOLLOUT) && conn_writable(io, c))
        return;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && conn_readable(io, c))
        return;
    if (events & (EPOLLHUP | EPOLLERR))
        sbb_conn_close(io, c); /* paused or closing: nothing more will be read */
}

/* Retry the publishes that found their topics full, once a millisecond,
 * and the PSUBSCRIBEs whose patterns got linked. A connection stays paused
 * (EPOLLIN off, no epoll call) while its publish still finds the topic
 * full or its pattern is still being linked; the latter is not re-parsed
 * (its command may be 64 KB of inline input) until it is linked. */
void sbb_conn_retry_paused(struct sbb_io *io)
{
    size_t n = io->npaused;
    struct sbb_conn **list;
    uint64_t now = sbb_now_ms();

    if (n == 0 || now < io->next_retry_ms)
        return;
    io->next_retry_ms = now + SBB_RETRY_MS;
    list = malloc(n * sizeof(*list));
    if (list == NULL)
        return;
    memcpy(list, io->paused, n * sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        struct sbb_conn *c = list[i];
        int rc;

        if (c->linking != NULL && sbb_link_sub_linking(c->linking))
            continue; /* nothing to run yet: O(1) */
        rc = conn_input(io, c, NULL, 0);
        if (rc == 0)
            unpause(io, c);
        sbb_publish_deliver(io);
        conn_flush(io, c);
        if (rc < 0 || conn_done(c))
            sbb_conn_close(io, c);
    }
    free(list);
}

/* Give back the large buffers of connections that drained them. */
void sbb_conn_trim_all(struct sbd_bridge *b)
{
    struct sbb_conn *c;

    sbb_rlist_each (c, nx, &b->conns, struct sbb_conn, node) {
        pthread_mutex_lock(&c->mu);
        sbb_out_trim(c);
        pthread_mutex_unlock(&c->mu);
    }
}

/* Close connections that did not authenticate in time, those refused
 * that sent nothing (--bridge-auth-timeout), and those with a command
 * incomplete for too long (--bridge-cmd-timeout). */
void sbb_conn_expire_all(struct sbb_io *io)
{
    struct sbd_bridge *b = io->b;
    uint64_t now = sb_mono_ns(), limit = (uint64_t)b->cfg->bridge_auth_ms * 1000000u;
    uint64_t cmd_limit = (uint64_t)b->cfg->bridge_cmd_ms * 1000000u;
    struct sbb_conn *c;

    sbb_rlist_each (c, nx, &b->conns, struct sbb_conn, node) {
        if (c->cmd_ns != 0 && now - c->cmd_ns >= cmd_limit && !c->closing) {
            sbb_admit_cmd_expired(b, c);
        } else if (c->authed || now - c->accepted_ns < limit) {
            continue;
        } else if (c->closing) {
            /* Refused or failed, answered already: its output never drained. */
        } else if (c->refused) {
            sbb_admit_refuse(c); /* it sent nothing */
        } else {
            /* relaxed: a counter. */
            atomic_fetch_add_explicit(&b->count.auth_expired, 1, memory_order_relaxed);
            sbb_conn_fail(c, "ERR authentication timeout", "authentication timeout");
        }
        conn_flush(io, c);
        sbb_conn_close(io, c);
    }
}

/* Close the connections marked for holding the most memory when the
 * budget was full (mem.h). After a batch of events: none of them
 * points to a closed connection. */
void sbb_conn_evict_marked(struct sbb_io *io)
{
    struct sbd_bridge *b = io->b;
    struct sbb_conn *c;

    while ((c = sbb_mem_evict_next(b)) != NULL) {
        /* relaxed: a counter and a monitoring value. */
        atomic_fetch_add_explicit(&b->count.evicted, 1, memory_order_relaxed);
        sbd_log(SBD_WARN,
                "bridge: connection %llu (%s) holds the most memory, %zu bytes of input, output "
                "and subscriptions, and all connections reached --bridge-max-memory %llu: "
                "disconnected",
                (unsigned long long)c->id, c->peer,
                atomic_load_explicit(&c->mem, memory_order_relaxed), /* relaxed: logged */
                (unsigned long long)b->cfg->bridge_max_memory);
        sbd_event("bridge_closed",
                  (struct sbd_ev_field[]){SBD_EV_S("peer", c->peer), SBD_EV_S("why", "memory")}, 2);
        sbb_conn_close(io, c);
    }
}
