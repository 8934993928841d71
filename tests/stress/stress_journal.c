/*
 * A reader thread following a writer thread on one journal: small
 * segments so that files roll under the reader, batches of every size,
 * and every record read back identical, in order, with no damage, while
 * the reader polls the end of the newest file ("not yet") throughout.
 */
#include "journaltest.h"

#include <pthread.h>
#include <stdatomic.h>

#define STRESS_RECORDS 200000u

struct follow {
    const char *dir;
    _Atomic int writer_done;
    uint64_t not_yet; /* the reader's "none yet" answers */
};

static void *writer_main(void *arg)
{
    struct follow *f = arg;
    shmbus_journal_opts o = {.segment_size = 64 << 10};
    unsigned char buf[301];
    shmbus_journal *j;
    uint64_t s = 0;

    if (shmbus_journal_open(f->dir, JT_TOPIC, &o, &j) != 0)
        abort();
    while (s < STRESS_RECORDS) {
        uint64_t batch = 1 + (s * 2654435761u) % 97;
        for (uint64_t k = 0; k < batch && s < STRESS_RECORDS; k++, s++) {
            shmbus_msg m = jt_msg(buf, s);
            if (shmbus_journal_append(j, &m) != 1)
                abort();
        }
        if (shmbus_journal_flush(j) != 0)
            abort();
    }
    shmbus_journal_close(j);
    /* release: pairs with the reader's acquire; all written before it */
    atomic_store_explicit(&f->writer_done, 1, memory_order_release);
    return NULL;
}

static void test_journal_follow(void **state)
{
    struct follow f = {.dir = *state};
    shmbus_journal_reader *r = NULL;
    shmbus_journal_record rec;
    pthread_t w;
    uint64_t want = 0, idle_done = 0;

    assert_int_equal(pthread_create(&w, NULL, writer_main, &f), 0);
    while (r == NULL)
        if (shmbus_journal_reader_open(f.dir, JT_TOPIC, &r) == -ENOENT)
            sched_yield();
    while (want < STRESS_RECORDS) {
        int rc = shmbus_journal_next(r, &rec);
        if (rc == 0) {
            /* acquire: pairs with the writer's release. Once it is done,
             * everything is on disk: the reader must get there soon. */
            if (atomic_load_explicit(&f.writer_done, memory_order_acquire)) {
                assert_true(++idle_done < 2000);
                usleep(1000);
            }
            f.not_yet++;
            continue;
        }
        assert_int_equal(rc, 1);
        jt_check(&rec, want);
        want++;
    }
    assert_int_equal(pthread_join(w, NULL), 0);
    assert_int_equal(shmbus_journal_next(r, &rec), 0);
    assert_int_equal(shmbus_journal_reader_damaged(r), 0);
    assert_true(jt_count_segs(f.dir) > 50);
    print_message("reader caught up with the writer %llu times\n", (unsigned long long)f.not_yet);
    shmbus_journal_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_journal_follow, jt_setup, jt_teardown),
    };
    return cmocka_run_group_tests_name("stress_journal", tests, NULL, NULL);
}
