/*
 * Daemon restarts (docs/design.md "Restart"): a stop, by signal or crash,
 * never takes a segment from a process that uses it; the next daemon
 * adopts what was kept and clients carry on through it. Slots released
 * while no daemon was there are freed, not left taken for the life of the
 * process. Every test runs its own daemon (daemonutil.h) and bounces it.
 */
#include "daemonutil.h"

#include "registry/admin.h"

#define WAIT_NS  10000000000ll /* only a hang reaches it */
#define READY_MS 30000
#define MSG_MAX  64
#define CAP      16

static void open_topic(const char *bus_name, const char *name, uint32_t mode, shmbus_bus **bus,
                       shmbus_topic **t)
{
    shmbus_topic_opts o = {.mode = mode, .capacity = CAP, .max_msg_size = MSG_MAX};

    assert_shmbus_ok(shmbus_connect(bus_name, bus));
    assert_shmbus_ok(shmbus_open(*bus, name, &o, 0, t));
}

/* Subscriber slots of @p t taken (in any state but FREE) by process @p pid. */
static int slots_of(const shmbus_topic *t, pid_t pid)
{
    shmbus_topic_info info;
    uint32_t opid;
    uint64_t start;
    int n = 0;

    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    for (uint32_t i = 0; i < info.max_subscribers; i++)
        n += sb_admin_owner(t, SB_ADMIN_SLOT, i, &opid, &start) && (pid_t)opid == pid;
    return n;
}

/* A subscriber destroyed while no daemon serves the bus: its slot is free
 * at once, not taken (INIT) for as long as this process lives. */
static void test_restart_sub_destroyed_without_daemon(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;

    open_topic(d->bus, "left", SHMBUS_RELIABLE, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_int_equal(slots_of(t, getpid()), 1);
    du_stop_sig(d, SIGKILL);
    shmbus_sub_destroy(sub);
    assert_int_equal(slots_of(t, getpid()), 0);
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(shmbus_bus_check(bus));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_int_equal(slots_of(t, getpid()), 1);
    shmbus_sub_destroy(sub);
    assert_int_equal(slots_of(t, getpid()), 0);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A subscriber destroyed by the first call after a restart (which
 * reconnects inside): the new daemon, which never heard of the slot,
 * adopts it and frees it. */
static void test_restart_sub_destroyed_first_after_restart(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    shmbus_topic_entry e;

    open_topic(d->bus, "first", SHMBUS_RELIABLE, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    du_stop_sig(d, SIGKILL);
    assert_int_equal(du_launch(d, NULL), 0);
    shmbus_sub_destroy(sub);
    assert_int_equal(slots_of(t, getpid()), 0);
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 1);
    assert_int_equal(e.subscribers, 0);
    assert_int_equal(e.clients, 1);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

#define RESTART_TEST(f) cmocka_unit_test_setup_teardown(f, du_setup, du_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        RESTART_TEST(test_restart_sub_destroyed_without_daemon),
        RESTART_TEST(test_restart_sub_destroyed_first_after_restart),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("restart", tests, NULL, NULL);
}
