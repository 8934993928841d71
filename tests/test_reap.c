/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crash recovery (daemon/reaper.c): processes killed with SIGKILL at the
 * worst moments never stall the bus. A publisher stopped between claim and
 * commit (the fault-injection build's "publish-claimed" point) and killed
 * there leaves a record readers skip within the bound; a dead subscriber
 * stops gating reliable publishers even when a fork child keeps its
 * connection open or when it never talked to the daemon; a dead group
 * member's share goes to the others; and a daemon that stops leaves the
 * slots of live processes, and their segments, alone. A daemon that may not
 * use pidfds (a seccomp filter makes pidfd_open() fail) says so once and
 * finds the dead through /proc at every scan instead. Every test runs its own daemon
 * (daemonutil.h); children report through their exit status.
 */
#include "daemonutil.h"
#include "segfile.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define WAIT_NS  10000000000ll /* only a hang reaches it */
#define READY_MS 30000
#define MSG_MAX  64
#define CAP      8
/* A dead publisher's claim is ended within this (the default reap
 * interval is 20 ms); sanitizers slow everything down. */
#ifdef TU_SANITIZED
#define UNBLOCK_BOUND_MS 1000
#else
#define UNBLOCK_BOUND_MS 100
#endif
/* The same without pidfds: found by the periodic scan. Seconds: the bound
 * catches a claim never ended, not a slow machine. */
#define FALLBACK_BOUND_MS 5000
/* What the daemon logs once when it cannot use pidfds. */
#define FALLBACK_LOG "falling back"

enum { KID_OK = 0, KID_CONNECT = 2, KID_OPEN, KID_PUB, KID_SUB, KID_PIPE };

struct kid {
    const char *bus;
    const char *topic;
    uint32_t mode;
    uint32_t flags;
    const char *group;
    int ready;         /* write end: one byte once set up */
    int direct;        /* attach the segment by name, without the daemon */
    int fork_holder;   /* fork a child that keeps the connection open */
    int hold[2];       /* fork_holder: the child lives until the test closes hold[1] */
    uint32_t count;    /* messages a reader child expects */
    const char *fault; /* kid_stuck_batch(): where it stops */
};

static shmbus_topic_opts topic_opts(uint32_t mode, uint32_t flags)
{
    return (shmbus_topic_opts){
        .mode = mode, .capacity = CAP, .max_msg_size = MSG_MAX, .flags = flags};
}

static void open_topic(const char *bus_name, const char *name, uint32_t mode, uint32_t flags,
                       shmbus_bus **bus, shmbus_topic **t)
{
    shmbus_topic_opts o = topic_opts(mode, flags);

    assert_shmbus_ok(shmbus_connect(bus_name, bus));
    assert_shmbus_ok(shmbus_open(*bus, name, &o, 0, t));
}

/* A child's handle on k->topic: through the daemon, or by attaching the
 * segment by name (k->direct). @return KID_OK or the step that failed. */
static int kid_topic(const struct kid *k, shmbus_bus **bus, shmbus_topic **t)
{
    char seg[SHMBUS_NAME_MAX + 1];

    *bus = NULL;
    if (k->direct) {
        sbd_seg_name(seg, sizeof(seg), k->bus, k->topic, 0);
        return shmbus_topic_attach(seg, t) < 0 ? KID_OPEN : KID_OK;
    }
    if (shmbus_connect(k->bus, bus) < 0)
        return KID_CONNECT;
    return shmbus_open(*bus, k->topic, NULL, SHMBUS_OPEN_NOCREATE, t) < 0 ? KID_OPEN : KID_OK;
}

/* A reader child: its topic, a subscriber (start NEXT, no group), then
 * "ready" to the test. @return KID_OK or the step that failed. */
static int kid_reader(const struct kid *k, shmbus_bus **bus, shmbus_topic **t, shmbus_sub **sub)
{
    int rc = kid_topic(k, bus, t);

    if (rc != KID_OK)
        return rc;
    if (shmbus_sub_create(*t, NULL, sub) < 0)
        return KID_SUB;
    return du_signal(k->ready) < 0 ? KID_PIPE : KID_OK;
}

/* A publisher on @p k's topic (created with @p k's mode and flags) that
 * has published seqs 0..2 into *@p pub. @return KID_OK or what failed. */
static int kid_pub_three(const struct kid *k, shmbus_pub **pub)
{
    shmbus_topic_opts o = topic_opts(k->mode, k->flags);
    shmbus_bus *bus;
    shmbus_topic *t;
    uint8_t buf[MSG_MAX];

    if (shmbus_connect(k->bus, &bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(bus, k->topic, &o, 0, &t) < 0)
        return KID_OPEN;
    if (shmbus_pub_create(t, pub) < 0)
        return KID_PUB;
    for (uint32_t i = 0; i < 3; i++)
        if (shmbus_publish(*pub, buf, tu_fill(buf, 1, i, 32), WAIT_NS) < 0)
            return KID_PUB;
    return KID_OK;
}

/* Publish three messages, then a fourth that stops at the fault point. */
static int kid_stuck_publisher(void *arg)
{
    const struct kid *k = arg;
    shmbus_pub *pub;
    uint8_t buf[MSG_MAX];
    int rc = kid_pub_three(k, &pub);

    if (rc != KID_OK)
        return rc;
    setenv("SHMBUS_FAULT", "publish-claimed", 1);
    shmbus_publish(pub, buf, tu_fill(buf, 1, 3, 32), WAIT_NS); /* stops inside */
    return KID_PUB; /* never reached: killed while stopped */
}

/* Publish one message, stopping at the fault point SHMBUS_FAULT names. */
static int kid_stuck_unrecorded(void *arg)
{
    const struct kid *k = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    uint8_t buf[MSG_MAX];
    int rc = kid_topic(k, &bus, &t);

    if (rc != KID_OK)
        return rc;
    if (shmbus_pub_create(t, &pub) < 0)
        return KID_PUB;
    shmbus_publish(pub, buf, tu_fill(buf, 5, 0, 16), WAIT_NS); /* stops inside */
    return KID_PUB;
}

/* Wait until child @p pid stops (SIGSTOP at its fault point). */
static void wait_stopped(pid_t pid)
{
    int st;

    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    assert_true(WIFSTOPPED(st));
}

static void recv_seq(shmbus_sub *sub, uint64_t seq, uint64_t lost)
{
    uint8_t buf[MSG_MAX];
    shmbus_msg m;
    int rc = shmbus_recv(sub, buf, sizeof(buf), &m, WAIT_NS);

    if (rc < 0)
        fail_msg("receive of seq %llu: %s", (unsigned long long)seq, shmbus_strerror(rc));
    assert_int_equal(m.seq, seq);
    assert_int_equal(m.lost, lost);
}

/* A publisher killed between claim and commit: within @p bound_ms,
 * readers skip its record (one message lost) and the next one arrives. */
static void stuck_publisher_case(struct du_daemon *d, uint32_t mode, uint32_t flags,
                                 int64_t bound_ms)
{
    struct kid k = {.bus = d->bus, .topic = "stuck", .mode = mode, .flags = flags};
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    shmbus_pub *pub;
    shmbus_topic_info info;
    uint8_t buf[MSG_MAX];
    int64_t t0, waited;
    pid_t kid;

    open_topic(d->bus, k.topic, mode, flags, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    kid = tu_fork(kid_stuck_publisher, &k);
    wait_stopped(kid);
    for (uint64_t i = 0; i < 3; i++)
        recv_seq(sub, i, 0);
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, 0), -EAGAIN); /* seq 3 is stuck */
    t0 = du_now_ms();
    kill(kid, SIGKILL);
    tu_wait(kid);
    /* Exclusive: the token is free once the holder is dead. */
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 2, 0, 16), WAIT_NS));
    recv_seq(sub, 4, 1);
    waited = du_now_ms() - t0;
    print_message("reader moved past the dead publisher's claim %lld ms after the kill\n",
                  (long long)waited);
    assert_true(waited <= bound_ms);
    /* The daemon counts right after the record it ended. */
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end; du_sleep_ms(1)) {
        assert_shmbus_ok(shmbus_topic_info_get(t, &info));
        if (info.unblocked != 0)
            break;
    }
    assert_int_equal(info.unblocked, 1);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

