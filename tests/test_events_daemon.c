/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The events topic with a real shmbusd (daemon/events.c, reaped.c): a
 * client reads `_shmbus.events` by name while an acknowledging member of
 * a work queue is SIGKILLed holding a message; its "reaped" event names
 * its pid and counts the slot freed and the message returned to the
 * group; a claim held past the stall timeout and one a dead publisher
 * left are told as "unblocked". A client is refused as a publisher there
 * and as the maker of a `_shmbus.` topic (SHMBUS_ERR_DENIED). The loss
 * scanner tells a client topic's losses, never the events topic's own.
 * An events segment not ready at the start is taken over, and used, once
 * it is, as is one whose publisher records dead processes held; one a client truncated gets no more
 * events, each counted. Children report through their exit status.
 */
#include "daemonclient.h"

#include <poll.h>
#include <stdatomic.h>

#include "events.h"
#include "loss.h"
#include "ring/ring.h"
#include "shm/layout.h"
#include "util/clock.h"

#define WAIT_MS 10000

struct kid {
    const char *bus;
    int ready; /* write end: one byte once it holds a message */
};

/* An acknowledging member of group "g" of topic "jobs" that takes one
 * message and dies holding it. */
static int kid_hold_and_die(void *arg)
{
    const struct kid *k = arg;
    shmbus_sub_opts so = {.group_name = "g", .flags = SHMBUS_SUB_ACK};
    shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = 8, .max_msg_size = DC_MSG_MAX, .max_groups = 2};
    char buf[DC_MSG_MAX];
    shmbus_topic *t;
    shmbus_sub *sub;
    shmbus_bus *bus;
    shmbus_msg info;

    if (shmbus_connect(k->bus, &bus) < 0 || shmbus_open(bus, "jobs", &o, 0, &t) < 0 ||
        shmbus_sub_create(t, &so, &sub) < 0)
        return 2;
    if (write(k->ready, "s", 1) != 1)
        return 3;
    if (shmbus_recv(sub, buf, sizeof(buf), &info, DC_WAIT_NS) < 0 || info.seq != 0)
        return 4;
    raise(SIGKILL); /* holding seq 0, never acknowledged */
    return 5;
}

/* Wait for a child's byte on @p fd. */
static void kid_ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;

    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    assert_int_equal(read(fd, &c, 1), 1);
}

/* Read events from @p sub until one holds @p want. @return 1, or 0 after
 * WAIT_MS without it. */
static int event_seen(shmbus_sub *sub, const char *want)
{
    char line[SBD_EVENTS_MSG_MAX + 1];
    shmbus_msg info;
    uint64_t end = sb_mono_ns() + (uint64_t)WAIT_MS * 1000000u;
    int n;

    while (sb_mono_ns() < end) {
        n = shmbus_recv(sub, line, sizeof(line) - 1, &info, 100000000);
        if (n == SHMBUS_ERR_TIMEOUT)
            continue;
        assert_shmbus_ok(n);
        line[n] = '\0';
        if (strstr(line, want) != NULL)
            return 1;
    }
    return 0;
}

static void test_events_daemon_reaped_returned(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = 8, .max_msg_size = DC_MSG_MAX, .max_groups = 2};
    shmbus_sub_opts from_oldest = {.start = SHMBUS_START_OLDEST};
    struct kid k = {.bus = d->bus};
    shmbus_topic *ev, *jobs;
    shmbus_sub *reader;
    shmbus_pub *pub;
    shmbus_bus *bus;
    char want[160];
    int fds[2];
    pid_t kid;

    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, SBD_EVENTS_TOPIC, NULL, SHMBUS_OPEN_NOCREATE, &ev));
    assert_shmbus_ok(shmbus_sub_create(ev, &from_oldest, &reader));
    assert_shmbus_ok(shmbus_open(bus, "jobs", &o, 0, &jobs));
    assert_shmbus_ok(shmbus_pub_create(jobs, &pub));
    assert_int_equal(pipe(fds), 0);
    k.ready = fds[1];
    kid = tu_fork(kid_hold_and_die, &k);
    kid_ready(fds[0]);
    assert_shmbus_ok(shmbus_publish(pub, "job", 3, DC_WAIT_NS));
    assert_int_equal(du_wait_ms(kid, WAIT_MS), 128 + SIGKILL);
    snprintf(want, sizeof(want),
             "\"event\":\"reaped\",\"pid\":%d,\"topic\":\"jobs\",\"slots\":1,"
             "\"publishers\":0,\"claims_ended\":0,\"returned\":1}",
             (int)kid);
    if (!event_seen(reader, want))
        fail_msg("no event %s within %d ms", want, WAIT_MS);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(reader);
    shmbus_topic_destroy(jobs);
    shmbus_topic_destroy(ev);
    shmbus_close(bus);
    close(fds[0]);
    close(fds[1]);
}

