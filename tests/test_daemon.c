/*
 * shmbusd end to end (daemon/): every test runs its own daemon on its own
 * bus (daemonutil.h) and talks to it from several processes: publishing
 * and receiving through topics it hands out, consumer groups, access
 * control, limits, malformed control messages on a raw socket, giving back
 * what dead clients held, and shutdown. The teardown stops the daemon with
 * SIGTERM and checks that it exited 0 and left no segment and no socket.
 * Children report through their exit status (never through cmocka).
 */
#include "daemonutil.h"

#include <grp.h>
#include <pwd.h>
#include <stdatomic.h>

#include "registry/admin.h"

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

/* Connect, retrying while the daemon still counts a client that just left
 * (it handles the disconnect asynchronously). */
static int connect_retry(const char *bus, shmbus_bus **out)
{
    int64_t end = du_now_ms() + SETTLE_MS;
    int rc;

    while ((rc = shmbus_connect(bus, out)) == SHMBUS_ERR_LIMIT && du_now_ms() < end)
        du_sleep_ms(10);
    return rc;
}

/* The daemon's entry for @p topic; fails the test when it is not listed. */
static shmbus_topic_entry list_entry(shmbus_bus *bus, const char *topic)
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

/* Wait until the daemon lists @p want subscribers of @p topic. */
static void await_subscribers(shmbus_bus *bus, const char *topic, uint32_t want)
{
    int64_t end = du_now_ms() + SETTLE_MS;
    shmbus_topic_entry e;

    while ((e = list_entry(bus, topic)).subscribers != want && du_now_ms() < end)
        du_sleep_ms(10);
    assert_int_equal(e.subscribers, want);
}

/* Publish a self-checking message @p seq and receive it on @p sub. */
static void exchange(shmbus_pub *pub, shmbus_sub *sub, uint64_t seq)
{
    uint8_t buf[MSG_MAX];
    struct tu_payload p = {0};
    int n;

    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 3, seq, 16 + seq % 40), WAIT_NS));
    n = shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS);
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

static void alive_open(struct alive *a, const char *bus)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = 16, .max_msg_size = MSG_MAX};

    memset(a, 0, sizeof(*a));
    assert_shmbus_ok(connect_retry(bus, &a->bus));
    assert_shmbus_ok(shmbus_open(a->bus, "alive", &o, 0, &a->t));
    assert_shmbus_ok(shmbus_pub_create(a->t, &a->pub));
    assert_shmbus_ok(shmbus_sub_create(a->t, NULL, &a->sub));
}

/* The daemon still answers (list, open with a descriptor) and the topic
 * still carries messages. */
static void alive_check(struct alive *a)
{
    shmbus_topic *t2 = NULL;

    assert_int_equal(list_entry(a->bus, "alive").subscribers, 1);
    assert_shmbus_ok(shmbus_open(a->bus, "alive", NULL, SHMBUS_OPEN_NOCREATE, &t2));
    shmbus_topic_destroy(t2);
    exchange(a->pub, a->sub, a->seq++);
}

