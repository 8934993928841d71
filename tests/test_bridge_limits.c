/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's limits end to end (shmbusd --bridge, bridgetest.h): slow
 * clients cut off, the connection and subscription limits, back-pressure
 * of reliable topics and a publish paused on one, and the slots a
 * reliable burst leaves. Each test runs its own daemon; the teardown checks
 * that it exited 0 (a sanitizer report in it fails the test) and left no
 * segment.
 */
#include "bridgetest.h"

static const struct bt_opts slow_opts = {.args = {"--bridge-max-output", "64K", NULL}};

#define SLOW_MSG 1000
/* Published before the fast subscriber reads them: well under what the
 * socket buffers to it hold, so that it never has 64K waiting. */
#define SLOW_CHUNK 16

/* The kernel's largest send buffer for a TCP socket: the most the
 * daemon's socket to the slow client can hold beside its own buffer. */
static long tcp_wmem_max(void)
{
    long lo = 0, def = 0, hi = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");

    if (f != NULL) {
        if (fscanf(f, "%ld %ld %ld", &lo, &def, &hi) != 3)
            hi = 0;
        fclose(f);
    }
    return hi > 0 ? hi : 4l << 20;
}

/* Publish @p n messages from @p first, then read them from the fast
 * subscriber, checking each. */
static void slow_round(shmbus_pub *p, redisContext *fast, int first, int n)
{
    unsigned char buf[SLOW_MSG];

    for (int i = first; i < first + n; i++) {
        memset(buf, 'a' + i % 26, sizeof(buf));
        memcpy(buf, &i, sizeof(i));
        /* Lossy: never waits, whoever lags. */
        assert_shmbus_ok(shmbus_publish(p, buf, sizeof(buf), 0));
    }
    for (int i = first; i < first + n; i++) {
        memset(buf, 'a' + i % 26, sizeof(buf));
        memcpy(buf, &i, sizeof(i));
        rd_expect_msg(fast, "slow", buf, sizeof(buf));
    }
}

/* A subscriber that never reads is disconnected once its output would
 * pass --bridge-max-output; a fast subscriber of the same topic gets
 * every message, and the local publisher never waits. */
static void test_bridge_slow_client_disconnected(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "slow", 0, 4096);
    shmbus_pub *p = local_pub(t);
    struct bc *slow = bc_open_rcvbuf(4096);
    redisContext *fast = rd_open();
    long total = tcp_wmem_max() + (64 << 10) + (1 << 20);
    int n = (int)(total / SLOW_MSG) + 1, done = 0;
    size_t dropped = 0;

    bc_send_str(slow, "SUBSCRIBE slow\r\n");
    bc_expect(slow, "*3\r\n$9\r\nsubscribe\r\n$4\r\nslow\r\n:1\r\n");
    freeReplyObject(redisCommand(fast, "SUBSCRIBE slow"));
    while (done < n) {
        int k = n - done < SLOW_CHUNK ? n - done : SLOW_CHUNK;

        slow_round(p, fast, done, k);
        done += k;
    }
    /* Everything it could have been sent is far more than the daemon may
     * hold for it: it must have been cut off. */
    if (!bc_wait_eof(slow, BT_MS, &dropped))
        fail_msg("slow client not disconnected (read %zu bytes of ~%ld)", dropped,
                 (long)n * (SLOW_MSG + 30));
    assert_true(dropped < (size_t)n * SLOW_MSG);
    slow_round(p, fast, n, 10);
    bc_close(slow);
    rd_close(fast);
}

static const struct bt_opts limit_opts = {
    .args = {"--bridge-max-conns", "3", "--bridge-max-subs", "2", NULL}};

/* --bridge-max-conns 3: a 4th connection is refused with Redis's error
 * and closed; once one leaves, a new one is served. */
static void test_bridge_limit_conns(void **state)
{
    struct bc *c[3], *extra;
    int64_t end;
    int served = 0;

    (void)state;
    for (int i = 0; i < 3; i++) {
        c[i] = bc_open();
        bc_send_str(c[i], "PING\r\n");
        bc_expect(c[i], "+PONG\r\n");
    }
    extra = bc_open();
    bc_expect(extra, "-ERR max number of clients reached\r\n");
    assert_true(bc_wait_eof(extra, BT_MS, NULL));
    bc_close(extra);
    bc_close(c[0]);
    /* The daemon notices the close asynchronously: retry until served. */
    end = du_now_ms() + BT_MS;
    while (!served && du_now_ms() < end) {
        extra = bc_open();
        bc_send_str(extra, "PING\r\n");
        assert_int_equal(bc_need(extra, 7, BT_MS), 0);
        served = memcmp(extra->buf, "+PONG\r\n", 7) == 0;
        bc_close(extra);
        if (!served)
            du_sleep_ms(10);
    }
    assert_true(served);
    bc_close(c[1]);
    bc_close(c[2]);
}

