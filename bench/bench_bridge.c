/*
 * shmbus-bridge-bench: shmbusd's TCP bridge (daemon/bridge/) against
 * redis-server, measured with one hiredis client program for both. Every
 * command connects to --host:--port, whichever server listens there, and
 * speaks nothing but Redis pub/sub (PUBLISH, SUBSCRIBE, CLIENT REPLY, PING).
 * Each payload starts with its send time (CLOCK_MONOTONIC ns: clients and
 * server share the host) and its sequence number, so subscribers measure
 * one-way latency and count gaps themselves. As in shmbus-bench, the parent
 * forks the measuring sides into children that share an anonymous mapping
 * with it, reaps them and prints their figures; the last line of every
 * command is key=value pairs (or, with --json, one JSON object).
 * bench/bridge.sh runs each command against a private shmbusd and a private
 * redis-server in turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "bench.h"

#define BB_NAME "shmbus-bridge-bench"
/* The payload's header: send time, then sequence number (host order). */
#define BB_HEADER 16u
/* Largest --size. */
#define BB_SIZE_MAX 65536u
/* Connections one subscriber process of `fanout` reads. */
#define BB_SUBS_MAX 1000u
/* Latency samples a run keeps (8 bytes each, shared). */
#define BB_SAMPLES_MAX (64ull << 20)
/* `idle` opens this many connections, then waits for all their PONGs. */
#define BB_IDLE_BATCH 256u
/* Bytes one read() of a fan-out connection takes. */
#define BB_READ_CHUNK 65536u

static const char bb_ping[] = "*1\r\n$4\r\nPING\r\n";
static const char bb_pong[] = "+PONG\r\n";

struct bb_opts {
    const char *host;
    const char *channel;
    const char *label; /* the server's name in the report */
    uint64_t port;
    uint64_t count;
    uint64_t warmup;
    uint64_t window; /* PUBLISH replies outstanding at most */
    uint64_t batch;  /* commands per write */
    uint64_t rate;   /* messages/s; 0: as fast as possible */
    uint64_t size;
    uint64_t subs;
    uint64_t conns;
    uint64_t settle_ms;
    uint64_t idle_ms; /* a subscriber's silence that ends the run */
    uint64_t server_pid;
    int reply_off;    /* publish under CLIENT REPLY OFF */
    int preformatted; /* format PUBLISH once, restamp the copy */
    int json;
};

/* ----------------------------------------------------------------- options */

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_CHANNEL,
    OPT_LABEL,
    OPT_COUNT,
    OPT_WARMUP,
    OPT_WINDOW,
    OPT_BATCH,
    OPT_RATE,
    OPT_SIZE,
    OPT_SUBS,
    OPT_CONNS,
    OPT_SETTLE,
    OPT_IDLE,
    OPT_PID,
    OPT_REPLY_OFF,
    OPT_PREFORMATTED,
    OPT_JSON,
    OPT_HELP
};

static const struct option bb_long_opts[] = {{"host", required_argument, NULL, OPT_HOST},
                                             {"port", required_argument, NULL, OPT_PORT},
                                             {"channel", required_argument, NULL, OPT_CHANNEL},
                                             {"label", required_argument, NULL, OPT_LABEL},
                                             {"count", required_argument, NULL, OPT_COUNT},
                                             {"warmup", required_argument, NULL, OPT_WARMUP},
                                             {"window", required_argument, NULL, OPT_WINDOW},
                                             {"batch", required_argument, NULL, OPT_BATCH},
                                             {"rate", required_argument, NULL, OPT_RATE},
                                             {"size", required_argument, NULL, OPT_SIZE},
                                             {"subscribers", required_argument, NULL, OPT_SUBS},
                                             {"conns", required_argument, NULL, OPT_CONNS},
                                             {"settle-ms", required_argument, NULL, OPT_SETTLE},
                                             {"idle-ms", required_argument, NULL, OPT_IDLE},
                                             {"server-pid", required_argument, NULL, OPT_PID},
                                             {"reply-off", no_argument, NULL, OPT_REPLY_OFF},
                                             {"preformatted", no_argument, NULL, OPT_PREFORMATTED},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};

/* A numeric option: its limits and its field. */
struct bb_num {
    int opt;
    uint64_t min, max;
    size_t off;
};

static const struct bb_num bb_nums[] = {
    {OPT_PORT, 1, 65535, offsetof(struct bb_opts, port)},
    {OPT_COUNT, 1, 1ull << 32, offsetof(struct bb_opts, count)},
    {OPT_WARMUP, 0, 1ull << 32, offsetof(struct bb_opts, warmup)},
    {OPT_WINDOW, 1, 1u << 20, offsetof(struct bb_opts, window)},
    {OPT_BATCH, 1, 4096, offsetof(struct bb_opts, batch)},
    {OPT_RATE, 0, 100000000, offsetof(struct bb_opts, rate)},
    {OPT_SIZE, BB_HEADER, BB_SIZE_MAX, offsetof(struct bb_opts, size)},
    {OPT_SUBS, 1, BB_SUBS_MAX, offsetof(struct bb_opts, subs)},
    {OPT_CONNS, 1, 1000000, offsetof(struct bb_opts, conns)},
    {OPT_SETTLE, 0, 600000, offsetof(struct bb_opts, settle_ms)},
    {OPT_IDLE, 1, 600000, offsetof(struct bb_opts, idle_ms)},
    {OPT_PID, 1, 1u << 30, offsetof(struct bb_opts, server_pid)},
};

