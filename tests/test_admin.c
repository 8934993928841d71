/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's operations on a segment (registry/admin.c), driven step by
 * step in one process on a topic created directly: ending a live
 * publisher's claim (stall timeout) around marks that newer claims leave
 * in a lossy cell, group member counts around evictions, and the bounded
 * work of ending a dead claimer's unknown claim, which leaves a live
 * batch's seqs alone.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "registry/admin.h"
#include "ring/ring.h"
#include "shm/layout.h"

static int fx_setup(void **state)
{
    static struct tu_topic f;

    if (tu_topic_open(&f, "admin", 2) < 0)
        return -1;
    *state = &f;
    return 0;
}

static int fx_teardown(void **state)
{
    tu_topic_close(*state);
    return 0;
}

/* Publisher @p p's record index in its topic. */
static uint32_t rec_of(const shmbus_pub *p)
{
    return (uint32_t)(p->rec - p->topic->seg.pubs);
}

static uint64_t stamp_of(const shmbus_topic *t, uint64_t seq)
{
    return atomic_load(&sb_cell(&t->seg, seq)->stamp);
}

/* Claim seq @p want on @p p, publishing with @p filler until the tail is there. */
static void claim_at(shmbus_pub *p, shmbus_pub *filler, shmbus_claim *c, uint64_t want)
{
    uint8_t buf[16] = {0};

    while (atomic_load(&p->topic->seg.hdr->tail) < want)
        assert_shmbus_ok(shmbus_publish(filler, buf, sizeof(buf), 0));
    assert_shmbus_ok(shmbus_pub_claim(p, c, 0));
    assert_int_equal(c->seq, want);
}

/* Leave a mark on seq @p want's cell, which an older claim holds: the
 * claim of @p p gets SHMBUS_ERR_OVERRUN and leaves BUSY(want). */
static void mark_at(shmbus_pub *p, shmbus_pub *filler, uint64_t want)
{
    uint8_t buf[16] = {0};
    shmbus_claim c;

    while (atomic_load(&p->topic->seg.hdr->tail) < want)
        assert_shmbus_ok(shmbus_publish(filler, buf, sizeof(buf), 0));
    assert_shmbus_rc(shmbus_pub_claim(p, &c, 0), SHMBUS_ERR_OVERRUN);
    assert_int_equal(stamp_of(p->topic, want), SB_STAMP(want, SB_ST_BUSY));
}

/* Claim 0 of A is to be ended, but A moved on before the daemon looked:
 * A owns seq 4 in the same cell, and C marked it (BUSY(6)) for A to hand
 * on. That mark is A's claim 4's business, not claim 0's: nothing is
 * ended, and A's commit of 4 hands it on as usual. */
static void test_admin_unblock_leaves_a_moved_on_writer(void **state)
{
    struct tu_topic *f = *state;
    shmbus_pub *a, *b, *cpub;
    shmbus_claim c0, c4;
    uint8_t buf[16] = {0};

    assert_shmbus_ok(shmbus_pub_create(f->t, &a));
    assert_shmbus_ok(shmbus_pub_create(f->t, &b));
    assert_shmbus_ok(shmbus_pub_create(f->t, &cpub));
    claim_at(a, b, &c0, 0);
    mark_at(b, b, 2);                                                   /* BUSY(2) over A's 0 */
    assert_shmbus_rc(shmbus_pub_commit(a, &c0, 4), SHMBUS_ERR_OVERRUN); /* hands it on */
    assert_int_equal(stamp_of(f->t, 2), SB_STAMP(2, SB_ST_SKIPPED));
    assert_shmbus_ok(shmbus_publish(b, buf, sizeof(buf), 0)); /* seq 3 */
    claim_at(a, b, &c4, 4);
    mark_at(cpub, b, 6); /* BUSY(6) over A's 4 */
    assert_int_equal(sb_admin_pub_unblock(f->t, rec_of(a), 0, 0), 0);
    assert_int_equal(stamp_of(f->t, 6), SB_STAMP(6, SB_ST_BUSY));
    assert_shmbus_rc(shmbus_pub_commit(a, &c4, 4), SHMBUS_ERR_OVERRUN);
    assert_int_equal(stamp_of(f->t, 6), SB_STAMP(6, SB_ST_SKIPPED));
    shmbus_pub_destroy(cpub);
    shmbus_pub_destroy(b);
    shmbus_pub_destroy(a);
}

