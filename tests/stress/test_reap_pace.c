/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pace of the daemon's scan (daemon/reaper.c) on a bus large enough
 * that a pass spans many slices: idle, the scan takes a bounded share of
 * a core; a process that dies in the middle of a pass still has its slots
 * freed in every topic, promptly; a stream of exiting clients keeps the
 * scan at a bounded share too.
 */
#include "daemonutil.h"
#include "segfile.h"

/* Topics of the most slots and records the format allows: a pass over
 * them takes tens of slices. */
#define PACE_TOPICS 128
#define PACE_SLOTS  1024u
#define PACE_PUBS   1024u
/* The scan busies at most a tenth of a core (reaper.h
 * SBD_REAPER_IDLE_FACTOR); unpaced, it took 37% on this bus. The bound
 * leaves room for a noisy machine. */
#define PACE_CPU_MAX_PCT 20
#define PACE_SETTLE_MS   500
#define PACE_MEASURE_MS  3000
/* A dead process's slots are freed within this: one round of the walk,
 * tens of ms; seconds only catch a death left to the paced passes. */
#define PACE_REAP_MS 5000
/* Each exit of a client (its hello's pidfd) is a death: a round of the
 * walk, at most half a core (SBD_REAPER_IDLE_FACTOR_DEAD) while one is
 * under way; 43% measured, hellos included. With rounds back to back it
 * took 82%. The bound leaves room for the hellos and a noisy machine. */
#define PACE_EXIT_EVERY_MS     2
#define PACE_EXITS_CPU_MAX_PCT 65

struct pace_exits {
    const char *bus;
    int64_t until;
};

static shmbus_topic_opts pace_opts(void)
{
    return (shmbus_topic_opts){.mode = SHMBUS_RELIABLE,
                               .capacity = 64,
                               .max_msg_size = 8,
                               .max_subscribers = PACE_SLOTS,
                               .max_publishers = PACE_PUBS};
}

/* Open the PACE_TOPICS topics "p.<n>" through @p bus into @p t. */
static void pace_open(shmbus_bus *bus, shmbus_topic **t)
{
    shmbus_topic_opts o = pace_opts();
    char name[32];

    for (int i = 0; i < PACE_TOPICS; i++) {
        snprintf(name, sizeof(name), "p.%d", i);
        assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t[i]));
    }
}

static void test_reap_pace_idle_cpu_bounded(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic *t[PACE_TOPICS];
    int64_t w0, w1, c0, c1, pct;
    shmbus_bus *bus;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    pace_open(bus, t);
    du_sleep_ms(PACE_SETTLE_MS);
    w0 = du_now_ms();
    c0 = du_cpu_ms(d->pid);
    du_sleep_ms(PACE_MEASURE_MS);
    c1 = du_cpu_ms(d->pid);
    w1 = du_now_ms();
    pct = (c1 - c0) * 100 / (w1 - w0);
    print_message("idle daemon, %d topics of %u slots and %u records: %lld%% of a core\n",
                  PACE_TOPICS, PACE_SLOTS, PACE_PUBS, (long long)pct);
    assert_true(pct < PACE_CPU_MAX_PCT);
    for (int i = 0; i < PACE_TOPICS; i++)
        shmbus_topic_destroy(t[i]);
    shmbus_close(bus);
}

struct pace_kid {
    const char *bus;
    int ready; /* write end: one byte once subscribed everywhere */
};

/* Attach every topic's segment directly (no session: only the scan can
 * find the slots) and take a slot in each, then wait to be killed. */
static int kid_everywhere(void *arg)
{
    const struct pace_kid *k = arg;
    char seg[SHMBUS_NAME_MAX + 1];
    shmbus_sub_opts so = {0};

    for (int i = 0; i < PACE_TOPICS; i++) {
        shmbus_topic *t;
        shmbus_sub *s;

        snprintf(seg, sizeof(seg), SBD_SEG_PREFIX "%s.p.%d", k->bus, i);
        if (shmbus_topic_attach(seg, &t) < 0 || shmbus_sub_create(t, &so, &s) < 0)
            return 1;
    }
    if (write(k->ready, "", 1) != 1)
        return 2;
    for (;;)
        pause();
}

