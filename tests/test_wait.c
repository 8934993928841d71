/* SPDX-License-Identifier: Apache-2.0 */
/* Sleeping and waking (ring/wait.c): blocking receive, no lost wake-up
 * across threads and processes, wait sets, lazy subscribers, and reliable
 * back-pressure. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "registry/admin.h"
#include "registry/relay.h"
#include "ring/ring.h"

#define WAIT_LIMIT_NS 10000000000ll /* a lost wake-up shows as a 10 s timeout */
#define READY         UINT64_MAX

struct echo {
    const char *ping, *pong;
    int iterations;
    int64_t spin_ns;
};

/* Receives on ping and answers on pong, @p iterations times, after saying
 * READY on pong once its subscription exists. */
static int echo_run(void *arg)
{
    struct echo *e = arg;
    shmbus_sub_opts so = {.spin_ns = e->spin_ns};
    shmbus_topic *tp = NULL, *tq = NULL;
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    uint64_t v = READY;
    int rc = 1;

    if (shmbus_topic_attach(e->ping, &tp) < 0 || shmbus_topic_attach(e->pong, &tq) < 0 ||
        shmbus_sub_create(tp, &so, &sub) < 0 || shmbus_pub_create(tq, &pub) < 0 ||
        shmbus_publish(pub, &v, sizeof(v), WAIT_LIMIT_NS) < 0)
        goto out;
    for (int i = 0; i < e->iterations; i++) {
        if (shmbus_recv(sub, &v, sizeof(v), NULL, WAIT_LIMIT_NS) != sizeof(v) || v != (uint64_t)i)
            goto out;
        if (shmbus_publish(pub, &v, sizeof(v), WAIT_LIMIT_NS) < 0)
            goto out;
    }
    rc = 0;
out:
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(tp);
    shmbus_topic_destroy(tq);
    return rc;
}

static void *echo_thread(void *arg)
{
    return (void *)(intptr_t)echo_run(arg);
}

struct pair {
    shmbus_topic *tp, *tq;
    shmbus_pub *pub;
    shmbus_sub *sub;
};

static void pair_open(struct echo *e, uint32_t mode, struct pair *p)
{
    shmbus_topic_opts o = {.mode = mode, .capacity = 16, .max_msg_size = 64};
    shmbus_sub_opts so = {.spin_ns = e->spin_ns};

    e->ping = tu_name("ping");
    e->pong = tu_name("pong");
    assert_shmbus_ok(shmbus_topic_create(e->ping, &o, &p->tp));
    assert_shmbus_ok(shmbus_topic_create(e->pong, &o, &p->tq));
    assert_shmbus_ok(shmbus_sub_create(p->tq, &so, &p->sub));
    assert_shmbus_ok(shmbus_pub_create(p->tp, &p->pub));
}

static void pair_run(struct echo *e, struct pair *p)
{
    uint64_t v = 0;

    assert_int_equal(shmbus_recv(p->sub, &v, sizeof(v), NULL, WAIT_LIMIT_NS), sizeof(v));
    assert_true(v == READY);
    for (int i = 0; i < e->iterations; i++) {
        v = (uint64_t)i;
        assert_shmbus_ok(shmbus_publish(p->pub, &v, sizeof(v), WAIT_LIMIT_NS));
        assert_int_equal(shmbus_recv(p->sub, &v, sizeof(v), NULL, WAIT_LIMIT_NS), sizeof(v));
        assert_int_equal(v, (uint64_t)i);
    }
}

static void pair_close(struct echo *e, struct pair *p)
{
    shmbus_sub_destroy(p->sub);
    shmbus_pub_destroy(p->pub);
    shmbus_topic_destroy(p->tp);
    shmbus_topic_destroy(p->tq);
    shmbus_topic_unlink(e->ping);
    shmbus_topic_unlink(e->pong);
}

/* Both sides sleep at once (no spin) for every message: a lost wake-up
 * would stall a round trip until the 10 s limit. */
static void test_wait_no_lost_wakeup_threads(void **state)
{
    (void)state;
    uint32_t modes[] = {SHMBUS_LOSSY, SHMBUS_RELIABLE};

    for (int m = 0; m < 2; m++) {
        struct echo e = {.iterations = 5000, .spin_ns = -1};
        struct pair p;
        pthread_t th;
        void *ret;

        pair_open(&e, modes[m], &p);
        assert_int_equal(pthread_create(&th, NULL, echo_thread, &e), 0);
        pair_run(&e, &p);
        assert_int_equal(pthread_join(th, &ret), 0);
        assert_int_equal((intptr_t)ret, 0);
        pair_close(&e, &p);
    }
}

