/* SPDX-License-Identifier: Apache-2.0 */
/* shmbus_publish_vec() in one process: the prefix a reliable ring has room
 * for, checks before anything goes out, lossy and exclusive batches, one
 * wake-up per batch (ring/pub.c). */
#include "ringtest.h"

#include <errno.h>
#include <pthread.h>
#include <sys/uio.h>

#include "ring/ring.h"

/* Batch @p n messages, payload seqs from @p first, into @p iov and @p bufs. */
static void batch_fill(struct iovec *iov, uint8_t (*bufs)[64], uint64_t first, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = tu_fill(bufs[i], 1, first + i, 16 + (uint32_t)i);
    }
}

/* Receive @p n messages, expecting seqs and payload seqs from @p first,
 * none lost. */
static void expect_seqs(shmbus_sub *s, uint64_t first, unsigned n)
{
    struct got g = {0};

    assert_int_equal(shmbus_poll(s, collect, &g, 256), n);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(g.seq[i], first + i);
        assert_int_equal(g.pseq[i], first + i);
        assert_int_equal(g.lost[i], 0);
    }
}

/* A reliable batch publishes the prefix the ring has room for, waits for
 * room for the first message only, and checks every message before it
 * publishes any. */
static void test_ring_batch_reliable_prefix(void **state)
{
    struct fx *f = *state;
    struct iovec iov[12];
    uint8_t bufs[12][64];
    shmbus_sub *s;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    assert_int_equal(shmbus_publish_vec(f->pub, iov, 0, 0), 0);
    assert_shmbus_rc(shmbus_publish_vec(NULL, iov, 1, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_publish_vec(f->pub, NULL, 1, 0), SHMBUS_ERR_INVALID);
    batch_fill(iov, bufs, 0, 12);
    iov[3].iov_len = 257; /* one too big: nothing goes out */
    assert_shmbus_rc(shmbus_publish_vec(f->pub, iov, 4, 0), SHMBUS_ERR_TOO_BIG);
    iov[3].iov_base = NULL;
    iov[3].iov_len = 1;
    assert_shmbus_rc(shmbus_publish_vec(f->pub, iov, 4, 0), SHMBUS_ERR_INVALID);
    expect_seqs(s, 0, 0);
    batch_fill(iov, bufs, 0, 12);
    /* Beyond what one call may publish (a lap): not checked by this call. */
    iov[10].iov_len = 257;
    assert_int_equal(shmbus_publish_vec(f->pub, iov, 12, 0), 8); /* the ring holds 8 */
    batch_fill(iov, bufs, 0, 12);
    assert_shmbus_rc(shmbus_publish_vec(f->pub, iov + 8, 4, 0), -EAGAIN);
    assert_shmbus_rc(shmbus_publish_vec(f->pub, iov + 8, 4, 2000000), SHMBUS_ERR_TIMEOUT);
    expect_seqs(s, 0, 8);
    assert_int_equal(shmbus_publish_vec(f->pub, iov + 8, 4, 0), 4);
    expect_seqs(s, 8, 4);
    shmbus_sub_destroy(s);
}

/* A lossy batch takes at most a lap, so it never overwrites itself; an
 * exclusive one (lossy or reliable) is the same claim by a store. */
static void test_ring_batch_lossy_and_exclusive(void **state)
{
    struct fx *f = *state;
    struct iovec iov[12];
    uint8_t bufs[12][64];
    shmbus_sub *s;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &s));
    batch_fill(iov, bufs, 0, 12);
    assert_int_equal(shmbus_publish_vec(f->pub, iov, 12, 0), 8);
    expect_seqs(s, 0, 8);
    batch_fill(iov, bufs, 8, 3);
    assert_int_equal(shmbus_publish_vec(f->pub, iov, 3, 0), 3);
    pub_n(f, 11, 1); /* a single publish goes on from the batch */
    expect_seqs(s, 8, 4);
    shmbus_sub_destroy(s);
}

struct sleeper {
    shmbus_sub *sub;
    int rc;
};

static void *sleeper_recv(void *arg)
{
    struct sleeper *z = arg;
    uint8_t buf[256];

    z->rc = shmbus_recv(z->sub, buf, sizeof(buf), NULL, 10000000000ll);
    return NULL;
}

/* A batch wakes a sleeping subscriber once, however many messages. */
static void test_ring_batch_wakes_once(void **state)
{
    struct fx *f = *state;
    struct sb_shm_header *h = f->topic->seg.hdr;
    struct iovec iov[5];
    uint8_t bufs[5][64];
    struct sleeper z = {0};
    pthread_t th;
    uint32_t before;

    assert_shmbus_ok(shmbus_sub_create(f->topic, NULL, &z.sub));
    assert_int_equal(pthread_create(&th, NULL, sleeper_recv, &z), 0);
    while (atomic_load_explicit(&h->data_waiters, memory_order_seq_cst) == 0)
        sched_yield();
    before = atomic_load_explicit(&h->data_futex, memory_order_seq_cst);
    batch_fill(iov, bufs, 0, 5);
    assert_int_equal(shmbus_publish_vec(f->pub, iov, 5, 0), 5);
    assert_int_equal(atomic_load_explicit(&h->data_futex, memory_order_seq_cst), before + 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_shmbus_ok(z.rc);
    expect_seqs(z.sub, 1, 4);
    shmbus_sub_destroy(z.sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RT(test_ring_batch_reliable_prefix, setup_reliable8),
        RT(test_ring_batch_lossy_and_exclusive, setup_lossy8),
        RT(test_ring_batch_lossy_and_exclusive, setup_excl_lossy8),
        RT(test_ring_batch_lossy_and_exclusive, setup_excl_reliable8),
        RT(test_ring_batch_wakes_once, setup_reliable8),
        RT(test_ring_batch_wakes_once, setup_excl_lossy8),
    };
    tu_init();
    return cmocka_run_group_tests_name("ring_batch", tests, NULL, NULL);
}
