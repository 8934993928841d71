/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's output buffers (out.h): each connection's bounded output,
 * which replies and deliveries are appended to under its mutex and
 * written from with one send() per round, and the growable byte buffers
 * a pump round encodes into.
 */
#include "out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "conn.h"
#include "events.h"
#include "log.h"
#include "mem.h"
#include "state.h"
#include "util/vec.h"

/* The first capacity of a byte buffer. */
#define OUT_BUF_FIRST 1024

int sbb_out_buf_reserve(char **buf, size_t *cap, size_t used, size_t len)
{
    /* A buffer exists even for nothing: callers offset into it. */
    size_t more = *buf != NULL || len > 0 ? len : 1;

    return SB_VEC_RESERVE(*buf, *cap, used, more, OUT_BUF_FIRST) < 0 ? -1 : 0;
}

/* Free @p c's output buffer. Under c->mu. */
static void out_free(struct sbb_conn *c)
{
    sbb_mem_charge(c->b, c, 0, c->out_cap);
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
}

void sbb_out_doom(struct sbb_conn *c)
{
    if (c->dead || c->doomed)
        return;
    c->doomed = 1;
    /* Being closed already: never marked as the largest as well (closed,
     * counted and logged twice), and a mark it had lends no more. */
    sbb_mem_evict_done(c);
    out_free(c);
    /* relaxed: a monitoring value. */
    atomic_store_explicit(&c->buffered, 0, memory_order_relaxed);
    /* The I/O thread sees the hang-up (EPOLLHUP is always reported) and
     * closes the connection; until then nothing more is written. */
    shutdown(c->fd, SHUT_RDWR);
}

char *sbb_out_reserve(struct sbb_conn *c, size_t len)
{
    size_t pending = c->out_len - c->out_off;

    if (c->dead || c->doomed)
        return NULL;
    if (pending + len > c->b->cfg->bridge_max_output) {
        /* relaxed: a counter. */
        atomic_fetch_add_explicit(&c->b->count.slow_closed, 1, memory_order_relaxed);
        sbd_log(SBD_WARN,
                "bridge: connection %llu (%s) is too slow: %zu bytes buffered, limit "
                "%llu (--bridge-max-output): disconnected",
                (unsigned long long)c->id, c->peer, pending + len,
                (unsigned long long)c->b->cfg->bridge_max_output);
        sbd_event("bridge_closed",
                  (struct sbd_ev_field[]){SBD_EV_S("peer", c->peer), SBD_EV_S("why", "slow")}, 2);
        sbb_out_doom(c);
        return NULL;
    }
    if (c->out_len + len > c->out_cap && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, pending);
        c->out_off = 0;
        c->out_len = pending;
    }
    if (c->out_len + len > c->out_cap) {
        size_t n = sb_vec_cap_for(1, c->out_len, len, c->out_cap, OUT_BUF_FIRST);
        char *p;

        if (sbb_mem_charge(c->b, c, n - c->out_cap, 0) < 0) {
            /* relaxed: a counter. */
            atomic_fetch_add_explicit(&c->b->count.slow_closed, 1, memory_order_relaxed);
            sbd_log(SBD_WARN,
                    "bridge: connection %llu (%s): the connections' memory reached "
                    "--bridge-max-memory %llu and this one holds the most: disconnected",
                    (unsigned long long)c->id, c->peer,
                    (unsigned long long)c->b->cfg->bridge_max_memory);
            sbd_event("bridge_closed",
                      (struct sbd_ev_field[]){SBD_EV_S("peer", c->peer), SBD_EV_S("why", "memory")},
                      2);
            sbb_out_doom(c);
            return NULL;
        }
        p = realloc(c->out, n);
        if (p == NULL) {
            sbb_mem_charge(c->b, c, 0, n - c->out_cap);
            sbd_log(SBD_ERROR,
                    "bridge: connection %llu: out of memory for its output: disconnected",
                    (unsigned long long)c->id);
            sbb_out_doom(c);
            return NULL;
        }
        c->out = p;
        c->out_cap = n;
    }
    return c->out + c->out_len;
}

void sbb_out_commit(struct sbb_conn *c, size_t len)
{
    c->out_len += len;
    /* relaxed: a monitoring value. */
    atomic_store_explicit(&c->buffered, c->out_len - c->out_off, memory_order_relaxed);
}

int sbb_out_put(struct sbb_conn *c, const void *data, size_t len)
{
    char *o = sbb_out_reserve(c, len);

    if (o == NULL)
        return -1;
    memcpy(o, data, len);
    sbb_out_commit(c, len);
    return 0;
}

void sbb_out_flush(struct sbb_conn *c)
{
    while (!c->dead && !c->doomed && !c->epout && c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event ev = {.data.ptr = c};

            /* The I/O thread writes the rest when the socket has room. */
            c->epout = 1;
            ev.events = sbb_conn_events(c);
            if (epoll_ctl(c->b->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                sbb_out_doom(c);
        } else {
            sbb_out_doom(c); /* the peer is gone: the I/O thread closes */
        }
    }
    /* A drained buffer stays for the next round (sbb_out_trim() frees
     * the large ones of connections that stay idle). */
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    /* relaxed: a monitoring value. */
    atomic_store_explicit(&c->buffered, c->out_len - c->out_off, memory_order_relaxed);
}

void sbb_out_trim(struct sbb_conn *c)
{
    if (c->out_off == c->out_len && c->out_cap > SBB_OUT_KEEP)
        out_free(c);
}

void sbb_out_release(struct sbb_conn *c)
{
    out_free(c);
}