static void test_reap_publisher_killed_in_claim_lossy(void **state)
{
    stuck_publisher_case(*state, SHMBUS_LOSSY, 0, UNBLOCK_BOUND_MS);
}

static void test_reap_publisher_killed_in_claim_reliable(void **state)
{
    stuck_publisher_case(*state, SHMBUS_RELIABLE, 0, UNBLOCK_BOUND_MS);
}

static void test_reap_publisher_killed_in_claim_exclusive(void **state)
{
    stuck_publisher_case(*state, SHMBUS_LOSSY, SHMBUS_TOPIC_EXCLUSIVE, UNBLOCK_BOUND_MS);
}

/* Publish three messages, then a batch of four that stops at k->fault:
 * publish-claimed, its first cell taken; publish-vec-next, its first
 * message committed and the rest claimed, untouched. */
static int kid_stuck_batch(void *arg)
{
    const struct kid *k = arg;
    struct iovec iov[4];
    uint8_t buf[4][MSG_MAX];
    shmbus_pub *pub;
    int rc = kid_pub_three(k, &pub);

    if (rc != KID_OK)
        return rc;
    for (uint32_t i = 0; i < 4; i++) {
        iov[i].iov_base = buf[i];
        iov[i].iov_len = tu_fill(buf[i], 1, 3 + i, 32);
    }
    setenv("SHMBUS_FAULT", k->fault, 1);
    shmbus_publish_vec(pub, iov, 4, WAIT_NS); /* stops inside */
    return KID_PUB;                           /* never reached: killed while stopped */
}

