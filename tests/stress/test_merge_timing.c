/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay-merge (ring/merge.c) measured in CPU time, so a timing test: a
 * lossy subscriber that the ring lapped ahead of the journal waits for the
 * recorder to write its next seq, and while it waits it must spend next
 * to no CPU time, however many files the journal has. A real shmbusd
 * serves the topic; the journal is written by the test, which holds its
 * lock, so that nobody records the topic (a recorder stopped).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mergetest.h"
#include "shmbus/journal.h"

#define FILES   200u  /* journal files, of 64 KiB each */
#define REC_LEN 1000u /* a journal record's payload: 64 to a file */
#define RING    64u
#ifdef TU_SANITIZED
#define CPU_MAX_MS 80u /* of a 500 ms wait */
#else
#define CPU_MAX_MS 20u
#endif

/* Write seqs 0 .. @p n - 1 into @p j, in files of 64 KiB. */
static void journal_fill(shmbus_journal *j, uint64_t n)
{
    static uint8_t payload[REC_LEN];
    shmbus_msg m = {.data = payload, .len = REC_LEN, .timestamp_ns = 1};

    for (uint64_t i = 0; i < n; i++) {
        m.seq = i;
        assert_int_equal(shmbus_journal_append(j, &m), 1);
    }
    assert_shmbus_ok(shmbus_journal_flush(j));
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Lapped in the ring ahead of the journal's end, with nobody recording:
 * the wait for the journal costs next to no CPU time. */
static void test_merge_lapped_wait_cpu(void **state)
{
    const uint64_t journaled = FILES * 64;
    shmbus_topic_opts o = {.mode = SHMBUS_LOSSY, .capacity = RING, .max_msg_size = REC_LEN};
    shmbus_journal_opts jo = {.segment_size = 64 * 1024};
    struct rec_env *e = *state;
    static uint8_t buf[REC_LEN];
    shmbus_journal *j;
    shmbus_topic *t;
    shmbus_pub *p;
    shmbus_sub *s;
    /* Older than the ring holds once journaled + 8 are published. */
    shmbus_sub_opts so = {.start = SHMBUS_START_SEQ, .start_seq = journaled - RING};
    shmbus_msg m;
    uint64_t cpu;
    int rc;

    assert_shmbus_ok(shmbus_journal_open(e->jdir, "rec.lap", &jo, &j));
    journal_fill(j, journaled);
    assert_shmbus_ok(shmbus_open(e->bus, "rec.lap", &o, 0, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (uint64_t i = 0; i < journaled + 8; i++)
        assert_shmbus_ok(shmbus_publish(p, &i, sizeof(i), 1000000000LL));
    /* The journal's last records, then the ring from its end on. */
    assert_shmbus_ok(shmbus_sub_create(t, &so, &s));
    for (uint64_t i = journaled - RING; i < journaled + 8; i++) {
        assert_true(shmbus_recv(s, buf, sizeof(buf), &m, 1000000000LL) >= 0);
        assert_int_equal(m.seq, i);
    }
    /* Lapped at journaled + 8, which the journal does not hold. */
    for (uint64_t i = journaled + 8; i < journaled + 8 + 4 * RING; i++)
        assert_shmbus_ok(shmbus_publish(p, &i, sizeof(i), 1000000000LL));
    cpu = thread_cpu_ns();
    rc = shmbus_recv(s, buf, sizeof(buf), &m, 500000000LL);
    cpu = thread_cpu_ns() - cpu;
    assert_int_equal(rc, SHMBUS_ERR_TIMEOUT);
    print_message("waited 500 ms on %u journal files: %llu ms of CPU\n", FILES,
                  (unsigned long long)(cpu / 1000000));
    /* Each look again is a few system calls, whatever the files, and
     * they come further apart while nothing comes. */
    if (cpu > CPU_MAX_MS * 1000000ull)
        fail_msg("the wait used %llu ms of CPU in 500 ms, over %u",
                 (unsigned long long)(cpu / 1000000), CPU_MAX_MS);
    /* The recorder writes what the ring held: the reader goes on from
     * where it was lapped, skipping what it had, losing nothing. */
    for (uint64_t i = journaled; i < journaled + 8 + 4 * RING; i++) {
        m = (shmbus_msg){.data = &i, .len = sizeof(i), .seq = i, .timestamp_ns = 1};
        assert_int_equal(shmbus_journal_append(j, &m), 1);
    }
    assert_shmbus_ok(shmbus_journal_flush(j));
    for (uint64_t i = journaled + 8; i < journaled + 8 + 4 * RING; i++) {
        uint64_t v;
        rc = shmbus_recv(s, &v, sizeof(v), &m, 1000000000LL);
        if (rc != (int)sizeof(v) || m.seq != i || v != i || m.lost != 0)
            fail_msg("want seq %llu: recv %d, seq %llu lost %llu", (unsigned long long)i, rc,
                     (unsigned long long)m.seq, (unsigned long long)m.lost);
    }
    shmbus_sub_destroy(s);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    assert_shmbus_ok(shmbus_journal_close(j));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_lapped_wait_cpu, rec_setup, rec_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("merge_timing", tests, NULL, NULL);
}
