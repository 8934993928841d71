/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Monitoring (registry/monitor.c), its groups view: shmbus_topic_groups_get(),
 * a topic's groups as its segment holds them, made by a real daemon or by
 * members of a topic created directly, then planted and scribbled on
 * through layout.h. The control protocol's bodies are in test_monitor.c.
 */
#include "daemonutil.h"

#include "ring/ring.h"
#include "util/name.h"

/* A reliable topic created directly (no daemon): 8 slots, 4 groups. */
static shmbus_topic *groups_topic(const char **name)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                           .capacity = 16,
                           .max_msg_size = 64,
                           .max_subscribers = 8,
                           .max_groups = 4};
    shmbus_topic *t = NULL;

    *name = tu_name("groups");
    assert_shmbus_ok(shmbus_topic_create(*name, &o, &t));
    return t;
}

static struct sb_segment *seg_of(shmbus_topic *t)
{
    return &((struct shmbus_topic *)t)->seg;
}

/* Group @p gi's (0-based) pending table head, where the creator put it. */
static struct sb_shm_acktab *acktab_of(shmbus_topic *t, uint32_t gi)
{
    assert_int_equal(seg_of(t)->g.ack_entries, SB_ACK_ENTRIES);
    return sb_acktab(seg_of(t), gi);
}

/* Plant entry @p i of group @p gi in state @p st, owned by slot 0. */
static void entry_plant(shmbus_topic *t, uint32_t gi, uint32_t i, uint32_t st)
{
    struct sb_shm_pending *e = sb_pending(seg_of(t), gi, i);

    atomic_store(&e->seq, i);
    atomic_store(&e->word, SB_PEND_WORD(1, 1, 1, st));
}

/* The group named @p name among @p n, or fail. */
static const shmbus_group_info *group_named(const shmbus_group_info *g, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(g[i].name, name) == 0)
            return &g[i];
    fail_msg("no group '%s' among %d", name, n);
    return NULL;
}

/* Members, positions and lags of unnamed groups; the groups nobody
 * uses are left out; the count beyond cap; the argument checks. */
static void test_monitor_groups_members_and_lag(void **state)
{
    shmbus_sub_opts g1 = {.group = 1}, g3 = {.group = 3};
    shmbus_group_info gi[4], one[2];
    shmbus_sub *sub[4] = {NULL};
    const char *name;
    shmbus_topic *t = groups_topic(&name);
    shmbus_pub *p = NULL;
    shmbus_msg info;
    char buf[64];

    (void)state;
    assert_int_equal(shmbus_topic_groups_get(t, gi, 4), 0); /* no group in use yet */
    assert_shmbus_ok(shmbus_sub_create(t, &g1, &sub[0]));
    assert_shmbus_ok(shmbus_sub_create(t, &g1, &sub[1]));
    assert_shmbus_ok(shmbus_sub_create(t, &g3, &sub[2]));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub[3])); /* no group: not counted */
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (int i = 0; i < 5; i++)
        assert_shmbus_ok(shmbus_publish(p, "m", 1, 0));
    for (int i = 0; i < 2; i++)
        assert_true(shmbus_recv(sub[i], buf, sizeof(buf), &info, 0) >= 0);
    assert_int_equal(shmbus_topic_groups_get(t, gi, 4), 2);
    assert_int_equal(gi[0].index, 1);
    assert_int_equal(gi[0].members, 2);
    assert_int_equal(gi[0].position, 2);
    assert_int_equal(gi[0].lag, 3);
    assert_int_equal(gi[1].index, 3);
    assert_int_equal(gi[1].members, 1);
    assert_int_equal(gi[1].position, 0);
    assert_int_equal(gi[1].lag, 5);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(gi[i].name, "");
        assert_string_equal(gi[i].dead_letter, "");
        assert_int_equal(gi[i].max_deliveries, 0);
        assert_int_equal(gi[i].pending + gi[i].redelivered + gi[i].dead_lettered, 0);
        assert_int_equal(gi[i].dead_letter_failed + gi[i].lost + gi[i].pad, 0);
    }
    /* More than cap: counted, one stored, nothing written after it. */
    memset(one, 0x5a, sizeof(one));
    assert_int_equal(shmbus_topic_groups_get(t, one, 1), 2);
    assert_int_equal(one[0].index, 1);
    assert_int_equal(one[1].index, 0x5a5a5a5a);
    assert_int_equal(shmbus_topic_groups_get(t, NULL, 0), 2);
    assert_shmbus_rc(shmbus_topic_groups_get(t, NULL, 1), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_topic_groups_get(NULL, gi, 4), SHMBUS_ERR_INVALID);
    /* The last member leaves: group 3 is no longer in use. */
    shmbus_sub_destroy(sub[2]);
    sub[2] = NULL;
    assert_int_equal(shmbus_topic_groups_get(t, gi, 4), 1);
    shmbus_pub_destroy(p);
    for (int i = 0; i < 4; i++)
        shmbus_sub_destroy(sub[i]);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* An acknowledged group's pending entries, counters, max_deliveries and
 * dead-letter topic, planted in the segment as the ring and the daemon
 * write them: HELD, RETURNED and DEAD are pending, RESERVED and FREE not;
 * a group with pending entries only (no member, no name) is in use. */
