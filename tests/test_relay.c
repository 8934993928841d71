/*
 * The daemon-facing relay interface (registry/relay.c), in one process on
 * a topic created directly: a quiet publish wakes nobody while only the
 * relay sleeps, and wakes another sleeper as a plain one does, a bell rung since the relay
 * read it ends its wait at once, a relay asleep is woken by a bell rung
 * or a plain publish from another thread, and the topic bound of one
 * wait.
 */
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "registry/relay.h"
#include "ring/ring.h"
#include "shm/layout.h"
#include "util/clock.h"

static int fx_setup(void **state)
{
    static struct tu_topic f;

    if (tu_topic_open(&f, "relay", 16) < 0)
        return -1;
    *state = &f;
    return 0;
}

static int fx_teardown(void **state)
{
    tu_topic_close(*state);
    return 0;
}

/* What the ready callback saw, asked while the relay counts as a sleeper. */
struct quiet_probe {
    shmbus_topic *t;
    shmbus_pub *quiet, *plain;
    shmbus_sub *sub;
    uint32_t waiters, futex0, futex_quiet, futex_other, futex_plain;
    int ready_after, calls;
};

/* relaxed, in this file's reads of a topic's counters: one thread looks
 * at what it did itself (the waker, at what it only waits for). */
static uint32_t data_futex(const shmbus_topic *t)
{
    return atomic_load_explicit(&t->seg.hdr->data_futex, memory_order_relaxed);
}

static uint32_t data_waiters(const shmbus_topic *t)
{
    return atomic_load_explicit(&t->seg.hdr->data_waiters, memory_order_relaxed);
}

/* Publish from inside the relay's sleep (after it counted itself, before
 * it sleeps): quietly, quietly again while one more sleeper counts itself
 * (as a subscriber does, wait.c sleeper_in()), then plainly; report ready. */
static int quiet_probe_ready(void *arg, memory_order order)
{
    struct quiet_probe *q = arg;
    uint64_t v = 1;
    int rc;

    q->calls++;
    q->waiters = data_waiters(q->t);
    q->futex0 = data_futex(q->t);
    if (shmbus_publish(q->quiet, &v, sizeof(v), 0) < 0)
        return -1;
    q->futex_quiet = data_futex(q->t);
    /* relaxed: this thread's own count, read by its own publish. */
    atomic_fetch_add_explicit(&q->t->seg.hdr->data_waiters, 1, memory_order_relaxed);
    rc = shmbus_publish(q->quiet, &v, sizeof(v), 0);
    atomic_fetch_sub_explicit(&q->t->seg.hdr->data_waiters, 1, memory_order_relaxed);
    if (rc < 0)
        return -1;
    q->futex_other = data_futex(q->t);
    if (shmbus_publish(q->plain, &v, sizeof(v), 0) < 0)
        return -1;
    q->futex_plain = data_futex(q->t);
    q->ready_after = sb_relay_sub_ready(q->sub, order);
    return 1;
}

static void test_relay_quiet_publish_wakes_only_others(void **state)
{
    struct tu_topic *f = *state;
    struct quiet_probe q = {.t = f->t};

    assert_shmbus_ok(shmbus_pub_create(f->t, &q.quiet));
    assert_shmbus_ok(shmbus_pub_create(f->t, &q.plain));
    assert_shmbus_ok(shmbus_sub_create(f->t, NULL, &q.sub));
    sb_relay_pub_quiet(q.quiet);
    assert_int_equal(sb_relay_sub_ready(q.sub, memory_order_acquire), 0);
    assert_shmbus_ok(
        sb_relay_wait(&f->t, 1, quiet_probe_ready, &q, sb_mono_ns() + 10000000000ull, NULL, 0));
    assert_int_equal(q.calls, 1);
    assert_int_equal(q.waiters, SB_RELAY_WEIGHT);  /* only the relay sleeps */
    assert_int_equal(q.futex_quiet, q.futex0);     /* the quiet publish woke nobody */
    assert_int_equal(q.futex_other, q.futex0 + 1); /* but another sleeper, yes */
    assert_int_equal(q.futex_plain, q.futex0 + 2);
    assert_int_equal(q.ready_after, 1);
    assert_int_equal(data_waiters(f->t), 0);
    shmbus_sub_destroy(q.sub);
    shmbus_pub_destroy(q.plain);
    shmbus_pub_destroy(q.quiet);
}