static void alive_close(struct alive *a)
{
    shmbus_sub_destroy(a->sub);
    shmbus_pub_destroy(a->pub);
    shmbus_topic_destroy(a->t);
    shmbus_close(a->bus);
    memset(a, 0, sizeof(*a));
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

static int pubsub_kid_run(void *arg)
{
    const struct pubsub_kid *k = arg;
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_sub *sub = NULL;
    int rc = KID_CONNECT;

    if (shmbus_connect(k->bus, &bus) < 0)
        goto out;
    rc = KID_OPEN;
    if (shmbus_open(bus, "feed", NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        goto out;
    rc = KID_SUB;
    if (shmbus_sub_create(t, NULL, &sub) < 0)
        goto out;
    rc = du_signal(k->ready) < 0 ? KID_PIPE : pubsub_check(sub, k);
out:
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
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
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_sub *sub = NULL;
    int rc = KID_CONNECT;

    if (shmbus_connect(k->bus, &bus) < 0)
        goto out;
    rc = KID_OPEN;
    if (shmbus_open(bus, "jobs", NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        goto out;
    rc = KID_SUB;
    if (shmbus_sub_create(t, &so, &sub) < 0)
        goto out;
    rc = du_signal(k->ready) < 0 ? KID_PIPE : group_consume(sub, k);
out:
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
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

    if (setgroups(0, NULL) == 0 && setgid(k->gid) == 0 && setuid(k->uid) == 0 &&
        getuid() == k->uid && geteuid() == k->uid) {
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

/* ------------------------------------------- 5: malformed control messages */

/* Connect a raw socket, failing the test if that is impossible. */
static int raw_open(const struct du_daemon *d)
{
    int s = du_raw_connect(d->sock);

    if (s < 0)
        fail_msg("raw connect: %s", strerror(-s));
    return s;
}

static int raw_open_hello(const struct du_daemon *d)
{
    struct du_reply r;
    int s = raw_open(d);

    assert_int_equal(du_raw_hello(s, 1, (uint32_t)getpid()), 0);
    assert_int_equal(du_raw_ok(s, 1, &r), sizeof(struct sb_wire_hello_ok));
    return s;
}

/* Packets shorter than a header, and bodies shorter or longer than their
 * type's, or than the header says. */
static void test_daemon_raw_truncated(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_hello h = {.pid = (uint32_t)getpid()};
    struct sb_wire_hdr hd = {SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, sizeof(h), 9};
    uint8_t body[sizeof(struct sb_wire_list) + 8] = {0};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    assert_int_equal(send(s, "S", 1, MSG_NOSIGNAL), 1);
    assert_raw_err(s, 0, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(send(s, &hd, sizeof(hd) - 1, MSG_NOSIGNAL), sizeof(hd) - 1);
    assert_raw_err(s, 0, SHMBUS_ERR_PROTOCOL);
    alive_check(&a);
    /* Honest length, but shorter than the type's body. */
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, 10, 11, &h, 10), 0);
    assert_raw_err(s, 11, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_OPEN, 32, 12, body, 32), 0);
    assert_raw_err(s, 12, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, 0, 13, NULL, 0), 0);
    assert_raw_err(s, 13, SHMBUS_ERR_PROTOCOL);
    /* The header claims more, or less, than came. */
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, sizeof(h), 14, &h, 39),
        0);
    assert_raw_err(s, 14, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(
        du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_HELLO, 32, 15, &h, sizeof(h)),
        0);
    assert_raw_err(s, 15, SHMBUS_ERR_PROTOCOL);
    /* Longer than the type's body, honestly. */
    assert_int_equal(du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_LIST,
                                 sizeof(body), 16, body, sizeof(body)),
                     0);
    assert_raw_err(s, 16, SHMBUS_ERR_PROTOCOL);
    alive_check(&a);
    /* The connection survived all of it. */
    assert_int_equal(du_raw_hello(s, 17, (uint32_t)getpid()), 0);
    du_raw_ok(s, 17, &r);
    close(s);
    alive_close(&a);
}

/* Packets over SB_WIRE_MAX are refused whole; one of exactly SB_WIRE_MAX
 * is read and refused for its length. */
static void test_daemon_raw_oversized(void **state)
{
    struct du_daemon *d = *state;
    static uint8_t big[65536];
    const size_t sizes[] = {SB_WIRE_MAX + 1, SB_WIRE_MAX + 4096, sizeof(big)};
    struct sb_wire_hdr h = {SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_LIST, 0, 21};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        h.len = (uint32_t)(sizes[i] - sizeof(h));
        memcpy(big, &h, sizeof(h));
        assert_int_equal(send(s, big, sizes[i], MSG_NOSIGNAL), (ssize_t)sizes[i]);
        assert_raw_err(s, DU_ANY_REQ, SHMBUS_ERR_PROTOCOL);
        alive_check(&a);
    }
    h.len = SB_WIRE_MAX - sizeof(h);
    memcpy(big, &h, sizeof(h));
    assert_int_equal(send(s, big, SB_WIRE_MAX, MSG_NOSIGNAL), (ssize_t)SB_WIRE_MAX);
    assert_raw_err(s, 21, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_hello(s, 22, (uint32_t)getpid()), 0);
    du_raw_ok(s, 22, &r);
    assert_int_equal(send(s, big, sizeof(big), MSG_NOSIGNAL), (ssize_t)sizeof(big));
    assert_raw_err(s, DU_ANY_REQ, SHMBUS_ERR_PROTOCOL);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Unknown types (replies included) and a bad magic, before and after hello. */
static void test_daemon_raw_unknown_type(void **state)
{
    struct du_daemon *d = *state;
    const uint16_t types[] = {0, SB_MSG_BRIDGE + 1, 0x55, SB_MSG_OK, SB_MSG_ERR, 0xffff};
    uint8_t body[8] = {0};
    struct alive a;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            uint32_t req = 100 + (uint32_t)i;

            assert_int_equal(du_raw_req(s, types[i], req, NULL, 0), 0);
            assert_raw_err(s, req, SHMBUS_ERR_PROTOCOL);
            assert_int_equal(du_raw_req(s, types[i], req + 50, body, sizeof(body)), 0);
            assert_raw_err(s, req + 50, SHMBUS_ERR_PROTOCOL);
        }
        assert_int_equal(du_raw_send(s, SB_WIRE_MAGIC + 1, 1, SB_MSG_LIST, 0, 200, NULL, 0), 0);
        assert_raw_err(s, 200, SHMBUS_ERR_PROTOCOL);
        assert_int_equal(du_raw_send(s, 0, 0, 0, 0, 201, NULL, 0), 0);
        assert_raw_err(s, 201, SHMBUS_ERR_PROTOCOL);
        alive_check(&a);
        if (pass == 0) {
            struct du_reply r;

            assert_int_equal(du_raw_hello(s, 300, (uint32_t)getpid()), 0);
            du_raw_ok(s, 300, &r);
        }
    }
    close(s);
    alive_close(&a);
}

