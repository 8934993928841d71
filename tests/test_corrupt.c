/* SPDX-License-Identifier: Apache-2.0 */
/* A reader never trusts the ring: impossible records are reported as
 * errors, and random bytes written into a live segment never make any call
 * read outside the mapping, crash or hang (run under ASan/UBSan). */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>

#include "shm/layout.h"

struct raw {
    uint8_t *base;
    size_t len;
};

static struct sb_shm_cell *raw_cell(struct raw *r, uint64_t seq)
{
    struct sb_shm_header *h = (struct sb_shm_header *)r->base;
    return (struct sb_shm_cell *)(r->base + h->cells_off +
                                  (seq & (h->capacity - 1)) * h->cell_size);
}

static int count(const shmbus_msg *m, void *arg)
{
    (void)m;
    (*(int *)arg)++;
    return 0;
}

/* A topic of 8 cells of at most 64 bytes, with a publisher, a subscriber
 * and the segment mapped raw, and seqs 0..2 published ("abcd"). */
struct three {
    shmbus_topic *t;
    shmbus_pub *p;
    shmbus_sub *s;
    struct raw r;
};

static void three_open(struct three *f, const char *prefix, uint32_t mode)
{
    const char *name = tu_name(prefix);
    shmbus_topic_opts o = {.mode = mode, .capacity = 8, .max_msg_size = 64};

    assert_shmbus_ok(shmbus_topic_create(name, &o, &f->t));
    assert_shmbus_ok(shmbus_pub_create(f->t, &f->p));
    assert_shmbus_ok(shmbus_sub_create(f->t, NULL, &f->s));
    f->r.base = tu_raw_map(name, &f->r.len);
    for (int i = 0; i < 3; i++)
        assert_shmbus_ok(shmbus_publish(f->p, "abcd", 4, 0));
}

static void three_close(struct three *f)
{
    munmap(f->r.base, f->r.len);
    shmbus_sub_destroy(f->s);
    shmbus_pub_destroy(f->p);
    shmbus_topic_destroy(f->t);
}

static void impossible_records(uint32_t mode)
{
    struct three f;
    int n = 0;

    three_open(&f, "imp", mode);
    /* seq 0: a length beyond the topic's maximum */
    raw_cell(&f.r, 0)->len = 65;
    /* seq 1: a stamp naming a seq that belongs to another cell (seq_cst,
     * the default, though any order would do: the reader polls it later
     * in this same thread) */
    atomic_store(&raw_cell(&f.r, 1)->stamp, SB_STAMP(5, SB_ST_COMMITTED));
    assert_shmbus_rc(shmbus_poll(f.s, count, &n, 10), SHMBUS_ERR_CORRUPT);
    assert_shmbus_rc(shmbus_poll(f.s, count, &n, 10), SHMBUS_ERR_CORRUPT);
    /* the reader moved on: seq 2 is intact */
    assert_int_equal(shmbus_poll(f.s, count, &n, 10), 1);
    shmbus_sub_stats st;
    assert_shmbus_ok(shmbus_sub_stats_get(f.s, &st));
    assert_int_equal(st.lost, 2);
    three_close(&f);
}

static void test_corrupt_impossible_records_reported(void **state)
{
    (void)state;
    impossible_records(SHMBUS_RELIABLE);
    impossible_records(SHMBUS_LOSSY);
}

/* A poll that delivered a message and then met a corrupt record reports
 * the message and keeps the error for the next call: a receive must
 * report it before the intact message behind it, not deliver that one
 * (sub.c recv_plain() leaves a pending error to the general path). */
static void pending_error_first(uint32_t mode)
{
    uint8_t buf[64];
    shmbus_msg info;
    struct three f;
    int n = 0;

    three_open(&f, "pend", mode);
    raw_cell(&f.r, 1)->len = 65; /* seq 1: a length beyond the maximum */
    assert_int_equal(shmbus_poll(f.s, count, &n, 10), 1);
    assert_shmbus_rc(shmbus_recv(f.s, buf, sizeof(buf), &info, 0), SHMBUS_ERR_CORRUPT);
    assert_int_equal(shmbus_recv(f.s, buf, sizeof(buf), &info, 0), 4);
    assert_int_equal(info.seq, 2);
    assert_shmbus_rc(shmbus_recv(f.s, buf, sizeof(buf), &info, 0), -EAGAIN);
    three_close(&f);
}

