/* SPDX-License-Identifier: Apache-2.0 */
/*
 * throughput: one publisher process publishes as fast as it can for a fixed
 * time while one subscriber process drains the topic with shmbus_poll() in a
 * spin loop, copying each payload out (as the floor's consumer copies its
 * line) and counting deliveries and reported losses. The same run then
 * measures the floor, the one-line ring of bench_ring.c between two
 * processes for the same time (bench_spsc.c), and reports shmbus msgs/s /
 * floor msgs/s. With --batch N the publisher hands N messages to each
 * shmbus_publish_vec() call and the subscriber polls N at most. With
 * --same-cpu both processes share CPU 0 and the subscriber sleeps
 * (spin_ns < 0) whenever nothing is ready, against the ring's sleeping
 * variant pinned the same way. Both runs share the control block protocol
 * below: the producer notes its start, raises done after its last message,
 * and the consumer drains until done is raised and nothing is left.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "bench.h"

/* Messages handed to one shmbus_poll() call at most, and the largest --batch. */
#define TP_BATCH 256u
/* Rounds at most (the per-round rates are kept for their medians). */
#define TP_ROUNDS_MAX 100u
/* A sleeping subscriber looks at the producer's done flag this often when
 * nothing comes; the last round's rate is off by at most this much. */
#define TP_SLEEP_NS 1000000

uint64_t bench_tp_begin(struct bench_tp_shared *t, double seconds)
{
    uint64_t now = bench_now_ns();

    /* relaxed: the consumer reads it after its acquire load of done, and
     * the parent after waitpid(); both are ordered after this store. */
    atomic_store_explicit(&t->start_ns, now, memory_order_relaxed);
    return now + (uint64_t)(seconds * 1e9);
}

void bench_tp_finish(struct bench_tp_shared *t, uint64_t sent, uint64_t overruns)
{
    /* relaxed: read by the parent after waitpid() on us. */
    atomic_store_explicit(&t->sent, sent, memory_order_relaxed);
    atomic_store_explicit(&t->overruns, overruns, memory_order_relaxed);
    /* release: pairs with the acquire load in bench_tp_done(); every message
     * we published and the start time are visible to a consumer that sees 1. */
    atomic_store_explicit(&t->done, 1, memory_order_release);
}

int bench_tp_done(struct bench_tp_shared *t)
{
    /* acquire: pairs with the release store in bench_tp_finish(). */
    return atomic_load_explicit(&t->done, memory_order_acquire) != 0;
}

void bench_tp_report(struct bench_tp_shared *t, uint64_t delivered, uint64_t lost,
                     uint64_t checksum)
{
    uint64_t now = bench_now_ns();

    /* relaxed: read by the parent after waitpid() on us. */
    atomic_store_explicit(&t->delivered, delivered, memory_order_relaxed);
    atomic_store_explicit(&t->lost, lost, memory_order_relaxed);
    atomic_store_explicit(&t->checksum, checksum, memory_order_relaxed);
    atomic_store_explicit(&t->end_ns, now, memory_order_relaxed);
}

void bench_tp_read(struct bench_tp_shared *t, struct bench_rate *out)
{
    /* relaxed, all: both children were reaped; waitpid() ordered their
     * stores before these loads. */
    uint64_t start = atomic_load_explicit(&t->start_ns, memory_order_relaxed);
    uint64_t end = atomic_load_explicit(&t->end_ns, memory_order_relaxed);

    out->delivered = atomic_load_explicit(&t->delivered, memory_order_relaxed);
    out->lost = atomic_load_explicit(&t->lost, memory_order_relaxed);
    out->sent = atomic_load_explicit(&t->sent, memory_order_relaxed);
    out->overruns = atomic_load_explicit(&t->overruns, memory_order_relaxed);
    out->elapsed_ns = end > start ? end - start : 0;
}

struct tp_opts {
    uint64_t size;
    double seconds;
    uint64_t rounds;
    uint32_t mode;
    uint64_t batch; /* 0: shmbus_publish(); N: shmbus_publish_vec() of N, poll max N */
    int exclusive;  /* an SHMBUS_TOPIC_EXCLUSIVE topic */
    int same_cpu;   /* both on CPU 0, sleeping subscriber, sleeping floor */
    int json;
    int want_pin;
    int pin;
};

