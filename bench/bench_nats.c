/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbus-nats-bench: federation through NATS (daemon/fed/) against a plain
 * cnats client pair through the same server. Each command runs two
 * processes: side A sends, side B receives (and, in pingpong, answers).
 * With --via shmbus, A is a process on bus --bus-a and B one on bus --bus-b,
 * and nothing joins the two buses but their shmbusd and the NATS server;
 * with --via nats, A and B are two cnats connections to --nats. Payloads
 * start with their send time (CLOCK_MONOTONIC ns: both sides share the
 * host), a sequence number and a tag that names the run, so receivers
 * measure one-way latency, count gaps and ignore what an earlier run left.
 * bench/nats.sh starts the server and the daemons and alternates the two.
 * As in shmbus-bench, the parent forks the sides, reaps them and prints
 * their figures; the last line is key=value pairs (or, with --json, JSON).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_nats.h"

/* A tag's low byte says what the message is; the rest names the run. */
#define NB_TAG_DATA  1u
#define NB_TAG_PRIME 2u
#define NB_TAG_KIND  0xffu
/* Until the first message crosses, the path is still being set up (the
 * exporter attaching to a new topic, a consumer being created): side A
 * sends a priming message this often, until B has one. */
#define NB_PRIME_EVERY_MS 20u
/* A receiver looks at the sender's state this often while nothing comes. */
#define NB_POLL_MS 100u

struct nb_shared {
    _Alignas(BENCH_BLOCK) _Atomic uint32_t primed; /* B: a priming message arrived */
    _Alignas(BENCH_BLOCK) _Atomic uint32_t done;   /* A: sent everything */
    _Atomic uint64_t start_ns;                     /* A: the first measured send */
    _Atomic uint64_t sent;
    _Atomic uint64_t dropped_send;                   /* A: lossy publishes a newer one overtook */
    _Atomic uint64_t timeouts;                       /* A (pingpong): pings never answered */
    _Alignas(BENCH_BLOCK) _Atomic uint64_t received; /* B's results */
    _Atomic uint64_t gaps;
    _Atomic uint64_t dups;
    _Atomic uint64_t dropped; /* by cnats on B's subscription (slow consumer) */
    _Atomic uint64_t last_ns;
    _Atomic uint64_t nsamples;
    _Alignas(BENCH_BLOCK) _Atomic uint64_t samples[];
};

struct nb_run {
    const struct nb_opts *o;
    const char *cmd;
    enum nb_kind kind;
    uint64_t tag;            /* the run's name, low byte clear */
    struct bench_pipe ready; /* B -> A: B is subscribed */
    struct nb_shared *sh;
    size_t sh_len;
};

/* ---------------------------------------------------------------- payload */

static void nb_stamp(uint8_t *buf, uint64_t ts, uint64_t seq, uint64_t tag)
{
    memcpy(buf, &ts, 8);
    memcpy(buf + 8, &seq, 8);
    memcpy(buf + 16, &tag, 8);
}

/* Read a payload of @p len bytes. @return its kind, or 0 when not of this run. */
static unsigned nb_parse(const struct nb_run *r, const uint8_t *buf, int len, uint64_t *ts,
                         uint64_t *seq)
{
    uint64_t tag;

    if (len < (int)NB_HEADER)
        return 0;
    memcpy(ts, buf, 8);
    memcpy(seq, buf + 8, 8);
    memcpy(&tag, buf + 16, 8);
    if ((tag & ~(uint64_t)NB_TAG_KIND) != r->tag)
        return 0;
    return (unsigned)(tag & NB_TAG_KIND);
}

/* relaxed, all of these: each field has one writer; the parent reads after
 * waitpid(), which orders the child's stores before its loads. */
static void nb_put(_Atomic uint64_t *v, uint64_t x)
{
    atomic_store_explicit(v, x, memory_order_relaxed);
}