/* A publisher of topic @p topic that claims seq 0 and keeps it open:
 * until killed (k->die 0: stalled), or dies at once (1). */
struct claimer {
    const char *bus, *topic;
    int die;
    int ready; /* write end (du_fork_ready()) */
};

static int kid_claim(void *arg)
{
    const struct claimer *k = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_claim c;

    if (shmbus_connect(k->bus, &bus) < 0 ||
        shmbus_open(bus, k->topic, NULL, SHMBUS_OPEN_NOCREATE, &t) < 0 ||
        shmbus_pub_create(t, &pub) < 0 || shmbus_pub_claim(pub, &c, 0) < 0)
        return 2;
    if (du_signal(k->ready) < 0)
        return 3;
    if (k->die)
        raise(SIGKILL); /* the claim left open by a dead publisher */
    pause();
    return 4;
}

/* A claim held past the stall timeout, and one left by a dead publisher,
 * are ended and told as "unblocked" with their seq and why; the dead
 * publisher's "reaped" counts its record and its claim. */
static void test_events_daemon_unblocked(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                           .capacity = 8,
                           .max_msg_size = DC_MSG_MAX,
                           .stall_timeout_ms = 300};
    shmbus_sub_opts from_oldest = {.start = SHMBUS_START_OLDEST};
    struct claimer k = {.bus = d->bus, .topic = "stalled"};
    shmbus_topic *ev, *stalled, *dead;
    shmbus_sub *reader;
    shmbus_bus *bus;
    char want[200];
    pid_t kid;

    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, SBD_EVENTS_TOPIC, NULL, SHMBUS_OPEN_NOCREATE, &ev));
    assert_shmbus_ok(shmbus_sub_create(ev, &from_oldest, &reader));
    assert_shmbus_ok(shmbus_open(bus, "stalled", &o, 0, &stalled));
    o.stall_timeout_ms = 0;
    assert_shmbus_ok(shmbus_open(bus, "dead", &o, 0, &dead));

    kid = du_fork_ready(kid_claim, &k, &k.ready);
    snprintf(want, sizeof(want),
             "\"event\":\"unblocked\",\"topic\":\"stalled\",\"pid\":%d,\"seq\":0,"
             "\"why\":\"stalled\"}",
             (int)kid);
    if (!event_seen(reader, want))
        fail_msg("no event %s within %d ms", want, WAIT_MS);
    kill(kid, SIGKILL);
    tu_wait(kid);

    k.topic = "dead";
    k.die = 1;
    kid = du_fork_ready(kid_claim, &k, &k.ready);
    assert_int_equal(du_wait_ms(kid, WAIT_MS), 128 + SIGKILL);
    snprintf(want, sizeof(want),
             "\"event\":\"unblocked\",\"topic\":\"dead\",\"pid\":%d,\"seq\":0,"
             "\"why\":\"dead\"}",
             (int)kid);
    if (!event_seen(reader, want))
        fail_msg("no event %s within %d ms", want, WAIT_MS);
    snprintf(want, sizeof(want),
             "\"event\":\"reaped\",\"pid\":%d,\"topic\":\"dead\",\"slots\":0,"
             "\"publishers\":1,\"claims_ended\":1,\"returned\":0}",
             (int)kid);
    if (!event_seen(reader, want))
        fail_msg("no event %s within %d ms", want, WAIT_MS);
    shmbus_sub_destroy(reader);
    shmbus_topic_destroy(dead);
    shmbus_topic_destroy(stalled);
    shmbus_topic_destroy(ev);
    shmbus_close(bus);
}

