/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Daemon restarts (docs/design.md "Stop and restart"): a stop, by signal
 * or crash, never takes a segment from a process that uses it
 * (--stop-clean takes every one, and clients get SHMBUS_ERR_TOPIC_GONE);
 * the next daemon adopts what was kept, retrying what is not ready yet and
 * leaving what it cannot serve, and clients carry on through it; a client
 * whose topic no daemon serves any more gets SHMBUS_ERR_TOPIC_GONE. Slots
 * released while no daemon was there are freed, not left taken for the
 * life of the process. Every test runs its own daemon (daemonutil.h) and
 * bounces it.
 */
#include "daemonutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "registry/admin.h"
#include "ring/ring.h"
#include "shm/layout.h"
#include "util/proc.h"
#include "segfile.h"

#define WAIT_NS             10000000000ll /* only a hang reaches it */
#define READY_MS            30000
#define MSG_MAX             64
#define CAP                 16
#define STOP_AT_ONCE_ROUNDS 20 /* starts stopped at once (about 1 in 10 failed under ASan) */

static void open_topic(const char *bus_name, const char *name, uint32_t mode, shmbus_bus **bus,
                       shmbus_topic **t)
{
    shmbus_topic_opts o = {.mode = mode, .capacity = CAP, .max_msg_size = MSG_MAX};

    assert_shmbus_ok(shmbus_connect(bus_name, bus));
    assert_shmbus_ok(shmbus_open(*bus, name, &o, 0, t));
}

/* A subscriber destroyed while no daemon serves the bus: its slot is free
 * at once, not taken (INIT) for as long as this process lives. */
static void test_restart_sub_destroyed_without_daemon(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;

    open_topic(d->bus, "left", SHMBUS_RELIABLE, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_int_equal(du_slots_of(t, getpid()), 1);
    du_stop_sig(d, SIGKILL);
    shmbus_sub_destroy(sub);
    assert_int_equal(du_slots_of(t, getpid()), 0);
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(shmbus_bus_check(bus));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_int_equal(du_slots_of(t, getpid()), 1);
    shmbus_sub_destroy(sub);
    assert_int_equal(du_slots_of(t, getpid()), 0);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A subscriber destroyed by the first call after a restart (which
 * reconnects inside): the new daemon, which never heard of the slot,
 * adopts it and frees it. */
static void test_restart_sub_destroyed_first_after_restart(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    shmbus_topic_entry e;

    open_topic(d->bus, "first", SHMBUS_RELIABLE, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    du_stop_sig(d, SIGKILL);
    assert_int_equal(du_launch(d, NULL), 0);
    shmbus_sub_destroy(sub);
    assert_int_equal(du_slots_of(t, getpid()), 0);
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 1);
    assert_int_equal(e.subscribers, 0);
    assert_int_equal(e.clients, 1);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* Does the segment of topic @p name of the bus exist? */
static int seg_exists(const struct du_daemon *d, const char *name)
{
    char path[SHMBUS_NAME_MAX + 16];

    snprintf(path, sizeof(path), "/dev/shm/" SBD_SEG_PREFIX "%s.%s", d->bus, name);
    return access(path, F_OK) == 0;
}

/* The segment of topic @p name, attached by name (no daemon). */
static shmbus_topic *attach(const struct du_daemon *d, const char *name)
{
    char seg[SHMBUS_NAME_MAX + 1];
    shmbus_topic *t;

    sbd_seg_name(seg, sizeof(seg), d->bus, name, 0);
    assert_shmbus_ok(shmbus_topic_attach(seg, &t));
    return t;
}

/* Create topic @p name through the daemon and close it again. */
static void create_topic(shmbus_bus *bus, const char *name)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = CAP, .max_msg_size = MSG_MAX};
    shmbus_topic *t;

    assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
    shmbus_topic_destroy(t);
}

static int kid_subscribe_and_wait(void *arg)
{
    const struct du_daemon *d = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;

    if (shmbus_connect(d->bus, &bus) < 0 ||
        shmbus_open(bus, "dead", NULL, SHMBUS_OPEN_NOCREATE, &t) < 0 ||
        shmbus_sub_create(t, NULL, &sub) < 0)
        return 2;
    pause();
    return 0;
}

/* What the test process holds on the topics of the stop test. */
struct users {
    shmbus_bus *bus;
    shmbus_topic *opened, *subbed, *direct, *init;
    shmbus_sub *sub;
    shmbus_pub *pub;
    int slot;
};

/* Topics used in every way, and two that nobody alive uses: "idle"
 * (closed) and "dead" (its subscriber was killed). */
static void users_make(struct du_daemon *d, struct users *u)
{
    shmbus_topic_entry e = {0};
    pid_t kid;

    assert_shmbus_ok(shmbus_connect(d->bus, &u->bus));
    create_topic(u->bus, "idle");
    create_topic(u->bus, "dead");
    create_topic(u->bus, "pubbed");
    create_topic(u->bus, "init");
    assert_shmbus_ok(shmbus_open(u->bus, "opened", NULL, 0, &u->opened));
    assert_shmbus_ok(shmbus_open(u->bus, "subbed", NULL, 0, &u->subbed));
    assert_shmbus_ok(shmbus_sub_create(u->subbed, NULL, &u->sub));
    u->direct = attach(d, "pubbed"); /* no connection holds it */
    assert_shmbus_ok(shmbus_pub_create(u->direct, &u->pub));
    u->init = attach(d, "init");
    u->slot = sb_admin_slot_take(u->init, (uint32_t)getpid(), sb_proc_self_start());
    assert_true(u->slot >= 0);
    kid = tu_fork(kid_subscribe_and_wait, d);
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end; du_sleep_ms(5)) {
        assert_int_equal(shmbus_list(u->bus, "da", &e, 1), 1);
        if (e.subscribers == 1)
            break;
    }
    assert_int_equal(e.subscribers, 1);
    kill(kid, SIGKILL);
    tu_wait(kid);
}

