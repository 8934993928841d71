/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starts at a seq or a time (ring/merge.c). In the ring alone (topics
 * created by name): reliable and lossy starts, times, option errors,
 * SHMBUS_ERR_RANGE on both sides. With a real shmbusd recording the topic
 * (--record, --journal-dir): late subscribers from seq 0 merge the journal
 * and the ring while a publisher goes on, with every seq once, in order;
 * a start by time; a gap in the journal (the daemon stopped while a lossy
 * ring went round) reported as lost; a topic nobody
 * records is SHMBUS_ERR_RANGE.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "mergetest.h"
#include "shmbus/journal.h"

#define MSG_MAX  64
#define RING_CAP 1024u
#define BACKLOG  5000u /* published before a late subscriber comes */
#define LIVE     3000u /* published while it reads */

/* A message's payload: its seq, so that order and content are checked. */
static void pub_seq(shmbus_pub *p, uint64_t seq)
{
    assert_shmbus_ok(shmbus_publish(p, &seq, sizeof(seq), 5000000000LL));
}

static shmbus_topic *ring_topic(const char **name, uint32_t mode, uint32_t cap)
{
    shmbus_topic_opts o = {.mode = mode, .capacity = cap, .max_msg_size = MSG_MAX};
    shmbus_topic *t;

    *name = tu_name("merge");
    assert_shmbus_ok(shmbus_topic_create(*name, &o, &t));
    return t;
}

static shmbus_sub *sub_at(shmbus_topic *t, uint32_t start, uint64_t v, int *rc)
{
    shmbus_sub_opts o = {.start = start};
    shmbus_sub *s = NULL;

    if (start == SHMBUS_START_SEQ)
        o.start_seq = v;
    else
        o.start_time_ns = v;
    *rc = shmbus_sub_create(t, &o, &s);
    return s;
}

/* Receive @p n messages: seqs from @p first up, each payload its seq, no
 * loss. */
static void expect_seqs(shmbus_sub *s, uint64_t first, uint64_t n)
{
    shmbus_msg m;
    uint64_t v;

    for (uint64_t i = 0; i < n; i++) {
        int rc = shmbus_recv(s, &v, sizeof(v), &m, 5000000000LL);
        if (rc != (int)sizeof(v))
            fail_msg("seq %llu: recv %d (%s)", (unsigned long long)(first + i), rc,
                     shmbus_strerror(rc));
        if (m.seq != first + i || v != m.seq || m.lost != 0)
            fail_msg("want seq %llu, got seq %llu payload %llu lost %llu",
                     (unsigned long long)(first + i), (unsigned long long)m.seq,
                     (unsigned long long)v, (unsigned long long)m.lost);
    }
}

/* A subscriber started at @p start / @p v receives @p n seqs from
 * @p first up (expect_seqs()), then leaves. */
static void expect_from(shmbus_topic *t, uint32_t start, uint64_t v, uint64_t first, uint64_t n)
{
    shmbus_sub *s;
    int rc;

    s = sub_at(t, start, v, &rc);
    assert_shmbus_ok(rc);
    expect_seqs(s, first, n);
    shmbus_sub_destroy(s);
}

static void test_ring_lossy_seq(void **state)
{
    const char *name;
    shmbus_topic *t = ring_topic(&name, SHMBUS_LOSSY, 64);
    shmbus_pub *p;
    shmbus_sub *s;
    int rc;

    (void)state;
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (uint64_t i = 0; i < 100; i++)
        pub_seq(p, i);
    expect_from(t, SHMBUS_START_SEQ, 50, 50, 50);
    /* The oldest the ring holds (tail - capacity), and the tail. */
    expect_from(t, SHMBUS_START_SEQ, 36, 36, 64);
    s = sub_at(t, SHMBUS_START_SEQ, 100, &rc);
    assert_shmbus_ok(rc);
    pub_seq(p, 100);
    expect_seqs(s, 100, 1);
    shmbus_sub_destroy(s);
    /* One older, one newer: no journal for a topic opened by name. */
    assert_null(sub_at(t, SHMBUS_START_SEQ, 36, &rc));
    assert_int_equal(rc, SHMBUS_ERR_RANGE);
    sub_at(t, SHMBUS_START_SEQ, 102, &rc);
    assert_int_equal(rc, SHMBUS_ERR_RANGE);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    tu_release(name);
}

