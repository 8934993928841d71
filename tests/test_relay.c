/* SPDX-License-Identifier: Apache-2.0 */
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
    /* A plain publish wakes the relay, but the wake-up of the one before
     * is still pending: nobody went to sleep since (ring.h). */
    assert_int_equal(q.futex_plain, q.futex0 + 1);
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
    assert_int_equal(m->deliveries, 0);
    assert_int_equal(m->origin_seq, 0);
    assert_int_equal(m->reserved[0], 0);
    assert_int_equal(m->reserved[1], 0);
}

/* An imported message reads back with its origin's seq, time and pid,
 * through shmbus_recv(), shmbus_poll() and a group member's poll, on a
 * lossy topic (copy reads) and a reliable one (read in place); a local
 * one after it reads as local, its reserved fields zeroed. */
static void imported_round_trip(shmbus_topic *t)
{
    struct sb_relay_origin o = {.seq = 41, .timestamp_ns = 1234567890123ull, .pid = 777};
    shmbus_sub_opts so = {.start = SHMBUS_START_OLDEST}, go = {.group = 1};
    shmbus_sub *rs, *ps, *gs;
    shmbus_pub *pub;
    uint64_t v = 5, buf;
    struct seen s = {0}, g = {0};
    shmbus_msg m;

    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_sub_create(t, &so, &rs));
    assert_shmbus_ok(shmbus_sub_create(t, &so, &ps));
    assert_shmbus_ok(shmbus_sub_create(t, &go, &gs));
    assert_shmbus_ok(sb_relay_publish_imported(pub, &v, sizeof(v), &o, 0));
    assert_shmbus_ok(shmbus_publish(pub, &v, sizeof(v), 0));
    memset(&m, 0xa5, sizeof(m));
    assert_int_equal(shmbus_recv(rs, &buf, sizeof(buf), &m, 0), (int)sizeof(v));
    assert_int_equal(m.flags, SHMBUS_MSG_IMPORTED);
    assert_int_equal(m.origin_seq, 41);
    assert_int_equal(m.timestamp_ns, 1234567890123ull);
    assert_int_equal(m.publisher_pid, 777);
    assert_int_equal(m.seq, 0);
    assert_int_equal(m.deliveries, 0);
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
    assert_int_equal(shmbus_poll(gs, seen_collect, &g, 8), 2);
    assert_int_equal(g.m[0].flags, SHMBUS_MSG_IMPORTED);
    assert_int_equal(g.m[0].origin_seq, 41);
    assert_int_equal(g.m[0].publisher_pid, 777);
    assert_local(&g.m[1]);
    shmbus_sub_destroy(gs);
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

static int fx_rel_setup(void **state)
{
    static struct tu_topic f;

    if (rel_open(&f, "relay-hold", 8) < 0)
        return -1;
    *state = &f;
    return 0;
}

/* Publish @p n messages carrying @p first, @p first + 1, ... */
static void publish_n(shmbus_pub *pub, uint64_t first, unsigned n)
{
    for (uint64_t v = first; v < first + n; v++)
        assert_shmbus_ok(shmbus_publish(pub, &v, sizeof(v), 0));
}

struct blocked_pub {
    shmbus_pub *pub;
    int rc;
};

static void *blocked_pub_run(void *arg)
{
    struct blocked_pub *b = arg;
    uint64_t v = 100;

    b->rc = shmbus_publish(b->pub, &v, sizeof(v), 10000000000ll);
    return NULL;
}

/* A held subscriber that read the whole ring still holds a reliable
 * publisher at its held position; a release lets it go (and wakes one
 * asleep); stats say where it reads and how far it lags from the hold. */