static void users_free(struct users *u)
{
    sb_admin_slot_free(u->init, (uint32_t)u->slot, 0);
    shmbus_topic_destroy(u->init);
    shmbus_pub_destroy(u->pub);
    shmbus_topic_destroy(u->direct);
    shmbus_sub_destroy(u->sub);
    shmbus_topic_destroy(u->subbed);
    shmbus_topic_destroy(u->opened);
    shmbus_close(u->bus);
}

/*
 * A stop signal that arrives as soon as the daemon answers (a unit
 * restarted at once, a test's teardown) is a clean stop: every thread the
 * daemon or its libraries start has SIGTERM blocked from its first
 * instruction. A library thread (liburcu's) that blocked it only once it
 * ran took it with its default action, killing the daemon with its
 * segments left; under ASan, whose threads start slowly, in about one
 * start in ten.
 */
static void test_restart_stop_at_once(void **state)
{
    struct du_daemon *d = *state;

    for (int i = 0; i < STOP_AT_ONCE_ROUNDS; i++) {
        assert_int_equal(du_stop(d), 0);
        assert_int_equal(du_segments(d->bus, 1), 0);
        assert_int_equal(du_launch(d, NULL), 0);
    }
}

/* A SIGTERM removes the topics no live process uses (nobody holds them,
 * or only dead processes do) and keeps each one a live process uses: held
 * open by a connection, a subscriber slot (INIT too) or a publisher
 * record, through the daemon or attached by name. The next daemon adopts
 * what was kept, and it works through it. */