static void test_wait_no_lost_wakeup_processes(void **state)
{
    (void)state;
    int64_t spins[] = {-1, 1000, 0};

    for (int i = 0; i < 3; i++) {
        struct echo e = {.iterations = 3000, .spin_ns = spins[i]};
        struct pair p;
        pid_t kid;

        pair_open(&e, i == 1 ? SHMBUS_RELIABLE : SHMBUS_LOSSY, &p);
        kid = tu_fork(echo_run, &e);
        pair_run(&e, &p);
        assert_int_equal(tu_wait(kid), 0);
        pair_close(&e, &p);
    }
}

struct delayed {
    shmbus_topic *topic;
    unsigned delay_us;
    int count;
};

static void *publish_later(void *arg)
{
    struct delayed *d = arg;
    shmbus_pub *pub;
    uint64_t v = 42;

    if (shmbus_pub_create(d->topic, &pub) < 0)
        return (void *)1;
    for (int i = 0; i < d->count; i++) {
        usleep(d->delay_us);
        if (shmbus_publish(pub, &v, sizeof(v), -1) < 0)
            return (void *)2;
    }
    shmbus_pub_destroy(pub);
    return NULL;
}

static void test_wait_waitset_many_topics(void **state)
{
    (void)state;
    shmbus_topic_opts o = {.capacity = 8, .max_msg_size = 16};
    shmbus_sub_opts so = {.spin_ns = -1};
    const char *names[3];
    shmbus_topic *t[3];
    shmbus_sub *s[3], *ready[3];
    shmbus_waitset *ws;
    uint64_t v;

    assert_shmbus_ok(shmbus_waitset_create(&ws));
    assert_shmbus_rc(shmbus_waitset_wait(ws, ready, 3, 0), SHMBUS_ERR_INVALID);
    for (int i = 0; i < 3; i++) {
        names[i] = tu_name("ws");
        assert_shmbus_ok(shmbus_topic_create(names[i], &o, &t[i]));
        assert_shmbus_ok(shmbus_sub_create(t[i], &so, &s[i]));
        assert_shmbus_ok(shmbus_waitset_add(ws, s[i]));
    }
    assert_shmbus_rc(shmbus_waitset_add(ws, s[1]), -EEXIST);
    assert_shmbus_rc(shmbus_waitset_wait(ws, ready, 3, 0), -EAGAIN);
    assert_shmbus_rc(shmbus_waitset_wait(ws, ready, 3, 2000000), SHMBUS_ERR_TIMEOUT);
    for (int round = 0; round < 30; round++) {
        int k = round % 3;
        struct delayed d = {.topic = t[k], .delay_us = 200, .count = 1};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, publish_later, &d), 0);
        assert_int_equal(shmbus_waitset_wait(ws, ready, 3, WAIT_LIMIT_NS), 1);
        assert_ptr_equal(ready[0], s[k]);
        assert_int_equal(shmbus_recv(s[k], &v, sizeof(v), NULL, 0), sizeof(v));
        assert_int_equal(pthread_join(th, NULL), 0);
    }
    assert_shmbus_ok(shmbus_waitset_remove(ws, s[0]));
    assert_shmbus_rc(shmbus_waitset_remove(ws, s[0]), -ENOENT);
    for (int i = 0; i < 3; i++) {
        shmbus_sub_destroy(s[i]);
        shmbus_topic_destroy(t[i]);
    }
    shmbus_waitset_destroy(ws);
}

struct sleeper {
    shmbus_topic *topic;
    shmbus_sub *sub;
    int rounds;
    _Atomic int *got;
    int rc;
};

static void *sleeper_run(void *arg)
{
    struct sleeper *sl = arg;
    uint64_t v;

    for (int i = 0; i < sl->rounds; i++) {
        if (shmbus_recv(sl->sub, &v, sizeof(v), NULL, WAIT_LIMIT_NS) != sizeof(v) ||
            v != (uint64_t)i) {
            sl->rc = 1;
            return NULL;
        }
        atomic_fetch_add(sl->got, 1);
    }
    return NULL;
}