static int never_ready(void *arg, memory_order order)
{
    (void)arg;
    (void)order;
    return 0;
}

static int always_ready(void *arg, memory_order order)
{
    (void)arg;
    (void)order;
    return 1;
}

/* A bell rung since the relay read it ends each wait at once: twenty
 * waits take far less than the twenty slices they would sleep without. */
static void test_relay_rung_bell_ends_the_wait(void **state)
{
    struct tu_topic *f = *state;
    _Atomic uint32_t bell = 0;
    uint32_t seen = sb_relay_bell_seen(&bell);
    uint64_t t0;

    sb_relay_bell_ring(&bell);
    assert_int_equal(sb_relay_bell_seen(&bell), seen + 1);
    t0 = sb_mono_ns();
    for (int i = 0; i < 20; i++)
        assert_shmbus_ok(
            sb_relay_wait(&f->t, 1, never_ready, NULL, sb_mono_ns() + 10000000000ull, &bell, seen));
    assert_true(sb_mono_ns() - t0 < 10 * 50000000ull);
    /* With no topic, the bell alone. */
    assert_shmbus_ok(
        sb_relay_wait(NULL, 0, never_ready, NULL, sb_mono_ns() + 10000000000ull, &bell, seen));
}

/* Wakes a relay asleep on topic t, from another thread: rings @p bell,
 * or (bell NULL) publishes with @p pub. */
struct waker {
    shmbus_topic *t;
    _Atomic uint32_t *bell;
    shmbus_pub *pub;
    uint64_t at; /* when it woke the relay (read after the join) */
};

static void *waker_main(void *arg)
{
    struct waker *w = arg;
    uint64_t v = 1;

    /* Only when to act: the ring or the publish below is what the relay's
     * wait synchronises with. */
    while (data_waiters(w->t) < SB_RELAY_WEIGHT)
        usleep(100);
    usleep(5000); /* counted, then asleep in the futex call within this */
    w->at = sb_mono_ns();
    if (w->bell != NULL)
        sb_relay_bell_ring(w->bell);
    else
        shmbus_publish(w->pub, &v, sizeof(v), 0);
    return NULL;
}

static int sub_ready(void *arg, memory_order order)
{
    return sb_relay_sub_ready(arg, order);
}

/* One wake-up of a sleeping relay: how long from the waker's ring or
 * publish until the relay's wait ended for it. A wait that is not woken
 * ends only at its slice end (SB_WAIT_SLICE_NS, 50 ms), some 45 ms later. */
static uint64_t wake_latency(shmbus_topic *t, shmbus_pub *pub, shmbus_sub *sub)
{
    _Atomic uint32_t bell = 0;
    struct waker w = {.t = t, .bell = pub == NULL ? &bell : NULL, .pub = pub};
    uint32_t seen = sb_relay_bell_seen(&bell);
    uint64_t end = sb_mono_ns() + 10000000000ull, done;
    pthread_t th;
    uint8_t buf[64];

    assert_int_equal(pthread_create(&th, NULL, waker_main, &w), 0);
    /* Slices that end before the waker acts only wait again. */
    while (pub == NULL ? sb_relay_bell_seen(&bell) == seen
                       : sb_relay_sub_ready(sub, memory_order_acquire) == 0) {
        assert_true(sb_mono_ns() < end);
        assert_shmbus_ok(sb_relay_wait(&t, 1, pub == NULL ? never_ready : sub_ready, sub,
                                       sb_mono_ns() + 10000000000ull, &bell, seen));
    }
    done = sb_mono_ns();
    assert_int_equal(pthread_join(th, NULL), 0);
    if (sub != NULL)
        assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, 0), (int)sizeof(uint64_t));
    return done - w.at;
}

