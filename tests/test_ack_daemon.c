/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Work queues end to end, the daemon's part (daemon/control_cmd.c,
 * daemon/deadletter.c, daemon/stall.c): a real shmbusd per test
 * (daemonutil.h) and acknowledging members in this process and in
 * children. A member killed between take and ack has its message
 * redelivered; a poison message reaches the dead-letter topic, default or
 * named, with its metadata, and leaves the original topic's table; a
 * dead-letter topic whose segment the registry had not served yet is
 * served with its own options; a dead-letter topic too small, full,
 * exclusive or impossible to create keeps it pending, counted, until the
 * cause is gone; the group's kind is fixed by its first member; a
 * restarted daemon still dead-letters to the right topic; the stall
 * timeout evicts a member that holds a message, gives back one held in
 * the name of no member, and dead-letters a returned one that holds
 * publishers back. Children are killed and reaped by the teardown on
 * every path.
 */
#include "daemonclient.h"

#include "registry/deadletter.h"
#include "ring/ring.h"
#include "shm/layout.h"

#define WAIT_NS  10000000000ll /* only a hang reaches it */
#define WAIT_MS  10000
#define CAP      8
#define MSG_MAX  64
#define STALL_MS 300

/* Open topic @p name on a new connection to @p bus_name. */
static void open_topic(const char *bus_name, const char *name, uint32_t cap, uint32_t max_msg,
                       uint32_t stall_ms, shmbus_bus **bus, shmbus_topic **t)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                           .capacity = cap,
                           .max_msg_size = max_msg,
                           .stall_timeout_ms = stall_ms};

    assert_shmbus_ok(connect_retry(bus_name, bus));
    assert_shmbus_ok(shmbus_open(*bus, name, &o, 0, t));
}

/* An acknowledging member of group @p group of @p t. @return as
 * shmbus_sub_create(). */
static int ack_sub(shmbus_topic *t, const char *group, uint32_t max_deliveries,
                   const char *dead_letter, shmbus_sub **sub)
{
    shmbus_sub_opts o = {.group_name = group,
                         .flags = SHMBUS_SUB_ACK,
                         .max_deliveries = max_deliveries,
                         .dead_letter = dead_letter,
                         .spin_ns = -1};

    return shmbus_sub_create(t, &o, sub);
}

/* The block of the group named @p name of @p t, in its segment. */
static struct sb_shm_group *group_of(shmbus_topic *t, const char *name)
{
    for (uint32_t g = 0; g < t->seg.g.max_groups; g++)
        if (strcmp(t->seg.groups[g].name, name) == 0)
            return &t->seg.groups[g];
    fail_msg("no group %s", name);
    return NULL;
}

/* Wait until counter @p c reaches @p want. @return its value. */
static uint64_t await_count(_Atomic uint64_t *c, uint64_t want)
{
    int64_t end = du_now_ms() + WAIT_MS;
    uint64_t v;

    /* relaxed: a counter, polled */
    while ((v = atomic_load_explicit(c, memory_order_relaxed)) < want && du_now_ms() < end)
        du_sleep_ms(5);
    return v;
}

/* Publish message @p n (its number in the payload) with @p timeout_ns. */
static int publish_n(shmbus_pub *pub, uint32_t n, int64_t timeout_ns)
{
    char buf[MSG_MAX];
    int len = snprintf(buf, sizeof(buf), "job-%u", n);

    return shmbus_publish(pub, buf, (size_t)len, timeout_ns);
}

/* Receive one message on @p sub into @p m (payload in @p buf). */
static void recv_one(shmbus_sub *sub, char *buf, shmbus_msg *m)
{
    int n = shmbus_recv(sub, buf, MSG_MAX, m, WAIT_NS);

    assert_shmbus_ok(n);
    buf[n] = '\0';
}

/* Wait until the client's reconnect to a restarted daemon goes through. */
static void await_reconnect(shmbus_bus *bus)
{
    int rc = SHMBUS_ERR_DAEMON_LOST;

    for (int64_t end = du_now_ms() + WAIT_MS; rc != 0 && du_now_ms() < end; du_sleep_ms(5))
        rc = shmbus_bus_check(bus);
    assert_shmbus_ok(rc);
}

/* Publishes that fit now (timeout 0), up to @p most: how far the ring's
 * gate lets a publisher go. */
static int room(shmbus_pub *pub, int most)
{
    int n = 0;

    while (n < most && publish_n(pub, 1000u + (uint32_t)n, 0) == 0)
        n++;
    return n;
}