/* A publisher wakes one sleeper, which wakes the others. If that relay were
 * broken the others would only wake at the end of their 50 ms sleep slice:
 * 200 rounds would take over 10 s instead of milliseconds. */
static void test_wait_one_wake_reaches_all_sleepers(void **state)
{
    (void)state;
    enum { SLEEPERS = 6, ROUNDS = 200 };
    const char *name = tu_name("relay");
    shmbus_topic_opts o = {.capacity = 256, .max_msg_size = 16};
    shmbus_sub_opts so = {.spin_ns = -1};
    struct sleeper sl[SLEEPERS];
    pthread_t th[SLEEPERS];
    _Atomic int got = 0;
    shmbus_topic *t;
    shmbus_pub *p;
    struct timespec t0, t1;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (int i = 0; i < SLEEPERS; i++) {
        sl[i] = (struct sleeper){.topic = t, .rounds = ROUNDS, .got = &got};
        assert_shmbus_ok(shmbus_sub_create(t, &so, &sl[i].sub));
        assert_int_equal(pthread_create(&th[i], NULL, sleeper_run, &sl[i]), 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t r = 0; r < ROUNDS; r++) {
        usleep(200); /* let them fall asleep */
        assert_shmbus_ok(shmbus_publish(p, &r, sizeof(r), 0));
        while (atomic_load(&got) < (int)(r + 1) * SLEEPERS)
            sched_yield();
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int i = 0; i < SLEEPERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(sl[i].rc, 0);
        shmbus_sub_destroy(sl[i].sub);
    }
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
}

static uint32_t hdr_word(const shmbus_topic *t, int futex)
{
    const struct sb_shm_header *h = t->seg.hdr;

    return atomic_load(futex ? &h->data_futex : &h->data_waiters);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A lazy subscriber's bound is 1 us .. 60 s, or 0 (not lazy). */
static void test_wait_lazy_bound_range(void **state)
{
    (void)state;
    const char *name = tu_name("lazyopt");
    shmbus_topic_opts o = {.capacity = 8, .max_msg_size = 16};
    uint64_t bad[] = {1, SHMBUS_WAKE_BOUND_MIN_NS - 1, SHMBUS_WAKE_BOUND_MAX_NS + 1, UINT64_MAX};
    uint64_t good[] = {0, SHMBUS_WAKE_BOUND_MIN_NS, SHMBUS_WAKE_BOUND_MAX_NS};
    shmbus_topic *t;
    shmbus_sub *sub;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        shmbus_sub_opts so = {.wake_bound_ns = bad[i]};
        assert_shmbus_rc(shmbus_sub_create(t, &so, &sub), SHMBUS_ERR_INVALID);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        shmbus_sub_opts so = {.wake_bound_ns = good[i]};
        assert_shmbus_ok(shmbus_sub_create(t, &so, &sub));
        shmbus_sub_destroy(sub);
    }
    shmbus_topic_destroy(t);
    shmbus_topic_unlink(name);
}

struct lazy_recv {
    shmbus_sub *sub;
    _Atomic uint64_t got_ns; /* when it received, or 0 */
    int rc;
};

static void *lazy_recv_run(void *arg)
{
    struct lazy_recv *l = arg;
    uint64_t v;

    l->rc = shmbus_recv(l->sub, &v, sizeof(v), NULL, WAIT_LIMIT_NS) == sizeof(v) ? 0 : 1;
    atomic_store(&l->got_ns, mono_ns());
    return NULL;
}

/* A lazy subscriber sleeps uncounted: its publisher makes no wake-up (the
 * futex word, bumped before every one, stays put), and it still receives
 * within its bound, well before the 50 ms sleep slice would end. */
static void test_wait_lazy_receives_within_bound(void **state)
{
    (void)state;
    enum { ROUNDS = 5 };
    const char *name = tu_name("lazy");
    shmbus_topic_opts o = {.capacity = 8, .max_msg_size = 16};
    shmbus_sub_opts so = {.spin_ns = -1, .wake_bound_ns = 5000000};
    uint64_t late[ROUNDS], v = 7;
    shmbus_topic *t;
    shmbus_pub *p;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (int r = 0; r < ROUNDS; r++) {
        struct lazy_recv l = {0};
        uint32_t futex0;
        uint64_t t0;
        pthread_t th;

        assert_shmbus_ok(shmbus_sub_create(t, &so, &l.sub));
        assert_int_equal(pthread_create(&th, NULL, lazy_recv_run, &l), 0);
        usleep(20000); /* asleep by now */
        assert_int_equal(hdr_word(t, 0), 0);
        futex0 = hdr_word(t, 1);
        t0 = mono_ns();
        assert_shmbus_ok(shmbus_publish(p, &v, sizeof(v), 0));
        assert_int_equal(hdr_word(t, 1), futex0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(l.rc, 0);
        late[r] = atomic_load(&l.got_ns) - t0;
        shmbus_sub_destroy(l.sub);
    }
    /* The median: one round may lose its CPU on a loaded machine. */
    for (int i = 1; i < ROUNDS; i++)
        for (int j = i; j > 0 && late[j] < late[j - 1]; j--) {
            uint64_t x = late[j];
            late[j] = late[j - 1];
            late[j - 1] = x;
        }
    assert_true(late[ROUNDS / 2] < 40000000ull);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_topic_unlink(name);
}

/* A lazy and a normal sleeper on one topic: the publisher's one wake-up
 * goes to the normal one, never to the lazy one (which would have to
 * relay it), and the lazy one is not woken by that relay either: it
 * receives at its bound. */
static void test_wait_lazy_and_normal_one_topic(void **state)
{
    (void)state;
    const char *name = tu_name("mixed");
    shmbus_topic_opts o = {.capacity = 8, .max_msg_size = 16};
    shmbus_sub_opts lo = {.spin_ns = -1, .wake_bound_ns = 400000000};
    shmbus_sub_opts no = {.spin_ns = -1};
    struct lazy_recv l = {0}, n = {0};
    pthread_t lt, nt;
    shmbus_topic *t;
    shmbus_pub *p;
    uint64_t v = 9, t0;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    assert_shmbus_ok(shmbus_sub_create(t, &lo, &l.sub));
    assert_shmbus_ok(shmbus_sub_create(t, &no, &n.sub));
    assert_int_equal(pthread_create(&lt, NULL, lazy_recv_run, &l), 0);
    usleep(20000); /* the lazy one sleeps first: first in the futex queue */
    assert_int_equal(pthread_create(&nt, NULL, lazy_recv_run, &n), 0);
    for (int i = 0; i < 10000 && hdr_word(t, 0) != 1; i++)
        usleep(1000);
    assert_int_equal(hdr_word(t, 0), 1); /* only the normal one counts */
    t0 = mono_ns();
    assert_shmbus_ok(shmbus_publish(p, &v, sizeof(v), 0));
    assert_int_equal(pthread_join(nt, NULL), 0);
    assert_int_equal(n.rc, 0);
    /* Woken by the publisher, not at the lazy one's bound. */
    assert_true(atomic_load(&n.got_ns) - t0 < 200000000ull);
    assert_int_equal(pthread_join(lt, NULL), 0);
    assert_int_equal(l.rc, 0);
    assert_true(atomic_load(&l.got_ns) >= atomic_load(&n.got_ns));
    shmbus_sub_destroy(l.sub);
    shmbus_sub_destroy(n.sub);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_topic_unlink(name);
}

/* A wait set with a lazy and a normal subscriber is counted on the normal
 * one's topic only: a publish there wakes it, one to the lazy one's topic
 * makes no wake-up and is seen within the lazy bound. */
static void test_wait_waitset_lazy_and_normal(void **state)
{
    (void)state;
    const char *names[2] = {tu_name("wsl"), tu_name("wsn")};
    shmbus_topic_opts o = {.capacity = 8, .max_msg_size = 16};
    shmbus_sub_opts so[2] = {{.spin_ns = -1, .wake_bound_ns = 5000000}, {.spin_ns = -1}};
    shmbus_topic *t[2];
    shmbus_sub *s[2], *ready[2];
    shmbus_waitset *ws;
    uint64_t v;

    assert_shmbus_ok(shmbus_waitset_create(&ws));
    for (int i = 0; i < 2; i++) {
        assert_shmbus_ok(shmbus_topic_create(names[i], &o, &t[i]));
        assert_shmbus_ok(shmbus_sub_create(t[i], &so[i], &s[i]));
        assert_shmbus_ok(shmbus_waitset_add(ws, s[i]));
    }
    for (int round = 0; round < 20; round++) {
        int k = round % 2;
        struct delayed d = {.topic = t[k], .delay_us = 2000, .count = 1};
        uint32_t futex0 = hdr_word(t[0], 1);
        pthread_t th;

        assert_int_equal(pthread_create(&th, NULL, publish_later, &d), 0);
        assert_int_equal(shmbus_waitset_wait(ws, ready, 2, WAIT_LIMIT_NS), 1);
        assert_ptr_equal(ready[0], s[k]);
        assert_int_equal(shmbus_recv(s[k], &v, sizeof(v), NULL, 0), sizeof(v));
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(hdr_word(t[0], 0), 0);
        assert_int_equal(hdr_word(t[0], 1), futex0);
    }
    for (int i = 0; i < 2; i++) {
        shmbus_sub_destroy(s[i]);
        shmbus_topic_destroy(t[i]);
        shmbus_topic_unlink(names[i]);
    }
    shmbus_waitset_destroy(ws);
}

static void test_wait_waitset_full(void **state)
{
    (void)state;
    shmbus_waitset *ws;
    shmbus_sub *fake[SHMBUS_WAITSET_MAX + 1];

    assert_shmbus_ok(shmbus_waitset_create(&ws));
    for (int i = 0; i <= SHMBUS_WAITSET_MAX; i++)
        fake[i] = (shmbus_sub *)(uintptr_t)(0x1000 + 16 * i); /* never dereferenced by add */
    for (int i = 0; i < SHMBUS_WAITSET_MAX; i++)
        assert_shmbus_ok(shmbus_waitset_add(ws, fake[i]));
    assert_shmbus_rc(shmbus_waitset_add(ws, fake[SHMBUS_WAITSET_MAX]), SHMBUS_ERR_WAITSET_FULL);
    shmbus_waitset_destroy(ws);
    shmbus_waitset_destroy(NULL);
}

/* A reliable publisher blocked on a full ring resumes when a sleeping
 * subscriber's consumption frees a cell. */
static void test_wait_reliable_publisher_sleeps_until_space(void **state)
{
    (void)state;
    const char *name = tu_name("space");
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 4, .max_msg_size = 16};
    shmbus_topic *t;
    shmbus_sub *s;
    shmbus_pub *p;
    uint64_t v = 1;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &s));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (int i = 0; i < 4; i++)
        assert_shmbus_ok(shmbus_publish(p, &v, sizeof(v), 0));
    struct delayed d = {.topic = t, .delay_us = 0, .count = 200};
    pthread_t th;
    void *ret;
    /* The thread publishes 200 more into a 4-cell ring: it must sleep and
     * be woken by our reads every few messages. */
    assert_int_equal(pthread_create(&th, NULL, publish_later, &d), 0);
    for (int i = 0; i < 204; i++) {
        usleep(i % 50 == 0 ? 20000 : 0);
        assert_int_equal(shmbus_recv(s, &v, sizeof(v), NULL, WAIT_LIMIT_NS), sizeof(v));
    }
    assert_int_equal(pthread_join(th, &ret), 0);
    assert_null(ret);
    shmbus_pub_destroy(p);
    shmbus_sub_destroy(s);
    shmbus_topic_destroy(t);
}

