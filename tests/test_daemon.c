/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd end to end (daemon/): every test runs its own daemon on its own
 * bus (daemonutil.h) and talks to it from several processes: publishing
 * and receiving through topics it hands out, consumer groups, access
 * control, giving back what dead clients held, and shutdown (limits and
 * refusals: test_daemon_limits; malformed control messages on a raw
 * socket: test_daemon_raw). The teardown stops the daemon with
 * SIGTERM and checks that it exited 0 and left no segment and no socket.
 * Children report through their exit status (never through cmocka).
 */
#include "daemonclient.h"

#include <pwd.h>
#include <stdatomic.h>

#define WAIT_NS    30000000000ll /* publish/receive bound: only a hang reaches it */
#define POLL_NS    100000000ll   /* a child's receive slice */
#define CHILD_MS   120000        /* a child finishes its work within this */
#define READY_MS   30000         /* children subscribe within this */
#define SETTLE_MS  10000         /* the daemon handles a disconnect within this */
#define N_PUBSUB   10000
#define N_GROUP    30000
#define GROUP_KIDS 3
#define MSG_MAX    64

/* Exit codes of children. */
enum {
    KID_OK = 0,
    KID_CONNECT = 2,
    KID_OPEN,
    KID_SUB,
    KID_RECV,
    KID_PAYLOAD,
    KID_ORDER,
    KID_META,
    KID_EXTRA,
    KID_TIMEOUT,
    KID_PIPE
};

static const char *kid_why(int st)
{
    static const char *const why[] = {"ok",         "?",         "connect",     "open",
                                      "sub_create", "recv",      "bad payload", "out of order",
                                      "metadata",   "extra msg", "timed out",   "pipe"};

    if (st < 0)
        return "did not finish in time";
    if (st >= 128)
        return "killed by a signal";
    return st < (int)(sizeof(why) / sizeof(why[0])) ? why[st] : "?";
}

static void assert_kid_ok(pid_t pid)
{
    int st = du_wait_ms(pid, CHILD_MS);

    if (st != 0)
        fail_msg("child %d: status %d (%s)", (int)pid, st, kid_why(st));
}

/* Wait until the daemon lists @p want subscribers of @p topic. */
static void await_subscribers(shmbus_bus *bus, const char *topic, uint32_t want)
{
    int64_t end = du_now_ms() + SETTLE_MS;
    shmbus_topic_entry e;

    while ((e = list_entry(bus, topic)).subscribers != want && du_now_ms() < end)
        du_sleep_ms(10);
    assert_int_equal(e.subscribers, want);
}

/* -------------------------------------------------- 1: publish/subscribe */

struct pubsub_kid {
    const char *bus;
    int ready; /* pipe: one byte once subscribed */
    pid_t publisher;
};

static int pubsub_check(shmbus_sub *sub, const struct pubsub_kid *k)
{
    uint8_t buf[MSG_MAX];
    struct tu_payload p = {0};
    shmbus_msg info;

    for (uint32_t i = 0; i < N_PUBSUB; i++) {
        int n = shmbus_recv(sub, buf, sizeof(buf), &info, WAIT_NS);

        if (n < 0)
            return KID_RECV;
        if (!tu_check(buf, (uint32_t)n, &p))
            return KID_PAYLOAD;
        if (p.seq != i)
            return KID_ORDER;
        if (info.seq != i || info.lost != 0 || info.publisher_pid != (uint32_t)k->publisher)
            return KID_META;
    }
    return shmbus_recv(sub, buf, sizeof(buf), NULL, 0) == -EAGAIN ? KID_OK : KID_EXTRA;
}

/* A child's subscription to an existing topic, with what it holds. */
struct kid_sub {
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
};

/* Connect to bus @p bus, open topic @p topic (it must exist) and subscribe
 * with @p so into @p ks. @return KID_OK, or the KID_ code of the step that
 * failed (kid_sub_close() it all the same). */