static void bb_usage(FILE *f)
{
    fputs("usage: " BB_NAME " COMMAND --port P [options]\n"
          "One hiredis client against any server of Redis pub/sub on HOST:PORT\n"
          "(shmbusd --bridge, redis-server). Payloads carry their CLOCK_MONOTONIC\n"
          "send time and a sequence number; latency is one-way, sender to reader.\n"
          "commands:\n"
          "  pubsub    one publisher, one subscriber: messages/s at the subscriber\n"
          "            (first to last received), loss, latency under that load.\n"
          "            Pipelined PUBLISH with at most --window replies outstanding,\n"
          "            --batch commands per write; or --reply-off (CLIENT REPLY OFF);\n"
          "            or --rate R messages/s, one write each (paced latency)\n"
          "  pingpong  publish one message, wait until the subscriber has it, repeat\n"
          "            (both connections in one process): unloaded latency\n"
          "  fanout    one publisher (as pubsub), --subscribers connections read by\n"
          "            one process (epoll, hiredis readers): deliveries/s, latency\n"
          "  idle      open --conns idle connections (each answers one PING), wait\n"
          "            --settle-ms, report the growth of --server-pid's VmRSS\n"
          "options (defaults in brackets):\n"
          "  --host H [127.0.0.1]  --port P  --channel NAME [bb.<command>]\n"
          "  --label NAME [server]  name of the server in the report\n"
          "  --count N [pubsub 1000000, pingpong 20000, fanout 20000]  --warmup N [1000]\n"
          "  --window W [1000]  --batch B [16]  --rate R [0]  --reply-off\n"
          "  --preformatted     format PUBLISH once (redisFormatCommand) and append a\n"
          "                     restamped copy per message (redisAppendFormattedCommand)\n"
          "                     instead of redisAppendCommand: a lighter publisher\n"
          "  --size BYTES [64]  --subscribers S [100]  --conns N [10000]\n"
          "  --settle-ms MS [1000]  --idle-ms MS [3000]: silence that ends a subscriber\n"
          "  --server-pid PID   report the server's CPU time (and, for idle, memory)\n"
          "  --json             last line as JSON\n",
          f);
}

static void bb_defaults(struct bb_opts *o, const char *cmd)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->label = "server";
    o->count = strcmp(cmd, "pubsub") == 0 ? 1000000 : 20000;
    o->warmup = 1000;
    o->window = 1000;
    o->batch = 16;
    o->size = 64;
    o->subs = 100;
    o->conns = 10000;
    o->settle_ms = 1000;
    o->idle_ms = 3000;
}

/* One option. @return 0, 1 for --help, -1 (message printed). The numeric
 * options' names come from bb_long_opts, which lists them in enum order. */
static int bb_option(struct bb_opts *o, int opt, const char *arg)
{
    for (size_t i = 0; i < sizeof(bb_nums) / sizeof(bb_nums[0]); i++) {
        const struct bb_num *n = &bb_nums[i];

        if (n->opt == opt)
            return bench_parse_u64(arg, bb_long_opts[opt - OPT_HOST].name, n->min, n->max,
                                   (uint64_t *)((char *)o + n->off));
    }
    switch (opt) {
    case OPT_HOST:
        o->host = arg;
        return 0;
    case OPT_CHANNEL:
        o->channel = arg;
        return 0;
    case OPT_LABEL:
        o->label = arg;
        return 0;
    case OPT_REPLY_OFF:
        o->reply_off = 1;
        return 0;
    case OPT_PREFORMATTED:
        o->preformatted = 1;
        return 0;
    case OPT_JSON:
        o->json = 1;
        return 0;
    case OPT_HELP:
        return 1;
    default:
        return -1; /* getopt said what was wrong */
    }
}

/* The options of @p argv (argv[0] is the command). @return 0, 1 (--help), -1. */
static int bb_parse(int argc, char **argv, struct bb_opts *o, char *chan, size_t chan_cap)
{
    int opt, rc;

    bb_defaults(o, argv[0]);
    while ((opt = getopt_long(argc, argv, "", bb_long_opts, NULL)) != -1) {
        rc = bb_option(o, opt, optarg);
        if (rc != 0)
            return rc;
    }
    if (optind != argc || o->port == 0) {
        fprintf(stderr, BB_NAME ": %s\n", o->port == 0 ? "--port is required" : "stray argument");
        return -1;
    }
    if (o->window < o->batch) {
        fprintf(stderr, BB_NAME ": --window must be at least --batch\n");
        return -1;
    }
    if (o->channel == NULL) {
        snprintf(chan, chan_cap, "bb.%s", argv[0]);
        o->channel = chan;
    }
    return 0;
}

/* ------------------------------------------------------------- the server */