/* A relay asleep on a topic is woken by a bell rung and by a plain
 * publish: most of five wake-ups each take far less than the slice end
 * that a missed wake-up waits for (a loaded machine may delay a few). */
static void test_relay_sleeping_relay_is_woken(void **state)
{
    struct tu_topic *f = *state;
    shmbus_pub *pub;
    shmbus_sub *sub;
    int rung = 0, published = 0;

    assert_shmbus_ok(shmbus_pub_create(f->t, &pub));
    assert_shmbus_ok(shmbus_sub_create(f->t, NULL, &sub));
    for (int i = 0; i < 5; i++) {
        rung += wake_latency(f->t, NULL, NULL) < 25000000ull;
        published += wake_latency(f->t, pub, sub) < 25000000ull;
    }
    assert_in_range(rung, 3, 5);
    assert_in_range(published, 3, 5);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
}

/* One wait covers SB_RELAY_TOPICS_MAX topics and the bell; more, or
 * nothing at all, are refused. */
static void test_relay_wait_topic_bound(void **state)
{
    struct tu_topic *f = *state;
    shmbus_topic *topics[SB_RELAY_TOPICS_MAX + 1];
    _Atomic uint32_t bell = 1;

    for (unsigned i = 0; i < SB_RELAY_TOPICS_MAX + 1; i++)
        topics[i] = f->t;
    assert_shmbus_ok(sb_relay_wait(topics, SB_RELAY_TOPICS_MAX, never_ready, NULL,
                                   sb_mono_ns() + 10000000000ull, &bell, 0));
    assert_shmbus_rc(sb_relay_wait(topics, SB_RELAY_TOPICS_MAX + 1, never_ready, NULL,
                                   sb_mono_ns() + 10000000000ull, &bell, 0),
                     SHMBUS_ERR_INVALID);
    /* Nothing to sleep on, even when ready would say yes. */
    assert_shmbus_rc(
        sb_relay_wait(NULL, 0, always_ready, NULL, sb_mono_ns() + 10000000000ull, NULL, 0),
        SHMBUS_ERR_INVALID);
    assert_int_equal(data_waiters(f->t), 0);
}

/* A reliable topic of @p capacity cells for @p f, named after @p tag. */
static int rel_open(struct tu_topic *f, const char *tag, uint32_t capacity)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = capacity, .max_msg_size = 64};

    f->name = tu_name(tag);
    return shmbus_topic_create(f->name, &o, &f->t);
}

/* What a poll saw of the messages it was handed. */
struct seen {
    uint64_t payload[32];
    shmbus_msg m[32];
    unsigned n;
};

static int seen_collect(const shmbus_msg *m, void *arg)
{
    struct seen *s = arg;

    if (s->n < 32) {
        s->m[s->n] = *m;
        memcpy(&s->payload[s->n], m->data, sizeof(uint64_t));
        s->n++;
    }
    return 0;
}

static void assert_local(const shmbus_msg *m)
{
    assert_int_equal(m->flags, 0);
    assert_int_equal(m->reserved0, 0);
    assert_int_equal(m->origin_seq, 0);
    assert_int_equal(m->reserved[0], 0);
    assert_int_equal(m->reserved[1], 0);
}

/* An imported message reads back with its origin's seq, time and pid,
 * through shmbus_recv() and shmbus_poll(), on a lossy topic (copy reads)
 * and a reliable one (read in place); a local one after it reads as
 * local, its reserved fields zeroed. */
