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
    /* The first seen of its key: nothing to wait for that memory knows,
     * unless the importer says its predecessor may still come (no key is
     * made: the wait ends with the hold, or when the predecessor, once
     * delivered, makes the key). */
    if (k == NULL)
        return m->hold_fresh && m->has_prev ? SBF_ORDER_WAIT : SBF_ORDER_DELIVER;
    k->used = ++o->tick;
    if (m->seq <= k->last)
        return m->seq >= k->first ? SBF_ORDER_DUP : SBF_ORDER_UNKNOWN;
    /* Its predecessor is in the ring (or it has none: the exporter's first
     * since it started, which resends what it does not know was stored). */
    if (!m->has_prev || m->prev <= k->last)
        return SBF_ORDER_DELIVER;
    if (!k->waiting) {
        k->waiting = 1;
        k->wait_since = now_ns;
        return SBF_ORDER_WAIT;
    }
    /* now_ns below wait_since only from a caller whose clock went back:
     * the wait restarts rather than ending at once. */
    if (now_ns < k->wait_since) {
        k->wait_since = now_ns;
        return SBF_ORDER_WAIT;
    }
    if (now_ns - k->wait_since < o->wait_ns)
        return SBF_ORDER_WAIT;
    *gap = 1;
    return SBF_ORDER_DELIVER;
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
        memcpy(k->origin, m->origin, m->origin_len);
        k->origin[m->origin_len] = '\0';
        k->origin_len = m->origin_len;
        k->epoch = m->epoch;
        k->first = m->seq;
        k->last = m->seq;
    }
    k->used = ++o->tick;
    /* A late one below the range (the ring did not hold it) is not
     * evidence about the seqs between it and first: the range stays. */
    if (m->seq > k->last) {
        k->last = m->seq;
        k->waiting = 0;
    }
}
