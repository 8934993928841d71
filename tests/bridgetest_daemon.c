/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bus side of the bridge tests (bridgetest.h): the daemon of each test
 * with its bridge on a free port, the library's handles on its bus, and
 * the threads that publish, flood, drain or sleep beside a test; the
 * teardown that ends them all, even after a failure.
 */
#include "bridgetest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>

/* testutil.h's state, for every file of the test (TU_STATE). */
char tu_segs[TU_MAX_SEGS][64];
pid_t tu_kids[TU_MAX_KIDS];
pid_t tu_owner;

int bt_port;
char bt_log[PATH_MAX];

const struct bt_opts bt_auth_opts = {
    .token = 1, .log = 1, .args = {"--bridge-auth-timeout", "300", NULL}};

/* ---------------------------------------------------------------- local */

/* The test's library handles: the teardown destroys what is left (all of
 * them, as tests do not destroy their own), before the daemon stops. */
shmbus_sub *bt_subs[BT_LOCAL_MAX];
static shmbus_pub *bt_pubs[BT_LOCAL_MAX];
shmbus_topic *bt_topics[BT_LOCAL_MAX];
static shmbus_bus *bt_buses[8];

void local_release(void)
{
    for (int i = 0; i < BT_LOCAL_MAX; i++) {
        shmbus_sub_destroy(bt_subs[i]);
        shmbus_pub_destroy(bt_pubs[i]);
        bt_subs[i] = NULL;
        bt_pubs[i] = NULL;
    }
    for (int i = 0; i < BT_LOCAL_MAX; i++) {
        shmbus_topic_destroy(bt_topics[i]);
        bt_topics[i] = NULL;
    }
    for (size_t i = 0; i < sizeof(bt_buses) / sizeof(bt_buses[0]); i++) {
        shmbus_close(bt_buses[i]);
        bt_buses[i] = NULL;
    }
}

shmbus_bus *local_connect(const struct du_daemon *d)
{
    shmbus_bus *bus = NULL;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    BT_TRACK(bt_buses, bus);
    return bus;
}

/* Open (or create) @p name with @p mode and @p capacity (0: defaults). */
shmbus_topic *local_open(shmbus_bus *bus, const char *name, uint32_t mode, uint32_t capacity)
{
    shmbus_topic_opts o = {.mode = mode, .capacity = capacity};
    shmbus_topic *t = NULL;

    assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
    BT_TRACK(bt_topics, t);
    return t;
}

shmbus_sub *local_sub(shmbus_topic *t)
{
    shmbus_sub *s = NULL;

    assert_shmbus_ok(shmbus_sub_create(t, NULL, &s));
    BT_TRACK(bt_subs, s);
    return s;
}

shmbus_pub *local_pub(shmbus_topic *t)
{
    shmbus_pub *p = NULL;

    assert_shmbus_ok(shmbus_pub_create(t, &p));
    BT_TRACK(bt_pubs, p);
    return p;
}

/* The next message of @p s must be @p len bytes of @p data. */
void local_expect_at(shmbus_sub *s, const void *data, size_t len, int line)
{
    static unsigned char buf[1 << 16];
    shmbus_msg m;
    int n = shmbus_recv(s, buf, sizeof(buf), &m, (int64_t)BT_MS * 1000000);

    if (n < 0)
        fail_msg("line %d: local receive: %s", line, shmbus_strerror(n));
    if ((size_t)n != len || memcmp(buf, data, len) != 0 || m.lost != 0)
        fail_msg("line %d: local got '%s' (lost %llu), want '%s'", line, esc(buf, (size_t)n),
                 (unsigned long long)m.lost, esc(data, len));
}

/*
 * A local publisher thread: bursts of @p burst messages "<prefix><n>"
 * (padded with 'x' to @p size bytes if @p size > 0), then a pause of
 * @p pause_us (none if 0). Stopped by the test, or by the teardown when
 * the test failed first (its state is static, not on the stack of a test
 * that longjmp()ed away).
 */
static struct bt_pubthread {
    pthread_t th;
    int live;
    shmbus_pub *p;
    const char *prefix;
    int burst;
    long pause_us;
    size_t size;
    atomic_int stop;
    atomic_long sent;
} bt_pt;

