/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sleepers cost publishers nothing they need not pay (wait.c, admin.c): a
 * sleeper killed asleep stops costing publishers system calls; a burst
 * wakes a sleeper once, a lazy one never; and a wake-up left pending by a
 * publisher, a sleeper, a group member or a lazy subscriber that died is
 * not lost, the daemon settles it. Every test runs its own daemon
 * (daemonutil.h); children report through their exit status; wake-ups are
 * counted with strace on the shmbus tool.
 */
#include "stalltest.h"

/* Publish 200 messages with the tool, counting its wake-ups. */
static int tool_publish_wakes(const char *bus, const char *topic)
{
    const char *args[8 + 200] = {"--bus", bus, "pub", topic, "--"};
    char msgs[200][8];
    int n = 5;

    for (int i = 0; i < 200; i++) {
        snprintf(msgs[i], sizeof(msgs[i]), "m%d", i);
        args[n++] = msgs[i];
    }
    args[n] = NULL;
    return futex_wakes_of(args);
}

/* A subscriber killed asleep in a receive: once the daemon reaped it, a
 * publisher's commits make no system call again (its count was taken
 * back), while a live sleeper still gets its wake-ups. */
static void test_stall_killed_sleeper_costs_nothing(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = topic_opts(SHMBUS_LOSSY, 0);
    struct kid k = {.bus = d->bus, .topic = "sleepy"};
    shmbus_bus *bus;
    shmbus_topic *t;
    pid_t kid;

    open_topic(d->bus, k.topic, &o, &bus, &t);
    kid = du_fork_ready(kid_receiver, &k, &k.ready);
    wait_sleepers(d->bus, k.topic, 1);
    /* The counter works: a live sleeper is woken. */
    assert_true(tool_publish_wakes(d->bus, k.topic) > 0);
    wait_sleepers(d->bus, k.topic, 1);
    kill(kid, SIGKILL);
    tu_wait(kid);
    wait_count(t, reaped_of, 1);
    wait_sleepers(d->bus, k.topic, 0);
    assert_int_equal(tool_publish_wakes(d->bus, k.topic), 0);
    close_topic(bus, t);
}

/* Fork a receiver that goes to sleep, counted with the others, and stop
 * it there (SIGSTOP): it stays counted, and never runs to clear the
 * wake-pending word. */
static pid_t stopped_sleeper(struct kid *k, uint32_t sleepers)
{
    pid_t kid = du_fork_ready(kid_receiver, k, &k->ready);
    int st;

    wait_sleepers(k->bus, k->topic, sleepers);
    kill(kid, SIGSTOP);
    assert_int_equal(waitpid(kid, &st, WUNTRACED), kid);
    assert_true(WIFSTOPPED(st));
    return kid;
}

static void sleeper_end(pid_t kid)
{
    kill(kid, SIGKILL);
    tu_wait(kid);
}

/* A burst wakes a sleeper once until it has run again: 200 publishes to a
 * sleeper that cannot run make one wake-up (ring.h data_pending). */
static void test_stall_burst_wakes_sleeper_once(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = topic_opts(SHMBUS_LOSSY, 0);
    struct kid k = {.bus = d->bus, .topic = "burst"};
    shmbus_bus *bus;
    shmbus_topic *t;
    pid_t kid;

    open_topic(d->bus, k.topic, &o, &bus, &t);
    kid = stopped_sleeper(&k, 1);
    assert_int_equal(tool_publish_wakes(d->bus, k.topic), 1);
    assert_int_equal(tool_publish_wakes(d->bus, k.topic), 0);
    sleeper_end(kid);
    close_topic(bus, t);
}

/* Publishers never wake a lazy subscriber: with only a lazy one asleep, 200
 * publishes make no futex call; with a normal one asleep too (stopped, so
 * that the wake-up stays pending), one. */
static void test_stall_lazy_sleeper_costs_nothing(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = topic_opts(SHMBUS_LOSSY, 0);
    struct kid lazy = {.bus = d->bus, .topic = "lazy", .lazy = 1};
    struct kid eager = {.bus = d->bus, .topic = "lazy"};
    shmbus_bus *bus;
    shmbus_topic *t;
    pid_t lkid, ekid;

    open_topic(d->bus, lazy.topic, &o, &bus, &t);
    lkid = du_fork_ready(kid_receiver, &lazy, &lazy.ready);
    du_sleep_ms(50); /* asleep, uncounted */
    wait_sleepers(d->bus, lazy.topic, 0);
    assert_int_equal(tool_publish_wakes(d->bus, lazy.topic), 0);
    ekid = stopped_sleeper(&eager, 1);
    assert_int_equal(tool_publish_wakes(d->bus, lazy.topic), 1);
    sleeper_end(ekid);
    sleeper_end(lkid);
    close_topic(bus, t);
}

/* Set the wake-pending word, as a publisher does before it wakes, and die
 * there (killed) with its record ACTIVE. */