/* A daemon that died with its bridge pump asleep on a topic may have been
 * the sleeper a publisher's wake-up chose: the wake-pending word stays set
 * and publishers stop waking. The next daemon, taking the dead pump's
 * weight out, clears the word and wakes the sleepers left (admin.c
 * sb_admin_waiters_settle()). */
static void test_wait_settle_dead_pump_pending(void **state)
{
    (void)state;
    const char *name = tu_name("settle");
    shmbus_topic_opts o = {.capacity = 8, .max_msg_size = 16};
    shmbus_sub_opts so = {.spin_ns = -1};
    struct lazy_recv n = {0};
    struct sb_shm_header *h;
    shmbus_topic *t;
    shmbus_pub *p;
    pthread_t th;
    uint32_t futex0;
    uint64_t v = 3;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    assert_shmbus_ok(shmbus_sub_create(t, &so, &n.sub));
    h = t->seg.hdr;
    assert_int_equal(pthread_create(&th, NULL, lazy_recv_run, &n), 0);
    for (int i = 0; i < 10000 && hdr_word(t, 0) != 1; i++)
        usleep(1000);
    assert_int_equal(hdr_word(t, 0), 1);
    /* The dead pump: counted, and chosen by a wake-up it never relayed. */
    atomic_fetch_add(&h->data_waiters, SB_RELAY_WEIGHT);
    atomic_store(&h->data_pending, 1);
    futex0 = hdr_word(t, 1);
    sb_admin_waiters_settle(t);
    assert_int_equal(atomic_load(&h->data_pending), 0);
    assert_int_not_equal(hdr_word(t, 1), futex0); /* the sleeper was woken */
    assert_shmbus_ok(shmbus_publish(p, &v, sizeof(v), 0));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(n.rc, 0);
    assert_int_equal(hdr_word(t, 0), 0);
    shmbus_sub_destroy(n.sub);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_topic_unlink(name);
}