/* A publisher killed inside a batch of four (seqs 3..6): every seq of it
 * not committed ends SKIPPED and counted, and readers go on to seq 7. */
static void stuck_batch_case(struct du_daemon *d, uint32_t mode, uint32_t flags, const char *fault,
                             uint64_t committed)
{
    /* A topic per case: the daemon keeps the last one's. */
    struct kid k = {.bus = d->bus, .topic = fault, .mode = mode, .flags = flags, .fault = fault};
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    shmbus_pub *pub;
    shmbus_topic_info info;
    uint8_t buf[MSG_MAX];
    pid_t kid;

    open_topic(d->bus, k.topic, mode, flags, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    kid = tu_fork(kid_stuck_batch, &k);
    wait_stopped(kid);
    for (uint64_t i = 0; i < 3 + committed; i++)
        recv_seq(sub, i, 0);
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, 0), -EAGAIN);
    kill(kid, SIGKILL);
    tu_wait(kid);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 2, 0, 16), WAIT_NS));
    recv_seq(sub, 7, 4 - committed);
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end; du_sleep_ms(1)) {
        assert_shmbus_ok(shmbus_topic_info_get(t, &info));
        if (info.unblocked >= 4 - committed)
            break;
    }
    assert_int_equal(info.unblocked, 4 - committed);
    assert_int_equal(info.skipped, 4 - committed);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

static void test_reap_publisher_killed_in_batch_reliable(void **state)
{
    stuck_batch_case(*state, SHMBUS_RELIABLE, 0, "publish-claimed", 0);
    stuck_batch_case(*state, SHMBUS_RELIABLE, 0, "publish-vec-next", 1);
}

static void test_reap_publisher_killed_in_batch_lossy(void **state)
{
    stuck_batch_case(*state, SHMBUS_LOSSY, 0, "publish-claimed", 0);
    stuck_batch_case(*state, SHMBUS_LOSSY, 0, "publish-vec-next", 1);
}

static void test_reap_publisher_killed_in_batch_exclusive(void **state)
{
    stuck_batch_case(*state, SHMBUS_RELIABLE, SHMBUS_TOPIC_EXCLUSIVE, "publish-claimed", 0);
    stuck_batch_case(*state, SHMBUS_LOSSY, SHMBUS_TOPIC_EXCLUSIVE, "publish-vec-next", 1);
}

/* Subscribe (through the daemon, or by attaching the segment directly),
 * say so, then wait to be killed. With fork_holder, a child first inherits
 * the connection and keeps it open after we die. */