struct tp_ctx {
    const struct tp_opts *o;
    const char *name;
    struct bench_pipe ready; /* consumer -> producer: subscriber exists */
    struct bench_tp_shared *sh;
    uint8_t *buf; /* the consumer's: each message is copied there (tp_count_msg()) */
};

/* What the poll callback accumulates; @p copy: where it copies each
 * message (the consumer's buffer, --size bytes). */
struct tp_acc {
    uint64_t delivered;
    uint64_t lost;
    uint64_t sum;
    uint8_t *copy;
};

static int tp_count_msg(const shmbus_msg *m, void *arg)
{
    struct tp_acc *a = arg;

    a->delivered++;
    a->lost += m->lost;
    if (m->len == 0)
        return 0;
    /* Copy the whole payload out, as the floor's consumer copies its line:
     * a reliable delivery points into the ring, and reading only its
     * first byte would leave the payload's other lines unfetched, a
     * transfer per message the floor pays and shmbus would not.
     * shmbus_recv() (tp_sleep()) has copied it there already. */
    if (m->data != a->copy)
        memcpy(a->copy, m->data, m->len);
    a->sum += a->copy[0];
    return 0;
}

/* A sleeping subscriber with nothing ready: sleep in shmbus_recv() until
 * the next message, or TP_SLEEP_NS. @return 1 got one, 0 none, -1 failed. */
static int tp_sleep(struct tp_ctx *c, shmbus_sub *sub, struct tp_acc *acc)
{
    shmbus_msg info;
    int rc = shmbus_recv(sub, c->buf, c->o->size, &info, TP_SLEEP_NS);

    /* Nothing for a while: the caller looks whether the producer is done. */
    if (rc == SHMBUS_ERR_TIMEOUT)
        return 0;
    if (rc < 0)
        return bench_fail("throughput consumer: shmbus_recv", rc);
    tp_count_msg(&info, acc);
    return 1;
}

static int tp_drain(struct tp_ctx *c, shmbus_sub *sub)
{
    struct tp_acc acc = {.copy = c->buf};
    unsigned max = c->o->batch > 0 ? (unsigned)c->o->batch : TP_BATCH;
    int stop = 0;

    for (;;) {
        int n = shmbus_poll(sub, tp_count_msg, &acc, max);
        if (n < 0)
            return bench_fail("throughput consumer: shmbus_poll", n);
        if (n == 0 && c->o->same_cpu && !stop && (n = tp_sleep(c, sub, &acc)) < 0)
            return -1;
        if (n > 0)
            continue;
        if (!stop) {
            /* Nothing ready: has the producer finished? Once it has, the
             * polls after this load see every message it sent. */
            stop = bench_tp_done(c->sh);
            continue;
        }
        /* A poll may return 0 after moving over a lap; ask before leaving. */
        n = shmbus_sub_ready(sub);
        if (n < 0)
            return bench_fail("throughput consumer: shmbus_sub_ready", n);
        if (n == 0)
            break;
    }
    bench_tp_report(c->sh, acc.delivered, acc.lost, acc.sum);
    return 0;
}

static int tp_consume(void *arg)
{
    struct tp_ctx *c = arg;
    /* Spin, never sleep; with --same-cpu sleep at once instead. */
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT, .spin_ns = c->o->same_cpu ? -1 : INT64_MAX};
    struct bench_ep ep = {0};
    int rc = -1;

    bench_fd_close(&c->ready.rd);
    bench_pin_cpu(c->o->pin, bench_cpu_b(c->o->same_cpu));
    c->buf = bench_calloc(c->o->size);
    if (c->buf == NULL || bench_ep_open(&ep, c->name, 0, &so) < 0 ||
        bench_ready_post(c->ready.wr) < 0)
        goto done;
    bench_fd_close(&c->ready.wr);
    rc = tp_drain(c, ep.sub);
done:
    bench_ep_close(&ep);
    free(c->buf);
    return rc;
}

/* One call: shmbus_publish(), or shmbus_publish_vec() of the batch.
 * @return messages published (>= 1), or a negative error. */
static int tp_publish_one(struct tp_ctx *c, shmbus_pub *pub, const struct iovec *iov,
                          int64_t timeout)
{
    int rc;

    if (c->o->batch > 0)
        return shmbus_publish_vec(pub, iov, (unsigned)c->o->batch, timeout);
    rc = shmbus_publish(pub, iov[0].iov_base, iov[0].iov_len, timeout);
    return rc < 0 ? rc : 1;
}

