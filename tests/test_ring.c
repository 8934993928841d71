/* SPDX-License-Identifier: Apache-2.0 */
/* Single-threaded behaviour of the ring: order, wrap-around, bounds,
 * zero copy, loss accounting, start positions, groups (ring/pub.c,
 * sub.c); batches are in test_ring_batch.c. */
#include "ringtest.h"

#include <errno.h>
#include <pthread.h>
#include <sys/uio.h>
#include <time.h>

#include "ring/ring.h"

static void test_ring_order_and_wraparound(void **state)
{
    struct fx *f = *state;
    shmbus_sub *s;
    struct got g = {0};

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    /* 25 rounds of 5 through 8 cells: every wrap position is crossed. */
    for (uint64_t round = 0; round < 25; round++) {
        pub_n(f, round * 5, 5);
        assert_int_equal(shmbus_poll(s, collect, &g, 100), 5);
        for (unsigned i = 0; i < 5; i++) {
            assert_int_equal(g.seq[i], round * 5 + i);
            assert_int_equal(g.pseq[i], round * 5 + i);
        }
        g.n = 0;
    }
    pub_n(f, 125, 8);
    assert_int_equal(shmbus_poll(s, collect, &g, 100), 8);
    for (unsigned i = 0; i < 8; i++) {
        assert_int_equal(g.seq[i], 125 + i);
        assert_int_equal(g.pseq[i], 125 + i);
        assert_int_equal(g.lost[i], 0);
    }
    assert_int_equal(shmbus_poll(s, collect, &g, 100), 0);
    shmbus_sub_destroy(s);
}

/* The handles every publish and receive reads each start a cache line
 * (ring.h sb_handle_alloc()): their latency must not depend on where
 * malloc() happens to put them. */
static void test_ring_handles_start_cache_lines(void **state)
{
    struct fx *f = *state;
    shmbus_sub *s[4];

    assert_int_equal((uintptr_t)f->topic % 64, 0);
    assert_int_equal((uintptr_t)f->pub % 64, 0);
    /* Several, so that 16-byte placement cannot pass by chance. */
    for (unsigned i = 0; i < 4; i++) {
        assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s[i]));
        assert_int_equal((uintptr_t)s[i] % 64, 0);
    }
    for (unsigned i = 0; i < 4; i++)
        shmbus_sub_destroy(s[i]);
}

static void test_ring_message_size_bounds(void **state)
{
    struct fx *f = *state;
    uint8_t big[257], out[257];
    shmbus_msg info;
    shmbus_sub *s;

    memset(big, 0xab, sizeof(big));
    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    assert_shmbus_ok(shmbus_publish(f->pub, NULL, 0, 0));
    assert_shmbus_ok(shmbus_publish(f->pub, big, 256, 0));
    assert_shmbus_rc(shmbus_publish(f->pub, big, 257, 0), SHMBUS_ERR_TOO_BIG);
    assert_shmbus_rc(shmbus_publish(f->pub, NULL, 5, 0), SHMBUS_ERR_INVALID);
    assert_int_equal(shmbus_recv(s, out, sizeof(out), &info, 0), 0);
    assert_int_equal(info.seq, 0);
    assert_int_equal(shmbus_recv(s, out, sizeof(out), &info, 0), 256);
    assert_memory_equal(out, big, 256);
    assert_int_equal(info.seq, 1);
    assert_shmbus_rc(shmbus_recv(s, out, sizeof(out), &info, 0), -EAGAIN);
    shmbus_sub_destroy(s);
}

static void test_ring_reliable_full_ring_backpressure(void **state)
{
    struct fx *f = *state;
    uint8_t buf[64];
    struct got g = {.stop_after = 1};
    shmbus_sub *s;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    pub_n(f, 0, 8);
    assert_shmbus_rc(shmbus_publish(f->pub, buf, tu_fill(buf, 1, 8, 32), 0), -EAGAIN);
    assert_shmbus_rc(shmbus_publish(f->pub, buf, 32, 2000000), SHMBUS_ERR_TIMEOUT);
    assert_int_equal(shmbus_poll(s, collect, &g, 1), 1);
    pub_n(f, 8, 1);
    assert_shmbus_rc(shmbus_publish(f->pub, buf, 32, 0), -EAGAIN);
    g.stop_after = 0;
    assert_int_equal(shmbus_poll(s, collect, &g, 100), 8);
    for (unsigned i = 0; i < 9; i++)
        assert_int_equal(g.pseq[i], i);
    shmbus_sub_destroy(s);
    /* Nobody attached: nothing gates a reliable publisher. */
    pub_n(f, 9, 50);
}

