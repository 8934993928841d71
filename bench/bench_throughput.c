/*
 * throughput: one publisher process publishes as fast as it can for a fixed
 * time while one subscriber process drains the topic with shmbus_poll() in a
 * spin loop, counting deliveries and reported losses. The same run then
 * measures a bare SPSC ring between two processes for the same time
 * (bench_spsc.c) and reports shmbus msgs/s / baseline msgs/s. Both runs
 * share the control block protocol below: the producer notes its start,
 * raises done after its last message, and the consumer drains until done
 * is raised and nothing is left.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Messages handed to one shmbus_poll() call at most. */
#define TP_BATCH 256u

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
    int exclusive; /* an SHMBUS_TOPIC_EXCLUSIVE topic */
    int json;
    int want_pin;
    int pin;
};

struct tp_ctx {
    const struct tp_opts *o;
    const char *name;
    struct bench_pipe ready; /* consumer -> producer: subscriber exists */
    struct bench_tp_shared *sh;
};

/* What the poll callback accumulates. */
struct tp_acc {
    uint64_t delivered;
    uint64_t lost;
    uint64_t sum;
};

static int tp_count_msg(const shmbus_msg *m, void *arg)
{
    struct tp_acc *a = arg;

    a->delivered++;
    a->lost += m->lost;
    /* Touch the payload, as the baseline consumer's copy does. */
    if (m->len > 0)
        a->sum += ((const uint8_t *)m->data)[0];
    return 0;
}

static int tp_drain(struct tp_ctx *c, shmbus_sub *sub)
{
    struct tp_acc acc = {0};
    int stop = 0;

    for (;;) {
        int n = shmbus_poll(sub, tp_count_msg, &acc, TP_BATCH);
        if (n < 0)
            return bench_fail("throughput consumer: shmbus_poll", n);
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
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT, .spin_ns = INT64_MAX};
    struct bench_ep ep = {0};
    int rc = -1;

    bench_fd_close(&c->ready.rd);
    bench_pin_cpu(c->o->pin, 1);
    if (bench_ep_open(&ep, c->name, 0, &so) < 0 || bench_ready_post(c->ready.wr) < 0)
        goto done;
    bench_fd_close(&c->ready.wr);
    rc = tp_drain(c, ep.sub);
done:
    bench_ep_close(&ep);
    return rc;
}

static int tp_publish_all(struct tp_ctx *c, shmbus_pub *pub, const uint8_t *buf)
{
    /* Reliable: wait for room as long as it takes; lossy never waits. */
    int64_t timeout = c->o->mode == SHMBUS_RELIABLE ? -1 : 0;
    uint64_t n = 0, overruns = 0, deadline = bench_tp_begin(c->sh, c->o->seconds);

    for (;; n++) {
        int rc;

        if (n % BENCH_CLOCK_EVERY == 0 && bench_now_ns() >= deadline)
            break;
        rc = shmbus_publish(pub, buf, c->o->size, timeout);
        /* Lossy: a newer message took the cell; it is counted as lost. */
        if (rc == SHMBUS_ERR_OVERRUN)
            overruns++;
        else if (rc < 0)
            return bench_fail("throughput producer: shmbus_publish", rc);
    }
    bench_tp_finish(c->sh, n, overruns);
    return 0;
}

static int tp_produce(void *arg)
{
    struct tp_ctx *c = arg;
    struct bench_ep ep = {0};
    uint8_t *buf = bench_calloc(c->o->size);
    int rc = -1;

    bench_fd_close(&c->ready.wr);
    bench_pin_cpu(c->o->pin, 0);
    if (buf == NULL)
        goto done;
    memset(buf, 0x5a, c->o->size);
    if (bench_ep_open(&ep, c->name, 1, NULL) < 0 || bench_ready_wait(c->ready.rd, 1) < 0)
        goto done;
    rc = tp_publish_all(c, ep.pub, buf);
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
          "  draining with shmbus_poll(); then a bare SPSC ring for the same time.\n"
          "  --size BYTES        payload size (default 64)\n"
          "  --seconds S         total duration of each side (default 3)\n"
          "  --rounds R          alternate shmbus and baseline R times (default 3)\n"
          "  --mode MODE         lossy | reliable (default lossy)\n"
          "  --exclusive         one-publisher topics (SHMBUS_TOPIC_EXCLUSIVE)\n"
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
    TP_OPT_NOPIN,
    TP_OPT_JSON
};

