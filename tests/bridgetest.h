/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge tests' helper library (bridgetest_wire.c, bridgetest_daemon.c,
 * bridgetest_budget.c; linked by test_bridge_*.c and stress/test_bridge_*.c):
 * a daemon per test with its bridge on a free loopback port (bt_setup(),
 * bt_teardown(); bb_setup() for the budget tests), raw TCP connections read
 * byte-exact (bc_*), RESP replies (rf_*), JSON deliveries (bc_jmsg()),
 * hiredis connections (rd_*), the library on the same bus (local_*), and
 * threads that publish, flood, drain or sleep beside a test. Everything a
 * test opens through it is closed by the teardown, even after a failure.
 * Tests run one at a time: the state here is global.
 */
#ifndef SHMBUS_TESTS_BRIDGETEST_H
#define SHMBUS_TESTS_BRIDGETEST_H

/* testutil.h's state is shared by every file of a bridge test (defined in
 * bridgetest_daemon.c): a daemon started here is killed by the exit
 * handler that the test's main() installs. */
#define TU_STATE extern

#include "daemonutil.h"
#include "jsonline.h"

#include <hiredis/hiredis.h>
#include <pthread.h>

#define BT_MS        10000 /* longest wait for a reply: only a hang reaches it */
#define BT_QUIET_MS  300   /* "nothing comes": how long to watch a socket */
#define BT_TRIES     20    /* daemon starts on a fresh port before giving up */
#define BT_CONNS_MAX 1024
#define BT_REDIS_MAX 16
#define BT_TOKEN     "s3cret-T0ken"
#define BT_LINE_MAX  (1u << 20)

/* Time limits of the tests that measure the daemon stretch by this much
 * under TSan, which makes it several times slower. */
#ifdef __SANITIZE_THREAD__
#define BT_SLOW 3
#else
#define BT_SLOW 1
#endif

/* Options of a test's daemon (cmocka prestate). */
struct bt_opts {
    int token;           /* --bridge-token-file with BT_TOKEN */
    int log;             /* the daemon's stderr goes to bt_log (du_log_count()) */
    const char *args[8]; /* more daemon arguments, NULL-terminated */
};

/* A token, its log, and --bridge-auth-timeout 300. */
extern const struct bt_opts bt_auth_opts;

/* The running daemon's bridge port (tests run one at a time). */
extern int bt_port;
/* Where the daemon's stderr goes with bt_opts.log ("": to ours). */
extern char bt_log[PATH_MAX];

/* Keep @p p in the first free slot of the array @p arr (of pointers that
 * the teardown closes); fail the test if there is none. */