static int kid_pending_publisher(void *arg)
{
    const struct kid *k = arg;
    struct sb_shm_header *h;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    size_t len;

    if (shmbus_connect(k->bus, &bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(bus, k->topic, NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        return KID_OPEN;
    if (shmbus_pub_create(t, &pub) < 0)
        return KID_PUB;
    h = header_map(k->bus, k->topic, &len);
    atomic_store(&h->data_pending, 1);
    if (du_signal(k->ready) < 0)
        return KID_PIPE;
    pause();
    return KID_WRONG;
}

/* Kill @p victim (run by @p fn on @p victim's topic) after the wake-pending
 * word was set with a normal sleeper stopped, so that nobody awake can
 * clear it: the daemon, reaping the victim, must. With @p victim_sets the
 * victim sets the word itself, so the sleeper must be stopped first; else
 * the test sets it for the victim, as the victim would have. */
static void killed_pending_case(struct du_daemon *d, struct kid *victim, int (*fn)(void *),
                                int victim_sets)
{
    shmbus_topic_opts o = topic_opts(SHMBUS_LOSSY, 0);
    struct kid k = {.bus = d->bus, .topic = victim->topic};
    struct sb_shm_header *h;
    shmbus_bus *bus;
    shmbus_topic *t;
    pid_t kid, vkid;
    size_t len;

    open_topic(d->bus, k.topic, &o, &bus, &t);
    h = header_map(d->bus, k.topic, &len);
    if (victim_sets) {
        kid = stopped_sleeper(&k, 1);
        vkid = du_fork_ready(fn, victim, &victim->ready);
        assert_int_equal(atomic_load(&h->data_pending), 1);
    } else {
        vkid = du_fork_ready(fn, victim, &victim->ready);
        kid = stopped_sleeper(&k, 1);
        /* What the victim did before it was killed. */
        atomic_store(&h->data_pending, 1);
    }
    kill(vkid, SIGKILL);
    tu_wait(vkid);
    wait_count(t, reaped_of, 1);
    assert_int_equal(atomic_load(&h->data_pending), 0);
    assert_int_equal(tool_publish_wakes(d->bus, k.topic), 1);
    sleeper_end(kid);
    munmap(h, len);
    close_topic(bus, t);
}

/* A publisher killed between setting the wake-pending word and waking
 * does not silence the wake-ups of a sleeper that cannot clear it: the
 * daemon, reaping it, clears the word and wakes. */
static void test_stall_killed_pending_publisher(void **state)
{
    struct du_daemon *d = *state;
    struct kid p = {.bus = d->bus, .topic = "pendpub"};

    killed_pending_case(d, &p, kid_pending_publisher, 1);
}

/* A sleeper a wake-up chose, killed before it ran (so before it cleared
 * the wake-pending word or woke the others): the daemon, reaping it,
 * clears the word, and the next publish wakes the sleeper left. */
static void test_stall_killed_woken_sleeper(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = topic_opts(SHMBUS_LOSSY, 0);
    struct kid k1 = {.bus = d->bus, .topic = "pendsub"};
    struct kid k2 = {.bus = d->bus, .topic = "pendsub"};
    struct sb_shm_header *h;
    shmbus_bus *bus;
    shmbus_topic *t;
    pid_t kid1, kid2;
    size_t len;

    open_topic(d->bus, k1.topic, &o, &bus, &t);
    h = header_map(d->bus, k1.topic, &len);
    kid1 = stopped_sleeper(&k1, 1);
    kid2 = stopped_sleeper(&k2, 2);
    assert_int_equal(tool_publish_wakes(d->bus, k1.topic), 1);
    assert_int_equal(atomic_load(&h->data_pending), 1);
    sleeper_end(kid1);
    wait_count(t, reaped_of, 1);
    wait_sleepers(d->bus, k1.topic, 1);
    assert_int_equal(atomic_load(&h->data_pending), 0);
    assert_int_equal(tool_publish_wakes(d->bus, k1.topic), 1);
    sleeper_end(kid2);
    munmap(h, len);
    close_topic(bus, t);
}

/* Join group k->group, say so, and wait to be killed. */
static int kid_member_pause(void *arg)
{
    const struct kid *k = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    int rc = kid_sub(k, &bus, &t, &sub);

    if (rc != KID_OK)
        return rc;
    if (du_signal(k->ready) < 0)
        return KID_PIPE;
    pause();
    return KID_WRONG;
}

/* Group members wake readers too (a seat, a message given back: group.c,
 * ack.c), through the wake-pending word. One killed between setting it
 * and waking, not asleep, does not silence the wake-ups of a sleeper that
 * cannot clear the word: the daemon, reaping its slot, clears it. */
static void test_stall_killed_pending_member(void **state)
{
    struct du_daemon *d = *state;
    struct kid m = {.bus = d->bus, .topic = "pendmem", .group = "g"};

    killed_pending_case(d, &m, kid_member_pause, 0);
}

/* A lazy subscriber sleeps uncounted, yet in a wait set it can take a
 * publisher's wake-up (futex_waitv has no bitset) and must pass it on. One
 * killed there leaves the word set with nothing in its slot to say it
 * slept: the daemon, reaping it, clears the word all the same. */
static void test_stall_killed_lazy_sleeper(void **state)
{
    struct du_daemon *d = *state;
    struct kid l = {.bus = d->bus, .topic = "pendlazy", .lazy = 1};

    killed_pending_case(d, &l, kid_receiver, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stall_killed_sleeper_costs_nothing, du_setup,
                                        du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_burst_wakes_sleeper_once, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_lazy_sleeper_costs_nothing, du_setup,
                                        du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_killed_pending_publisher, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_killed_woken_sleeper, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_killed_pending_member, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_killed_lazy_sleeper, du_setup, du_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("stall_wake", tests, NULL, NULL);
}