static int kid_sub_open(struct kid_sub *ks, const char *bus, const char *topic,
                        const shmbus_sub_opts *so)
{
    *ks = (struct kid_sub){0};
    if (shmbus_connect(bus, &ks->bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(ks->bus, topic, NULL, SHMBUS_OPEN_NOCREATE, &ks->t) < 0)
        return KID_OPEN;
    if (shmbus_sub_create(ks->t, so, &ks->sub) < 0)
        return KID_SUB;
    return KID_OK;
}

static void kid_sub_close(struct kid_sub *ks)
{
    shmbus_sub_destroy(ks->sub);
    shmbus_topic_destroy(ks->t);
    shmbus_close(ks->bus);
}

static int pubsub_kid_run(void *arg)
{
    const struct pubsub_kid *k = arg;
    struct kid_sub ks;
    int rc = kid_sub_open(&ks, k->bus, "feed", NULL);

    if (rc == KID_OK)
        rc = du_signal(k->ready) < 0 ? KID_PIPE : pubsub_check(ks.sub, k);
    kid_sub_close(&ks);
    return rc;
}

/* Two subscriber processes each receive all N messages in order. */
static void test_daemon_pubsub_across_processes(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 64, .max_msg_size = MSG_MAX};
    struct pubsub_kid k = {.bus = d->bus, .publisher = getpid()};
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_pub *pub = NULL;
    uint8_t buf[MSG_MAX];
    pid_t kid[2];
    int p[2];

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "feed", &o, 0, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    k.ready = p[1];
    for (int i = 0; i < 2; i++)
        kid[i] = tu_fork(pubsub_kid_run, &k);
    close(p[1]);
    assert_int_equal(du_read_ms(p[0], buf, 2, READY_MS), 2);
    close(p[0]);
    assert_int_equal(list_entry(bus, "feed").subscribers, 2);
    for (uint32_t i = 0; i < N_PUBSUB; i++)
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, i, 16 + i % 48), WAIT_NS));
    for (int i = 0; i < 2; i++)
        assert_kid_ok(kid[i]);
    assert_int_equal(list_entry(bus, "feed").subscribers, 0);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ------------------------------------------------------ 2: consumer group */

/* Shared by the parent and the group members (MAP_SHARED). */
struct group_shared {
    _Atomic uint32_t done; /* the parent saw every message counted */
    _Atomic uint32_t bad;  /* malformed or out-of-range payloads */
    _Atomic uint64_t total;
    _Atomic uint64_t got[GROUP_KIDS];
    _Atomic uint32_t hits[N_GROUP]; /* receipts per message index */
};

struct group_kid {
    const char *bus;
    int ready;
    int id;
    struct group_shared *sh;
};

static void group_record(const struct group_kid *k, const uint8_t *buf, int n)
{
    struct tu_payload p = {0};

    if (!tu_check(buf, (uint32_t)n, &p) || p.seq >= N_GROUP) {
        /* relaxed: a counter the parent reads after waitpid(). */
        atomic_fetch_add_explicit(&k->sh->bad, 1, memory_order_relaxed);
        return;
    }
    /* relaxed: read by the parent after waitpid() of every member. */
    atomic_fetch_add_explicit(&k->sh->hits[p.seq], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&k->sh->got[k->id], 1, memory_order_relaxed);
    /* release: pairs with the acquire load in group_await(); progress only. */
    atomic_fetch_add_explicit(&k->sh->total, 1, memory_order_release);
}

/* Receive until the parent says done, then take whatever is left. */
static int group_consume(shmbus_sub *sub, const struct group_kid *k)
{
    int64_t end = du_now_ms() + CHILD_MS;
    uint8_t buf[MSG_MAX];

    for (;;) {
        /* acquire: pairs with the parent's release store of done. */
        int stop = atomic_load_explicit(&k->sh->done, memory_order_acquire) != 0;
        int n = shmbus_recv(sub, buf, sizeof(buf), NULL, stop ? 0 : POLL_NS);

        if (n >= 0) {
            group_record(k, buf, n);
            continue;
        }
        if (n != -EAGAIN && n != SHMBUS_ERR_TIMEOUT)
            return KID_RECV;
        if (stop)
            return KID_OK;
        if (du_now_ms() > end)
            return KID_TIMEOUT;
    }
}

static int group_kid_run(void *arg)
{
    const struct group_kid *k = arg;
    shmbus_sub_opts so = {.group_name = "workers", .spin_ns = -1};
    struct kid_sub ks;
    int rc = kid_sub_open(&ks, k->bus, "jobs", &so);

    if (rc == KID_OK)
        rc = du_signal(k->ready) < 0 ? KID_PIPE : group_consume(ks.sub, k);
    kid_sub_close(&ks);
    return rc;
}