static void test_ring_zero_copy_claim_commit_abort(void **state)
{
    struct fx *f = *state;
    shmbus_claim c, c2;
    struct got g = {0};
    shmbus_sub *s;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0));
    assert_int_equal(c.seq, 0);
    assert_int_equal(c.capacity, 256);
    assert_shmbus_rc(shmbus_pub_claim(f->pub, &c2, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_publish(f->pub, "x", 1, 0), SHMBUS_ERR_INVALID);
    /* Readers wait at an open claim. */
    assert_int_equal(shmbus_poll(s, collect, &g, 10), 0);
    uint32_t len = tu_fill(c.data, 1, 0, 100);
    assert_shmbus_rc(shmbus_pub_commit(f->pub, &c, 257), SHMBUS_ERR_TOO_BIG);
    assert_shmbus_ok(shmbus_pub_commit(f->pub, &c, len));
    assert_shmbus_rc(shmbus_pub_commit(f->pub, &c, len), SHMBUS_ERR_INVALID);
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0));
    assert_shmbus_ok(shmbus_pub_abort(f->pub, &c));
    assert_shmbus_rc(shmbus_pub_abort(f->pub, &c), SHMBUS_ERR_INVALID);
    pub_n(f, 2, 1);
    assert_int_equal(shmbus_poll(s, collect, &g, 10), 2);
    assert_int_equal(g.seq[0], 0);
    assert_int_equal(g.lost[0], 0);
    assert_int_equal(g.seq[1], 2);
    assert_int_equal(g.lost[1], 1); /* the aborted claim */
    /* destroy with an open claim aborts it */
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0));
    shmbus_pub_destroy(f->pub);
    assert_shmbus_ok(shmbus_pub_create(f->topic, &f->pub));
    pub_n(f, 4, 1);
    g.n = 0;
    assert_int_equal(shmbus_poll(s, collect, &g, 10), 1);
    assert_int_equal(g.seq[0], 4);
    assert_int_equal(g.lost[0], 1);
    shmbus_sub_destroy(s);
}

static void test_ring_lossy_lap_counts_exact_loss(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    shmbus_sub_stats st;
    shmbus_topic_info ti;
    shmbus_sub *s;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    pub_n(f, 0, 20);
    assert_int_equal(shmbus_poll(s, collect, &g, 100), 8);
    assert_int_equal(g.seq[0], 12);
    assert_int_equal(g.lost[0], 12);
    for (unsigned i = 1; i < 8; i++) {
        assert_int_equal(g.seq[i], 12 + i);
        assert_int_equal(g.pseq[i], 12 + i);
        assert_int_equal(g.lost[i], 0);
    }
    assert_shmbus_ok(shmbus_sub_stats_get(s, &st));
    assert_int_equal(st.received, 8);
    assert_int_equal(st.lost, 12);
    assert_int_equal(st.lag, 0);
    assert_shmbus_ok(shmbus_topic_info_get(f->topic, &ti));
    assert_int_equal(ti.published, st.received + st.lost);
    shmbus_sub_destroy(s);
}

