/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay-merge under load (ring/merge.c): a real shmbusd records a topic
 * while a publisher thread publishes as fast as it can, and late
 * subscriber threads start at different seqs, each created while the
 * publisher runs (pausing 1 ms now and then): one far back in the journal, some near the ring's
 * oldest, one at the tail. Every message is checked: its seq is the one
 * expected plus what it reports lost, its payload is its seq. A reliable
 * topic loses nothing; a lossy one may lap the recorder (the journal then
 * records a gap, reported as lost), but never repeats or reorders a seq
 * and accounts for every one. Runs under TSan (label stress).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "mergetest.h"

#ifdef TU_SANITIZED
#define TOTAL 20000u
#else
#define TOTAL 200000u
#endif
#define BACKLOG 4000u /* published before the first late subscriber */
#define RING    1024u
#define NSUBS   4

struct run {
    shmbus_topic *t;
    uint32_t mode;
    _Atomic uint64_t published; /* seqs published so far */
};

struct reader {
    struct run *run;
    uint64_t start; /* seq to start at; UINT64_MAX: the tail when created */
    uint64_t received, lost;
    char err[160];
};

static void *pub_main(void *arg)
{
    struct run *r = arg;
    shmbus_pub *p;

    if (shmbus_pub_create(r->t, &p) < 0)
        return (void *)1;
    for (uint64_t seq = BACKLOG; seq < TOTAL; seq++) {
        if (shmbus_publish(p, &seq, sizeof(seq), 10000000000LL) < 0)
            return (void *)1;
        /* relaxed: a progress counter for the readers' start times. */
        atomic_store_explicit(&r->published, seq + 1, memory_order_relaxed);
        /* A breath now and then, so that the readers start while it runs
         * and a lossy topic's recorder is not lapped all the time. */
        if (seq % (r->mode == SHMBUS_LOSSY ? 128 : 1024) == 0)
            du_sleep_ms(1);
    }
    shmbus_pub_destroy(p);
    return NULL;
}

/* Read from @p rd->start to the last seq, checking each message. */
static void read_all(struct reader *rd, shmbus_sub *s, uint64_t next)
{
    shmbus_msg m;
    uint64_t v;

    while (next < TOTAL) {
        int rc = shmbus_recv(s, &v, sizeof(v), &m, 20000000000LL);
        if (rc != (int)sizeof(v)) {
            snprintf(rd->err, sizeof(rd->err), "at %llu: recv %d (%s)", (unsigned long long)next,
                     rc, shmbus_strerror(rc));
            return;
        }
        if (m.seq != next + m.lost || v != m.seq) {
            snprintf(rd->err, sizeof(rd->err), "want %llu (+%llu lost), got seq %llu payload %llu",
                     (unsigned long long)next, (unsigned long long)m.lost,
                     (unsigned long long)m.seq, (unsigned long long)v);
            return;
        }
        rd->lost += m.lost;
        rd->received++;
        next = m.seq + 1;
    }
}

static void *sub_main(void *arg)
{
    struct reader *rd = arg;
    shmbus_sub_opts o = {.start = SHMBUS_START_SEQ, .start_seq = rd->start};
    shmbus_sub *s;
    int rc;

    if (rd->start == UINT64_MAX)
        /* relaxed: any recent count; the tail is at or above it. */
        o.start_seq = atomic_load_explicit(&rd->run->published, memory_order_relaxed);
    rc = shmbus_sub_create(rd->run->t, &o, &s);
    if (rc < 0) {
        snprintf(rd->err, sizeof(rd->err), "start %llu: %s", (unsigned long long)o.start_seq,
                 shmbus_strerror(rc));
        return NULL;
    }
    read_all(rd, s, o.start_seq);
    shmbus_sub_destroy(s);
    return NULL;
}

static void run_merge(struct rec_env *e, uint32_t mode, const char *topic)
{
    shmbus_topic_opts to = {.mode = mode, .capacity = RING, .max_msg_size = 64};
    struct run r = {.mode = mode};
    struct reader rd[NSUBS];
    pthread_t pub, th[NSUBS];
    shmbus_pub *p;
    void *prc;

    assert_shmbus_ok(shmbus_open(e->bus, topic, &to, 0, &r.t));
    assert_shmbus_ok(shmbus_pub_create(r.t, &p));
    for (uint64_t seq = 0; seq < BACKLOG; seq++) {
        assert_shmbus_ok(shmbus_publish(p, &seq, sizeof(seq), 10000000000LL));
        /* A lossy topic: let the recorder keep up with the backlog. */
        if (mode == SHMBUS_LOSSY && seq % 512 == 511)
            du_sleep_ms(20);
    }
    shmbus_pub_destroy(p);
    atomic_store_explicit(&r.published, BACKLOG, memory_order_relaxed);
    assert_int_equal(pthread_create(&pub, NULL, pub_main, &r), 0);
    for (int i = 0; i < NSUBS; i++) {
        uint64_t starts[NSUBS] = {0, BACKLOG / 2, BACKLOG - RING / 2, UINT64_MAX};
        rd[i] = (struct reader){.run = &r, .start = starts[i]};
        assert_int_equal(pthread_create(&th[i], NULL, sub_main, &rd[i]), 0);
        du_sleep_ms(5);
    }
    for (int i = 0; i < NSUBS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(pthread_join(pub, &prc), 0);
    shmbus_topic_destroy(r.t);
    assert_null(prc);
    for (int i = 0; i < NSUBS; i++) {
        if (rd[i].err[0] != '\0')
            fail_msg("reader %d: %s", i, rd[i].err);
        if (mode == SHMBUS_RELIABLE && rd[i].lost != 0)
            fail_msg("reader %d lost %llu in a reliable topic", i, (unsigned long long)rd[i].lost);
        print_message("reader %d: %llu received, %llu lost\n", i,
                      (unsigned long long)rd[i].received, (unsigned long long)rd[i].lost);
    }
}

static void test_merge_reliable_load(void **state)
{
    run_merge(*state, SHMBUS_RELIABLE, "rec.rel");
}

static void test_merge_lossy_load(void **state)
{
    run_merge(*state, SHMBUS_LOSSY, "rec.lossy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_reliable_load, rec_setup, rec_teardown),
        cmocka_unit_test_setup_teardown(test_merge_lossy_load, rec_setup, rec_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("stress_merge", tests, NULL, NULL);
}