static void *pt_main(void *arg)
{
    struct bt_pubthread *pt = arg;
    unsigned long i = 0;
    char msg[BT_PT_SIZE_MAX];

    memset(msg, 'x', sizeof(msg));
    /* relaxed: a stop flag and a count; the join orders the rest. */
    while (!atomic_load_explicit(&pt->stop, memory_order_relaxed)) {
        for (int k = 0; k < pt->burst; k++) {
            int n = snprintf(msg, 48, "%s%lu", pt->prefix, i++);

            if (pt->size > 0)
                msg[n] = 'x'; /* snprintf()'s NUL */
            if (shmbus_publish(pt->p, msg, pt->size > 0 ? pt->size : (size_t)n, 0) == 0)
                atomic_fetch_add_explicit(&pt->sent, 1, memory_order_relaxed);
        }
        if (pt->pause_us > 0)
            nanosleep(&(struct timespec){.tv_nsec = pt->pause_us * 1000}, NULL);
    }
    return NULL;
}

void pt_start_size(shmbus_pub *p, const char *prefix, int burst, long pause_us, size_t size)
{
    assert_false(bt_pt.live);
    assert_true(size <= BT_PT_SIZE_MAX);
    bt_pt.p = p;
    bt_pt.prefix = prefix;
    bt_pt.burst = burst;
    bt_pt.pause_us = pause_us;
    bt_pt.size = size;
    /* relaxed: before the thread exists. */
    atomic_store_explicit(&bt_pt.stop, 0, memory_order_relaxed);
    atomic_store_explicit(&bt_pt.sent, 0, memory_order_relaxed);
    assert_int_equal(pthread_create(&bt_pt.th, NULL, pt_main, &bt_pt), 0);
    bt_pt.live = 1;
    /* Running once it returns: on a loaded machine the thread may start
     * after what it should overlap is over. relaxed: a count. */
    for (int64_t end = du_now_ms() + BT_MS;
         atomic_load_explicit(&bt_pt.sent, memory_order_relaxed) == 0; du_sleep_ms(1))
        if (du_now_ms() > end)
            fail_msg("the publisher thread sent nothing in %d ms", BT_MS);
}

void pt_start(shmbus_pub *p, const char *prefix, int burst, long pause_us)
{
    pt_start_size(p, prefix, burst, pause_us, 0);
}

/*
 * Flooders: connections that stream commands without replies (CLIENT
 * REPLY OFF, then PING after PING), each from a thread of its own, to
 * keep the bridge's I/O thread busy. They end when the daemon closes
 * them or flood_stop() is called (also by the teardown).
 */

#define BT_FLOODERS 8

static struct bt_flood {
    pthread_t th;
    int fd;
    int live;
    atomic_int stop;
    atomic_long sent; /* bytes */
} bt_flood[BT_FLOODERS];

static void *flood_main(void *arg)
{
    struct bt_flood *f = arg;
    static char pings[65536];

    for (size_t i = 0; i + 6 <= sizeof(pings); i += 6)
        memcpy(pings + i, "PING\r\n", 6);
    /* relaxed: a stop flag; the join orders the rest. */
    while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
        ssize_t n = send(f->fd, pings, sizeof(pings) - sizeof(pings) % 6, MSG_NOSIGNAL);

        if (n < 0)
            break; /* the daemon closed it */
        /* relaxed: a progress count, read by flood_start(). */
        atomic_fetch_add_explicit(&f->sent, n, memory_order_relaxed);
    }
    return NULL;
}

/* Start the flooders; return once the daemon has taken @p bytes from
 * each (it is then busy reading them). */
void flood_start(long bytes)
{
    int64_t end = du_now_ms() + BT_MS;

    for (int i = 0; i < BT_FLOODERS; i++) {
        struct bc *c = bc_open();
        struct bt_flood *f = &bt_flood[i];

        bc_send_str(c, "CLIENT REPLY OFF\r\n");
        f->fd = dup(c->fd);
        assert_true(f->fd >= 0);
        bc_close(c);
        /* relaxed: before the thread exists. */
        atomic_store_explicit(&f->stop, 0, memory_order_relaxed);
        atomic_store_explicit(&f->sent, 0, memory_order_relaxed);
        assert_int_equal(pthread_create(&f->th, NULL, flood_main, f), 0);
        f->live = 1;
    }
    for (int i = 0; i < BT_FLOODERS; i++) {
        /* relaxed: see flood_main(). */
        while (atomic_load_explicit(&bt_flood[i].sent, memory_order_relaxed) < bytes) {
            if (du_now_ms() > end)
                fail_msg("flooder %d: the daemon does not read", i);
            du_sleep_ms(1);
        }
    }
}

