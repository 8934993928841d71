/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A plain reader joining a reliable topic while a publisher scans the
 * gates (ring/gate.c): the fault-injection build stops the publisher's
 * scan after slot 0, the reader takes slot 0 and is seated on the lagging
 * subscriber in slot 1, which then drains; the publisher, let go, reads
 * slot 1 past the new reader's seat. Without the joins check its limit
 * lets it overwrite the cell the new reader is about to read in place.
 * The same holds for a group's first member, which seats the group.
 */
#include "testutil.h"

#define JR_CAP 4u
#define JR_LEN 32u

/* Exit codes of the publisher child. */
enum { JR_PUBLISHED = 0, JR_FULL = 1, JR_ERROR = 2 };

struct jr {
    shmbus_topic *t;
};

/* Publish seq JR_CAP with no wait; the scan stops at the fault point. */
static int jr_publisher(void *arg)
{
    const struct jr *j = arg;
    uint8_t buf[JR_LEN];
    shmbus_pub *pub;
    int rc;

    setenv("SHMBUS_FAULT", "gate-scan-slot1", 1);
    if (shmbus_pub_create(j->t, &pub) < 0)
        return JR_ERROR;
    rc = shmbus_publish(pub, buf, tu_fill(buf, 0, JR_CAP, JR_LEN), 0);
    shmbus_pub_destroy(pub);
    return rc == 0 ? JR_PUBLISHED : rc == -EAGAIN ? JR_FULL : JR_ERROR;
}

/* Let @p pid run, stopping at every scan it makes, until it exits.
 * @return its exit status. */
static int jr_run_to_exit(pid_t pid)
{
    int st = 0;

    for (int i = 0; i < 16; i++) {
        assert_int_equal(kill(pid, SIGCONT), 0);
        assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
        if (!WIFSTOPPED(st))
            break;
    }
    assert_true(WIFEXITED(st));
    for (int i = 0; i < TU_MAX_KIDS; i++)
        if (tu_kids[i] == pid)
            tu_kids[i] = 0;
    return WEXITSTATUS(st);
}

struct jr_seen {
    uint64_t next;
};

static int jr_check(const shmbus_msg *m, void *arg)
{
    struct jr_seen *s = arg;
    struct tu_payload p;

    if (m->seq != s->next || !tu_check(m->data, m->len, &p) || p.seq != m->seq)
        fail_msg("seq %llu (want %llu) read torn or overwritten", (unsigned long long)m->seq,
                 (unsigned long long)s->next);
    s->next++;
    return 0;
}

/* Run the race: a in slot 1 at seq 0, the ring full, a publisher stopped
 * in its scan after slot 0; then @p o's subscriber joins (slot 0) and is
 * seated on a, a drains, and the publisher goes on. The new subscriber
 * must read seqs 0 to 3 intact, and the publisher find the ring full. */
static void jr_race(const char *tag, const shmbus_sub_opts *o)
{
    shmbus_topic_opts to = {.mode = SHMBUS_RELIABLE,
                            .capacity = JR_CAP,
                            .max_msg_size = 64,
                            .max_subscribers = 4,
                            .max_groups = 1};
    const char *name = tu_name(tag);
    struct jr_seen seen_a = {0}, seen_j = {0};
    uint8_t buf[JR_LEN];
    shmbus_sub *d, *a, *joiner;
    shmbus_pub *pub;
    struct jr j;
    pid_t kid;
    int st, rc;

    assert_shmbus_ok(shmbus_topic_create(name, &to, &j.t));
    /* a in slot 1 at seq 0; slot 0 free again. */
    assert_shmbus_ok(shmbus_sub_create(j.t, NULL, &d));
    assert_shmbus_ok(shmbus_sub_create(j.t, NULL, &a));
    shmbus_sub_destroy(d);
    assert_shmbus_ok(shmbus_pub_create(j.t, &pub));
    for (uint64_t k = 0; k < JR_CAP; k++)
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 0, k, JR_LEN), 0));
    shmbus_pub_destroy(pub);

    /* The publisher reads the group (no members) and slot 0 (free), and
     * stops before slot 1. */
    kid = tu_fork(jr_publisher, &j);
    assert_int_equal(waitpid(kid, &st, WUNTRACED), kid);
    assert_true(WIFSTOPPED(st));
    /* Seated on a, the only settled gate: at seq 0. */
    assert_shmbus_ok(shmbus_sub_create(j.t, o, &joiner));
    assert_int_equal(shmbus_poll(a, jr_check, &seen_a, JR_CAP), (int)JR_CAP);
    /* The joiner gates seq 0: the ring is full for the publisher, and
     * the joiner reads seqs 0 to 3 intact. */
    rc = jr_run_to_exit(kid);
    assert_shmbus_rc(shmbus_poll(joiner, jr_check, &seen_j, JR_CAP), (int)JR_CAP);
    assert_int_equal(seen_j.next, JR_CAP);
    assert_int_equal(rc, JR_FULL);

    shmbus_sub_destroy(joiner);
    shmbus_sub_destroy(a);
    shmbus_topic_destroy(j.t);
    tu_release(name);
}

static void test_join_during_gate_scan(void **state)
{
    (void)state;
    shmbus_sub_opts oldest = {.start = SHMBUS_START_OLDEST};

    jr_race("joinrace", &oldest);
}

/* A group's first member seats the group through the same sb_seat(): the
 * publisher read the cursor while the group had no member. */
static void test_group_seated_during_gate_scan(void **state)
{
    (void)state;
    shmbus_sub_opts member = {.start = SHMBUS_START_OLDEST, .group = 1};

    jr_race("joinrace-grp", &member);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_during_gate_scan),
        cmocka_unit_test(test_group_seated_during_gate_scan),
    };
    tu_init();
    return cmocka_run_group_tests_name("join_race", tests, NULL, NULL);
}