static int tp_publish_all(struct tp_ctx *c, shmbus_pub *pub, const struct iovec *iov)
{
    /* Reliable: wait for room as long as it takes; lossy never waits. */
    int64_t timeout = c->o->mode == SHMBUS_RELIABLE ? -1 : 0;
    uint64_t n = 0, next_clock = 0, overruns = 0;
    uint64_t deadline = bench_tp_begin(c->sh, c->o->seconds);

    for (;;) {
        int rc;

        if (n >= next_clock) {
            if (bench_now_ns() >= deadline)
                break;
            next_clock = n + BENCH_CLOCK_EVERY;
        }
        rc = tp_publish_one(c, pub, iov, timeout);
        /* Lossy: a newer message took the cell; it is counted as lost. */
        if (rc == SHMBUS_ERR_OVERRUN) {
            overruns++;
            n++;
        } else if (rc < 0) {
            return bench_fail("throughput producer: shmbus_publish", rc);
        } else {
            n += (uint64_t)rc;
        }
    }
    bench_tp_finish(c->sh, n, overruns);
    return 0;
}

static int tp_produce(void *arg)
{
    struct tp_ctx *c = arg;
    struct bench_ep ep = {0};
    uint8_t *buf = bench_calloc(c->o->size);
    struct iovec iov[TP_BATCH];
    int rc = -1;

    bench_fd_close(&c->ready.wr);
    bench_pin_cpu(c->o->pin, 0);
    if (buf == NULL)
        goto done;
    memset(buf, 0x5a, c->o->size);
    for (unsigned i = 0; i < TP_BATCH; i++)
        iov[i] = (struct iovec){.iov_base = buf, .iov_len = c->o->size};
    if (bench_ep_open(&ep, c->name, 1, NULL) < 0 || bench_ready_wait(c->ready.rd, 1) < 0)
        goto done;
    rc = tp_publish_all(c, ep.pub, iov);
done:
    bench_ep_close(&ep);
    free(buf);
    return rc;
}

/* The shmbus run: one topic, consumer then producer, reap, read, unlink. */
static int tp_run_bus(const struct tp_opts *o, struct bench_rate *out, uint64_t *published)
{
    shmbus_topic_opts to = {.mode = o->mode,
                            .capacity = BENCH_CAPACITY,
                            .max_msg_size = (uint32_t)o->size,
                            .flags = o->exclusive ? SHMBUS_TOPIC_EXCLUSIVE : 0u};
    struct tp_ctx c = {.o = o, .ready = BENCH_PIPE_INIT};
    struct bench_topics tp = {0};
    struct bench_procs ps = {0};
    shmbus_topic_info info;
    int rc = -1;

    c.sh = bench_shared_alloc(sizeof(*c.sh));
    if (c.sh == NULL || bench_topics_add(&tp, "tp", &to) < 0 || bench_pipe_open(&c.ready) < 0)
        goto out;
    c.name = tp.name[0];
    rc = bench_spawn(&ps, tp_consume, &c);
    if (rc == 0)
        rc = bench_spawn(&ps, tp_produce, &c);
    bench_pipe_close(&c.ready);
    if (bench_reap(&ps) < 0)
        rc = -1;
    if (rc == 0 && (rc = shmbus_topic_info_get(tp.topic[0], &info)) < 0)
        rc = bench_fail("shmbus_topic_info_get", rc);
    if (rc == 0) {
        bench_tp_read(c.sh, out);
        *published = info.published;
    }
out:
    bench_pipe_close(&c.ready);
    bench_topics_cleanup(&tp);
    bench_shared_free(c.sh, sizeof(*c.sh));
    return rc;
}