static void imported_round_trip(shmbus_topic *t)
{
    struct sb_relay_origin o = {.seq = 41, .timestamp_ns = 1234567890123ull, .pid = 777};
    shmbus_sub_opts so = {.start = SHMBUS_START_OLDEST};
    shmbus_sub *rs, *ps;
    shmbus_pub *pub;
    uint64_t v = 5, buf;
    struct seen s = {0};
    shmbus_msg m;

    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_sub_create(t, &so, &rs));
    assert_shmbus_ok(shmbus_sub_create(t, &so, &ps));
    assert_shmbus_ok(sb_relay_publish_imported(pub, &v, sizeof(v), &o, 0));
    assert_shmbus_ok(shmbus_publish(pub, &v, sizeof(v), 0));
    memset(&m, 0xa5, sizeof(m));
    assert_int_equal(shmbus_recv(rs, &buf, sizeof(buf), &m, 0), (int)sizeof(v));
    assert_int_equal(m.flags, SHMBUS_MSG_IMPORTED);
    assert_int_equal(m.origin_seq, 41);
    assert_int_equal(m.timestamp_ns, 1234567890123ull);
    assert_int_equal(m.publisher_pid, 777);
    assert_int_equal(m.seq, 0);
    assert_int_equal(m.reserved0, 0);
    assert_int_equal(m.reserved[0], 0);
    assert_int_equal(m.reserved[1], 0);
    memset(&m, 0xa5, sizeof(m));
    assert_int_equal(shmbus_recv(rs, &buf, sizeof(buf), &m, 0), (int)sizeof(v));
    assert_local(&m);
    assert_int_equal(m.publisher_pid, (uint32_t)getpid());
    assert_int_equal(shmbus_poll(ps, seen_collect, &s, 8), 2);
    assert_int_equal(s.m[0].flags, SHMBUS_MSG_IMPORTED);
    assert_int_equal(s.m[0].origin_seq, 41);
    assert_int_equal(s.m[0].timestamp_ns, 1234567890123ull);
    assert_int_equal(s.m[0].publisher_pid, 777);
    assert_local(&s.m[1]);
    shmbus_sub_destroy(ps);
    shmbus_sub_destroy(rs);
    shmbus_pub_destroy(pub);
}

static void test_relay_imported_round_trip(void **state)
{
    struct tu_topic *f = *state, r;

    imported_round_trip(f->t);
    assert_shmbus_ok(rel_open(&r, "relay-rt", 8));
    imported_round_trip(r.t);
    tu_topic_close(&r);
}

/* A cell reused by a local publish (plain, zero-copy, exclusive) never
 * shows the origin of the imported message it held before. */
static void origin_zeroed_on_reuse(shmbus_topic *t, uint32_t capacity)
{
    struct sb_relay_origin o = {.seq = 9, .timestamp_ns = 1, .pid = 2};
    shmbus_sub_opts so = {.start = SHMBUS_START_OLDEST};
    struct seen s = {0};
    shmbus_claim c;
    shmbus_pub *pub;
    shmbus_sub *sub;

    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    for (uint64_t i = 0; i < capacity; i++) {
        o.seq = 100 + i;
        assert_shmbus_ok(sb_relay_publish_imported(pub, &i, sizeof(i), &o, 0));
    }
    for (uint64_t i = 0; i < capacity; i++) {
        if (i % 2 == 0) {
            assert_shmbus_ok(shmbus_publish(pub, &i, sizeof(i), 0));
            continue;
        }
        assert_shmbus_ok(shmbus_pub_claim(pub, &c, 0));
        memcpy(c.data, &i, sizeof(i));
        assert_shmbus_ok(shmbus_pub_commit(pub, &c, sizeof(i)));
    }
    assert_shmbus_ok(shmbus_sub_create(t, &so, &sub));
    assert_int_equal(shmbus_poll(sub, seen_collect, &s, 32), (int)capacity);
    for (unsigned i = 0; i < s.n; i++) {
        assert_local(&s.m[i]);
        assert_int_equal(s.m[i].seq, capacity + i);
        assert_int_equal(s.payload[i], i);
    }
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
}

