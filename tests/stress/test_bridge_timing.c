/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's timing tests (shmbusd --bridge, bridgetest.h): each
 * passes on time or CPU time measured, so each is a timing test and lives
 * here. The authentication and publish timeouts as configured; local
 * sleepers woken soon after a remote publish; the daemon's CPU while
 * paused on a half-closed connection, with idle pumps of 63, 64 and 127
 * topics, and out of descriptors; a PING answered in time beside a busy
 * local publisher. Each test runs its own daemon; the teardown checks that
 * it exited 0 (a sanitizer report in it fails the test) and left no
 * segment.
 */
#include "bridgetest.h"

#include <sys/resource.h>

/* A connection that never authenticates is closed after
 * --bridge-auth-timeout (300 ms), with an error in its protocol;
 * authenticated ones stay. */
static void test_bridge_auth_timeout(void **state)
{
    struct bc *ok = bc_open(), *idle, *j;
    int64_t t0, t1, t2;

    (void)state;
    bc_send_str(ok, "AUTH " BT_TOKEN "\r\n");
    bc_expect(ok, "+OK\r\n");
    t0 = du_now_ms();
    idle = bc_open();
    j = bc_open();
    bc_send_str(j, "{\"command\":\"PING\"}\n");
    bc_expect_line(j, "{\"ok\":false,\"command\":\"PING\",\"error\":\"authentication required: "
                      "send AUTH with the token first\"}");
    bc_expect(idle, "-ERR authentication timeout\r\n");
    t1 = du_now_ms() - t0;
    assert_true(bc_wait_eof(idle, BT_MS, NULL));
    bc_expect_line(j, "{\"ok\":false,\"error\":\"authentication timeout\"}");
    assert_true(bc_wait_eof(j, BT_MS, NULL));
    t2 = du_now_ms() - t0;
    print_message("unauthenticated connections closed after %lld and %lld ms (timeout 300)\n",
                  (long long)t1, (long long)t2);
    assert_true(t1 >= 290);
    /* Within a margin of the configured timeout, not a multiple of it. */
    if (t1 > 300 + 250 || t2 > 300 + 250)
        fail_msg("closed after %lld/%lld ms; --bridge-auth-timeout is 300", (long long)t1,
                 (long long)t2);
    bc_send_str(ok, "PING\r\n");
    bc_expect(ok, "+PONG\r\n");
    bc_close(ok);
    bc_close(idle);
    bc_close(j);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static const struct bt_opts pubto_opts = {.args = {"--bridge-pub-timeout", "200", NULL}};

/* --bridge-pub-timeout 200: the publish that finds the topic full gets an
 * error after about 200 ms and is not published; the next commands run. */
static void test_bridge_backpressure_timeout(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "bt", SHMBUS_RELIABLE, 4);
    shmbus_sub *s = local_sub(t);
    struct bc *c = bc_open(), *j = bc_open();
    unsigned char buf[64];
    int64_t t0, ms;
    char *line;

    bc_send_str(c, "PUBLISH bt p0\r\nPUBLISH bt p1\r\nPUBLISH bt p2\r\nPUBLISH bt p3\r\n");
    bc_expect(c, ":1\r\n:1\r\n:1\r\n:1\r\n");
    t0 = du_now_ms();
    bc_send_str(c, "PUBLISH bt p4\r\nPING\r\n");
    line = bc_line(c);
    ms = du_now_ms() - t0;
    /* The wording is free; the kind of reply, the topic and the time not. */
    if (strncmp(line, "-ERR topic 'bt' ", 16) != 0 || strstr(line, "full") == NULL ||
        !ends_with(line, " 200 ms\r"))
        fail_msg("want an error on topic 'bt' being full for 200 ms, got '%s'",
                 esc(line, strlen(line)));
    free(line);
    bc_expect(c, "+PONG\r\n");
    print_message("full-topic error after %lld ms (timeout 200)\n", (long long)ms);
    assert_true(ms >= 190 && ms < 5000);
    for (int i = 0; i < 4; i++) {
        char want[4] = {'p', (char)('0' + i)};

        local_expect(s, want, 2);
    }
    assert_int_equal(shmbus_recv(s, buf, sizeof(buf), NULL, 0), -EAGAIN);
    /* The same in JSON. */
    for (int i = 0; i < 4; i++) {
        bc_send_str(j, "{\"command\":\"PUB\",\"topic\":\"bt\",\"payload\":\"q\"}\n");
        bc_expect_line(j, "{\"ok\":true,\"command\":\"PUB\",\"topic\":\"bt\",\"receivers\":1}");
    }
    bc_send_str(j, "{\"command\":\"PUB\",\"topic\":\"bt\",\"payload\":\"q\",\"id\":5}\n");
    line = bc_line(j);
    if (strncmp(line, "{\"ok\":false,\"command\":\"PUB\",\"id\":5,\"error\":\"topic 'bt' ", 45) !=
            0 ||
        !ends_with(line, " 200 ms\"}"))
        fail_msg("want a JSON error on topic 'bt' being full for 200 ms, got '%s'", line);
    free(line);
    bc_close(c);
    bc_close(j);
}