/* --bridge-max-subs 2 counts channels and patterns; a repeated one is
 * not counted twice. */
static void test_bridge_limit_subs(void **state)
{
    struct bc *r = bc_open(), *j = bc_open();

    (void)state;
    bc_send_str(r, "SUBSCRIBE a b c\r\nPSUBSCRIBE p*\r\nSUBSCRIBE a\r\n");
    bc_expect(r, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
                 "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
                 "-ERR too many subscriptions: 2 (--bridge-max-subs)\r\n"
                 "-ERR too many subscriptions: 2 (--bridge-max-subs)\r\n"
                 "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n");
    bc_send_str(r, "UNSUBSCRIBE a\r\nPSUBSCRIBE p*\r\n");
    bc_expect(r, "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n"
                 "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:2\r\n");
    bc_send_str(j,
                "{\"command\":\"SUB\",\"topic\":\"x\"}\n{\"command\":\"SUB\",\"topic\":\"y\"}\n"
                "{\"command\":\"SUB\",\"topic\":\"z\"}\n{\"command\":\"SUB\",\"topic\":\"x\"}\n");
    bc_expect_line(j, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"x\",\"subscriptions\":1}");
    bc_expect_line(j, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"y\",\"subscriptions\":2}");
    bc_expect_line(j, "{\"ok\":false,\"command\":\"SUB\",\"error\":\"too many subscriptions: 2 "
                      "(--bridge-max-subs)\"}");
    bc_expect_line(j, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"x\",\"subscriptions\":2}");
    bc_close(r);
    bc_close(j);
}

#define BP_CAP 8
#define BP_N   40

/* A pipeline of PUBLISH into a full reliable topic: the first BP_CAP go
 * through, then the daemon stops answering (it stops reading) while still
 * serving others; once the local subscriber drains, every remaining one
 * completes in order, nothing lost. */
static void test_bridge_backpressure_reliable(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "bp", SHMBUS_RELIABLE, BP_CAP);
    shmbus_sub *s = local_sub(t);
    struct bc *c = bc_open(), *other = bc_open();
    char cmd[64];

    for (int i = 0; i < BP_N; i++) {
        snprintf(cmd, sizeof(cmd), "PUBLISH bp m%02d\r\n", i);
        bc_send_str(c, cmd);
    }
    for (int i = 0; i < BP_CAP; i++)
        bc_expect(c, ":1\r\n");
    bc_quiet(c, BT_QUIET_MS);
    bc_send_str(other, "PING\r\n");
    bc_expect(other, "+PONG\r\n");
    for (int i = 0; i < BP_N; i++) {
        int n = snprintf(cmd, sizeof(cmd), "m%02d", i);

        local_expect(s, cmd, (size_t)n);
    }
    for (int i = BP_CAP; i < BP_N; i++)
        bc_expect(c, ":1\r\n");
    bc_send_str(c, "PING\r\n");
    bc_expect(c, "+PONG\r\n");
    bc_close(c);
    bc_close(other);
}

static const struct bt_opts cmdto_opts = {
    .args = {"--bridge-cmd-timeout", "200", "--bridge-pub-timeout", "60000", NULL}};

/* --bridge-cmd-timeout 200: a publish paused on a full reliable topic is
 * a complete command, which --bridge-pub-timeout bounds, not a slow one:
 * its connection stays open for five times the command timeout, and once
 * the topic has room the publish and the next command are answered. */
static void test_bridge_paused_past_cmd_timeout(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "ct", SHMBUS_RELIABLE, 2);
    shmbus_sub *s = local_sub(t); /* reads nothing yet: the topic fills */
    struct bc *c = bc_open();

    bc_send_str(c, "PUBLISH ct a\r\nPUBLISH ct b\r\nPUBLISH ct c\r\nPING\r\n");
    bc_expect(c, ":1\r\n:1\r\n");
    bc_quiet(c, 1000); /* neither a reply nor a close */
    local_expect(s, "a", 1);
    local_expect(s, "b", 1);
    local_expect(s, "c", 1);
    bc_expect(c, ":1\r\n+PONG\r\n");
    bc_close(c);
}