/* A poll callback that keeps nothing (a poll that must deliver none). */
static int ignore(const shmbus_msg *m, void *arg)
{
    (void)m;
    (void)arg;
    return 0;
}

/* Receive a dead letter on @p dlq and parse it into @p d (its bytes in
 * @p buf). */
static void recv_dead(shmbus_sub *dlq, uint8_t *buf, size_t cap, shmbus_dead_letter *d)
{
    int n = shmbus_recv(dlq, buf, cap, NULL, WAIT_NS);

    assert_shmbus_ok(n);
    assert_shmbus_ok(shmbus_dead_letter_parse(buf, (size_t)n, d));
}

/* A subscriber of the daemon's events topic, on @p bus. */
static shmbus_sub *events_sub(shmbus_bus *bus, shmbus_topic **t)
{
    shmbus_sub *sub;

    assert_shmbus_ok(shmbus_open(bus, "_shmbus.events", NULL, SHMBUS_OPEN_NOCREATE, t));
    assert_shmbus_ok(shmbus_sub_create(*t, NULL, &sub));
    return sub;
}

/* Read events on @p ev until one holds both @p a and @p b; fails the
 * test if none comes. */
static void await_event(shmbus_sub *ev, const char *a, const char *b)
{
    char line[1025];
    int64_t end = du_now_ms() + WAIT_MS;

    while (du_now_ms() < end) {
        int n = shmbus_recv(ev, line, sizeof(line) - 1, NULL, 100000000ll);

        if (n == SHMBUS_ERR_TIMEOUT)
            continue;
        assert_true(n >= 0);
        line[n] = '\0';
        if (strstr(line, a) != NULL && strstr(line, b) != NULL)
            return;
    }
    fail_msg("no event with %s and %s", a, b);
}

/* Take the next message on @p sub and nack it at once, @p times times,
 * checking its deliveries count up from @p first. @return its seq. */
static uint64_t nack_times(shmbus_sub *sub, uint32_t first, uint32_t times)
{
    char buf[MSG_MAX + 1];
    shmbus_msg m;
    uint64_t seq = UINT64_MAX;

    for (uint32_t i = 0; i < times; i++) {
        recv_one(sub, buf, &m);
        assert_true(seq == UINT64_MAX || m.seq == seq);
        seq = m.seq;
        assert_int_equal(m.deliveries, first + i);
        assert_shmbus_ok(shmbus_nack(sub, m.seq, 0));
    }
    return seq;
}

/* ------------------------------------------------ a member killed mid-job */

struct worker {
    const char *bus;
    int ready;  /* pipe: one byte once subscribed */
    int report; /* pipe: the seq of the message it took */
};

/* Take one message and never acknowledge it: wait to be killed. */
static int worker_take_and_hang(void *arg)
{
    struct worker *w = arg;
    char buf[MSG_MAX];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    shmbus_msg m;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = CAP, .max_msg_size = MSG_MAX};
    shmbus_sub_opts so = {.group_name = "w", .flags = SHMBUS_SUB_ACK};

    if (connect_retry(w->bus, &bus) < 0 || shmbus_open(bus, "jobs", &o, 0, &t) < 0 ||
        shmbus_sub_create(t, &so, &sub) < 0)
        return 2;
    if (du_signal(w->ready) < 0)
        return 3;
    if (shmbus_recv(sub, buf, sizeof(buf), &m, WAIT_NS) < 0 || m.deliveries != 1)
        return 4;
    if (write(w->report, &m.seq, sizeof(m.seq)) != (ssize_t)sizeof(m.seq))
        return 5;
    for (;;)
        pause();
}

/* kill -9 between take and ack: the reaper gives the message back, and
 * another member gets it, delivered twice; the dead member's late ack
 * cannot exist, and the publisher is held until the redelivery is acked. */
