/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Set-aside of a journal (journal/aside.c, shmbus_journal_set_aside()):
 * DIR/TOPIC moves to DIR/TOPIC.old-NS, a long name cut to fit exactly
 * SHMBUS_TOPIC_NAME_MAX characters; never under a writer, never through
 * a symbolic link, and bad arguments move nothing.
 */
#include "journaltest.h"

#include <time.h>

#define AS_TOPIC "as.topic"

/* CLOCK_REALTIME now, in nanoseconds. */
static uint64_t as_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Is DIR/@p name there (a link counts, not followed)? */
static int as_exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return lstat(path, &st) == 0;
}

/* A journal of @p topic in @p dir with 10 messages. */
static void as_journal(const char *dir, const char *topic)
{
    shmbus_journal *j;

    assert_shmbus_ok(shmbus_journal_open(dir, topic, NULL, &j));
    jt_append_range(j, 0, 10, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
}

/* The NS of set-aside name @p name of (cut) prefix @p plen. */
static uint64_t as_ns(const char *name, size_t plen)
{
    const char *p = name + plen;

    assert_memory_equal(p, SHMBUS_JOURNAL_ASIDE_MARK, strlen(SHMBUS_JOURNAL_ASIDE_MARK));
    p += strlen(SHMBUS_JOURNAL_ASIDE_MARK);
    assert_true(*p >= '1' && *p <= '9');
    for (const char *q = p; *q != '\0'; q++)
        assert_true(*q >= '0' && *q <= '9');
    return strtoull(p, NULL, 10);
}

/* TOPIC.old-NS with NS the time of the move; the journal is whole there
 * and the topic's name is free for a new one. */
static void test_aside_name(void **state)
{
    const char *dir = *state;
    char aside[SHMBUS_TOPIC_NAME_MAX + 1];
    shmbus_journal_summary s;
    uint64_t t0, t1, ns;

    as_journal(dir, AS_TOPIC);
    t0 = as_now();
    assert_shmbus_ok(shmbus_journal_set_aside(dir, AS_TOPIC, aside, sizeof(aside)));
    t1 = as_now();
    assert_int_equal(strncmp(aside, AS_TOPIC, strlen(AS_TOPIC)), 0);
    ns = as_ns(aside, strlen(AS_TOPIC));
    assert_true(ns >= t0 && ns <= t1);
    assert_false(as_exists(dir, AS_TOPIC));
    assert_shmbus_ok(shmbus_journal_summary_get(dir, aside, &s));
    assert_int_equal(s.first_seq, 0);
    assert_int_equal(s.last_seq, 9);
    /* Its files are still the topic's: retention of it knows them. */
    assert_int_equal(shmbus_journal_retain(dir, aside, AS_TOPIC, UINT64_MAX, 0, NULL), 0);
    /* No room for the name: nothing moves. */
    as_journal(dir, AS_TOPIC);
    assert_int_equal(shmbus_journal_set_aside(dir, AS_TOPIC, aside, strlen(AS_TOPIC)),
                     SHMBUS_ERR_INVALID);
    assert_true(as_exists(dir, AS_TOPIC));
    /* NULL: no name wanted. */
    assert_shmbus_ok(shmbus_journal_set_aside(dir, AS_TOPIC, NULL, 0));
    assert_false(as_exists(dir, AS_TOPIC));
}

/* A 128-character name is cut to leave room for the suffix: exactly
 * SHMBUS_TOPIC_NAME_MAX characters, a prefix of the topic's name. */
static void test_aside_cut_to_fit(void **state)
{
    const char *dir = *state;
    char topic[SHMBUS_TOPIC_NAME_MAX + 1], aside[SHMBUS_TOPIC_NAME_MAX + 1];
    shmbus_journal_summary s;
    size_t plen;

    for (int i = 0; i < SHMBUS_TOPIC_NAME_MAX; i++)
        topic[i] = (char)('a' + i % 26);
    topic[SHMBUS_TOPIC_NAME_MAX] = '\0';
    as_journal(dir, topic);
    assert_shmbus_ok(shmbus_journal_set_aside(dir, topic, aside, sizeof(aside)));
    assert_int_equal(strlen(aside), SHMBUS_TOPIC_NAME_MAX);
    plen = strlen(aside);
    while (plen > 0 && aside[plen - 1] >= '0' && aside[plen - 1] <= '9')
        plen--;
    plen -= strlen(SHMBUS_JOURNAL_ASIDE_MARK);
    assert_true(plen < strlen(topic));
    assert_memory_equal(aside, topic, plen);
    assert_true(as_ns(aside, plen) > 0);
    assert_false(as_exists(dir, topic));
    assert_shmbus_ok(shmbus_journal_summary_get(dir, aside, &s));
    assert_int_equal(s.records, 10);
    assert_int_equal(shmbus_journal_retain(dir, aside, topic, UINT64_MAX, 0, NULL), 0);
}

/* A journal a writer has open stays where it is. */
static void test_aside_busy(void **state)
{
    const char *dir = *state;
    char aside[SHMBUS_TOPIC_NAME_MAX + 1];
    shmbus_journal *j;

    assert_shmbus_ok(shmbus_journal_open(dir, AS_TOPIC, NULL, &j));
    jt_append_range(j, 0, 10, 10);
    assert_int_equal(shmbus_journal_set_aside(dir, AS_TOPIC, aside, sizeof(aside)), -EBUSY);
    assert_false(as_exists(dir, aside));
    jt_append_range(j, 10, 20, 10);
    assert_shmbus_ok(shmbus_journal_close(j));
    assert_true(as_exists(dir, AS_TOPIC));
    assert_shmbus_ok(shmbus_journal_set_aside(dir, AS_TOPIC, aside, sizeof(aside)));
    assert_true(as_exists(dir, aside));
}

/* A symbolic link at DIR/TOPIC is refused, neither it nor its target
 * moved; no journal, bad names. */
static void test_aside_refused(void **state)
{
    const char *dir = *state;
    char link[512], aside[SHMBUS_TOPIC_NAME_MAX + 1];

    as_journal(dir, "as.real");
    snprintf(link, sizeof(link), "%s/%s", dir, AS_TOPIC);
    assert_int_equal(symlink("as.real", link), 0);
    assert_int_equal(shmbus_journal_set_aside(dir, AS_TOPIC, aside, sizeof(aside)), -ELOOP);
    assert_true(as_exists(dir, AS_TOPIC));
    assert_true(as_exists(dir, "as.real"));
    assert_int_equal(shmbus_journal_set_aside(dir, "as.none", aside, sizeof(aside)), -ENOENT);
    assert_int_equal(shmbus_journal_set_aside(dir, "../x", aside, sizeof(aside)),
                     SHMBUS_ERR_BAD_NAME);
    assert_int_equal(shmbus_journal_set_aside(dir, ".as", aside, sizeof(aside)),
                     SHMBUS_ERR_BAD_NAME);
    assert_int_equal(shmbus_journal_set_aside(NULL, AS_TOPIC, aside, sizeof(aside)),
                     SHMBUS_ERR_INVALID);
    assert_int_equal(shmbus_journal_set_aside(dir, NULL, aside, sizeof(aside)), SHMBUS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_aside_name, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_aside_cut_to_fit, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_aside_busy, jt_setup, jt_teardown),
        cmocka_unit_test_setup_teardown(test_aside_refused, jt_setup, jt_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("journal_aside", tests, NULL, NULL);
}
