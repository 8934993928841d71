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
    assert_int_equal(step(&o, m, 10 * WAIT_NS, &gap), SBF_ORDER_WAIT);
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
        cmocka_unit_test(test_order_keys_bounded_lru),
        cmocka_unit_test(test_order_late_delivery_keeps_range),
    };
    return cmocka_run_group_tests_name("fed_order", tests, NULL, NULL);
}