static void test_ack_daemon_kill_redelivers(void **state)
{
    struct du_daemon *d = *state;
    struct worker w = {.bus = d->bus};
    char buf[MSG_MAX + 1];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_sub *sub;
    shmbus_msg m;
    uint64_t seq;
    int rep[2];
    pid_t kid;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
    w.report = rep[1];
    kid = du_fork_ready(worker_take_and_hang, &w, &w.ready);
    close(rep[1]);
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    assert_int_equal(du_read_ms(rep[0], &seq, sizeof(seq), WAIT_MS), (int)sizeof(seq));
    close(rep[0]);
    assert_int_equal(seq, 0);
    /* Joined after the take: the group's cursor is past seq 0, which only
     * a redelivery can bring. */
    assert_shmbus_ok(ack_sub(t, "w", 0, NULL, &sub));
    assert_int_equal(shmbus_poll(sub, ignore, NULL, 1), 0);
    kill(kid, SIGKILL);
    assert_int_equal(du_wait_ms(kid, WAIT_MS), 128 + SIGKILL);
    recv_one(sub, buf, &m);
    assert_int_equal(m.seq, 0);
    assert_int_equal(m.deliveries, 2);
    assert_string_equal(buf, "job-0");
    assert_true(await_count(&group_of(t, "w")->redelivered, 1) >= 1);
    /* Held by the redelivery: CAP - 1 more fit, not CAP. */
    assert_int_equal(room(pub, CAP), CAP - 1);
    assert_shmbus_ok(shmbus_ack(sub, 0));
    assert_int_equal(room(pub, CAP), 1);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ---------------------------------------------------------- dead letters */

/* A poison message, nacked max_deliveries times, reaches <topic>.dlq: the
 * daemon creates that topic reliable with the original's capacity and
 * room for the envelope. Read there, it carries its original topic, seq,
 * publish time, publisher, group, deliveries and reason, and it is gone
 * from the original topic's table: the publisher is held no more. */
static void test_ack_daemon_poison_dead_letters(void **state)
{
    struct du_daemon *d = *state;
    char buf[MSG_MAX + 1];
    uint8_t dl[MSG_MAX + SB_DL_ROOM];
    shmbus_topic *t, *dt, *et;
    shmbus_dead_letter x;
    shmbus_topic_entry e;
    shmbus_bus *bus;
    shmbus_pub *pub;
    shmbus_sub *sub, *dsub, *ev;
    shmbus_msg m;
    uint64_t seq;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    ev = events_sub(bus, &et);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 3, NULL, &sub));
    /* The first poison message makes the daemon create jobs.dlq. */
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    assert_int_equal(nack_times(sub, 1, 3), 0);
    assert_int_equal(await_count(&group_of(t, "w")->dead_lettered, 1), 1);
    await_event(ev, "\"event\":\"dead_letter\"",
                "\"topic\":\"jobs\",\"group\":\"w\",\"seq\":0,\"deliveries\":3,"
                "\"reason\":\"nacked\",\"dead_letter\":\"jobs.dlq\"");
    shmbus_sub_destroy(ev);
    shmbus_topic_destroy(et);
    e = list_entry(bus, "jobs.dlq");
    assert_int_equal(e.mode, SHMBUS_RELIABLE);
    assert_int_equal(e.capacity, CAP);
    assert_int_equal(e.max_msg_size, MSG_MAX + SB_DL_ROOM);
    /* The next one is read there. */
    assert_shmbus_ok(shmbus_open(bus, "jobs.dlq", NULL, SHMBUS_OPEN_NOCREATE, &dt));
    assert_shmbus_ok(shmbus_sub_create(dt, NULL, &dsub));
    assert_shmbus_ok(publish_n(pub, 1, WAIT_NS));
    recv_one(sub, buf, &m);
    assert_int_equal(m.deliveries, 1);
    assert_shmbus_ok(shmbus_nack(sub, m.seq, 0));
    seq = nack_times(sub, 2, 2);
    assert_int_equal(seq, m.seq);
    recv_dead(dsub, dl, sizeof(dl), &x);
    assert_string_equal(x.topic, "jobs");
    assert_string_equal(x.group, "w");
    assert_int_equal(x.seq, seq);
    assert_true(x.timestamp_ns == m.timestamp_ns);
    assert_true(x.dead_ns >= m.timestamp_ns);
    assert_int_equal(x.publisher_pid, getpid());
    assert_int_equal(x.deliveries, 3);
    assert_int_equal(x.reason, SHMBUS_DL_NACKED);
    assert_int_equal(x.len, 5);
    assert_memory_equal(x.data, "job-1", 5);
    assert_int_equal(await_count(&group_of(t, "w")->dead_lettered, 2), 2);
    /* relaxed: counters, read after the dead letter arrived */
    assert_int_equal(
        atomic_load_explicit(&group_of(t, "w")->dead_letter_failed, memory_order_relaxed), 0);
    /* Acknowledged in the original topic: nothing pending gates it, and
     * the member's cursor is past both, so the whole ring is free. */
    assert_int_equal(shmbus_poll(sub, ignore, NULL, 1), 0);
    assert_int_equal(room(pub, CAP + 1), CAP);
    shmbus_sub_destroy(dsub);
    shmbus_topic_destroy(dt);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A dead-letter topic named by the group's first member; a later member
 * asking nothing takes it. */
