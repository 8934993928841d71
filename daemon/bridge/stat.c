/*
 * The bridge's answer to `shmbus stat` (bridge.h sbd_bridge_stat()): its
 * counters and its connections, read under the RCU read lock from the
 * control thread while the I/O thread and the pumps run.
 */
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "state.h"
#include "tsan.h"

/* "a,b,p:x*" into @p out, ending "..." when cut. Under the read lock. */
static void subs_text(struct sbb_conn *c, char *out, size_t cap)
{
    struct sbb_sub *s;
    size_t n = 0;

    out[0] = '\0';
    sbd_rlist_each(s, nx, &c->subs, struct sbb_sub, cnode)
    {
        size_t need;

        need = s->len + (s->pattern ? 2 : 0) + (n > 0);
        if (n + need + 4 > cap) {
            memcpy(out + n, "...", 4);
            return;
        }
        n += (size_t)snprintf(out + n, cap - n, "%s%s%s", n > 0 ? "," : "", s->pattern ? "p:" : "",
                              s->name);
    }
}

unsigned sbd_bridge_stat(struct sbd_bridge *b, uint64_t after, struct sb_wire_bridge_ok *out)
{
    struct sbb_conn *c;
    uint64_t now = sb_mono_ns();
    unsigned k = 0;

    memset(out, 0, sizeof(*out));
    if (b == NULL)
        return 0;
    snprintf(out->listen, sizeof(out->listen), "%s", b->listen);
    /* relaxed, all: independent counters. */
    out->accepted = atomic_load_explicit(&b->accepted, memory_order_relaxed);
    out->slow_closed = atomic_load_explicit(&b->slow_closed, memory_order_relaxed);
    out->refused = atomic_load_explicit(&b->refused, memory_order_relaxed);
    out->auth_failed = atomic_load_explicit(&b->auth_failed, memory_order_relaxed);
    out->auth_expired = atomic_load_explicit(&b->auth_expired, memory_order_relaxed);
    out->proto_errors = atomic_load_explicit(&b->proto_errors, memory_order_relaxed);
    out->msgs_in = atomic_load_explicit(&b->msgs_in, memory_order_relaxed);
    out->msgs_out = atomic_load_explicit(&b->msgs_out, memory_order_relaxed);
    out->bad_cells = atomic_load_explicit(&b->bad_cells, memory_order_relaxed);
    out->memory = atomic_load_explicit(&b->mem, memory_order_relaxed);
    out->evicted = atomic_load_explicit(&b->evicted, memory_order_relaxed);
    urcu_memb_read_lock();
    sbd_rlist_each(c, nx, &b->conns, struct sbb_conn, node)
    {
        struct sb_wire_bridge_conn *e = &out->conns[k];

        out->connections++;
        if (c->id <= after || k == SB_WIRE_BRIDGE_MAX)
            continue;
        memset(e, 0, sizeof(*e));
        e->id = c->id;
        e->age_ms = (now - c->accepted_ns) / 1000000u;
        /* relaxed, all: monitoring values, as above. */
        e->buffered = atomic_load_explicit(&c->buffered, memory_order_relaxed);
        e->msgs_out = atomic_load_explicit(&c->msgs_out, memory_order_relaxed);
        e->msgs_in = atomic_load_explicit(&c->msgs_in, memory_order_relaxed);
        e->memory = atomic_load_explicit(&c->mem, memory_order_relaxed);
        e->channels = atomic_load_explicit(&c->nchan, memory_order_relaxed);
        e->patterns = atomic_load_explicit(&c->npat, memory_order_relaxed);
        pthread_mutex_lock(&c->mu);
        e->proto = c->proto;
        e->flags = (c->authed ? SB_BRIDGE_AUTHED : 0u) | (c->paused ? SB_BRIDGE_PAUSED : 0u);
        memcpy(e->name, c->name, sizeof(e->name));
        pthread_mutex_unlock(&c->mu);
        snprintf(e->peer, sizeof(e->peer), "%.47s", c->peer);
        subs_text(c, e->subs, sizeof(e->subs));
        k++;
    }
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    out->count = k;
    return k;
}
