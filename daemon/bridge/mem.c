/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's memory budgets (mem.h). Counts are relaxed atomics:
 * a budget is not a synchronisation, and what other threads charge at the
 * same moment may pass it by one charge each. A connection marked for
 * closing lends its bytes to the others until the I/O thread closes it
 * (b->evicting), so that the one that asked goes on at once: the bridge
 * holds at most the budget plus the bytes of the connections being closed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "state.h"
#include "mem.h"
#include "log.h"

/* Mark the connection that holds the most bytes for closing, unless it is
 * @p asking. O(connections). Any thread. @return 0 if one was marked (or
 * another thread marked one meanwhile: look again), -1 if not. */
static int evict_largest(struct sbd_bridge *b, struct sbb_conn *asking)
{
    struct sbb_conn *c, *big = NULL;
    size_t most = 0, none = 0;
    uint64_t one = 1;
    int rc = -1;

    urcu_memb_read_lock();
    sbb_rlist_each (c, nx, &b->conns, struct sbb_conn, node) {
        /* relaxed, both: monitoring values, compared at one moment. */
        size_t m = atomic_load_explicit(&c->mem, memory_order_relaxed);

        if (m > most && atomic_load_explicit(&c->evicting, memory_order_relaxed) == 0) {
            big = c;
            most = m;
        }
    }
    if (big != NULL && big != asking) {
        /* Lent before the mark is set. release: pairs with the acquire
         * exchange of sbb_mem_evict_done(), which takes the loan back only
         * after it, so that b->evicting never dips below 0. relaxed on
         * failure and for the counts. */
        atomic_fetch_add_explicit(&b->evicting, most, memory_order_relaxed);
        if (!atomic_compare_exchange_strong_explicit(&big->evicting, &none, most,
                                                     memory_order_release, memory_order_relaxed))
            atomic_fetch_sub_explicit(&b->evicting, most, memory_order_relaxed); /* another did */
        else if (write(b->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            sbd_log(SBD_WARN, "bridge: eventfd: %s", strerror(errno));
        rc = 0;
    }
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    return rc;
}

int sbb_mem_charge(struct sbd_bridge *b, struct sbb_conn *c, size_t grow_by, size_t shrink_by)
{
    size_t max = b->cfg->bridge_max_memory;

    /* relaxed, all: counts (see the top of the file). */
    while (grow_by > 0) {
        size_t used = atomic_fetch_add_explicit(&b->mem, grow_by, memory_order_relaxed) + grow_by;
        size_t lent = atomic_load_explicit(&b->evicting, memory_order_relaxed);

        if (used - shrink_by <= max + lent)
            break;
        /* relaxed: the count taken back, as it was added. */
        atomic_fetch_sub_explicit(&b->mem, grow_by, memory_order_relaxed);
        /* Marked, doomed or closed: past the budget it gets no more
         * (its bytes go soon), and it closes nobody. relaxed: a mark is
         * read as a value; nothing else is read through it. */
        if (atomic_load_explicit(&c->evicting, memory_order_relaxed) != 0 ||
            evict_largest(b, c) < 0)
            return -1;
    }
    /* relaxed: byte counts, a budget and not a synchronisation. */
    atomic_fetch_sub_explicit(&b->mem, shrink_by, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->mem, grow_by, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->mem, shrink_by, memory_order_relaxed);
    return 0;
}

int sbb_mem_sub_charge(struct sbb_conn *c, size_t bytes, char *why, size_t why_len)
{
    const struct sbd_config *cfg = c->b->cfg;

    if (c->sub_mem + bytes > cfg->bridge_max_sub_memory) {
        snprintf(why, why_len,
                 "the subscriptions of this connection would pass --bridge-max-sub-memory "
                 "(%llu bytes): fewer topics per pattern, or fewer patterns",
                 (unsigned long long)cfg->bridge_max_sub_memory);
        return SHMBUS_ERR_LIMIT;
    }
    if (sbb_mem_charge(c->b, c, bytes, 0) < 0) {
        snprintf(why, why_len,
                 "the bridge's memory is full (--bridge-max-memory %llu bytes) and this "
                 "connection holds the most",
                 (unsigned long long)cfg->bridge_max_memory);
        return SHMBUS_ERR_LIMIT;
    }
    c->sub_mem += bytes;
    return 0;
}

void sbb_mem_sub_release(struct sbb_conn *c, size_t bytes)
{
    c->sub_mem -= bytes;
    sbb_mem_charge(c->b, c, 0, bytes);
}

struct sbb_conn *sbb_mem_evict_next(struct sbd_bridge *b)
{
    struct sbb_conn *c;

    /* relaxed: the eventfd woke us after a mark; one missed now (lent
     * before it was set) comes with its own wake. */
    if (atomic_load_explicit(&b->evicting, memory_order_relaxed) == 0)
        return NULL;
    sbb_rlist_each (c, nx, &b->conns, struct sbb_conn, node) {
        /* relaxed: the mark is read as a value, nothing through it; the
         * loan it stands for is taken back by sbb_mem_evict_done()'s
         * acquire exchange. */
        size_t m = atomic_load_explicit(&c->evicting, memory_order_relaxed);

        if (m != 0 && m != SBB_EVICT_CLOSED)
            return c;
    }
    return NULL;
}

void sbb_mem_evict_done(struct sbb_conn *c)
{
    /* acquire: pairs with the release mark of evict_largest(): its loan
     * was added before we take it back. The exchange gives a mark back
     * once, and no mark can follow it. */
    size_t m = atomic_exchange_explicit(&c->evicting, SBB_EVICT_CLOSED, memory_order_acquire);

    /* relaxed: a count. */
    if (m != 0 && m != SBB_EVICT_CLOSED)
        atomic_fetch_sub_explicit(&c->b->evicting, m, memory_order_relaxed);
}
