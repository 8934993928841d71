/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's events topic (daemon/events.c, reaped.c), driven directly:
 * the JSON line of an event (its exact form, string escaping, no byte
 * past the buffer, nothing when it does not fit), every kind of event
 * with its largest fields fitting in one message of the topic, the
 * reserved names, and sbd_event() publishing on the topic an in-process
 * registry made (nothing before the start or after the stop), with the
 * "reaped" counts told once, two reaper passes after the first note.
 */
#include "testutil.h"

#include <dirent.h>

#include "config.h"
#include "events.h"
#include "log.h"
#include "reaped.h"
#include "registry.h"
#include "segfile.h"

#define BUF 4096

static char bus_prefix[64]; /* SBD_SEG_PREFIX "tev<pid>." */

/* Remove this bus's segments from /dev/shm; @return how many there were. */
static int bus_segments_remove(void)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, bus_prefix, strlen(bus_prefix)) != 0)
            continue;
        n++;
        shmbus_topic_unlink(e->d_name);
    }
    closedir(d);
    return n;
}

static void bus_cleanup(void)
{
    bus_segments_remove();
}

static void test_events_format_exact(void **state)
{
    struct sbd_ev_field f[] = {SBD_EV_U("pid", 42), SBD_EV_S("topic", "a.b"),
                               SBD_EV_U("max", UINT64_MAX)};
    const char *want = "{\"v\":1,\"time_ns\":123,\"bus\":\"dev\",\"event\":\"reaped\",\"pid\":42,"
                       "\"topic\":\"a.b\",\"max\":18446744073709551615}";
    char out[BUF];
    size_t n;

    (void)state;
    n = sbd_event_format(out, sizeof(out), "dev", 123, "reaped", f, 3);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    /* No fields at all. */
    n = sbd_event_format(out, sizeof(out), "dev", 0, "x", NULL, 0);
    assert_int_equal(n, strlen("{\"v\":1,\"time_ns\":0,\"bus\":\"dev\",\"event\":\"x\"}"));
}

static void test_events_format_escape(void **state)
{
    /* A quote, a backslash, newline, tab, 0x01, DEL (valid JSON as is),
     * valid two- and four-byte UTF-8, a stray continuation byte, 0xff,
     * and a sequence cut short by the end of the string. */
    const char *s = "q\"b\\n\nt\t\x01\x7f|\xc3\xa9|\xf0\x9f\x98\x80|\x80|\xff|\xe2\x82";
    const char *want = "\"q\\\"b\\\\n\\u000at\\u0009\\u0001\x7f|\xc3\xa9|\xf0\x9f\x98\x80|"
                       "\\ufffd|\\ufffd|\\ufffd\\ufffd\"";
    struct sbd_ev_field f[] = {SBD_EV_S("why", s)};
    char out[BUF], tail[BUF];
    size_t n;

    (void)state;
    n = sbd_event_format(out, sizeof(out), "b", 1, "k", f, 1);
    assert_true(n > 0);
    out[n] = '\0';
    snprintf(tail, sizeof(tail), "\"why\":%s}", want);
    assert_int_equal(strlen(out) >= strlen(tail), 1);
    assert_string_equal(out + strlen(out) - strlen(tail), tail);
    /* A NULL string is written as "". */
    f[0] = SBD_EV_S("why", NULL);
    n = sbd_event_format(out, sizeof(out), "b", 1, "k", f, 1);
    out[n] = '\0';
    assert_non_null(strstr(out, ",\"why\":\"\"}"));
}

static void test_events_format_bounds(void **state)
{
    struct sbd_ev_field f[] = {SBD_EV_S("peer", "[::1]:6379"), SBD_EV_S("why", "a\"b\x01"),
                               SBD_EV_U("n", 1234567)};
    char full[BUF], out[BUF];
    size_t len;

    (void)state;
    len = sbd_event_format(full, sizeof(full), "bus", 99, "bridge_closed", f, 3);
    assert_true(len > 0);
    /* Every buffer shorter than the line: nothing, and no byte written
     * past the buffer's end. */
    for (size_t cap = 0; cap < len; cap++) {
        memset(out, '#', sizeof(out));
        assert_int_equal(sbd_event_format(out, cap, "bus", 99, "bridge_closed", f, 3), 0);
        for (size_t i = cap; i < sizeof(out); i++)
            assert_int_equal(out[i], '#');
    }
    memset(out, '#', sizeof(out));
    assert_int_equal(sbd_event_format(out, len, "bus", 99, "bridge_closed", f, 3), len);
    assert_memory_equal(out, full, len);
    assert_int_equal(out[len], '#');
}

/* The longest text shmbus_strerror() gives (the "error" and "why" fields
 * that carry one). */