/* Wait until the members counted N receipts, then tell them to stop. */
static void group_await(struct group_shared *sh)
{
    int64_t end = du_now_ms() + CHILD_MS;

    /* acquire: pairs with the release increments in group_record(). */
    while (atomic_load_explicit(&sh->total, memory_order_acquire) < N_GROUP && du_now_ms() < end)
        du_sleep_ms(10);
    /* release: pairs with the acquire load in group_consume(). */
    atomic_store_explicit(&sh->done, 1, memory_order_release);
}

/* Every message went to exactly one member. */
static void group_verify(struct group_shared *sh)
{
    uint32_t missing = 0, dup = 0, first = UINT32_MAX;

    /* relaxed, all: every member has exited and been reaped. */
    for (uint32_t i = 0; i < N_GROUP; i++) {
        uint32_t h = atomic_load_explicit(&sh->hits[i], memory_order_relaxed);

        missing += h == 0;
        dup += h > 1;
        if (h != 1 && first == UINT32_MAX)
            first = i;
    }
    print_message("members got %llu, %llu, %llu of %u\n",
                  (unsigned long long)atomic_load_explicit(&sh->got[0], memory_order_relaxed),
                  (unsigned long long)atomic_load_explicit(&sh->got[1], memory_order_relaxed),
                  (unsigned long long)atomic_load_explicit(&sh->got[2], memory_order_relaxed),
                  N_GROUP);
    assert_int_equal(atomic_load_explicit(&sh->bad, memory_order_relaxed), 0);
    if (missing != 0 || dup != 0)
        fail_msg("%u messages never received, %u received twice (first: %u)", missing, dup, first);
    assert_int_equal(atomic_load_explicit(&sh->total, memory_order_relaxed), N_GROUP);
}

/* Three processes in one named group share N messages exactly once. */
static void test_daemon_group_exactly_once(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 256, .max_msg_size = MSG_MAX};
    struct group_shared *sh;
    struct group_kid k[GROUP_KIDS];
    pid_t kid[GROUP_KIDS];
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_pub *pub = NULL;
    uint8_t buf[MSG_MAX];
    int p[2];

    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "jobs", &o, 0, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    for (int i = 0; i < GROUP_KIDS; i++) {
        k[i] = (struct group_kid){.bus = d->bus, .ready = p[1], .id = i, .sh = sh};
        kid[i] = tu_fork(group_kid_run, &k[i]);
    }
    close(p[1]);
    assert_int_equal(du_read_ms(p[0], buf, GROUP_KIDS, READY_MS), GROUP_KIDS);
    close(p[0]);
    for (uint32_t i = 0; i < N_GROUP; i++)
        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 2, i, 16 + i % 48), WAIT_NS));
    group_await(sh);
    for (int i = 0; i < GROUP_KIDS; i++)
        assert_kid_ok(kid[i]);
    group_verify(sh);
    assert_int_equal(list_entry(bus, "jobs").subscribers, 0);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    munmap(sh, sizeof(*sh));
}

/* --------------------------------------------------- 3: a second daemon */

/* A second shmbusd on the same bus exits 1 naming the first; the first
 * keeps its socket and segments and goes on serving. */
static void test_daemon_second_daemon_refused(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = NULL, *bus2 = NULL;
    shmbus_topic *t = NULL, *t2 = NULL;
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    char err[2048] = "", pid[24];
    pid_t second;
    int p[2], st;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "kept", NULL, 0, &t));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    second = du_spawn(d, NULL, p[1]);
    close(p[1]);
    assert_true(second > 0);
    st = du_wait_ms(second, DU_STOP_MS);
    if (st < 0) {
        kill(second, SIGKILL);
        waitpid(second, NULL, 0);
    }
    du_read_ms(p[0], err, sizeof(err) - 1, 1000);
    close(p[0]);
    assert_int_equal(st, 1);
    snprintf(pid, sizeof(pid), "%d", (int)d->pid);
    if (strstr(err, pid) == NULL)
        fail_msg("second daemon's message does not name pid %s: %s", pid, err);
    assert_int_equal(waitpid(d->pid, &st, WNOHANG), 0);
    assert_int_equal(access(d->sock, F_OK), 0);
    assert_int_equal(du_segments(d->bus, 0), 1); /* "kept" is still there */
    assert_shmbus_ok(shmbus_connect(d->bus, &bus2));
    assert_shmbus_ok(shmbus_open(bus2, "kept", NULL, SHMBUS_OPEN_NOCREATE, &t2));
    assert_shmbus_ok(shmbus_pub_create(t2, &pub));
    exchange(pub, sub, 0);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t2);
    shmbus_topic_destroy(t);
    shmbus_close(bus2);
    shmbus_close(bus);
}