static void test_ring_lossy_stalled_writer_overrun(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    shmbus_claim c;
    shmbus_sub_stats st;
    shmbus_topic_info ti;
    shmbus_sub *s;
    uint8_t buf[64];

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0)); /* seq 0 stalls in cell 0 */
    shmbus_pub *p2;
    assert_shmbus_ok(shmbus_pub_create(f->topic, &p2));
    for (uint64_t i = 1; i < 8; i++)
        assert_shmbus_ok(shmbus_publish(p2, buf, tu_fill(buf, 2, i, 32), 0));
    /* seq 8 maps to cell 0, still being written: it must not write there. */
    assert_shmbus_rc(shmbus_publish(p2, buf, tu_fill(buf, 2, 8, 32), 0), SHMBUS_ERR_OVERRUN);
    assert_shmbus_ok(shmbus_publish(p2, buf, tu_fill(buf, 2, 9, 32), 0));
    tu_fill(c.data, 1, 0, 40);
    assert_shmbus_rc(shmbus_pub_commit(f->pub, &c, 40), SHMBUS_ERR_OVERRUN);
    /* Readers lost seq 0 (lapped: 10 claims in 8 cells) and seq 8 (skipped). */
    assert_int_equal(shmbus_poll(s, collect, &g, 100), 7);
    assert_int_equal(g.seq[0], 2);
    assert_int_equal(g.lost[0], 2);
    assert_int_equal(g.seq[6], 9);
    assert_int_equal(g.lost[6], 1);
    assert_shmbus_ok(shmbus_sub_stats_get(s, &st));
    assert_shmbus_ok(shmbus_topic_info_get(f->topic, &ti));
    assert_int_equal(ti.published, 10);
    assert_int_equal(st.received + st.lost, 10);
    assert_int_equal(ti.overruns, 2);
    shmbus_pub_destroy(p2);
    shmbus_sub_destroy(s);
}

struct late_pub {
    shmbus_pub *pub;
    int rc;
};

static void *publish_seq2(void *arg)
{
    struct late_pub *lp = arg;
    uint8_t buf[64];
    lp->rc = shmbus_publish(lp->pub, buf, tu_fill(buf, 2, 2, 32), -1);
    return NULL;
}

/* Reliable, nobody gating: a claim that laps a stalled writer waits for it
 * instead of dropping its message. */
static void test_ring_reliable_waits_for_lapped_writer(void **state)
{
    struct fx *f = *state;
    struct late_pub lp = {.rc = 1};
    shmbus_sub_opts oldest = {.start = SHMBUS_START_OLDEST};
    struct got g = {0};
    shmbus_claim c;
    shmbus_sub *s;
    pthread_t th;
    uint8_t buf[64];

    assert_shmbus_ok(shmbus_pub_create(f->topic, &lp.pub));
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0)); /* seq 0 stalls in cell 0 */
    for (uint64_t i = 1; i < 2; i++)
        assert_shmbus_ok(shmbus_publish(lp.pub, buf, tu_fill(buf, 2, i, 32), 0));
    assert_int_equal(pthread_create(&th, NULL, publish_seq2, &lp), 0);
    usleep(20000);
    assert_int_equal(lp.rc, 1); /* still waiting for seq 0's writer */
    assert_shmbus_ok(shmbus_pub_commit(f->pub, &c, tu_fill(c.data, 1, 0, 40)));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_shmbus_ok(lp.rc);
    /* The ring now holds seq 1 and 2; a new subscriber sees nothing of the
     * past (nobody held it) but every message from now on. */
    assert_shmbus_ok(shmbus_sub_create(f->topic, &oldest, &s));
    assert_shmbus_ok(shmbus_publish(lp.pub, buf, tu_fill(buf, 2, 3, 32), 0));
    assert_int_equal(shmbus_poll(s, collect, &g, 10), 1);
    assert_int_equal(g.seq[0], 3);
    shmbus_sub_destroy(s);
    shmbus_pub_destroy(lp.pub);
}

/* A reliable writer below a gated limit writes without a mark; a writer
 * that laps it after the gates are gone must wait, not write beside it. */
static void test_ring_reliable_unmarked_writer_not_lapped(void **state)
{
    struct fx *f = *state;
    struct late_pub lp = {.rc = 1};
    struct got g = {0};
    shmbus_claim c;
    shmbus_sub *s;
    pthread_t th;
    uint8_t buf[64];

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0)); /* seq 0, gated: no mark */
    shmbus_sub_destroy(s);
    assert_shmbus_ok(shmbus_pub_create(f->topic, &lp.pub));
    assert_shmbus_ok(shmbus_publish(lp.pub, buf, tu_fill(buf, 2, 1, 32), 0));
    assert_int_equal(pthread_create(&th, NULL, publish_seq2, &lp), 0); /* seq 2: cell 0 */
    usleep(20000);
    assert_int_equal(lp.rc, 1);
    assert_shmbus_ok(shmbus_pub_commit(f->pub, &c, tu_fill(c.data, 1, 0, 40)));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_shmbus_ok(lp.rc);
    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    assert_shmbus_ok(shmbus_publish(lp.pub, buf, tu_fill(buf, 2, 3, 32), 0));
    assert_int_equal(shmbus_poll(s, collect, &g, 10), 1);
    assert_int_equal(g.pseq[0], 3);
    shmbus_sub_destroy(s);
    shmbus_pub_destroy(lp.pub);
}

