/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JetStream importer's order per origin (daemon/fed/order.c): in
 * order, duplicates, a successor waiting for its predecessor until the
 * wait runs out, generations (epochs) apart, what memory cannot judge,
 * refused headers, and the bound on keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fed/order.h"

#define WAIT_NS 1000u

static struct sbf_order_msg msg(const char *origin, uint64_t epoch, uint64_t seq, int has_prev,
                                uint64_t prev)
{
    struct sbf_order_msg m = {.origin = origin,
                              .origin_len = strlen(origin),
                              .epoch = epoch,
                              .seq = seq,
                              .has_prev = has_prev,
                              .prev = prev};
    return m;
}

static void tracker(struct sbf_order *o)
{
    memset(o, 0, sizeof(*o));
    o->wait_ns = WAIT_NS;
}

/* Judge and, when it says deliver, deliver: the importer's loop. */
static enum sbf_order_verdict step(struct sbf_order *o, struct sbf_order_msg m, uint64_t now,
                                   uint64_t *gap)
{
    enum sbf_order_verdict v = sbf_order_judge(o, &m, now, gap);

    if (v == SBF_ORDER_DELIVER)
        sbf_order_delivered(o, &m);
    return v;
}

static void test_order_chain_in_order(void **state)
{
    struct sbf_order o;
    uint64_t gap;

    (void)state;
    tracker(&o);
    assert_int_equal(step(&o, msg("a", 7, 3, 0, 0), 0, &gap), SBF_ORDER_DELIVER);
    /* seqs need not be contiguous: the exporter skips imported cells */
    assert_int_equal(step(&o, msg("a", 7, 9, 1, 3), 0, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
    assert_int_equal(step(&o, msg("a", 7, 10, 1, 9), 0, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
}

static void test_order_duplicate_dropped(void **state)
{
    struct sbf_order o;
    uint64_t gap;

    (void)state;
    tracker(&o);
    step(&o, msg("a", 1, 5, 0, 0), 0, &gap);
    step(&o, msg("a", 1, 6, 1, 5), 0, &gap);
    assert_int_equal(step(&o, msg("a", 1, 6, 1, 5), 0, &gap), SBF_ORDER_DUP);
    assert_int_equal(step(&o, msg("a", 1, 5, 0, 0), 0, &gap), SBF_ORDER_DUP);
    /* below anything delivered since tracking began: the ring decides */
    assert_int_equal(step(&o, msg("a", 1, 4, 1, 2), 0, &gap), SBF_ORDER_UNKNOWN);
}

static void test_order_successor_waits_for_predecessor(void **state)
{
    struct sbf_order o;
    uint64_t gap;

    (void)state;
    tracker(&o);
    step(&o, msg("a", 1, 3, 0, 0), 0, &gap);
    /* 5 was stored before 4 (4's publish failed and was resent) */
    assert_int_equal(step(&o, msg("a", 1, 5, 1, 4), 100, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, msg("a", 1, 5, 1, 4), 100 + WAIT_NS - 1, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, msg("a", 1, 4, 1, 3), 200, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
    assert_int_equal(step(&o, msg("a", 1, 5, 1, 4), 300, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
    /* the wait ended with the delivery: a new one starts afresh */
    assert_int_equal(step(&o, msg("a", 1, 8, 1, 7), 5000, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, msg("a", 1, 8, 1, 7), 5000 + WAIT_NS - 1, &gap), SBF_ORDER_WAIT);
}

static void test_order_wait_runs_out_counts_gap(void **state)
{
    struct sbf_order o;
    uint64_t gap;

    (void)state;
    tracker(&o);
    step(&o, msg("a", 1, 3, 0, 0), 0, &gap);
    assert_int_equal(step(&o, msg("a", 1, 5, 1, 4), 10, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, msg("a", 1, 5, 1, 4), 10 + WAIT_NS, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 1);
    /* the predecessor coming after all is behind: dropped */
    assert_int_equal(step(&o, msg("a", 1, 4, 1, 3), 20 + WAIT_NS, &gap), SBF_ORDER_DUP);
    assert_int_equal(step(&o, msg("a", 1, 6, 1, 5), 30 + WAIT_NS, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
}

static void test_order_clock_back_restarts_wait(void **state)
{
    struct sbf_order o;
    uint64_t gap;

    (void)state;
    tracker(&o);
    step(&o, msg("a", 1, 1, 0, 0), 0, &gap);
    assert_int_equal(step(&o, msg("a", 1, 3, 1, 2), 5000, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, msg("a", 1, 3, 1, 2), 10, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, msg("a", 1, 3, 1, 2), 10 + WAIT_NS - 1, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, msg("a", 1, 3, 1, 2), 10 + WAIT_NS, &gap), SBF_ORDER_DELIVER);
}

static void test_order_origins_and_epochs_apart(void **state)
{
    struct sbf_order o;
    uint64_t gap;

    (void)state;
    tracker(&o);
    step(&o, msg("a", 1, 100, 0, 0), 0, &gap);
    /* another origin, same seqs */
    assert_int_equal(step(&o, msg("b", 1, 100, 0, 0), 0, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(step(&o, msg("b", 1, 100, 0, 0), 0, &gap), SBF_ORDER_DUP);
    /* the topic recreated on a: seqs from 0 under a new epoch */
    assert_int_equal(step(&o, msg("a", 2, 0, 0, 0), 0, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(step(&o, msg("a", 2, 1, 1, 0), 0, &gap), SBF_ORDER_DELIVER);
    /* a prefix of a name is another name */
    assert_int_equal(step(&o, msg("ab", 1, 100, 0, 0), 0, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(step(&o, msg("a", 1, 100, 0, 0), 0, &gap), SBF_ORDER_DUP);
}

static void test_order_bad_headers_refused(void **state)
{
    struct sbf_order o;
    struct sbf_order_msg m;
    char longname[SBF_ORDER_ORIGIN_MAX + 2];
    uint64_t gap;

    (void)state;
    tracker(&o);
    assert_int_equal(step(&o, msg("a", 1, 5, 1, 5), 0, &gap), SBF_ORDER_BAD);
    assert_int_equal(step(&o, msg("a", 1, 5, 1, 9), 0, &gap), SBF_ORDER_BAD);
    assert_int_equal(step(&o, msg("", 1, 5, 0, 0), 0, &gap), SBF_ORDER_BAD);
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(step(&o, msg(longname, 1, 5, 0, 0), 0, &gap), SBF_ORDER_BAD);
    /* nothing was recorded by them */
    m = msg("a", 1, 5, 0, 0);
    assert_int_equal(sbf_order_judge(&o, &m, 0, &gap), SBF_ORDER_DELIVER);
    m = msg(longname, 1, 5, 0, 0);
    sbf_order_delivered(&o, &m);
    for (unsigned i = 0; i < SBF_ORDER_KEYS; i++)
        assert_int_equal(o.key[i].origin_len, 0);
}

static void test_order_hold_fresh_waits_for_pending(void **state)
{
    struct sbf_order o;
    struct sbf_order_msg m = msg("a", 1, 421, 1, 420);
    uint64_t gap;

    (void)state;
    tracker(&o);
    /* after a restart, 420 may still be pending on the consumer */
    m.hold_fresh = 1;
    assert_int_equal(step(&o, m, 0, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, m, WAIT_NS - 1, &gap), SBF_ORDER_WAIT);
    /* no predecessor to wait for: nothing held */
    assert_int_equal(
        step(&o, (struct sbf_order_msg){.origin = "b", .origin_len = 1, .seq = 5, .hold_fresh = 1},
             0, &gap),
        SBF_ORDER_DELIVER);
    /* 420 comes again (a redelivery, fresh too: it goes), then 421 follows */
    assert_int_equal(step(&o, msg("a", 1, 420, 0, 0), 0, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(step(&o, m, 0, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
    /* the hold over (the importer clears it), a fresh key goes first */
    m = msg("c", 1, 9, 1, 8);
    assert_int_equal(step(&o, m, 0, &gap), SBF_ORDER_DELIVER);
}

static void test_order_hold_fresh_wait_runs_out(void **state)
{
    struct sbf_order o;
    struct sbf_order_msg m = msg("a", 1, 9, 1, 8);
    uint64_t gap;

    (void)state;
    tracker(&o);
    /* a new consumer whose stream lost 8 to its limits: 9 waits, then goes */
    m.hold_fresh = 1;
    assert_int_equal(step(&o, m, 100, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, m, 100 + WAIT_NS - 1, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, m, 100 + WAIT_NS, &gap), SBF_ORDER_DELIVER);
    /* nothing was known before it: no gap counted */
    assert_int_equal(gap, 0);
    assert_int_equal(step(&o, m, 100 + WAIT_NS, &gap), SBF_ORDER_DUP);
    m = msg("a", 1, 10, 1, 9);
    m.hold_fresh = 1;
    assert_int_equal(step(&o, m, 100 + WAIT_NS, &gap), SBF_ORDER_DELIVER);
}

static void test_order_stale_last_waits_only_while_held(void **state)
{
    struct sbf_order o;
    struct sbf_order_msg old = msg("a", 1, 1176, 1, 1175), now = msg("a", 1, 3000, 1, 2999);
    uint64_t gap;

    (void)state;
    tracker(&o);
    /* an earlier daemon's message, delivered again after a restart */
    old.stale = 1;
    assert_int_equal(step(&o, old, 0, &gap), SBF_ORDER_DELIVER);
    /* a new one whose predecessor was acknowledged long ago: it waits
     * only while the importer holds, then goes with no gap */
    now.hold_fresh = 1;
    assert_int_equal(step(&o, now, 10, &gap), SBF_ORDER_WAIT);
    now.hold_fresh = 0;
    assert_int_equal(step(&o, now, 20, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
    /* from there on the key is sure: a missing predecessor waits in full */
    assert_int_equal(step(&o, msg("a", 1, 3005, 1, 3004), 30, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, msg("a", 1, 3005, 1, 3004), 30 + WAIT_NS - 1, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, msg("a", 1, 3005, 1, 3004), 30 + WAIT_NS, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 1);
}

static void test_order_keys_bounded_lru(void **state)
{
    struct sbf_order o;
    char name[16];
    uint64_t gap;

    (void)state;
    tracker(&o);
    for (unsigned i = 0; i < SBF_ORDER_KEYS; i++) {
        snprintf(name, sizeof(name), "o%u", i);
        step(&o, msg(name, 1, 10, 0, 0), 0, &gap);
    }
    assert_int_equal(o.evicted, 0);
    /* o0 used again: o1 is now the least recently used */
    assert_int_equal(step(&o, msg("o0", 1, 10, 0, 0), 0, &gap), SBF_ORDER_DUP);
    step(&o, msg("new", 1, 10, 0, 0), 0, &gap);
    assert_int_equal(o.evicted, 1);
    assert_int_equal(step(&o, msg("o0", 1, 10, 0, 0), 0, &gap), SBF_ORDER_DUP);
    /* o1 forgotten: its next message is judged as a first */
    assert_int_equal(step(&o, msg("o1", 1, 10, 0, 0), 0, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(o.evicted, 2);
}

static void test_order_late_delivery_keeps_range(void **state)
{
    struct sbf_order o;
    struct sbf_order_msg late = msg("a", 1, 4, 0, 0);
    uint64_t gap;

    (void)state;
    tracker(&o);
    step(&o, msg("a", 1, 10, 0, 0), 0, &gap);
    /* the ring did not hold 4: the importer delivers it late */
    sbf_order_delivered(&o, &late);
    assert_int_equal(step(&o, msg("a", 1, 6, 0, 0), 0, &gap), SBF_ORDER_UNKNOWN);
    assert_int_equal(step(&o, msg("a", 1, 11, 1, 10), 0, &gap), SBF_ORDER_DELIVER);
}

/* After a restart that left messages pending: every fresh message of a
 * key waited while the importer held; when the hold ends, the lowest that
 * waited goes first, wherever the server's redeliveries put it, and the
 * ones after it follow in order (none is taken for a duplicate). */
static void test_order_hold_end_lowest_goes_first(void **state)
{
    struct sbf_order o;
    struct sbf_order_msg old = msg("a", 1, 803, 1, 802), p1 = msg("a", 1, 2000, 1, 1999);
    struct sbf_order_msg p98 = msg("a", 1, 2097, 1, 2096), p2 = msg("a", 1, 2001, 1, 2000);
    uint64_t gap;

    (void)state;
    tracker(&o);
    p1.hold_fresh = p98.hold_fresh = 1;
    assert_int_equal(step(&o, p1, 0, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, p98, 1, &gap), SBF_ORDER_WAIT);
    /* an earlier daemon's message, come again after the ack wait */
    old.stale = 1;
    assert_int_equal(step(&o, old, 2, &gap), SBF_ORDER_DELIVER);
    /* the hold over: 2097 comes back before 2000 and waits for it */
    p1.hold_fresh = p98.hold_fresh = 0;
    assert_int_equal(step(&o, p98, 3, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, p1, 4, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
    assert_int_equal(step(&o, p2, 5, &gap), SBF_ORDER_DELIVER);
    /* 2097 waits for its own predecessor now, as any successor does */
    assert_int_equal(step(&o, p98, 6, &gap), SBF_ORDER_WAIT);
    for (uint64_t s = 2002; s < 2097; s++)
        assert_int_equal(step(&o, msg("a", 1, s, 1, s - 1), 7, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(step(&o, p98, 8, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
}

/* The same on a key with nothing delivered (a new consumer), and the
 * bound: a lowest that never comes again holds the others one wait at
 * most, then counts as a gap, once. */
static void test_order_lowest_first_bounded(void **state)
{
    struct sbf_order o;
    struct sbf_order_msg a = msg("a", 1, 10, 1, 9), b = msg("a", 1, 20, 1, 19);
    uint64_t gap;

    (void)state;
    tracker(&o);
    a.hold_fresh = b.hold_fresh = 1;
    assert_int_equal(step(&o, a, 0, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, b, 0, &gap), SBF_ORDER_WAIT);
    a.hold_fresh = b.hold_fresh = 0;
    assert_int_equal(step(&o, b, 10, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, b, 10 + WAIT_NS - 1, &gap), SBF_ORDER_WAIT);
    assert_int_equal(step(&o, b, 10 + WAIT_NS, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 1);
    /* 10 behind now: what the ring says decides */
    assert_int_equal(step(&o, a, 20 + WAIT_NS, &gap), SBF_ORDER_UNKNOWN);
    assert_int_equal(step(&o, msg("a", 1, 21, 1, 20), 20 + WAIT_NS, &gap), SBF_ORDER_DELIVER);
    assert_int_equal(gap, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_chain_in_order),
        cmocka_unit_test(test_order_duplicate_dropped),
        cmocka_unit_test(test_order_successor_waits_for_predecessor),
        cmocka_unit_test(test_order_wait_runs_out_counts_gap),
        cmocka_unit_test(test_order_clock_back_restarts_wait),
        cmocka_unit_test(test_order_origins_and_epochs_apart),
        cmocka_unit_test(test_order_bad_headers_refused),
        cmocka_unit_test(test_order_hold_fresh_waits_for_pending),
        cmocka_unit_test(test_order_hold_fresh_wait_runs_out),
        cmocka_unit_test(test_order_stale_last_waits_only_while_held),
        cmocka_unit_test(test_order_keys_bounded_lru),
        cmocka_unit_test(test_order_late_delivery_keeps_range),
        cmocka_unit_test(test_order_hold_end_lowest_goes_first),
        cmocka_unit_test(test_order_lowest_first_bounded),
    };
    return cmocka_run_group_tests_name("fed_order", tests, NULL, NULL);
}
