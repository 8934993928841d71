/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd's answers to what it will not do (daemon/): opens that clash
 * with an existing topic, name a missing one or a bad name, and every
 * limit (topics, segment size and total, clients, slots; connections that
 * never say hello are in stress/test_daemon_timing.c), each a clear error
 * for that request only while the daemon goes on serving. Every test runs its own daemon
 * (daemonutil.h).
 */
#include "daemonclient.h"

#include <sys/socket.h>

#include "registry/admin.h"

/* ------------------------------------------------------------ 6: options */

/* An existing topic is opened only with its own options (zero: any). */
static void test_daemon_open_mismatch(void **state)
{
    struct du_daemon *d = *state;
    const shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                                 .capacity = 16,
                                 .max_msg_size = 64,
                                 .max_subscribers = 4,
                                 .max_groups = 2};
    shmbus_topic_opts x[6];
    shmbus_topic *t = NULL, *t2 = NULL;
    shmbus_topic_info info;
    shmbus_bus *bus = NULL;

    for (int i = 0; i < 6; i++)
        x[i] = o;
    x[0].mode = SHMBUS_LOSSY;
    x[1].capacity = 32;
    x[2].max_msg_size = 128;
    x[3].max_subscribers = 8;
    x[4].max_groups = 1;
    x[5].flags = SHMBUS_TOPIC_EXCLUSIVE;
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "opts", &o, 0, &t));
    for (int i = 0; i < 6; i++)
        assert_shmbus_rc(shmbus_open(bus, "opts", &x[i], 0, &t2), SHMBUS_ERR_MISMATCH);
    assert_null(t2);
    assert_shmbus_ok(shmbus_open(bus, "opts", NULL, 0, &t2)); /* zero fields: any */
    assert_shmbus_ok(shmbus_topic_info_get(t2, &info));
    assert_int_equal(info.capacity, 16);
    assert_int_equal(info.mode, SHMBUS_RELIABLE);
    shmbus_topic_destroy(t2);
    assert_shmbus_ok(shmbus_open(bus, "opts", &o, SHMBUS_OPEN_NOCREATE, &t2));
    assert_int_equal(list_entry(bus, "opts").clients, 2);
    shmbus_topic_destroy(t2);
    assert_int_equal(list_entry(bus, "opts").clients, 1);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* NOCREATE of a missing topic is -ENOENT and creates nothing. */