static void tp_usage(FILE *f)
{
    fputs("usage: shmbus-bench throughput [options]\n"
          "  One publisher process publishing as fast as it can, one subscriber process\n"
          "  draining with shmbus_poll(); then the floor for the same time: a bare ring\n"
          "  moving each message as one cache line (56 bytes of payload).\n"
          "  --size BYTES        payload size (default 64)\n"
          "  --seconds S         total duration of each side (default 3)\n"
          "  --rounds R          alternate shmbus and floor R times, report medians\n"
          "                      (default 3)\n"
          "  --mode MODE         lossy | reliable (default lossy)\n"
          "  --exclusive         one-publisher topics (SHMBUS_TOPIC_EXCLUSIVE)\n"
          "  --batch N           publish N messages per shmbus_publish_vec() call and\n"
          "                      poll N at most per shmbus_poll() (1..256; default:\n"
          "                      shmbus_publish(), polls of 256)\n"
          "  --same-cpu          publisher and subscriber both on CPU 0, the subscriber\n"
          "                      sleeping (spin_ns < 0) whenever nothing is ready; the\n"
          "                      floor is the ring's futex variant, pinned the same way\n"
          "  --no-pin            do not pin publisher/subscriber to CPU 0/CPU 1\n"
          "  --json              print the last line as a JSON object\n"
          "  --help              this text\n",
          f);
}

enum {
    TP_OPT_SIZE = 256,
    TP_OPT_SECONDS,
    TP_OPT_ROUNDS,
    TP_OPT_MODE,
    TP_OPT_EXCL,
    TP_OPT_BATCH,
    TP_OPT_SAME_CPU,
    TP_OPT_NOPIN,
    TP_OPT_JSON
};