static void test_relay_origin_zeroed_on_reuse(void **state)
{
    shmbus_topic_opts ex = {
        .mode = SHMBUS_LOSSY, .capacity = 8, .max_msg_size = 64, .flags = SHMBUS_TOPIC_EXCLUSIVE};
    struct tu_topic *f = *state, e;

    origin_zeroed_on_reuse(f->t, 16);
    e.name = tu_name("relay-excl");
    assert_shmbus_ok(shmbus_topic_create(e.name, &ex, &e.t));
    origin_zeroed_on_reuse(e.t, 8);
    tu_topic_close(&e);
}

/* imported_held() finds an imported message the ring holds, by its seq,
 * time and pid together, and no longer once a lap overwrote its cell. */
static void test_relay_imported_held(void **state)
{
    struct tu_topic *f = *state;
    struct sb_relay_origin o = {.seq = 7, .timestamp_ns = 99, .pid = 3}, x;
    shmbus_pub *pub;
    uint64_t v = 1;

    assert_shmbus_ok(shmbus_pub_create(f->t, &pub));
    assert_int_equal(sb_relay_imported_held(f->t, &o), 0);
    assert_shmbus_ok(sb_relay_publish_imported(pub, &v, sizeof(v), &o, 0));
    for (int i = 0; i < 10; i++)
        assert_shmbus_ok(shmbus_publish(pub, &v, sizeof(v), 0));
    assert_int_equal(sb_relay_imported_held(f->t, &o), 1);
    x = o;
    x.seq = 8;
    assert_int_equal(sb_relay_imported_held(f->t, &x), 0);
    x = o;
    x.timestamp_ns = 98;
    assert_int_equal(sb_relay_imported_held(f->t, &x), 0);
    x = o;
    x.pid = 4;
    assert_int_equal(sb_relay_imported_held(f->t, &x), 0);
    /* A local publish writes origin 0: seq 0 of an origin is not it. */
    x.seq = UINT64_MAX;
    assert_int_equal(sb_relay_imported_held(f->t, &x), 0);
    for (int i = 0; i < 6; i++)
        assert_shmbus_ok(shmbus_publish(pub, &v, sizeof(v), 0));
    assert_int_equal(sb_relay_imported_held(f->t, &o), 0);
    assert_int_equal(sb_relay_imported_held(NULL, &o), 0);
    assert_int_equal(sb_relay_imported_held(f->t, NULL), 0);
    shmbus_pub_destroy(pub);
}

/* No origin, or one a cell cannot carry, is refused, and nothing is
 * published. */
static void test_relay_imported_refused(void **state)
{
    struct tu_topic *f = *state;
    struct sb_relay_origin o = {.seq = UINT64_MAX, .timestamp_ns = 1, .pid = 1};
    shmbus_topic_info info;
    shmbus_pub *pub;
    uint64_t v = 1;

    assert_shmbus_ok(shmbus_pub_create(f->t, &pub));
    assert_shmbus_rc(sb_relay_publish_imported(pub, &v, sizeof(v), NULL, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_publish_imported(pub, &v, sizeof(v), &o, 0), SHMBUS_ERR_INVALID);
    o.seq = 0;
    assert_shmbus_rc(sb_relay_publish_imported(NULL, &v, sizeof(v), &o, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_ok(shmbus_topic_info_get(f->t, &info));
    assert_int_equal(info.published, 0);
    shmbus_pub_destroy(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relay_quiet_publish_wakes_only_others, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_rung_bell_ends_the_wait, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_sleeping_relay_is_woken, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_wait_topic_bound, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_imported_round_trip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_origin_zeroed_on_reuse, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_imported_held, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_imported_refused, fx_setup, fx_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("relay", tests, NULL, NULL);
}