static void test_ack_daemon_named_dead_letter(void **state)
{
    struct du_daemon *d = *state;
    uint8_t dl[MSG_MAX + SB_DL_ROOM];
    shmbus_topic *t, *dt, *none;
    shmbus_topic_opts dopts = {.mode = SHMBUS_RELIABLE, .max_msg_size = MSG_MAX + SB_DL_ROOM};
    shmbus_dead_letter x;
    shmbus_bus *bus;
    shmbus_pub *pub;
    shmbus_sub *first, *second, *dsub;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    assert_shmbus_ok(shmbus_open(bus, "poison.jobs", &dopts, 0, &dt));
    assert_shmbus_ok(shmbus_sub_create(dt, NULL, &dsub));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 1, "poison.jobs", &first));
    assert_shmbus_ok(ack_sub(t, "w", 0, NULL, &second));
    shmbus_sub_destroy(first);
    assert_shmbus_ok(publish_n(pub, 7, WAIT_NS));
    nack_times(second, 1, 1);
    recv_dead(dsub, dl, sizeof(dl), &x);
    assert_string_equal(x.topic, "jobs");
    assert_string_equal(x.group, "w");
    assert_int_equal(x.deliveries, 1);
    assert_memory_equal(x.data, "job-7", 5);
    /* Nothing went to the default. */
    assert_int_equal(shmbus_open(bus, "jobs.dlq", NULL, SHMBUS_OPEN_NOCREATE, &none), -ENOENT);
    shmbus_sub_destroy(dsub);
    shmbus_topic_destroy(dt);
    shmbus_sub_destroy(second);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A dead-letter topic whose segment the daemon has not served yet (made
 * by a process of its uid, here with another capacity than the daemon
 * would create it with) is served with the options it has, at the first
 * attempt: no failure counted for options nobody asked for. */
static void test_ack_daemon_dead_letter_takes_segment(void **state)
{
    struct du_daemon *d = *state;
    char seg[SHMBUS_NAME_MAX + 1];
    shmbus_topic *t, *raw;
    shmbus_topic_opts ropts = {
        .mode = SHMBUS_RELIABLE, .capacity = 2 * CAP, .max_msg_size = MSG_MAX + SB_DL_ROOM};
    shmbus_topic_info info;
    shmbus_bus *bus;
    shmbus_pub *pub;
    shmbus_sub *sub;
    struct sb_shm_group *g;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    snprintf(seg, sizeof(seg), "shmbus.%s.jobs.dlq", d->bus);
    assert_shmbus_ok(shmbus_topic_create(seg, &ropts, &raw));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 1, NULL, &sub));
    g = group_of(t, "w");
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    nack_times(sub, 1, 1);
    assert_int_equal(await_count(&g->dead_lettered, 1), 1);
    assert_int_equal(atomic_load_explicit(&g->dead_letter_failed, memory_order_relaxed), 0);
    shmbus_topic_info_get(raw, &info);
    assert_int_equal(info.published, 1);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(raw);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A full dead-letter topic: the message stays pending (the publisher of
 * the original stays held by it), each failed attempt is counted, and it
 * is delivered once the dead-letter topic's reader makes room. */