static void test_events_daemon_publish_refused(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic *ev;
    shmbus_pub *pub;
    shmbus_bus *bus;

    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, SBD_EVENTS_TOPIC, NULL, SHMBUS_OPEN_NOCREATE, &ev));
    assert_shmbus_rc(shmbus_pub_create(ev, &pub), SHMBUS_ERR_DENIED);
    shmbus_topic_destroy(ev);
    shmbus_close(bus);
}

/* Read events from @p sub for @p ms: 1 if one holds @p want, else 0. */
static int event_within(shmbus_sub *sub, const char *want, unsigned ms)
{
    char line[SBD_EVENTS_MSG_MAX + 1];
    shmbus_msg info;
    uint64_t end = sb_mono_ns() + (uint64_t)ms * 1000000u;
    int n, seen = 0;

    while (sb_mono_ns() < end) {
        n = shmbus_recv(sub, line, sizeof(line) - 1, &info, 10000000);
        if (n == SHMBUS_ERR_TIMEOUT)
            continue;
        assert_shmbus_ok(n);
        line[n] = '\0';
        seen |= strstr(line, want) != NULL;
    }
    return seen;
}

/* The loss scanner tells a client topic's subscriber whose count of lost
 * messages moved, but never one of the events topic: a reader falling
 * behind there would hear of it on the topic it is losing, each event
 * pushing it further behind. The counts are written as a subscriber's
 * poll stores them, into slots that never poll again. */
static void test_events_daemon_loss_not_own(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts lossy = {.mode = SHMBUS_LOSSY, .capacity = 8, .max_msg_size = DC_MSG_MAX};
    shmbus_topic *ev, *plain;
    shmbus_sub *reader, *idle_ev, *idle_plain;
    shmbus_bus *bus;

    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, SBD_EVENTS_TOPIC, NULL, SHMBUS_OPEN_NOCREATE, &ev));
    assert_shmbus_ok(shmbus_sub_create(ev, NULL, &reader));
    assert_shmbus_ok(shmbus_sub_create(ev, NULL, &idle_ev));
    assert_shmbus_ok(shmbus_open(bus, "plain", &lossy, 0, &plain));
    assert_shmbus_ok(shmbus_sub_create(plain, NULL, &idle_plain));
    /* A tick for the scanner to meet both slots at zero. */
    usleep(3 * SBD_LOSS_TICK_MS * 1000);
    /* relaxed: as a subscriber stores its mirror (monitors read it so). */
    atomic_store_explicit(&idle_ev->slot->lost, 7, memory_order_relaxed);
    atomic_store_explicit(&idle_plain->slot->lost, 7, memory_order_relaxed);
    if (!event_seen(reader, "\"event\":\"loss\",\"topic\":\"plain\","))
        fail_msg("no loss event for topic plain within %d ms", WAIT_MS);
    /* Both were met in the same walk; three more ticks to be sure. */
    assert_false(event_within(reader, "\"topic\":\"" SBD_EVENTS_TOPIC "\"", 3 * SBD_LOSS_TICK_MS));
    shmbus_sub_destroy(idle_plain);
    shmbus_sub_destroy(idle_ev);
    shmbus_sub_destroy(reader);
    shmbus_topic_destroy(plain);
    shmbus_topic_destroy(ev);
    shmbus_close(bus);
}

/* The events topic's segment found not ready at the start (its creator,
 * a previous daemon, died making it) waits to be taken over; once its
 * creator is done it is, and events flow from then on. */