static int kid_subscriber(void *arg)
{
    const struct kid *k = arg;
    shmbus_sub_opts so = {.group_name = k->group};
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    int rc = kid_topic(k, &bus, &t);

    if (rc != KID_OK)
        return rc;
    if (shmbus_sub_create(t, &so, &sub) < 0)
        return KID_SUB;
    if (k->fork_holder && fork() == 0) {
        char c;

        /* Outlive our parent, holding its connection, until the test
         * closes its end of the pipe (or dies). */
        prctl(PR_SET_PDEATHSIG, 0);
        close(k->hold[1]);
        while (read(k->hold[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    if (du_signal(k->ready) < 0)
        return KID_PIPE;
    pause();
    return KID_OK;
}

static pid_t start_subscriber(struct kid *k)
{
    return du_fork_ready(kid_subscriber, k, &k->ready);
}

/* Fill the reliable ring: @return how many of @p n publishes succeeded
 * before one found it full (timeout 0). */
static int fill(shmbus_pub *pub, int n)
{
    uint8_t buf[MSG_MAX];
    int i;

    for (i = 0; i < n; i++)
        if (shmbus_publish(pub, buf, tu_fill(buf, 3, (uint64_t)i, 16), 0) < 0)
            break;
    return i;
}

/* Publish @p n more, each waiting for space: only a dead gate's release
 * lets them through. */
static void publish_waiting(shmbus_pub *pub, int n)
{
    uint8_t buf[MSG_MAX];

    for (int i = 0; i < n; i++)
        assert_shmbus_ok(
            shmbus_publish(pub, buf, tu_fill(buf, 3, 100u + (uint64_t)i, 16), WAIT_NS));
}

/* Wait until the daemon has freed a slot or record of a dead process in
 * @p t (its scan, or the death's session), at most WAIT_NS. */
static void wait_reaped(const shmbus_topic *t)
{
    shmbus_topic_info info;
    int64_t until = du_now_ms() + WAIT_NS / 1000000;

    do {
        assert_shmbus_ok(shmbus_topic_info_get(t, &info));
        if (info.reaped >= 1)
            return;
        du_sleep_ms(1);
    } while (du_now_ms() < until);
    fail_msg("the dead process's slot was not freed");
}

/* A reliable subscriber is killed while the ring is full: the publisher
 * goes on by itself. */
static void dead_gate_case(struct du_daemon *d, struct kid *k)
{
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_topic_info info;
    pid_t kid;

    k->bus = d->bus;
    k->topic = "gated";
    open_topic(d->bus, k->topic, SHMBUS_RELIABLE, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    kid = start_subscriber(k);
    assert_int_equal(fill(pub, 3 * CAP), CAP); /* the subscriber gates */
    kill(kid, SIGKILL);
    tu_wait(kid);
    publish_waiting(pub, 2 * CAP);
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    assert_true(info.reaped >= 1);
    assert_int_equal(shmbus_topic_slots_get(t, NULL, 0), 0); /* its slot is free */
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

static void test_reap_subscriber_killed(void **state)
{
    struct kid k = {0};

    dead_gate_case(*state, &k);
}

/* A fork child keeps the dead subscriber's connection open: the daemon
 * sees no hang-up, only the pidfd. */
static void test_reap_subscriber_killed_connection_held(void **state)
{
    struct kid k = {.fork_holder = 1};

    assert_int_equal(pipe2(k.hold, O_CLOEXEC), 0);
    dead_gate_case(*state, &k);
    close(k.hold[1]); /* the holder exits */
    close(k.hold[0]);
}

/* A process that attached the segment by name, never talking to the
 * daemon: the periodic scan finds its slot and its death. */
static void test_reap_direct_subscriber_killed(void **state)
{
    struct kid k = {.direct = 1};

    dead_gate_case(*state, &k);
}

/* Read @p k->count messages, then exit 0 if exactly one was lost. */
static int kid_counting_reader(void *arg)
{
    struct kid *k = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    uint8_t buf[MSG_MAX];
    uint64_t lost = 0;
    shmbus_msg m;
    int rc = kid_reader(k, &bus, &t, &sub);

    if (rc != KID_OK)
        return rc;
    for (uint32_t i = 0; i < k->count; i++) {
        if (shmbus_recv(sub, buf, sizeof(buf), &m, WAIT_NS) < 0)
            return KID_SUB;
        lost += m.lost;
    }
    return lost == 1 ? KID_OK : KID_SUB;
}

/* Stop a publisher child right after its claim, before it records or
 * marks it; @return its pid. */
static pid_t stuck_unrecorded(struct kid *k)
{
    pid_t kid;

    setenv("SHMBUS_FAULT", "publish-unrecorded", 1);
    k->mode = SHMBUS_RELIABLE;
    kid = tu_fork(kid_stuck_unrecorded, k);
    unsetenv("SHMBUS_FAULT");
    wait_stopped(kid);
    return kid;
}

struct waiter {
    shmbus_pub *pub;
    int rc;
};

static void *waiter_run(void *arg)
{
    struct waiter *w = arg;
    uint8_t buf[MSG_MAX];

    w->rc = shmbus_publish(w->pub, buf, tu_fill(buf, 4, 0, 16), WAIT_NS);
    return NULL;
}

/* A publisher dies between its claim and anything else, while the ring is
 * full and a live publisher that has claimed nothing yet waits for space.
 * The daemon must not take the waiter for the owner of the dead claim. */
static void test_reap_publisher_killed_unrecorded(void **state)
{
    struct du_daemon *d = *state;
    struct kid k = {.bus = d->bus, .topic = "unrec", .count = CAP};
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *filler;
    struct waiter w = {0};
    pthread_t th;
    pid_t reader, stuck;

    open_topic(d->bus, k.topic, SHMBUS_RELIABLE, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &w.pub)); /* before any claim */
    reader = du_fork_ready(kid_counting_reader, &k, &k.ready);
    stuck = stuck_unrecorded(&k);
    assert_shmbus_ok(shmbus_pub_create(t, &filler));
    assert_int_equal(fill(filler, 2 * CAP), CAP - 1); /* seq 0 holds the reader */
    assert_int_equal(pthread_create(&th, NULL, waiter_run, &w), 0);
    du_sleep_ms(100); /* the waiter is asleep on the full ring */
    kill(stuck, SIGKILL);
    tu_wait(stuck);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_shmbus_ok(w.rc);
    assert_int_equal(tu_wait(reader), KID_OK);
    shmbus_pub_destroy(filler);
    shmbus_pub_destroy(w.pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A member of a group is killed: the other member receives everything
 * published after, and once it leaves too the group holds nothing back. */
static void test_reap_group_member_killed(void **state)
{
    struct du_daemon *d = *state;
    struct kid k = {.bus = d->bus, .topic = "grp", .group = "workers"};
    shmbus_sub_opts so = {.group_name = "workers"};
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_sub *sub;
    uint8_t buf[MSG_MAX];
    pid_t kid;

    open_topic(d->bus, k.topic, SHMBUS_RELIABLE, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    kid = start_subscriber(&k);
    assert_shmbus_ok(shmbus_sub_create(t, &so, &sub));
    kill(kid, SIGKILL);
    tu_wait(kid);
    for (int i = 0; i < 4 * CAP; i++) {
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 3, (uint64_t)i, 16), WAIT_NS));
        assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS), 16);
    }
    shmbus_sub_destroy(sub);
    /* The daemon learns of the death while this runs: its connection's
     * hang-up may come before the process is seen dead, and then the scan
     * frees the slot a moment later. Once it has, nobody gates. */
    wait_reaped(t);
    assert_int_equal(fill(pub, 2 * CAP), 2 * CAP);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A daemon that stops does not take slots from live processes: a live
 * reliable subscriber still gates after the daemon is gone, and the
 * segment is kept for the next daemon, through which the handle goes on. */
static void test_reap_daemon_stop_keeps_live_slots(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus;
    shmbus_topic *t, *again;
    shmbus_pub *pub;
    shmbus_sub *sub;

    open_topic(d->bus, "live", SHMBUS_RELIABLE, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(fill(pub, 3 * CAP), CAP);
    shmbus_sub_destroy(sub); /* the daemon is gone: the slot stops gating */
    assert_int_equal(fill(pub, 2 * CAP), 2 * CAP);
    assert_int_equal(du_segments(d->bus, 0), 1); /* kept: our publisher uses it */
    /* A new daemon adopts the segment: both handles work through it. */
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(shmbus_bus_check(bus));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_int_equal(fill(pub, 3 * CAP), CAP); /* it gates again */
    shmbus_sub_destroy(sub);
    assert_shmbus_ok(shmbus_open(bus, "live", NULL, 0, &again));
    assert_shmbus_ok(shmbus_sub_create(again, NULL, &sub));
    assert_int_equal(fill(pub, 3 * CAP), CAP);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(again);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

#define FLOW_N 20000

/* Receive FLOW_N messages of a reliable topic in order. */
static int kid_flow_reader(void *arg)
{
    struct kid *k = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    uint8_t buf[MSG_MAX];
    struct tu_payload pl;
    shmbus_msg m;
    int rc = kid_reader(k, &bus, &t, &sub);

    if (rc != KID_OK)
        return rc;
    for (uint64_t i = 0; i < FLOW_N; i++) {
        int n = shmbus_recv(sub, buf, sizeof(buf), &m, WAIT_NS);

        if (n < 0 || !tu_check(buf, (uint32_t)n, &pl) || pl.seq != i || m.lost != 0)
            return KID_SUB;
    }
    shmbus_sub_destroy(sub); /* through the new daemon */
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return KID_OK;
}

/* The daemon is killed with SIGKILL while traffic flows, and a new one
 * started: traffic never stops, the new daemon takes the topic over, and
 * clients reconnect and carry on with control calls. */
static void test_reap_daemon_killed_and_restarted(void **state)
{
    struct du_daemon *d = *state;
    struct kid k = {.bus = d->bus, .topic = "flow"};
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_topic_entry e;
    uint8_t buf[MSG_MAX];
    pid_t kid;

    open_topic(d->bus, k.topic, SHMBUS_RELIABLE, 0, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    kid = du_fork_ready(kid_flow_reader, &k, &k.ready);
    for (uint64_t i = 0; i < FLOW_N / 2; i++)
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, i, 32), WAIT_NS));
    du_stop_sig(d, SIGKILL);
    assert_int_equal(shmbus_bus_check(bus), SHMBUS_ERR_DAEMON_LOST);
    for (uint64_t i = FLOW_N / 2; i < 3 * FLOW_N / 4; i++)
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, i, 32), WAIT_NS));
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(shmbus_bus_check(bus));
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 1);
    assert_string_equal(e.name, "flow");
    assert_int_equal(e.publishers, 1); /* re-registered */
    for (uint64_t i = 3 * FLOW_N / 4; i < FLOW_N; i++)
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, i, 32), WAIT_NS));
    assert_int_equal(tu_wait(kid), KID_OK);
    shmbus_pub_destroy(pub);
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 1);
    assert_int_equal(e.publishers, 0);
    assert_int_equal(e.subscribers, 0);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* Several topics across a restart: the new daemon numbers them afresh, and
 * a call that reconnects uses the new numbers (not the old ones, which now
 * name other topics). */