#define BT_TRACK(arr, p)                                                                           \
    do {                                                                                           \
        size_t i_ = 0;                                                                             \
        while (i_ < sizeof(arr) / sizeof(arr[0]) && arr[i_] != NULL)                               \
            i_++;                                                                                  \
        if (i_ == sizeof(arr) / sizeof(arr[0]))                                                    \
            fail_msg("too many handles in " #arr);                                                 \
        arr[i_] = (p);                                                                             \
    } while (0)

/* @p p as C-escaped text into a static buffer (for failure messages). */
const char *esc(const void *p, size_t n);

/* ------------------------------------------------------- TCP connections */

/* A client connection with a receive buffer. */
struct bc {
    int fd;
    int eof; /* the daemon closed it (EOF or reset) */
    char *buf;
    size_t len, cap;
};

extern struct bc *bt_conns[BT_CONNS_MAX];

struct bc *bc_open_sock(int rcvbuf, int mss);
struct bc *bc_open_rcvbuf(int rcvbuf);
struct bc *bc_open(void);
void bc_close(struct bc *c);
int bc_send_all(struct bc *c, const void *data, size_t len);
void bc_send(struct bc *c, const void *data, size_t len);
void bc_send_lossy(struct bc *c, const void *data, size_t len);
void bc_send_str(struct bc *c, const char *s);
ssize_t bc_fill(struct bc *c, int64_t end);
int bc_need(struct bc *c, size_t n, int ms);
void bc_consume(struct bc *c, size_t n);
int bc_wait_eof(struct bc *c, int ms, size_t *dropped);

void bc_expect_at(struct bc *c, const void *want, size_t len, int line);
#define bc_expect(c, lit) bc_expect_at((c), (lit), sizeof(lit) - 1, __LINE__)
void bc_quiet_at(struct bc *c, int ms, int line);
#define bc_quiet(c, ms) bc_quiet_at((c), (ms), __LINE__)
char *bc_line_at(struct bc *c, int line);
#define bc_line(c) bc_line_at((c), __LINE__)
void bc_expect_line_at(struct bc *c, const char *want, int line);
#define bc_expect_line(c, want) bc_expect_line_at((c), (want), __LINE__)

/* ----------------------------------------------------------------- RESP */

#define RF_MAX 8

/* One RESP reply: a simple value, or an array of up to RF_MAX simple values. */
struct rframe {
    char type;   /* '+', '-', ':', '$' or '*' */
    long long n; /* integer, bulk length (-1: nil) or array length */
    char *s;     /* simple, error or bulk text (in mem) */
    size_t len;
    int nel;
    struct rframe *el; /* nel elements */
    char *mem;
};

/* Parse one value at @p p (< end) into @p f, pointing into the buffer.
 * @return bytes taken, 0 if incomplete, -1 if malformed. */
long rf_parse(const char *p, const char *end, struct rframe *f, int depth);
void rf_free(struct rframe *f);
void rf_fail_at(struct rframe *f, const char *what, int line);
#define rf_fail(f, what) rf_fail_at((f), (what), __LINE__)
int rf_is_push(const struct rframe *f, const char *pattern, const char *topic);
void bc_frame_at(struct bc *c, struct rframe *f, int line);
#define bc_frame(c, f) bc_frame_at((c), (f), __LINE__)
void bc_skip_to_confirm_at(struct bc *c, const char *kind, long long count, int line);
#define bc_skip_to_confirm(c, kind, count) bc_skip_to_confirm_at((c), (kind), (count), __LINE__)

/* ----------------------------------------------------------------- JSON */

/* A delivery read from a JSON connection. */
struct jmsg {
    uint64_t seq, ts, lost;
    int b64; /* it came as "payload_base64" */
    size_t len;
    unsigned char data[4096];
};

void bc_jmsg_at(struct bc *c, const char *topic, struct jmsg *m, int line);
#define bc_jmsg(c, topic, m) bc_jmsg_at((c), (topic), (m), __LINE__)

/* ---------------------------------------------------------------- hiredis */

extern redisContext *bt_redis[BT_REDIS_MAX];

redisContext *rd_open(void);
void rd_close(redisContext *r);
redisReply *rd_get_at(redisContext *r, int line);
#define rd_get(r) rd_get_at((r), __LINE__)
void rd_check_array_at(redisReply *rep, size_t n, const char *kind, const char *name,
                       long long count, int line);
#define rd_check_array(rep, n, kind, name, count)                                                  \
    rd_check_array_at((rep), (n), (kind), (name), (count), __LINE__)
void rd_expect_msg_at(redisContext *r, const char *topic, const void *data, size_t len, int line);
#define rd_expect_msg(r, topic, data, len) rd_expect_msg_at((r), (topic), (data), (len), __LINE__)
void rd_expect_int_at(redisReply *rep, long long want, int line);
#define rd_expect_int(rep, want) rd_expect_int_at((rep), (want), __LINE__)

/* A hiredis connection to the bridge on 127.0.0.1:@p port, whose connect,
 * reads and writes time out after @p ms: a hang fails the test. */
redisContext *bu_redis_open(int port, int ms);

/* ---------------------------------------------------------------- local */

/* The test's library handles, destroyed by the teardown. */
#define BT_LOCAL_MAX 160
extern shmbus_sub *bt_subs[BT_LOCAL_MAX];
extern shmbus_topic *bt_topics[BT_LOCAL_MAX];

shmbus_bus *local_connect(const struct du_daemon *d);
shmbus_topic *local_open(shmbus_bus *bus, const char *name, uint32_t mode, uint32_t capacity);
shmbus_sub *local_sub(shmbus_topic *t);
shmbus_pub *local_pub(shmbus_topic *t);
void local_release(void);
void local_expect_at(shmbus_sub *s, const void *data, size_t len, int line);
#define local_expect(s, data, len) local_expect_at((s), (data), (len), __LINE__)

/* ---------------------------------------------------------------- threads */

#define BT_PT_SIZE_MAX 4096
#define BT_DRAIN_MAX   32
#define BT_SLEEPERS    2

/* A local publisher thread (one at a time). */
void pt_start_size(shmbus_pub *p, const char *prefix, int burst, long pause_us, size_t size);
void pt_start(shmbus_pub *p, const char *prefix, int burst, long pause_us);
long pt_stop(void);

/* Connections that flood the I/O thread with unanswered PINGs. */
void flood_start(long bytes);
void flood_stop(void);

/* A thread that reads and drops what comes on a few connections. */
void drain_start(struct bc *const *c, int n);
long drain_bytes(void);
void drain_stop(void);

/* A local subscriber thread blocked in one shmbus_recv(). */
struct bt_sleeper {
    pthread_t th;
    int live;
    shmbus_sub *s;
    int rc;          /* shmbus_recv()'s return */
    int64_t done_us; /* when it returned (bt_now_us()) */
    unsigned char buf[256];
};

extern struct bt_sleeper bt_sleepers[BT_SLEEPERS];

int64_t bt_now_us(void);
void sleeper_start(int i, shmbus_sub *s);
void sleeper_join(int i);

/* ------------------------------------------------------------- fixtures */

/* cmocka setup: *state is NULL or a struct bt_opts; becomes the daemon. */
int bt_setup(void **state);
/* Close what the test left open (it failed), then du_teardown(). */
int bt_teardown(void **state);
/* Is the daemon still running? */
int daemon_alive(struct du_daemon *d);

#define BRIDGE_TEST(f) cmocka_unit_test_setup_teardown(f, bt_setup, bt_teardown)
#define BRIDGE_TEST_ARGS(f, opts)                                                                  \
    cmocka_unit_test_prestate_setup_teardown(f, bt_setup, bt_teardown, (void *)(opts))

/* Call once from main(), in place of tu_init(): also ignores SIGPIPE and
 * runs only the tests BT_FILTER names ('*auth*'), if set. */
void bt_init(void);

/* --------------------------------------------------------------- budgets */

/* The budget tests (bridgetest_budget.c) run their daemon with the bridge on
 * a port the kernel picks, read back from shmbus_bridge_stat(). */
#define BB_MS        10000 /* longest wait for a reply: only a hang reaches it */
#define BB_TOPICS    2000  /* topics the patterns match */
#define BB_LINK_MIN  64u   /* a link's bytes are at least this */
#define BB_CONNS_MAX 8
/* More a's than a topic name holds. */
#define BB_AS                                                                                      \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* The running daemon's bridge port, and where its stderr goes (tests run
 * one at a time). */
