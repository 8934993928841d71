/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retention of a journal no writer writes (journal/retain.c,
 * shmbus_journal_retain()): shmbusd's set-aside journals. Oldest files go
 * first while they hold more than the limit, the newest too; by age as a
 * writer's retention; a journal left with no file loses its directory;
 * another topic's journal and one a writer holds are left alone.
 */
#include "journaltest.h"

#define RT_OWNER "rt.topic"
#define RT_ASIDE "rt.topic.old-1"
#define RT_MSGS  2000 /* about five files of 64 KiB */
#define HOUR_NS  (3600ull * 1000000000ull)

/* A journal of topic RT_OWNER of RT_MSGS messages, set aside as RT_ASIDE
 * (as shmbusd does: renamed). @return its files. */
static uint32_t rt_aside_make(const char *dir)
{
    shmbus_journal_opts o = {.segment_size = 64 << 10};
    shmbus_journal_summary s;
    char from[128], to[128];
    shmbus_journal *j;

    assert_shmbus_ok(shmbus_journal_open(dir, RT_OWNER, &o, &j));
    jt_append_range(j, 0, RT_MSGS, 100);
    assert_shmbus_ok(shmbus_journal_close(j));
    snprintf(from, sizeof(from), "%s/%s", dir, RT_OWNER);
    snprintf(to, sizeof(to), "%s/%s", dir, RT_ASIDE);
    assert_int_equal(rename(from, to), 0);
    assert_shmbus_ok(shmbus_journal_summary_get(dir, RT_ASIDE, &s));
    assert_true(s.files >= 4);
    return s.files;
}

/* Is DIR/@p name there? */
static int rt_exists(const char *dir, const char *name)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Over the limit: the oldest files go, the newest that fit stay. */
static void test_retain_bytes_oldest_first(void **state)
{
    const char *dir = *state;
    shmbus_journal_summary before, after;
    uint64_t kept;
    int rc;

    rt_aside_make(dir);
    assert_shmbus_ok(shmbus_journal_summary_get(dir, RT_ASIDE, &before));
    rc = shmbus_journal_retain(dir, RT_ASIDE, RT_OWNER, before.bytes / 2, 0, &kept);
    assert_true(rc >= 1);
    assert_shmbus_ok(shmbus_journal_summary_get(dir, RT_ASIDE, &after));
    assert_int_equal(after.files, before.files - (uint32_t)rc);
    assert_int_equal(kept, after.bytes);
    assert_true(kept <= before.bytes / 2);
    assert_true(after.first_seq > 0);
    assert_int_equal(after.last_seq, RT_MSGS - 1);
    /* Within the limit now: nothing more goes. */
    assert_int_equal(shmbus_journal_retain(dir, RT_ASIDE, RT_OWNER, before.bytes / 2, 0, &kept), 0);
    assert_int_equal(kept, after.bytes);
}

/* A limit of 0 takes every file, the newest too, then the directory. */
static void test_retain_all_removes_dir(void **state)
{
    const char *dir = *state;
    uint32_t files = rt_aside_make(dir);
    uint64_t kept = 1;

    assert_int_equal(shmbus_journal_retain(dir, RT_ASIDE, RT_OWNER, 0, 0, &kept), (int)files);
    assert_int_equal(kept, 0);
    assert_false(rt_exists(dir, RT_ASIDE));
    assert_int_equal(shmbus_journal_retain(dir, RT_ASIDE, RT_OWNER, 0, 0, NULL), -ENOENT);
}

/* By age: the messages are from 1970, older than an hour; not older than
 * a century. No limit at all keeps everything. */
static void test_retain_age(void **state)
{
    const char *dir = *state;
    uint32_t files = rt_aside_make(dir);
    shmbus_journal_summary s;
    uint64_t kept;

    assert_int_equal(shmbus_journal_retain(dir, RT_ASIDE, RT_OWNER, UINT64_MAX, 0, &kept), 0);
    assert_shmbus_ok(shmbus_journal_summary_get(dir, RT_ASIDE, &s));
    assert_int_equal(kept, s.bytes);
    assert_int_equal(
        shmbus_journal_retain(dir, RT_ASIDE, RT_OWNER, UINT64_MAX, 100 * 8766 * HOUR_NS, NULL), 0);
    assert_int_equal(shmbus_journal_retain(dir, RT_ASIDE, RT_OWNER, UINT64_MAX, HOUR_NS, &kept),
                     (int)files);
    assert_int_equal(kept, 0);
    assert_false(rt_exists(dir, RT_ASIDE));
}

/* Another topic's journal under a set-aside name, and a journal a writer
 * holds, are left alone; bad arguments are refused. */
static void test_retain_refused(void **state)
{
    const char *dir = *state;
    shmbus_journal_summary before, after;
    shmbus_journal *j;

    rt_aside_make(dir);
    assert_shmbus_ok(shmbus_journal_summary_get(dir, RT_ASIDE, &before));
    assert_int_equal(shmbus_journal_retain(dir, RT_ASIDE, "rt.other", 0, 0, NULL),
                     SHMBUS_ERR_BAD_MAGIC);
    assert_shmbus_ok(shmbus_journal_summary_get(dir, RT_ASIDE, &after));
    assert_int_equal(after.files, before.files);
    assert_shmbus_ok(shmbus_journal_open(dir, "rt.held", NULL, &j));
    jt_append_range(j, 0, 10, 10);
    assert_int_equal(shmbus_journal_retain(dir, "rt.held", "rt.held", 0, 0, NULL), -EBUSY);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_true(rt_exists(dir, "rt.held"));
    assert_int_equal(shmbus_journal_retain(dir, RT_ASIDE, NULL, 0, 0, NULL), SHMBUS_ERR_INVALID);
    assert_int_equal(shmbus_journal_retain(dir, RT_ASIDE, ".bad", 0, 0, NULL), SHMBUS_ERR_BAD_NAME);
    assert_int_equal(shmbus_journal_retain(dir, "../x", RT_OWNER, 0, 0, NULL), SHMBUS_ERR_BAD_NAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retain_bytes_oldest_first, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_retain_all_removes_dir, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_retain_age, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_retain_refused, jt_setup, jt_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("journal_retain", tests, NULL, NULL);
}