/* Reliable, nobody gating, timeout 0: a claim that laps a stalled writer
 * gives up at once, leaves its seq for that writer to skip, and reports
 * the drop; the stalled writer's commit reports it was overtaken. */
static void test_ring_reliable_gives_up_on_lapped_writer(void **state)
{
    struct fx *f = *state;
    shmbus_topic_info ti;
    shmbus_claim c;
    shmbus_pub *p2;
    uint8_t buf[64];

    assert_shmbus_ok(shmbus_pub_create(f->topic, &p2));
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0)); /* seq 0 stalls in cell 0 */
    assert_shmbus_ok(shmbus_publish(p2, buf, tu_fill(buf, 2, 1, 32), 0));
    assert_shmbus_rc(shmbus_publish(p2, buf, tu_fill(buf, 2, 2, 32), 0), SHMBUS_ERR_OVERRUN);
    assert_shmbus_rc(shmbus_pub_commit(f->pub, &c, tu_fill(c.data, 1, 0, 40)), SHMBUS_ERR_OVERRUN);
    /* The cell is free again for the next lap. */
    assert_shmbus_ok(shmbus_publish(p2, buf, tu_fill(buf, 2, 3, 32), 0));
    assert_shmbus_ok(shmbus_publish(p2, buf, tu_fill(buf, 2, 4, 32), 0));
    assert_shmbus_ok(shmbus_topic_info_get(f->topic, &ti));
    assert_int_equal(ti.published, 5);
    assert_int_equal(ti.overruns, 2);
    shmbus_pub_destroy(p2);
}

/* One publisher token per exclusive topic; the ring behaves as usual. */
static void test_ring_exclusive_publisher(void **state)
{
    struct fx *f = *state;
    shmbus_topic_info ti;
    struct got g = {0};
    shmbus_pub *other = (shmbus_pub *)&other;
    shmbus_claim c;
    shmbus_sub *s;

    assert_shmbus_ok(shmbus_topic_info_get(f->topic, &ti));
    assert_int_equal(ti.flags, SHMBUS_TOPIC_EXCLUSIVE);
    assert_shmbus_rc(shmbus_pub_create(f->topic, &other), -EBUSY);
    assert_null(other);
    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    for (uint64_t round = 0; round < 5; round++) {
        pub_n(f, round * 5, 5);
        assert_int_equal(shmbus_poll(s, collect, &g, 100), 5);
        for (unsigned i = 0; i < 5; i++)
            assert_int_equal(g.pseq[i], round * 5 + i);
        g.n = 0;
    }
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0));
    assert_shmbus_ok(shmbus_pub_commit(f->pub, &c, tu_fill(c.data, 1, 25, 64)));
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0));
    assert_shmbus_ok(shmbus_pub_abort(f->pub, &c));
    pub_n(f, 27, 1);
    assert_int_equal(shmbus_poll(s, collect, &g, 100), 2);
    assert_int_equal(g.seq[1], 27);
    assert_int_equal(g.lost[1], 1);
    if (ti.mode == SHMBUS_RELIABLE) {
        pub_n(f, 28, 8);
        assert_shmbus_rc(shmbus_publish(f->pub, "x", 1, 0), -EAGAIN);
    }
    shmbus_pub_destroy(f->pub);
    assert_shmbus_ok(shmbus_pub_create(f->topic, &f->pub));
    shmbus_sub_destroy(s);
}

static int die_holding_claim(void *arg)
{
    shmbus_topic *t;
    shmbus_pub *p;
    shmbus_claim c;

    if (shmbus_topic_attach(arg, &t) < 0 || shmbus_pub_create(t, &p) < 0 ||
        shmbus_pub_claim(p, &c, 0) < 0)
        return 1;
    _exit(0); /* dies between claim and commit, token held */
}

static shmbus_pub *inherited;

static int destroy_inherited(void *arg)
{
    (void)arg;
    shmbus_pub_destroy(inherited); /* a forked copy: frees memory only */
    return 0;
}