static void test_ack_daemon_dead_letter_full(void **state)
{
    struct du_daemon *d = *state;
    uint8_t dl[MSG_MAX + SB_DL_ROOM];
    shmbus_topic *t, *dt, *et;
    shmbus_topic_opts dopts = {
        .mode = SHMBUS_RELIABLE, .capacity = 2, .max_msg_size = MSG_MAX + SB_DL_ROOM};
    shmbus_dead_letter x;
    shmbus_bus *bus;
    shmbus_pub *pub, *dpub;
    shmbus_sub *sub, *dsub, *ev;
    struct sb_shm_group *g;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    ev = events_sub(bus, &et);
    assert_shmbus_ok(shmbus_open(bus, "jobs.dlq", &dopts, 0, &dt));
    assert_shmbus_ok(shmbus_sub_create(dt, NULL, &dsub));
    assert_shmbus_ok(shmbus_pub_create(dt, &dpub));
    assert_int_equal(room(dpub, 2), 2);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 2, NULL, &sub));
    g = group_of(t, "w");
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    nack_times(sub, 1, 2);
    assert_true(await_count(&g->dead_letter_failed, 2) >= 2);
    assert_int_equal(atomic_load_explicit(&g->dead_lettered, memory_order_relaxed), 0);
    await_event(ev, "\"event\":\"dead_letter_failed\"",
                "\"topic\":\"jobs\",\"group\":\"w\",\"seq\":0,\"dead_letter\":\"jobs.dlq\","
                "\"error\":\"full: its subscribers hold it\"");
    shmbus_sub_destroy(ev);
    shmbus_topic_destroy(et);
    assert_int_equal(shmbus_poll(sub, ignore, NULL, 1), 0); /* never redelivered */
    assert_int_equal(room(pub, CAP), CAP - 1);              /* still gating at seq 0 */
    /* Room in the dead-letter topic: it goes through. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(shmbus_recv(dsub, dl, sizeof(dl), NULL, WAIT_NS), 8);
    recv_dead(dsub, dl, sizeof(dl), &x);
    assert_int_equal(x.seq, 0);
    assert_int_equal(x.deliveries, 2);
    assert_int_equal(await_count(&g->dead_lettered, 1), 1);
    assert_int_equal(room(pub, CAP), 1);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_pub_destroy(dpub);
    shmbus_sub_destroy(dsub);
    shmbus_topic_destroy(dt);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A dead-letter topic whose max_msg_size cannot take the envelope: the
 * message stays pending, counted and logged. The cause goes with the
 * topic: nobody uses it at the daemon's restart, so it is removed, and
 * the next daemon creates it big enough and delivers. */
static void test_ack_daemon_dead_letter_too_small(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic *t, *dt;
    /* Room for the message, not for its envelope. */
    shmbus_topic_opts dopts = {.mode = SHMBUS_RELIABLE, .max_msg_size = 32};
    shmbus_topic_entry e;
    shmbus_bus *bus;
    shmbus_pub *pub;
    shmbus_sub *sub;
    struct sb_shm_group *g;
    char log[PATH_MAX];

    assert_int_equal(du_stop(d), 0);
    du_launch_logged(d, log, sizeof(log));
    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    assert_shmbus_ok(shmbus_open(bus, "jobs.dlq", &dopts, 0, &dt));
    shmbus_topic_destroy(dt);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 1, NULL, &sub));
    g = group_of(t, "w");
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    nack_times(sub, 1, 1);
    assert_true(await_count(&g->dead_letter_failed, 1) >= 1);
    assert_true(du_log_wait(log, "too small", 1) >= 1);
    assert_int_equal(atomic_load_explicit(&g->dead_lettered, memory_order_relaxed), 0);
    assert_int_equal(room(pub, CAP), CAP - 1);
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(du_launch(d, NULL), 0);
    assert_int_equal(await_count(&g->dead_lettered, 1), 1);
    await_reconnect(bus);
    e = list_entry(bus, "jobs.dlq");
    assert_int_equal(e.max_msg_size, MSG_MAX + SB_DL_ROOM);
    assert_int_equal(room(pub, CAP), 1);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* An exclusive dead-letter topic (one publisher at a time) is refused:
 * the daemon's publisher there would be its one publisher for good. The
 * message stays pending, counted and logged, and a client still gets the
 * topic's publisher. */
static void test_ack_daemon_dead_letter_exclusive(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic *t, *dt;
    shmbus_topic_opts dopts = {.mode = SHMBUS_RELIABLE,
                               .max_msg_size = MSG_MAX + SB_DL_ROOM,
                               .flags = SHMBUS_TOPIC_EXCLUSIVE};
    shmbus_bus *bus;
    shmbus_pub *pub, *own;
    shmbus_sub *sub;
    struct sb_shm_group *g;
    char log[PATH_MAX];

    assert_int_equal(du_stop(d), 0);
    du_launch_logged(d, log, sizeof(log));
    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    assert_shmbus_ok(shmbus_open(bus, "jobs.dlq", &dopts, 0, &dt));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 1, NULL, &sub));
    g = group_of(t, "w");
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    nack_times(sub, 1, 1);
    assert_true(await_count(&g->dead_letter_failed, 1) >= 1);
    assert_true(du_log_wait(log, "it is exclusive", 1) >= 1);
    assert_int_equal(atomic_load_explicit(&g->dead_lettered, memory_order_relaxed), 0);
    assert_shmbus_ok(shmbus_pub_create(dt, &own));
    shmbus_pub_destroy(own);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(dt);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A dead-letter topic the daemon cannot create (the bus's topic limit:
 * jobs takes the one place; the events topic takes none): the message stays
 * pending, each attempt counted, with the reason in the log. */