static size_t strerror_max(void)
{
    size_t max = 0;

    for (int code = -1200; code < 0; code++)
        if (strlen(shmbus_strerror(code)) > max)
            max = strlen(shmbus_strerror(code));
    return max;
}

/* A name of @p n characters of [A-Za-z0-9_.:-] (no escaping). */
static const char *name_of(char *buf, size_t n)
{
    memset(buf, 'x', n);
    buf[n] = '\0';
    return buf;
}

static void test_events_largest_fit(void **state)
{
    char bus[64], topic[SHMBUS_TOPIC_NAME_MAX + 1], group[SHMBUS_GROUP_NAME_MAX + 1];
    char dlq[SHMBUS_TOPIC_NAME_MAX + 1], seg[SHMBUS_NAME_MAX + 1], err[512], peer[64];
    char server[128], out[BUF];
    const uint64_t m = UINT64_MAX;

    (void)state;
    name_of(bus, 32);
    name_of(topic, SHMBUS_TOPIC_NAME_MAX);
    name_of(group, SHMBUS_GROUP_NAME_MAX);
    name_of(dlq, SHMBUS_TOPIC_NAME_MAX);
    name_of(seg, SHMBUS_NAME_MAX);
    name_of(peer, sizeof(peer) - 1); /* the bridge's peer[64] */
    /* Escaped to six bytes each: the worst a server URL could take. */
    memset(server, '\x01', sizeof(server) - 1);
    server[sizeof(server) - 1] = '\0';
    /* The longer of shmbus_strerror()'s texts and the dead-letter pass's
     * reasons (daemon/deadletter.c: why[160]). */
    assert_true(strerror_max() < 160);
    memset(err, 'e', 159);
    err[159] = '\0';
    {
        struct sbd_ev_field reaped[] = {SBD_EV_U("pid", m),          SBD_EV_S("topic", topic),
                                        SBD_EV_U("slots", m),        SBD_EV_U("publishers", m),
                                        SBD_EV_U("claims_ended", m), SBD_EV_U("returned", m)};
        struct sbd_ev_field evicted[] = {SBD_EV_S("topic", topic), SBD_EV_U("slot", m),
                                         SBD_EV_U("pid", m), SBD_EV_U("held_ms", m),
                                         SBD_EV_S("group", group)};
        struct sbd_ev_field unblocked[] = {SBD_EV_S("topic", topic), SBD_EV_U("pid", m),
                                           SBD_EV_U("seq", m), SBD_EV_S("why", "stalled")};
        struct sbd_ev_field loss[] = {SBD_EV_S("topic", topic), SBD_EV_U("slot", m),
                                      SBD_EV_U("pid", m),       SBD_EV_U("lost", m),
                                      SBD_EV_U("total", m),     SBD_EV_S("group", group)};
        struct sbd_ev_field dead[] = {
            SBD_EV_S("topic", topic),  SBD_EV_S("group", group),      SBD_EV_U("seq", m),
            SBD_EV_U("deliveries", m), SBD_EV_S("reason", "evicted"), SBD_EV_S("dead_letter", dlq)};
        struct sbd_ev_field failed[] = {SBD_EV_S("topic", topic), SBD_EV_S("group", group),
                                        SBD_EV_U("seq", m), SBD_EV_S("dead_letter", dlq),
                                        SBD_EV_S("error", err)};
        struct sbd_ev_field closed[] = {SBD_EV_S("peer", peer), SBD_EV_S("why", "memory")};
        struct sbd_ev_field refused[] = {SBD_EV_S("segment", seg), SBD_EV_S("why", err),
                                         SBD_EV_S("action", "removed")};
        struct sbd_ev_field adopted[] = {SBD_EV_S("segment", seg), SBD_EV_U("retries", m)};
        struct sbd_ev_field link[] = {SBD_EV_S("server", server)};
        const struct {
            const char *kind;
            const struct sbd_ev_field *f;
            unsigned n;
        } ev[] = {
            {"reaped", reaped, 6},           {"evicted", evicted, 5},
            {"unblocked", unblocked, 4},     {"loss", loss, 6},
            {"dead_letter", dead, 6},        {"dead_letter_failed", failed, 5},
            {"bridge_closed", closed, 2},    {"segment_refused", refused, 3},
            {"segment_adopted", adopted, 2}, {"link_down", link, 1},
        };

        for (unsigned i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
            size_t n =
                sbd_event_format(out, SBD_EVENTS_MSG_MAX, bus, m, ev[i].kind, ev[i].f, ev[i].n);

            if (n == 0)
                fail_msg("event %s with its largest fields does not fit in %u bytes", ev[i].kind,
                         SBD_EVENTS_MSG_MAX);
        }
    }
}

