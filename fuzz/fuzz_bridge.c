/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stateful libFuzzer target for the TCP bridge (daemon/bridge/): each
 * input runs a fresh registry and bridge in this process (the daemon's own
 * code, its I/O thread and pumps, on a loopback port the kernel picks) and
 * drives it from up to FB_CONNS client sockets with a sequence of
 * commands decoded from the input: SUBSCRIBE, PSUBSCRIBE, PUBLISH,
 * UNSUBSCRIBE, PUNSUBSCRIBE, AUTH, QUIT and PING, in RESP or JSON lines,
 * plus closing a socket and not reading one for a while (a slow client).
 * The first bytes choose the budgets (small, so that they are reached) and
 * whether AUTH is needed.
 *
 * After each command the client sends a marker the bridge answers whatever
 * the state (an unknown RESP command, whose error echoes its name; a JSON
 * PING, whose reply echoes its id) and reads up to its answer: each step
 * ends with the bridge idle for that client, which keeps an input's run
 * close to deterministic. Checked: no crash, no sanitizer report, no hang
 * (an answer within FB_WAIT_MS), the bridge's memory within its budget
 * (what it may lend while it closes the largest connection included), and
 * once every client has gone, the bridge's memory back to 0; the segments
 * in /dev/shm are gone after the registry stops. With
 * FUZZ_BRIDGE_EXPECT_EVICTED set (scripts/fuzz.sh replays the evict* seeds
 * so), the input must have closed a connection for holding the most.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bridge/bridge.h"
#include "bridge/pump.h"
#include "bridge/state.h"
#include "fuzz_check.h"
#include "log.h"
#include "registry.h"
#include "segfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FB_CONNS   3
#define FB_OPS     48
#define FB_WAIT_MS 10000 /* a step the bridge does not answer in this long hangs */
#define FB_TOKEN   "tok"

static const char *const topics[] = {"a", "b", "c", "ab", "a.b"};
static const char *const patterns[] = {"*", "a*", "?", "[ab]*", "a?b", "\\*", "[^a]"};
#define NTOPICS   (sizeof(topics) / sizeof(topics[0]))
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

enum fb_op {
    OP_SUB,
    OP_PSUB,
    OP_PUB,
    OP_UNSUB,
    OP_PUNSUB,
    OP_AUTH,
    OP_QUIT,
    OP_PING,
    OP_CLOSE,
    OP_HOLD
};
#define FB_NOPS 10

struct fb_client {
    int fd;   /* -1: not connected */
    int json; /* its protocol */
    int hold; /* not read for now: a slow client */
};

struct fb_run {
    struct sbd_config cfg;
    struct sbd_registry reg;
    struct sbd_bridge *b;
    struct fb_client cl[FB_CONNS];
    struct sockaddr_in addr;
    unsigned marker;
    const uint8_t *p, *end;
};

static uint8_t next(struct fb_run *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send all of @p len bytes; a connection the bridge closed takes nothing. */
static void send_all(struct fb_client *c, const char *p, size_t len)
{
    while (c->fd >= 0 && len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* reset: the next read sees it */
        p += n;
        len -= (size_t)n;
    }
}

/* Close with a reset: the bridge sees it at once, even when it reads
 * nothing from the connection (paused). */
static void client_close(struct fb_client *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    if (c->fd < 0)
        return;
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(c->fd);
    c->fd = -1;
    c->hold = 0;
}

static void client_open(struct fb_run *r, struct fb_client *c)
{
    int one = 1, rcvbuf = 4096;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c->fd >= 0);
    /* A command goes in several sends: no wait for an ACK between them. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A client that does not read fills the bridge's buffers soon. */
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    CHECK(connect(c->fd, (struct sockaddr *)&r->addr, sizeof(r->addr)) == 0);
}

/* Read until @p marker comes, the bridge closes the connection, or the
 * step hangs (a failure). */