/* Another protocol version gets PROTO_VERSION, in a header of ours. */
static void test_daemon_raw_protocol_version(void **state)
{
    struct du_daemon *d = *state;
    const uint16_t versions[] = {0, SHMBUS_PROTOCOL_VERSION + 1, 0xffff};
    struct sb_wire_hello h = {.pid = (uint32_t)getpid()};
    struct sb_wire_list l = {.after = ""};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        uint32_t req = 10 + (uint32_t)i;

        assert_int_equal(
            du_raw_send(s, SB_WIRE_MAGIC, versions[i], SB_MSG_HELLO, sizeof(h), req, &h, sizeof(h)),
            0);
        assert_raw_err(s, req, SHMBUS_ERR_PROTO_VERSION);
        /* A future version may have other types and sizes. */
        assert_int_equal(du_raw_send(s, SB_WIRE_MAGIC, versions[i], 77, 3, req + 20, "abc", 3), 0);
        assert_raw_err(s, req + 20, SHMBUS_ERR_PROTO_VERSION);
    }
    alive_check(&a);
    assert_int_equal(du_raw_hello(s, 40, (uint32_t)getpid()), 0);
    du_raw_ok(s, 40, &r);
    assert_int_equal(du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION + 1, SB_MSG_LIST,
                                 sizeof(l), 41, &l, sizeof(l)),
                     0);
    assert_raw_err(s, 41, SHMBUS_ERR_PROTO_VERSION);
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 42, &l, sizeof(l)), 0);
    du_raw_ok(s, 42, &r);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Requests before hello are refused and do nothing; hello then works once. */
static void test_daemon_raw_request_before_hello(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_open o = {.name = "early"};
    struct sb_wire_list l = {.after = ""};
    struct sb_wire_ref ref = {.topic = 1};
    struct sb_wire_sub sub = {.topic = 1};
    struct sb_wire_hello_ok ok;
    shmbus_topic_entry e[4];
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open(d);
    assert_int_equal(du_raw_req(s, SB_MSG_OPEN, 2, &o, sizeof(o)), 0);
    assert_raw_err(s, 2, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 3, &l, sizeof(l)), 0);
    assert_raw_err(s, 3, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_CLOSE, 4, &ref, sizeof(ref)), 0);
    assert_raw_err(s, 4, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_SUB_ADD, 5, &sub, sizeof(sub)), 0);
    assert_raw_err(s, 5, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(shmbus_list(a.bus, NULL, e, 4), 1); /* "alive" only */
    assert_int_equal(du_segments(d->bus, 0), 1);
    alive_check(&a);
    assert_int_equal(du_raw_hello(s, 6, (uint32_t)getpid()), 0);
    assert_int_equal(du_raw_ok(s, 6, &r), sizeof(ok));
    memcpy(&ok, r.body, sizeof(ok));
    assert_int_equal(ok.daemon_pid, d->pid);
    assert_int_equal(du_raw_hello(s, 7, (uint32_t)getpid()), 0);
    assert_raw_err(s, 7, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 8, &l, sizeof(l)), 0);
    du_raw_ok(s, 8, &r);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* A hello whose pid is not the socket peer's is denied and disconnected. */
static void test_daemon_raw_hello_wrong_pid(void **state)
{
    struct du_daemon *d = *state;
    const uint32_t pids[] = {(uint32_t)getppid(), 0, (uint32_t)d->pid, (uint32_t)getpid() + 1};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
        s = raw_open(d);
        assert_int_equal(du_raw_hello(s, 5, pids[i]), 0);
        assert_raw_err(s, 5, SHMBUS_ERR_DENIED);
        assert_int_equal(du_raw_reply(s, &r), 0); /* closed */
        close(s);
        alive_check(&a);
    }
    s = raw_open_hello(d);
    close(s);
    alive_close(&a);
}

/* OPEN one name; @return the reply's error code, or 0 with the topic id
 * in *id (if not NULL) and the descriptor closed. */
static int raw_open_name(int s, uint32_t req, const char *name, size_t n, uint32_t *id)
{
    struct sb_wire_open_ok ok;
    struct sb_wire_open o;
    struct du_reply r;

    memset(&o, 0, sizeof(o));
    memcpy(o.name, name, n);
    assert_int_equal(du_raw_req(s, SB_MSG_OPEN, req, &o, sizeof(o)), 0);
    assert_true(du_raw_reply(s, &r) > 0);
    assert_int_equal(r.req, req);
    if (r.type == SB_MSG_OK) {
        assert_true(r.fd >= 0); /* the segment's descriptor */
        close(r.fd);
        assert_int_equal(r.len, sizeof(ok));
        memcpy(&ok, r.body, sizeof(ok));
        if (id != NULL)
            *id = ok.topic;
        return 0;
    }
    if (r.fd >= 0)
        close(r.fd);
    assert_int_equal(r.type, SB_MSG_ERR);
    return r.code;
}