static void test_ack_daemon_dead_letter_cannot_create(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic *t;
    shmbus_bus *bus;
    shmbus_pub *pub;
    shmbus_sub *sub;
    struct sb_shm_group *g;
    const char *limit[] = {"--max-topics", "1", "--log-level", "info", NULL};
    char log[PATH_MAX];

    assert_int_equal(du_stop(d), 0);
    assert_int_equal(du_launch_log(d, limit, log, sizeof(log)), 0);
    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 1, NULL, &sub));
    g = group_of(t, "w");
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    nack_times(sub, 1, 1);
    assert_true(await_count(&g->dead_letter_failed, 3) >= 3);
    assert_true(du_log_wait(log, "topic limit reached", 1) >= 1);
    assert_int_equal(atomic_load_explicit(&g->dead_lettered, memory_order_relaxed), 0);
    assert_int_equal(shmbus_poll(sub, ignore, NULL, 1), 0);
    assert_int_equal(room(pub, CAP), CAP - 1);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ------------------------------------------------------ the group's kind */

/* The first member fixes the group's kind, max_deliveries and dead-letter
 * topic; later members asking otherwise get SHMBUS_ERR_MISMATCH, and what
 * the daemon cannot serve is refused. */
static void test_ack_daemon_group_kind(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts plain = {.group_name = "w"};
    shmbus_sub_opts plain2 = {.group_name = "p"};
    shmbus_topic *t, *lossy;
    shmbus_topic_opts lo = {.mode = SHMBUS_LOSSY};
    shmbus_bus *bus;
    shmbus_sub *first, *s, *r;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    assert_shmbus_ok(ack_sub(t, "w", 3, "jobs.bad", &first));
    /* relaxed: written before the group's number went out */
    assert_int_equal(atomic_load_explicit(&group_of(t, "w")->max_deliveries, memory_order_relaxed),
                     3);
    assert_shmbus_rc(shmbus_sub_create(t, &plain, &s), SHMBUS_ERR_MISMATCH);
    assert_shmbus_rc(ack_sub(t, "w", 4, NULL, &s), SHMBUS_ERR_MISMATCH);
    assert_shmbus_rc(ack_sub(t, "w", 0, "jobs.other", &s), SHMBUS_ERR_MISMATCH);
    assert_shmbus_ok(ack_sub(t, "w", 3, "jobs.bad", &s));
    shmbus_sub_destroy(s);
    assert_shmbus_ok(ack_sub(t, "w", 0, NULL, &s));
    shmbus_sub_destroy(s);
    /* A group without acknowledgements stays one. */
    assert_shmbus_ok(shmbus_sub_create(t, &plain2, &s));
    assert_shmbus_rc(ack_sub(t, "p", 0, NULL, &r), SHMBUS_ERR_MISMATCH);
    shmbus_sub_destroy(s);
    assert_int_equal(atomic_load_explicit(&group_of(t, "p")->max_deliveries, memory_order_relaxed),
                     0);
    /* Refused outright: its own topic, the daemon's topics, a lossy topic. */
    assert_shmbus_rc(ack_sub(t, "x", 0, "jobs", &s), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(ack_sub(t, "y", 0, "_shmbus.events", &s), SHMBUS_ERR_DENIED);
    assert_shmbus_ok(shmbus_open(bus, "ticks", &lo, 0, &lossy));
    assert_shmbus_rc(ack_sub(lossy, "w", 0, NULL, &s), SHMBUS_ERR_INVALID);
    shmbus_topic_destroy(lossy);
    /* A refused member holds no slot. */
    assert_int_equal(list_entry(bus, "jobs").subscribers, 1);
    shmbus_sub_destroy(first);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ------------------------------------------------------------- restarts */

/* A pending message across a daemon restart: the member reconnects and
 * keeps working (its nack goes through), and the new daemon, which
 * adopted the segment, dead-letters to the group's topic named in it. */
static void test_ack_daemon_restart_dead_letters(void **state)
{
    struct du_daemon *d = *state;
    uint8_t dl[MSG_MAX + SB_DL_ROOM];
    shmbus_topic *t, *dt;
    shmbus_topic_opts dopts = {.mode = SHMBUS_RELIABLE, .max_msg_size = MSG_MAX + SB_DL_ROOM};
    shmbus_dead_letter x;
    char buf[MSG_MAX + 1];
    shmbus_bus *bus;
    shmbus_pub *pub;
    shmbus_sub *sub, *dsub;
    shmbus_msg m;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, 0, &bus, &t);
    assert_shmbus_ok(shmbus_open(bus, "poison", &dopts, 0, &dt));
    assert_shmbus_ok(shmbus_sub_create(dt, NULL, &dsub));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 2, "poison", &sub));
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    recv_one(sub, buf, &m);
    assert_int_equal(m.deliveries, 1);
    du_stop_sig(d, SIGKILL);
    assert_int_equal(du_launch(d, NULL), 0);
    await_reconnect(bus); /* the member's slot adopted by the new daemon */
    assert_shmbus_ok(shmbus_nack(sub, m.seq, 0));
    recv_one(sub, buf, &m);
    assert_int_equal(m.deliveries, 2);
    assert_shmbus_ok(shmbus_nack(sub, m.seq, 0));
    recv_dead(dsub, dl, sizeof(dl), &x);
    assert_string_equal(x.topic, "jobs");
    assert_string_equal(x.group, "w");
    assert_int_equal(x.seq, 0);
    assert_int_equal(x.deliveries, 2);
    assert_int_equal(await_count(&group_of(t, "w")->dead_lettered, 1), 1);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(dsub);
    shmbus_topic_destroy(dt);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ---------------------------------------------------------------- stalls */