static void read_to(struct fb_client *c, const char *marker)
{
    size_t ml = strlen(marker), have = 0;
    int64_t end = now_ms() + FB_WAIT_MS;
    char buf[65536 + 64];

    for (;;) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        int64_t left = end - now_ms();
        ssize_t n;

        if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
            fprintf(stderr, "fuzz_bridge: no answer to %s in %d ms\n", marker, FB_WAIT_MS);
            CHECK(!"the bridge answers every step");
        }
        n = recv(c->fd, buf + have, sizeof(buf) - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            client_close(c); /* QUIT, a budget, a protocol error */
            return;
        }
        have += (size_t)n;
        if (memmem(buf, have, marker, ml) != NULL)
            return;
        /* Keep a tail that may hold the start of the marker. */
        if (have > ml) {
            memmove(buf, buf + have - ml, ml);
            have = ml;
        }
    }
}

/* Send the step's marker and read up to its answer. */
static void sync_client(struct fb_run *r, struct fb_client *c)
{
    char marker[32], cmd[96];
    int n;

    if (c->fd < 0 || c->hold)
        return;
    snprintf(marker, sizeof(marker), "zq%uQ", r->marker++);
    if (c->json)
        n = snprintf(cmd, sizeof(cmd), "{\"command\":\"PING\",\"id\":\"%s\"}\n", marker);
    else
        n = snprintf(cmd, sizeof(cmd), "*1\r\n$%zu\r\n%s\r\n", strlen(marker), marker);
    send_all(c, cmd, (size_t)n);
    if (c->fd >= 0)
        read_to(c, marker);
}

/* A RESP command of @p argc arguments. */
static void resp_cmd(struct fb_client *c, unsigned argc, const char *const *argv, const size_t *len)
{
    char head[32];

    send_all(c, head, (size_t)snprintf(head, sizeof(head), "*%u\r\n", argc));
    for (unsigned i = 0; i < argc; i++) {
        send_all(c, head, (size_t)snprintf(head, sizeof(head), "$%zu\r\n", len[i]));
        send_all(c, argv[i], len[i]);
        send_all(c, "\r\n", 2);
    }
}

/* One command of @p op on client @p c, its argument chosen by @p arg: the
 * topic or pattern, the token, the payload's size and a PUBLISH's repeats. */
static void run_op(struct fb_client *c, unsigned op, uint8_t arg)
{
    static const char *const names[] = {"SUBSCRIBE",    "PSUBSCRIBE", "PUBLISH", "UNSUBSCRIBE",
                                        "PUNSUBSCRIBE", "AUTH",       "QUIT",    "PING"};
    static const char *const jnames[] = {"SUB", "SUB", "PUB", "UNSUB", "UNSUB", "AUTH", "", "PING"};
    const char *topic = topics[arg % NTOPICS], *pattern = patterns[arg % NPATTERNS];
    const char *token = arg & 1 ? FB_TOKEN : "bad";
    char payload[2048], line[2400];
    size_t plen = (size_t)(arg & 0xf0) * 8, len[3];
    const char *argv[3];
    unsigned argc = 2;

    memset(payload, 'a' + (arg & 7), plen);
    argv[0] = names[op];
    argv[1] = op == OP_PSUB || op == OP_PUNSUB ? pattern : op == OP_AUTH ? token : topic;
    argv[2] = payload;
    if (op == OP_PUB)
        argc = 3;
    else if (op == OP_QUIT || op == OP_PING || ((op == OP_UNSUB || op == OP_PUNSUB) && arg & 8))
        argc = 1; /* unsubscribe from all */
    for (unsigned i = 0; i < argc; i++)
        len[i] = i == 2 ? plen : strlen(argv[i]);
    for (unsigned i = op == OP_PUB ? (arg & 7) * 8u : 0; !c->json && i > 0; i--)
        resp_cmd(c, argc, argv, len);
    if (!c->json) {
        resp_cmd(c, argc, argv, len);
        return;
    }
    if (op == OP_QUIT) {
        client_close(c); /* JSON lines have no QUIT */
        return;
    }
    if (op == OP_PUB)
        snprintf(line, sizeof(line),
                 "{\"command\":\"PUB\",\"topic\":\"%s\",\"payload\":\"%.*s\"}\n", topic, (int)plen,
                 payload);
    else if (op == OP_AUTH)
        snprintf(line, sizeof(line), "{\"command\":\"AUTH\",\"token\":\"%s\"}\n", token);
    else if (op == OP_PING)
        snprintf(line, sizeof(line), "{\"command\":\"PING\"}\n");
    else
        snprintf(line, sizeof(line), "{\"command\":\"%s\",\"topic\":\"%s\"}\n", jnames[op], topic);
    for (unsigned i = op == OP_PUB ? (arg & 7) * 8u : 0; i > 0; i--)
        send_all(c, line, strlen(line));
    send_all(c, line, strlen(line));
}