static void test_corrupt_pending_error_before_next_recv(void **state)
{
    (void)state;
    pending_error_first(SHMBUS_RELIABLE);
    pending_error_first(SHMBUS_LOSSY);
}

struct scribbler {
    struct raw r;
    _Atomic int stop;
    unsigned seed;
};

static void *scribble(void *arg)
{
    struct scribbler *sc = arg;
    while (!atomic_load(&sc->stop)) {
        size_t off = (size_t)rand_r(&sc->seed) % (sc->r.len - 8);
        int n = 1 + rand_r(&sc->seed) % 8;
        for (int i = 0; i < n; i++)
            sc->r.base[off + (size_t)i] = (uint8_t)rand_r(&sc->seed);
    }
    return NULL;
}

/* Scribbled bytes may land on the header's gone flag: the topic then
 * reads as removed, which is a clear error too. */
static int allowed(int rc)
{
    return rc >= 0 || rc == SHMBUS_ERR_CORRUPT || rc == SHMBUS_ERR_OVERRUN || rc == -EAGAIN ||
           rc == -EMSGSIZE || rc == SHMBUS_ERR_TIMEOUT || rc == SHMBUS_ERR_NO_SLOT ||
           rc == SHMBUS_ERR_TOPIC_GONE;
}

static void check(int rc, const char *what)
{
    if (!allowed(rc))
        fail_msg("%s returned %d (%s)", what, rc, shmbus_strerror(rc));
}

static void exercise(shmbus_topic *t, shmbus_pub *p, int rounds)
{
    shmbus_sub_opts go = {.group = 1, .start = SHMBUS_START_OLDEST};
    shmbus_sub *s, *g;
    uint8_t buf[128];
    int n = 0;

    check(shmbus_sub_create(t, NULL, &s), "sub_create");
    check(shmbus_sub_create(t, &go, &g), "group sub_create");
    for (int i = 0; i < rounds; i++) {
        check(shmbus_publish(p, buf, (size_t)(i % 128), 0), "publish");
        if (s != NULL) {
            check(shmbus_poll(s, count, &n, 16), "poll");
            check(shmbus_recv(s, buf, sizeof(buf), NULL, 0), "recv");
            check(shmbus_sub_ready(s), "ready");
        }
        if (g != NULL)
            check(shmbus_poll(g, count, &n, 4), "group poll");
        if (i % 1000 == 0 && s != NULL) {
            shmbus_sub_destroy(s);
            check(shmbus_sub_create(t, NULL, &s), "sub_create again");
        }
    }
    shmbus_sub_destroy(s);
    shmbus_sub_destroy(g);
}

static void scribble_mode(uint32_t mode)
{
    const char *name = tu_name("scribble");
    shmbus_topic_opts o = {
        .mode = mode, .capacity = 16, .max_msg_size = 128, .max_subscribers = 4, .max_groups = 1};
    struct scribbler sc = {.seed = 7};
    shmbus_topic *t;
    shmbus_pub *p;
    pthread_t th;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    sc.r.base = tu_raw_map(name, &sc.r.len);
    assert_int_equal(pthread_create(&th, NULL, scribble, &sc), 0);
    exercise(t, p, 100000);
    atomic_store(&sc.stop, 1);
    pthread_join(th, NULL);
    munmap(sc.r.base, sc.r.len);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
}

static void test_corrupt_random_bytes_never_crash(void **state)
{
    (void)state;
    scribble_mode(SHMBUS_LOSSY);
    scribble_mode(SHMBUS_RELIABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_impossible_records_reported),
        cmocka_unit_test(test_corrupt_pending_error_before_next_recv),
        cmocka_unit_test(test_corrupt_random_bytes_never_crash),
    };
    tu_init();
    return cmocka_run_group_tests_name("corrupt", tests, NULL, NULL);
}