#define QW_ROUNDS 30
/* A missed wake-up shows as up to the 50 ms sleep slice (TSan: 40 ms). */
#define QW_MAX_US (BT_SLOW == 1 ? 20000 : 40000)

/*
 * Quiet publishes must not starve local sleepers. The bridge's own
 * publisher skips the futex wake-up when the only sleeper on the topic is
 * a pump (counted with weight SB_RELAY_WEIGHT, registry/relay.h; see
 * ring.h sb_wake_readers()): the I/O thread delivers what it publishes
 * itself. With local subscribers asleep as well, it must wake one (which
 * relays to the others, wait.c wake_delegate()), or they sleep out their
 * slice (SB_WAIT_SLICE_NS, 50 ms) before seeing the message. A remote
 * subscriber keeps a pump sleeping on @p topic; each round, @p nsleep
 * local subscribers with spin_ns = -1 (no spin: straight to the futex)
 * block in shmbus_recv() with a long timeout. Whether they sleep is not
 * public (data_waiters is internal): we give them 5 ms, while starting a
 * thread and reaching futex_wait takes microseconds. Then a remote
 * PUBLISH must reach each of them within QW_MAX_US, every round.
 */
static void qw_rounds(struct du_daemon *d, const char *topic, int nsleep)
{
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, topic, 0, 0);
    shmbus_sub_opts o = {.spin_ns = -1};
    shmbus_sub *s[BT_SLEEPERS];
    struct bc *sub = bc_open(), *pub = bc_open();
    size_t tl = strlen(topic);
    char cmd[128], want[160], msg[16];
    int64_t worst = 0;
    int n;

    assert_true(nsleep <= BT_SLEEPERS);
    for (int k = 0; k < nsleep; k++) {
        assert_shmbus_ok(shmbus_sub_create(t, &o, &s[k]));
        BT_TRACK(bt_subs, s[k]);
    }
    snprintf(cmd, sizeof(cmd), "SUBSCRIBE %s\r\n", topic);
    bc_send_str(sub, cmd);
    n = snprintf(want, sizeof(want), "*3\r\n$9\r\nsubscribe\r\n$%zu\r\n%s\r\n:1\r\n", tl, topic);
    bc_expect_at(sub, want, (size_t)n, __LINE__);
    for (int r = 0; r < QW_ROUNDS; r++) {
        int mlen = snprintf(msg, sizeof(msg), "qw%02d", r);
        int64_t t0;

        for (int k = 0; k < nsleep; k++)
            sleeper_start(k, s[k]);
        du_sleep_ms(5); /* they are asleep by now (see above) */
        snprintf(cmd, sizeof(cmd), "PUBLISH %s %s\r\n", topic, msg);
        t0 = bt_now_us();
        bc_send_str(pub, cmd);
        for (int k = 0; k < nsleep; k++) {
            const struct bt_sleeper *z = &bt_sleepers[k];
            int64_t us;

            sleeper_join(k);
            us = z->done_us - t0;
            if (z->rc != mlen || memcmp(z->buf, msg, (size_t)mlen) != 0)
                fail_msg("round %d, sleeper %d: shmbus_recv() returned %d (%s), want '%s'", r, k,
                         z->rc, z->rc < 0 ? shmbus_strerror(z->rc) : "a message", msg);
            if (us > QW_MAX_US)
                fail_msg("round %d of %d, sleeper %d of %d: woken %lld us after the remote "
                         "PUBLISH, want < %d us (a missed wake-up waits for the end of the "
                         "50 ms sleep slice)",
                         r + 1, QW_ROUNDS, k + 1, nsleep, (long long)us, QW_MAX_US);
            worst = us > worst ? us : worst;
        }
        n = snprintf(want, sizeof(want), ":%d\r\n", nsleep + 1);
        bc_expect_at(pub, want, (size_t)n, __LINE__);
        n = snprintf(want, sizeof(want), "*3\r\n$7\r\nmessage\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n", tl,
                     topic, mlen, msg);
        bc_expect_at(sub, want, (size_t)n, __LINE__);
    }
    print_message("%d local sleeper%s: woken at most %lld us after a remote PUBLISH\n", nsleep,
                  nsleep == 1 ? "" : "s", (long long)worst);
    bc_close(sub);
    bc_close(pub);
}