/* The daemon told A its claim 0 is ended, but B, whose mark is on the
 * cell, is still on its way out: A's late commit leaves the mark alone,
 * and the daemon's retry hands it on once B has gone, so readers of seq
 * 2 are not left waiting on it. */
static void test_admin_unblock_finishes_after_a_marker(void **state)
{
    struct tu_topic *f = *state;
    shmbus_pub *a, *b;
    shmbus_claim c0;

    assert_shmbus_ok(shmbus_pub_create(f->t, &a));
    assert_shmbus_ok(shmbus_pub_create(f->t, &b));
    claim_at(a, b, &c0, 0);
    mark_at(b, b, 2);
    /* B as it is between its mark and its return: still claiming 2. */
    atomic_store(&b->rec->claim, 2);
    assert_int_equal(sb_admin_pub_unblock(f->t, rec_of(a), 0, 0), 0); /* not told */
    assert_int_equal(atomic_load(&a->rec->ended), 0);
    atomic_store(&a->rec->ended, 1); /* told, by a look whose CAS lost to B */
    assert_shmbus_rc(shmbus_pub_commit(a, &c0, 4), SHMBUS_ERR_OVERRUN);
    assert_int_equal(stamp_of(f->t, 2), SB_STAMP(2, SB_ST_BUSY)); /* left to the daemon */
    assert_int_equal(sb_admin_pub_unblock(f->t, rec_of(a), 0, 1), -EAGAIN);
    atomic_store(&b->rec->claim, SB_CLAIM_IDLE);
    assert_int_equal(sb_admin_pub_unblock(f->t, rec_of(a), 0, 1), 1);
    assert_int_equal(stamp_of(f->t, 2), SB_STAMP(2, SB_ST_SKIPPED));
    shmbus_pub_destroy(b);
    shmbus_pub_destroy(a);
}

struct lapper {
    shmbus_pub *pub;
    _Atomic int rc; /* 1 while publishing */
};

static void *lapper_main(void *arg)
{
    struct lapper *l = arg;
    uint8_t buf[16] = {0};

    atomic_store(&l->rc, shmbus_publish(l->pub, buf, sizeof(buf), -1));
    return NULL;
}

/* A reliable writer that lapped a stalled one waits for it, without a
 * timeout here; when the topic is removed meanwhile (the stalled writer
 * may never finish then) it gives up and says why. */
static void test_admin_gone_ends_a_lapping_writer(void **state)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 2, .max_msg_size = 64};
    const char *name = tu_name("gone");
    struct lapper l = {.rc = 1};
    uint8_t buf[16] = {0};
    shmbus_topic *t;
    shmbus_pub *a;
    shmbus_claim c;
    pthread_t th;

    (void)state;
    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &a));
    assert_shmbus_ok(shmbus_pub_create(t, &l.pub));
    assert_shmbus_ok(shmbus_pub_claim(a, &c, 0)); /* seq 0 stalls in cell 0 */
    assert_shmbus_ok(shmbus_publish(l.pub, buf, sizeof(buf), 0));
    assert_int_equal(pthread_create(&th, NULL, lapper_main, &l), 0); /* seq 2: cell 0 */
    usleep(20000);
    assert_int_equal(atomic_load(&l.rc), 1);
    sb_admin_topic_gone(t);
    for (int i = 0; i < 5000 && atomic_load(&l.rc) == 1; i++)
        usleep(1000); /* 5 s at most */
    assert_int_equal(atomic_load(&l.rc), SHMBUS_ERR_TOPIC_GONE);
    assert_int_equal(pthread_join(th, NULL), 0);
    shmbus_pub_destroy(l.pub);
    shmbus_pub_destroy(a);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* A batch on a topic the daemon removed publishes nothing and says so. */