static void test_relay_hold_gates(void **state)
{
    struct tu_topic *f = *state;
    struct blocked_pub b = {0};
    struct seen s = {0};
    shmbus_sub_stats st;
    shmbus_sub *sub;
    pthread_t th;
    uint64_t v = 0;

    assert_shmbus_ok(shmbus_pub_create(f->t, &b.pub));
    assert_shmbus_ok(shmbus_sub_create(f->t, NULL, &sub));
    assert_shmbus_ok(sb_relay_sub_hold(sub));
    publish_n(b.pub, 0, 8);
    assert_int_equal(shmbus_poll(sub, seen_collect, &s, 32), 8);
    assert_shmbus_rc(shmbus_publish(b.pub, &v, sizeof(v), 0), -EAGAIN);
    assert_int_equal(sb_relay_sub_held(sub), 0);
    assert_shmbus_ok(shmbus_sub_stats_get(sub, &st));
    assert_int_equal(st.position, 8);
    assert_int_equal(st.lag, 8);
    assert_shmbus_ok(sb_relay_sub_release(sub, 3));
    assert_int_equal(sb_relay_sub_held(sub), 3);
    publish_n(b.pub, 8, 3);
    assert_shmbus_rc(shmbus_publish(b.pub, &v, sizeof(v), 0), -EAGAIN);
    /* A publisher asleep on the full ring is woken by the release. */
    assert_int_equal(pthread_create(&th, NULL, blocked_pub_run, &b), 0);
    usleep(50000);
    assert_shmbus_ok(sb_relay_sub_release(sub, 4));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_shmbus_ok(b.rc);
    assert_shmbus_ok(shmbus_sub_stats_get(sub, &st));
    assert_int_equal(st.lag, 12 - 4);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(b.pub);
}

/* A rewind reads the same messages again, from the ring, in order. */
static void test_relay_hold_rewind(void **state)
{
    struct tu_topic *f = *state;
    struct seen a = {0}, b = {0};
    shmbus_sub *sub;
    shmbus_pub *pub;

    assert_shmbus_ok(shmbus_pub_create(f->t, &pub));
    assert_shmbus_ok(shmbus_sub_create(f->t, NULL, &sub));
    assert_shmbus_ok(sb_relay_sub_hold(sub));
    publish_n(pub, 50, 8);
    assert_int_equal(shmbus_poll(sub, seen_collect, &a, 32), 8);
    assert_shmbus_ok(sb_relay_sub_release(sub, 2));
    assert_shmbus_ok(sb_relay_sub_rewind(sub, 2));
    assert_int_equal(shmbus_poll(sub, seen_collect, &b, 32), 6);
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(b.m[i].seq, 2 + i);
        assert_int_equal(b.payload[i], a.payload[2 + i]);
        assert_int_equal(b.m[i].lost, 0);
    }
    assert_int_equal(shmbus_poll(sub, seen_collect, &b, 32), 0);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
}