/* How many of @p t's busy subscriber slots @p pid owns; *total: all busy. */
static int slots_of(const shmbus_topic *t, pid_t pid, int *total)
{
    shmbus_slot_info slots[64]; /* a topic's default max_subscribers */
    int n = shmbus_topic_slots_get(t, slots, 64), mine = 0;

    if (n < 0)
        fail_msg("shmbus_topic_slots_get: %s", shmbus_strerror(n));
    for (int i = 0; i < n && i < 64; i++)
        mine += slots[i].pid == (uint32_t)pid;
    *total = n;
    return mine;
}

#define RB_PAIRS   200
#define RB_CAP     16
#define RB_SETTLE  1000      /* ms for the daemon to give its slot back */
#define RB_WAIT_NS 100000000 /* a publish that waits this long is gated */

/*
 * SUBSCRIBE/UNSUBSCRIBE of a reliable topic, RB_PAIRS pairs in one write.
 * Guards the bridge's subscriber slot outliving the subscriptions (it was
 * given back only when a pump got round to it: a burst ran the topic out
 * of slots, and a slot nobody reads gates a reliable topic's publishers).
 * Once the burst is answered (and at most RB_SETTLE ms later), the daemon
 * owns none of the topic's slots (shmbus_topic_slots_get()), and a local
 * publisher puts RB_CAP + 10 messages in it, each without waiting out a
 * short timeout: nothing gates a topic nobody subscribes to.
 */
static void test_bridge_reliable_burst_frees_slots(void **state)
{
    static const char pair[] = "SUBSCRIBE rbb\r\nUNSUBSCRIBE rbb\r\n";
    static char all[RB_PAIRS * (sizeof(pair) - 1)];
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "rbb", SHMBUS_RELIABLE, RB_CAP);
    shmbus_pub *p = local_pub(t);
    struct bc *c = bc_open();
    shmbus_topic_info info;
    int64_t end;
    int mine, total;

    for (int i = 0; i < RB_PAIRS; i++)
        memcpy(all + (size_t)i * (sizeof(pair) - 1), pair, sizeof(pair) - 1);
    bc_send(c, all, sizeof(all));
    for (int i = 0; i < RB_PAIRS; i++)
        bc_expect(c, "*3\r\n$9\r\nsubscribe\r\n$3\r\nrbb\r\n:1\r\n"
                     "*3\r\n$11\r\nunsubscribe\r\n$3\r\nrbb\r\n:0\r\n");
    end = du_now_ms() + RB_SETTLE;
    while ((mine = slots_of(t, d->pid, &total)) > 0 && du_now_ms() < end)
        du_sleep_ms(1);
    if (mine > 0 || total > 0)
        fail_msg("%d ms after the burst the daemon (pid %d) still owns %d of the topic's %d busy "
                 "slot%s",
                 RB_SETTLE, (int)d->pid, mine, total, total == 1 ? "" : "s");
    for (int i = 0; i < RB_CAP + 10; i++) {
        int rc = shmbus_publish(p, &i, sizeof(i), RB_WAIT_NS);

        if (rc < 0) {
            mine = slots_of(t, d->pid, &total);
            fail_msg("message %d of %d to a reliable topic nobody subscribes to: %s (%d busy "
                     "slots, %d the daemon's)",
                     i + 1, RB_CAP + 10, shmbus_strerror(rc), total, mine);
        }
    }
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    assert_int_equal(info.published, RB_CAP + 10);
    bc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BRIDGE_TEST_ARGS(test_bridge_slow_client_disconnected, &slow_opts),
        BRIDGE_TEST_ARGS(test_bridge_limit_conns, &limit_opts),
        BRIDGE_TEST_ARGS(test_bridge_limit_subs, &limit_opts),
        BRIDGE_TEST(test_bridge_backpressure_reliable),
        BRIDGE_TEST_ARGS(test_bridge_paused_past_cmd_timeout, &cmdto_opts),
        BRIDGE_TEST(test_bridge_reliable_burst_frees_slots),
    };

    bt_init();
    return cmocka_run_group_tests_name("bridge_limits", tests, NULL, NULL);
}
