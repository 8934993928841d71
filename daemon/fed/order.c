/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Order per origin for the JetStream importer (order.h). A key is an
 * (origin, epoch): a topic recreated on its origin starts its seqs at 0
 * again under a new epoch, so generations never mix. Seqs of one origin
 * are not contiguous (its exporter skips imported cells and a lossy ring
 * may overtake it), which is why order rides on Shmbus-Prev, the seq the
 * exporter sent before, and not on seq + 1.
 */
#include "fed/order.h"

#include <string.h>

/* The key for @p m, or NULL if it is not tracked. */
static struct sbf_order_key *order_find(struct sbf_order *o, const struct sbf_order_msg *m)
{
    for (unsigned i = 0; i < SBF_ORDER_KEYS; i++) {
        struct sbf_order_key *k = &o->key[i];

        if (k->origin_len == m->origin_len && k->epoch == m->epoch &&
            memcmp(k->origin, m->origin, m->origin_len) == 0)
            return k;
    }
    return NULL;
}

/* A free key, else the least recently used one, emptied. */
static struct sbf_order_key *order_take(struct sbf_order *o)
{
    struct sbf_order_key *lru = &o->key[0];

    for (unsigned i = 0; i < SBF_ORDER_KEYS; i++) {
        struct sbf_order_key *k = &o->key[i];

        if (k->origin_len == 0)
            return k;
        if (k->used < lru->used)
            lru = k;
    }
    o->evicted++;
    memset(lru, 0, sizeof(*lru));
    return lru;
}

/* Does the wait timed by @p on and @p since go on at @p now_ns? Starts
 * it if none runs. */
static int order_timer(const struct sbf_order *o, int *on, uint64_t *since, uint64_t now_ns)
{
    if (!*on) {
        *on = 1;
        *since = now_ns;
        return 1;
    }
    /* now_ns below since only from a caller whose clock went back: the
     * wait restarts rather than ending at once. */
    if (now_ns < *since) {
        *since = now_ns;
        return 1;
    }
    return now_ns - *since < o->wait_ns;
}

/* Does @p k's wait go on at @p now_ns? Starts it if none runs. */
static int order_waits(const struct sbf_order *o, struct sbf_order_key *k, uint64_t now_ns)
{
    return order_timer(o, &k->waiting, &k->wait_since, now_ns);
}

/* @p k's lowest waiting seq is delivered or passed: nothing defers to it. */
static void order_unlow(struct sbf_order_key *k)
{
    k->has_low = 0;
    k->deferring = 0;
}

/* Verdict @p v for @p m, which goes past a missing predecessor if
 * delivered: a lower seq of the key told to wait goes first (k->low),
 * and a wait notes the lowest that waits. */
static enum sbf_order_verdict order_past(struct sbf_order *o, struct sbf_order_key *k,
                                         const struct sbf_order_msg *m, uint64_t now_ns,
                                         enum sbf_order_verdict v, uint64_t *gap)
{
    if (k == NULL)
        return v;
    if (v == SBF_ORDER_DELIVER && k->has_low && m->seq > k->low) {
        /* The lowest did not come again in time: it goes behind, lost
         * (counted once, as a gap). */
        if (!order_timer(o, &k->deferring, &k->defer_since, now_ns)) {
            *gap = 1;
            order_unlow(k);
            return v;
        }
        *gap = 0;
        v = SBF_ORDER_WAIT;
    }
    if (v == SBF_ORDER_WAIT && (!k->has_low || m->seq < k->low)) {
        k->low = m->seq;
        k->has_low = 1;
    }
    return v;
}

/* Fill a taken key @p k for @p m's origin and epoch. */
static void order_name(struct sbf_order_key *k, const struct sbf_order_msg *m)
{
    memcpy(k->origin, m->origin, m->origin_len);
    k->origin[m->origin_len] = '\0';
    k->origin_len = m->origin_len;
    k->epoch = m->epoch;
}

