/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Nothing stalls the bus for long, and nothing disappears without a count
 * (daemon/stall.c, admin.c): a publisher killed blocked on a full ring
 * costs nothing; a subscriber stopped with SIGSTOP is evicted after the
 * topic's stall timeout and told so when it continues; a claim left open
 * that long is ended, and so are the unwritten seqs of a batch whose
 * publisher stopped inside it; an observer never gates; a group member
 * killed inside its callback is counted; a kept slot is never evicted.
 * Sleepers' costs and wake-ups are in test_stall_wake.c. Every test runs
 * its own daemon (daemonutil.h); children report through their exit
 * status.
 */
#include "stalltest.h"

/* Publish into a full reliable ring, waiting for space, until killed. */
static int kid_blocked_publisher(void *arg)
{
    const struct kid *k = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    uint8_t buf[MSG_MAX];

    if (shmbus_connect(k->bus, &bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(bus, k->topic, NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        return KID_OPEN;
    if (shmbus_pub_create(t, &pub) < 0)
        return KID_PUB;
    for (uint32_t i = 0; i < CAP; i++)
        if (shmbus_publish(pub, buf, tu_fill(buf, 1, i, 16), 0) < 0)
            return KID_PUB;
    if (du_signal(k->ready) < 0)
        return KID_PIPE;
    shmbus_publish(pub, buf, tu_fill(buf, 1, CAP, 16), -1); /* sleeps: the ring is full */
    return KID_WRONG;
}

/* A reliable publisher killed asleep on a full ring: once reaped, a
 * subscriber releasing cells makes no system call for it. */
static void test_stall_killed_blocked_publisher_costs_nothing(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = topic_opts(SHMBUS_RELIABLE, 0);
    struct kid k = {.bus = d->bus, .topic = "full"};
    const char *args[] = {"--bus", d->bus, "sub", "full", "--from", "oldest", "--count", "8", NULL};
    char seg[96];
    struct sb_shm_header *h;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *gate;
    size_t len;
    pid_t kid;

    open_topic(d->bus, k.topic, &o, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &gate)); /* keeps the ring full */
    kid = du_fork_ready(kid_blocked_publisher, &k, &k.ready);
    sbd_seg_name(seg, sizeof(seg), d->bus, k.topic, 0);
    h = (struct sb_shm_header *)tu_raw_map(seg, &len);
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end; du_sleep_ms(2))
        if (atomic_load(&h->space_waiters) == 1)
            break;
    assert_int_equal(atomic_load(&h->space_waiters), 1);
    kill(kid, SIGKILL);
    tu_wait(kid);
    wait_count(t, reaped_of, 1);
    assert_int_equal(atomic_load(&h->space_waiters), 0);
    /* The tool reads what the ring holds (our gate keeps it there) and
     * releases it: a leaked count would make it wake nobody each time. */
    assert_int_equal(futex_wakes_of(args), 0);
    shmbus_sub_destroy(gate);
    munmap(h, len);
    close_topic(bus, t);
}

/* ------------------------------------------------------------- eviction */

struct drain {
    shmbus_sub *sub;
    uint32_t n;
    int bad; /* messages out of order or damaged */
};

/* A healthy subscriber's thread: receive n messages, check each. */
static void *drain_main(void *arg)
{
    struct drain *dr = arg;
    uint8_t buf[MSG_MAX];
    struct tu_payload p = {0};
    shmbus_msg m;

    for (uint32_t i = 0; i < dr->n; i++) {
        int rc = shmbus_recv(dr->sub, buf, sizeof(buf), &m, WAIT_NS);

        if (rc < 0 || !tu_check(buf, (uint32_t)rc, &p) || p.seq != i || m.lost != 0)
            dr->bad++;
    }
    return NULL;
}

/* A stopped subscriber of a reliable topic with a 1 s stall timeout: the
 * publisher finishes, a healthy subscriber gets everything, and the
 * stopped one, continued, is told it was evicted (it was asleep in a
 * receive when stopped). */
static void test_stall_stopped_subscriber_evicted(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = topic_opts(SHMBUS_RELIABLE, STALL_MS);
    struct kid k = {.bus = d->bus, .topic = "evict"};
    struct drain dr = {.n = 4 * CAP};
    uint8_t buf[MSG_MAX];
    int64_t t0;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    pthread_t th;
    pid_t kid;

    open_topic(d->bus, k.topic, &o, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &dr.sub));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    kid = du_fork_ready(kid_receiver, &k, &k.ready);
    wait_sleepers(d->bus, k.topic, 1);
    kill(kid, SIGSTOP);
    assert_int_equal(pthread_create(&th, NULL, drain_main, &dr), 0);
    t0 = du_now_ms();
    for (uint32_t i = 0; i < dr.n; i++)
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, i, 24), WAIT_NS));
    /* Held back for the whole timeout, not evicted at first sight. */
    assert_true(du_now_ms() - t0 >= STALL_MS);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(dr.bad, 0);
    wait_count(t, evicted_of, 1);
    kill(kid, SIGCONT);
    assert_int_equal(tu_wait(kid), KID_OK);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(dr.sub);
    close_topic(bus, t);
}