/* Slots and records of dead processes freed in @p t so far. */
static uint64_t reaped_sum(shmbus_topic **t)
{
    uint64_t sum = 0;

    for (int i = 0; i < PACE_TOPICS; i++) {
        shmbus_topic_info info;

        assert_shmbus_ok(shmbus_topic_info_get(t[i], &info));
        sum += info.reaped;
    }
    return sum;
}

static void test_reap_pace_death_mid_pass(void **state)
{
    struct du_daemon *d = *state;
    struct pace_kid k = {.bus = d->bus};
    shmbus_topic *t[PACE_TOPICS];
    int pfd[2];
    shmbus_bus *bus;
    int64_t until, took;
    pid_t kid;
    char c;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    pace_open(bus, t);
    assert_int_equal(pipe(pfd), 0);
    k.ready = pfd[1];
    kid = tu_fork(kid_everywhere, &k);
    close(pfd[1]);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    /* Let the scan find the owner (a pidfd) and be somewhere in a pass. */
    du_sleep_ms(PACE_SETTLE_MS);
    until = du_now_ms();
    kill(kid, SIGKILL);
    assert_int_equal(tu_wait(kid), 128 + SIGKILL);
    while (reaped_sum(t) < PACE_TOPICS && du_now_ms() - until < PACE_REAP_MS) {
        du_sleep_ms(1);
    }
    took = du_now_ms() - until;
    print_message("slots of a process killed mid-pass freed in %d topics in %lld ms\n", PACE_TOPICS,
                  (long long)took);
    assert_int_equal(reaped_sum(t), PACE_TOPICS);
    for (int i = 0; i < PACE_TOPICS; i++)
        shmbus_topic_destroy(t[i]);
    shmbus_close(bus);
}

/* Clients that connect (a hello, which the reaper watches) and exit, one
 * every PACE_EXIT_EVERY_MS, until @p arg's deadline (ms, du_now_ms()). */
static int kid_exits(void *arg)
{
    const struct pace_exits *e = arg;

    while (du_now_ms() < e->until) {
        pid_t c = fork();

        if (c < 0)
            return 1;
        if (c == 0) {
            shmbus_bus *bus;

            _exit(shmbus_connect(e->bus, &bus) == 0 ? 0 : 1);
        }
        if (waitpid(c, NULL, 0) != c)
            return 2;
        du_sleep_ms(PACE_EXIT_EVERY_MS);
    }
    return 0;
}

static void test_reap_pace_exits_cpu_bounded(void **state)
{
    struct du_daemon *d = *state;
    struct pace_exits e = {.bus = d->bus};
    shmbus_topic *t[PACE_TOPICS];
    int64_t w0, w1, c0, c1, pct;
    shmbus_bus *bus;
    pid_t kid;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    pace_open(bus, t);
    du_sleep_ms(PACE_SETTLE_MS);
    w0 = du_now_ms();
    c0 = du_cpu_ms(d->pid);
    e.until = w0 + PACE_MEASURE_MS;
    kid = tu_fork(kid_exits, &e);
    assert_int_equal(tu_wait(kid), 0);
    c1 = du_cpu_ms(d->pid);
    w1 = du_now_ms();
    pct = (c1 - c0) * 100 / (w1 - w0);
    print_message("a client exiting every %d ms, %d topics of %u slots and %u records: "
                  "%lld%% of a core\n",
                  PACE_EXIT_EVERY_MS, PACE_TOPICS, PACE_SLOTS, PACE_PUBS, (long long)pct);
    assert_true(pct < PACE_EXITS_CPU_MAX_PCT);
    for (int i = 0; i < PACE_TOPICS; i++)
        shmbus_topic_destroy(t[i]);
    shmbus_close(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reap_pace_idle_cpu_bounded, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_reap_pace_death_mid_pass, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_reap_pace_exits_cpu_bounded, du_setup, du_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("reap_pace", tests, NULL, NULL);
}