static void test_daemon_open_nocreate_missing(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_LOSSY, .capacity = 8};
    shmbus_topic *t = NULL;
    shmbus_bus *bus = NULL;
    shmbus_topic_entry e[4];

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_rc(shmbus_open(bus, "absent", NULL, SHMBUS_OPEN_NOCREATE, &t), -ENOENT);
    assert_shmbus_rc(shmbus_open(bus, "absent", &o, SHMBUS_OPEN_NOCREATE, &t), -ENOENT);
    assert_null(t);
    assert_int_equal(shmbus_list(bus, NULL, e, 4), 0);
    assert_int_equal(du_segments(d->bus, 0), 0);
    assert_shmbus_ok(shmbus_open(bus, "absent", &o, 0, &t));
    shmbus_topic_destroy(t);
    assert_shmbus_ok(shmbus_open(bus, "absent", NULL, SHMBUS_OPEN_NOCREATE, &t));
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* Bad topic names and options are refused; the connection stays usable. */
static void test_daemon_open_bad_name(void **state)
{
    struct du_daemon *d = *state;
    const char *bad[] = {"", ".dot", "sl/ash", "sp ace", "tab\t", "caf\xc3\xa9", "star*"};
    char longest[SHMBUS_TOPIC_NAME_MAX + 2];
    shmbus_topic_opts perm = {.perm = 0644}, cap = {.capacity = 100}, mode = {.mode = 9};
    shmbus_topic *t = NULL;
    shmbus_bus *bus = NULL;
    shmbus_topic_entry e[4];

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_shmbus_rc(shmbus_open(bus, bad[i], NULL, 0, &t), SHMBUS_ERR_BAD_NAME);
    memset(longest, 'x', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    assert_shmbus_rc(shmbus_open(bus, longest, NULL, 0, &t), SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(shmbus_open(bus, "p", &perm, 0, &t), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_open(bus, "c", &cap, 0, &t), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_open(bus, "m", &mode, 0, &t), SHMBUS_ERR_INVALID);
    assert_int_equal(shmbus_list(bus, NULL, e, 4), 0);
    longest[SHMBUS_TOPIC_NAME_MAX] = '\0';
    assert_shmbus_ok(shmbus_open(bus, longest, NULL, 0, &t));
    assert_int_equal(shmbus_list(bus, NULL, e, 4), 1);
    assert_string_equal(e[0].name, longest);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* Groups and slots run out cleanly through the daemon: SHMBUS_ERR_LIMIT
 * once every group is named, SHMBUS_ERR_NO_SLOT once every slot is taken;
 * a refused subscriber holds nothing, and a freed slot is handed out again. */
static void test_daemon_sub_limits(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = 16, .max_subscribers = 3, .max_groups = 2};
    shmbus_sub_opts ga = {.group_name = "a"}, gb = {.group_name = "b"}, gc = {.group_name = "c"};
    shmbus_sub_opts bad = {.group_name = ".a"}, num = {.group = 1};
    shmbus_sub *sub[3] = {NULL}, *x = NULL;
    shmbus_slot_info si[4];
    shmbus_topic *t = NULL;
    shmbus_bus *bus = NULL;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "subs", &o, 0, &t));
    assert_shmbus_ok(shmbus_sub_create(t, &ga, &sub[0]));
    assert_shmbus_ok(shmbus_sub_create(t, &gb, &sub[1]));
    assert_shmbus_rc(shmbus_sub_create(t, &gc, &x), SHMBUS_ERR_LIMIT);
    assert_shmbus_rc(shmbus_sub_create(t, &bad, &x), SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(shmbus_sub_create(t, &num, &x), SHMBUS_ERR_INVALID);
    assert_int_equal(list_entry(bus, "subs").subscribers, 2);
    assert_shmbus_ok(shmbus_sub_create(t, &ga, &sub[2])); /* a second member of "a" */
    assert_shmbus_rc(shmbus_sub_create(t, NULL, &x), SHMBUS_ERR_NO_SLOT);
    assert_int_equal(list_entry(bus, "subs").subscribers, 3);
    assert_int_equal(shmbus_topic_slots_get(t, si, 4), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(si[i].group_name, si[i].group == 2 ? "b" : "a");
    shmbus_sub_destroy(sub[1]);
    assert_int_equal(list_entry(bus, "subs").subscribers, 2);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub[1])); /* its slot, free again */
    for (int i = 0; i < 3; i++)
        shmbus_sub_destroy(sub[i]);
    assert_int_equal(list_entry(bus, "subs").subscribers, 0);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ------------------------------------------------------------- 7: limits */

static const char *const limits[] = {"--max-topics", "3", "--max-clients", "2", "--max-segment",
                                     "1M",           NULL};
static const char *const slot_limit[] = {"--max-slots", "8", NULL};

/* The largest max_msg_size that keeps the segment of @p base within 1 MiB. */
static uint32_t msg_size_fitting(const shmbus_topic_opts *base)
{
    uint32_t lo = 1, hi = 1u << 20;
    uint64_t size;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        shmbus_topic_opts o = *base, eff;

        o.max_msg_size = mid;
        assert_shmbus_ok(sb_admin_plan(&o, &eff, &size));
        if (size <= (1u << 20))
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* --max-segment refuses a segment one step over 1 MiB and takes one at it;
 * --max-topics refuses the 4th; the daemon goes on serving. */
static void test_daemon_limit_topics_and_segment(void **state)
{
    struct du_daemon *d = *state;
    const shmbus_topic_opts small = {.mode = SHMBUS_RELIABLE, .capacity = 16, .max_msg_size = 64};
    shmbus_topic_opts fit = {.mode = SHMBUS_RELIABLE, .capacity = 1024}, over, dflt;
    shmbus_topic *t[4] = {NULL}, *x = NULL;
    shmbus_topic_info info;
    shmbus_topic_entry e[8];
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    shmbus_bus *bus = NULL;
    uint64_t size;

    fit.max_msg_size = msg_size_fitting(&fit);
    over = fit;
    over.max_msg_size++;
    assert_shmbus_ok(sb_admin_plan(&(shmbus_topic_opts){0}, &dflt, &size));
    assert_true(size > (1u << 20)); /* so the default topic is over the limit too */
    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "fit", &fit, 0, &t[0]));
    assert_shmbus_ok(shmbus_topic_info_get(t[0], &info));
    assert_true(info.segment_size <= (1u << 20));
    assert_shmbus_rc(shmbus_open(bus, "over", &over, 0, &x), SHMBUS_ERR_LIMIT);
    assert_shmbus_rc(shmbus_open(bus, "dflt", NULL, 0, &x), SHMBUS_ERR_LIMIT);
    assert_shmbus_ok(shmbus_pub_create(t[0], &pub));
    assert_shmbus_ok(shmbus_sub_create(t[0], NULL, &sub));
    exchange(pub, sub, 0);
    assert_shmbus_ok(shmbus_open(bus, "t2", &small, 0, &t[1]));
    assert_shmbus_ok(shmbus_open(bus, "t3", &small, 0, &t[2]));
    assert_shmbus_rc(shmbus_open(bus, "t4", &small, 0, &x), SHMBUS_ERR_LIMIT);
    assert_shmbus_rc(shmbus_open(bus, "t4", NULL, SHMBUS_OPEN_NOCREATE, &x), -ENOENT);
    assert_shmbus_ok(shmbus_open(bus, "fit", NULL, 0, &t[3])); /* existing: no new topic */
    exchange(pub, sub, 1);
    assert_int_equal(shmbus_list(bus, NULL, e, 8), 3);
    assert_string_equal(e[0].name, "fit");
    assert_string_equal(e[1].name, "t2");
    assert_string_equal(e[2].name, "t3");
    assert_int_equal(du_segments(d->bus, 0), 3);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    for (int i = 0; i < 4; i++)
        shmbus_topic_destroy(t[i]);
    shmbus_close(bus);
}