static void test_reap_restart_renumbers_topics(void **state)
{
    struct du_daemon *d = *state;
    const char *names[] = {"ta", "tb", "tc", "td"};
    shmbus_topic *t[4];
    shmbus_topic_entry e[4];
    shmbus_bus *bus;
    shmbus_sub *sub;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    for (int i = 0; i < 4; i++)
        assert_shmbus_ok(shmbus_open(bus, names[i], NULL, 0, &t[i]));
    du_stop_sig(d, SIGKILL);
    assert_int_equal(shmbus_bus_check(bus), SHMBUS_ERR_DAEMON_LOST);
    assert_int_equal(du_launch(d, NULL), 0);
    /* The first call after the restart reconnects inside. */
    assert_shmbus_ok(shmbus_sub_create(t[0], NULL, &sub));
    assert_int_equal(shmbus_list(bus, NULL, e, 4), 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(e[i].name, names[i]);
        assert_int_equal(e[i].subscribers, i == 0 ? 1 : 0);
        assert_int_equal(e[i].clients, 1);
    }
    shmbus_sub_destroy(sub);
    for (int i = 0; i < 4; i++)
        shmbus_topic_destroy(t[i]);
    assert_int_equal(shmbus_list(bus, NULL, e, 4), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(e[i].clients + e[i].subscribers, 0);
    shmbus_close(bus);
}

/* A client shrinks a segment under the daemon: the daemon's next access
 * faults (SIGBUS), and it drops that topic instead of dying. */
static void test_reap_truncated_segment(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus;
    shmbus_topic *victim, *other, *again;
    shmbus_pub *pub;
    shmbus_sub *sub;
    uint8_t buf[MSG_MAX];
    char seg[SHMBUS_NAME_MAX + 2], path[SHMBUS_NAME_MAX + 16];
    int fd, rc = 0;

    open_topic(d->bus, "victim", SHMBUS_RELIABLE, 0, &bus, &victim);
    assert_shmbus_ok(shmbus_open(bus, "other", NULL, 0, &other));
    snprintf(seg, sizeof(seg), "/" SBD_SEG_PREFIX "%s.victim", d->bus);
    fd = shm_open(seg, O_RDWR | O_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 0), 0);
    close(fd);
    /* The reaper's next scan touches the segment. Until then the daemon
     * still hands it out, and mapping it fails here (size 0). */
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end; du_sleep_ms(5)) {
        rc = shmbus_open(bus, "victim", NULL, SHMBUS_OPEN_NOCREATE, &again);
        if (rc == SHMBUS_ERR_TRUNCATED)
            break;
        assert_int_equal(rc, SHMBUS_ERR_NOT_READY);
    }
    assert_int_equal(rc, SHMBUS_ERR_TRUNCATED);
    snprintf(path, sizeof(path), "/dev/shm%s", seg);
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end && access(path, F_OK) == 0;)
        du_sleep_ms(5);
    assert_int_equal(du_segments(d->bus, 0), 1); /* "other" only */
    assert_int_equal(kill(d->pid, 0), 0);
    assert_shmbus_ok(shmbus_sub_create(other, NULL, &sub));
    assert_shmbus_ok(shmbus_pub_create(other, &pub));
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, 0, 16), WAIT_NS));
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS), 16);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(other);
    shmbus_topic_destroy(victim); /* never touched since the truncation */
    shmbus_close(bus);
}