/* Without a stall timeout nobody is evicted: the default is unchanged. */
static void test_stall_default_never_evicts(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = topic_opts(SHMBUS_RELIABLE, 0);
    struct kid k = {.bus = d->bus, .topic = "patient"};
    shmbus_topic_info info;
    uint8_t buf[MSG_MAX];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    pid_t kid;

    open_topic(d->bus, k.topic, &o, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    kid = du_fork_ready(kid_receiver, &k, &k.ready);
    kill(kid, SIGSTOP);
    for (uint32_t i = 0; i < CAP; i++)
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, i, 24), 0));
    assert_int_equal(shmbus_publish(pub, buf, tu_fill(buf, 1, CAP, 24), 1500000000ll),
                     SHMBUS_ERR_TIMEOUT);
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    assert_int_equal(info.evicted, 0);
    kill(kid, SIGKILL);
    tu_wait(kid);
    shmbus_pub_destroy(pub);
    close_topic(bus, t);
}

/* A kept slot (a persisted topic's exporter, registry/relay.h) is never
 * evicted: it read the whole ring, and holds publishers at what it has
 * not released, past the stall timeout; it still reads after, and the
 * publisher goes on once it releases. Plain held (not kept) is evicted. */
static void kept_case(struct du_daemon *d, int keep)
{
    shmbus_topic_opts o = topic_opts(SHMBUS_RELIABLE, STALL_MS);
    shmbus_sub_opts so = {.spin_ns = -1};
    const char *name = keep ? "kept" : "held";
    shmbus_topic_info info;
    uint8_t buf[MSG_MAX];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_sub *sub;

    open_topic(d->bus, name, &o, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_sub_create(t, &so, &sub));
    assert_shmbus_ok(sb_relay_sub_hold(sub));
    if (keep)
        assert_shmbus_ok(sb_relay_sub_keep(sub));
    for (uint32_t i = 0; i < CAP; i++) {
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, i, 24), 0));
        assert_true(shmbus_recv(sub, buf, sizeof(buf), NULL, 0) > 0);
    }
    if (!keep) {
        wait_count(t, evicted_of, 1);
        assert_shmbus_rc(sb_relay_sub_release(sub, CAP), SHMBUS_ERR_EVICTED);
        goto out;
    }
    assert_int_equal(shmbus_publish(pub, buf, tu_fill(buf, 1, CAP, 24), 3 * STALL_MS * 1000000ll),
                     SHMBUS_ERR_TIMEOUT);
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    assert_int_equal(info.evicted, 0);
    assert_shmbus_ok(sb_relay_sub_release(sub, CAP));
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, CAP, 24), 0));
    assert_true(shmbus_recv(sub, buf, sizeof(buf), NULL, 0) > 0);
out:
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    close_topic(bus, t);
}

static void test_stall_kept_slot_never_evicted(void **state)
{
    kept_case(*state, 1);
}

static void test_stall_held_slot_evicted(void **state)
{
    kept_case(*state, 0);
}

/* --------------------------------------------------------- claims ended */

/* Claim a cell and keep it open; after the test's signal, commit and
 * report how that went. */
