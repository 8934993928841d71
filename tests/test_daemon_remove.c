/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbus_topic_remove() against a real shmbusd (docs/design.md "Removing
 * a topic"): a topic in use is refused without FORCE; with it, a reliable
 * publisher blocked on a full ring and a subscriber asleep in a receive,
 * both in other threads with long timeouts, return
 * SHMBUS_ERR_TOPIC_GONE at once; the name is created again with other
 * options, and a handle of the removed topic never writes into the new
 * one; bad arguments, the daemon's own topic and a missing one are
 * refused, each with its own error. Every test runs its own daemon
 * (daemonutil.h).
 */
#include "daemonclient.h"

#include <pthread.h>
#include <stdatomic.h>

#define RM_CAPACITY 4u
#define RM_GONE_MS  5000 /* far below DC_WAIT_NS: a woken wait, not a timeout */

/* A thread's blocking call and what it returned. */
struct rm_waiter {
    shmbus_pub *pub; /* publish on a full ring, or */
    shmbus_sub *sub; /* receive on an empty one */
    int rc;
    int64_t ms; /* how long it waited */
    /* Set when the call returned (release: rc and ms are stored). */
    _Atomic int done;
};

static void *rm_wait(void *arg)
{
    struct rm_waiter *w = arg;
    uint8_t buf[DC_MSG_MAX] = {0};
    int64_t t0 = du_now_ms();

    if (w->pub != NULL)
        w->rc = shmbus_publish(w->pub, buf, 8, DC_WAIT_NS);
    else
        w->rc = shmbus_recv(w->sub, buf, sizeof(buf), NULL, DC_WAIT_NS);
    w->ms = du_now_ms() - t0;
    atomic_store_explicit(&w->done, 1, memory_order_release);
    return NULL;
}

/* Is the thread's call still waiting after a while? */
static void rm_still_waiting(struct rm_waiter *w)
{
    du_sleep_ms(200);
    /* acquire: pairs with rm_wait()'s release. */
    assert_int_equal(atomic_load_explicit(&w->done, memory_order_acquire), 0);
}

static void test_remove_force_wakes_waiters(void **state)
{
    struct du_daemon *d = *state;
    const shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = RM_CAPACITY, .max_msg_size = DC_MSG_MAX};
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT};
    struct rm_waiter wp = {0}, ws = {0};
    shmbus_topic *full = NULL, *idle = NULL;
    shmbus_sub *lag = NULL;
    shmbus_bus *bus = NULL, *admin = NULL;
    pthread_t tp, ts;
    uint8_t buf[8] = {0};

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_connect(d->bus, &admin));
    /* "full": a subscriber that never reads holds the publisher back. */
    assert_shmbus_ok(shmbus_open(bus, "full", &o, 0, &full));
    assert_shmbus_ok(shmbus_sub_create(full, &so, &lag));
    assert_shmbus_ok(shmbus_pub_create(full, &wp.pub));
    for (unsigned i = 0; i < RM_CAPACITY; i++)
        assert_shmbus_ok(shmbus_publish(wp.pub, buf, sizeof(buf), 0));
    assert_shmbus_rc(shmbus_publish(wp.pub, buf, sizeof(buf), 0), -EAGAIN);
    /* "idle": a subscriber asleep on an empty ring. */
    assert_shmbus_ok(shmbus_open(bus, "idle", &o, 0, &idle));
    assert_shmbus_ok(shmbus_sub_create(idle, &so, &ws.sub));
    assert_int_equal(pthread_create(&tp, NULL, rm_wait, &wp), 0);
    assert_int_equal(pthread_create(&ts, NULL, rm_wait, &ws), 0);
    rm_still_waiting(&wp);
    rm_still_waiting(&ws);
    /* In use: refused, and both still wait. */
    assert_shmbus_rc(shmbus_topic_remove(admin, "full", 0), SHMBUS_ERR_BUSY);
    assert_shmbus_rc(shmbus_topic_remove(admin, "idle", 0), SHMBUS_ERR_BUSY);
    rm_still_waiting(&wp);
    assert_shmbus_ok(shmbus_topic_remove(admin, "full", SHMBUS_REMOVE_FORCE));
    assert_shmbus_ok(shmbus_topic_remove(admin, "idle", SHMBUS_REMOVE_FORCE));
    pthread_join(tp, NULL);
    pthread_join(ts, NULL);
    assert_shmbus_rc(wp.rc, SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_rc(ws.rc, SHMBUS_ERR_TOPIC_GONE);
    assert_true(wp.ms < RM_GONE_MS && ws.ms < RM_GONE_MS);
    assert_shmbus_rc(shmbus_recv(lag, buf, sizeof(buf), NULL, 0), SHMBUS_ERR_TOPIC_GONE);
    shmbus_sub_destroy(lag);
    shmbus_sub_destroy(ws.sub);
    shmbus_pub_destroy(wp.pub);
    shmbus_topic_destroy(full);
    shmbus_topic_destroy(idle);
    shmbus_close(admin);
    shmbus_close(bus);
}