static void test_bridge_quiet_publish_wakes_local_sleeper(void **state)
{
    qw_rounds(*state, "qw.one", 1);
}

static void test_bridge_quiet_publish_wakes_two_local_sleepers(void **state)
{
    qw_rounds(*state, "qw.two", 2);
}

#define HC_CPU_MS (100 * BT_SLOW) /* the daemon's CPU time allowed in BT_QUIET_MS */

/*
 * A connection whose PUBLISH waits on a full reliable topic (paused), and
 * whose peer then half-closes (shutdown(SHUT_WR)). Guards against the
 * daemon spinning on a hang-up it cannot act on while paused (a
 * level-triggered EPOLLRDHUP or EPOLLIN it does not read: a CPU at 100%),
 * and against it dropping the waiting publish at the end of the input.
 * For BT_QUIET_MS the daemon, all threads, uses less than HC_CPU_MS of CPU
 * (/proc/PID/stat) and sends nothing; once the local subscriber drains,
 * the publish goes through, is answered, and the connection is closed.
 */
static void test_bridge_half_close_while_paused(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "hc", SHMBUS_RELIABLE, 2);
    shmbus_sub *s = local_sub(t); /* reads nothing yet: the topic fills */
    struct bc *c = bc_open();
    int64_t cpu, wall;

    bc_send_str(c, "PUBLISH hc a\r\nPUBLISH hc b\r\nPUBLISH hc c\r\n");
    /* The replies of a and b are sent once c has paused the connection. */
    bc_expect(c, ":1\r\n:1\r\n");
    assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
    cpu = du_cpu_ms(d->pid);
    wall = du_now_ms();
    bc_quiet(c, BT_QUIET_MS);
    cpu = du_cpu_ms(d->pid) - cpu;
    wall = du_now_ms() - wall;
    print_message("paused and half-closed: the daemon used %lld ms of CPU in %lld ms\n",
                  (long long)cpu, (long long)wall);
    if (cpu >= HC_CPU_MS)
        fail_msg("the daemon used %lld ms of CPU in %lld ms with a paused, half-closed "
                 "connection (want < %d: it spins)",
                 (long long)cpu, (long long)wall, HC_CPU_MS);
    local_expect(s, "a", 1);
    local_expect(s, "b", 1);
    local_expect(s, "c", 1);
    bc_expect(c, ":1\r\n");
    assert_true(bc_wait_eof(c, BT_MS, NULL));
    bc_close(c);
}

#define PI_MS     500             /* how long an idle daemon is watched */
#define PI_CPU_MS (100 * BT_SLOW) /* the CPU time it may use meanwhile */
#define PI_MAX    127

/*
 * SUBSCRIBE t1..tN on one connection, topics created locally first: the
 * daemon then idles. Guards the pumps' topic count (bridge/state.h
 * SBB_PUMP_TOPICS): a pump sleeps in one futex_waitv() on its topics and
 * its bell, which takes at most SHMBUS_WAITSET_MAX words. A pump that took
 * 64 topics asked for 65, was refused at once and spun at 100% CPU
 * (bridge/pump.c now also logs "cannot sleep" and naps if that ever
 * happens: the log must not say so). Over PI_MS the daemon, all threads,
 * uses less than PI_CPU_MS of CPU (/proc/PID/stat) and sends nothing; a
 * local publish on tN, then on t1, still reaches the subscriber. 63
 * topics fill one pump; 64 take a second; 127 fill two and take a third.
 */
