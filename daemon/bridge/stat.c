/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's answer to `shmbus stat` (bridge.h sbd_bridge_stat()): its
 * counters and its connections, read under the RCU read lock from the
 * control thread while the I/O thread and the pumps run.
 */
#include <assert.h>
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
    sbb_rlist_each (s, nx, &c->subs, struct sbb_sub, cnode) {
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

/* sbd_bridge_stat() measures each GAUGE total by hand (the COUNTERs come
 * from sb_monitor_counters_read()): this fails when SHMBUS_BRIDGE_TOTALS
 * gains a gauge it does not measure, which would read 0 forever. */
#define STAT_GAUGE_COUNTER
#define STAT_GAUGE_GAUGE                  +1
#define STAT_GAUGE(kind, field, key, doc) STAT_GAUGE_##kind
static_assert(0 SHMBUS_BRIDGE_TOTALS(STAT_GAUGE) == 2, "sbd_bridge_stat(): measure the new gauge");

unsigned sbd_bridge_stat(struct sbd_bridge *b, uint64_t after, shmbus_bridge_info *info,
                         shmbus_bridge_conn *conns, unsigned cap)
{
    struct sbb_conn *c;
    uint64_t now = sb_mono_ns();
    unsigned k = 0;

    memset(info, 0, sizeof(*info));
    if (b == NULL)
        return 0;
    snprintf(info->listen, sizeof(info->listen), "%s", b->listen);
    sb_monitor_counters_read(&b->count, info);
    /* relaxed: a gauge read for monitoring, as the counters. */
    info->memory = atomic_load_explicit(&b->mem, memory_order_relaxed);
    urcu_memb_read_lock();
    sbb_rlist_each (c, nx, &b->conns, struct sbb_conn, node) {
        shmbus_bridge_conn *e;

        info->connections++;
        if (c->id <= after || k == cap)
            continue; /* counted, not listed: @p conns may be NULL when cap is 0 */
        e = &conns[k];
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
        e->flags =
            (c->authed ? SHMBUS_BRIDGE_AUTHED : 0u) | (c->paused ? SHMBUS_BRIDGE_PAUSED : 0u);
        memcpy(e->name, c->name, sizeof(e->name));
        pthread_mutex_unlock(&c->mu);
        snprintf(e->peer, sizeof(e->peer), "%.47s", c->peer);
        subs_text(c, e->subs, sizeof(e->subs));
        k++;
    }
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    return k;
}