static const struct option tp_longopts[] = {
    {"size", required_argument, NULL, TP_OPT_SIZE},
    {"seconds", required_argument, NULL, TP_OPT_SECONDS},
    {"rounds", required_argument, NULL, TP_OPT_ROUNDS},
    {"mode", required_argument, NULL, TP_OPT_MODE},
    {"exclusive", no_argument, NULL, TP_OPT_EXCL},
    {"batch", required_argument, NULL, TP_OPT_BATCH},
    {"same-cpu", no_argument, NULL, TP_OPT_SAME_CPU},
    {"no-pin", no_argument, NULL, TP_OPT_NOPIN},
    {"json", no_argument, NULL, TP_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option. @return 0, 1 after --help, -1 on a bad value. */
static int tp_option(struct tp_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case TP_OPT_SIZE:
        return bench_parse_u64(arg, "--size", 0, BENCH_SIZE_MAX, &o->size);
    case TP_OPT_SECONDS:
        return bench_parse_f64(arg, "--seconds", 0.001, 3600.0, &o->seconds);
    case TP_OPT_ROUNDS:
        return bench_parse_u64(arg, "--rounds", 1, TP_ROUNDS_MAX, &o->rounds);
    case TP_OPT_MODE:
        return bench_parse_mode(arg, &o->mode);
    case TP_OPT_EXCL:
        o->exclusive = 1;
        return 0;
    case TP_OPT_BATCH:
        return bench_parse_u64(arg, "--batch", 1, TP_BATCH, &o->batch);
    case TP_OPT_SAME_CPU:
        o->same_cpu = 1;
        return 0;
    case TP_OPT_NOPIN:
        o->want_pin = 0;
        return 0;
    case TP_OPT_JSON:
        o->json = 1;
        return 0;
    case 'h':
        tp_usage(stdout);
        return 1;
    default:
        return -1;
    }
}

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int tp_parse(int argc, char **argv, struct tp_opts *o)
{
    int opt, rc = 0;

    *o = (struct tp_opts){
        .size = 64, .seconds = 3.0, .rounds = 3, .mode = SHMBUS_LOSSY, .want_pin = 1};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", tp_longopts, NULL)) != -1)
        rc = tp_option(o, opt, optarg);
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "shmbus-bench: throughput: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    return rc;
}

/* The medians over the rounds, for the report. */
struct tp_result {
    double rate;      /* shmbus messages received per second */
    double lost;      /* losses reported per second */
    double published; /* publisher's messages per second */
    double floor;     /* floor messages per second */
    double ratio;     /* of each round's rate over its floor's */
};

static void tp_print(const struct tp_opts *o, const struct tp_result *m)
{
    struct bench_report r = {0};

    printf("medians of %" PRIu64 " rounds: shmbus %s%s published %.0f/s, received %.0f/s, "
           "lost %.0f/s\n",
           o->rounds, bench_mode_name(o->mode), o->exclusive ? " exclusive" : "", m->published,
           m->rate, m->lost);
    printf("floor one-line ring (%s): %.0f/s\n", o->same_cpu ? "futex" : "spin", m->floor);
    printf("ratio (shmbus msgs/s / floor msgs/s, median of the rounds'): %.3f\n", m->ratio);
    bench_report_str(&r, "cmd", "throughput");
    bench_report_str(&r, "mode", bench_mode_name(o->mode));
    bench_report_u64(&r, "exclusive", (uint64_t)o->exclusive);
    bench_report_u64(&r, "batch", o->batch);
    bench_report_u64(&r, "same_cpu", (uint64_t)o->same_cpu);
    bench_report_u64(&r, "size", o->size);
    bench_report_f64(&r, "seconds", o->seconds);
    bench_report_u64(&r, "rounds", o->rounds);
    bench_report_u64(&r, "msgs_per_s", (uint64_t)(m->rate + 0.5));
    bench_report_u64(&r, "lost_per_s", (uint64_t)(m->lost + 0.5));
    bench_report_u64(&r, "floor_msgs_per_s", (uint64_t)(m->floor + 0.5));
    bench_report_f64(&r, "ratio", m->ratio);
    bench_report_emit(&r, o->json);
}

/* Print one round's figures; keep its rates at index @p i of @p v. */
static void tp_round_keep(const struct tp_opts *o, uint64_t i, const struct bench_rate *b,
                          uint64_t published, const struct bench_rate *f,
                          double v[5][TP_ROUNDS_MAX])
{
    v[0][i] = bench_per_s(b->delivered, b->elapsed_ns);
    v[1][i] = bench_per_s(b->lost, b->elapsed_ns);
    v[2][i] = bench_per_s(published, b->elapsed_ns);
    v[3][i] = bench_per_s(f->delivered, f->elapsed_ns);
    v[4][i] = bench_ratio(v[0][i], v[3][i]);
    printf("round %" PRIu64 ": shmbus %s published %" PRIu64 " (%" PRIu64
           " overruns), received %" PRIu64 " (%.0f/s), lost %" PRIu64 " in %.3f s; floor %" PRIu64
           " (%.0f/s) in %.3f s; "
           "ratio %.3f\n",
           i + 1, bench_mode_name(o->mode), published, b->overruns, b->delivered, v[0][i], b->lost,
           (double)b->elapsed_ns / 1e9, f->delivered, v[3][i], (double)f->elapsed_ns / 1e9,
           v[4][i]);
}

/* Alternate shmbus and floor rounds so both see the same machine; the
 * figures are medians over the rounds. */
static int tp_run(const struct tp_opts *o, struct tp_result *m)
{
    struct tp_opts ro = *o;
    struct bench_spsc_args fa = {.pin = o->pin, .same_cpu = o->same_cpu, .sleep = o->same_cpu};
    double v[5][TP_ROUNDS_MAX];

    ro.seconds = o->seconds / (double)o->rounds;
    fa.seconds = ro.seconds;
    for (uint64_t i = 0; i < o->rounds; i++) {
        struct bench_rate b = {0}, f = {0};
        uint64_t pub = 0;
        if (tp_run_bus(&ro, &b, &pub) < 0 || bench_spsc_run(&fa, &f) < 0)
            return -1;
        tp_round_keep(o, i, &b, pub, &f, v);
    }
    m->rate = bench_median(v[0], o->rounds);
    m->lost = bench_median(v[1], o->rounds);
    m->published = bench_median(v[2], o->rounds);
    m->floor = bench_median(v[3], o->rounds);
    m->ratio = bench_median(v[4], o->rounds);
    return 0;
}

int bench_cmd_throughput(int argc, char **argv)
{
    struct tp_opts o;
    struct tp_result m;
    int rc = tp_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    o.pin = bench_pin_plan(o.want_pin);
    if (o.pin && o.same_cpu)
        printf("pinning: --same-cpu, side B on CPU 0 too\n");
    printf("throughput: %s topic, %" PRIu64 "-byte messages, %s, %s subscriber, %.3f s in %" PRIu64
           " rounds\n",
           bench_mode_name(o.mode), o.size, o.batch > 0 ? "shmbus_publish_vec" : "shmbus_publish",
           o.same_cpu ? "sleeping" : "spinning", o.seconds, o.rounds);
    if (o.batch > 0)
        printf("throughput: batches of %" PRIu64 " per publish and per poll\n", o.batch);
    if (tp_run(&o, &m) < 0)
        return BENCH_EXIT_FAIL;
    tp_print(&o, &m);
    return BENCH_EXIT_OK;
}