/*
 * Start this test's daemon with pidfd_open() failing (du_deny_pidfd()) and
 * its stderr in its directory's daemon.log; *state becomes the daemon (the
 * teardown stops it). Skips where seccomp filters cannot be installed.
 */
static struct du_daemon *no_pidfd_start(void **state)
{
    struct du_daemon *d;
    char log[PATH_MAX];
    int rc;

    if (!du_deny_pidfd_works())
        skip(); /* no seccomp here: nothing to test */
    d = calloc(1, sizeof(*d));
    assert_non_null(d);
    if (du_prepare(d) < 0) {
        du_discard(d);
        fail_msg("cannot prepare a bus");
    }
    d->no_pidfd = 1;
    rc = du_launch_log(d, NULL, log, sizeof(log));
    if (rc < 0) {
        du_discard(d);
        fail_msg("shmbusd without pidfds did not start: %s", shmbus_strerror(rc));
    }
    *state = d;
    return d;
}

/* The daemon said once, not at every scan, that it cannot use pidfds. */
static void assert_fell_back_once(const struct du_daemon *d)
{
    char log[PATH_MAX];
    int n;

    snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
    n = du_log_count(log, FALLBACK_LOG);
    if (n != 1)
        fail_msg("%d lines with \"%s\" in the daemon's log, want 1", n, FALLBACK_LOG);
}