static int kid_claim_holder(void *arg)
{
    const struct kid *k = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_claim c;
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (shmbus_connect(k->bus, &bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(bus, k->topic, NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        return KID_OPEN;
    if (shmbus_pub_create(t, &pub) < 0 || shmbus_pub_claim(pub, &c, 0) < 0)
        return KID_PUB;
    memcpy(c.data, "late", 4);
    if (du_signal(k->ready) < 0)
        return KID_PIPE;
    sigwait(&set, &sig);
    /* Ended by the daemon: the message is dropped, and says so. */
    return shmbus_pub_commit(pub, &c, 4) == SHMBUS_ERR_OVERRUN ? KID_OK : KID_WRONG;
}

/* A live publisher that claims and then sleeps: after the stall timeout
 * its claim is ended, readers count one loss and go on. */
static void claim_case(struct du_daemon *d, uint32_t mode)
{
    shmbus_topic_opts o = topic_opts(mode, STALL_MS);
    struct kid k = {.bus = d->bus, .topic = mode == SHMBUS_RELIABLE ? "claimr" : "claiml"};
    uint8_t buf[MSG_MAX];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    shmbus_pub *pub;
    shmbus_msg m;
    int64_t t0;
    pid_t kid;

    open_topic(d->bus, k.topic, &o, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    kid = du_fork_ready(kid_claim_holder, &k, &k.ready);
    t0 = du_now_ms();
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 2, 1, 16), 0));
    /* Seq 0 is the open claim: nothing passes it until it is ended. */
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), &m, 0), -EAGAIN);
    assert_true(shmbus_recv(sub, buf, sizeof(buf), &m, WAIT_NS) > 0);
    assert_true(du_now_ms() - t0 >= STALL_MS);
    assert_int_equal(m.seq, 1);
    assert_int_equal(m.lost, 1);
    wait_count(t, unblocked_of, 1);
    kill(kid, SIGUSR1);
    assert_int_equal(tu_wait(kid), KID_OK);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    close_topic(bus, t);
}

static void test_stall_open_claim_ended_reliable(void **state)
{
    claim_case(*state, SHMBUS_RELIABLE);
}

static void test_stall_open_claim_ended_lossy(void **state)
{
    claim_case(*state, SHMBUS_LOSSY);
}

/* A claim the daemon ended, committed late: the commit says OVERRUN and
 * leaves the cell alone, though another publisher has taken it since
 * (capacity 2: seq 2 is seq 0's cell) and committed there: not even the
 * header (its length) is written over. */
static void ended_claim_case(struct du_daemon *d, uint32_t mode)
{
    shmbus_topic_opts o = topic_opts(mode, STALL_MS);
    struct kid k = {.bus = d->bus, .topic = mode == SHMBUS_RELIABLE ? "endedr" : "endedl"};
    uint8_t buf[MSG_MAX];
    struct tu_payload pl = {0};
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    shmbus_pub *pub;
    shmbus_claim c;
    shmbus_msg m;
    pid_t kid;
    int rc;

    o.capacity = 2;
    open_topic(d->bus, k.topic, &o, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    kid = du_fork_ready(kid_claim_holder, &k, &k.ready); /* holds seq 0 */
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 2, 1, 16), 0));
    assert_true(shmbus_recv(sub, buf, sizeof(buf), &m, WAIT_NS) > 0); /* after the timeout */
    assert_int_equal(m.seq, 1);
    wait_count(t, unblocked_of, 1);
    assert_shmbus_ok(shmbus_pub_claim(pub, &c, 0));
    assert_int_equal(c.seq, 2);
    assert_shmbus_ok(shmbus_pub_commit(pub, &c, tu_fill(c.data, 2, 2, 20)));
    kill(kid, SIGUSR1); /* commits seq 0 now: OVERRUN, and writes nothing */
    assert_int_equal(tu_wait(kid), KID_OK);
    rc = shmbus_recv(sub, buf, sizeof(buf), &m, WAIT_NS);
    assert_int_equal(rc, 20);
    assert_int_equal(m.seq, 2);
    assert_int_equal(m.lost, 0);
    assert_true(tu_check(buf, (uint32_t)rc, &pl));
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    close_topic(bus, t);
}

static void test_stall_ended_claim_leaves_newer_writer_reliable(void **state)
{
    ended_claim_case(*state, SHMBUS_RELIABLE);
}

static void test_stall_ended_claim_leaves_newer_writer_lossy(void **state)
{
    ended_claim_case(*state, SHMBUS_LOSSY);
}

/* Publish a batch of four (seqs 0..3) that stops (SIGSTOP) at k->fault;
 * once continued, the batch must return k->want. */
