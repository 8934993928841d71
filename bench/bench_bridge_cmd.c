/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge benchmark's commands (bench_bridge.h): pubsub and fanout,
 * which run a publisher and subscriber processes (bench_bridge.c);
 * pingpong, one message at a time between two connections of this
 * process; and idle, the server's memory for many idle connections.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_bridge.h"

static const char bb_ping[] = "*1\r\n$4\r\nPING\r\n";
static const char bb_pong[] = "+PONG\r\n";

/* ----------------------------------------------------------------- commands */

int bb_cmd_pubsub(const struct bb_opts *o)
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

int bb_cmd_fanout(const struct bb_opts *o)
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

int bb_cmd_pingpong(const struct bb_opts *o)
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

int bb_cmd_idle(const struct bb_opts *o)
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