/* A forked child destroying its copy of the holder's publisher neither
 * gives the token back nor touches the holder's open claim. */
static void test_ring_exclusive_fork_copy(void **state)
{
    struct fx *f = *state;
    shmbus_pub *other = NULL;
    struct got g = {0};
    shmbus_claim c;
    shmbus_sub *s;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0));
    inherited = f->pub;
    assert_int_equal(tu_wait(tu_fork(destroy_inherited, NULL)), 0);
    assert_shmbus_rc(shmbus_pub_create(f->topic, &other), -EBUSY);
    assert_shmbus_ok(shmbus_pub_commit(f->pub, &c, tu_fill(c.data, 1, 0, 40)));
    assert_int_equal(shmbus_poll(s, collect, &g, 10), 1);
    assert_int_equal(g.lost[0], 0);
    shmbus_sub_destroy(s);
}

static shmbus_sub *inherited_sub;

/* A fork child may not publish or receive through handles it inherited:
 * their record and slot are the parent's. @return 0 if both refuse. */
static int use_inherited(void *arg)
{
    shmbus_claim *c = arg;
    uint8_t buf[64] = {0};
    struct iovec iov = {.iov_base = buf, .iov_len = 8};

    if (shmbus_publish(inherited, buf, 8, 0) != SHMBUS_ERR_INVALID ||
        shmbus_publish_vec(inherited, &iov, 1, 0) != SHMBUS_ERR_INVALID)
        return 1;
    if (shmbus_pub_commit(inherited, c, 8) != SHMBUS_ERR_INVALID ||
        shmbus_pub_abort(inherited, c) != SHMBUS_ERR_INVALID)
        return 3;
    if (shmbus_recv(inherited_sub, buf, sizeof(buf), NULL, 0) != SHMBUS_ERR_INVALID)
        return 2;
    return 0;
}

/* A fork child cannot write in the parent's name (torn cells, a record
 * the daemon would end under it) nor move the parent's cursor; nor can a
 * batch go out while the publisher's zero-copy claim is open. */
static void test_ring_fork_child_refused(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    struct iovec iov = {.iov_base = &g, .iov_len = 8};
    shmbus_claim c;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &inherited_sub));
    inherited = f->pub;
    assert_shmbus_ok(shmbus_pub_claim(f->pub, &c, 0));
    assert_shmbus_rc(shmbus_publish_vec(f->pub, &iov, 1, 0), SHMBUS_ERR_INVALID);
    assert_int_equal(tu_wait(tu_fork(use_inherited, &c)), 0);
    assert_shmbus_ok(shmbus_pub_commit(f->pub, &c, tu_fill(c.data, 1, 0, 40)));
    assert_int_equal(shmbus_poll(inherited_sub, collect, &g, 10), 1);
    assert_int_equal(g.seq[0], 0);
    shmbus_sub_destroy(inherited_sub);
}

/* A holder that died keeps neither the token nor its open seq. */
static void test_ring_exclusive_dead_holder(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    shmbus_sub *s;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    pub_n(f, 0, 2);
    shmbus_pub_destroy(f->pub);
    f->pub = NULL;
    assert_int_equal(tu_wait(tu_fork(die_holding_claim, (void *)f->name)), 0);
    assert_int_equal(shmbus_poll(s, collect, &g, 100), 2);
    assert_int_equal(shmbus_poll(s, collect, &g, 100), 0); /* stalled at seq 2 */
    assert_shmbus_ok(shmbus_pub_create(f->topic, &f->pub));
    pub_n(f, 3, 1);
    assert_int_equal(shmbus_poll(s, collect, &g, 100), 1);
    assert_int_equal(g.seq[2], 3);
    assert_int_equal(g.lost[2], 1);
    shmbus_sub_destroy(s);
}