static void pump_topics_idle(struct du_daemon *d, int n)
{
    static char cmd[16 + PI_MAX * 5];
    shmbus_bus *bus = local_connect(d);
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64}; /* small: there are many */
    shmbus_topic *t[PI_MAX];
    struct bc *c = bc_open();
    char name[16], want[96];
    size_t len = (size_t)sprintf(cmd, "SUBSCRIBE");
    int64_t cpu, wall;
    int k;

    assert_true(n <= PI_MAX);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "t%d", i + 1);
        t[i] = NULL;
        assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t[i]));
        BT_TRACK(bt_topics, t[i]);
        len += (size_t)sprintf(cmd + len, " %s", name);
    }
    len += (size_t)sprintf(cmd + len, "\r\n");
    bc_send(c, cmd, len);
    for (int i = 1; i <= n; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        len = (size_t)snprintf(want, sizeof(want), "*3\r\n$9\r\nsubscribe\r\n$%zu\r\n%s\r\n:%d\r\n",
                               strlen(name), name, i);
        bc_expect_at(c, want, len, __LINE__);
    }
    cpu = du_cpu_ms(d->pid);
    wall = du_now_ms();
    bc_quiet(c, PI_MS);
    cpu = du_cpu_ms(d->pid) - cpu;
    wall = du_now_ms() - wall;
    print_message("%d topics subscribed: the daemon used %lld ms of CPU in %lld ms\n", n,
                  (long long)cpu, (long long)wall);
    if (cpu >= PI_CPU_MS)
        fail_msg("the daemon used %lld ms of CPU in %lld ms with %d idle topics subscribed (want "
                 "< %d: a pump spins)",
                 (long long)cpu, (long long)wall, n, PI_CPU_MS);
    if ((k = du_log_count(bt_log, "cannot sleep")) > 0)
        fail_msg("the daemon logged %d times that a pump cannot sleep", k);
    assert_shmbus_ok(shmbus_publish(local_pub(t[n - 1]), "last", 4, 0));
    len =
        (size_t)snprintf(want, sizeof(want), "*3\r\n$7\r\nmessage\r\n$%zu\r\n%s\r\n$4\r\nlast\r\n",
                         strlen(name), name);
    bc_expect_at(c, want, len, __LINE__);
    assert_shmbus_ok(shmbus_publish(local_pub(t[0]), "first", 5, 0));
    bc_expect(c, "*3\r\n$7\r\nmessage\r\n$2\r\nt1\r\n$5\r\nfirst\r\n");
    bc_close(c);
}

static const struct bt_opts log_opts = {.log = 1};

static void test_bridge_pump_63_topics_idle(void **state)
{
    pump_topics_idle(*state, 63);
}

static void test_bridge_pump_64_topics_idle(void **state)
{
    pump_topics_idle(*state, 64);
}

static void test_bridge_pump_127_topics_idle(void **state)
{
    pump_topics_idle(*state, 127);
}

#define NS_ROUNDS 5
#define NS_MAX_MS (200 * BT_SLOW) /* a PING on a fresh connection is answered within */
#define NS_MSG    1024

/*
 * A local publisher that never stops (1 KiB messages, lossy) on a topic
 * with one JSON remote subscriber (drained by a thread) cannot stall the
 * I/O thread: after a remote PUBLISH on that topic from a second
 * connection, a PING on a third, fresh, connection is answered within
 * NS_MAX_MS, NS_ROUNDS times. Guards sbb_publish_deliver() (bridge/publish.c): after
 * a remote publish the I/O thread delivers the topic itself, and it used
 * to go on while rounds came back full, which they always do while a
 * local publisher keeps up; now it delivers one round and rings the pump.
 */
static void test_bridge_busy_local_publisher_no_stall(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = local_connect(d);
    shmbus_topic *t = local_open(bus, "hot", SHMBUS_LOSSY, 0);
    struct bc *sub = bc_open(), *pub = bc_open();
    int64_t end = du_now_ms() + BT_MS, worst = 0;

    bc_send_str(sub, "{\"command\":\"SUB\",\"topic\":\"hot\"}\n");
    bc_expect_line(sub, "{\"ok\":true,\"command\":\"SUB\",\"topic\":\"hot\",\"subscriptions\":1}");
    drain_start(&sub, 1);
    pt_start_size(local_pub(t), "hot", 64, 0, NS_MSG);
    while (drain_bytes() < 64 * NS_MSG)
        if (du_now_ms() > end)
            fail_msg("the JSON subscriber receives nothing from the busy topic");
    for (int r = 0; r < NS_ROUNDS; r++) {
        struct bc *q;
        int64_t t0, ms;
        char *line;
        int got;

        bc_send_str(pub, "PUBLISH hot remote\r\n");
        q = bc_open();
        t0 = du_now_ms();
        bc_send_str(q, "PING\r\n");
        got = bc_need(q, 7, 5 * NS_MAX_MS) == 0 && memcmp(q->buf, "+PONG\r\n", 7) == 0;
        ms = du_now_ms() - t0;
        if (!got || ms > NS_MAX_MS)
            fail_msg("round %d: PING on a fresh connection: %s after %lld ms (want +PONG within "
                     "%d ms: the I/O thread is stuck delivering the busy topic)",
                     r + 1, got ? "+PONG" : "no answer", (long long)ms, NS_MAX_MS);
        worst = ms > worst ? ms : worst;
        bc_close(q);
        line = bc_line(pub);
        if (line[0] != ':')
            fail_msg("round %d: PUBLISH got '%s', want an integer", r + 1, esc(line, strlen(line)));
        free(line);
    }
    print_message("busy local publisher (%ld sent): a fresh PING answered within %lld ms\n",
                  pt_stop(), (long long)worst);
    drain_stop();
    bc_close(sub);
    bc_close(pub);
}