/* Poll @p sub (which takes nothing) until it reports its eviction.
 * @return what the last poll returned. */
static int await_evicted(shmbus_sub *sub)
{
    int64_t end = du_now_ms() + WAIT_MS;
    int rc;

    while ((rc = shmbus_poll(sub, ignore, NULL, 1)) == 0 && du_now_ms() < end)
        du_sleep_ms(5);
    return rc;
}

/* A member that holds a message past the stall timeout while publishers
 * wait for it is evicted: its message goes back to the group (delivered
 * again to the other member, which gets a whole timeout to take it) and
 * its late ack is refused. */
static void test_ack_daemon_stall_evicts_holder(void **state)
{
    struct du_daemon *d = *state;
    char buf[MSG_MAX + 1];
    shmbus_topic *t;
    shmbus_bus *bus;
    shmbus_pub *pub;
    shmbus_sub *a, *b;
    shmbus_msg m;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, STALL_MS, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 0, NULL, &a));
    assert_shmbus_ok(ack_sub(t, "w", 0, NULL, &b));
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    recv_one(a, buf, &m);
    assert_int_equal(m.seq, 0);
    /* The ring full against seq 0, which a holds, until the daemon
     * evicts a (at max_inflight, a's poll takes nothing meanwhile). */
    assert_int_equal(room(pub, CAP), CAP - 1);
    assert_shmbus_rc(await_evicted(a), SHMBUS_ERR_EVICTED);
    /* Given back, the message has the whole timeout again to be taken:
     * half of it passes, and it is still there, not dead-lettered. */
    du_sleep_ms(STALL_MS / 2);
    recv_one(b, buf, &m);
    assert_int_equal(m.seq, 0);
    assert_int_equal(m.deliveries, 2);
    assert_shmbus_rc(shmbus_ack(a, 0), SHMBUS_ERR_EVICTED);
    assert_shmbus_ok(shmbus_ack(b, 0));
    assert_int_equal(room(pub, CAP), 1);
    shmbus_sub_destroy(a);
    shmbus_sub_destroy(b);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A message HELD in the name of a slot that is no member of its group
 * (the word says a slot that is free: a give-back that lost a race, or a
 * scribbled segment) cannot be the stall of a member to evict: past the
 * stall timeout it is given back to the group, not left gating forever. */