static void test_restart_stop_keeps_used_topics(void **state)
{
    struct du_daemon *d = *state;
    const char *kept[] = {"init", "opened", "pubbed", "subbed"};
    struct users u;
    shmbus_topic *again;
    shmbus_sub *sub;
    shmbus_topic_entry e[8];
    uint8_t buf[MSG_MAX];
    char log[sizeof(d->dir) + 16];

    assert_int_equal(du_stop(d), 0);
    du_launch_logged(d, log, sizeof(log));
    users_make(d, &u);
    assert_int_equal(du_stop(d), 0);
    assert_false(seg_exists(d, "idle"));
    assert_false(seg_exists(d, "dead"));
    for (int i = 0; i < 4; i++)
        assert_true(seg_exists(d, kept[i]));
    if (du_log_wait(log, "topic idle removed", 1) < 1 ||
        du_log_wait(log, "topic subbed kept", 1) < 1)
        fail_msg("the stop did not log what it removed and kept");

    /* The next daemon serves the same segments. */
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(shmbus_bus_check(u.bus));
    assert_int_equal(shmbus_list(u.bus, NULL, e, 8), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(e[i].name, kept[i]);
    assert_int_equal(e[3].subscribers, 1); /* re-registered */
    assert_shmbus_ok(shmbus_open(u.bus, "pubbed", NULL, SHMBUS_OPEN_NOCREATE, &again));
    assert_shmbus_ok(shmbus_sub_create(again, NULL, &sub));
    assert_shmbus_ok(shmbus_publish(u.pub, buf, tu_fill(buf, 1, 1, 24), WAIT_NS));
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS), 24);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(again);
    users_free(&u);
}

/* ------------------------------------------------------------- adoption */

/* The header of topic @p name's segment, mapped raw (tu_raw_map()). */
static struct sb_shm_header *raw_header(const struct du_daemon *d, const char *name, size_t *len)
{
    char seg[96]; /* tu_raw_map() takes names of up to 126 bytes */

    sbd_seg_name(seg, sizeof(seg), d->bus, name, 0);
    return (struct sb_shm_header *)(void *)tu_raw_map(seg, len);
}

/* Wait until the client's reconnect goes through (the daemon serves every
 * topic of the connection again). */
static void await_reconnect(shmbus_bus *bus)
{
    int rc = SHMBUS_ERR_DAEMON_LOST;

    for (int64_t end = du_now_ms() + READY_MS; rc != 0 && du_now_ms() < end; du_sleep_ms(5))
        rc = shmbus_bus_check(bus);
    assert_shmbus_ok(rc);
}

/* Publish one message and receive it. */
static void exchange(shmbus_pub *pub, shmbus_sub *sub, uint64_t seq)
{
    uint8_t buf[MSG_MAX];

    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, seq, 24), WAIT_NS));
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS), 24);
}

/* A segment that is not ready when the daemon starts (its creator has
 * not stored the version yet) is neither removed nor served: the daemon
 * retries, an open of its topic is "not ready" (a reconnecting client
 * does not give its topic up, it tries again), and once the segment is
 * ready the daemon serves it, to the processes that used it throughout
 * and to newcomers. */
static void test_restart_adopt_retries_not_ready(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus, *other;
    shmbus_topic *t, *t2;
    shmbus_pub *pub;
    shmbus_sub *sub, *sub2;
    struct sb_shm_header *h;
    char log[sizeof(d->dir) + 16];
    uint8_t buf[MSG_MAX];
    uint32_t version;
    size_t len;

    open_topic(d->bus, "late", SHMBUS_RELIABLE, &bus, &t);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    du_stop_sig(d, SIGKILL);
    h = raw_header(d, "late", &len);
    /* relaxed, all three: no daemon runs, and what the header says was
     * published long ago; only the word changes. */
    version = atomic_exchange_explicit(&h->version, 0, memory_order_relaxed);
    du_launch_logged(d, log, sizeof(log));
    assert_shmbus_rc(shmbus_bus_check(bus), SHMBUS_ERR_DAEMON_LOST);
    assert_shmbus_ok(shmbus_connect(d->bus, &other));
    assert_shmbus_rc(shmbus_open(other, "late", NULL, SHMBUS_OPEN_NOCREATE, &t2),
                     SHMBUS_ERR_NOT_READY);
    assert_shmbus_rc(shmbus_open(other, "late", NULL, 0, &t2), SHMBUS_ERR_NOT_READY);
    exchange(pub, sub, 0);
    du_sleep_ms(100); /* retries */
    assert_true(seg_exists(d, "late"));
    if (du_log_wait(log, "not taken over yet, retrying", 1) < 1)
        fail_msg("the daemon did not log the retry");

    atomic_store_explicit(&h->version, version, memory_order_relaxed);
    await_reconnect(bus);
    assert_shmbus_ok(shmbus_open(other, "late", NULL, SHMBUS_OPEN_NOCREATE, &t2));
    assert_shmbus_ok(shmbus_sub_create(t2, NULL, &sub2));
    exchange(pub, sub2, 1);
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS), 24);
    shmbus_sub_destroy(sub2);
    shmbus_topic_destroy(t2);
    shmbus_close(other);
    munmap(h, len);
    shmbus_sub_destroy(sub);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A segment of another layout major version (processes of another
 * library version may use it) is left in place, with a warning. */