void flood_stop(void)
{
    for (int i = 0; i < BT_FLOODERS; i++) {
        struct bt_flood *f = &bt_flood[i];

        if (!f->live)
            continue;
        /* relaxed: see flood_main(). */
        atomic_store_explicit(&f->stop, 1, memory_order_relaxed);
        shutdown(f->fd, SHUT_RDWR); /* a send blocked on a full socket returns */
        pthread_join(f->th, NULL);
        close(f->fd);
        f->live = 0;
    }
}

/* Stop the thread (if running). @return messages it published. */
long pt_stop(void)
{
    if (bt_pt.live) {
        /* relaxed: see pt_main(). */
        atomic_store_explicit(&bt_pt.stop, 1, memory_order_relaxed);
        pthread_join(bt_pt.th, NULL);
        bt_pt.live = 0;
    }
    /* relaxed: after the join. */
    return atomic_load_explicit(&bt_pt.sent, memory_order_relaxed);
}

/*
 * A drainer: one thread that reads and drops whatever the daemon sends on
 * a few connections (subscribers that must keep up, or the daemon would
 * cut them off), on duplicates of their descriptors, until drain_stop()
 * (also called by the teardown).
 */

static struct bt_drain {
    pthread_t th;
    int live;
    int n;
    int fd[BT_DRAIN_MAX];
    atomic_int stop;
    atomic_long bytes;
} bt_drain;