/* Topic names: empty, too long, bad characters, leading '.', no NUL. */
static void test_daemon_raw_bad_topic_names(void **state)
{
    struct du_daemon *d = *state;
    const char *bad[] = {"", ".hidden", "a/b", "a b", "a\x01", "caf\xc3\xa9", "a*", "a\\b"};
    char name[sizeof(((struct sb_wire_open *)0)->name)];
    struct alive a;
    int s;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_shmbus_rc(raw_open_name(s, 10 + (uint32_t)i, bad[i], strlen(bad[i]), NULL),
                         SHMBUS_ERR_BAD_NAME);
    memset(name, 'n', sizeof(name));
    assert_shmbus_rc(raw_open_name(s, 30, name, SHMBUS_TOPIC_NAME_MAX + 1, NULL),
                     SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(raw_open_name(s, 31, name, sizeof(name) - 1, NULL), SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(raw_open_name(s, 32, name, sizeof(name), NULL), SHMBUS_ERR_PROTOCOL);
    alive_check(&a);
    /* The longest valid name and every valid character are accepted. */
    assert_shmbus_ok(raw_open_name(s, 33, name, SHMBUS_TOPIC_NAME_MAX, NULL));
    assert_shmbus_ok(raw_open_name(s, 34, "Az09_.:-x", 9, NULL));
    assert_int_equal(du_segments(d->bus, 0), 3);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Group names in SUB_ADD, the LIST start and the hello's program name. */
static void test_daemon_raw_bad_other_names(void **state)
{
    struct du_daemon *d = *state;
    const char *bad[] = {".g", "g/h", "g h", "g\x7f"};
    struct sb_wire_sub sub = {0};
    struct sb_wire_list l;
    struct sb_wire_hello h = {.pid = (uint32_t)getpid()};
    struct alive a;
    struct du_reply r;
    int s;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    assert_shmbus_ok(raw_open_name(s, 2, "grouped", 7, &sub.topic));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(sub.group, sizeof(sub.group), "%s", bad[i]);
        assert_int_equal(du_raw_req(s, SB_MSG_SUB_ADD, 10 + (uint32_t)i, &sub, sizeof(sub)), 0);
        assert_raw_err(s, 10 + (uint32_t)i, SHMBUS_ERR_BAD_NAME);
    }
    memset(sub.group, 'g', sizeof(sub.group));
    assert_int_equal(du_raw_req(s, SB_MSG_SUB_ADD, 20, &sub, sizeof(sub)), 0);
    assert_raw_err(s, 20, SHMBUS_ERR_PROTOCOL);
    memset(l.after, 'a', sizeof(l.after));
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 21, &l, sizeof(l)), 0);
    assert_raw_err(s, 21, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(list_entry(a.bus, "alive").subscribers, 1); /* no slot was taken */
    alive_check(&a);
    close(s);
    s = raw_open(d);
    memset(h.name, 'p', sizeof(h.name));
    assert_int_equal(du_raw_req(s, SB_MSG_HELLO, 30, &h, sizeof(h)), 0);
    assert_raw_err(s, 30, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_hello(s, 31, (uint32_t)getpid()), 0);
    du_raw_ok(s, 31, &r);
    close(s);
    alive_close(&a);
}

/* Send a reference request and return the reply's code (0 for OK). */
static int raw_ref(int s, uint16_t type, uint32_t req, uint32_t topic, uint32_t slot)
{
    struct sb_wire_ref ref = {.topic = topic, .slot = slot};
    struct du_reply r;

    assert_int_equal(du_raw_req(s, type, req, &ref, sizeof(ref)), 0);
    assert_true(du_raw_reply(s, &r) > 0);
    assert_int_equal(r.req, req);
    return r.type == SB_MSG_OK ? 0 : r.type == SB_MSG_ERR ? r.code : SHMBUS_ERR_PROTOCOL;
}

/* Unknown flags, modes and out-of-range options in OPEN. */
static void test_daemon_raw_bad_options(void **state)
{
    struct du_daemon *d = *state;
    const struct sb_wire_open bad[] = {{.name = "o", .mode = 3},
                                       {.name = "o", .flags = 2},
                                       {.name = "o", .topic_flags = 4},
                                       {.name = "o", .capacity = 3},
                                       {.name = "o", .capacity = 1},
                                       {.name = "o", .capacity = 1u << 25},
                                       {.name = "o", .max_groups = 257},
                                       {.name = "o", .max_subscribers = 1025},
                                       {.name = "o", .max_msg_size = (16u << 20) + 1}};
    shmbus_topic_entry e[4];
    struct alive a;
    int s;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    for (uint32_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(du_raw_req(s, SB_MSG_OPEN, 10 + i, &bad[i], sizeof(bad[i])), 0);
        assert_raw_err(s, 10 + i, SHMBUS_ERR_INVALID);
    }
    assert_int_equal(shmbus_list(a.bus, NULL, e, 4), 1); /* "alive" only */
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Topic ids and slots that this connection does not hold. */
static void test_daemon_raw_bad_references(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_sub sub = {0};
    struct sb_wire_sub_ok ok;
    struct alive a;
    struct du_reply r;
    uint32_t id = 0;
    int s = -1, s2;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    assert_int_equal(raw_ref(s, SB_MSG_CLOSE, 6, 999, 0), -ENOENT);
    assert_shmbus_ok(raw_open_name(s, 8, "refs", 4, &id));
    assert_int_equal(raw_ref(s, SB_MSG_PUB_ADD, 7, id + 1, 0), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_PUB_DEL, 9, id, 0), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_SUB_DEL, 10, id, 0), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_PUB_ADD, 11, id, 0), 0);
    assert_int_equal(raw_ref(s, SB_MSG_PUB_DEL, 12, id, 0), 0);
    assert_int_equal(raw_ref(s, SB_MSG_PUB_DEL, 13, id, 0), -ENOENT);
    sub.topic = id;
    assert_int_equal(du_raw_req(s, SB_MSG_SUB_ADD, 14, &sub, sizeof(sub)), 0);
    assert_int_equal(du_raw_ok(s, 14, &r), sizeof(ok));
    memcpy(&ok, r.body, sizeof(ok));
    assert_int_equal(list_entry(a.bus, "refs").subscribers, 1);
    s2 = raw_open_hello(d); /* the topic exists, but this connection holds nothing */
    assert_int_equal(raw_ref(s2, SB_MSG_SUB_DEL, 15, id, ok.slot), -ENOENT);
    assert_int_equal(raw_ref(s2, SB_MSG_PUB_ADD, 15, id, 0), -ENOENT);
    assert_int_equal(raw_ref(s2, SB_MSG_CLOSE, 15, id, 0), -ENOENT);
    close(s2);
    assert_int_equal(raw_ref(s, SB_MSG_SUB_DEL, 16, id, ok.slot + 1), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_SUB_DEL, 17, id, ok.slot), 0);
    assert_int_equal(raw_ref(s, SB_MSG_SUB_DEL, 18, id, ok.slot), -ENOENT);
    assert_int_equal(raw_ref(s, SB_MSG_CLOSE, 19, id, 0), 0);
    assert_int_equal(raw_ref(s, SB_MSG_CLOSE, 20, id, 0), -ENOENT);
    assert_int_equal(list_entry(a.bus, "refs").subscribers, 0);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* Send a LIST with @p nfd copies of a descriptor attached. */
