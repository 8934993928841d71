/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge benchmark's run (bench_bridge.h): the server's CPU time and
 * memory from /proc, hiredis connections, stamped messages, and the
 * processes of one measurement (a publisher, and a subscriber process that
 * reads one connection or, for fan-out, many in one epoll loop), with the
 * totals and report lines they leave to the parent.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_bridge.h"

/* ------------------------------------------------------------- the server */

/* The server's user + system CPU time in ns, from /proc; 0 without --server-pid. */
uint64_t bb_server_cpu_ns(const struct bb_opts *o)
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
int bb_status_kib(uint64_t pid, const char *key, uint64_t *kib)
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

redisContext *bb_connect(const struct bb_opts *o)
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
int bb_ctx_fail(const redisContext *c, const char *what)
{
    fprintf(stderr, BB_NAME "[%ld]: %s: %s\n", (long)getpid(), what,
            c->err ? c->errstr : "unexpected reply");
    return -1;
}

int bb_subscribe(redisContext *c, const char *channel)
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
int bb_flush(redisContext *c)
{
    int done = 0;

    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return bb_ctx_fail(c, "write");
    return 0;
}

/* --------------------------------------------------------------- messages */

void bb_stamp(uint8_t *buf, uint64_t ts, uint64_t seq)
{
    memcpy(buf, &ts, sizeof(ts));
    memcpy(buf + sizeof(ts), &seq, sizeof(seq));
}

/* A pushed message ["message", channel, payload of @p size bytes]: its
 * send time and sequence number. @return 0, or -1 for anything else. */
int bb_message(const redisReply *r, uint64_t size, uint64_t *ts, uint64_t *seq)
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

int bb_run_alloc(struct bb_run *run, const struct bb_opts *o, unsigned nsubs)
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

void bb_run_free(struct bb_run *run)
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
int bb_sub_main(void *arg)
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
int bb_fan_main(void *arg)
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
int bb_run_procs(struct bb_run *run, bench_child_fn sub_fn)
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

uint64_t bb_load(_Atomic uint64_t *v)
{
    /* relaxed: its writer was reaped; waitpid() ordered its stores first. */
    return atomic_load_explicit(v, memory_order_relaxed);
}

void bb_total_read(struct bb_run *run, struct bb_total *t)
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
uint64_t bb_samples_pack(struct bb_run *run)
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
void bb_report_common(struct bench_report *rep, const struct bb_run *run, const struct bb_total *t,
                      uint64_t expected)
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

void bb_report_lat(struct bench_report *rep, const struct bench_stats *st)
{
    bench_report_u64(rep, "p50_ns", st->p50);
    bench_report_u64(rep, "p99_ns", st->p99);
    bench_report_u64(rep, "p999_ns", st->p999);
}

const char *bb_pub_mode(const struct bb_opts *o)
{
    if (o->rate > 0)
        return o->preformatted ? "paced-preformatted" : "paced";
    if (o->reply_off)
        return o->preformatted ? "reply-off-preformatted" : "reply-off";
    return o->preformatted ? "window-preformatted" : "window";
}