static void test_ack_daemon_stall_returns_unowned(void **state)
{
    struct du_daemon *d = *state;
    char buf[MSG_MAX + 1];
    shmbus_topic *t;
    shmbus_bus *bus;
    shmbus_pub *pub;
    shmbus_sub *a, *b;
    shmbus_msg m;
    struct sb_shm_pending *e = NULL;
    uint32_t g;
    uint64_t w;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, STALL_MS, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 0, NULL, &a));
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    recv_one(a, buf, &m);
    g = (uint32_t)(group_of(t, "w") - t->seg.groups);
    for (uint32_t i = 0; i < t->seg.g.ack_entries && e == NULL; i++)
        /* seq_cst: as the daemon's scans */
        if (SB_PEND_ST(atomic_load_explicit(&sb_pending(&t->seg, g, i)->word,
                                            memory_order_seq_cst)) == SB_PEND_HELD)
            e = sb_pending(&t->seg, g, i);
    assert_non_null(e);
    /* The last slot, which nobody holds, named as the holder. */
    w = atomic_load_explicit(&e->word, memory_order_seq_cst);
    atomic_store_explicit(
        &e->word,
        SB_PEND_WORD(SB_PEND_GEN(w), SB_PEND_DELIVERIES(w), t->seg.g.max_subs, SB_PEND_HELD),
        memory_order_seq_cst);
    assert_int_equal(room(pub, CAP), CAP - 1);
    /* seq_cst: as the daemon's scans */
    for (int64_t end = du_now_ms() + WAIT_MS;
         SB_PEND_ST(w = atomic_load_explicit(&e->word, memory_order_seq_cst)) == SB_PEND_HELD &&
         du_now_ms() < end;)
        du_sleep_ms(5);
    assert_int_equal(SB_PEND_ST(w), SB_PEND_RETURNED);
    assert_int_equal(SB_PEND_REASON(w), SHMBUS_DL_EVICTED);
    /* Given back ahead of the new messages, to whoever takes next. */
    assert_shmbus_ok(ack_sub(t, "w", 0, NULL, &b));
    recv_one(b, buf, &m);
    assert_int_equal(m.seq, 0);
    assert_int_equal(m.deliveries, 2);
    assert_shmbus_ok(shmbus_ack(b, 0));
    assert_int_equal(room(pub, CAP), 1);
    shmbus_sub_destroy(a);
    shmbus_sub_destroy(b);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A message given back for later (a long nack delay) that holds
 * publishers back past the stall timeout is dead-lettered, reason
 * STALLED; its member is not evicted. */
static void test_ack_daemon_stall_dead_letters_returned(void **state)
{
    struct du_daemon *d = *state;
    uint8_t dl[MSG_MAX + SB_DL_ROOM];
    shmbus_topic *t, *dt;
    shmbus_topic_opts dopts = {.mode = SHMBUS_RELIABLE, .max_msg_size = MSG_MAX + SB_DL_ROOM};
    shmbus_dead_letter x;
    char buf[MSG_MAX + 1];
    shmbus_bus *bus;
    shmbus_pub *pub;
    shmbus_sub *a, *dsub;
    shmbus_msg m;

    open_topic(d->bus, "jobs", CAP, MSG_MAX, STALL_MS, &bus, &t);
    assert_shmbus_ok(shmbus_open(bus, "jobs.dlq", &dopts, 0, &dt));
    assert_shmbus_ok(shmbus_sub_create(dt, NULL, &dsub));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(ack_sub(t, "w", 0, NULL, &a));
    assert_shmbus_ok(publish_n(pub, 0, WAIT_NS));
    recv_one(a, buf, &m);
    assert_shmbus_ok(shmbus_nack(a, 0, SHMBUS_NACK_DELAY_MAX));
    assert_int_equal(room(pub, CAP), CAP - 1);
    assert_shmbus_ok(publish_n(pub, 99, WAIT_NS));
    recv_dead(dsub, dl, sizeof(dl), &x);
    assert_int_equal(x.seq, 0);
    assert_int_equal(x.deliveries, 1);
    assert_int_equal(x.reason, SHMBUS_DL_STALLED);
    /* Still a member: it takes the next message. */
    recv_one(a, buf, &m);
    assert_int_equal(m.seq, 1);
    assert_shmbus_ok(shmbus_ack(a, 1));
    shmbus_sub_destroy(a);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(dsub);
    shmbus_topic_destroy(dt);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        DAEMON_TEST(test_ack_daemon_kill_redelivers),
        DAEMON_TEST(test_ack_daemon_poison_dead_letters),
        DAEMON_TEST(test_ack_daemon_named_dead_letter),
        DAEMON_TEST(test_ack_daemon_dead_letter_takes_segment),
        DAEMON_TEST(test_ack_daemon_dead_letter_full),
        DAEMON_TEST(test_ack_daemon_dead_letter_too_small),
        DAEMON_TEST(test_ack_daemon_dead_letter_exclusive),
        DAEMON_TEST(test_ack_daemon_dead_letter_cannot_create),
        DAEMON_TEST(test_ack_daemon_group_kind),
        DAEMON_TEST(test_ack_daemon_restart_dead_letters),
        DAEMON_TEST(test_ack_daemon_stall_evicts_holder),
        DAEMON_TEST(test_ack_daemon_stall_dead_letters_returned),
        DAEMON_TEST(test_ack_daemon_stall_returns_unowned),
    };
    tu_init();
    return cmocka_run_group_tests_name("ack_daemon", tests, NULL, NULL);
}