struct spinner {
    shmbus_sub *sub;
    _Atomic int rc; /* 1 while receiving */
};

static void *spin_recv(void *arg)
{
    struct spinner *sp = arg;
    uint64_t v;

    atomic_store(&sp->rc, shmbus_recv(sp->sub, &v, sizeof(v), NULL, WAIT_LIMIT_NS));
    return NULL;
}

/* Receive with a subscriber that never sleeps, from a thread, until done:
 * @return what shmbus_recv() returned, after at most 5 s. */
static int spin_until_done(struct spinner *sp, void (*act)(shmbus_topic *), shmbus_topic *t)
{
    pthread_t th;

    atomic_store(&sp->rc, 1);
    assert_int_equal(pthread_create(&th, NULL, spin_recv, sp), 0);
    usleep(20000);
    assert_int_equal(atomic_load(&sp->rc), 1); /* still spinning */
    act(t);
    for (int i = 0; i < 5000 && atomic_load(&sp->rc) == 1; i++)
        usleep(1000);
    assert_int_equal(pthread_join(th, NULL), 0);
    return atomic_load(&sp->rc);
}

static void publish_one(shmbus_topic *t)
{
    shmbus_pub *p;
    uint64_t v = 7;

    assert_shmbus_ok(shmbus_pub_create(t, &p));
    assert_shmbus_ok(shmbus_publish(p, &v, sizeof(v), 0));
    shmbus_pub_destroy(p);
}