static void test_monitor_groups_pending_and_counters(void **state)
{
    const char *name;
    shmbus_topic *t = groups_topic(&name);
    struct sb_shm_group *g = seg_of(t)->groups;
    shmbus_group_info gi[4];

    (void)state;
    snprintf(g[1].name, sizeof(g[1].name), "work");
    atomic_store(&g[1].max_deliveries, 5);
    snprintf(acktab_of(t, 1)->dead_letter, SB_DEAD_LETTER_LEN, "work.dlq");
    entry_plant(t, 1, 0, SB_PEND_HELD);
    entry_plant(t, 1, 5, SB_PEND_HELD);
    entry_plant(t, 1, 9, SB_PEND_RETURNED);
    entry_plant(t, 1, 100, SB_PEND_DEAD);
    entry_plant(t, 1, 127, SB_PEND_RESERVED);
    atomic_store(&g[1].redelivered, 7);
    atomic_store(&g[1].dead_lettered, 3);
    atomic_store(&g[1].dead_letter_failed, 2);
    /* Group 4: one returned message, no member, no name, not acknowledging:
     * its dead-letter field is not shown. */
    entry_plant(t, 3, 3, SB_PEND_RETURNED);
    snprintf(acktab_of(t, 3)->dead_letter, SB_DEAD_LETTER_LEN, "stale.dlq");
    assert_int_equal(shmbus_topic_groups_get(t, gi, 4), 2);
    assert_int_equal(gi[0].index, 2);
    assert_string_equal(gi[0].name, "work");
    assert_int_equal(gi[0].members, 0);
    assert_int_equal(gi[0].max_deliveries, 5);
    assert_string_equal(gi[0].dead_letter, "work.dlq");
    assert_int_equal(gi[0].pending, 4);
    assert_int_equal(gi[0].redelivered, 7);
    assert_int_equal(gi[0].dead_lettered, 3);
    assert_int_equal(gi[0].dead_letter_failed, 2);
    assert_int_equal(gi[1].index, 4);
    assert_int_equal(gi[1].pending, 1);
    assert_int_equal(gi[1].max_deliveries, 0);
    assert_string_equal(gi[1].dead_letter, "");
    for (int i = 0; i < 4; i++)
        assert_int_equal(gi[0].reserved[i] | gi[1].reserved[i], 0);
    /* Acknowledged: pending falls to the entries still held. */
    atomic_store(&sb_pending(seg_of(t), 1, 0)->word, SB_PEND_WORD(2, 1, 0, SB_PEND_FREE));
    assert_int_equal(shmbus_topic_groups_get(t, gi, 4), 2);
    assert_int_equal(gi[0].pending, 3);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* Every name shown is NUL-terminated, valid and printable: none of @p n
 * groups carries a byte of a scribble. */
static void groups_clean(const shmbus_group_info *gi, int n)
{
    for (int i = 0; i < n; i++) {
        assert_true(gi[i].name[0] == '\0' || sb_name_valid(gi[i].name, SHMBUS_GROUP_NAME_MAX));
        assert_true(gi[i].dead_letter[0] == '\0' ||
                    sb_name_valid(gi[i].dead_letter, SHMBUS_TOPIC_NAME_MAX));
    }
}

/* A scribbled segment: names without their NUL, with bytes no name has,
 * or too long; counts over their bounds; entries in no state; a header
 * that puts the pending tables elsewhere. Bounded, clean values come out. */
static void test_monitor_groups_scribbled(void **state)
{
    const char *name;
    shmbus_topic *t = groups_topic(&name);
    struct sb_segment *seg = seg_of(t);
    struct sb_shm_group *g = seg->groups;
    uint64_t acks_off = seg->hdr->acks_off;
    shmbus_group_info gi[4];

    (void)state;
    memset(g[0].name, 'a', sizeof(g[0].name)); /* no NUL within the field */
    atomic_store(&g[0].cursor, SB_GRP_WORD(3, SB_GRP_MEMBERS));
    snprintf(g[1].name, sizeof(g[1].name), "bad/name\033[2J");
    atomic_store(&g[1].max_deliveries, UINT32_MAX);
    memset(acktab_of(t, 1)->dead_letter, 'x', SB_DEAD_LETTER_LEN); /* no NUL */
    entry_plant(t, 1, 0, SB_PEND_HELD);
    snprintf(g[2].name, sizeof(g[2].name), "ok");
    atomic_store(&g[2].max_deliveries, 3);
    memset(acktab_of(t, 2)->dead_letter, 'y', SHMBUS_TOPIC_NAME_MAX + 1); /* one too long */
    acktab_of(t, 2)->dead_letter[SHMBUS_TOPIC_NAME_MAX + 1] = '\0';
    for (uint32_t st = SB_PEND_DEAD + 1; st < 8; st++)
        entry_plant(t, 3, st, st); /* no such state: not pending */
    assert_int_equal(shmbus_topic_groups_get(t, gi, 4), 3);
    groups_clean(gi, 3);
    assert_int_equal(gi[0].index, 1);
    assert_string_equal(gi[0].name, "");
    assert_int_equal(gi[0].members, 8); /* clamped to the topic's slots */
    assert_int_equal(gi[0].position, 3);
    assert_int_equal(gi[1].index, 2);
    assert_string_equal(gi[1].name, "");
    assert_int_equal(gi[1].max_deliveries, SHMBUS_MAX_DELIVERIES_MAX);
    assert_string_equal(gi[1].dead_letter, "");
    assert_int_equal(gi[1].pending, 1);
    assert_int_equal(gi[2].index, 3);
    assert_string_equal(gi[2].name, "ok");
    assert_string_equal(gi[2].dead_letter, "");
    /* The header scribbled after the attach: the tables stay where the
     * attacher's validated geometry has them (pending still counted), and
     * no read follows the header out of place: past the mapping, into the
     * cells, before the publisher records, misaligned. */
    const uint64_t bad[] = {UINT64_MAX - 64, seg->g.total_len, seg->g.cells_off - SB_LINE,
                            seg->g.pubs_off, acks_off + 8};
    seg->hdr->ack_entries = UINT32_MAX;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        seg->hdr->acks_off = bad[i];
        assert_int_equal(shmbus_topic_groups_get(t, gi, 4), 3);
        groups_clean(gi, 3);
        assert_int_equal(gi[1].pending, 1);
    }
    seg->hdr->acks_off = acks_off;
    seg->hdr->ack_entries = SB_ACK_ENTRIES;
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* Named groups of a bus topic, numbered and named by a real daemon. */
static void test_monitor_groups_named_by_the_daemon(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 16, .max_groups = 4};
    shmbus_sub_opts w = {.group_name = "workers"}, a = {.group_name = "audit"};
    shmbus_sub *sub[3] = {NULL};
    shmbus_group_info gi[4];
    shmbus_topic *t = NULL;
    shmbus_bus *bus = NULL;
    shmbus_pub *p = NULL;
    const shmbus_group_info *x;
    shmbus_msg info;
    char buf[64];

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "jobs", &o, 0, &t));
    assert_shmbus_ok(shmbus_sub_create(t, &w, &sub[0]));
    assert_shmbus_ok(shmbus_sub_create(t, &w, &sub[1]));
    assert_shmbus_ok(shmbus_sub_create(t, &a, &sub[2]));
    assert_shmbus_ok(shmbus_pub_create(t, &p));
    for (int i = 0; i < 3; i++)
        assert_shmbus_ok(shmbus_publish(p, "job", 3, 0));
    assert_true(shmbus_recv(sub[2], buf, sizeof(buf), &info, 0) >= 0);
    assert_int_equal(shmbus_topic_groups_get(t, gi, 4), 2);
    x = group_named(gi, 2, "workers");
    assert_int_equal(x->members, 2);
    assert_int_equal(x->lag, 3);
    x = group_named(gi, 2, "audit");
    assert_int_equal(x->members, 1);
    assert_int_equal(x->position, 1);
    assert_int_equal(x->lag, 2);
    /* A named group keeps its name, and shows, when its members left. */
    shmbus_sub_destroy(sub[2]);
    assert_int_equal(shmbus_topic_groups_get(t, gi, 4), 2);
    assert_int_equal(group_named(gi, 2, "audit")->members, 0);
    shmbus_pub_destroy(p);
    shmbus_sub_destroy(sub[0]);
    shmbus_sub_destroy(sub[1]);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitor_groups_members_and_lag),
        cmocka_unit_test(test_monitor_groups_pending_and_counters),
        cmocka_unit_test(test_monitor_groups_scribbled),
        cmocka_unit_test_setup_teardown(test_monitor_groups_named_by_the_daemon, du_setup,
                                        du_teardown),
    };

    tu_init();

    return cmocka_run_group_tests_name("monitor_groups", tests, NULL, NULL);
}