/* The server's user + system CPU time in ns, from /proc; 0 without --server-pid. */
static uint64_t bb_server_cpu_ns(const struct bb_opts *o)
{
    char path[64], line[1024];
    unsigned long ut = 0, st = 0;
    const char *p;
    FILE *f;

    /* No server named: nothing to read. */
    if (o->server_pid == 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%" PRIu64 "/stat", o->server_pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    p = fgets(line, sizeof(line), f);
    fclose(f);
    /* The command name is in parentheses and may hold spaces: skip past it. */
    p = p != NULL ? strrchr(line, ')') : NULL;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (uint64_t)(ut + st) * (1000000000u / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* Our children's user + system CPU time in ns (getrusage). */
static uint64_t bb_children_cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_CHILDREN, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

/* One "Key:   N kB" line of /proc/PID/status, in KiB. @return 0 or -1. */
static int bb_status_kib(uint64_t pid, const char *key, uint64_t *kib)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    int rc = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%" PRIu64 "/status", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, BB_NAME ": %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (rc < 0 && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            rc = sscanf(line + klen + 1, "%" SCNu64, kib) == 1 ? 0 : -1;
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------ connections */

static redisContext *bb_connect(const struct bb_opts *o)
{
    redisContext *c = redisConnect(o->host, (int)o->port);

    /* hiredis sets TCP_NODELAY on the connections it makes. */
    if (c == NULL || c->err) {
        fprintf(stderr, BB_NAME "[%ld]: connect %s:%" PRIu64 ": %s\n", (long)getpid(), o->host,
                o->port, c != NULL ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Print why @p c failed. @return -1. */
static int bb_ctx_fail(const redisContext *c, const char *what)
{
    fprintf(stderr, BB_NAME "[%ld]: %s: %s\n", (long)getpid(), what,
            c->err ? c->errstr : "unexpected reply");
    return -1;
}

static int bb_subscribe(redisContext *c, const char *channel)
{
    redisReply *r = redisCommand(c, "SUBSCRIBE %s", channel);
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
             r->element[0]->type == REDIS_REPLY_STRING &&
             strcmp(r->element[0]->str, "subscribe") == 0;

    if (!ok && r != NULL && r->type == REDIS_REPLY_ERROR)
        fprintf(stderr, BB_NAME ": SUBSCRIBE %s: %s\n", channel, r->str);
    else if (!ok)
        bb_ctx_fail(c, "SUBSCRIBE");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* Write everything hiredis has buffered for @p c (the socket blocks). */
static int bb_flush(redisContext *c)
{
    int done = 0;

    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return bb_ctx_fail(c, "write");
    return 0;
}

/* --------------------------------------------------------------- messages */

static void bb_stamp(uint8_t *buf, uint64_t ts, uint64_t seq)
{
    memcpy(buf, &ts, sizeof(ts));
    memcpy(buf + sizeof(ts), &seq, sizeof(seq));
}

/* A pushed message ["message", channel, payload of @p size bytes]: its
 * send time and sequence number. @return 0, or -1 for anything else. */
static int bb_message(const redisReply *r, uint64_t size, uint64_t *ts, uint64_t *seq)
{
    const redisReply *p;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return -1;
    p = r->element[0];
    if (p->type != REDIS_REPLY_STRING || p->len != 7 || memcmp(p->str, "message", 7) != 0)
        return -1;
    p = r->element[2];
    if (p->type != REDIS_REPLY_STRING || (uint64_t)p->len != size)
        return -1;
    memcpy(ts, p->str, sizeof(*ts));
    memcpy(seq, p->str + sizeof(*ts), sizeof(*seq));
    return 0;
}

/* What one subscriber connection saw. */
struct bb_seq {
    uint64_t next; /* the sequence number expected */
    uint64_t received, skipped, reordered, bad;
    uint64_t first_ns, last_ns;
    int ended; /* reached --count, or stopped (silence, hang-up) */
    int hung_up;
};

static void bb_seq_note(struct bb_seq *s, uint64_t seq, uint64_t now)
{
    if (s->received++ == 0)
        s->first_ns = now;
    s->last_ns = now;
    if (seq == s->next) {
        s->next++;
    } else if (seq > s->next) {
        s->skipped += seq - s->next; /* a gap: lost, unless they come late */
        s->next = seq + 1;
    } else {
        s->reordered++; /* late or duplicate */
    }
}

/* ------------------------------------------------------------------ a run */

/* One subscriber connection's results, written once by its process. */
struct bb_subres {
    _Atomic uint64_t received, skipped, reordered, bad, first_ns, last_ns, hung_up;
};

/* The publisher's results, written once by it. */
struct bb_pubres {
    _Atomic uint64_t sent, replies, errors, start_ns, end_ns;
};

struct bb_run {
    const struct bb_opts *o;
    unsigned nsubs;
    struct bench_pipe ready; /* subscriber process -> publisher: one byte */
    /* Shared: */
    struct bb_pubres *pub;
    struct bb_subres *sub;     /* nsubs entries */
    _Atomic uint64_t *samples; /* nsubs * count: connection i's from i * count */
    size_t shared_len;
    /* The parent's: */
    uint64_t wall_ns, server_cpu_ns, client_cpu_ns;
};

static void bb_sub_store(struct bb_subres *r, const struct bb_seq *s)
{
    /* relaxed, all: the parent reads them after waitpid() on us. */
    atomic_store_explicit(&r->received, s->received, memory_order_relaxed);
    atomic_store_explicit(&r->skipped, s->skipped, memory_order_relaxed);
    atomic_store_explicit(&r->reordered, s->reordered, memory_order_relaxed);
    atomic_store_explicit(&r->bad, s->bad, memory_order_relaxed);
    atomic_store_explicit(&r->first_ns, s->first_ns, memory_order_relaxed);
    atomic_store_explicit(&r->last_ns, s->last_ns, memory_order_relaxed);
    atomic_store_explicit(&r->hung_up, (uint64_t)s->hung_up, memory_order_relaxed);
}

/* Account for reply @p r, read at @p now by connection @p i. */
static void bb_note(struct bb_run *run, unsigned i, struct bb_seq *s, const redisReply *r,
                    uint64_t now)
{
    uint64_t ts, seq, count = run->o->count;

    if (bb_message(r, run->o->size, &ts, &seq) < 0) {
        s->bad++;
        return;
    }
    /* relaxed: the parent reads samples after waitpid() on us. */
    if (s->received < count)
        atomic_store_explicit(&run->samples[(uint64_t)i * count + s->received], now - ts,
                              memory_order_relaxed);
    bb_seq_note(s, seq, now);
    s->ended = s->received >= count;
}

static int bb_run_alloc(struct bb_run *run, const struct bb_opts *o, unsigned nsubs)
{
    uint64_t nsamples = (uint64_t)nsubs * o->count;
    size_t head = BENCH_BLOCK + (size_t)nsubs * sizeof(struct bb_subres);
    char *p;

    memset(run, 0, sizeof(*run));
    run->o = o;
    run->nsubs = nsubs;
    run->ready = (struct bench_pipe)BENCH_PIPE_INIT;
    /* More samples than we mean to keep in memory. */
    if (nsamples > BB_SAMPLES_MAX) {
        fprintf(stderr, BB_NAME ": %" PRIu64 " latency samples, at most %llu\n", nsamples,
                BB_SAMPLES_MAX);
        return -1;
    }
    head = (head + BENCH_BLOCK - 1) / BENCH_BLOCK * BENCH_BLOCK;
    run->shared_len = head + (size_t)nsamples * sizeof(uint64_t);
    p = bench_shared_alloc(run->shared_len);
    if (p == NULL)
        return -1;
    run->pub = (struct bb_pubres *)p;
    run->sub = (struct bb_subres *)(p + BENCH_BLOCK);
    run->samples = (_Atomic uint64_t *)(p + head);
    /* Fault the samples in now, in the parent, rather than while timing. */
    bench_samples_touch(run->samples, (size_t)nsamples);
    return 0;
}

static void bb_run_free(struct bb_run *run)
{
    bench_shared_free(run->pub, run->shared_len);
    run->pub = NULL;
}

/* ------------------------------------------------------------ publishing */

struct bb_pub {
    redisContext *c;
    const struct bb_opts *o;
    uint8_t *buf;
    char *cmd; /* --preformatted: the whole PUBLISH command */
    size_t cmd_len;
    uint64_t sent, outstanding, replies, errors;
};

/* Format the PUBLISH command once; its payload is its last argument, just
 * before the final CRLF. @return 0 or -1. */
static int bb_pub_preformat(struct bb_pub *p)
{
    int len =
        redisFormatCommand(&p->cmd, "PUBLISH %s %b", p->o->channel, p->buf, (size_t)p->o->size);

    if (len < 0) {
        fprintf(stderr, BB_NAME ": cannot format PUBLISH\n");
        return -1;
    }
    p->cmd_len = (size_t)len;
    return 0;
}

/* Queue PUBLISH of message @p seq, stamped now. */
static int bb_pub_append(struct bb_pub *p, uint64_t seq)
{
    const struct bb_opts *o = p->o;
    int rc;

    if (p->cmd != NULL) {
        bb_stamp((uint8_t *)p->cmd + p->cmd_len - 2 - o->size, bench_now_ns(), seq);
        rc = redisAppendFormattedCommand(p->c, p->cmd, p->cmd_len);
    } else {
        bb_stamp(p->buf, bench_now_ns(), seq);
        rc = redisAppendCommand(p->c, "PUBLISH %s %b", o->channel, p->buf, (size_t)o->size);
    }
    return rc == REDIS_OK ? 0 : bb_ctx_fail(p->c, "PUBLISH");
}

/* Count one reply to a PUBLISH (an integer: the receivers). */
static void bb_pub_reply(struct bb_pub *p, redisReply *r)
{
    p->outstanding--;
    p->replies++;
    if (r->type != REDIS_REPLY_INTEGER && p->errors++ == 0)
        fprintf(stderr, BB_NAME ": first failed PUBLISH: %s\n",
                r->type == REDIS_REPLY_ERROR ? r->str : "reply not an integer");
    freeReplyObject(r);
}

/* Take the replies that have arrived, without waiting for more. */
static int bb_pub_drain(struct bb_pub *p)
{
    char buf[16384];
    ssize_t n;
    void *r;

    while ((n = recv(p->c->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        if (redisReaderFeed(p->c->reader, buf, (size_t)n) != REDIS_OK)
            return bb_ctx_fail(p->c, "reply parser");
    /* A hang-up, or a real error rather than "nothing more yet". */
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        fprintf(stderr, BB_NAME ": publisher: %s\n",
                n == 0 ? "the server closed the connection" : strerror(errno));
        return -1;
    }
    for (;;) {
        if (redisGetReplyFromReader(p->c, &r) != REDIS_OK)
            return bb_ctx_fail(p->c, "reply parser");
        if (r == NULL)
            return 0;
        bb_pub_reply(p, r);
    }
}

/* Wait (blocking) until at most @p max replies are outstanding. */
static int bb_pub_wait(struct bb_pub *p, uint64_t max)
{
    while (p->outstanding > max) {
        void *r;

        if (redisGetReply(p->c, &r) != REDIS_OK)
            return bb_ctx_fail(p->c, "PUBLISH reply");
        bb_pub_reply(p, r);
        if (bb_pub_drain(p) < 0)
            return -1;
    }
    return 0;
}

static void bb_sleep_until(uint64_t when_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(when_ns / 1000000000u),
                          .tv_nsec = (long)(when_ns % 1000000000u)};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* After the last PUBLISH: every reply read, or, under CLIENT REPLY OFF,
 * one round trip that the server answers only after all of them. */
static int bb_pub_end(struct bb_pub *p)
{
    redisReply *r;
    int ok;

    if (!p->o->reply_off)
        return bb_pub_wait(p, 0);
    r = redisCommand(p->c, "CLIENT REPLY ON");
    ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
    if (!ok)
        bb_ctx_fail(p->c, "CLIENT REPLY ON");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* Publish --count messages: each stamped as it is formatted, written every
 * --batch commands (every one when paced), replies taken as they come. */
static int bb_pub_all(struct bb_pub *p)
{
    const struct bb_opts *o = p->o;
    uint64_t batch = o->rate > 0 ? 1 : o->batch;
    uint64_t start = bench_now_ns();

    for (uint64_t i = 0; i < o->count; i++) {
        if (o->rate > 0)
            bb_sleep_until(start + (uint64_t)((double)i * 1e9 / (double)o->rate));
        if (bb_pub_append(p, i) < 0)
            return -1;
        p->sent++;
        p->outstanding += o->reply_off ? 0 : 1;
        /* The batch is not full yet. */
        if ((i + 1) % batch != 0 && i + 1 != o->count)
            continue;
        if (bb_flush(p->c) < 0)
            return -1;
        if (!o->reply_off && (bb_pub_drain(p) < 0 || bb_pub_wait(p, o->window - batch) < 0))
            return -1;
    }
    return bb_pub_end(p);
}

static void bb_pub_store(struct bb_pubres *r, const struct bb_pub *p, uint64_t t0, uint64_t t1)
{
    /* relaxed, all: the parent reads them after waitpid() on us. */
    atomic_store_explicit(&r->sent, p->sent, memory_order_relaxed);
    atomic_store_explicit(&r->replies, p->replies, memory_order_relaxed);
    atomic_store_explicit(&r->errors, p->errors, memory_order_relaxed);
    atomic_store_explicit(&r->start_ns, t0, memory_order_relaxed);
    atomic_store_explicit(&r->end_ns, t1, memory_order_relaxed);
}

/* The publisher process: waits for the subscriber process, then publishes. */
static int bb_pub_main(void *arg)
{
    struct bb_run *run = arg;
    struct bb_pub p = {.o = run->o};
    uint64_t t0;
    int rc = -1;

    bench_fd_close(&run->ready.wr);
    p.buf = bench_calloc(run->o->size);
    if (p.buf == NULL)
        return -1;
    memset(p.buf, 'x', run->o->size);
    p.c = bb_connect(run->o);
    if (p.c == NULL || (run->o->preformatted && bb_pub_preformat(&p) < 0) ||
        bench_ready_wait(run->ready.rd, 1) < 0)
        goto done;
    /* Paced sends wake on time: no 50 µs timer slack. */
    if (run->o->rate > 0)
        prctl(PR_SET_TIMERSLACK, 1ul, 0ul, 0ul, 0ul);
    /* No reply comes to CLIENT REPLY OFF itself. */
    if (run->o->reply_off && redisAppendCommand(p.c, "CLIENT REPLY OFF") != REDIS_OK)
        goto done;
    t0 = bench_now_ns();
    rc = bb_pub_all(&p);
    bb_pub_store(run->pub, &p, t0, bench_now_ns());
done:
    redisFree(p.c);
    redisFreeCommand(p.cmd);
    free(p.buf);
    return rc;
}

/* ------------------------------------------------------------- subscribing */

/* Read pushes with redisGetReply() until --count arrived, --idle-ms of
 * silence, or the server hangs up. */
static void bb_sub_loop(struct bb_run *run, redisContext *c, struct bb_seq *s)
{
    while (!s->ended) {
        redisReply *r = NULL;

        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            /* SO_RCVTIMEO expired: silence; anything else: the connection is gone. */
            int silent = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);

            if (!silent)
                bb_ctx_fail(c, "subscriber");
            s->hung_up = !silent;
            return;
        }
        bb_note(run, 0, s, r, bench_now_ns());
        freeReplyObject(r);
    }
}

/* The subscriber process of `pubsub`. */
static int bb_sub_main(void *arg)
{
    struct bb_run *run = arg;
    const struct bb_opts *o = run->o;
    struct timeval tv = {.tv_sec = (time_t)(o->idle_ms / 1000),
                         .tv_usec = (suseconds_t)(o->idle_ms % 1000) * 1000};
    struct bb_seq s = {0};
    redisContext *c;
    int rc = -1;

    bench_fd_close(&run->ready.rd);
    c = bb_connect(o);
    if (c == NULL || bb_subscribe(c, o->channel) < 0 || redisSetTimeout(c, tv) != REDIS_OK)
        goto done;
    if (bench_ready_post(run->ready.wr) < 0)
        goto done;
    bench_fd_close(&run->ready.wr);
    bb_sub_loop(run, c, &s);
    bb_sub_store(&run->sub[0], &s);
    rc = 0;
done:
    redisFree(c);
    return rc;
}

/* --------------------------------------------------------------- fan-out */

struct bb_fan_conn {
    redisContext *c; /* its socket non-blocking; its reader parses */
    struct bb_seq s;
};

/* Read what connection @p i has (one read: level-triggered epoll comes back). */
static void bb_fan_read(struct bb_run *run, struct bb_fan_conn *fc, unsigned i, char *buf)
{
    ssize_t n = read(fc->c->fd, buf, BB_READ_CHUNK);
    uint64_t now = bench_now_ns();
    void *r;

    /* Nothing after all, or interrupted: epoll will say so again. */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0 || redisReaderFeed(fc->c->reader, buf, (size_t)n) != REDIS_OK) {
        fprintf(stderr, BB_NAME ": fan-out subscriber %u: %s\n", i,
                n == 0 ? "the server closed the connection" : strerror(errno));
        fc->s.hung_up = 1;
        fc->s.ended = 1;
        return;
    }
    while (redisReaderGetReply(fc->c->reader, &r) == REDIS_OK && r != NULL) {
        bb_note(run, i, &fc->s, r, now);
        freeReplyObject(r);
    }
}

static void bb_fan_loop(struct bb_run *run, struct bb_fan_conn *fc, int ep, char *buf)
{
    struct epoll_event ev[64];
    unsigned ended = 0;

    while (ended < run->nsubs) {
        int n = epoll_wait(ep, ev, 64, (int)run->o->idle_ms);

        /* Silence for --idle-ms: what has not come is lost. */
        if (n == 0)
            return;
        if (n < 0 && errno != EINTR)
            return;
        for (int k = 0; k < n; k++) {
            unsigned i = ev[k].data.u32;

            bb_fan_read(run, &fc[i], i, buf);
            if (!fc[i].s.ended)
                continue;
            ended++;
            epoll_ctl(ep, EPOLL_CTL_DEL, fc[i].c->fd, NULL);
        }
    }
}

/* Connect and subscribe connection @p i, and watch it. */
static int bb_fan_open(struct bb_run *run, struct bb_fan_conn *fc, unsigned i, int ep)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};

    fc->c = bb_connect(run->o);
    if (fc->c == NULL || bb_subscribe(fc->c, run->o->channel) < 0)
        return -1;
    /* From here on we read the socket ourselves and feed its hiredis reader. */
    if (fcntl(fc->c->fd, F_SETFL, fcntl(fc->c->fd, F_GETFL) | O_NONBLOCK) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, fc->c->fd, &ev) < 0) {
        fprintf(stderr, BB_NAME ": fan-out subscriber %u: %s\n", i, strerror(errno));
        return -1;
    }
    return 0;
}

/* The subscriber process of `fanout`: every connection in one epoll loop. */
static int bb_fan_main(void *arg)
{
    struct bb_run *run = arg;
    struct bb_fan_conn *fc = calloc(run->nsubs, sizeof(*fc));
    char *buf = malloc(BB_READ_CHUNK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int rc = -1;

    bench_fd_close(&run->ready.rd);
    if (fc == NULL || buf == NULL || ep < 0)
        goto done;
    for (unsigned i = 0; i < run->nsubs; i++)
        if (bb_fan_open(run, &fc[i], i, ep) < 0)
            goto done;
    if (bench_ready_post(run->ready.wr) < 0)
        goto done;
    bench_fd_close(&run->ready.wr);
    bb_fan_loop(run, fc, ep, buf);
    for (unsigned i = 0; i < run->nsubs; i++)
        bb_sub_store(&run->sub[i], &fc[i].s);
    rc = 0;
done:
    for (unsigned i = 0; fc != NULL && i < run->nsubs; i++)
        redisFree(fc[i].c);
    if (ep >= 0)
        close(ep);
    free(fc);
    free(buf);
    return rc;
}

/* ------------------------------------------------------ running and reading */

/* Fork the subscriber process, then the publisher; reap both; time them. */
static int bb_run_procs(struct bb_run *run, bench_child_fn sub_fn)
{
    struct bench_procs ps = {0};
    uint64_t cpu0 = bb_server_cpu_ns(run->o), ccpu0 = bb_children_cpu_ns();
    uint64_t t0 = bench_now_ns();
    int rc = bench_pipe_open(&run->ready);

    if (rc == 0)
        rc = bench_spawn(&ps, sub_fn, run);
    if (rc == 0)
        rc = bench_spawn(&ps, bb_pub_main, run);
    /* Our ends closed, the publisher sees EOF if the subscriber dies early. */
    bench_pipe_close(&run->ready);
    if (bench_reap(&ps) < 0)
        rc = -1;
    run->wall_ns = bench_now_ns() - t0;
    run->server_cpu_ns = bb_server_cpu_ns(run->o) - cpu0;
    run->client_cpu_ns = bb_children_cpu_ns() - ccpu0;
    return rc;
}

/* Totals over the subscriber connections, read after the reap. */
struct bb_total {
    uint64_t received, skipped, reordered, bad, hung_up;
    uint64_t first_ns, last_ns;
    uint64_t sent, errors, pub_ns;
};

static uint64_t bb_load(_Atomic uint64_t *v)
{
    /* relaxed: its writer was reaped; waitpid() ordered its stores first. */
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void bb_total_read(struct bb_run *run, struct bb_total *t)
{
    memset(t, 0, sizeof(*t));
    t->first_ns = UINT64_MAX;
    for (unsigned i = 0; i < run->nsubs; i++) {
        struct bb_subres *r = &run->sub[i];
        uint64_t n = bb_load(&r->received);

        t->received += n;
        t->skipped += bb_load(&r->skipped);
        t->reordered += bb_load(&r->reordered);
        t->bad += bb_load(&r->bad);
        t->hung_up += bb_load(&r->hung_up);
        if (n > 0 && bb_load(&r->first_ns) < t->first_ns)
            t->first_ns = bb_load(&r->first_ns);
        if (n > 0 && bb_load(&r->last_ns) > t->last_ns)
            t->last_ns = bb_load(&r->last_ns);
    }
    if (t->first_ns == UINT64_MAX)
        t->first_ns = t->last_ns = 0;
    t->sent = bb_load(&run->pub->sent);
    t->errors = bb_load(&run->pub->errors);
    t->pub_ns = bb_load(&run->pub->end_ns) - bb_load(&run->pub->start_ns);
}

/* Move every connection's samples together (they sit at i * count, and a
 * connection that lost messages has fewer). @return the samples kept. */
static uint64_t bb_samples_pack(struct bb_run *run)
{
    uint64_t count = run->o->count, out = 0;

    for (unsigned i = 0; i < run->nsubs; i++) {
        uint64_t n = bb_load(&run->sub[i].received);

        n = n < count ? n : count;
        for (uint64_t k = 0; k < n; k++) {
            /* relaxed: the writer was reaped; only we touch them now. */
            uint64_t v = bb_load(&run->samples[(uint64_t)i * count + k]);

            atomic_store_explicit(&run->samples[out++], v, memory_order_relaxed);
        }
    }
    return out;
}

/* The figures common to pubsub and fanout, in @p rep and on stdout. */
static void bb_report_common(struct bench_report *rep, const struct bb_run *run,
                             const struct bb_total *t, uint64_t expected)
{
    double secs = (double)run->wall_ns / 1e9;

    printf("sent %" PRIu64 ", received %" PRIu64 " of %" PRIu64 " (lost %" PRIu64 ", gaps %" PRIu64
           ", late/duplicate %" PRIu64 ", malformed %" PRIu64 ", hung up %" PRIu64
           "), PUBLISH errors %" PRIu64 "\n",
           t->sent, t->received, expected,
           expected - (t->received < expected ? t->received : expected), t->skipped, t->reordered,
           t->bad, t->hung_up, t->errors);
    printf("CPU over the run's %.2f s: server %.2f CPUs, client processes %.2f CPUs\n", secs,
           (double)run->server_cpu_ns / 1e9 / secs, (double)run->client_cpu_ns / 1e9 / secs);
    bench_report_u64(rep, "received", t->received);
    bench_report_u64(rep, "lost", expected - (t->received < expected ? t->received : expected));
    bench_report_u64(rep, "errors", t->errors + t->bad + t->hung_up);
    bench_report_f64(rep, "pub_msgs_per_s", bench_per_s(t->sent, t->pub_ns));
    bench_report_f64(rep, "server_cpus", (double)run->server_cpu_ns / (double)run->wall_ns);
    bench_report_f64(rep, "client_cpus", (double)run->client_cpu_ns / (double)run->wall_ns);
}

static void bb_report_lat(struct bench_report *rep, const struct bench_stats *st)
{
    bench_report_u64(rep, "p50_ns", st->p50);
    bench_report_u64(rep, "p99_ns", st->p99);
    bench_report_u64(rep, "p999_ns", st->p999);
}

static const char *bb_pub_mode(const struct bb_opts *o)
{
    if (o->rate > 0)
        return o->preformatted ? "paced-preformatted" : "paced";
    if (o->reply_off)
        return o->preformatted ? "reply-off-preformatted" : "reply-off";
    return o->preformatted ? "window-preformatted" : "window";
}

/* ----------------------------------------------------------------- commands */

static int bb_cmd_pubsub(const struct bb_opts *o)
{
    struct bench_report rep = {0};
    struct bench_stats st;
    struct bb_total t;
    struct bb_run run;
    int rc = -1;

    if (bb_run_alloc(&run, o, 1) < 0)
        return BENCH_EXIT_FAIL;
    printf("pubsub against %s: %" PRIu64 " messages of %" PRIu64 " B on '%s', publisher %s "
           "(window %" PRIu64 ", batch %" PRIu64 ", rate %" PRIu64 "/s)\n",
           o->label, o->count, o->size, o->channel, bb_pub_mode(o), o->window, o->batch, o->rate);
    if (bb_run_procs(&run, bb_sub_main) < 0)
        goto done;
    bb_total_read(&run, &t);
    if (bench_stats_compute(run.samples, (size_t)bb_samples_pack(&run), &st) < 0)
        goto done;
    bench_stats_print("one-way latency", &st);
    printf("%.0f msg/s at the subscriber (first to last received), %.0f msg/s published\n",
           bench_per_s(t.received > 1 ? t.received - 1 : 0, t.last_ns - t.first_ns),
           bench_per_s(t.sent, t.pub_ns));
    bench_report_str(&rep, "server", o->label);
    bench_report_str(&rep, "publisher", bb_pub_mode(o));
    bench_report_f64(&rep, "msgs_per_s",
                     bench_per_s(t.received > 1 ? t.received - 1 : 0, t.last_ns - t.first_ns));
    bb_report_lat(&rep, &st);
    bb_report_common(&rep, &run, &t, o->count);
    bench_report_emit(&rep, o->json);
    rc = 0;
done:
    bb_run_free(&run);
    return rc == 0 ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}

/* The worst connection's p50 and p99 (each connection's own percentiles). */
static int bb_fan_worst(struct bb_run *run, uint64_t *p50, uint64_t *p99)
{
    *p50 = *p99 = 0;
    for (unsigned i = 0; i < run->nsubs; i++) {
        uint64_t n = bb_load(&run->sub[i].received);
        struct bench_stats st;

        n = n < run->o->count ? n : run->o->count;
        if (bench_stats_compute(run->samples + (uint64_t)i * run->o->count, (size_t)n, &st) < 0)
            return -1;
        *p50 = st.p50 > *p50 ? st.p50 : *p50;
        *p99 = st.p99 > *p99 ? st.p99 : *p99;
    }
    return 0;
}

static int bb_cmd_fanout(const struct bb_opts *o)
{
    struct bench_report rep = {0};
    uint64_t w50, w99, expected = o->subs * o->count;
    struct bench_stats st;
    struct bb_total t;
    struct bb_run run;
    int rc = -1;

    if (bench_nofile_raise(o->subs + 64) < 0 || bb_run_alloc(&run, o, (unsigned)o->subs) < 0)
        return BENCH_EXIT_FAIL;
    printf("fanout against %s: %" PRIu64 " messages of %" PRIu64 " B on '%s' to %" PRIu64
           " subscriber connections (one process, epoll), publisher %s\n",
           o->label, o->count, o->size, o->channel, o->subs, bb_pub_mode(o));
    if (bb_run_procs(&run, bb_fan_main) < 0 || bb_fan_worst(&run, &w50, &w99) < 0)
        goto done;
    bb_total_read(&run, &t);
    if (bench_stats_compute(run.samples, (size_t)bb_samples_pack(&run), &st) < 0)
        goto done;
    bench_stats_print("one-way latency, all", &st);
    printf("worst connection: p50 %" PRIu64 " ns, p99 %" PRIu64 " ns\n", w50, w99);
    printf("%.0f deliveries/s (first to last received, all connections)\n",
           bench_per_s(t.received, t.last_ns - t.first_ns));
    bench_report_str(&rep, "server", o->label);
    bench_report_f64(&rep, "deliveries_per_s", bench_per_s(t.received, t.last_ns - t.first_ns));
    bb_report_lat(&rep, &st);
    bench_report_u64(&rep, "worst_p50_ns", w50);
    bench_report_u64(&rep, "worst_p99_ns", w99);
    bb_report_common(&rep, &run, &t, expected);
    bench_report_emit(&rep, o->json);
    rc = 0;
done:
    bb_run_free(&run);
    return rc == 0 ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}

/* Read message @p i on @p sub. @return its one-way latency (>= 1), or 0. */
static uint64_t bb_pp_recv(redisContext *sub, const struct bb_opts *o, uint64_t i)
{
    uint64_t ts, seq, now;
    redisReply *r = NULL;
    int ok;

    if (redisGetReply(sub, (void **)&r) != REDIS_OK) {
        bb_ctx_fail(sub, "pingpong: waiting for the message");
        return 0;
    }
    now = bench_now_ns();
    ok = bb_message(r, o->size, &ts, &seq) == 0 && seq == i;
    freeReplyObject(r);
    /* Another message, or none of ours: the bus lost or reordered one. */
    if (!ok) {
        fprintf(stderr, BB_NAME ": pingpong: message %" PRIu64 " did not come next\n", i);
        return 0;
    }
    return now > ts ? now - ts : 1;
}

/* One ping-pong round: publish message @p i, read it back on @p sub, then
 * the PUBLISH reply. @return its one-way latency, or 0 on failure. */
static uint64_t bb_pp_round(redisContext *pub, redisContext *sub, const struct bb_opts *o,
                            uint8_t *buf, uint64_t i)
{
    redisReply *r = NULL;
    uint64_t lat;

    bb_stamp(buf, bench_now_ns(), i);
    if (redisAppendCommand(pub, "PUBLISH %s %b", o->channel, buf, (size_t)o->size) != REDIS_OK ||
        bb_flush(pub) < 0)
        return 0;
    lat = bb_pp_recv(sub, o, i);
    if (lat == 0)
        return 0;
    if (redisGetReply(pub, (void **)&r) != REDIS_OK || r->type != REDIS_REPLY_INTEGER) {
        bb_ctx_fail(pub, "pingpong: PUBLISH reply");
        lat = 0;
    }
    freeReplyObject(r);
    return lat;
}

static int bb_pp_loop(redisContext *pub, redisContext *sub, const struct bb_opts *o,
                      _Atomic uint64_t *samples)
{
    uint8_t *buf = bench_calloc(o->size);

    if (buf == NULL)
        return -1;
    memset(buf, 'x', o->size);
    for (uint64_t i = 0; i < o->warmup + o->count; i++) {
        uint64_t lat = bb_pp_round(pub, sub, o, buf, i);

        if (lat == 0 || bench_interrupted()) {
            free(buf);
            return -1;
        }
        /* relaxed: only this thread reads them, later. */
        if (i >= o->warmup)
            atomic_store_explicit(&samples[i - o->warmup], lat, memory_order_relaxed);
    }
    free(buf);
    return 0;
}

static int bb_cmd_pingpong(const struct bb_opts *o)
{
    struct timeval tv = {.tv_sec = (time_t)(o->idle_ms / 1000),
                         .tv_usec = (suseconds_t)(o->idle_ms % 1000) * 1000};
    _Atomic uint64_t *samples = calloc(o->count, sizeof(*samples));
    redisContext *sub = bb_connect(o), *pub = bb_connect(o);
    struct bench_report rep = {0};
    uint64_t cpu0 = bb_server_cpu_ns(o), t0 = bench_now_ns(), wall;
    struct bench_stats st;
    int rc = BENCH_EXIT_FAIL;

    printf("pingpong against %s: %" PRIu64 " rounds (+%" PRIu64 " warm-up) of %" PRIu64
           " B on '%s': publish, wait for it at the subscriber, read the reply\n",
           o->label, o->count, o->warmup, o->size, o->channel);
    if (samples == NULL || sub == NULL || pub == NULL || bb_subscribe(sub, o->channel) < 0 ||
        redisSetTimeout(sub, tv) != REDIS_OK || bb_pp_loop(pub, sub, o, samples) < 0 ||
        bench_stats_compute(samples, (size_t)o->count, &st) < 0)
        goto done;
    wall = bench_now_ns() - t0;
    bench_stats_print("one-way latency", &st);
    bench_report_str(&rep, "server", o->label);
    bb_report_lat(&rep, &st);
    bench_report_f64(&rep, "server_cpus", (double)(bb_server_cpu_ns(o) - cpu0) / (double)wall);
    bench_report_emit(&rep, o->json);
    rc = BENCH_EXIT_OK;
done:
    redisFree(sub);
    redisFree(pub);
    free(samples);
    return rc;
}

/* ------------------------------------------------------------------ idle */

/* Send PING on @p n connections, then read each one's PONG. */
static int bb_idle_ping(const int *fd, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (send(fd[i], bb_ping, sizeof(bb_ping) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(bb_ping) - 1)
            return -1;
    for (unsigned i = 0; i < n; i++) {
        char buf[sizeof(bb_pong)];
        size_t got = 0;

        while (got < sizeof(bb_pong) - 1) {
            ssize_t k = recv(fd[i], buf + got, sizeof(bb_pong) - 1 - got, 0);

            if (k <= 0)
                return -1;
            got += (size_t)k;
        }
        if (memcmp(buf, bb_pong, sizeof(bb_pong) - 1) != 0)
            return -1;
    }
    return 0;
}

/* Open @p n connections to @p ai into @p fd. @return 0 or -1 (message printed). */
static int bb_idle_open(const struct addrinfo *ai, int *fd, unsigned n)
{
    struct timeval tv = {.tv_sec = 10};

    for (unsigned i = 0; i < n; i++) {
        fd[i] = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd[i] < 0 || setsockopt(fd[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(fd[i], ai->ai_addr, ai->ai_addrlen) < 0) {
            fprintf(stderr, BB_NAME ": idle connection: %s\n", strerror(errno));
            return -1;
        }
    }
    if (bb_idle_ping(fd, n) < 0) {
        fprintf(stderr, BB_NAME ": idle connections: no PONG: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* Close with a reset (linger 0): no TIME_WAIT left to the next runs. */
static void bb_idle_close(int *fd, uint64_t n)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    for (uint64_t i = 0; i < n; i++) {
        if (fd[i] < 0)
            continue;
        setsockopt(fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd[i]);
    }
}

/* Open --conns connections, BB_IDLE_BATCH at a time so that no listen
 * backlog overflows. @return 0 or -1. */
static int bb_idle_all(const struct bb_opts *o, int *fd)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[16];
    int rc = 0;

    snprintf(port, sizeof(port), "%" PRIu64, o->port);
    if (getaddrinfo(o->host, port, &hints, &ai) != 0 || ai == NULL) {
        fprintf(stderr, BB_NAME ": cannot resolve %s\n", o->host);
        return -1;
    }
    for (uint64_t i = 0; rc == 0 && i < o->conns; i += BB_IDLE_BATCH) {
        uint64_t n = o->conns - i < BB_IDLE_BATCH ? o->conns - i : BB_IDLE_BATCH;

        rc = bb_idle_open(ai, fd + i, (unsigned)n);
    }
    freeaddrinfo(ai);
    return rc;
}

/* VmRSS and RssAnon of the server, in KiB. */
static int bb_idle_rss(const struct bb_opts *o, uint64_t kib[2])
{
    return bb_status_kib(o->server_pid, "VmRSS", &kib[0]) < 0 ||
                   bb_status_kib(o->server_pid, "RssAnon", &kib[1]) < 0
               ? -1
               : 0;
}

static void bb_idle_report(const struct bb_opts *o, const uint64_t a[2], const uint64_t b[2],
                           uint64_t open_ns)
{
    struct bench_report rep = {0};
    double delta = ((double)b[0] - (double)a[0]) / 1024.0;
    double anon = ((double)b[1] - (double)a[1]) / 1024.0;

    printf("VmRSS %" PRIu64 " KiB -> %" PRIu64 " KiB (+%.1f MiB, %.0f B per connection); "
           "RssAnon +%.1f MiB; opening took %.2f s\n",
           a[0], b[0], delta, delta * 1048576.0 / (double)o->conns, anon, (double)open_ns / 1e9);
    bench_report_str(&rep, "server", o->label);
    bench_report_u64(&rep, "conns", o->conns);
    bench_report_u64(&rep, "rss_before_kib", a[0]);
    bench_report_u64(&rep, "rss_after_kib", b[0]);
    bench_report_f64(&rep, "rss_delta_mib", delta);
    bench_report_f64(&rep, "anon_delta_mib", anon);
    bench_report_f64(&rep, "bytes_per_conn", delta * 1048576.0 / (double)o->conns);
    bench_report_emit(&rep, o->json);
}

static int bb_cmd_idle(const struct bb_opts *o)
{
    int *fd = malloc(o->conns * sizeof(*fd));
    uint64_t before[2], after[2], t0;
    int rc = BENCH_EXIT_FAIL;

    /* The server's memory is the point: without its pid there is nothing to measure. */
    if (o->server_pid == 0 || fd == NULL) {
        fprintf(stderr, BB_NAME ": idle needs --server-pid\n");
        free(fd);
        return BENCH_EXIT_USAGE;
    }
    memset(fd, -1, o->conns * sizeof(*fd));
    printf("idle against %s (pid %" PRIu64 "): %" PRIu64 " connections, one PING each, then "
           "%" PRIu64 " ms of rest\n",
           o->label, o->server_pid, o->conns, o->settle_ms);
    if (bench_nofile_raise(o->conns + 64) < 0 || bb_idle_rss(o, before) < 0)
        goto done;
    t0 = bench_now_ns();
    if (bb_idle_all(o, fd) < 0)
        goto done;
    t0 = bench_now_ns() - t0;
    usleep((useconds_t)(o->settle_ms * 1000));
    if (bb_idle_rss(o, after) < 0)
        goto done;
    bb_idle_report(o, before, after, t0);
    rc = BENCH_EXIT_OK;
done:
    bb_idle_close(fd, o->conns);
    free(fd);
    return rc;
}

/* -------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    char chan[64];
    struct bb_opts o;
    int rc;

    /* No command: say how to use us. */
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        bb_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? BENCH_EXIT_USAGE : BENCH_EXIT_OK;
    }
    rc = bb_parse(argc - 1, argv + 1, &o, chan, sizeof(chan));
    if (rc != 0) {
        bb_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    }
    bench_signals_install();
    if (strcmp(argv[1], "pubsub") == 0)
        return bb_cmd_pubsub(&o);
    if (strcmp(argv[1], "fanout") == 0)
        return bb_cmd_fanout(&o);
    if (strcmp(argv[1], "pingpong") == 0)
        return bb_cmd_pingpong(&o);
    if (strcmp(argv[1], "idle") == 0)
        return bb_cmd_idle(&o);
    fprintf(stderr, BB_NAME ": unknown command '%s'\n", argv[1]);
    bb_usage(stderr);
    return BENCH_EXIT_USAGE;
}