static void remove_topic(shmbus_topic *t)
{
    sb_admin_topic_gone(t);
}

/* A subscriber that never sleeps (spin_ns INT64_MAX) spins on its cell's
 * stamp alone and looks at the rest now and then: it sees a message, and
 * it sees its topic removed, long before its 10 s timeout. */
static void test_wait_spin_sees_message_and_gone(void **state)
{
    (void)state;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 4, .max_msg_size = 16};
    shmbus_sub_opts so = {.spin_ns = INT64_MAX};
    const char *name = tu_name("spin");
    struct spinner sp;
    shmbus_topic *t;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_sub_create(t, &so, &sp.sub));
    assert_int_equal(spin_until_done(&sp, publish_one, t), sizeof(uint64_t));
    assert_int_equal(spin_until_done(&sp, remove_topic, t), SHMBUS_ERR_TOPIC_GONE);
    shmbus_sub_destroy(sp.sub);
    shmbus_topic_destroy(t);
    tu_release(name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_no_lost_wakeup_threads),
        cmocka_unit_test(test_wait_no_lost_wakeup_processes),
        cmocka_unit_test(test_wait_waitset_many_topics),
        cmocka_unit_test(test_wait_one_wake_reaches_all_sleepers),
        cmocka_unit_test(test_wait_lazy_bound_range),
        cmocka_unit_test(test_wait_lazy_receives_within_bound),
        cmocka_unit_test(test_wait_lazy_and_normal_one_topic),
        cmocka_unit_test(test_wait_waitset_lazy_and_normal),
        cmocka_unit_test(test_wait_waitset_full),
        cmocka_unit_test(test_wait_reliable_publisher_sleeps_until_space),
        cmocka_unit_test(test_wait_settle_dead_pump_pending),
        cmocka_unit_test(test_wait_spin_sees_message_and_gone),
    };
    tu_init();
    return cmocka_run_group_tests_name("wait", tests, NULL, NULL);
}