static const struct option tp_longopts[] = {
    {"size", required_argument, NULL, TP_OPT_SIZE},
    {"seconds", required_argument, NULL, TP_OPT_SECONDS},
    {"rounds", required_argument, NULL, TP_OPT_ROUNDS},
    {"mode", required_argument, NULL, TP_OPT_MODE},
    {"exclusive", no_argument, NULL, TP_OPT_EXCL},
    {"no-pin", no_argument, NULL, TP_OPT_NOPIN},
    {"json", no_argument, NULL, TP_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int tp_parse(int argc, char **argv, struct tp_opts *o)
{
    int opt, rc = 0;

    *o = (struct tp_opts){
        .size = 64, .seconds = 3.0, .rounds = 3, .mode = SHMBUS_LOSSY, .want_pin = 1};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", tp_longopts, NULL)) != -1) {
        switch (opt) {
        case TP_OPT_SIZE:
            rc = bench_parse_u64(optarg, "--size", 0, BENCH_SIZE_MAX, &o->size);
            break;
        case TP_OPT_SECONDS:
            rc = bench_parse_f64(optarg, "--seconds", 0.001, 3600.0, &o->seconds);
            break;
        case TP_OPT_ROUNDS:
            rc = bench_parse_u64(optarg, "--rounds", 1, 100, &o->rounds);
            break;
        case TP_OPT_MODE:
            rc = bench_parse_mode(optarg, &o->mode);
            break;
        case TP_OPT_EXCL:
            o->exclusive = 1;
            break;
        case TP_OPT_NOPIN:
            o->want_pin = 0;
            break;
        case TP_OPT_JSON:
            o->json = 1;
            break;
        case 'h':
            tp_usage(stdout);
            return 1;
        default:
            return -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "shmbus-bench: throughput: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    return rc;
}

static void tp_print(const struct tp_opts *o, const struct bench_rate *bus, uint64_t published,
                     const struct bench_rate *base)
{
    struct bench_report r = {0};
    double rate = bench_per_s(bus->delivered, bus->elapsed_ns);
    double lost = bench_per_s(bus->lost, bus->elapsed_ns);
    double base_rate = bench_per_s(base->delivered, base->elapsed_ns);
    double ratio = bench_ratio(rate, base_rate);

    printf("shmbus %s: published %" PRIu64 " (%.0f/s, %" PRIu64 " overruns), received %" PRIu64
           " (%.0f/s), lost %" PRIu64 " (%.0f/s) in %.3f s\n",
           bench_mode_name(o->mode), published, bench_per_s(published, bus->elapsed_ns),
           bus->overruns, bus->delivered, rate, bus->lost, lost, (double)bus->elapsed_ns / 1e9);
    printf("baseline SPSC ring: sent %" PRIu64 ", received %" PRIu64 " (%.0f/s) in %.3f s\n",
           base->sent, base->delivered, base_rate, (double)base->elapsed_ns / 1e9);
    printf("ratio (shmbus msgs/s / baseline msgs/s): %.3f\n", ratio);
    bench_report_str(&r, "cmd", "throughput");
    bench_report_str(&r, "mode", bench_mode_name(o->mode));
    bench_report_u64(&r, "exclusive", (uint64_t)o->exclusive);
    bench_report_u64(&r, "size", o->size);
    bench_report_f64(&r, "seconds", o->seconds);
    bench_report_u64(&r, "msgs_per_s", (uint64_t)(rate + 0.5));
    bench_report_u64(&r, "lost_per_s", (uint64_t)(lost + 0.5));
    bench_report_u64(&r, "baseline_msgs_per_s", (uint64_t)(base_rate + 0.5));
    bench_report_f64(&r, "ratio", ratio);
    bench_report_emit(&r, o->json);
}

static void tp_rate_add(struct bench_rate *sum, const struct bench_rate *r)
{
    sum->sent += r->sent;
    sum->delivered += r->delivered;
    sum->lost += r->lost;
    sum->overruns += r->overruns;
    sum->elapsed_ns += r->elapsed_ns;
}

/* Alternate shmbus and baseline rounds so both see the same machine; the
 * rates are totals over all rounds. */
static int tp_run(const struct tp_opts *o, struct bench_rate *bus, uint64_t *published,
                  struct bench_rate *base)
{
    struct tp_opts ro = *o;

    ro.seconds = o->seconds / (double)o->rounds;
    for (uint64_t i = 0; i < o->rounds; i++) {
        struct bench_rate b = {0}, s = {0};
        uint64_t pub = 0;
        if (tp_run_bus(&ro, &b, &pub) < 0 ||
            bench_spsc_run((uint32_t)o->size, ro.seconds, o->pin, &s) < 0)
            return -1;
        tp_rate_add(bus, &b);
        tp_rate_add(base, &s);
        *published += pub;
    }
    return 0;
}

int bench_cmd_throughput(int argc, char **argv)
{
    struct tp_opts o;
    struct bench_rate bus = {0}, base = {0};
    uint64_t published = 0;
    int rc = tp_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    o.pin = bench_pin_plan(o.want_pin);
    printf("throughput: %s topic, %" PRIu64 "-byte messages, %.3f s in %" PRIu64 " rounds\n",
           bench_mode_name(o.mode), o.size, o.seconds, o.rounds);
    if (tp_run(&o, &bus, &published, &base) < 0)
        return BENCH_EXIT_FAIL;
    tp_print(&o, &bus, published, &base);
    return BENCH_EXIT_OK;
}
