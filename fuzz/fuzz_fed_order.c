/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the JetStream importer's order per origin
 * (daemon/fed/order.c). The input is a sequence of 6-byte steps, each a
 * message (origin out of 40 names, so that keys get evicted; epoch; seq
 * and prev as deltas around the key's last delivered; whether prev is
 * there) and a clock step, run through judge and, on a delivery, delivered,
 * as the importer does. Whatever the sequence: a message with prev not
 * below seq is refused; only a message with a predecessor waits (a first
 * of its key only while the importer holds fresh keys, or while a lower
 * seq of its key waits to go first); a gap is
 * counted only on a delivery; a message just delivered is a duplicate when
 * it comes again; a key's last never goes back; keys stay within
 * SBF_ORDER_KEYS and names within their bound.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fed/order.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The last delivered of (origin, epoch) if tracked, else 0. */
static uint64_t last_of(const struct sbf_order *o, const struct sbf_order_msg *m, int *found)
{
    for (unsigned i = 0; i < SBF_ORDER_KEYS; i++) {
        const struct sbf_order_key *k = &o->key[i];

        CHECK(k->origin_len <= SBF_ORDER_ORIGIN_MAX);
        /* An empty key (timing a first's wait) has delivered nothing. */
        if (!k->empty && k->origin_len == m->origin_len && k->epoch == m->epoch &&
            memcmp(k->origin, m->origin, m->origin_len) == 0) {
            CHECK(k->first <= k->last);
            *found = 1;
            return k->last;
        }
    }
    *found = 0;
    return 0;
}

/* Does a lower seq of @p m's key (empty or not) wait, for @p m to defer to? */
static int low_below(const struct sbf_order *o, const struct sbf_order_msg *m)
{
    for (unsigned i = 0; i < SBF_ORDER_KEYS; i++) {
        const struct sbf_order_key *k = &o->key[i];

        if (k->origin_len == m->origin_len && k->epoch == m->epoch &&
            memcmp(k->origin, m->origin, m->origin_len) == 0)
            return k->has_low && k->low < m->seq;
    }
    return 0;
}

static void step(struct sbf_order *o, const uint8_t *d, uint64_t *now)
{
    char name[8];
    struct sbf_order_msg m;
    enum sbf_order_verdict v;
    uint64_t gap, last, after;
    int found, again, lower;

    snprintf(name, sizeof(name), "o%u", d[0] % 40u);
    m.origin = name;
    m.origin_len = strlen(name);
    m.epoch = d[1] & 3u;
    last = last_of(o, &m, &found);
    m.seq = last + (uint64_t)d[2] - 32u; /* wraps near 0: still a seq */
    m.has_prev = d[3] & 1u;
    m.hold_fresh = (d[3] >> 1) & 1u;
    m.stale = (d[3] >> 2) & 1u;
    m.prev = m.seq - (uint64_t)(d[4] & 15u) + 8u;
    *now += (uint64_t)d[5] * 16u;
    lower = low_below(o, &m);
    v = sbf_order_judge(o, &m, *now, &gap);
    CHECK(v == SBF_ORDER_DELIVER || gap == 0);
    CHECK((m.has_prev && m.prev >= m.seq) == (v == SBF_ORDER_BAD));
    CHECK(v != SBF_ORDER_WAIT || m.has_prev);
    CHECK(v != SBF_ORDER_WAIT || found || m.hold_fresh || lower);
    if (found && m.seq <= last)
        CHECK(v == SBF_ORDER_DUP || v == SBF_ORDER_UNKNOWN || v == SBF_ORDER_BAD);
    if (v != SBF_ORDER_DELIVER)
        return;
    sbf_order_delivered(o, &m);
    after = last_of(o, &m, &again);
    CHECK(again);
    CHECK(after >= m.seq && (!found || after >= last));
    CHECK(sbf_order_judge(o, &m, *now, &gap) == SBF_ORDER_DUP);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sbf_order o;
    uint64_t now = 0;

    memset(&o, 0, sizeof(o));
    o.wait_ns = 1000;
    for (size_t i = 0; i + 6 <= size; i += 6)
        step(&o, data + i, &now);
    return 0;
}
