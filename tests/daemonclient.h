/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client of a test's daemon (daemonutil.h) for the daemon's end-to-end
 * tests (test_daemon, test_daemon_raw): connecting while a disconnect is
 * still being handled, listing a topic, a round trip through a topic,
 * and a client that must keep working while others misbehave. Include
 * instead of daemonutil.h.
 */
#ifndef SHMBUS_TESTS_DAEMONCLIENT_H
#define SHMBUS_TESTS_DAEMONCLIENT_H

#include "daemonutil.h"

/* A test with its own daemon, started with extra arguments or not. */
#define DAEMON_TEST(f) cmocka_unit_test_setup_teardown(f, du_setup, du_teardown)
#define DAEMON_TEST_ARGS(f, extra)                                                                 \
    cmocka_unit_test_prestate_setup_teardown(f, du_setup, du_teardown, (void *)(extra))

#define DC_MSG_MAX   64
#define DC_WAIT_NS   30000000000ll /* publish/receive bound: only a hang reaches it */
#define DC_SETTLE_MS 10000         /* the daemon handles a disconnect within this */

/* Connect, retrying while the daemon still counts a client that just left
 * (it handles the disconnect asynchronously). */
static inline int connect_retry(const char *bus, shmbus_bus **out)
{
    int64_t end = du_now_ms() + DC_SETTLE_MS;
    int rc;

    while ((rc = shmbus_connect(bus, out)) == SHMBUS_ERR_LIMIT && du_now_ms() < end)
        du_sleep_ms(10);
    return rc;
}

/* The daemon's entry for @p topic; fails the test when it is not listed. */
static inline shmbus_topic_entry list_entry(shmbus_bus *bus, const char *topic)
{
    shmbus_topic_entry e[64];
    int n = shmbus_list(bus, NULL, e, 64);

    assert_shmbus_ok(n);
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].name, topic) == 0)
            return e[i];
    fail_msg("topic %s not listed", topic);
    return e[0];
}

/* Publish a self-checking message @p seq and receive it on @p sub. */
static inline void exchange(shmbus_pub *pub, shmbus_sub *sub, uint64_t seq)
{
    uint8_t buf[DC_MSG_MAX];
    struct tu_payload p = {0};
    int n;

    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 3, seq, 16 + seq % 40), DC_WAIT_NS));
    n = shmbus_recv(sub, buf, sizeof(buf), NULL, DC_WAIT_NS);
    assert_shmbus_ok(n);
    assert_true(tu_check(buf, (uint32_t)n, &p));
    assert_int_equal(p.seq, seq);
}

/* ------------------------------------------------------ a client that works */

/* A normal client that must keep working while others misbehave. */
struct alive {
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_sub *sub;
    uint64_t seq;
};

static inline void alive_open(struct alive *a, const char *bus)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 16, .max_msg_size = DC_MSG_MAX};

    memset(a, 0, sizeof(*a));
    assert_shmbus_ok(connect_retry(bus, &a->bus));
    assert_shmbus_ok(shmbus_open(a->bus, "alive", &o, 0, &a->t));
    assert_shmbus_ok(shmbus_pub_create(a->t, &a->pub));
    assert_shmbus_ok(shmbus_sub_create(a->t, NULL, &a->sub));
}

/* The daemon still answers (list, open with a descriptor) and the topic
 * still carries messages. */
static inline void alive_check(struct alive *a)
{
    shmbus_topic *t2 = NULL;

    assert_int_equal(list_entry(a->bus, "alive").subscribers, 1);
    assert_shmbus_ok(shmbus_open(a->bus, "alive", NULL, SHMBUS_OPEN_NOCREATE, &t2));
    shmbus_topic_destroy(t2);
    exchange(a->pub, a->sub, a->seq++);
}

static inline void alive_close(struct alive *a)
{
    shmbus_sub_destroy(a->sub);
    shmbus_pub_destroy(a->pub);
    shmbus_topic_destroy(a->t);
    shmbus_close(a->bus);
    memset(a, 0, sizeof(*a));
}

/* Connect a raw socket, failing the test if that is impossible. */
static inline int raw_open(const struct du_daemon *d)
{
    int s = du_raw_connect(d->sock);

    if (s < 0)
        fail_msg("raw connect: %s", strerror(-s));
    return s;
}

#endif