/* The name again at once, with other options; the old handle's publisher
 * gets TOPIC_GONE and the new topic never sees its message. */
static void test_remove_recreate(void **state)
{
    struct du_daemon *d = *state;
    const shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = RM_CAPACITY, .max_msg_size = DC_MSG_MAX};
    const shmbus_topic_opts o2 = {.mode = SHMBUS_LOSSY, .capacity = 64, .max_msg_size = 256};
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT};
    shmbus_topic *old = NULL, *t = NULL;
    shmbus_pub *p = NULL;
    shmbus_sub *s = NULL;
    shmbus_topic_info info;
    shmbus_bus *bus = NULL;
    uint8_t buf[DC_MSG_MAX] = {0};

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "again", &o, 0, &old));
    assert_shmbus_ok(shmbus_pub_create(old, &p));
    assert_shmbus_ok(shmbus_topic_remove(bus, "again", SHMBUS_REMOVE_FORCE));
    assert_shmbus_ok(shmbus_open(bus, "again", &o2, 0, &t));
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    assert_int_equal(info.capacity, 64);
    assert_int_equal(info.mode, SHMBUS_LOSSY);
    assert_shmbus_ok(shmbus_sub_create(t, &so, &s));
    assert_shmbus_rc(shmbus_publish(p, buf, 8, 0), SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_rc(shmbus_recv(s, buf, sizeof(buf), NULL, 0), -EAGAIN);
    assert_int_equal(list_entry(bus, "again").capacity, 64);
    shmbus_sub_destroy(s);
    shmbus_pub_destroy(p);
    shmbus_topic_destroy(t);
    shmbus_topic_destroy(old);
    shmbus_close(bus);
}

/* Each refusal its own error, and nothing removed. */
static void test_remove_refusals(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic *t = NULL;
    shmbus_bus *bus = NULL;
    char longname[SHMBUS_TOPIC_NAME_MAX + 2];

    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "kept", NULL, 0, &t));
    shmbus_topic_destroy(t);
    assert_shmbus_rc(shmbus_topic_remove(NULL, "kept", 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_topic_remove(bus, NULL, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_topic_remove(bus, "kept", 2), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_topic_remove(bus, ".kept", 0), SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(shmbus_topic_remove(bus, longname, 0), SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(shmbus_topic_remove(bus, SBD_EVENTS_TOPIC, SHMBUS_REMOVE_FORCE),
                     SHMBUS_ERR_DENIED);
    assert_shmbus_rc(shmbus_topic_remove(bus, "missing", 0), -ENOENT);
    assert_string_equal(list_entry(bus, "kept").name, "kept");
    assert_shmbus_ok(shmbus_topic_remove(bus, "kept", 0));
    assert_shmbus_rc(shmbus_topic_remove(bus, "kept", 0), -ENOENT);
    shmbus_close(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        DAEMON_TEST(test_remove_force_wakes_waiters),
        DAEMON_TEST(test_remove_recreate),
        DAEMON_TEST(test_remove_refusals),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("daemon_remove", tests, NULL, NULL);
}