static void test_ring_start_positions(void **state)
{
    struct fx *f = *state;
    shmbus_sub_opts oldest = {.start = SHMBUS_START_OLDEST};
    struct got g = {0};
    shmbus_sub *a, *b;

    pub_n(f, 0, 5);
    assert_shmbus_ok(shmbus_sub_create(f->topic, &oldest, &a));
    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &b));
    assert_int_equal(shmbus_poll(a, collect, &g, 100), 5);
    assert_int_equal(g.seq[0], 0);
    assert_int_equal(g.lost[0], 0);
    assert_int_equal(shmbus_poll(b, collect, &g, 100), 0);
    pub_n(f, 5, 20);
    shmbus_sub_destroy(a);
    g.n = 0;
    assert_shmbus_ok(shmbus_sub_create(f->topic, &oldest, &a));
    assert_int_equal(shmbus_poll(a, collect, &g, 100), 8);
    assert_int_equal(g.seq[0], 17);
    assert_int_equal(g.lost[0], 0);
    shmbus_sub_destroy(a);
    shmbus_sub_destroy(b);
}

static void test_ring_reliable_oldest_is_oldest_held(void **state)
{
    struct fx *f = *state;
    shmbus_sub_opts oldest = {.start = SHMBUS_START_OLDEST};
    struct got g = {.stop_after = 3};
    shmbus_sub *a, *b;

    /* Nobody held anything: an OLDEST subscriber starts at the tail. */
    pub_n(f, 0, 5);
    assert_shmbus_ok(shmbus_sub_create(f->topic, &oldest, &a));
    assert_int_equal(shmbus_poll(a, collect, &g, 100), 0);
    pub_n(f, 5, 6);
    assert_int_equal(shmbus_poll(a, collect, &g, 100), 3);
    assert_int_equal(g.seq[0], 5);
    /* a holds 8..10; b starts at the oldest message a still holds. */
    assert_shmbus_ok(shmbus_sub_create(f->topic, &oldest, &b));
    g.n = 0;
    g.stop_after = 0;
    assert_int_equal(shmbus_poll(b, collect, &g, 100), 3);
    assert_int_equal(g.seq[0], 8);
    shmbus_sub_destroy(a);
    shmbus_sub_destroy(b);
}

static void test_ring_recv_sizes_and_timeouts(void **state)
{
    struct fx *f = *state;
    uint8_t small[8], buf[256];
    shmbus_msg info;
    shmbus_sub *s;
    uint64_t before = (uint64_t)time(NULL);

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    assert_shmbus_rc(shmbus_recv(s, buf, sizeof(buf), &info, 0), -EAGAIN);
    assert_shmbus_rc(shmbus_recv(s, buf, sizeof(buf), &info, 1000000), SHMBUS_ERR_TIMEOUT);
    pub_n(f, 0, 1);
    assert_shmbus_rc(shmbus_recv(s, small, sizeof(small), &info, 0), -EMSGSIZE);
    assert_int_equal(info.len, 16);
    assert_int_equal(shmbus_recv(s, buf, sizeof(buf), &info, 0), 16);
    assert_int_equal(info.publisher_pid, (uint32_t)getpid());
    assert_true(info.timestamp_ns / 1000000000ull >= before);
    assert_true(info.timestamp_ns / 1000000000ull <= (uint64_t)time(NULL));
    assert_ptr_equal(info.data, buf);
    shmbus_sub_destroy(s);
}

/* The slot's received and lost mirrors, as monitors read them. */
static void slot_mirrors(const struct fx *f, uint64_t *received, uint64_t *lost)
{
    shmbus_slot_info si;

    assert_int_equal(shmbus_topic_slots_get(f->topic, &si, 1), 1);
    *received = si.received;
    *lost = si.lost;
}

/* shmbus_recv() of a plain subscriber, each case it meets: messages in
 * order into the caller's buffer (a lossy one copied there once), a
 * buffer of exactly the length, one byte short (left unread), a lap
 * (lossy: counted), nothing there, a zero-length message into no buffer;
 * the slot's mirrors follow. */