/* cmocka teardown of a test that may have skipped before its daemon ran. */
static int no_pidfd_teardown(void **state)
{
    return *state == NULL ? 0 : du_teardown(state);
}

/* Without pidfds, a publisher killed between claim and commit on a
 * reliable topic still does not stall it: the scan finds the death in
 * /proc and ends the claim. Guards reaper_proc.c proc_add() and
 * sbd_reaper_poll_step(): a process without a pidfd is never taken as
 * alive for good. */
static void test_reap_no_pidfd_publisher_killed_in_claim(void **state)
{
    struct du_daemon *d = no_pidfd_start(state);

    stuck_publisher_case(d, SHMBUS_RELIABLE, 0, FALLBACK_BOUND_MS);
    assert_fell_back_once(d);
}

/* Without pidfds, a dead subscriber whose connection a fork child keeps
 * open (no hang-up to go by) is reaped: its slot is freed, and the
 * reliable publisher it gated goes on. */
static void test_reap_no_pidfd_subscriber_killed_connection_held(void **state)
{
    struct du_daemon *d = no_pidfd_start(state);
    struct kid k = {.fork_holder = 1};

    assert_int_equal(pipe2(k.hold, O_CLOEXEC), 0);
    dead_gate_case(d, &k);
    close(k.hold[1]); /* the holder exits */
    close(k.hold[0]);
    assert_fell_back_once(d);
}