/* Out of bounds, not held, or not holdable: refused, nothing changes. */
static void test_relay_hold_refused(void **state)
{
    struct tu_topic *f = *state, l;
    shmbus_sub_opts obs = {.flags = SHMBUS_SUB_OBSERVER};
    struct seen s = {0};
    shmbus_sub_stats st;
    shmbus_sub *sub, *o;
    shmbus_pub *pub;

    assert_shmbus_ok(shmbus_pub_create(f->t, &pub));
    assert_shmbus_ok(shmbus_sub_create(f->t, NULL, &sub));
    assert_shmbus_rc(sb_relay_sub_release(sub, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_sub_rewind(sub, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_sub_keep(sub), SHMBUS_ERR_INVALID);
    assert_shmbus_ok(sb_relay_sub_hold(sub));
    assert_shmbus_ok(sb_relay_sub_hold(sub));
    publish_n(pub, 0, 6);
    assert_int_equal(shmbus_poll(sub, seen_collect, &s, 4), 4);
    assert_shmbus_ok(sb_relay_sub_release(sub, 2));
    assert_shmbus_rc(sb_relay_sub_release(sub, 1), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_sub_release(sub, 5), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_sub_rewind(sub, 1), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_sub_rewind(sub, 5), SHMBUS_ERR_INVALID);
    assert_int_equal(sb_relay_sub_held(sub), 2);
    assert_shmbus_ok(shmbus_sub_stats_get(sub, &st));
    assert_int_equal(st.position, 4);
    assert_shmbus_rc(sb_relay_sub_release(NULL, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_sub_hold(NULL), SHMBUS_ERR_INVALID);
    /* An observer gates nothing; nor does any reader of a lossy topic. */
    assert_shmbus_ok(shmbus_sub_create(f->t, &obs, &o));
    assert_shmbus_rc(sb_relay_sub_hold(o), SHMBUS_ERR_INVALID);
    shmbus_sub_destroy(o);
    assert_shmbus_ok(tu_topic_open(&l, "relay-lossy", 8));
    assert_shmbus_ok(shmbus_sub_create(l.t, NULL, &o));
    assert_shmbus_rc(sb_relay_sub_hold(o), SHMBUS_ERR_INVALID);
    shmbus_sub_destroy(o);
    assert_shmbus_rc(sb_relay_sub_adopt(l.t, &o), SHMBUS_ERR_INVALID);
    assert_null(o);
    tu_topic_close(&l);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
}

/* A group member's gate is its group's cursor: it cannot be held, nor
 * its slot kept, and reading moves the group as ever; adoption wants a
 * topic and somewhere to put what it adopts. */
static void test_relay_hold_refused_group(void **state)
{
    struct tu_topic *f = *state;
    shmbus_sub_opts go = {.group = 1};
    struct seen s = {0};
    shmbus_sub *m, *o;
    shmbus_pub *pub;

    assert_shmbus_ok(shmbus_pub_create(f->t, &pub));
    assert_shmbus_ok(shmbus_sub_create(f->t, &go, &m));
    assert_shmbus_rc(sb_relay_sub_hold(m), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_sub_keep(m), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_sub_release(m, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(sb_relay_sub_rewind(m, 0), SHMBUS_ERR_INVALID);
    /* A full ring read by the member lets the publisher go on. */
    publish_n(pub, 0, 8);
    assert_int_equal(shmbus_poll(m, seen_collect, &s, 32), 8);
    publish_n(pub, 8, 8);
    assert_shmbus_rc(sb_relay_sub_adopt(NULL, &o), SHMBUS_ERR_INVALID);
    assert_null(o);
    assert_shmbus_rc(sb_relay_sub_adopt(f->t, NULL), SHMBUS_ERR_INVALID);
    /* Nothing kept: a group member's slot is not taken. */
    assert_shmbus_rc(sb_relay_sub_adopt(f->t, &o), -ENOENT);
    assert_null(o);
    shmbus_sub_destroy(m);
    shmbus_pub_destroy(pub);
}

/* A child that holds a slot of the topic (subscribed before the parent
 * publishes: a reliable reader starts at the tail), reads 3 of the 5
 * messages the parent then publishes, releases 1 and, if told, keeps the
 * slot; then, if told to linger, stays until the parent says go; then
 * exits without cleaning up. */
struct keeper {
    shmbus_topic *t;
    int keep, linger;
    int go[2], told[2]; /* pipes: parent -> child, child -> parent */
};

static int keeper_step(struct keeper *k)
{
    char c = 1;

    if (write(k->told[1], &c, 1) != 1)
        return -1;
    while (read(k->go[0], &c, 1) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

static int keeper_run(void *arg)
{
    struct keeper *k = arg;
    struct seen s = {0};
    shmbus_sub *sub;

    if (shmbus_sub_create(k->t, NULL, &sub) < 0 || sb_relay_sub_hold(sub) < 0)
        return 2;
    if (keeper_step(k) < 0)
        return 5;
    if (shmbus_poll(sub, seen_collect, &s, 3) != 3 || sb_relay_sub_release(sub, s.m[1].seq) < 0)
        return 3;
    if (k->keep && sb_relay_sub_keep(sub) < 0)
        return 4;
    if (k->linger && keeper_step(k) < 0)
        return 5;
    return 0;
}

/* Start a keeper and publish its 5 messages (from @p *next on): up to
 * where it reads, or lingers. @return its pid. */
static pid_t keeper_start(struct keeper *k, shmbus_pub *pub, uint64_t *next)
{
    pid_t kid;
    char c = 1;

    assert_int_equal(pipe(k->go), 0);
    assert_int_equal(pipe(k->told), 0);
    kid = tu_fork(keeper_run, k);
    assert_int_equal(read(k->told[0], &c, 1), 1);
    publish_n(pub, *next, 5);
    *next += 5;
    assert_int_equal(write(k->go[1], &c, 1), 1);
    if (k->linger)
        assert_int_equal(read(k->told[0], &c, 1), 1);
    return kid;
}

static void keeper_close(struct keeper *k)
{
    close(k->go[0]);
    close(k->go[1]);
    close(k->told[0]);
    close(k->told[1]);
}

/* A keeper's whole life: start, publish, let it exit. */
static void keeper_dies(struct keeper *k, shmbus_pub *pub, uint64_t *next)
{
    char c = 1;
    pid_t kid = keeper_start(k, pub, next);

    if (k->linger)
        assert_int_equal(write(k->go[1], &c, 1), 1);
    assert_int_equal(tu_wait(kid), 0); /* reaped: a zombie still has its start time */
    keeper_close(k);
}

/* The adopted subscriber reads from where the dead keeper held: the
 * second of its 5 messages, which carry @p first... */
static void assert_adopted(shmbus_sub *sub, uint64_t first)
{
    struct seen s = {0};
    uint64_t held = sb_relay_sub_held(sub);

    assert_int_equal(shmbus_poll(sub, seen_collect, &s, 32), 4);
    assert_int_equal(s.m[0].seq, held);
    assert_int_equal(s.payload[0], first + 1);
    /* Held and kept: reading did not move the gate. */
    assert_int_equal(sb_relay_sub_held(sub), held);
    assert_shmbus_ok(sb_relay_sub_release(sub, held + 4));
}

/* A dead owner's kept slot is adopted, once; a dead owner's slot that is
 * not kept is not, and neither is a live owner's kept slot. */
static void test_relay_adopt_dead_owner(void **state)
{
    struct tu_topic *f = *state;
    struct keeper k = {.t = f->t};
    shmbus_sub *sub, *again;
    shmbus_pub *pub;
    uint64_t next = 10;
    pid_t kid;
    char c = 1;

    assert_shmbus_ok(shmbus_pub_create(f->t, &pub));
    /* Not kept: left to the reaper, never adopted. */
    keeper_dies(&k, pub, &next);
    assert_shmbus_rc(sb_relay_sub_adopt(f->t, &sub), -ENOENT);
    assert_null(sub);
    /* It still gates (nobody reaps here): go on with a fresh topic. */
    shmbus_pub_destroy(pub);
    tu_topic_close(f);
    assert_shmbus_ok(rel_open(f, "relay-adopt", 8));
    assert_shmbus_ok(shmbus_pub_create(f->t, &pub));
    /* Kept, owner alive: not adopted. */
    k = (struct keeper){.t = f->t, .keep = 1, .linger = 1};
    next = 10;
    kid = keeper_start(&k, pub, &next);
    assert_shmbus_rc(sb_relay_sub_adopt(f->t, &sub), -ENOENT);
    assert_null(sub);
    /* Dead, and reaped by wait (a zombie still has its start time). */
    assert_int_equal(write(k.go[1], &c, 1), 1);
    assert_int_equal(tu_wait(kid), 0);
    keeper_close(&k);
    assert_shmbus_ok(sb_relay_sub_adopt(f->t, &sub));
    assert_adopted(sub, 10);
    /* Ours now, and we live. */
    assert_shmbus_rc(sb_relay_sub_adopt(f->t, &again), -ENOENT);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
}

/* A plain subscriber that exits without cleaning up. */
static int plain_dies_run(void *arg)
{
    shmbus_sub *sub;

    return shmbus_sub_create(arg, NULL, &sub) < 0 ? 1 : 0;
}

/* A kept slot freed by its owner is not kept for the next: a plain
 * subscriber that takes it and dies leaves nothing to adopt. */
static void test_relay_kept_not_inherited(void **state)
{
    struct tu_topic *f = *state;
    shmbus_sub *sub;
    pid_t kid;

    assert_shmbus_ok(shmbus_sub_create(f->t, NULL, &sub));
    assert_ptr_equal(sub->slot, &f->t->seg.slots[0]);
    assert_shmbus_ok(sb_relay_sub_hold(sub));
    assert_shmbus_ok(sb_relay_sub_keep(sub));
    shmbus_sub_destroy(sub);
    kid = tu_fork(plain_dies_run, f->t);
    assert_int_equal(tu_wait(kid), 0);
    /* relaxed: the child is gone; the first free slot was the one kept. */
    assert_int_equal(atomic_load_explicit(&f->t->seg.slots[0].pid, memory_order_relaxed), kid);
    assert_shmbus_rc(sb_relay_sub_adopt(f->t, &sub), -ENOENT);
    assert_null(sub);
}

/* Adopters started together on one dead owner's kept slot: one wins. */
#define ADOPTERS 4

struct adopter {
    shmbus_topic *t;
    int go, told, end; /* read: start; write: result; read: exit (EOF) */
    int end_w;         /* the end pipe's other side, the parent's */
};

/* Adopt, say how it went, and stay alive (a winner that died would leave
 * its slot adoptable again) until the parent closes the end pipe. */
static int adopter_run(void *arg)
{
    struct adopter *a = arg;
    shmbus_sub *sub;
    char c;
    int rc;

    close(a->end_w);
    if (read(a->go, &c, 1) != 1)
        return 3;
    rc = sb_relay_sub_adopt(a->t, &sub);
    c = rc == 0 ? 0 : rc == -ENOENT ? 1 : 2;
    if (write(a->told, &c, 1) != 1)
        return 3;
    while (read(a->end, &c, 1) < 0 && errno == EINTR)
        ;
    return 0;
}

static void test_relay_adopt_race(void **state)
{
    struct tu_topic *f = *state;
    struct keeper k = {.t = f->t, .keep = 1};
    struct adopter a = {.t = f->t};
    char c[ADOPTERS] = {0};
    pid_t kids[ADOPTERS];
    int go[2], told[2], end[2], won = 0, lost = 0;
    uint64_t next = 0;
    shmbus_pub *pub;
    shmbus_sub *sub;

    assert_shmbus_ok(shmbus_pub_create(f->t, &pub));
    for (int round = 0; round < 10; round++) {
        keeper_dies(&k, pub, &next);
        assert_int_equal(pipe(go), 0);
        assert_int_equal(pipe(told), 0);
        assert_int_equal(pipe(end), 0);
        a = (struct adopter){
            .t = f->t, .go = go[0], .told = told[1], .end = end[0], .end_w = end[1]};
        for (int i = 0; i < ADOPTERS; i++)
            kids[i] = tu_fork(adopter_run, &a);
        assert_int_equal(write(go[1], c, ADOPTERS), ADOPTERS);
        for (int i = 0; i < ADOPTERS; i++) {
            char r;

            assert_int_equal(read(told[0], &r, 1), 1);
            assert_in_range(r, 0, 1);
            won += r == 0;
            lost += r == 1;
        }
        close(end[1]);
        for (int i = 0; i < ADOPTERS; i++)
            assert_int_equal(tu_wait(kids[i]), 0);
        close(end[0]);
        close(go[0]);
        close(go[1]);
        close(told[0]);
        close(told[1]);
        assert_int_equal(won, round + 1);
        /* The winner exited holding it: adopt it once more, and free it. */
        assert_shmbus_ok(sb_relay_sub_adopt(f->t, &sub));
        assert_adopted(sub, next - 5);
        shmbus_sub_destroy(sub);
    }
    assert_int_equal(lost, 10 * (ADOPTERS - 1));
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
        cmocka_unit_test_setup_teardown(test_relay_hold_gates, fx_rel_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_hold_rewind, fx_rel_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_hold_refused, fx_rel_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_hold_refused_group, fx_rel_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_adopt_dead_owner, fx_rel_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_adopt_race, fx_rel_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_kept_not_inherited, fx_rel_setup, fx_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("relay", tests, NULL, NULL);
}