static void test_admin_gone_refuses_a_batch(void **state)
{
    shmbus_topic_opts o = {.mode = SHMBUS_LOSSY, .capacity = 8, .max_msg_size = 64};
    const char *name = tu_name("gonevec");
    struct iovec iov[2] = {{.iov_base = "ab", .iov_len = 2}, {.iov_base = "cd", .iov_len = 2}};
    shmbus_topic *t;
    shmbus_pub *p;

    (void)state;
    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    sb_admin_topic_gone(t);
    assert_shmbus_rc(shmbus_publish_vec(p, iov, 2, 0), SHMBUS_ERR_TOPIC_GONE);
    assert_int_equal(atomic_load(&t->seg.hdr->tail), 0);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* The word of group 1 of @p t. */
static uint64_t group_word_of(const shmbus_topic *t)
{
    return atomic_load(&t->seg.groups[0].cursor);
}

/* A member evicted between its join CAS and naming its count (counted,
 * stored late) keeps that count until the group empties; the daemon must
 * not take it out again when it frees the slot, or it would take out the
 * count of a member that joined since. */
static void test_admin_evicted_member_counted_once(void **state)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 4, .max_msg_size = 64};
    shmbus_sub_opts g1 = {.group = 1};
    const char *name = tu_name("count");
    shmbus_topic *t;
    shmbus_sub *e, *y;
    uint32_t ei;

    (void)state;
    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_sub_create(t, &g1, &e));
    ei = (uint32_t)(e->slot - t->seg.slots);
    atomic_store(&e->slot->counted, 0); /* E's +1 is in, not named yet */
    assert_int_equal(sb_admin_slot_evict(t, ei), 1);
    atomic_store(&e->slot->counted, 1);                     /* named late */
    assert_int_equal(group_word_of(t) & SB_GRP_MEMBERS, 0); /* reconciled: nobody in use */
    assert_shmbus_ok(shmbus_sub_create(t, &g1, &y));
    assert_int_equal(group_word_of(t) & SB_GRP_MEMBERS, 1);
    sb_admin_slot_free(t, ei, 1);                           /* E is found dead */
    assert_int_equal(group_word_of(t) & SB_GRP_MEMBERS, 1); /* Y still counted */
    shmbus_sub_destroy(y);
    assert_int_equal(group_word_of(t) & SB_GRP_MEMBERS, 0);
    free(e->scratch);
    free(e); /* its slot is freed already */
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* A dead record left CLAIMING at 0 under a tail a whole ring ahead (what
 * a scribbled segment can say): every cell is one its owner may have
 * claimed. Each settle ends a bounded share of them, the record's bound
 * moving up, so no call of the daemon's stalls on a large ring; together
 * they end every one. */
static void test_admin_settle_unknown_is_bounded(void **state)
{
    const uint32_t cap = 1u << 16;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = cap, .max_msg_size = 64};
    const char *name = tu_name("unknown");
    shmbus_topic_info info;
    shmbus_topic *t;
    unsigned calls = 1;

    (void)state;
    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    atomic_store(&t->seg.pubs[0].claim, SB_CLAIM_CLAIMING | 0);
    atomic_store(&t->seg.pubs[0].state, SB_PUB_DEAD);
    atomic_store(&t->seg.hdr->tail, (uint64_t)cap);
    assert_int_equal(sb_admin_pub_settle(t, 0), 0);
    shmbus_topic_info_get(t, &info);
    assert_in_range(info.skipped, 1, 4096);
    while (calls++ < cap && sb_admin_pub_settle(t, 0) == 0)
        ;
    shmbus_topic_info_get(t, &info);
    assert_int_equal(info.skipped, cap);
    assert_int_equal(calls, cap / 4096); /* 4096 cells each */
    assert_int_equal(atomic_load(&t->seg.pubs[0].state), SB_PUB_FREE);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* A dead record left CLAIMING at 0 while a live publisher A is inside a
 * batch: A's record names seq 0 and claim_end 4, its cells untouched.
 * Settling the dead claim must leave A's seqs alone (A will write them);
 * a claim_end at or below the named seq is an older claim's and covers
 * nothing more. */