static void test_ring_recv_plain_cases(void **state)
{
    struct fx *f = *state;
    uint8_t buf[256];
    uint64_t received, lost, want_lost, first, seq;
    shmbus_topic_info ti;
    struct tu_payload p;
    shmbus_msg info;
    shmbus_sub *s;
    int lossy;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    pub_n(f, 0, 3);
    for (seq = 0; seq < 2; seq++) {
        assert_int_equal(shmbus_recv(s, buf, sizeof(buf), &info, 0), 16 + seq);
        assert_ptr_equal(info.data, buf);
        assert_true(tu_check(buf, info.len, &p));
        assert_int_equal(p.seq, seq);
        assert_int_equal(info.seq, seq);
        assert_int_equal(info.lost, 0);
    }
    info.data = NULL;
    info.seq = UINT64_MAX;
    assert_shmbus_rc(shmbus_recv(s, buf, 17, &info, 0), -EMSGSIZE);
    assert_int_equal(info.len, 18);
    /* Nothing delivered: only the length is told (not a pointer into the
     * ring, nor a seq and losses to count twice). */
    assert_null(info.data);
    assert_int_equal(info.seq, UINT64_MAX);
    assert_int_equal(shmbus_recv(s, buf, 18, &info, 0), 18);
    assert_true(tu_check(buf, info.len, &p) && p.seq == 2);
    assert_shmbus_rc(shmbus_recv(s, buf, sizeof(buf), &info, 0), -EAGAIN);
    slot_mirrors(f, &received, &lost);
    assert_int_equal(received, 3);
    assert_int_equal(lost, 0);
    /* Lossy: seqs 3..12 in 8 cells, 3 and 4 lapped; reliable: 3..10. */
    assert_shmbus_ok(shmbus_topic_info_get(f->topic, &ti));
    lossy = ti.mode == SHMBUS_LOSSY;
    pub_n(f, 3, lossy ? 10 : 8);
    first = lossy ? 5 : 3;
    want_lost = lossy ? 2 : 0;
    for (seq = first; seq < (lossy ? 13u : 11u); seq++) {
        assert_int_equal(shmbus_recv(s, buf, sizeof(buf), &info, 0), 16 + seq);
        assert_int_equal(info.seq, seq);
        assert_int_equal(info.lost, seq == first ? want_lost : 0);
        assert_true(tu_check(buf, info.len, &p) && p.seq == seq);
    }
    assert_shmbus_rc(shmbus_recv(s, buf, sizeof(buf), &info, 0), -EAGAIN);
    assert_shmbus_ok(shmbus_publish(f->pub, NULL, 0, 0));
    assert_int_equal(shmbus_recv(s, NULL, 0, &info, 0), 0);
    slot_mirrors(f, &received, &lost);
    assert_int_equal(lost, want_lost);
    assert_int_equal(received, 3 + (seq - first) + 1);
    shmbus_sub_destroy(s);
}

static void test_ring_group_each_message_once(void **state)
{
    struct fx *f = *state;
    shmbus_sub_opts go = {.group = 1};
    struct got ga = {.stop_after = 1}, gb = {.stop_after = 1}, gp = {0};
    shmbus_sub *a, *b, *p;

    assert_shmbus_ok(shmbus_sub_create(f->topic, &go, &a));
    assert_shmbus_ok(shmbus_sub_create(f->topic, &go, &b));
    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &p));
    for (uint64_t i = 0; i < 40; i++) {
        pub_n(f, i, 1);
        assert_int_equal(shmbus_poll(i % 3 ? a : b, collect, i % 3 ? (void *)&ga : (void *)&gb, 1),
                         1);
        ga.stop_after = gb.stop_after = 0;
        assert_int_equal(shmbus_poll(p, collect, &gp, 10), 1);
    }
    assert_int_equal(ga.n + gb.n, 40);
    assert_int_equal(gp.n, 40);
    assert_int_equal(shmbus_poll(a, collect, &ga, 10), 0);
    assert_int_equal(shmbus_poll(b, collect, &gb, 10), 0);
    shmbus_sub_destroy(a);
    shmbus_sub_destroy(b);
    shmbus_sub_destroy(p);
}

static void test_ring_group_gates_reliable_publisher(void **state)
{
    struct fx *f = *state;
    shmbus_sub_opts go = {.group = 2};
    struct got g = {0};
    uint8_t buf[64];
    shmbus_sub *a;

    assert_shmbus_ok(shmbus_sub_create(f->topic, &go, &a));
    pub_n(f, 0, 8);
    assert_shmbus_rc(shmbus_publish(f->pub, buf, tu_fill(buf, 1, 8, 32), 0), -EAGAIN);
    assert_int_equal(shmbus_poll(a, collect, &g, 3), 3);
    pub_n(f, 8, 3);
    /* The last member leaves: the group stops gating. */
    shmbus_sub_destroy(a);
    pub_n(f, 11, 30);
    /* A new member starts at the next message, not at the stale cursor. */
    assert_shmbus_ok(shmbus_sub_create(f->topic, &go, &a));
    g.n = 0;
    assert_int_equal(shmbus_poll(a, collect, &g, 100), 0);
    pub_n(f, 41, 2);
    assert_int_equal(shmbus_poll(a, collect, &g, 100), 2);
    assert_int_equal(g.seq[0], 41);
    shmbus_sub_destroy(a);
}