static void test_events_daemon_adopted_late(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts eo = {
        .mode = SHMBUS_LOSSY, .capacity = SBD_EVENTS_CAPACITY, .max_msg_size = SBD_EVENTS_MSG_MAX};
    shmbus_topic_opts lossy = {.mode = SHMBUS_LOSSY, .capacity = 8, .max_msg_size = DC_MSG_MAX};
    char seg[SHMBUS_NAME_MAX + 1];
    shmbus_topic *raw, *ev = NULL, *plain;
    shmbus_sub *reader, *idle;
    shmbus_bus *bus;
    uint64_t end;
    uint32_t version;
    int rc;

    assert_int_equal(du_stop(d), 0);
    snprintf(seg, sizeof(seg), "shmbus.%s.%s", d->bus, SBD_EVENTS_TOPIC);
    shmbus_topic_unlink(seg); /* the stopped daemon's, if it kept it */
    assert_shmbus_ok(shmbus_topic_create(seg, &eo, &raw));
    /* relaxed: nobody maps it yet. */
    version = atomic_load_explicit(&raw->seg.hdr->version, memory_order_relaxed);
    atomic_store_explicit(&raw->seg.hdr->version, 0, memory_order_relaxed);
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_rc(shmbus_open(bus, SBD_EVENTS_TOPIC, NULL, SHMBUS_OPEN_NOCREATE, &ev),
                     SHMBUS_ERR_NOT_READY);
    /* release: as a creator publishes its segment (layout.h). */
    atomic_store_explicit(&raw->seg.hdr->version, version, memory_order_release);
    end = sb_mono_ns() + (uint64_t)WAIT_MS * 1000000u;
    while ((rc = shmbus_open(bus, SBD_EVENTS_TOPIC, NULL, SHMBUS_OPEN_NOCREATE, &ev)) ==
               SHMBUS_ERR_NOT_READY &&
           sb_mono_ns() < end)
        usleep(10000);
    assert_shmbus_ok(rc);
    assert_shmbus_ok(shmbus_sub_create(ev, NULL, &reader));
    assert_shmbus_ok(shmbus_open(bus, "plain", &lossy, 0, &plain));
    assert_shmbus_ok(shmbus_sub_create(plain, NULL, &idle));
    usleep(3 * SBD_LOSS_TICK_MS * 1000);
    /* relaxed: as a subscriber stores its mirror. */
    atomic_store_explicit(&idle->slot->lost, 7, memory_order_relaxed);
    if (!event_seen(reader, "\"event\":\"loss\",\"topic\":\"plain\","))
        fail_msg("no event on the events topic taken over late within %d ms", WAIT_MS);
    shmbus_sub_destroy(idle);
    shmbus_sub_destroy(reader);
    shmbus_topic_destroy(plain);
    shmbus_topic_destroy(ev);
    shmbus_topic_destroy(raw);
    shmbus_close(bus);
}

/* A process that takes every publisher record of segment @p arg and
 * exits holding them, as daemons killed one after another would. */
static int kid_hold_records(void *arg)
{
    shmbus_topic *t;
    shmbus_pub *pub[2];

    if (shmbus_topic_attach(arg, &t) < 0)
        return 1;
    for (int i = 0; i < 2; i++)
        if (shmbus_pub_create(t, &pub[i]) < 0)
            return 2;
    return 0;
}

/* The events topic taken over with every publisher record held by dead
 * processes: the daemon's reaper frees them, and its events start then. */