static uint64_t nb_get(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* ------------------------------------------------------------------ sides */

static const char *nb_bus(const struct nb_run *r, int side_a)
{
    return side_a ? r->o->bus_a : r->o->bus_b;
}

static void nb_pin(const struct nb_opts *o, int side_a)
{
    int64_t cpu = side_a ? o->cpu_a : o->cpu_b;

    bench_pin_cpu(cpu >= 0, (int)cpu);
}

/* Side A before measuring: send priming messages until B has one (pingpong:
 * until one comes back). @return 0, or -1 when the path never opened. */
static int nb_prime(struct nb_run *r, struct nb_link *l, uint8_t *buf, uint8_t *in)
{
    uint64_t deadline = bench_now_ns() + r->o->prime_ms * 1000000u;
    uint64_t ts, seq;
    int echo = strcmp(r->cmd, "pingpong") == 0;
    int len;

    for (uint64_t k = 0; bench_now_ns() < deadline; k++) {
        nb_stamp(buf, bench_now_ns(), k, r->tag | NB_TAG_PRIME);
        if (nb_send(l, buf, r->o->size) < 0 || nb_flush(l) != 0)
            return -1;
        if (!echo) {
            usleep(NB_PRIME_EVERY_MS * 1000u);
            /* acquire: pairs with B's release store; nothing else is read. */
            if (atomic_load_explicit(&r->sh->primed, memory_order_acquire) != 0)
                return 0;
            continue;
        }
        len = nb_recv(l, in, r->o->size, NB_PRIME_EVERY_MS);
        if (len < 0)
            return -1;
        if (len > 0 && nb_parse(r, in, len, &ts, &seq) == NB_TAG_PRIME)
            return 0;
    }
    fprintf(stderr, NB_NAME ": nothing crossed from A to B in %" PRIu64 " ms\n", r->o->prime_ms);
    return -1;
}

/* Pingpong, side A: one ping at a time; a sample is half the round trip. */
static int nb_pinger(struct nb_run *r, struct nb_link *l, uint8_t *buf, uint8_t *in)
{
    const struct nb_opts *o = r->o;
    uint64_t n = 0, timeouts = 0, ts, seq, t0, now;
    int len;

    if (nb_prime(r, l, buf, in) != 0)
        return -1;
    for (uint64_t i = 0; i < o->warmup + o->count; i++) {
        t0 = bench_now_ns();
        nb_stamp(buf, t0, i, r->tag | NB_TAG_DATA);
        if (nb_send(l, buf, o->size) < 0)
            return -1;
        for (;;) {
            len = nb_recv(l, in, o->size, o->timeout_ms);
            if (len < 0)
                return -1;
            now = bench_now_ns();
            if (len > 0 && nb_parse(r, in, len, &ts, &seq) == NB_TAG_DATA && seq == i) {
                if (i >= o->warmup)
                    nb_put(&r->sh->samples[n++], (now - t0) / 2);
                break;
            }
            /* A ping or its pong lost on a lossy path: counted, not sampled. */
            if (now - t0 >= o->timeout_ms * 1000000u) {
                timeouts++;
                break;
            }
        }
    }
    nb_put(&r->sh->timeouts, timeouts);
    nb_put(&r->sh->nsamples, n);
    nb_put(&r->sh->sent, o->warmup + o->count);
    return 0;
}

/* Sleep until CLOCK_MONOTONIC reaches @p when_ns (bench_now_ns()'s clock). */
static void nb_sleep_until(uint64_t when_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(when_ns / 1000000000u),
                          .tv_nsec = (long)(when_ns % 1000000000u)};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Throughput and persist, side A: --count messages as fast as it can, or
 * at --rate messages/s. */
static int nb_sender(struct nb_run *r, struct nb_link *l, uint8_t *buf, uint8_t *in)
{
    uint64_t dropped = 0, start, period = r->o->rate > 0 ? 1000000000u / r->o->rate : 0;
    int rc;

    if (nb_prime(r, l, buf, in) != 0)
        return -1;
    start = bench_now_ns();
    nb_put(&r->sh->start_ns, start);
    for (uint64_t i = 0; i < r->o->count; i++) {
        /* Paced: sleep until the message's time (sleeping, not spinning:
         * the path's processes need the CPUs). Late: send at once. */
        if (period > 0)
            nb_sleep_until(start + i * period);
        nb_stamp(buf, bench_now_ns(), i, r->tag | NB_TAG_DATA);
        rc = nb_send(l, buf, r->o->size);
        if (rc < 0)
            return -1;
        dropped += (uint64_t)rc;
    }
    if (nb_flush(l) != 0)
        return -1;
    nb_put(&r->sh->sent, r->o->count);
    nb_put(&r->sh->dropped_send, dropped);
    return 0;
}

static int nb_side_a(void *arg)
{
    struct nb_run *r = arg;
    int pp = strcmp(r->cmd, "pingpong") == 0;
    struct nb_link l;
    uint8_t *buf = NULL, *in = NULL;
    int rc = -1;

    nb_pin(r->o, 1);
    bench_fd_close(&r->ready.wr);
    if (bench_ready_wait(r->ready.rd, 1) != 0)
        return -1;
    if (nb_link_open(&l, r->o, r->kind, nb_bus(r, 1), pp ? "pong" : NULL,
                     pp ? "ping" : (r->kind == NB_PERSIST ? "js" : "tp")) != 0)
        return -1;
    buf = bench_calloc(r->o->size);
    in = bench_calloc(r->o->size);
    if (buf != NULL && in != NULL)
        rc = pp ? nb_pinger(r, &l, buf, in) : nb_sender(r, &l, buf, in);
    /* release: pairs with B's acquire load; B may stop once it sees 1. */
    atomic_store_explicit(&r->sh->done, 1, memory_order_release);
    free(buf);
    free(in);
    nb_link_close(&l);
    return rc;
}

/* Has A finished? */
static int nb_a_done(const struct nb_run *r)
{
    /* acquire: pairs with A's release store in nb_side_a(). */
    return atomic_load_explicit(&r->sh->done, memory_order_acquire) != 0;
}

/* Pingpong, side B: answer every message of the run, until A is done. */
static int nb_echoer(struct nb_run *r, struct nb_link *l, uint8_t *buf)
{
    uint64_t ts, seq;
    int len;

    while (!nb_a_done(r)) {
        len = nb_recv(l, buf, r->o->size, NB_POLL_MS);
        if (len < 0)
            return -1;
        if (len > 0 && nb_parse(r, buf, len, &ts, &seq) != 0 && nb_send(l, buf, (size_t)len) < 0)
            return -1;
    }
    return 0;
}

/* Throughput and persist, side B: count, time and check what arrives. The
 * run ends at the last message, or --idle-ms after A finished and nothing
 * came (what never came is lost). */
static int nb_receiver(struct nb_run *r, struct nb_link *l, uint8_t *buf)
{
    const struct nb_opts *o = r->o;
    uint64_t next = 0, received = 0, gaps = 0, dups = 0, last = 0, quiet_since = 0, ts, seq, now;
    unsigned kind;
    int len;

    for (;;) {
        len = nb_recv(l, buf, o->size, NB_POLL_MS);
        if (len < 0)
            return -1;
        now = bench_now_ns();
        if (len == 0) {
            if (!nb_a_done(r))
                continue;
            if (quiet_since == 0)
                quiet_since = now;
            if (now - (last > quiet_since ? last : quiet_since) >= o->idle_ms * 1000000u)
                break;
            continue;
        }
        kind = nb_parse(r, buf, len, &ts, &seq);
        if (kind == NB_TAG_PRIME) {
            /* release: pairs with A's acquire load in nb_prime(). */
            atomic_store_explicit(&r->sh->primed, 1, memory_order_release);
            continue;
        }
        if (kind != NB_TAG_DATA || seq >= o->count)
            continue;
        if (seq < next) {
            dups++;
            continue;
        }
        gaps += seq - next;
        next = seq + 1;
        nb_put(&r->sh->samples[received++], now - ts);
        last = now;
        if (seq == o->count - 1)
            break;
    }
    nb_put(&r->sh->received, received);
    nb_put(&r->sh->nsamples, received);
    nb_put(&r->sh->gaps, gaps);
    nb_put(&r->sh->dups, dups);
    nb_put(&r->sh->last_ns, last);
    nb_put(&r->sh->dropped, nb_dropped(l));
    return 0;
}

static int nb_side_b(void *arg)
{
    struct nb_run *r = arg;
    int pp = strcmp(r->cmd, "pingpong") == 0;
    struct nb_link l;
    uint8_t *buf;
    int rc = -1;

    nb_pin(r->o, 0);
    bench_fd_close(&r->ready.rd);
    if (nb_link_open(&l, r->o, r->kind, nb_bus(r, 0),
                     pp ? "ping" : (r->kind == NB_PERSIST ? "js" : "tp"), pp ? "pong" : NULL) != 0)
        return -1;
    buf = bench_calloc(r->o->size);
    if (buf != NULL && bench_ready_post(r->ready.wr) == 0)
        rc = pp ? nb_echoer(r, &l, buf) : nb_receiver(r, &l, buf);
    free(buf);
    nb_link_close(&l);
    return rc;
}

/* ------------------------------------------------------------------ a run */

static void nb_report(const struct nb_run *r, const struct bench_stats *st)
{
    const struct nb_opts *o = r->o;
    struct nb_shared *sh = r->sh;
    struct bench_report rep = {0};
    uint64_t start = nb_get(&sh->start_ns), last = nb_get(&sh->last_ns);
    uint64_t received = nb_get(&sh->received);
    int pp = strcmp(r->cmd, "pingpong") == 0;

    bench_report_str(&rep, "via", o->shm ? "shmbus" : "nats");
    bench_report_str(&rep, "cmd", r->cmd);
    bench_report_u64(&rep, "size", o->size);
    bench_report_u64(&rep, "count", o->count);
    if (pp) {
        bench_report_u64(&rep, "timeouts", nb_get(&sh->timeouts));
    } else {
        bench_report_u64(&rep, "received", received);
        bench_report_u64(&rep, "lost", o->count - received);
        bench_report_f64(&rep, "msgs_per_s",
                         bench_per_s(received, last > start ? last - start : 0));
        bench_report_u64(&rep, "dropped_send", nb_get(&sh->dropped_send));
        bench_report_u64(&rep, "dropped_client", nb_get(&sh->dropped));
        bench_report_u64(&rep, "dups", nb_get(&sh->dups));
        bench_report_u64(&rep, "rate", o->rate);
    }
    bench_report_u64(&rep, "p50_ns", st->p50);
    bench_report_u64(&rep, "p99_ns", st->p99);
    bench_report_u64(&rep, "p999_ns", st->p999);
    bench_report_u64(&rep, "max_ns", st->max);
    bench_report_emit(&rep, o->json);
}

static int nb_run(struct nb_opts *o, const char *cmd, enum nb_kind kind)
{
    struct nb_run r = {.o = o, .cmd = cmd, .kind = kind, .ready = BENCH_PIPE_INIT};
    struct bench_procs ps = {0};
    struct bench_stats st;
    int rc = BENCH_EXIT_FAIL;

    r.tag = ((uint64_t)getpid() << 32 ^ bench_now_ns() << 8) & ~(uint64_t)NB_TAG_KIND;
    r.sh_len = sizeof(*r.sh) + o->count * sizeof(r.sh->samples[0]);
    r.sh = bench_shared_alloc(r.sh_len);
    if (r.sh == NULL)
        return BENCH_EXIT_FAIL;
    bench_samples_touch(r.sh->samples, o->count);
    if (!o->shm && kind == NB_PERSIST && nb_stream_prepare(o) != 0)
        goto out;
    if (bench_pipe_open(&r.ready) != 0)
        goto out;
    printf("%s via %s: %" PRIu64 " messages of %" PRIu64 " bytes, side A %s, side B %s\n", cmd,
           o->shm ? "shmbus" : "nats", o->count, o->size, o->shm ? o->bus_a : "cnats",
           o->shm ? o->bus_b : "cnats");
    if (bench_spawn(&ps, nb_side_b, &r) == 0)
        bench_spawn(&ps, nb_side_a, &r);
    bench_pipe_close(&r.ready);
    if (bench_reap(&ps) != 0)
        goto out;
    if (bench_stats_compute(r.sh->samples, nb_get(&r.sh->nsamples), &st) != 0)
        goto out;
    bench_stats_print(strcmp(cmd, "pingpong") == 0 ? "one-way (RTT/2)" : "send to receive", &st);
    nb_report(&r, &st);
    rc = BENCH_EXIT_OK;
out:
    bench_pipe_close(&r.ready);
    bench_shared_free(r.sh, r.sh_len);
    return rc;
}

/* ---------------------------------------------------------------- options */

enum {
    OPT_VIA = 256,
    OPT_NATS,
    OPT_BUS_A,
    OPT_BUS_B,
    OPT_STREAM_OF,
    OPT_COUNT,
    OPT_WARMUP,
    OPT_SIZE,
    OPT_CAPACITY,
    OPT_WINDOW,
    OPT_BATCH,
    OPT_RATE,
    OPT_TIMEOUT,
    OPT_IDLE,
    OPT_PRIME,
    OPT_CPU_A,
    OPT_CPU_B,
    OPT_SEND_ASAP,
    OPT_JSON,
    OPT_HELP
};

static const struct option nb_long_opts[] = {{"via", required_argument, NULL, OPT_VIA},
                                             {"nats", required_argument, NULL, OPT_NATS},
                                             {"bus-a", required_argument, NULL, OPT_BUS_A},
                                             {"bus-b", required_argument, NULL, OPT_BUS_B},
                                             {"stream-of", required_argument, NULL, OPT_STREAM_OF},
                                             {"count", required_argument, NULL, OPT_COUNT},
                                             {"warmup", required_argument, NULL, OPT_WARMUP},
                                             {"size", required_argument, NULL, OPT_SIZE},
                                             {"capacity", required_argument, NULL, OPT_CAPACITY},
                                             {"window", required_argument, NULL, OPT_WINDOW},
                                             {"batch", required_argument, NULL, OPT_BATCH},
                                             {"rate", required_argument, NULL, OPT_RATE},
                                             {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
                                             {"idle-ms", required_argument, NULL, OPT_IDLE},
                                             {"prime-ms", required_argument, NULL, OPT_PRIME},
                                             {"cpu-a", required_argument, NULL, OPT_CPU_A},
                                             {"cpu-b", required_argument, NULL, OPT_CPU_B},
                                             {"send-asap", no_argument, NULL, OPT_SEND_ASAP},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};

/* The numeric options: their limits and their fields. */
static const struct bench_num nb_nums[] = {
    {OPT_COUNT, 1, NB_SAMPLES_MAX, offsetof(struct nb_opts, count)},
    {OPT_WARMUP, 0, 1ull << 32, offsetof(struct nb_opts, warmup)},
    {OPT_SIZE, NB_HEADER, NB_SIZE_MAX, offsetof(struct nb_opts, size)},
    {OPT_CAPACITY, 0, 1u << 24, offsetof(struct nb_opts, capacity)},
    {OPT_WINDOW, 1, 1u << 20, offsetof(struct nb_opts, window)},
    {OPT_BATCH, 1, NB_FETCH_MAX, offsetof(struct nb_opts, batch)},
    {OPT_RATE, 0, 10000000, offsetof(struct nb_opts, rate)},
    {OPT_TIMEOUT, 1, 600000, offsetof(struct nb_opts, timeout_ms)},
    {OPT_IDLE, 1, 600000, offsetof(struct nb_opts, idle_ms)},
    {OPT_PRIME, 1, 600000, offsetof(struct nb_opts, prime_ms)},
};

static void nb_usage(FILE *f)
{
    fputs("usage: " NB_NAME " COMMAND --via shmbus --bus-a A --bus-b B [options]\n"
          "       " NB_NAME " COMMAND --via nats --nats URL [options]\n"
          "Side A sends, side B receives. --via shmbus: A is a process on bus A and\n"
          "B one on bus B, joined only by their shmbusd federated through NATS\n"
          "(topics nb.ping, nb.pong, nb.tp lossy; nb.js reliable and persisted).\n"
          "--via nats: A and B are plain cnats connections to URL (subjects\n"
          "nbbase.*; persist: stream NBBASE, or a copy of --stream-of's). Latency is\n"
          "one-way, from the send time in the payload (CLOCK_MONOTONIC).\n"
          "commands:\n"
          "  pingpong    A sends ping, B answers pong, A waits for it: RTT/2\n"
          "  throughput  A sends --count lossy messages as fast as it can; B counts\n"
          "              messages/s (A's first send to B's last receipt) and loss\n"
          "  persist     the same, reliable and through JetStream: A's publishes\n"
          "              wait for room (shmbus: the exporter's gate; nats: --window\n"
          "              asynchronous publishes in flight); B acknowledges each\n"
          "options (defaults in brackets):\n"
          "  --count N [pingpong 20000, else 1000000]  --warmup N [1000]\n"
          "  --size BYTES [64]  --capacity N [bus default]: shmbus topics' cells\n"
          "  --window N [256]  --batch N [256]: JetStream baseline's publish window\n"
          "                     and pull batch\n"
          "  --rate R [0]       throughput, persist: A sends R messages/s (0: as fast\n"
          "                     as it can); latency then is the path's, not a queue's\n"
          "  --stream-of SUBJ   persist baseline: its stream copies the configuration\n"
          "                     of the stream holding SUBJ (the daemons': shmbus.nb.js)\n"
          "  --timeout-ms MS [1000]: a ping's answer, a blocked send, a flush\n"
          "  --idle-ms MS [3000]: B's silence after A finished that ends the run\n"
          "  --prime-ms MS [30000]: how long the path may take to open\n"
          "  --cpu-a CPU, --cpu-b CPU: pin side A, side B\n"
          "  --send-asap        cnats sends each publish at once (natsOptions_SetSendAsap)\n"
          "  --json             last line as JSON\n",
          f);
}

static void nb_defaults(struct nb_opts *o, const char *cmd)
{
    memset(o, 0, sizeof(*o));
    o->count = strcmp(cmd, "pingpong") == 0 ? 20000 : 1000000;
    o->warmup = 1000;
    o->size = 64;
    o->window = 256;
    o->batch = 256;
    o->timeout_ms = 1000;
    o->idle_ms = 3000;
    o->prime_ms = 30000;
    o->cpu_a = -1;
    o->cpu_b = -1;
}

/* One option. @return 0, 1 for --help, -1 (message printed). */
static int nb_option(struct nb_opts *o, int opt, const char *arg)
{
    uint64_t cpu;
    int rc = bench_num_option(nb_nums, sizeof(nb_nums) / sizeof(nb_nums[0]), nb_long_opts, OPT_VIA,
                              opt, arg, o);

    if (rc <= 0)
        return rc;
    switch (opt) {
    case OPT_VIA:
        if (strcmp(arg, "shmbus") != 0 && strcmp(arg, "nats") != 0) {
            fprintf(stderr, NB_NAME ": --via wants shmbus or nats, not '%s'\n", arg);
            return -1;
        }
        o->shm = strcmp(arg, "shmbus") == 0;
        return 0;
    case OPT_NATS:
        o->url = arg;
        return 0;
    case OPT_BUS_A:
        o->bus_a = arg;
        return 0;
    case OPT_BUS_B:
        o->bus_b = arg;
        return 0;
    case OPT_STREAM_OF:
        o->stream_of = arg;
        return 0;
    case OPT_CPU_A:
    case OPT_CPU_B:
        if (bench_parse_u64(arg, nb_long_opts[opt - OPT_VIA].name, 0, 1023, &cpu) != 0)
            return -1;
        *(opt == OPT_CPU_A ? &o->cpu_a : &o->cpu_b) = (int64_t)cpu;
        return 0;
    case OPT_SEND_ASAP:
        o->send_asap = 1;
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
static int nb_parse_opts(int argc, char **argv, struct nb_opts *o)
{
    int opt, rc, via = 0;

    nb_defaults(o, argv[0]);
    while ((opt = getopt_long(argc, argv, "", nb_long_opts, NULL)) != -1) {
        via |= opt == OPT_VIA;
        rc = nb_option(o, opt, optarg);
        if (rc != 0)
            return rc;
    }
    if (optind != argc || !via) {
        fprintf(stderr, NB_NAME ": %s\n", via ? "stray argument" : "--via is required");
        return -1;
    }
    if (o->shm ? (o->bus_a == NULL || o->bus_b == NULL) : o->url == NULL) {
        fprintf(stderr, NB_NAME ": %s\n",
                o->shm ? "--via shmbus needs --bus-a and --bus-b" : "--via nats needs --nats");
        return -1;
    }
    return 0;
}

/* -------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    static const char *const cmds[] = {"pingpong", "throughput", "persist"};
    struct nb_opts o;
    int rc;

    /* No command: say how to use us. */
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        nb_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? BENCH_EXIT_USAGE : BENCH_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i]) != 0)
            continue;
        rc = nb_parse_opts(argc - 1, argv + 1, &o);
        if (rc != 0) {
            nb_usage(rc > 0 ? stdout : stderr);
            return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
        }
        bench_signals_install();
        return nb_run(&o, cmds[i], i == 2 ? NB_PERSIST : NB_CORE);
    }
    fprintf(stderr, NB_NAME ": unknown command '%s'\n", argv[1]);
    nb_usage(stderr);
    return BENCH_EXIT_USAGE;
}
