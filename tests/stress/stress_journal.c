/* SPDX-License-Identifier: Apache-2.0 */
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
    _Atomic int stop; /* the reader failed: the writer ends early */
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
    /* relaxed: a request to stop early; nothing is read under it */
    while (s < STRESS_RECORDS && !atomic_load_explicit(&f->stop, memory_order_relaxed)) {
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

/* 1 if @p rec is the message of @p seq (jt_check() without asserting). */
static int follow_same(const shmbus_journal_record *rec, uint64_t seq)
{
    unsigned char buf[301];

    jt_fill(buf, seq);
    return rec->flags == 0 && rec->seq == seq && rec->count == 1 && rec->len == jt_len(seq) &&
           (rec->len == 0 || memcmp(rec->data, buf, rec->len) == 0);
}

/* Follow the writer to its last record. @return NULL, or what went wrong
 * (in @p why) with the writer still to be joined. */
static const char *follow(struct follow *f, shmbus_journal_reader *r, char *why, size_t cap)
{
    shmbus_journal_record rec;
    shmbus_journal_damage d;
    uint64_t want = 0, idle_done = 0;

    while (want < STRESS_RECORDS) {
        int rc = shmbus_journal_next(r, &rec);
        if (rc == 0) {
            /* acquire: pairs with the writer's release. Once it is done,
             * everything is on disk: the reader must get there soon. */
            if (atomic_load_explicit(&f->writer_done, memory_order_acquire)) {
                if (++idle_done >= 2000)
                    return "the reader never reached the writer's last record";
                usleep(1000);
            }
            f->not_yet++;
            continue;
        }
        if (rc == SHMBUS_ERR_CORRUPT && shmbus_journal_reader_damage(r, &d) == 0) {
            snprintf(why, cap, "damage at %s:%llu (%s), %llu bytes, after seq %llu", d.file,
                     (unsigned long long)d.offset, d.what, (unsigned long long)d.skipped,
                     (unsigned long long)d.seq);
            return why;
        }
        if (rc != 1 || !follow_same(&rec, want)) {
            snprintf(why, cap, "next() -> %d, seq %llu, for seq %llu", rc,
                     (unsigned long long)rec.seq, (unsigned long long)want);
            return why;
        }
        want++;
    }
    return NULL;
}

static void test_journal_follow(void **state)
{
    struct follow f = {.dir = *state};
    shmbus_journal_reader *r = NULL;
    shmbus_journal_record rec;
    const char *bad;
    char why[256];
    pthread_t w;

    assert_int_equal(pthread_create(&w, NULL, writer_main, &f), 0);
    while (r == NULL)
        if (shmbus_journal_reader_open(f.dir, JT_TOPIC, &r) == -ENOENT)
            sched_yield();
    bad = follow(&f, r, why, sizeof(why));
    /* relaxed: see writer_main(); the join orders the rest */
    atomic_store_explicit(&f.stop, 1, memory_order_relaxed);
    assert_int_equal(pthread_join(w, NULL), 0);
    if (bad != NULL) {
        shmbus_journal_reader_close(r);
        fail_msg("%s", bad);
    }
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