/* Without pidfds, a dead direct attacher's slot is found and freed. */
static void test_reap_no_pidfd_direct_subscriber_killed(void **state)
{
    struct du_daemon *d = no_pidfd_start(state);
    struct kid k = {.direct = 1};

    dead_gate_case(d, &k);
    assert_fell_back_once(d);
}

/* Neither pidfds nor /proc: the daemon refuses to start, and says why
 * (a pid alone cannot tell a reused pid from a dead process). */
static void test_reap_no_pidfd_no_proc_refuses_to_start(void **state)
{
    struct du_daemon *d;
    char log[PATH_MAX];
    int fd, st;

    if (!du_deny_pidfd_works() || !du_hide_proc_works())
        skip(); /* no seccomp, or no mount namespace (not root): nothing to test */
    d = calloc(1, sizeof(*d));
    assert_non_null(d);
    *state = d; /* the teardown removes what it made */
    assert_int_equal(du_prepare(d), 0);
    d->no_pidfd = d->no_proc = 1;
    snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    d->pid = du_spawn(d, NULL, fd);
    close(fd);
    assert_true(d->pid > 0);
    st = du_wait_ms(d->pid, DU_READY_MS);
    if (st < 0)
        fail_msg("shmbusd without pidfds and /proc did not exit");
    d->pid = 0;
    assert_int_equal(st, 1);
    assert_int_equal(du_log_count(log, "cannot tell dead processes"), 1);
}

#define REAP_TEST(f)     cmocka_unit_test_setup_teardown(f, du_setup, du_teardown)
#define NO_PIDFD_TEST(f) cmocka_unit_test_teardown(f, no_pidfd_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        REAP_TEST(test_reap_publisher_killed_in_claim_lossy),
        REAP_TEST(test_reap_publisher_killed_in_claim_reliable),
        REAP_TEST(test_reap_publisher_killed_in_claim_exclusive),
        REAP_TEST(test_reap_publisher_killed_in_batch_reliable),
        REAP_TEST(test_reap_publisher_killed_in_batch_lossy),
        REAP_TEST(test_reap_publisher_killed_in_batch_exclusive),
        REAP_TEST(test_reap_publisher_killed_unrecorded),
        REAP_TEST(test_reap_subscriber_killed),
        REAP_TEST(test_reap_subscriber_killed_connection_held),
        REAP_TEST(test_reap_direct_subscriber_killed),
        REAP_TEST(test_reap_group_member_killed),
        REAP_TEST(test_reap_daemon_stop_keeps_live_slots),
        REAP_TEST(test_reap_daemon_killed_and_restarted),
        REAP_TEST(test_reap_truncated_segment),
        REAP_TEST(test_reap_restart_renumbers_topics),
        NO_PIDFD_TEST(test_reap_no_pidfd_publisher_killed_in_claim),
        NO_PIDFD_TEST(test_reap_no_pidfd_subscriber_killed_connection_held),
        NO_PIDFD_TEST(test_reap_no_pidfd_direct_subscriber_killed),
        NO_PIDFD_TEST(test_reap_no_pidfd_no_proc_refuses_to_start),
    };

    tu_init();
    return cmocka_run_group_tests_name("reap", tests, NULL, NULL);
}