/* The bridge's memory is within its budget: what it lends while it closes
 * the largest connection may pass it by that connection's size, itself
 * within the budget. */
static void check_budget(struct fb_run *r)
{
    /* relaxed: monitoring values. */
    size_t mem = atomic_load_explicit(&r->b->mem, memory_order_relaxed);

    if (mem > 2 * r->cfg.bridge_max_memory + SBB_ROUND_BYTES) {
        fprintf(stderr, "fuzz_bridge: bridge memory %zu, budget %llu\n", mem,
                (unsigned long long)r->cfg.bridge_max_memory);
        CHECK(!"the bridge's memory stays within its budget");
    }
}

/* Close every client and wait until the bridge closed them all: its
 * memory is then back to 0. */
static void check_released(struct fb_run *r)
{
    shmbus_bridge_info info;
    int64_t end = now_ms() + FB_WAIT_MS;

    for (unsigned i = 0; i < FB_CONNS; i++)
        client_close(&r->cl[i]);
    for (;;) {
        sbd_bridge_stat(r->b, 0, &info, NULL, 0);
        if (info.connections == 0)
            break;
        CHECK(now_ms() < end);
        usleep(200);
    }
    /* relaxed: a counter the I/O thread bumped before it closed the
     * connection, which the stat above saw gone. */
    if (getenv("FUZZ_BRIDGE_EXPECT_EVICTED") != NULL &&
        atomic_load_explicit(&r->b->count.evicted, memory_order_relaxed) == 0)
        CHECK(!"this input closes a connection for holding the most memory");
    /* relaxed: the I/O thread's last close happened before it unlisted
     * the connection, which the stat above read under the read lock. */
    if (atomic_load_explicit(&r->b->mem, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&r->b->evicting, memory_order_relaxed) != 0) {
        fprintf(stderr, "fuzz_bridge: no connection left, memory %zu (lent %zu)\n",
                atomic_load_explicit(&r->b->mem, memory_order_relaxed),
                atomic_load_explicit(&r->b->evicting, memory_order_relaxed));
        CHECK(!"every connection's memory is given back");
    }
}