/* ------------------------------------------------------- 4: another uid */

static const char *const allow_other[] = {"--allow-uid", "12345", NULL};
static const char *const allow_nobody[] = {"--allow-uid", "nobody", NULL};

struct uid_kid {
    const char *bus;
    uid_t uid;
    gid_t gid;
    int report; /* pipe: the int result */
    int serve;  /* also open a topic and pass a message */
};

/* As an allowed client: open a topic, publish and receive one message. */
static int uid_exchange(shmbus_bus *bus)
{
    shmbus_topic *t = NULL;
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    uint8_t buf[MSG_MAX];
    struct tu_payload p = {0};
    int rc;

    if ((rc = shmbus_open(bus, "shared", NULL, 0, &t)) == 0 &&
        (rc = shmbus_pub_create(t, &pub)) == 0 && (rc = shmbus_sub_create(t, NULL, &sub)) == 0 &&
        (rc = shmbus_publish(pub, buf, tu_fill(buf, 4, 7, 40), WAIT_NS)) == 0 &&
        (rc = shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS)) >= 0)
        rc = tu_check(buf, (uint32_t)rc, &p) && p.seq == 7 ? 0 : SHMBUS_ERR_CORRUPT;
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    return rc;
}

static int uid_kid_run(void *arg)
{
    const struct uid_kid *k = arg;
    shmbus_bus *bus = NULL;
    int rc = -EPERM;

    if (tu_become(k->uid, k->gid) == 0 && getuid() == k->uid && geteuid() == k->uid) {
        rc = shmbus_connect(k->bus, &bus);
        if (rc == 0 && k->serve)
            rc = uid_exchange(bus);
        shmbus_close(bus);
    }
    return write(k->report, &rc, sizeof(rc)) == (ssize_t)sizeof(rc) ? KID_OK : KID_PIPE;
}

/* Run a child as user nobody. @return what its shmbus calls returned. */
static int uid_run_as_nobody(struct du_daemon *d, int serve)
{
    struct passwd *pw;
    struct uid_kid k = {.bus = d->bus, .serve = serve};
    int p[2], rc = 1;
    pid_t kid;

    if (getuid() != 0)
        skip(); /* only root can become another user */
    pw = getpwnam("nobody");
    if (pw == NULL || pw->pw_uid == 0)
        skip();
    k.uid = pw->pw_uid;
    k.gid = pw->pw_gid;
    assert_int_equal(chmod(d->dir, 0755), 0); /* nobody must reach the socket */
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    k.report = p[1];
    kid = tu_fork(uid_kid_run, &k);
    close(p[1]);
    assert_int_equal(du_read_ms(p[0], &rc, sizeof(rc), CHILD_MS), sizeof(rc));
    close(p[0]);
    assert_kid_ok(kid);
    assert_int_not_equal(rc, -EPERM); /* the child could not become nobody */
    return rc;
}

/* A uid that is neither the daemon's nor allowed is refused, even though
 * --allow-uid opened the socket to everyone. */
static void test_daemon_other_uid_denied(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = NULL;

    assert_shmbus_rc(uid_run_as_nobody(d, 0), SHMBUS_ERR_DENIED);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shmbus_close(bus);
}

/* An allowed uid connects, creates a topic and uses it (via the descriptor). */
static void test_daemon_allowed_uid_served(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus = NULL;
    shmbus_topic_entry e;

    assert_shmbus_ok(uid_run_as_nobody(d, 1));
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    e = list_entry(bus, "shared");
    assert_int_equal(e.clients, 0);
    assert_int_equal(e.subscribers, 0);
    assert_int_equal(e.publishers, 0);
    shmbus_close(bus);
}

/* A daemon without --nats answers the NATS request: state OFF, every
 * string empty, every number 0, no topic; the link alone with cap 0. */