/* A message of a key with nothing delivered yet (@p k NULL: not tracked).
 * Held (m->hold_fresh) with a predecessor, it waits for it, for the
 * tracker's wait at most: a key is made, empty, to time the wait. Then it
 * goes, with no gap counted: what came before it is not known. */
static enum sbf_order_verdict order_first(struct sbf_order *o, struct sbf_order_key *k,
                                          const struct sbf_order_msg *m, uint64_t now_ns,
                                          uint64_t *gap)
{
    if (!m->has_prev)
        return SBF_ORDER_DELIVER;
    if (!m->hold_fresh)
        return order_past(o, k, m, now_ns, SBF_ORDER_DELIVER, gap);
    if (k == NULL) {
        k = order_take(o);
        order_name(k, m);
        k->empty = 1;
    }
    k->used = ++o->tick;
    return order_past(o, k, m, now_ns,
                      order_waits(o, k, now_ns) ? SBF_ORDER_WAIT : SBF_ORDER_DELIVER, gap);
}

enum sbf_order_verdict sbf_order_judge(struct sbf_order *o, const struct sbf_order_msg *m,
                                       uint64_t now_ns, uint64_t *gap)
{
    struct sbf_order_key *k;

    *gap = 0;
    /* A predecessor at or after the message, or an origin no key can hold:
     * headers no exporter writes. */
    if ((m->has_prev && m->prev >= m->seq) || m->origin_len == 0 ||
        m->origin_len > SBF_ORDER_ORIGIN_MAX)
        return SBF_ORDER_BAD;
    k = order_find(o, m);
    /* Nothing delivered of its key yet: nothing to wait for that memory
     * knows, unless the importer says its predecessor may still come. */
    if (k == NULL || k->empty)
        return order_first(o, k, m, now_ns, gap);
    k->used = ++o->tick;
    /* The lowest that waited is in the ring, or judged behind it. */
    if (k->has_low && k->low <= k->last)
        order_unlow(k);
    if (m->seq <= k->last)
        return m->seq >= k->first ? SBF_ORDER_DUP : SBF_ORDER_UNKNOWN;
    /* Its predecessor is in the ring (or it has none: the exporter's first
     * since it started, which resends what it does not know was stored). */
    if (!m->has_prev || m->prev <= k->last)
        return SBF_ORDER_DELIVER;
    /* The last delivered is an earlier daemon's, come again: the
     * predecessor may have been acknowledged long ago. Wait only while
     * the importer holds, and count no gap. */
    if (k->unsure)
        return order_past(
            o, k, m, now_ns,
            m->hold_fresh && order_waits(o, k, now_ns) ? SBF_ORDER_WAIT : SBF_ORDER_DELIVER, gap);
    if (order_waits(o, k, now_ns))
        return order_past(o, k, m, now_ns, SBF_ORDER_WAIT, gap);
    *gap = 1;
    return order_past(o, k, m, now_ns, SBF_ORDER_DELIVER, gap);
}

void sbf_order_delivered(struct sbf_order *o, const struct sbf_order_msg *m)
{
    struct sbf_order_key *k;

    /* Nothing a key can hold: sbf_order_judge() refused it already. */
    if (m->origin_len == 0 || m->origin_len > SBF_ORDER_ORIGIN_MAX)
        return;
    k = order_find(o, m);
    if (k == NULL) {
        k = order_take(o);
        order_name(k, m);
        k->empty = 1;
    }
    /* The key's first delivery (a wait that timed it ends too). */
    if (k->empty) {
        k->empty = 0;
        k->waiting = 0;
        k->first = m->seq;
        k->last = m->seq;
        k->unsure = m->stale;
    }
    k->used = ++o->tick;
    if (k->has_low && m->seq >= k->low)
        order_unlow(k);
    /* A late one below the range (the ring did not hold it) is not
     * evidence about the seqs between it and first: the range stays. */
    if (m->seq > k->last) {
        k->last = m->seq;
        k->waiting = 0;
        k->unsure = m->stale;
    }
}