static void *drain_main(void *arg)
{
    struct bt_drain *dr = arg;
    struct pollfd p[BT_DRAIN_MAX];
    static char buf[1 << 16];

    for (int i = 0; i < dr->n; i++)
        p[i] = (struct pollfd){.fd = dr->fd[i], .events = POLLIN};
    /* relaxed: a stop flag and a count; the join orders the rest. */
    while (!atomic_load_explicit(&dr->stop, memory_order_relaxed)) {
        if (poll(p, (nfds_t)dr->n, 10) <= 0)
            continue;
        for (int i = 0; i < dr->n; i++) {
            ssize_t r;

            if (p[i].revents == 0)
                continue;
            r = recv(p[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (r > 0)
                atomic_fetch_add_explicit(&dr->bytes, r, memory_order_relaxed);
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                p[i].fd = -1; /* closed: poll() skips it */
        }
    }
    return NULL;
}

/* Drain @p n connections (at most BT_DRAIN_MAX) from now on. */
void drain_start(struct bc *const *c, int n)
{
    assert_false(bt_drain.live);
    assert_true(n <= BT_DRAIN_MAX);
    for (int i = 0; i < n; i++) {
        bt_drain.fd[i] = dup(c[i]->fd);
        assert_true(bt_drain.fd[i] >= 0);
        bt_drain.n = i + 1;
    }
    /* relaxed: before the thread exists. */
    atomic_store_explicit(&bt_drain.stop, 0, memory_order_relaxed);
    atomic_store_explicit(&bt_drain.bytes, 0, memory_order_relaxed);
    assert_int_equal(pthread_create(&bt_drain.th, NULL, drain_main, &bt_drain), 0);
    bt_drain.live = 1;
}

/* Bytes drained so far. */
long drain_bytes(void)
{
    /* relaxed: a progress count. */
    return atomic_load_explicit(&bt_drain.bytes, memory_order_relaxed);
}

/* Stop the drainer (if running) and close its descriptors. */
void drain_stop(void)
{
    if (bt_drain.live) {
        /* relaxed: see drain_main(). */
        atomic_store_explicit(&bt_drain.stop, 1, memory_order_relaxed);
        pthread_join(bt_drain.th, NULL);
        bt_drain.live = 0;
    }
    for (int i = 0; i < bt_drain.n; i++)
        close(bt_drain.fd[i]);
    bt_drain.n = 0;
}

/*
 * Local sleepers: threads each blocked in one shmbus_recv() with a long
 * timeout, for tests of wake-ups. Their state is static, like bt_pt's, so
 * that the teardown joins the ones a failed test left behind (each returns
 * within BT_MS).
 */

struct bt_sleeper bt_sleepers[BT_SLEEPERS];

/* CLOCK_MONOTONIC in microseconds. */
int64_t bt_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *sleeper_main(void *arg)
{
    struct bt_sleeper *z = arg;

    z->rc = shmbus_recv(z->s, z->buf, sizeof(z->buf), NULL, (int64_t)BT_MS * 1000000);
    z->done_us = bt_now_us();
    return NULL;
}

/* Start sleeper @p i receiving from @p s (the join orders its results). */
void sleeper_start(int i, shmbus_sub *s)
{
    struct bt_sleeper *z = &bt_sleepers[i];

    assert_false(z->live);
    z->s = s;
    z->rc = 0;
    z->done_us = 0;
    assert_int_equal(pthread_create(&z->th, NULL, sleeper_main, z), 0);
    z->live = 1;
}

/* Wait for sleeper @p i (if started) to return. */
void sleeper_join(int i)
{
    if (!bt_sleepers[i].live)
        return;
    pthread_join(bt_sleepers[i].th, NULL);
    bt_sleepers[i].live = 0;
}

/* ------------------------------------------------------------- fixtures */

/* A port nobody listens on now (bound and released). @return it or -1. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t l = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0)
        return -1;
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

static int write_token(const struct du_daemon *d, char *path, size_t cap)
{
    FILE *f;

    snprintf(path, cap, "%s/token", d->dir);
    f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%s\n", BT_TOKEN);
    return fclose(f) == 0 ? 0 : -1;
}

/* Start the daemon (du_launch()), with its stderr in bt_log if @p log. */
static int bt_start(struct du_daemon *d, const char *const *argv, int log)
{
    if (!log)
        return du_launch(d, argv);
    return du_launch_log(d, argv, bt_log, sizeof(bt_log));
}

/* Start the daemon with the bridge on a free port; retry on another port
 * if it cannot bind (someone took it meanwhile). */
static int bt_launch(struct du_daemon *d, const struct bt_opts *o, const char *token)
{
    for (int attempt = 0; attempt < BT_TRIES; attempt++) {
        const char *argv[DU_EXTRA_MAX + 1];
        char listen[32];
        int n = 0, port = free_port();

        if (port < 0)
            return -1;
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
        argv[n++] = "--bridge";
        argv[n++] = listen;
        if (token != NULL) {
            argv[n++] = "--bridge-token-file";
            argv[n++] = token;
        }
        for (int i = 0; o != NULL && o->args[i] != NULL; i++)
            argv[n++] = o->args[i];
        argv[n] = NULL;
        if (bt_start(d, argv, o != NULL && o->log) == 0) {
            bt_port = port;
            return 0;
        }
        du_segments(d->bus, 1);
    }
    return -1;
}

/* cmocka setup: *state is NULL or a struct bt_opts; becomes the daemon. */
int bt_setup(void **state)
{
    const struct bt_opts *o = *state;
    struct du_daemon *d = calloc(1, sizeof(*d));
    char token[PATH_MAX];

    bt_log[0] = '\0';
    if (d == NULL)
        return -1;
    if (du_prepare(d) < 0 || (o != NULL && o->token && write_token(d, token, sizeof(token)) < 0) ||
        bt_launch(d, o, o != NULL && o->token ? token : NULL) < 0) {
        du_discard(d);
        return -1;
    }
    *state = d;
    return 0;
}

/* Show the start of the daemon's captured stderr (it failed: a sanitizer
 * report goes there too). */
static void log_dump(void)
{
    FILE *f = bt_log[0] != '\0' ? fopen(bt_log, "r") : NULL;
    char line[1024];

    for (int n = 0; f != NULL && n < 200 && fgets(line, sizeof(line), f) != NULL; n++)
        print_error("shmbusd: %s", line);
    if (f != NULL)
        fclose(f);
}

/* Close what the test left open (it failed), then du_teardown(). */
int bt_teardown(void **state)
{
    struct du_daemon *d = *state;

    drain_stop(); /* before the connections whose descriptors it reads */
    for (int i = 0; i < BT_CONNS_MAX; i++)
        bc_close(bt_conns[i]);
    for (int i = 0; i < BT_REDIS_MAX; i++)
        if (bt_redis[i] != NULL)
            rd_close(bt_redis[i]);
    pt_stop();
    flood_stop();
    for (int i = 0; i < BT_SLEEPERS; i++)
        sleeper_join(i);
    local_release();
    /* A daemon that died (a sanitizer report) left its lock file; one
     * that stopped cleanly removed it. du_teardown() checks the rest. */
    if (du_stop(d) != 0) {
        char lock[64 + SHMBUS_BUS_NAME_MAX];

        log_dump();
        snprintf(lock, sizeof(lock), "/dev/shm/shmbus-%s.lock", d->bus);
        unlink(lock);
    }
    return du_teardown(state);
}

/* Is the daemon still running? */
int daemon_alive(struct du_daemon *d)
{
    int st;

    return d->pid > 0 && waitpid(d->pid, &st, WNOHANG) == 0;
}

void bt_init(void)
{
    tu_init();
    signal(SIGPIPE, SIG_IGN);
    if (getenv("BT_FILTER") != NULL) /* run some tests only: BT_FILTER='*auth*' */
        cmocka_set_test_filter(getenv("BT_FILTER"));
}