static void test_events_daemon_records_taken(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts eo = {.mode = SHMBUS_LOSSY,
                            .capacity = SBD_EVENTS_CAPACITY,
                            .max_msg_size = SBD_EVENTS_MSG_MAX,
                            .max_publishers = 2};
    shmbus_topic_opts lossy = {.mode = SHMBUS_LOSSY, .capacity = 8, .max_msg_size = DC_MSG_MAX};
    char seg[SHMBUS_NAME_MAX + 1];
    shmbus_topic *raw, *ev, *plain;
    shmbus_sub *reader, *idle;
    shmbus_bus *bus;

    assert_int_equal(du_stop(d), 0);
    snprintf(seg, sizeof(seg), "shmbus.%s.%s", d->bus, SBD_EVENTS_TOPIC);
    shmbus_topic_unlink(seg); /* the stopped daemon's, if it kept it */
    assert_shmbus_ok(shmbus_topic_create(seg, &eo, &raw));
    shmbus_topic_destroy(raw);
    assert_int_equal(du_wait_ms(tu_fork(kid_hold_records, seg), WAIT_MS), 0);
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, SBD_EVENTS_TOPIC, NULL, SHMBUS_OPEN_NOCREATE, &ev));
    assert_shmbus_ok(shmbus_sub_create(ev, NULL, &reader));
    assert_shmbus_ok(shmbus_open(bus, "plain", &lossy, 0, &plain));
    assert_shmbus_ok(shmbus_sub_create(plain, NULL, &idle));
    usleep(3 * SBD_LOSS_TICK_MS * 1000);
    /* relaxed: as a subscriber stores its mirror. */
    atomic_store_explicit(&idle->slot->lost, 7, memory_order_relaxed);
    if (!event_seen(reader, "\"event\":\"loss\",\"topic\":\"plain\","))
        fail_msg("no event once the dead publishers' records were freed, within %d ms", WAIT_MS);
    shmbus_sub_destroy(idle);
    shmbus_sub_destroy(reader);
    shmbus_topic_destroy(plain);
    shmbus_topic_destroy(ev);
    shmbus_close(bus);
}

/* A client truncates the events topic's segment: the daemon stops
 * serving it, and the events that follow, which nobody can read, are
 * counted and logged as not published rather than written into the
 * private zeroes the guard put in its place. */
static void test_events_daemon_truncated(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts lossy = {.mode = SHMBUS_LOSSY, .capacity = 8, .max_msg_size = DC_MSG_MAX};
    char seg[SHMBUS_NAME_MAX + 1], path[PATH_MAX], log[PATH_MAX];
    shmbus_topic *plain;
    shmbus_sub *idle;
    shmbus_bus *bus;

    assert_int_equal(du_stop(d), 0);
    du_launch_logged(d, log, sizeof(log));
    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "plain", &lossy, 0, &plain));
    assert_shmbus_ok(shmbus_sub_create(plain, NULL, &idle));
    snprintf(seg, sizeof(seg), "shmbus.%s.%s", d->bus, SBD_EVENTS_TOPIC);
    snprintf(path, sizeof(path), "/dev/shm/%s", seg);
    assert_int_equal(truncate(path, 4096), 0);
    assert_true(du_log_wait(log, "a client truncated segment", 1) >= 1);
    /* relaxed: as a subscriber stores its mirror. */
    atomic_store_explicit(&idle->slot->lost, 7, memory_order_relaxed);
    assert_true(du_log_wait(log, "\"loss\" event not published: its segment was truncated", 1) >=
                1);
    shmbus_sub_destroy(idle);
    shmbus_topic_destroy(plain);
    shmbus_close(bus);
}

/* A client may read the daemon's topics but not make one: a `_shmbus.`
 * topic nobody publishes on, hidden from LIST, would only hide its
 * segment's bytes from `shmbus stat`. */
static void test_events_daemon_create_refused(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic *t;
    shmbus_bus *bus;

    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_rc(shmbus_open(bus, SBD_EVENTS_PREFIX "hidden", NULL, 0, &t), SHMBUS_ERR_DENIED);
    assert_null(t);
    assert_shmbus_ok(shmbus_open(bus, SBD_EVENTS_TOPIC, NULL, 0, &t));
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        DAEMON_TEST(test_events_daemon_reaped_returned),
        DAEMON_TEST(test_events_daemon_unblocked),
        DAEMON_TEST(test_events_daemon_publish_refused),
        DAEMON_TEST(test_events_daemon_create_refused),
        DAEMON_TEST(test_events_daemon_loss_not_own),
        DAEMON_TEST(test_events_daemon_adopted_late),
        DAEMON_TEST(test_events_daemon_records_taken),
        DAEMON_TEST(test_events_daemon_truncated),
    };

    tu_init();
    return cmocka_run_group_tests_name("events_daemon", tests, NULL, NULL);
}