static void test_daemon_nats_off_without_federation(void **state)
{
    struct du_daemon *d = *state;
    shmbus_nats_topic topics[2];
    shmbus_nats_info info, zero;
    shmbus_topic *t;
    shmbus_bus *bus = NULL;

    memset(&zero, 0, sizeof(zero));
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "local.only", NULL, 0, &t));
    memset(&info, 0xa5, sizeof(info));
    assert_int_equal(shmbus_nats_stat(bus, 0, &info, topics, 2), 0);
    assert_int_equal(info.state, SHMBUS_NATS_OFF);
    assert_memory_equal(&info, &zero, sizeof(info));
    memset(&info, 0xa5, sizeof(info));
    assert_int_equal(shmbus_nats_stat(bus, 5, &info, NULL, 0), 0);
    assert_memory_equal(&info, &zero, sizeof(info));
    assert_shmbus_rc(shmbus_nats_stat(bus, 0, NULL, topics, 2), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_nats_stat(bus, 0, &info, NULL, 2), SHMBUS_ERR_INVALID);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ------------------------------------------------ 8: slots are given back */

struct dead_kid {
    const char *bus;
    const char *group; /* NULL: a plain subscriber */
    int ready, go;     /* pipes */
};

/* Subscribe, say so, wait for the word, then die holding everything. */
static int dead_kid_run(void *arg)
{
    const struct dead_kid *k = arg;
    shmbus_sub_opts so = {.group_name = k->group};
    struct kid_sub ks;
    int rc = kid_sub_open(&ks, k->bus, "gated", &so);
    char c;

    if (rc != KID_OK)
        return rc;
    if (du_signal(k->ready) < 0 || read(k->go, &c, 1) != 1)
        return KID_PIPE;
    _exit(KID_OK); /* no sub_destroy, no topic_destroy, no close */
}

/* Publish one message without waiting. */
static int try_publish(shmbus_pub *pub, uint64_t seq)
{
    uint8_t buf[MSG_MAX];

    return shmbus_publish(pub, buf, tu_fill(buf, 5, seq, 24), 0);
}

/* The daemon takes back the slot of a subscriber (and of a group member)
 * whose process died: publishers on a full reliable ring go on. */
static void test_daemon_dead_subscriber_slot_released(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 8, .max_msg_size = MSG_MAX};
    struct dead_kid k[2] = {{.bus = d->bus}, {.bus = d->bus, .group = "g"}};
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_pub *pub = NULL;
    int ready[2], go[2][2];
    pid_t kid[2];
    uint64_t seq = 0;
    char c[2];

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "gated", &o, 0, &t));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe2(go[i], O_CLOEXEC), 0);
        k[i].ready = ready[1];
        k[i].go = go[i][0];
        kid[i] = tu_fork(dead_kid_run, &k[i]);
        close(go[i][0]);
    }
    close(ready[1]);
    assert_int_equal(du_read_ms(ready[0], c, 2, READY_MS), 2);
    close(ready[0]);
    assert_int_equal(list_entry(bus, "gated").subscribers, 2);
    assert_int_equal(list_entry(bus, "gated").clients, 3);
    for (; seq < o.capacity; seq++)
        assert_shmbus_ok(try_publish(pub, seq));
    assert_shmbus_rc(try_publish(pub, seq), -EAGAIN); /* both hold the ring */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(du_signal(go[i][1]), 0);
        assert_kid_ok(kid[i]);
        close(go[i][1]);
        await_subscribers(bus, "gated", 1u - (uint32_t)i);
        if (i == 0) /* the group member still holds it */
            assert_shmbus_rc(try_publish(pub, seq), -EAGAIN);
    }
    assert_int_equal(list_entry(bus, "gated").clients, 1);
    for (int i = 0; i < 3 * (int)o.capacity; i++, seq++) {
        uint8_t buf[MSG_MAX];

        assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 5, seq, 24), WAIT_NS));
    }
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ------------------------------------------------------------ 9: shutdown */

#define N_TOPICS 40 /* more than one LIST page (SB_WIRE_LIST_MAX) */

struct late_kid {
    const char *bus;
    int ready;
};

/* Subscribe to topic-07, then receive one message published after the
 * daemon is gone: a mapped segment outlives the daemon. */