static void test_restart_adopt_leaves_other_version(void **state)
{
    struct du_daemon *d = *state;
    shmbus_bus *bus;
    shmbus_topic *t;
    struct sb_shm_header *h;
    char log[sizeof(d->dir) + 16];
    size_t len;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    create_topic(bus, "future");
    shmbus_close(bus);
    du_stop_sig(d, SIGKILL);
    h = raw_header(d, "future", &len);
    /* relaxed: as in test_restart_adopt_retries_not_ready(). */
    atomic_store_explicit(&h->version, (SB_LAYOUT_MAJOR + 1) << 16, memory_order_relaxed);
    munmap(h, len);
    du_launch_logged(d, log, sizeof(log));
    assert_true(seg_exists(d, "future"));
    if (du_log_wait(log, "left in place", 1) < 1)
        fail_msg("the daemon did not warn about the segment it left");
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_rc(shmbus_open(bus, "future", NULL, SHMBUS_OPEN_NOCREATE, &t), -ENOENT);
    shmbus_close(bus);
    assert_int_equal(du_stop(d), 0);
    assert_true(seg_exists(d, "future")); /* not a topic of this daemon's */
    du_segments(d->bus, 1);
}

/* A segment its creator died making (empty, last changed two minutes
 * ago) is removed rather than retried for good: its topic's name works
 * again. One changed just now is retried (adopt_retries_not_ready). */
static void test_restart_adopt_removes_abandoned(void **state)
{
    struct du_daemon *d = *state;
    struct timespec old[2];
    char path[SHMBUS_NAME_MAX + 16], log[sizeof(d->dir) + 16];
    shmbus_bus *bus;
    shmbus_topic *t;
    int fd;

    du_stop_sig(d, SIGKILL);
    snprintf(path, sizeof(path), "/" SBD_SEG_PREFIX "%s.orphan", d->bus);
    fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(clock_gettime(CLOCK_REALTIME, &old[0]), 0);
    old[0].tv_sec -= 120;
    old[1] = old[0];
    assert_int_equal(futimens(fd, old), 0);
    close(fd);
    du_launch_logged(d, log, sizeof(log));
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end && seg_exists(d, "orphan");)
        du_sleep_ms(10);
    assert_false(seg_exists(d, "orphan"));
    if (du_log_wait(log, "its creator died making it", 1) < 1)
        fail_msg("the daemon did not say why it removed the segment");
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    create_topic(bus, "orphan");
    assert_shmbus_ok(shmbus_open(bus, "orphan", NULL, SHMBUS_OPEN_NOCREATE, &t));
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A daemon that fails to start after it adopted the bus's segments (its
 * bridge port is taken) never served: it removes nothing, not even with
 * --stop-clean, and a live subscriber's topic is there for the next one. */