static int raw_list_with_fds(int s, uint32_t req, int fd, int nfd)
{
    struct sb_wire_list l = {.after = ""};
    struct sb_wire_hdr h = {SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, SB_MSG_LIST, sizeof(l), req};
    struct iovec iov[2] = {{&h, sizeof(h)}, {&l, sizeof(l)}};
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf};
    struct cmsghdr *c;

    memset(&ctl, 0, sizeof(ctl));
    m.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
    for (int i = 0; i < nfd; i++)
        memcpy(CMSG_DATA(c) + (size_t)i * sizeof(int), &fd, sizeof(int));
    return sendmsg(s, &m, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Descriptors that clients push at the daemon are closed, not kept. */
static void test_daemon_raw_descriptors_not_kept(void **state)
{
    struct du_daemon *d = *state;
    struct du_reply r;
    int s, null, before, after;

    if (du_fd_count(d->pid) < 0)
        skip(); /* /proc/PID/fd of the daemon is not readable here */
    s = raw_open_hello(d);
    before = du_fd_count(d->pid);
    null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(null >= 0);
    for (uint32_t i = 0; i < 50; i++) {
        assert_int_equal(raw_list_with_fds(s, 10 + i, null, 1), 0);
        du_raw_ok(s, 10 + i, &r);
    }
    assert_int_equal(raw_list_with_fds(s, 99, null, 8), 0);
    assert_raw_err(s, DU_ANY_REQ, SHMBUS_ERR_PROTOCOL); /* more than it takes */
    after = du_fd_count(d->pid);
    assert_int_equal(after, before);
    close(null);
    close(s);
}

/*
 * A zero-length packet is shorter than the header: SHMBUS_ERR_PROTOCOL and
 * the connection stays (recv() returns 0 for it as for a hang-up; the
 * daemon tells them apart by RDHUP).
 */
static void test_daemon_raw_empty_packet(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_list l = {.after = ""};
    struct du_reply r;
    int s = raw_open_hello(d);

    assert_int_equal(send(s, "", 0, MSG_NOSIGNAL), 0);
    assert_raw_err(s, 0, SHMBUS_ERR_PROTOCOL);
    assert_int_equal(du_raw_req(s, SB_MSG_LIST, 2, &l, sizeof(l)), 0);
    du_raw_ok(s, 2, &r);
    close(s);
}

/* A client that sends requests but never reads the replies is
 * disconnected once its socket fills; others are not disturbed. */
static void test_daemon_raw_unread_replies_disconnect(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_list l = {.after = ""};
    struct timeval tv = {.tv_sec = DU_REPLY_S};
    struct alive a;
    struct du_reply r;
    uint32_t sent = 0, replies = 0;
    int s;

    alive_open(&a, d->bus);
    s = raw_open_hello(d);
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
    while (sent < 100000 && du_raw_req(s, SB_MSG_LIST, 100 + sent, &l, sizeof(l)) == 0)
        sent++;
    assert_true(sent < 100000);
    while (du_raw_reply(s, &r) > 0) {
        assert_int_equal(r.type, SB_MSG_OK);
        assert_int_equal(r.req, 100 + replies);
        replies++;
    }
    /* The daemon hung up (0, or -ECONNRESET as it left our requests
     * unread), rather than our receive timing out. */
    if (r.n != 0 && r.n != -ECONNRESET)
        fail_msg("after %u replies: %ld (%s), want the daemon's hang-up", replies, r.n,
                 shmbus_strerror((int)r.n));
    assert_true(replies >= 1 && replies <= sent);
    print_message("sent %u requests, read %u replies, then the daemon hung up\n", sent, replies);
    alive_check(&a);
    close(s);
    alive_close(&a);
}

/* ------------------------------------------------------------ 6: options */

/* An existing topic is opened only with its own options (zero: any). */
static void test_daemon_open_mismatch(void **state)
{
    struct du_daemon *d = *state;
    const shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                                 .capacity = 16,
                                 .max_msg_size = 64,
                                 .max_subscribers = 4,
                                 .max_groups = 2};
    shmbus_topic_opts x[6];
    shmbus_topic *t = NULL, *t2 = NULL;
    shmbus_topic_info info;
    shmbus_bus *bus = NULL;

    for (int i = 0; i < 6; i++)
        x[i] = o;
    x[0].mode = SHMBUS_LOSSY;
    x[1].capacity = 32;
    x[2].max_msg_size = 128;
    x[3].max_subscribers = 8;
    x[4].max_groups = 1;
    x[5].flags = SHMBUS_TOPIC_EXCLUSIVE;
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "opts", &o, 0, &t));
    for (int i = 0; i < 6; i++)
        assert_shmbus_rc(shmbus_open(bus, "opts", &x[i], 0, &t2), SHMBUS_ERR_MISMATCH);
    assert_null(t2);
    assert_shmbus_ok(shmbus_open(bus, "opts", NULL, 0, &t2)); /* zero fields: any */
    assert_shmbus_ok(shmbus_topic_info_get(t2, &info));
    assert_int_equal(info.capacity, 16);
    assert_int_equal(info.mode, SHMBUS_RELIABLE);
    shmbus_topic_destroy(t2);
    assert_shmbus_ok(shmbus_open(bus, "opts", &o, SHMBUS_OPEN_NOCREATE, &t2));
    assert_int_equal(list_entry(bus, "opts").clients, 2);
    shmbus_topic_destroy(t2);
    assert_int_equal(list_entry(bus, "opts").clients, 1);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* NOCREATE of a missing topic is -ENOENT and creates nothing. */