static void test_events_reserved(void **state)
{
    (void)state;
    assert_true(sbd_events_reserved(SBD_EVENTS_TOPIC));
    assert_true(sbd_events_reserved("_shmbus.other"));
    assert_false(sbd_events_reserved("_shmbus"));
    assert_false(sbd_events_reserved("shmbus.events"));
    assert_false(sbd_events_reserved("x._shmbus.events"));
}

/* Poll callback: copy one message into the buffer @p arg. */
static int copy_msg(const shmbus_msg *msg, void *arg)
{
    char *out = arg;

    assert_true(msg->len < BUF);
    memcpy(out, msg->data, msg->len);
    out[msg->len] = '\0';
    return 0;
}

/* The next event on @p sub into @p out; @return 1, or 0 if none. */
static int next_event(shmbus_sub *sub, char *out)
{
    int n = shmbus_poll(sub, copy_msg, out, 1);

    assert_shmbus_ok(n);
    return n;
}

static void test_events_publish(void **state)
{
    struct sbd_config cfg;
    struct sbd_registry reg;
    struct sbd_topic *t;
    shmbus_sub *sub;
    char line[BUF];
    struct sbd_ev_field f[] = {SBD_EV_S("peer", "p")};

    (void)state;
    sbd_config_defaults(&cfg);
    snprintf(cfg.bus, sizeof(cfg.bus), "tev%d", (int)getpid());
    assert_int_equal(sbd_registry_init(&reg, &cfg), 0);
    sbd_event("bridge_closed", f, 1); /* before the start: nothing, no crash */
    assert_shmbus_ok(sbd_events_start(&reg, cfg.bus));
    t = sbd_topic_find(&reg, SBD_EVENTS_TOPIC);
    assert_non_null(t);
    assert_int_equal(t->info.mode, SHMBUS_LOSSY);
    assert_int_equal(t->info.capacity, SBD_EVENTS_CAPACITY);
    assert_int_equal(t->info.max_msg_size, SBD_EVENTS_MSG_MAX);
    assert_shmbus_ok(shmbus_sub_create(t->t, NULL, &sub));
    assert_int_equal(next_event(sub, line), 0);

    sbd_event("bridge_closed", f, 1);
    assert_int_equal(next_event(sub, line), 1);
    assert_true(strncmp(line, "{\"v\":1,\"time_ns\":", 17) == 0);
    assert_non_null(strstr(line, ",\"bus\":\"tev"));
    assert_non_null(strstr(line, ",\"event\":\"bridge_closed\",\"peer\":\"p\"}"));

    /* "reaped": counts of one process in one topic gathered, told once
     * two passes have ended since the first note. */
    sbd_reaped_note(t, 4242, SBD_REAPED_SLOTS, 1);
    sbd_reaped_note(t, 4242, SBD_REAPED_SLOTS, 1);
    sbd_reaped_note(t, 4242, SBD_REAPED_PUBLISHERS, 1);
    sbd_reaped_pass_end();
    assert_int_equal(next_event(sub, line), 0);
    sbd_reaped_note(t, 4242, SBD_REAPED_CLAIMS, 1);
    sbd_reaped_note(t, 77, SBD_REAPED_SLOTS, 1);
    sbd_reaped_pass_end();
    assert_int_equal(next_event(sub, line), 1);
    assert_non_null(strstr(line, "\"event\":\"reaped\",\"pid\":4242,\"topic\":\"" SBD_EVENTS_TOPIC
                                 "\",\"slots\":2,\"publishers\":1,\"claims_ended\":1,"
                                 "\"returned\":0}"));
    assert_int_equal(next_event(sub, line), 0);
    sbd_reaped_flush(); /* the daemon stops: pid 77's told at once */
    assert_int_equal(next_event(sub, line), 1);
    assert_non_null(strstr(line, "\"pid\":77,"));

    sbd_events_stop();
    sbd_event("bridge_closed", f, 1); /* after the stop: nothing */
    assert_int_equal(next_event(sub, line), 0);
    shmbus_sub_destroy(sub);
    sbd_registry_fini(&reg, 1);
    assert_int_equal(bus_segments_remove(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_format_exact),  cmocka_unit_test(test_events_format_escape),
        cmocka_unit_test(test_events_format_bounds), cmocka_unit_test(test_events_largest_fit),
        cmocka_unit_test(test_events_reserved),      cmocka_unit_test(test_events_publish),
    };
    int rc;

    snprintf(bus_prefix, sizeof(bus_prefix), SBD_SEG_PREFIX "tev%d.", (int)getpid());
    atexit(bus_cleanup);
    sbd_log_set_level(SBD_WARN);
    urcu_memb_register_thread();
    rc = cmocka_run_group_tests_name("events", tests, NULL, NULL);
    urcu_memb_unregister_thread();
    return rc;
}