static void test_admin_settle_unknown_leaves_a_live_batch(void **state)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 8, .max_msg_size = 64};
    const char *name = tu_name("batch");
    shmbus_topic_info info;
    shmbus_topic *t;
    shmbus_pub *a;

    (void)state;
    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &a)); /* record 0 */
    atomic_store(&t->seg.pubs[1].claim, SB_CLAIM_CLAIMING | 0);
    atomic_store(&t->seg.pubs[1].state, SB_PUB_DEAD);
    atomic_store(&t->seg.hdr->tail, 4);
    atomic_store(&a->rec->claim_end, 4);
    atomic_store(&a->rec->claim, 0);
    assert_int_equal(sb_admin_pub_settle(t, 1), 0);
    shmbus_topic_info_get(t, &info);
    assert_int_equal(info.skipped, 0);
    atomic_store(&a->rec->claim, 2); /* an older claim_end than its seq: seq 2 alone */
    atomic_store(&a->rec->claim_end, 2);
    assert_int_equal(sb_admin_pub_settle(t, 1), 0);
    shmbus_topic_info_get(t, &info);
    assert_int_equal(info.skipped, 3); /* 0, 1 and 3 */
    assert_int_equal(stamp_of(t, 2), 0);
    atomic_store(&a->rec->claim, SB_CLAIM_IDLE);
    assert_int_equal(sb_admin_pub_settle(t, 1), 1);
    shmbus_topic_info_get(t, &info);
    assert_int_equal(info.skipped, 4);
    shmbus_pub_destroy(a);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* A group counted with no member slot behind it is reset, unless the
 * caller marked it busy (it saw a member in use): then its word is left
 * alone, to be looked at next time. */
static void test_admin_reconcile_leaves_busy_groups(void **state)
{
    shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = 4, .max_msg_size = 64, .max_groups = 2};
    const char *name = tu_name("busy");
    uint64_t busy[(SB_ADMIN_GROUPS_MAX + 63) / 64] = {1u << 1}; /* group 1 (0-based) */
    shmbus_topic *t;

    (void)state;
    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    atomic_store(&t->seg.groups[0].cursor, SB_GRP_WORD(5, 1)); /* a count, no member */
    atomic_store(&t->seg.groups[1].cursor, SB_GRP_WORD(7, 1));
    sb_admin_groups_reconcile_except(t, busy);
    assert_int_equal(group_word_of(t), SB_GRP_WORD(5, 0));
    assert_int_equal(atomic_load(&t->seg.groups[1].cursor), SB_GRP_WORD(7, 1));
    sb_admin_groups_reconcile(t);
    assert_int_equal(atomic_load(&t->seg.groups[1].cursor), SB_GRP_WORD(7, 0));
    shmbus_topic_destroy(t);
    tu_release(name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admin_unblock_leaves_a_moved_on_writer, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_admin_unblock_finishes_after_a_marker, fx_setup,
                                        fx_teardown),
        cmocka_unit_test(test_admin_gone_ends_a_lapping_writer),
        cmocka_unit_test(test_admin_gone_refuses_a_batch),
        cmocka_unit_test(test_admin_evicted_member_counted_once),
        cmocka_unit_test(test_admin_settle_unknown_is_bounded),
        cmocka_unit_test(test_admin_settle_unknown_leaves_a_live_batch),
        cmocka_unit_test(test_admin_reconcile_leaves_busy_groups),
    };

    tu_init();
    return cmocka_run_group_tests_name("admin", tests, NULL, NULL);
}