static void test_daemon_open_nocreate_missing(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_LOSSY, .capacity = 8};
    shmbus_topic *t = NULL;
    shmbus_bus *bus = NULL;
    shmbus_topic_entry e[4];

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_rc(shmbus_open(bus, "absent", NULL, SHMBUS_OPEN_NOCREATE, &t), -ENOENT);
    assert_shmbus_rc(shmbus_open(bus, "absent", &o, SHMBUS_OPEN_NOCREATE, &t), -ENOENT);
    assert_null(t);
    assert_int_equal(shmbus_list(bus, NULL, e, 4), 0);
    assert_int_equal(du_segments(d->bus, 0), 0);
    assert_shmbus_ok(shmbus_open(bus, "absent", &o, 0, &t));
    shmbus_topic_destroy(t);
    assert_shmbus_ok(shmbus_open(bus, "absent", NULL, SHMBUS_OPEN_NOCREATE, &t));
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* Bad topic names and options are refused; the connection stays usable. */
static void test_daemon_open_bad_name(void **state)
{
    struct du_daemon *d = *state;
    const char *bad[] = {"", ".dot", "sl/ash", "sp ace", "tab\t", "caf\xc3\xa9", "star*"};
    char longest[SHMBUS_TOPIC_NAME_MAX + 2];
    shmbus_topic_opts perm = {.perm = 0644}, cap = {.capacity = 100}, mode = {.mode = 9};
    shmbus_topic *t = NULL;
    shmbus_bus *bus = NULL;
    shmbus_topic_entry e[4];

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_shmbus_rc(shmbus_open(bus, bad[i], NULL, 0, &t), SHMBUS_ERR_BAD_NAME);
    memset(longest, 'x', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    assert_shmbus_rc(shmbus_open(bus, longest, NULL, 0, &t), SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(shmbus_open(bus, "p", &perm, 0, &t), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_open(bus, "c", &cap, 0, &t), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_open(bus, "m", &mode, 0, &t), SHMBUS_ERR_INVALID);
    assert_int_equal(shmbus_list(bus, NULL, e, 4), 0);
    longest[SHMBUS_TOPIC_NAME_MAX] = '\0';
    assert_shmbus_ok(shmbus_open(bus, longest, NULL, 0, &t));
    assert_int_equal(shmbus_list(bus, NULL, e, 4), 1);
    assert_string_equal(e[0].name, longest);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* Groups and slots run out cleanly through the daemon: SHMBUS_ERR_LIMIT
 * once every group is named, SHMBUS_ERR_NO_SLOT once every slot is taken;
 * a refused subscriber holds nothing, and a freed slot is handed out again. */
static void test_daemon_sub_limits(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = 16, .max_subscribers = 3, .max_groups = 2};
    shmbus_sub_opts ga = {.group_name = "a"}, gb = {.group_name = "b"}, gc = {.group_name = "c"};
    shmbus_sub_opts bad = {.group_name = ".a"}, num = {.group = 1};
    shmbus_sub *sub[3] = {NULL}, *x = NULL;
    shmbus_slot_info si[4];
    shmbus_topic *t = NULL;
    shmbus_bus *bus = NULL;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "subs", &o, 0, &t));
    assert_shmbus_ok(shmbus_sub_create(t, &ga, &sub[0]));
    assert_shmbus_ok(shmbus_sub_create(t, &gb, &sub[1]));
    assert_shmbus_rc(shmbus_sub_create(t, &gc, &x), SHMBUS_ERR_LIMIT);
    assert_shmbus_rc(shmbus_sub_create(t, &bad, &x), SHMBUS_ERR_BAD_NAME);
    assert_shmbus_rc(shmbus_sub_create(t, &num, &x), SHMBUS_ERR_INVALID);
    assert_int_equal(list_entry(bus, "subs").subscribers, 2);
    assert_shmbus_ok(shmbus_sub_create(t, &ga, &sub[2])); /* a second member of "a" */
    assert_shmbus_rc(shmbus_sub_create(t, NULL, &x), SHMBUS_ERR_NO_SLOT);
    assert_int_equal(list_entry(bus, "subs").subscribers, 3);
    assert_int_equal(shmbus_topic_slots_get(t, si, 4), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(si[i].group_name, si[i].group == 2 ? "b" : "a");
    shmbus_sub_destroy(sub[1]);
    assert_int_equal(list_entry(bus, "subs").subscribers, 2);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub[1])); /* its slot, free again */
    for (int i = 0; i < 3; i++)
        shmbus_sub_destroy(sub[i]);
    assert_int_equal(list_entry(bus, "subs").subscribers, 0);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ------------------------------------------------------------- 7: limits */