static void test_ring_reliable_seq(void **state)
{
    const char *name;
    shmbus_topic *t = ring_topic(&name, SHMBUS_RELIABLE, 64);
    shmbus_sub_opts first = {.start = SHMBUS_START_NEXT};
    shmbus_sub *a, *s;
    shmbus_pub *p;
    shmbus_msg m;
    uint64_t v;
    int rc;

    (void)state;
    assert_shmbus_ok(shmbus_sub_create(t, &first, &a)); /* gates at 0 */
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (uint64_t i = 0; i < 50; i++)
        pub_seq(p, i);
    expect_from(t, SHMBUS_START_SEQ, 20, 20, 30);
    expect_from(t, SHMBUS_START_SEQ, 0, 0, 50);
    /* a moves to 30: below it nothing is held, so 10 is not safe to read. */
    for (int i = 0; i < 30; i++)
        assert_int_equal(shmbus_recv(a, &v, sizeof(v), &m, 0), (int)sizeof(v));
    /* Again and again: a refused start gives its slot back (64 slots). */
    for (int i = 0; i < 100; i++) {
        assert_null(sub_at(t, SHMBUS_START_SEQ, 10, &rc));
        assert_int_equal(rc, SHMBUS_ERR_RANGE);
    }
    s = sub_at(t, SHMBUS_START_SEQ, 30, &rc);
    assert_shmbus_ok(rc);
    expect_seqs(s, 30, 20);
    sub_at(t, SHMBUS_START_SEQ, 51, &rc);
    assert_int_equal(rc, SHMBUS_ERR_RANGE);
    shmbus_sub_destroy(s);
    shmbus_sub_destroy(a);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* Publish @p n messages on @p t (capacity @p cap, bigger than n or read
 * along), noting each one's publish time in @p ts by an OLDEST reader. */
static void pub_timed(shmbus_topic *t, uint64_t n, uint64_t *ts)
{
    shmbus_sub_opts o = {.start = SHMBUS_START_NEXT};
    shmbus_sub *r;
    shmbus_pub *p;
    shmbus_msg m;
    uint64_t v;

    assert_shmbus_ok(shmbus_sub_create(t, &o, &r));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (uint64_t i = 0; i < n; i++) {
        pub_seq(p, i);
        assert_int_equal(shmbus_recv(r, &v, sizeof(v), &m, 0), (int)sizeof(v));
        assert_int_equal(m.seq, i);
        ts[i] = m.timestamp_ns;
    }
    shmbus_pub_destroy(p);
    shmbus_sub_destroy(r);
}

/* The first seq whose time is at or after @p when. */
static uint64_t first_at(const uint64_t *ts, uint64_t n, uint64_t when)
{
    uint64_t i = 0;

    while (i < n && ts[i] < when)
        i++;
    return i;
}

static void time_in_ring(uint32_t mode)
{
    const char *name;
    shmbus_topic *t = ring_topic(&name, mode, 64);
    shmbus_sub_opts keep = {.start = SHMBUS_START_NEXT};
    shmbus_sub *s, *hold;
    uint64_t ts[36], v;
    shmbus_msg m;
    int rc;

    /* Holds the ring from 0 (a reliable topic: what is safe to read). */
    assert_shmbus_ok(shmbus_sub_create(t, &keep, &hold));
    pub_timed(t, 36, ts);
    s = sub_at(t, SHMBUS_START_TIME, ts[20], &rc);
    assert_shmbus_ok(rc);
    assert_int_equal(shmbus_recv(s, &v, sizeof(v), &m, 0), (int)sizeof(v));
    assert_int_equal(m.seq, first_at(ts, 36, ts[20]));
    shmbus_sub_destroy(s);
    /* Newer than everything: RANGE. */
    assert_null(sub_at(t, SHMBUS_START_TIME, ts[35] + 1, &rc));
    assert_int_equal(rc, SHMBUS_ERR_RANGE);
    /* hold moves to 36: a reliable ring then holds nothing safe below it. */
    for (int i = 0; i < 36; i++)
        assert_int_equal(shmbus_recv(hold, &v, sizeof(v), &m, 0), (int)sizeof(v));
    s = sub_at(t, SHMBUS_START_TIME, ts[20], &rc);
    if (mode == SHMBUS_RELIABLE) {
        assert_null(s);
        assert_int_equal(rc, SHMBUS_ERR_RANGE);
    } else {
        assert_shmbus_ok(rc);
        shmbus_sub_destroy(s);
    }
    shmbus_sub_destroy(hold);
    shmbus_topic_destroy(t);
    tu_release(name);
}

static void test_ring_time_lossy(void **state)
{
    (void)state;
    time_in_ring(SHMBUS_LOSSY);
}

static void test_ring_time_reliable(void **state)
{
    (void)state;
    time_in_ring(SHMBUS_RELIABLE);
}

/* A lapped ring holds none that old: RANGE without a journal. */
static void test_ring_time_before(void **state)
{
    const char *name;
    shmbus_topic *t = ring_topic(&name, SHMBUS_LOSSY, 64);
    shmbus_sub *s;
    uint64_t ts[100];
    shmbus_msg m;
    uint64_t v;
    int rc;

    (void)state;
    pub_timed(t, 100, ts); /* the ring holds 36..99 */
    sub_at(t, SHMBUS_START_TIME, ts[10], &rc);
    assert_int_equal(rc, SHMBUS_ERR_RANGE);
    sub_at(t, SHMBUS_START_TIME, 1, &rc);
    assert_int_equal(rc, SHMBUS_ERR_RANGE);
    s = sub_at(t, SHMBUS_START_TIME, ts[80], &rc);
    assert_shmbus_ok(rc);
    assert_int_equal(shmbus_recv(s, &v, sizeof(v), &m, 0), (int)sizeof(v));
    assert_int_equal(m.seq, first_at(ts, 100, ts[80]));
    shmbus_sub_destroy(s);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* A claim still open where the search lands (a slow or stopped
 * publisher) is a message to come, newer than the time: the start is
 * there, not SHMBUS_ERR_RANGE while newer messages sit behind it. */
static void test_ring_time_open_claim(void **state)
{
    const char *name;
    shmbus_topic *t = ring_topic(&name, SHMBUS_LOSSY, 64);
    shmbus_pub *a, *b;
    shmbus_claim c;
    struct timespec now;
    shmbus_sub *s;
    uint64_t when, v = 10;
    int rc;

    (void)state;
    assert_shmbus_ok(shmbus_pub_create(t, &a));
    assert_shmbus_ok(shmbus_pub_create(t, &b));
    for (uint64_t i = 0; i < 10; i++)
        pub_seq(a, i);
    assert_shmbus_ok(shmbus_pub_claim(b, &c, 0));
    assert_int_equal(c.seq, 10);
    du_sleep_ms(2);
    clock_gettime(CLOCK_REALTIME, &now);
    when = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    du_sleep_ms(2);
    for (uint64_t i = 11; i < 20; i++)
        pub_seq(a, i);
    s = sub_at(t, SHMBUS_START_TIME, when, &rc);
    assert_shmbus_ok(rc);
    memcpy(c.data, &v, sizeof(v));
    assert_shmbus_ok(shmbus_pub_commit(b, &c, sizeof(v)));
    expect_seqs(s, 10, 10);
    shmbus_sub_destroy(s);
    shmbus_pub_destroy(b);
    shmbus_pub_destroy(a);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* A skipped cell (an aborted claim) among the newer messages, where the
 * search probes: it has no time, and must not hide the newer messages
 * before it. */
static void test_ring_time_skipped(void **state)
{
    const char *name;
    shmbus_topic *t = ring_topic(&name, SHMBUS_LOSSY, 16);
    shmbus_pub *p;
    shmbus_claim c;
    struct timespec now;
    uint64_t when;

    (void)state;
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    pub_seq(p, 0);
    pub_seq(p, 1);
    du_sleep_ms(2);
    clock_gettime(CLOCK_REALTIME, &now);
    when = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    du_sleep_ms(2);
    for (uint64_t i = 2; i < 5; i++)
        pub_seq(p, i);
    /* Seq 5, the search's first probe of seqs 0 .. 9. */
    assert_shmbus_ok(shmbus_pub_claim(p, &c, 0));
    assert_int_equal(c.seq, 5);
    assert_shmbus_ok(shmbus_pub_abort(p, &c));
    for (uint64_t i = 6; i < 10; i++)
        pub_seq(p, i);
    expect_from(t, SHMBUS_START_TIME, when, 2, 3);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    tu_release(name);
}

static void test_opts_invalid(void **state)
{
    const char *name;
    shmbus_topic *t = ring_topic(&name, SHMBUS_LOSSY, 64);
    shmbus_sub_opts o;
    shmbus_sub *s;

    (void)state;
    o = (shmbus_sub_opts){.start = SHMBUS_START_NEXT, .start_seq = 1};
    assert_int_equal(shmbus_sub_create(t, &o, &s), SHMBUS_ERR_INVALID);
    o = (shmbus_sub_opts){.start = SHMBUS_START_OLDEST, .start_time_ns = 1};
    assert_int_equal(shmbus_sub_create(t, &o, &s), SHMBUS_ERR_INVALID);
    o = (shmbus_sub_opts){.start = SHMBUS_START_SEQ, .start_time_ns = 1};
    assert_int_equal(shmbus_sub_create(t, &o, &s), SHMBUS_ERR_INVALID);
    o = (shmbus_sub_opts){.start = SHMBUS_START_TIME, .start_seq = 1, .start_time_ns = 1};
    assert_int_equal(shmbus_sub_create(t, &o, &s), SHMBUS_ERR_INVALID);
    o = (shmbus_sub_opts){.start = SHMBUS_START_SEQ, .group = 1};
    assert_int_equal(shmbus_sub_create(t, &o, &s), SHMBUS_ERR_INVALID);
    o = (shmbus_sub_opts){.start = SHMBUS_START_TIME + 1};
    assert_int_equal(shmbus_sub_create(t, &o, &s), SHMBUS_ERR_INVALID);
    /* An observer may start at a seq. */
    o = (shmbus_sub_opts){.start = SHMBUS_START_SEQ, .flags = SHMBUS_SUB_OBSERVER};
    assert_shmbus_ok(shmbus_sub_create(t, &o, &s));
    shmbus_sub_destroy(s);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* ---------------------------------------------------------- with a daemon */

static shmbus_topic *bus_topic(struct rec_env *e, const char *name, uint32_t mode)
{
    shmbus_topic_opts o = {.mode = mode, .capacity = RING_CAP, .max_msg_size = MSG_MAX};
    shmbus_topic *t;

    assert_shmbus_ok(shmbus_open(e->bus, name, &o, 0, &t));
    return t;
}

/* Wait until the journal of @p topic holds seq @p last. */
static void journal_wait(const struct rec_env *e, const char *topic, uint64_t last)
{
    int64_t end = du_now_ms() + 20000;
    shmbus_journal_summary s;

    for (;;) {
        if (shmbus_journal_summary_get(e->jdir, topic, &s) == 0 && s.last_seq != UINT64_MAX &&
            s.last_seq >= last)
            return;
        if (du_now_ms() > end)
            fail_msg("journal of %s never reached seq %llu", topic, (unsigned long long)last);
        du_sleep_ms(2);
    }
}

/* Publish seqs @p from .. @p to - 1, pacing a lossy topic by the journal
 * so that the recorder is never lapped (its gaps are another test's). */
static void pub_range(const struct rec_env *e, const char *topic, shmbus_pub *p, uint32_t mode,
                      uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        pub_seq(p, i);
        if (mode == SHMBUS_LOSSY && (i + 1) % 256 == 0)
            journal_wait(e, topic, i);
    }
}

struct live_arg {
    shmbus_pub *p;
    uint32_t mode;
    _Atomic int stop; /* the test failed: give up */
    int rc;           /* the first failed publish */
};

/* The live publisher thread: no cmocka asserts off the main thread. A
 * lossy topic is paced (a pause every 64 messages) so that the recorder
 * keeps up on a loaded machine; a reliable one is paced by the ring. */
static void *live_pub(void *arg)
{
    struct live_arg *a = arg;

    for (uint64_t i = BACKLOG; i < BACKLOG + LIVE && a->rc == 0; i++) {
        /* relaxed: a flag; the publish calls order nothing by it. */
        if (atomic_load_explicit(&a->stop, memory_order_relaxed))
            break;
        a->rc = shmbus_publish(a->p, &i, sizeof(i), 5000000000LL);
        if (a->mode == SHMBUS_LOSSY && i % 64 == 0)
            du_sleep_ms(1);
    }
    return NULL;
}

/* expect_seqs(s, 0, n) while thread @p th publishes; the thread is
 * stopped and joined before anything is asserted. */
static void expect_all(shmbus_sub *s, uint64_t n, struct live_arg *a, pthread_t th)
{
    shmbus_msg m = {0};
    uint64_t v = 0, i;
    int rc = 0;

    for (i = 0; i < n; i++) {
        rc = shmbus_recv(s, &v, sizeof(v), &m, 10000000000LL);
        if (rc != (int)sizeof(v) || m.seq != i || v != i || m.lost != 0)
            break;
    }
    /* relaxed: see live_pub(). */
    atomic_store_explicit(&a->stop, 1, memory_order_relaxed);
    pthread_join(th, NULL);
    if (i < n)
        fail_msg("want seq %llu: recv %d, seq %llu payload %llu lost %llu", (unsigned long long)i,
                 rc, (unsigned long long)m.seq, (unsigned long long)v, (unsigned long long)m.lost);
}

static void merge_all(struct rec_env *e, uint32_t mode, const char *topic)
{
    shmbus_topic *t;
    shmbus_pub *p;
    shmbus_sub *s;
    pthread_t th;
    struct live_arg a = {.mode = mode};
    shmbus_sub_stats st;
    int rc;

    t = bus_topic(e, topic, mode);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    a.p = p;
    pub_range(e, topic, p, mode, 0, BACKLOG);
    journal_wait(e, topic, BACKLOG - 1);
    s = sub_at(t, SHMBUS_START_SEQ, 0, &rc);
    assert_shmbus_ok(rc);
    assert_int_equal(pthread_create(&th, NULL, live_pub, &a), 0);
    expect_all(s, BACKLOG + LIVE, &a, th);
    assert_shmbus_ok(a.rc);
    assert_shmbus_ok(shmbus_sub_stats_get(s, &st));
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.received, BACKLOG + LIVE);
    shmbus_sub_destroy(s);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
}

static void test_merge_reliable(void **state)
{
    merge_all(*state, SHMBUS_RELIABLE, "rec.rel");
}

static void test_merge_lossy(void **state)
{
    merge_all(*state, SHMBUS_LOSSY, "rec.lossy");
}

/* A start by time lands on the journal's first message at or after it. */
static void test_merge_time(void **state)
{
    struct rec_env *e = *state;
    shmbus_journal_reader *r;
    shmbus_journal_record rec;
    uint64_t when = 0, want = UINT64_MAX;
    shmbus_topic *t;
    shmbus_pub *p;

    t = bus_topic(e, "rec.time", SHMBUS_RELIABLE);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    pub_range(e, "rec.time", p, SHMBUS_RELIABLE, 0, 3000);
    journal_wait(e, "rec.time", 2999);
    assert_shmbus_ok(shmbus_journal_reader_open(e->jdir, "rec.time", &r));
    while (when == 0 && shmbus_journal_next(r, &rec) == 1)
        if (rec.seq == 700)
            when = rec.timestamp_ns;
    shmbus_journal_reader_close(r);
    assert_int_not_equal(when, 0);
    /* The first seq with that time (publish times may repeat). */
    assert_shmbus_ok(shmbus_journal_reader_open(e->jdir, "rec.time", &r));
    while (want == UINT64_MAX && shmbus_journal_next(r, &rec) == 1)
        if (rec.timestamp_ns >= when)
            want = rec.seq;
    shmbus_journal_reader_close(r);
    /* 3000 messages past a ring of 1024: seq 700 is the journal's only. */
    expect_from(t, SHMBUS_START_TIME, when, want, 3000 - want);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
}

/* A lossy ring laps the recorder (the daemon is stopped meanwhile): the
 * journal records a gap, which the late subscriber gets as lost on the
 * message after it, and then everything after, in order. */
static void test_merge_gap(void **state)
{
    const uint64_t before = 100, total = before + 3 * RING_CAP;
    struct rec_env *e = *state;
    shmbus_topic *t;
    shmbus_pub *p;
    shmbus_sub *s;
    shmbus_sub_stats st;
    shmbus_msg m;
    uint64_t v;
    int rc, st_kid;

    t = bus_topic(e, "rec.gap", SHMBUS_LOSSY);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    pub_range(e, "rec.gap", p, SHMBUS_LOSSY, 0, before);
    journal_wait(e, "rec.gap", before - 1);
    assert_int_equal(kill(e->d.pid, SIGSTOP), 0);
    /* kill() returns before every thread has stopped: a recorder still
     * running would record what the gap is to hold. */
    assert_int_equal(waitpid(e->d.pid, &st_kid, WUNTRACED), e->d.pid);
    assert_true(WIFSTOPPED(st_kid));
    for (uint64_t i = before; i < total; i++)
        pub_seq(p, i);
    assert_int_equal(kill(e->d.pid, SIGCONT), 0);
    journal_wait(e, "rec.gap", total - 1);
    s = sub_at(t, SHMBUS_START_SEQ, 0, &rc);
    assert_shmbus_ok(rc);
    expect_seqs(s, 0, before);
    assert_int_equal(shmbus_recv(s, &v, sizeof(v), &m, 5000000000LL), (int)sizeof(v));
    /* The recorder lost at least what the ring could not keep. */
    assert_true(m.lost >= total - before - RING_CAP);
    assert_int_equal(m.seq, before + m.lost);
    assert_int_equal(v, m.seq);
    expect_seqs(s, m.seq + 1, total - m.seq - 1);
    assert_shmbus_ok(shmbus_sub_stats_get(s, &st));
    assert_int_equal(st.lost, m.lost);
    assert_int_equal(st.received + st.lost, total);
    shmbus_sub_destroy(s);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
}

/* The journal under the topic's name is an earlier topic's (its seqs
 * run past this topic's tail): the daemon sets such a journal aside when
 * its recorder opens it, but a recorder that cannot open it (here: another
 * writer holds its lock) leaves it there. A late subscriber must not take
 * its messages for this topic's: SHMBUS_ERR_RANGE, as with no journal. */
static void test_merge_foreign(void **state)
{
    const uint64_t old = 3 * RING_CAP, pubd = 2 * RING_CAP;
    struct rec_env *e = *state;
    shmbus_journal *j;
    shmbus_topic *t;
    shmbus_pub *p;
    shmbus_sub *s;
    shmbus_msg m = {.len = sizeof(uint64_t), .timestamp_ns = 1};
    uint64_t v;
    int rc;

    assert_shmbus_ok(shmbus_journal_open(e->jdir, "rec.foreign", NULL, &j));
    for (uint64_t i = 0; i < old; i++) {
        v = ~i;
        m.seq = i;
        m.data = &v;
        assert_int_equal(shmbus_journal_append(j, &m), 1);
    }
    assert_shmbus_ok(shmbus_journal_flush(j));
    t = bus_topic(e, "rec.foreign", SHMBUS_LOSSY);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (uint64_t i = 0; i < pubd; i++)
        pub_seq(p, i);
    s = sub_at(t, SHMBUS_START_SEQ, 0, &rc);
    if (s != NULL) {
        rc = shmbus_recv(s, &v, sizeof(v), &m, 1000000000LL);
        shmbus_sub_destroy(s);
        fail_msg("started in another topic's journal: recv %d, seq %llu payload %llx", rc,
                 (unsigned long long)m.seq, (unsigned long long)v);
    }
    assert_int_equal(rc, SHMBUS_ERR_RANGE);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    assert_shmbus_ok(shmbus_journal_close(j));
}

struct stall_pub {
    shmbus_pub *p;
    uint64_t next;
    _Atomic int stop;
    int rc; /* the first failed publish */
};

/* Publish from seq a->next on, as fast as the ring takes them. */
static void *stall_pub_main(void *arg)
{
    struct stall_pub *a = arg;

    /* relaxed: a flag; the publish calls order nothing by it. */
    while (!atomic_load_explicit(&a->stop, memory_order_relaxed) && a->rc == 0) {
        a->rc = shmbus_publish(a->p, &a->next, sizeof(a->next), 5000000000LL);
        a->next++;
    }
    return NULL;
}

/* Nobody records the topic now (a recorder stopped: here it cannot take
 * the journal's lock), so the journal never reaches a seat above its end.
 * The late subscriber seated there holds a full ring's publishers back
 * while it waits, and must give the seat up before the topic's stall
 * timeout has the daemon evict it. */
static void test_merge_seat_stall(void **state)
{
    const uint64_t journaled = 10, pubd = 200;
    shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = 64, .max_msg_size = MSG_MAX, .stall_timeout_ms = 150};
    struct rec_env *e = *state;
    struct stall_pub a = {.next = pubd};
    shmbus_journal *j;
    shmbus_topic *t;
    shmbus_sub *s;
    shmbus_msg m = {.len = sizeof(uint64_t), .timestamp_ns = 1};
    pthread_t th;
    uint64_t v;
    int rc;

    assert_shmbus_ok(shmbus_journal_open(e->jdir, "rec.stall", NULL, &j));
    for (uint64_t i = 0; i < journaled; i++) {
        v = i;
        m.seq = i;
        m.data = &v;
        assert_int_equal(shmbus_journal_append(j, &m), 1);
    }
    assert_shmbus_ok(shmbus_journal_flush(j));
    assert_shmbus_ok(shmbus_open(e->bus, "rec.stall", &o, 0, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &a.p));
    for (uint64_t i = 0; i < pubd; i++)
        pub_seq(a.p, i);
    s = sub_at(t, SHMBUS_START_SEQ, 0, &rc);
    assert_shmbus_ok(rc);
    expect_seqs(s, 0, journaled);
    assert_int_equal(pthread_create(&th, NULL, stall_pub_main, &a), 0);
    /* Seated above the journal's end, it waits: never evicted. */
    rc = shmbus_recv(s, &v, sizeof(v), &m, 1000000000LL);
    /* relaxed: see stall_pub_main(). */
    atomic_store_explicit(&a.stop, 1, memory_order_relaxed);
    pthread_join(th, NULL);
    assert_int_equal(rc, SHMBUS_ERR_TIMEOUT);
    assert_shmbus_ok(a.rc);
    shmbus_sub_destroy(s);
    shmbus_pub_destroy(a.p);
    shmbus_topic_destroy(t);
    assert_shmbus_ok(shmbus_journal_close(j));
}

/* A topic the daemon does not record: RANGE before the ring. */
static void test_merge_unrecorded(void **state)
{
    struct rec_env *e = *state;
    shmbus_topic *t;
    shmbus_pub *p;
    int rc;

    t = bus_topic(e, "plain", SHMBUS_LOSSY);
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (uint64_t i = 0; i < 2 * RING_CAP; i++)
        pub_seq(p, i);
    assert_null(sub_at(t, SHMBUS_START_SEQ, 0, &rc));
    assert_int_equal(rc, SHMBUS_ERR_RANGE);
    expect_from(t, SHMBUS_START_SEQ, RING_CAP, RING_CAP, RING_CAP);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_lossy_seq),
        cmocka_unit_test(test_ring_reliable_seq),
        cmocka_unit_test(test_ring_time_lossy),
        cmocka_unit_test(test_ring_time_reliable),
        cmocka_unit_test(test_ring_time_before),
        cmocka_unit_test(test_ring_time_open_claim),
        cmocka_unit_test(test_ring_time_skipped),
        cmocka_unit_test(test_opts_invalid),
        cmocka_unit_test_setup_teardown(test_merge_reliable, rec_setup, rec_teardown),
        cmocka_unit_test_setup_teardown(test_merge_lossy, rec_setup, rec_teardown),
        cmocka_unit_test_setup_teardown(test_merge_time, rec_setup, rec_teardown),
        cmocka_unit_test_setup_teardown(test_merge_gap, rec_setup, rec_teardown),
        cmocka_unit_test_setup_teardown(test_merge_foreign, rec_setup, rec_teardown),
        cmocka_unit_test_setup_teardown(test_merge_seat_stall, rec_setup, rec_teardown),
        cmocka_unit_test_setup_teardown(test_merge_unrecorded, rec_setup, rec_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("merge", tests, NULL, NULL);
}