/* The bus's segments left in /dev/shm. */
static int segments_left(const char *bus)
{
    char prefix[SHMBUS_BUS_NAME_MAX + 16];
    struct dirent *e;
    DIR *d = opendir("/dev/shm");
    int n = 0;

    if (d == NULL)
        return 0;
    sbd_seg_bus_prefix(prefix, sizeof(prefix), bus);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/*
 * A crash (a failed CHECK, a sanitizer report) ends the process in the
 * middle of an input, before sbd_registry_fini(): a child that outlives it
 * removes the bus's segments then. It waits for the end of a pipe whose
 * write end only the fuzzer holds, and calls nothing but read() and
 * shm_unlink() (it is forked from a process with threads). Segment names
 * are the topics' first names (sbd_seg_name()).
 */
static void cleaner_start(const char *bus)
{
    char names[NTOPICS][SHMBUS_BUS_NAME_MAX + SHMBUS_TOPIC_NAME_MAX + 16], c;
    int p[2];
    pid_t pid;

    for (size_t i = 0; i < NTOPICS; i++)
        sbd_seg_name(names[i], sizeof(names[i]), bus, topics[i], 0);
    CHECK(pipe(p) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid > 0) {
        close(p[0]);
        return; /* p[1] stays open until this process ends */
    }
    close(p[1]);
    while (read(p[0], &c, 1) != 0)
        ;
    for (size_t i = 0; i < NTOPICS; i++)
        shm_unlink(names[i]);
    _exit(0);
}

/* The budgets and the token, from the input's first byte. */
static void configure(struct fb_run *r, uint8_t k)
{
    static const uint64_t mem[] = {64u << 10, 256u << 10, 1u << 20, 4u << 20};
    static const uint64_t sub_mem[] = {512, 4096, 65536, 1u << 20};
    struct sbd_config *c = &r->cfg;

    sbd_config_defaults(c);
    snprintf(c->bus, sizeof(c->bus), "fzb%d", (int)getpid());
    c->max_topics = 8;
    c->max_clients = 4;
    c->max_slots = 64; /* remote publishes make topics with the default 64 */
    c->max_segment = 4u << 20;
    c->max_shm = 32u << 20;
    c->reap_interval_ms = 20;
    c->bridge = 1;
    snprintf(c->bridge_host, sizeof(c->bridge_host), "127.0.0.1");
    snprintf(c->bridge_port, sizeof(c->bridge_port), "0");
    if (k & 0x80)
        snprintf(c->bridge_token, sizeof(c->bridge_token), FB_TOKEN);
    c->bridge_max_conns = FB_CONNS + 1;
    c->bridge_max_subs = 8;
    c->bridge_max_request = 4096;
    c->bridge_max_output = k & 0x40 ? 8192 : 65536;
    c->bridge_max_memory = mem[k & 3];
    c->bridge_max_sub_memory = sub_mem[(k >> 2) & 3];
    c->bridge_pub_timeout_ms = 50;
}

/* Small topics made before the clients come, one of them reliable (its
 * back-pressure pauses a publishing client); "ab" and "a.b" are made by a
 * remote publish, with the defaults. */
static void make_topics(struct fb_run *r)
{
    for (unsigned i = 0; i < 3; i++) {
        struct sb_wire_open q = {.mode = i == 2 ? SHMBUS_RELIABLE : SHMBUS_LOSSY,
                                 .capacity = 8,
                                 .max_msg_size = 256,
                                 .max_subscribers = 4,
                                 .max_groups = 1,
                                 .max_publishers = 4};
        char why[SB_WIRE_ERR_TEXT];
        struct sbd_topic *t;
        int created;

        memcpy(q.name, topics[i], strlen(topics[i]) + 1);
        CHECK(sbd_topic_open(&r->reg, &q, &t, &created, why, sizeof(why)) == 0);
    }
}

static void start(struct fb_run *r)
{
    shmbus_bridge_info info;
    const char *colon;

    CHECK(sbd_registry_init(&r->reg, &r->cfg) == 0);
    make_topics(r);
    CHECK(sbd_bridge_start(&r->cfg, &r->reg, &r->b) == 0);
    sbd_bridge_stat(r->b, 0, &info, NULL, 0);
    colon = strrchr(info.listen, ':');
    CHECK(colon != NULL);
    r->addr.sin_family = AF_INET;
    r->addr.sin_port = htons((uint16_t)atoi(colon + 1));
    r->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    static struct fb_run r;
    uint8_t proto;

    if (!once) {
        once = 1;
        signal(SIGPIPE, SIG_IGN);
        sbd_log_set_level(getenv("FUZZ_BRIDGE_LOG") != NULL ? SBD_DEBUG : SBD_ERROR);
        urcu_memb_register_thread();
        configure(&r, 0);
        cleaner_start(r.cfg.bus);
    }
    if (size < 2)
        return 0;
    memset(&r, 0, sizeof(r));
    r.p = data;
    r.end = data + size;
    configure(&r, next(&r));
    start(&r);
    proto = next(&r);
    for (unsigned i = 0; i < FB_CONNS; i++) {
        r.cl[i].fd = -1;
        r.cl[i].json = (proto >> i) & 1;
    }
    for (unsigned n = 0; n < FB_OPS && r.p + 2 <= r.end; n++) {
        uint8_t k = next(&r), arg = next(&r);
        struct fb_client *c = &r.cl[k % FB_CONNS];
        unsigned op = (k / FB_CONNS) % FB_NOPS;

        if (op == OP_CLOSE) {
            client_close(c);
            continue;
        }
        if (op == OP_HOLD) {
            c->hold = !c->hold; /* read again: it catches up, or finds it was closed */
            sync_client(&r, c);
            continue;
        }
        if (c->fd < 0)
            client_open(&r, c);
        run_op(c, op, arg);
        sync_client(&r, c);
        check_budget(&r);
    }
    check_released(&r);
    sbd_bridge_stop(r.b);
    sbd_registry_fini(&r.reg, 1);
    CHECK(segments_left(r.cfg.bus) == 0);
    return 0;
}