static const char *const limits[] = {"--max-topics", "3", "--max-clients", "2", "--max-segment",
                                     "1M",           NULL};
static const char *const slot_limit[] = {"--max-slots", "8", NULL};

/* The largest max_msg_size that keeps the segment of @p base within 1 MiB. */
static uint32_t msg_size_fitting(const shmbus_topic_opts *base)
{
    uint32_t lo = 1, hi = 1u << 20;
    uint64_t size;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        shmbus_topic_opts o = *base, eff;

        o.max_msg_size = mid;
        assert_shmbus_ok(sb_admin_plan(&o, &eff, &size));
        if (size <= (1u << 20))
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* --max-segment refuses a segment one step over 1 MiB and takes one at it;
 * --max-topics refuses the 4th; the daemon goes on serving. */
static void test_daemon_limit_topics_and_segment(void **state)
{
    struct du_daemon *d = *state;
    const shmbus_topic_opts small = {.mode = SHMBUS_RELIABLE, .capacity = 16, .max_msg_size = 64};
    shmbus_topic_opts fit = {.mode = SHMBUS_RELIABLE, .capacity = 1024}, over, dflt;
    shmbus_topic *t[4] = {NULL}, *x = NULL;
    shmbus_topic_info info;
    shmbus_topic_entry e[8];
    shmbus_pub *pub = NULL;
    shmbus_sub *sub = NULL;
    shmbus_bus *bus = NULL;
    uint64_t size;

    fit.max_msg_size = msg_size_fitting(&fit);
    over = fit;
    over.max_msg_size++;
    assert_shmbus_ok(sb_admin_plan(&(shmbus_topic_opts){0}, &dflt, &size));
    assert_true(size > (1u << 20)); /* so the default topic is over the limit too */
    assert_shmbus_ok(connect_retry(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "fit", &fit, 0, &t[0]));
    assert_shmbus_ok(shmbus_topic_info_get(t[0], &info));
    assert_true(info.segment_size <= (1u << 20));
    assert_shmbus_rc(shmbus_open(bus, "over", &over, 0, &x), SHMBUS_ERR_LIMIT);
    assert_shmbus_rc(shmbus_open(bus, "dflt", NULL, 0, &x), SHMBUS_ERR_LIMIT);
    assert_shmbus_ok(shmbus_pub_create(t[0], &pub));
    assert_shmbus_ok(shmbus_sub_create(t[0], NULL, &sub));
    exchange(pub, sub, 0);
    assert_shmbus_ok(shmbus_open(bus, "t2", &small, 0, &t[1]));
    assert_shmbus_ok(shmbus_open(bus, "t3", &small, 0, &t[2]));
    assert_shmbus_rc(shmbus_open(bus, "t4", &small, 0, &x), SHMBUS_ERR_LIMIT);
    assert_shmbus_rc(shmbus_open(bus, "t4", NULL, SHMBUS_OPEN_NOCREATE, &x), -ENOENT);
    assert_shmbus_ok(shmbus_open(bus, "fit", NULL, 0, &t[3])); /* existing: no new topic */
    exchange(pub, sub, 1);
    assert_int_equal(shmbus_list(bus, NULL, e, 8), 3);
    assert_string_equal(e[0].name, "fit");
    assert_string_equal(e[1].name, "t2");
    assert_string_equal(e[2].name, "t3");
    assert_int_equal(du_segments(d->bus, 0), 3);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    for (int i = 0; i < 4; i++)
        shmbus_topic_destroy(t[i]);
    shmbus_close(bus);
}

/* --max-clients 2 refuses a third client until one leaves. */
/* Has the daemon closed raw connection @p s (EOF within 1 s)? */
static int raw_closed(int s)
{
    struct pollfd p = {.fd = s, .events = POLLIN};
    char c;

    return poll(&p, 1, 1000) == 1 && recv(s, &c, 1, MSG_DONTWAIT) == 0;
}

/* Connections that never say hello cannot lock others out: past 64 of
 * them new ones are closed at once, and each is closed 5 s after it came,
 * after which clients connect again. */
static void test_daemon_hello_deadline(void **state)
{
    struct du_daemon *d = *state;
    int idle[64], extra;
    shmbus_bus *bus;
    int64_t t0 = du_now_ms();

    for (int i = 0; i < 64; i++)
        idle[i] = raw_open(d);
    extra = raw_open(d);
    assert_true(raw_closed(extra));
    close(extra);
    assert_int_not_equal(shmbus_connect(d->bus, &bus), 0); /* no room yet */
    while (!raw_closed(idle[0]))
        assert_true(du_now_ms() - t0 < 20000);
    assert_true(du_now_ms() - t0 >= 4500);
    for (int i = 1; i < 64; i++)
        assert_true(raw_closed(idle[i]));
    for (int i = 0; i < 64; i++)
        close(idle[i]);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shmbus_close(bus);
}

static void test_daemon_limit_clients(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *a = NULL, *b = NULL, *c = NULL;
    shmbus_topic_entry e[2];
    shmbus_topic *t = NULL;

    assert_shmbus_ok(connect_retry(d->bus, &a));
    assert_shmbus_ok(connect_retry(d->bus, &b));
    assert_shmbus_rc(shmbus_connect(d->bus, &c), SHMBUS_ERR_LIMIT);
    assert_null(c);
    assert_shmbus_rc(shmbus_connect(d->bus, &c), SHMBUS_ERR_LIMIT);
    assert_shmbus_ok(shmbus_open(a, "shared", &(shmbus_topic_opts){.capacity = 16}, 0, &t));
    shmbus_topic_destroy(t);
    assert_int_equal(shmbus_list(b, NULL, e, 2), 1);
    shmbus_close(a);
    assert_shmbus_ok(connect_retry(d->bus, &c)); /* a's place */
    assert_shmbus_rc(shmbus_connect(d->bus, &a), SHMBUS_ERR_LIMIT);
    assert_shmbus_ok(shmbus_open(c, "shared", NULL, SHMBUS_OPEN_NOCREATE, &t));
    shmbus_topic_destroy(t);
    assert_int_equal(shmbus_list(b, NULL, e, 2), 1);
    shmbus_close(b);
    shmbus_close(c);
}

/*
 * --max-slots bounds the slots a topic gets, asked for or by default (64):
 * a request that leaves max_subscribers 0 must not get past a limit of 8
 * that an explicit 16 cannot pass. (Regression: the daemon once checked
 * only the field as sent.)
 */
static void test_daemon_limit_slots_default(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.max_subscribers = 16, .capacity = 16};
    shmbus_topic *t = NULL;
    shmbus_topic_info info;
    shmbus_bus *bus = NULL;
    int rc;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_rc(shmbus_open(bus, "many", &o, 0, &t), SHMBUS_ERR_LIMIT);
    o.max_subscribers = 8;
    assert_shmbus_ok(shmbus_open(bus, "eight", &o, 0, &t));
    shmbus_topic_destroy(t);
    o.max_subscribers = 0;
    rc = shmbus_open(bus, "default", &o, 0, &t);
    if (rc == 0) {
        assert_shmbus_ok(shmbus_topic_info_get(t, &info));
        shmbus_topic_destroy(t);
        shmbus_close(bus);
        if (info.max_subscribers > 8)
            fail_msg("topic with default options got %u slots, over --max-slots 8",
                     info.max_subscribers);
        return;
    }
    shmbus_close(bus);
    assert_shmbus_rc(rc, SHMBUS_ERR_LIMIT);
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
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_sub *sub = NULL;
    char c;

    if (shmbus_connect(k->bus, &bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(bus, "gated", NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        return KID_OPEN;
    if (shmbus_sub_create(t, &so, &sub) < 0)
        return KID_SUB;
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

#define DAEMON_TEST(f) cmocka_unit_test_setup_teardown(f, du_setup, du_teardown)
#define DAEMON_TEST_ARGS(f, extra)                                                                 \
    cmocka_unit_test_prestate_setup_teardown(f, du_setup, du_teardown, (void *)(extra))

int main(void)
{
    const struct CMUnitTest tests[] = {
        DAEMON_TEST(test_daemon_pubsub_across_processes),
        DAEMON_TEST(test_daemon_group_exactly_once),
        DAEMON_TEST(test_daemon_second_daemon_refused),
        DAEMON_TEST_ARGS(test_daemon_other_uid_denied, allow_other),
        DAEMON_TEST_ARGS(test_daemon_allowed_uid_served, allow_nobody),
        DAEMON_TEST(test_daemon_raw_truncated),
        DAEMON_TEST(test_daemon_raw_oversized),
        DAEMON_TEST(test_daemon_raw_unknown_type),
        DAEMON_TEST(test_daemon_raw_protocol_version),
        DAEMON_TEST(test_daemon_raw_request_before_hello),
        DAEMON_TEST(test_daemon_raw_hello_wrong_pid),
        DAEMON_TEST(test_daemon_raw_bad_topic_names),
        DAEMON_TEST(test_daemon_raw_bad_other_names),
        DAEMON_TEST(test_daemon_raw_bad_options),
        DAEMON_TEST(test_daemon_raw_bad_references),
        DAEMON_TEST(test_daemon_raw_descriptors_not_kept),
        DAEMON_TEST(test_daemon_raw_empty_packet),
        DAEMON_TEST(test_daemon_raw_unread_replies_disconnect),
        DAEMON_TEST(test_daemon_open_mismatch),
        DAEMON_TEST(test_daemon_open_nocreate_missing),
        DAEMON_TEST(test_daemon_open_bad_name),
        DAEMON_TEST(test_daemon_sub_limits),
        DAEMON_TEST_ARGS(test_daemon_limit_topics_and_segment, limits),
        DAEMON_TEST_ARGS(test_daemon_limit_clients, limits),
        DAEMON_TEST(test_daemon_hello_deadline),
        DAEMON_TEST_ARGS(test_daemon_limit_slots_default, slot_limit),
        DAEMON_TEST(test_daemon_dead_subscriber_slot_released),
        DAEMON_TEST(test_daemon_sigterm_cleans_up),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