#define OD_SPARE  32  /* descriptors the daemon may open beyond those it has */
#define OD_CONNS  100 /* connections: far more than that */
#define OD_MS     500
#define OD_CPU_MS (200 * BT_SLOW)
#define OD_LOG    3 /* "accept" lines the daemon may log meanwhile */

/*
 * Out of descriptors. The daemon's RLIMIT_NOFILE is lowered (prlimit(2),
 * once it serves) to leave it about OD_SPARE descriptors, then OD_CONNS
 * connections come: accept() fails with EMFILE while the rest wait in the
 * backlog. Guards conn_accept() and accept_pause() (bridge/io.c): the
 * listening socket stayed readable, so the I/O thread spun and logged
 * every failed accept; now it stops listening for 100 ms and logs once a
 * second. For OD_MS the daemon uses less than OD_CPU_MS of CPU, and logs
 * 1 to OD_LOG lines about accept (none: the limit was never hit); it
 * still serves the connections it has; once they all close, a new one is
 * served.
 */
static void test_bridge_out_of_descriptors(void **state)
{
    struct du_daemon *d = *state;
    struct rlimit old, low;
    struct bc *c[OD_CONNS], *x;
    int64_t cpu, wall, t0;
    int lines;

    assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, NULL, &old), 0);
    /* New descriptors take the lowest free numbers: about OD_SPARE are left. */
    assert_true(du_fd_count(d->pid) > 0);
    low.rlim_cur = (rlim_t)du_fd_count(d->pid) + OD_SPARE;
    low.rlim_max = old.rlim_max;
    if (prlimit(d->pid, RLIMIT_NOFILE, &low, NULL) < 0)
        skip(); /* not allowed here (a sandbox): nothing to test */
    for (int i = 0; i < OD_CONNS; i++)
        c[i] = bc_open();
    bc_send_str(c[0], "PING\r\n");
    bc_expect(c[0], "+PONG\r\n");
    cpu = du_cpu_ms(d->pid);
    wall = du_now_ms();
    du_sleep_ms(OD_MS);
    cpu = du_cpu_ms(d->pid) - cpu;
    wall = du_now_ms() - wall;
    lines = du_log_count(bt_log, "accept");
    print_message("out of descriptors: the daemon used %lld ms of CPU in %lld ms, logged %d "
                  "accept lines\n",
                  (long long)cpu, (long long)wall, lines);
    if (cpu >= OD_CPU_MS)
        fail_msg("the daemon used %lld ms of CPU in %lld ms out of descriptors (want < %d: it "
                 "spins on accept)",
                 (long long)cpu, (long long)wall, OD_CPU_MS);
    if (lines < 1 || lines > OD_LOG)
        fail_msg("%d lines about accept in the daemon's log, want 1 to %d (0: the limit was not "
                 "reached)",
                 lines, OD_LOG);
    for (int i = 0; i < OD_CONNS; i++)
        bc_close(c[i]);
    t0 = du_now_ms();
    x = bc_open();
    bc_send_str(x, "PING\r\n");
    bc_expect(x, "+PONG\r\n");
    print_message("a new connection served %lld ms after the others closed\n",
                  (long long)(du_now_ms() - t0));
    bc_close(x);
    assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &old, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BRIDGE_TEST_ARGS(test_bridge_auth_timeout, &bt_auth_opts),
        BRIDGE_TEST_ARGS(test_bridge_backpressure_timeout, &pubto_opts),
        BRIDGE_TEST(test_bridge_quiet_publish_wakes_local_sleeper),
        BRIDGE_TEST(test_bridge_quiet_publish_wakes_two_local_sleepers),
        BRIDGE_TEST(test_bridge_half_close_while_paused),
        BRIDGE_TEST_ARGS(test_bridge_pump_63_topics_idle, &log_opts),
        BRIDGE_TEST_ARGS(test_bridge_pump_64_topics_idle, &log_opts),
        BRIDGE_TEST_ARGS(test_bridge_pump_127_topics_idle, &log_opts),
        BRIDGE_TEST(test_bridge_busy_local_publisher_no_stall),
        BRIDGE_TEST_ARGS(test_bridge_out_of_descriptors, &log_opts),
    };

    bt_init();
    return cmocka_run_group_tests_name("bridge_timing", tests, NULL, NULL);
}