static int late_kid_run(void *arg)
{
    const struct late_kid *k = arg;
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_sub *sub = NULL;
    uint8_t buf[MSG_MAX];
    struct tu_payload p = {0};
    int rc = KID_CONNECT, n;

    if (shmbus_connect(k->bus, &bus) < 0)
        goto out;
    rc = KID_OPEN;
    if (shmbus_open(bus, "topic-07", NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        goto out;
    rc = KID_SUB;
    if (shmbus_sub_create(t, NULL, &sub) < 0)
        goto out;
    rc = KID_PIPE;
    if (du_signal(k->ready) < 0)
        goto out;
    n = shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS);
    rc = n < 0 ? KID_RECV : tu_check(buf, (uint32_t)n, &p) && p.seq == 77 ? KID_OK : KID_PAYLOAD;
out:
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return rc;
}

static void shutdown_open_all(shmbus_bus *bus, shmbus_topic **t)
{
    shmbus_topic_entry e[N_TOPICS + 1];
    char name[32];

    for (int i = 0; i < N_TOPICS; i++) {
        shmbus_topic_opts o = {.mode = i % 2 ? SHMBUS_RELIABLE : SHMBUS_LOSSY,
                               .capacity = 16,
                               .max_msg_size = MSG_MAX};

        snprintf(name, sizeof(name), "topic-%02d", N_TOPICS - 1 - i);
        assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t[i]));
    }
    assert_int_equal(shmbus_list(bus, NULL, e, N_TOPICS + 1), N_TOPICS);
    for (int i = 0; i < N_TOPICS; i++) {
        snprintf(name, sizeof(name), "topic-%02d", i);
        assert_string_equal(e[i].name, name);
    }
}

/* SIGTERM with many topics, clients of two processes and live subscribers:
 * exit 0, the socket and the lock file removed, the topics nobody holds
 * removed and the others kept; clients see the daemon gone, and mapped
 * topics go on working. A next daemon takes the kept ones over (its stop,
 * in the teardown, removes them once nobody uses them). */
static void test_daemon_sigterm_cleans_up(void **state)
{
    struct du_daemon *d = *state;
    struct late_kid k = {.bus = d->bus};
    shmbus_topic *t[N_TOPICS];
    shmbus_topic_entry e;
    shmbus_bus *bus = NULL, *b2 = NULL;
    shmbus_pub *pub = NULL;
    uint8_t buf[MSG_MAX];
    char lock[SHMBUS_BUS_NAME_MAX + 32];
    int p[2];
    pid_t kid;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shutdown_open_all(bus, t);
    assert_int_equal(du_segments(d->bus, 0), N_TOPICS);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    k.ready = p[1];
    kid = tu_fork(late_kid_run, &k);
    close(p[1]);
    assert_int_equal(du_read_ms(p[0], buf, 1, READY_MS), 1);
    close(p[0]);
    assert_shmbus_ok(shmbus_pub_create(t[N_TOPICS - 1 - 7], &pub));
    /* Every other topic is left unused (topic-07, t[32], is used anyway). */
    for (int i = 1; i < N_TOPICS; i += 2) {
        shmbus_topic_destroy(t[i]);
        t[i] = NULL;
    }
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(du_segments(d->bus, 0), N_TOPICS / 2);
    assert_int_not_equal(access(d->sock, F_OK), 0);
    snprintf(lock, sizeof(lock), "/dev/shm/shmbus-%s.lock", d->bus);
    assert_int_not_equal(access(lock, F_OK), 0);
    snprintf(lock, sizeof(lock), "%.*slock", (int)(strlen(d->sock) - 4), d->sock);
    assert_int_not_equal(access(lock, F_OK), 0);
    assert_shmbus_rc(shmbus_list(bus, NULL, &e, 1), SHMBUS_ERR_DAEMON_LOST);
    assert_shmbus_rc(shmbus_connect(d->bus, &b2), SHMBUS_ERR_NO_DAEMON);
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 9, 77, 30), WAIT_NS));
    assert_kid_ok(kid);
    shmbus_pub_destroy(pub);
    for (int i = 0; i < N_TOPICS; i++)
        shmbus_topic_destroy(t[i]);
    shmbus_close(bus);
    assert_int_equal(du_launch(d, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        DAEMON_TEST(test_daemon_pubsub_across_processes),
        DAEMON_TEST(test_daemon_group_exactly_once),
        DAEMON_TEST(test_daemon_second_daemon_refused),
        DAEMON_TEST_ARGS(test_daemon_other_uid_denied, allow_other),
        DAEMON_TEST_ARGS(test_daemon_allowed_uid_served, allow_nobody),
        DAEMON_TEST(test_daemon_dead_subscriber_slot_released),
        DAEMON_TEST(test_daemon_sigterm_cleans_up),
        DAEMON_TEST(test_daemon_nats_off_without_federation),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