static int kid_stopped_batch(void *arg)
{
    const struct kid *k = arg;
    struct iovec iov[4];
    uint8_t buf[4][MSG_MAX];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;

    if (shmbus_connect(k->bus, &bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(bus, k->topic, NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        return KID_OPEN;
    if (shmbus_pub_create(t, &pub) < 0)
        return KID_PUB;
    for (uint32_t i = 0; i < 4; i++) {
        iov[i].iov_base = buf[i];
        iov[i].iov_len = tu_fill(buf[i], 1, i, 16);
    }
    setenv("SHMBUS_FAULT", k->fault, 1);
    return shmbus_publish_vec(pub, iov, 4, 0) == k->want ? KID_OK : KID_WRONG;
}

/* A publisher stopped inside a batch of four past the stall timeout: the
 * daemon ends every seq of it not committed (@p committed were), readers
 * go on, and each is counted once, though the publisher, continued,
 * meets the daemon's ends and stops its batch there. */
static void stopped_batch_case(struct du_daemon *d, uint32_t mode, const char *fault,
                               uint64_t committed, int want)
{
    shmbus_topic_opts o = topic_opts(mode, STALL_MS);
    struct kid k = {.bus = d->bus, .topic = fault, .fault = fault, .want = want};
    uint8_t buf[MSG_MAX];
    shmbus_topic_info info;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    shmbus_pub *pub;
    shmbus_msg m;
    int64_t t0;
    pid_t kid;
    int st;

    open_topic(d->bus, k.topic, &o, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    kid = tu_fork(kid_stopped_batch, &k);
    assert_int_equal(waitpid(kid, &st, WUNTRACED), kid);
    assert_true(WIFSTOPPED(st));
    t0 = du_now_ms();
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 2, 4, 16), 0)); /* seq 4 */
    for (uint64_t i = 0; i < committed; i++) {
        assert_true(shmbus_recv(sub, buf, sizeof(buf), &m, WAIT_NS) > 0);
        assert_int_equal(m.seq, i);
    }
    assert_true(shmbus_recv(sub, buf, sizeof(buf), &m, WAIT_NS) > 0);
    assert_true(du_now_ms() - t0 >= STALL_MS);
    assert_int_equal(m.seq, 4);
    assert_int_equal(m.lost, 4 - committed);
    wait_count(t, unblocked_of, 4 - committed);
    kill(kid, SIGCONT);
    assert_int_equal(tu_wait(kid), KID_OK);
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    assert_int_equal(info.skipped, 4 - committed);
    assert_int_equal(info.unblocked, 4 - committed);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    close_topic(bus, t);
}

static void test_stall_stopped_batch_ended_reliable(void **state)
{
    stopped_batch_case(*state, SHMBUS_RELIABLE, "publish-vec-next", 1, 1);
    stopped_batch_case(*state, SHMBUS_RELIABLE, "publish-claimed", 0, SHMBUS_ERR_OVERRUN);
}

static void test_stall_stopped_batch_ended_lossy(void **state)
{
    stopped_batch_case(*state, SHMBUS_LOSSY, "publish-vec-next", 1, 1);
    stopped_batch_case(*state, SHMBUS_LOSSY, "publish-claimed", 0, SHMBUS_ERR_OVERRUN);
}

/* ------------------------------------------------------------ observers */

/* An observer never gates a reliable topic: publishers fill it many times
 * over without waiting, and the observer counts what it missed. */
static void test_stall_observer_never_gates(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = topic_opts(SHMBUS_RELIABLE, 0);
    shmbus_sub_opts so = {.flags = SHMBUS_SUB_OBSERVER};
    shmbus_sub_opts bad = {.flags = SHMBUS_SUB_OBSERVER, .group_name = "g"};
    uint8_t buf[MSG_MAX];
    struct tu_payload p = {0};
    shmbus_slot_info si;
    shmbus_sub_stats st;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *obs, *x;
    shmbus_pub *pub;
    shmbus_msg m;
    int rc;

    open_topic(d->bus, "watched", &o, &bus, &t);
    assert_shmbus_rc(shmbus_sub_create(t, &bad, &x), SHMBUS_ERR_INVALID);
    assert_shmbus_ok(shmbus_sub_create(t, &so, &obs));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_int_equal(shmbus_topic_slots_get(t, &si, 1), 1);
    assert_int_equal(si.flags, SHMBUS_SLOT_OBSERVER);
    for (uint32_t i = 0; i < 3 * CAP; i++)
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, i, 20), 0));
    rc = shmbus_recv(obs, buf, sizeof(buf), &m, 0);
    assert_true(rc > 0);
    assert_true(tu_check(buf, (uint32_t)rc, &p));
    assert_int_equal(p.seq, m.seq);
    assert_true(m.lost >= 2 * CAP);
    assert_shmbus_ok(shmbus_sub_stats_get(obs, &st));
    assert_int_equal(st.lost, m.seq);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(obs);
    close_topic(bus, t);
}