extern int bb_port;
extern char bb_log[PATH_MAX];

/* cmocka setup: *state is the daemon's extra arguments (NULL-terminated,
 * after --bridge); becomes the daemon. Its teardown is du_teardown(). */
int bb_setup(void **state);
#define BB_TEST(f, args) cmocka_unit_test_prestate_setup_teardown(f, bb_setup, du_teardown, args)
/* The bus's bridge totals and connections (at most BB_CONNS_MAX). */
int bb_stat(shmbus_bus *bus, shmbus_bridge_info *info, shmbus_bridge_conn *conns);
/* @p n small topics t0000, t0001, ... (they stay in the daemon). */
void make_topics(shmbus_bus *bus, int n);
void make_long_topics(shmbus_bus *bus, int n);
int rd_ok(redisContext *r, const char *cmd, char *err, size_t cap);
uint64_t conn_memory(shmbus_bus *bus, uint64_t id);
uint64_t newest_conn(shmbus_bus *bus);
void wait_patterns(shmbus_bus *bus, uint64_t id, uint32_t n);
void psubscribe_replies(redisContext *r, int n);
int64_t ping_ms(redisContext *r);
redisContext *open_pinged(void);
int64_t send_ping_meanwhile(redisContext *r, shmbus_bus *bus, uint64_t id, redisContext *other,
                            int64_t *t0);
uint64_t memory_when_idle(shmbus_bus *bus);
int raw_open(void);
void raw_send(int fd, const void *data, size_t len);

#endif