static void test_ring_slots_and_options(void **state)
{
    struct fx *f = *state;
    shmbus_sub *s[9];
    shmbus_sub_opts bad_group = {.group = 5}, bad_start = {.start = 9};
    shmbus_sub *x = (shmbus_sub *)&x;

    for (int i = 0; i < 8; i++)
        assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s[i]));
    assert_shmbus_rc(shmbus_sub_create(f->topic, NULL, &s[8]), SHMBUS_ERR_NO_SLOT);
    assert_null(s[8]);
    shmbus_sub_destroy(s[3]);
    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s[3]));
    for (int i = 0; i < 8; i++)
        shmbus_sub_destroy(s[i]);
    assert_shmbus_rc(shmbus_sub_create(f->topic, &bad_group, &x), SHMBUS_ERR_INVALID);
    assert_null(x);
    assert_shmbus_rc(shmbus_sub_create(f->topic, &bad_start, &x), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_sub_create(NULL, NULL, &x), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_poll(NULL, collect, NULL, 1), SHMBUS_ERR_INVALID);
    shmbus_sub_destroy(NULL);
}

static void test_ring_strerror_names_codes(void **state)
{
    (void)state;
    assert_string_equal(shmbus_strerror(0), "success");
    assert_string_equal(shmbus_strerror(SHMBUS_ERR_TOO_BIG),
                        "message larger than the topic's maximum size");
    assert_string_equal(shmbus_strerror(-ENOENT), "No such file or directory");
    assert_non_null(shmbus_strerror(-999));
    assert_string_equal(shmbus_strerror(-5000), "unknown shmbus error");
    for (int e = SHMBUS_ERR_INVALID; e >= SHMBUS_ERR_WAITSET_FULL; e--)
        assert_string_not_equal(shmbus_strerror(e), "unknown shmbus error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RT(test_ring_order_and_wraparound, setup_reliable8),
        RT(test_ring_handles_start_cache_lines, setup_reliable8),
        RT(test_ring_message_size_bounds, setup_reliable8),
        RT(test_ring_reliable_full_ring_backpressure, setup_reliable8),
        RT(test_ring_zero_copy_claim_commit_abort, setup_reliable8),
        RT(test_ring_lossy_lap_counts_exact_loss, setup_lossy8),
        RT(test_ring_lossy_stalled_writer_overrun, setup_lossy8),
        RT(test_ring_reliable_waits_for_lapped_writer, setup_reliable2),
        RT(test_ring_reliable_unmarked_writer_not_lapped, setup_reliable2),
        RT(test_ring_reliable_gives_up_on_lapped_writer, setup_reliable2),
        RT(test_ring_exclusive_publisher, setup_excl_lossy8),
        RT(test_ring_exclusive_publisher, setup_excl_reliable8),
        RT(test_ring_exclusive_dead_holder, setup_excl_lossy8),
        RT(test_ring_exclusive_fork_copy, setup_excl_lossy8),
        RT(test_ring_exclusive_dead_holder, setup_excl_reliable8),
        RT(test_ring_fork_child_refused, setup_lossy8),
        RT(test_ring_start_positions, setup_lossy8),
        RT(test_ring_reliable_oldest_is_oldest_held, setup_reliable8),
        RT(test_ring_recv_sizes_and_timeouts, setup_lossy8),
        RT(test_ring_recv_plain_cases, setup_lossy8),
        RT(test_ring_recv_plain_cases, setup_reliable8),
        RT(test_ring_group_each_message_once, setup_lossy8),
        RT(test_ring_group_gates_reliable_publisher, setup_reliable8),
        RT(test_ring_slots_and_options, setup_lossy8),
        cmocka_unit_test(test_ring_strerror_names_codes),
    };
    tu_init();
    return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