/* ------------------------------------------------------ group accounting */

/* A group member that signals the test from inside its callback and
 * stays there until killed. */
static int kid_stuck_member_cb(const shmbus_msg *m, void *arg)
{
    const struct kid *k = arg;

    (void)m;
    if (du_signal(k->ready) < 0)
        _exit(KID_PIPE);
    pause();
    return 0;
}

static int kid_stuck_member(void *arg)
{
    const struct kid *k = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    int rc = kid_sub(k, &bus, &t, &sub);

    if (rc != KID_OK)
        return rc;
    for (;;) {
        shmbus_waitset *ws = NULL;

        if (shmbus_poll(sub, kid_stuck_member_cb, arg, 1) < 0)
            return KID_RECV;
        shmbus_waitset_create(&ws);
        shmbus_waitset_add(ws, sub);
        shmbus_waitset_wait(ws, &sub, 1, WAIT_NS);
        shmbus_waitset_destroy(ws);
    }
}

/* A member killed inside its callback: the message it held is counted as
 * abandoned, and the group goes on with the next one. */
static void group_case(struct du_daemon *d, uint32_t mode)
{
    shmbus_topic_opts o = topic_opts(mode, 0);
    struct kid k = {
        .bus = d->bus, .topic = mode == SHMBUS_RELIABLE ? "jobs" : "ljobs", .group = "w"};
    shmbus_sub_opts so = {.group_name = "w"};
    uint8_t buf[MSG_MAX];
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *other;
    shmbus_pub *pub;
    shmbus_msg m;
    int p[2];
    char c;
    pid_t kid;

    open_topic(d->bus, k.topic, &o, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    k.ready = p[1];
    kid = tu_fork(kid_stuck_member, &k);
    close(p[1]);
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end; du_sleep_ms(2)) {
        shmbus_slot_info si;
        if (shmbus_topic_slots_get(t, &si, 1) == 1)
            break; /* the member joined: the message is its */
    }
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, 0, 16), 0));
    assert_int_equal(du_read_ms(p[0], &c, 1, READY_MS), 1); /* inside its callback */
    close(p[0]);
    kill(kid, SIGKILL);
    tu_wait(kid);
    wait_count(t, abandoned_of, 1);
    assert_shmbus_ok(shmbus_sub_create(t, &so, &other));
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, 1, 16), 0));
    assert_true(shmbus_recv(other, buf, sizeof(buf), &m, WAIT_NS) > 0);
    assert_int_equal(m.seq, 1);
    shmbus_sub_destroy(other);
    shmbus_pub_destroy(pub);
    close_topic(bus, t);
}

static void test_stall_member_killed_in_callback_reliable(void **state)
{
    group_case(*state, SHMBUS_RELIABLE);
}

static void test_stall_member_killed_in_callback_lossy(void **state)
{
    group_case(*state, SHMBUS_LOSSY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stall_killed_blocked_publisher_costs_nothing, du_setup,
                                        du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_stopped_subscriber_evicted, du_setup,
                                        du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_default_never_evicts, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_kept_slot_never_evicted, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_held_slot_evicted, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_open_claim_ended_reliable, du_setup,
                                        du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_open_claim_ended_lossy, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_ended_claim_leaves_newer_writer_reliable,
                                        du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_ended_claim_leaves_newer_writer_lossy, du_setup,
                                        du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_stopped_batch_ended_reliable, du_setup,
                                        du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_stopped_batch_ended_lossy, du_setup,
                                        du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_observer_never_gates, du_setup, du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_member_killed_in_callback_reliable, du_setup,
                                        du_teardown),
        cmocka_unit_test_setup_teardown(test_stall_member_killed_in_callback_lossy, du_setup,
                                        du_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("stall", tests, NULL, NULL);
}