/* --max-clients 2 refuses a third client until one leaves. */
static void test_daemon_limit_clients(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *a = NULL, *b = NULL, *c = NULL;
    shmbus_topic_entry e[2];
    shmbus_topic *t = NULL;

    assert_shmbus_ok(connect_retry(d->bus, &a));
    assert_shmbus_ok(connect_retry(d->bus, &b));
    assert_shmbus_rc(shmbus_connect(d->bus, &c), SHMBUS_ERR_LIMIT);
    assert_null(c);
    assert_shmbus_rc(shmbus_connect(d->bus, &c), SHMBUS_ERR_LIMIT);
    assert_shmbus_ok(shmbus_open(a, "shared", &(shmbus_topic_opts){.capacity = 16}, 0, &t));
    shmbus_topic_destroy(t);
    assert_int_equal(shmbus_list(b, NULL, e, 2), 1);
    shmbus_close(a);
    assert_shmbus_ok(connect_retry(d->bus, &c)); /* a's place */
    assert_shmbus_rc(shmbus_connect(d->bus, &a), SHMBUS_ERR_LIMIT);
    assert_shmbus_ok(shmbus_open(c, "shared", NULL, SHMBUS_OPEN_NOCREATE, &t));
    shmbus_topic_destroy(t);
    assert_int_equal(shmbus_list(b, NULL, e, 2), 1);
    shmbus_close(b);
    shmbus_close(c);
}

/*
 * --max-slots bounds the slots a topic gets, asked for or by default (64):
 * a request that leaves max_subscribers 0 must not get past a limit of 8
 * that an explicit 16 cannot pass. (Regression: the daemon once checked
 * only the field as sent.)
 */
static void test_daemon_limit_slots_default(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.max_subscribers = 16, .capacity = 16};
    shmbus_topic *t = NULL;
    shmbus_topic_info info;
    shmbus_bus *bus = NULL;
    int rc;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_rc(shmbus_open(bus, "many", &o, 0, &t), SHMBUS_ERR_LIMIT);
    o.max_subscribers = 8;
    assert_shmbus_ok(shmbus_open(bus, "eight", &o, 0, &t));
    shmbus_topic_destroy(t);
    o.max_subscribers = 0;
    rc = shmbus_open(bus, "default", &o, 0, &t);
    if (rc == 0) {
        assert_shmbus_ok(shmbus_topic_info_get(t, &info));
        shmbus_topic_destroy(t);
        shmbus_close(bus);
        if (info.max_subscribers > 8)
            fail_msg("topic with default options got %u slots, over --max-slots 8",
                     info.max_subscribers);
        return;
    }
    shmbus_close(bus);
    assert_shmbus_rc(rc, SHMBUS_ERR_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        DAEMON_TEST(test_daemon_open_mismatch),
        DAEMON_TEST(test_daemon_open_nocreate_missing),
        DAEMON_TEST(test_daemon_open_bad_name),
        DAEMON_TEST(test_daemon_sub_limits),
        DAEMON_TEST_ARGS(test_daemon_limit_topics_and_segment, limits),
        DAEMON_TEST_ARGS(test_daemon_limit_clients, limits),
        DAEMON_TEST_ARGS(test_daemon_limit_slots_default, slot_limit),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("daemon_limits", tests, NULL, NULL);
}