static void test_restart_failed_start_removes_nothing(void **state)
{
    struct du_daemon *d = *state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    char port[32];
    const char *extra[] = {"--stop-clean", "--bridge", port, NULL};
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    pid_t pid;

    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s, 1), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    snprintf(port, sizeof(port), "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    open_topic(d->bus, "survivor", SHMBUS_RELIABLE, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    du_stop_sig(d, SIGKILL);
    pid = du_spawn(d, extra, -1);
    assert_true(pid > 0);
    assert_int_equal(du_wait_ms(pid, DU_STOP_MS), 1); /* the port is ours */
    close(s);
    assert_true(seg_exists(d, "survivor"));
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(shmbus_bus_check(bus));
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ------------------------------------------------------- reconnecting */

/* Topics whose segments were removed while no daemon ran (say, by hand):
 * the client's reconnect finds one missing and another segment under the
 * other's name, and both handles are gone for good: publish, receive and
 * control calls fail with SHMBUS_ERR_TOPIC_GONE, never succeed into a
 * segment nobody serves. The new topic of the same name works. */
static void test_restart_removed_topic_is_gone(void **state)
{
    struct du_daemon *d = *state;
    char seg[SHMBUS_NAME_MAX + 1];
    shmbus_bus *bus, *other;
    shmbus_topic *t, *t2, *fresh;
    shmbus_pub *pub, *pub2, *fpub;
    shmbus_sub *sub, *fsub;
    uint8_t buf[MSG_MAX];

    open_topic(d->bus, "doomed", SHMBUS_RELIABLE, &bus, &t);
    assert_shmbus_ok(shmbus_open(bus, "replaced", NULL, 0, &t2));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_shmbus_ok(shmbus_pub_create(t2, &pub2));
    du_stop_sig(d, SIGKILL);
    for (int i = 0; i < 2; i++) {
        sbd_seg_name(seg, sizeof(seg), d->bus, i ? "replaced" : "doomed", 0);
        assert_shmbus_ok(shmbus_topic_unlink(seg));
    }
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &other));
    assert_shmbus_ok(shmbus_open(other, "replaced", NULL, 0, &fresh));
    assert_shmbus_ok(shmbus_bus_check(bus));
    assert_shmbus_rc(shmbus_publish(pub, buf, tu_fill(buf, 1, 0, 16), 0), SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_rc(shmbus_recv(sub, buf, sizeof(buf), NULL, 0), SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_rc(shmbus_publish(pub2, buf, tu_fill(buf, 1, 0, 16), 0), SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_rc(shmbus_sub_create(t2, NULL, &fsub), SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_ok(shmbus_sub_create(fresh, NULL, &fsub));
    assert_shmbus_ok(shmbus_pub_create(fresh, &fpub));
    exchange(fpub, fsub, 0);
    shmbus_pub_destroy(fpub);
    shmbus_sub_destroy(fsub);
    shmbus_topic_destroy(fresh);
    shmbus_close(other);
    shmbus_pub_destroy(pub2);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t2);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A slot the new daemon does not count as this process's any more (here:
 * its owner's start time no longer matches, so the daemon takes it back)
 * does not make the reconnect give its topic up: the topic is served,
 * and its control calls work. */
static void test_restart_lost_slot_keeps_topic(void **state)
{
    struct du_daemon *d = *state;
    struct sb_shm_slot *slots;
    shmbus_topic_info info;
    shmbus_topic_entry e;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_sub *sub;

    open_topic(d->bus, "lost", SHMBUS_RELIABLE, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    du_stop_sig(d, SIGKILL);
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    slots = t->seg.slots;
    for (uint32_t i = 0; i < info.max_subscribers; i++) {
        /* relaxed: no daemon runs; only this word changes. */
        uint64_t start = atomic_load_explicit(&slots[i].start, memory_order_relaxed);

        if (atomic_load_explicit(&slots[i].pid, memory_order_relaxed) == (uint32_t)getpid())
            atomic_store_explicit(&slots[i].start, start + 1, memory_order_relaxed);
    }
    assert_int_equal(du_launch(d, NULL), 0);
    assert_shmbus_ok(shmbus_bus_check(bus));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_int_equal(shmbus_list(bus, NULL, &e, 1), 1);
    assert_int_equal(e.publishers, 1);
    assert_int_equal(e.subscribers, 0);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ---------------------------------------------------------- --stop-clean */

struct sleeper {
    shmbus_sub *sub; /* receive on it, or */
    shmbus_pub *pub; /* publish into its full ring */
    int rc;
};

static void *sleeper_run(void *arg)
{
    struct sleeper *s = arg;
    uint8_t buf[MSG_MAX];

    if (s->sub != NULL)
        s->rc = shmbus_recv(s->sub, buf, sizeof(buf), NULL, WAIT_NS);
    else
        s->rc = shmbus_publish(s->pub, buf, tu_fill(buf, 1, 99, 16), WAIT_NS);
    return NULL;
}

static int count_cb(const shmbus_msg *m, void *arg)
{
    (void)m;
    ++*(int *)arg;
    return 0;
}

/* shmbusd --stop-clean removes every topic, used or not: every segment of
 * the bus is gone from /dev/shm, and clients get SHMBUS_ERR_TOPIC_GONE from
 * publishing, claiming, polling and receiving, sleepers included (a
 * receive on an empty ring, a publish into a full reliable one). */
static void test_restart_stop_clean_removes_everything(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = CAP, .max_msg_size = MSG_MAX};
    struct sleeper rs = {0}, ps = {0};
    pthread_t rth, pth;
    shmbus_bus *bus;
    shmbus_topic *t, *full;
    shmbus_pub *pub;
    shmbus_sub *gate;
    shmbus_claim claim;
    uint8_t buf[MSG_MAX];
    int64_t t0;
    int n = 0, i;

    open_topic(d->bus, "clean", SHMBUS_RELIABLE, &bus, &t);
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &rs.sub));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_open(bus, "full", &o, 0, &full));
    assert_shmbus_ok(shmbus_sub_create(full, NULL, &gate));
    assert_shmbus_ok(shmbus_pub_create(full, &ps.pub));
    for (i = 0;
         i < 4 * CAP && shmbus_publish(ps.pub, buf, tu_fill(buf, 1, (uint64_t)i, 16), 0) == 0; i++)
        ;
    assert_int_equal(i, CAP);
    assert_int_equal(pthread_create(&rth, NULL, sleeper_run, &rs), 0);
    assert_int_equal(pthread_create(&pth, NULL, sleeper_run, &ps), 0);
    du_sleep_ms(50); /* both asleep, most likely; either way they must end */
    t0 = du_now_ms();
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(pthread_join(rth, NULL), 0);
    assert_int_equal(pthread_join(pth, NULL), 0);
    print_message("sleepers woken %lld ms after the stop began\n", (long long)(du_now_ms() - t0));
    assert_shmbus_rc(rs.rc, SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_rc(ps.rc, SHMBUS_ERR_TOPIC_GONE);
    assert_int_equal(du_segments(d->bus, 0), 0);
    assert_shmbus_rc(shmbus_publish(pub, buf, tu_fill(buf, 1, 1, 16), 0), SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_rc(shmbus_pub_claim(pub, &claim, 0), SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_rc(shmbus_recv(rs.sub, buf, sizeof(buf), NULL, 0), SHMBUS_ERR_TOPIC_GONE);
    assert_shmbus_rc(shmbus_poll(gate, count_cb, &n, 16), SHMBUS_ERR_TOPIC_GONE);
    assert_int_equal(n, 0);
    shmbus_pub_destroy(ps.pub);
    shmbus_sub_destroy(gate);
    shmbus_topic_destroy(full);
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(rs.sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* ------------------------------------------------- bounce under traffic */

#define BOUNCES   4
#define FLOW_CAP  64
#define CHECK_MS  5   /* children look for a new daemon this often */
#define END_MARK  2u  /* payload publisher id of the last message */
#define AFTER_MIN 200 /* messages published after the last subscriber joined */

enum { KID_OK = 0, KID_CONNECT = 2, KID_OPEN, KID_PUB, KID_SUB, KID_RECV, KID_ORDER, KID_CHECK };

struct flow {
    const char *bus;
    int ready;     /* write end: one byte once set up */
    int from_zero; /* a subscriber that must see the first message too */
    _Atomic int *stop;
};

/* Reconnect to a daemon if one is back (none yet is fine).
 * @return 0, or KID_CHECK. */
static int flow_check(shmbus_bus *bus, int64_t *last_ms)
{
    int rc;

    if (du_now_ms() - *last_ms < CHECK_MS)
        return 0;
    *last_ms = du_now_ms();
    rc = shmbus_bus_check(bus);
    return rc == 0 || rc == SHMBUS_ERR_DAEMON_LOST ? 0 : KID_CHECK;
}

/* Publish numbered messages, one every 200 us, until told to stop; then
 * the end mark, which carries the number of messages before it. */
static int kid_flow_publisher(void *arg)
{
    const struct flow *f = arg;
    struct timespec pace = {.tv_nsec = 200000};
    int64_t last = du_now_ms();
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    uint8_t buf[MSG_MAX];
    uint64_t seq = 0;
    int rc;

    if (shmbus_connect(f->bus, &bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(bus, "flow", NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        return KID_OPEN;
    if (shmbus_pub_create(t, &pub) < 0 || du_signal(f->ready) < 0)
        return KID_PUB;
    /* relaxed: a flag; nothing else is handed over with it. */
    for (; !atomic_load_explicit(f->stop, memory_order_relaxed); seq++) {
        if (shmbus_publish(pub, buf, tu_fill(buf, 1, seq, 32), WAIT_NS) < 0)
            return KID_PUB;
        if ((rc = flow_check(bus, &last)) != 0)
            return rc;
        nanosleep(&pace, NULL);
    }
    if (shmbus_publish(pub, buf, tu_fill(buf, END_MARK, seq, 32), WAIT_NS) < 0)
        return KID_PUB;
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return KID_OK;
}

/* One message of the flow: @p next is the number the next one must carry
 * (-1: the first one seen, any). @return 1 at the end mark, 0 or an error. */
static int flow_take(const uint8_t *buf, int n, const shmbus_msg *m, int64_t *next)
{
    struct tu_payload pl;

    if (!tu_check(buf, (uint32_t)n, &pl) || m->lost != 0)
        return KID_ORDER;
    if (*next < 0 && pl.publisher != END_MARK)
        *next = (int64_t)pl.seq;
    if (*next >= 0 && pl.seq != (uint64_t)*next)
        return KID_ORDER; /* lost, repeated or out of order */
    (*next)++;
    return pl.publisher == END_MARK ? 1 : 0;
}

/* Receive the flow to its end mark, every message in order, nothing lost,
 * reconnecting to each new daemon on the way. */
static int kid_flow_subscriber(void *arg)
{
    const struct flow *f = arg;
    int64_t next = f->from_zero ? 0 : -1, last = du_now_ms();
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    uint8_t buf[MSG_MAX];
    shmbus_msg m;
    int rc = 0, n;

    if (shmbus_connect(f->bus, &bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(bus, "flow", NULL, SHMBUS_OPEN_NOCREATE, &t) < 0)
        return KID_OPEN;
    if (shmbus_sub_create(t, NULL, &sub) < 0 || du_signal(f->ready) < 0)
        return KID_SUB;
    for (int64_t end = du_now_ms() + READY_MS; rc == 0;) {
        n = shmbus_recv(sub, buf, sizeof(buf), &m, CHECK_MS * 1000000ll);
        if (n >= 0)
            rc = flow_take(buf, n, &m, &next);
        else if (n != SHMBUS_ERR_TIMEOUT || du_now_ms() > end)
            return KID_RECV;
        if (rc == 0 && (rc = flow_check(bus, &last)) != 0)
            return rc;
    }
    if (rc != 1 || next < 2)
        return KID_ORDER; /* nothing before the end mark */
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return KID_OK;
}

/* Wait until the daemon counts @p subs subscribers and one publisher of
 * the flow: every child has reconnected and re-registered. */
static void flow_await(shmbus_bus *bus, uint32_t subs)
{
    shmbus_topic_entry e = {0};
    int rc = 0;

    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end; du_sleep_ms(5)) {
        rc = shmbus_list(bus, NULL, &e, 1);
        if (rc == 1 && e.publishers == 1 && e.subscribers == subs)
            return;
    }
    fail_msg("after the restart: list %d (%s), topic '%s', %u publishers, %u subscribers, "
             "want 1 and %u",
             rc, shmbus_strerror(rc), e.name, e.publishers, e.subscribers, subs);
}

/* The daemon is stopped (SIGTERM and SIGKILL in turn) and restarted
 * several times while a process publishes into a reliable topic. The
 * subscriber that lives through every restart receives every message in
 * order, none lost; each subscriber that joins after a restart receives
 * everything published from then on; the publisher never fails. */
static void test_restart_bounce_under_traffic(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE, .capacity = FLOW_CAP, .max_msg_size = MSG_MAX};
    _Atomic int *stop =
        mmap(NULL, sizeof(*stop), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct flow f = {.bus = d->bus, .stop = stop};
    pid_t kids[BOUNCES + 2];
    shmbus_topic_info info;
    shmbus_bus *bus;
    shmbus_topic *t;
    uint64_t mark;

    assert_true(stop != MAP_FAILED);
    atomic_init(stop, 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "flow", &o, 0, &t));
    f.from_zero = 1;
    kids[0] = du_fork_ready(kid_flow_subscriber, &f, &f.ready);
    f.from_zero = 0;
    kids[1] = du_fork_ready(kid_flow_publisher, &f, &f.ready);
    for (int i = 0; i < BOUNCES; i++) {
        du_sleep_ms(20);
        assert_int_equal(du_stop_sig(d, i % 2 ? SIGKILL : SIGTERM), i % 2 ? 128 + SIGKILL : 0);
        du_sleep_ms(20); /* traffic without a daemon */
        assert_int_equal(du_launch(d, NULL), 0);
        flow_await(bus, 1u + (uint32_t)i);
        kids[2 + i] = du_fork_ready(kid_flow_subscriber, &f, &f.ready);
    }
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    mark = info.published;
    for (int64_t end = du_now_ms() + READY_MS; info.published < mark + AFTER_MIN;) {
        assert_true(du_now_ms() < end);
        du_sleep_ms(5);
        assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    }
    /* relaxed: as read by the publisher. */
    atomic_store_explicit(stop, 1, memory_order_relaxed);
    for (int i = 0; i < BOUNCES + 2; i++) {
        int st = du_wait_ms(kids[i], READY_MS);

        if (st != KID_OK)
            fail_msg("child %d (%s) ended with %d", i, i == 1 ? "publisher" : "subscriber", st);
    }
    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    print_message("%llu messages across %d restarts\n", (unsigned long long)info.published,
                  BOUNCES);
    munmap(stop, sizeof(*stop));
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

#define RESTART_TEST(f) cmocka_unit_test_setup_teardown(f, du_setup, du_teardown)
#define RESTART_TEST_ARGS(f, extra)                                                                \
    cmocka_unit_test_prestate_setup_teardown(f, du_setup, du_teardown, (void *)(extra))

static const char *const stop_clean[] = {"--stop-clean", NULL};

int main(void)
{
    const struct CMUnitTest tests[] = {
        RESTART_TEST(test_restart_sub_destroyed_without_daemon),
        RESTART_TEST(test_restart_sub_destroyed_first_after_restart),
        RESTART_TEST(test_restart_stop_keeps_used_topics),
        RESTART_TEST(test_restart_bounce_under_traffic),
        RESTART_TEST_ARGS(test_restart_stop_clean_removes_everything, stop_clean),
        RESTART_TEST(test_restart_adopt_retries_not_ready),
        RESTART_TEST(test_restart_adopt_leaves_other_version),
        RESTART_TEST(test_restart_failed_start_removes_nothing),
        RESTART_TEST(test_restart_adopt_removes_abandoned),
        RESTART_TEST(test_restart_removed_topic_is_gone),
        RESTART_TEST(test_restart_lost_slot_keeps_topic),
        RESTART_TEST(test_restart_stop_at_once),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("restart", tests, NULL, NULL);
}
