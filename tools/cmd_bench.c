/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus bench`: latency and throughput on the live bus. Without a
 * topic it makes a scratch topic of its own (reliable, a name no one else
 * uses: shmbus-bench.PID.RANDOM), measures there and removes it
 * (shmbus_topic_remove()) on every way out: done, an error, SIGINT,
 * SIGTERM or SIGHUP. Latency is one-way, publish to receive: a receiving thread
 * reads each message's publish timestamp (CLOCK_REALTIME, taken by
 * shmbus_publish()) against its own clock, with one message in flight
 * at a time; throughput is --count messages published back to back and
 * received by that thread. With a TOPIC it publishes nothing: it joins
 * the existing topic as an observer (a slot that never holds publishers
 * back) and measures the latency of the live messages from their
 * timestamps, and the rate they arrive at.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cli.h"
#include "latency.h"

#define BENCH_COUNT_DEFAULT 10000u
#define BENCH_COUNT_MAX     10000000u
#define BENCH_SIZE_DEFAULT  64u
#define BENCH_SIZE_MIN      8u
#define BENCH_SIZE_MAX      (1u << 20)
#define BENCH_CAPACITY      1024u         /* the scratch ring's cells, at most */
#define BENCH_RING_BYTES    (16u << 20)   /* and its bytes of payload, at most */
#define BENCH_SLICE_NS      100000000ll   /* a receive's wait, to see a stop */
#define BENCH_PUB_NS        1000000000ll  /* a publish's wait for space */
#define BENCH_BUCKETS       40            /* histogram: powers of two of ns */
#define BENCH_BAR           40            /* the longest histogram bar */
#define BENCH_IDLE_NS       10000000000ll /* TOPIC: give up after 10 s without a message */

struct bench_args {
    const char *bus;
    const char *topic; /* NULL: a scratch topic of our own */
    uint32_t count;
    uint32_t size;
    int json;
};

/* What the receiving side collects. */
struct bench_recv {
    shmbus_sub *sub;
    uint8_t *buf;
    uint32_t cap;
    /* The latencies of the latency phase (latency.h: the percentiles of
     * `sub --latency`), and their histogram by powers of two. */
    struct cli_latency *lat;
    uint32_t hist[BENCH_BUCKETS];
    uint32_t want;     /* messages to receive in all */
    uint32_t n_lat;    /* of them, the first this many are timed */
    int64_t idle_ns;   /* give up after this long without a message */
    int rc;            /* the receive error that ended it, or 0 */
    uint64_t first_ns; /* CLOCK_MONOTONIC of the first message */
    uint64_t last_ns;  /* and of the last */
    /* Flags between the two threads, relaxed: each only ends a loop, and
     * the thread join orders everything else. stop: the publisher is done
     * or failed (nothing more will come); ended: the receiver left. */
    _Atomic int stop;
    _Atomic int ended;
    /* Messages received: stored by the receiving thread (release), read
     * by the publisher (acquire), so that the latency it waits for is
     * stored when it sees the count. */
    _Atomic uint32_t got;
};

void cli_bench_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] bench [--count N] [--size B] [--json] [TOPIC]\n"
            "Measure latency and throughput on the bus. Without TOPIC: on a scratch topic\n"
            "of its own (shmbus-bench.PID.RANDOM, reliable), removed afterwards, also on\n"
            "an error, SIGINT, SIGTERM or SIGHUP. Latency is one-way, publish to receive,\n"
            "one message in flight, from the timestamp shmbus_publish() takes\n"
            "(CLOCK_REALTIME) to the receiving thread's clock; throughput is N messages\n"
            "published back to back. A scratch topic that shmbusd records or federates\n"
            "(a --record or --nats pattern matches shmbus-bench.*) cannot be removed:\n"
            "bench says so, and it stays until the daemon stops.\n"
            "With TOPIC: nothing is published; it reads TOPIC as an observer (it holds no\n"
            "publisher back) and measures the latency of N live messages from their\n"
            "timestamps (publishers on other hosts add their clock's offset) and their\n"
            "rate; it gives up after 10 s without a message.\n"
            "Prints p50, p90, p99, p99.9 and max with a histogram, or --json one object.\n"
            "\n"
            "Options:\n"
            "  --count N        messages, 1..%u (default %u)\n"
            "  --size B         bytes per message, %u..%u (default %u; scratch topic)\n"
            "  --json           one JSON object\n"
            "  --bus NAME       bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help           this text\n",
            BENCH_COUNT_MAX, BENCH_COUNT_DEFAULT, BENCH_SIZE_MIN, BENCH_SIZE_MAX,
            BENCH_SIZE_DEFAULT, SHMBUS_BUS_DEFAULT);
}

enum { OPT_BUS = 256, OPT_HELP, OPT_COUNT, OPT_SIZE, OPT_JSON };

static const struct option bench_opts[] = {
    {"bus", required_argument, NULL, OPT_BUS},     {"help", no_argument, NULL, OPT_HELP},
    {"count", required_argument, NULL, OPT_COUNT}, {"size", required_argument, NULL, OPT_SIZE},
    {"json", no_argument, NULL, OPT_JSON},         {NULL, 0, NULL, 0}};

/* One option. @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int bench_option(void *args, int opt, const char *cmd)
{
    struct bench_args *a = args;

    if (opt == OPT_BUS)
        a->bus = optarg;
    else if (opt == OPT_HELP)
        return CLI_HELP;
    else if (opt == OPT_JSON)
        a->json = 1;
    else if (opt == OPT_COUNT && cli_parse_u32(optarg, 1, BENCH_COUNT_MAX, &a->count) < 0)
        return cli_usage_err(cmd, "--count wants 1..%u, not '%s'", BENCH_COUNT_MAX, optarg);
    else if (opt == OPT_SIZE && cli_parse_u32(optarg, BENCH_SIZE_MIN, BENCH_SIZE_MAX, &a->size) < 0)
        return cli_usage_err(cmd, "--size wants %u..%u bytes, not '%s'", BENCH_SIZE_MIN,
                             BENCH_SIZE_MAX, optarg);
    else if (opt != OPT_COUNT && opt != OPT_SIZE)
        return cli_usage_hint(cmd); /* getopt printed what was wrong */
    return 0;
}

/* Histogram bucket of a latency: b holds (2^(b-1), 2^b] ns, 0 holds 0..1. */
static unsigned bench_bucket(uint64_t ns)
{
    unsigned b = 0;

    while (b + 1 < BENCH_BUCKETS && (1ull << b) < ns)
        b++;
    return b;
}

/* The receiving thread: take r->want messages, timing the first n_lat. */
static void *bench_receiver(void *arg)
{
    struct bench_recv *r = arg;
    uint64_t last = cli_monotonic_ns();
    shmbus_msg m;

    for (uint32_t i = 0; i < r->want && !cli_stop;) {
        int rc = shmbus_recv(r->sub, r->buf, r->cap, &m, BENCH_SLICE_NS);
        uint64_t now = cli_realtime_ns();

        if (rc == SHMBUS_ERR_TIMEOUT || rc == -EINTR) {
            if (atomic_load_explicit(&r->stop, memory_order_relaxed))
                break; /* the publisher gave up: nothing more comes */
            if ((int64_t)(cli_monotonic_ns() - last) > r->idle_ns) {
                r->rc = SHMBUS_ERR_TIMEOUT;
                break; /* nothing for too long */
            }
            continue;
        }
        if (rc < 0) {
            r->rc = rc;
            break; /* the topic went away, or worse: the caller reports it */
        }
        last = cli_monotonic_ns();
        if (i == 0)
            r->first_ns = last;
        if (i < r->n_lat) {
            cli_latency_add(r->lat, now, m.timestamp_ns);
            r->hist[bench_bucket(now > m.timestamp_ns ? now - m.timestamp_ns : 0)]++;
        }
        r->last_ns = last;
        /* release: pairs with the publisher's acquire (bench_wait()). */
        atomic_store_explicit(&r->got, ++i, memory_order_release);
    }
    atomic_store_explicit(&r->ended, 1, memory_order_relaxed);
    return NULL;
}

/* Wait until the receiver holds @p n messages, or has left. */
static void bench_wait(struct bench_recv *r, uint32_t n)
{
    /* acquire: pairs with the receiver's release; its latency is stored. */
    while (atomic_load_explicit(&r->got, memory_order_acquire) < n &&
           !atomic_load_explicit(&r->ended, memory_order_relaxed) && !cli_stop)
        sched_yield();
}

/* The results: percentiles, histogram and rate, as text or JSON. */
struct bench_result {
    const char *topic;
    int scratch;
    uint32_t size;                 /* message size, 0 unknown */
    const struct cli_latency *lat; /* the latencies measured */
    const uint32_t *hist;          /* BENCH_BUCKETS */
    double rate;                   /* messages per second */
};

static void bench_text(const struct bench_result *r)
{
    static const double q[] = {0.5, 0.9, 0.99, 0.999};
    static const char *const qn[] = {"p50", "p90", "p99", "p99.9"};
    uint32_t top = 1;

    printf("%s topic %s: %llu messages, latency publish -> receive (us):\n",
           r->scratch ? "scratch" : "live", r->topic, (unsigned long long)r->lat->n);
    for (unsigned i = 0; i < 4; i++)
        printf("  %-6s %10.2f\n", qn[i], (double)cli_latency_quantile(r->lat, q[i]) / 1e3);
    printf("  %-6s %10.2f\n", "max", (double)r->lat->max / 1e3);
    for (unsigned b = 0; b < BENCH_BUCKETS; b++)
        top = r->hist[b] > top ? r->hist[b] : top;
    printf("histogram (upper bound, count):\n");
    for (unsigned b = 0; b < BENCH_BUCKETS; b++) {
        if (r->hist[b] == 0)
            continue;
        printf("  <= %10.2f us %9u ", (double)(1ull << b) / 1e3, r->hist[b]);
        for (uint32_t k = 0; k < (uint32_t)((uint64_t)r->hist[b] * BENCH_BAR / top) + 1; k++)
            putchar('#');
        putchar('\n');
    }
    printf("throughput: %.0f msg/s", r->rate);
    if (r->size > 0)
        printf(", %.1f MB/s", r->rate * r->size / 1e6);
    putchar('\n');
}

static void bench_json(const struct bench_result *r)
{
    printf("{\"topic\":");
    cli_json_str(r->topic);
    printf(",\"scratch\":%s,\"method\":\"publish_to_receive\",\"count\":%llu,\"size\":%u,"
           "\"latency_ns\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p99_9\":%llu,\"max\":%llu},"
           "\"histogram\":[",
           r->scratch ? "true" : "false", (unsigned long long)r->lat->n, r->size,
           (unsigned long long)cli_latency_quantile(r->lat, 0.5),
           (unsigned long long)cli_latency_quantile(r->lat, 0.9),
           (unsigned long long)cli_latency_quantile(r->lat, 0.99),
           (unsigned long long)cli_latency_quantile(r->lat, 0.999),
           (unsigned long long)r->lat->max);
    for (unsigned b = 0, first = 1; b < BENCH_BUCKETS; b++) {
        if (r->hist[b] == 0)
            continue;
        printf("%s{\"le_ns\":%llu,\"count\":%u}", first ? "" : ",", 1ull << b, r->hist[b]);
        first = 0;
    }
    printf("],\"msgs_per_s\":%.1f,\"bytes_per_s\":%.1f}\n", r->rate, r->rate * r->size);
}

/* Set up the receiver of @p t for @p want messages (the first @p n_lat
 * timed). @return 0 or an error code. */
static int bench_recv_init(struct bench_recv *r, shmbus_topic *t, uint32_t cap, uint32_t want,
                           uint32_t n_lat, unsigned flags)
{
    shmbus_sub_opts o = {.start = SHMBUS_START_NEXT, .flags = flags};

    memset(r, 0, sizeof(*r));
    r->cap = cap;
    r->want = want;
    r->n_lat = n_lat;
    r->idle_ns = BENCH_IDLE_NS;
    r->buf = malloc(cap);
    r->lat = calloc(1, sizeof(*r->lat));
    if (r->buf == NULL || r->lat == NULL)
        return -ENOMEM;
    return shmbus_sub_create(t, &o, &r->sub);
}

static void bench_recv_fini(struct bench_recv *r)
{
    shmbus_sub_destroy(r->sub);
    free(r->buf);
    free(r->lat);
}

/* Publish @p n messages of @p p, the first @p one_by_one waiting for each
 * to arrive. @return 0 or the publish's error. */
static int bench_publish(shmbus_pub *p, struct bench_recv *r, uint32_t size, uint32_t n,
                         uint32_t one_by_one)
{
    uint8_t *msg = calloc(1, size);
    int rc = msg == NULL ? -ENOMEM : 0;

    for (uint32_t i = 0;
         rc == 0 && i < n && !cli_stop && !atomic_load_explicit(&r->ended, memory_order_relaxed);
         i++) {
        memcpy(msg, &i, sizeof(i));
        rc = shmbus_publish(p, msg, size, BENCH_PUB_NS);
        if (rc == 0 && i < one_by_one)
            bench_wait(r, i + 1);
    }
    free(msg);
    return rc;
}

/* Run the receiver on its thread while the publisher goes (p NULL: only
 * receive). *t0 is when the throughput phase began. @return 0 or an
 * error (reported). */
static int bench_run(struct bench_recv *r, shmbus_pub *p, uint32_t size, uint64_t *t0)
{
    pthread_t th;
    int rc;

    if ((rc = pthread_create(&th, NULL, bench_receiver, r)) != 0) {
        cli_err("cannot start the receiving thread: %s", strerror(rc));
        return -rc;
    }
    rc = 0;
    *t0 = 0;
    if (p != NULL) {
        rc = bench_publish(p, r, size, r->n_lat, r->n_lat); /* latency: one in flight */
        bench_wait(r, r->n_lat);
        *t0 = cli_monotonic_ns();
        if (rc == 0)
            rc = bench_publish(p, r, size, r->want - r->n_lat, 0); /* throughput */
        /* Done or failed: what is still in the ring comes within a slice. */
        atomic_store_explicit(&r->stop, 1, memory_order_relaxed);
    }
    pthread_join(th, NULL);
    if (rc < 0)
        cli_err("publish failed: %s", shmbus_strerror(rc));
    else if (r->rc < 0 && !(p == NULL && r->rc == SHMBUS_ERR_TIMEOUT))
        cli_err("receive failed: %s", shmbus_strerror(rc = r->rc));
    return rc;
}

/* The results of @p r: its latencies' percentiles and histogram, with the rate. */
static void bench_result(const struct bench_args *a, const char *topic, int scratch,
                         struct bench_recv *r, uint64_t t0)
{
    /* acquire: pairs with the receiver's last release (joined anyway). */
    uint32_t got = atomic_load_explicit(&r->got, memory_order_acquire);
    uint32_t tput = scratch ? (got > r->n_lat ? got - r->n_lat : 0) : (got > 0 ? got - 1 : 0);
    uint64_t from = scratch ? t0 : r->first_ns;
    struct bench_result res = {.topic = topic,
                               .scratch = scratch,
                               .size = scratch ? a->size : 0,
                               .lat = r->lat,
                               .hist = r->hist};

    if (tput > 0 && r->last_ns > from)
        res.rate = (double)tput * 1e9 / (double)(r->last_ns - from);
    if (a->json)
        bench_json(&res);
    else
        bench_text(&res);
}

/* The scratch ring's cells for messages of @p size bytes: BENCH_CAPACITY,
 * fewer for large messages (a power of two), so that the ring holds at
 * most BENCH_RING_BYTES. The daemon keeps a removed segment's pages, and
 * counts them in --max-shm, until it stops (docs/design.md "Removing a
 * topic"): each run costs the bus that much, and 1024 cells of 1 MiB
 * would not even pass the default --max-segment. */
static uint32_t bench_capacity(uint32_t size)
{
    uint32_t cap = BENCH_CAPACITY;

    while (cap > 2 && (uint64_t)cap * size > BENCH_RING_BYTES)
        cap >>= 1;
    return cap;
}

/* On a scratch topic of our own, removed afterwards whatever happens.
 * @return an exit status. */
static int bench_scratch(shmbus_bus *b, const struct bench_args *a)
{
    shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = bench_capacity(a->size), .max_msg_size = a->size};
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    struct bench_recv r = {0};
    shmbus_pub *p = NULL;
    shmbus_topic *t = NULL;
    uint32_t rnd = 0;
    uint64_t t0;
    int rc;

    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)cli_monotonic_ns(); /* unique with the pid all the same */
    snprintf(name, sizeof(name), "shmbus-bench.%d.%08x", (int)getpid(), rnd);
    rc = shmbus_open(b, name, &o, 0, &t);
    if (rc < 0) {
        cli_err("cannot create the scratch topic '%s': %s", name, shmbus_strerror(rc));
        return CLI_EXIT_FAIL; /* nothing made: nothing to remove */
    }
    rc = bench_recv_init(&r, t, a->size, 2 * a->count, a->count, 0);
    if (rc == 0)
        rc = shmbus_pub_create(t, &p);
    if (rc < 0)
        cli_err("cannot set up on '%s': %s", name, shmbus_strerror(rc));
    if (rc == 0 && (rc = bench_run(&r, p, a->size, &t0)) == 0 && !cli_stop)
        bench_result(a, name, 1, &r, t0);
    shmbus_pub_destroy(p);
    bench_recv_fini(&r);
    shmbus_topic_destroy(t);
    /* FORCE: the topic is ours; anyone who joined it is told it is gone. */
    int rm = shmbus_topic_remove(b, name, SHMBUS_REMOVE_FORCE);
    /* Busy despite FORCE: the daemon records or federates it (one of its
     * --record or --nats patterns matches shmbus-bench.*), and nothing
     * removes such a topic while the daemon runs. */
    if (rm == SHMBUS_ERR_BUSY)
        cli_err("cannot remove the scratch topic '%s': the daemon records or federates it "
                "(a --record or --nats pattern of shmbusd matches it): it stays until the "
                "daemon stops",
                name);
    else if (rm < 0)
        cli_err("cannot remove the scratch topic '%s': %s (shmbus rm --force %s)", name,
                shmbus_strerror(rm), name);
    return rc < 0 || rm < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* On a live topic, read-only. @return an exit status. */
static int bench_topic(shmbus_bus *b, const struct bench_args *a)
{
    struct bench_recv r = {0};
    shmbus_topic_info info;
    shmbus_topic *t;
    uint64_t t0;
    int rc = shmbus_open(b, a->topic, NULL, SHMBUS_OPEN_NOCREATE, &t);

    if (rc < 0) {
        cli_err("cannot open topic '%s': %s%s", a->topic, shmbus_strerror(rc),
                rc == -ENOENT ? " (bench never creates a topic it is given)" : "");
        return CLI_EXIT_FAIL;
    }
    shmbus_topic_info_get(t, &info);
    rc = bench_recv_init(&r, t, info.max_msg_size, a->count, a->count, SHMBUS_SUB_OBSERVER);
    if (rc < 0)
        cli_err("cannot subscribe to '%s': %s", a->topic, shmbus_strerror(rc));
    if (rc == 0 && (rc = bench_run(&r, NULL, 0, &t0)) == 0) {
        if (r.rc == SHMBUS_ERR_TIMEOUT)
            cli_err("no message on '%s' for 10 s: measured what came", a->topic);
        bench_result(a, a->topic, 0, &r, t0);
    }
    bench_recv_fini(&r);
    shmbus_topic_destroy(t);
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_bench_main(const char *bus, int argc, char **argv)
{
    struct bench_args a = {.bus = bus, .count = BENCH_COUNT_DEFAULT, .size = BENCH_SIZE_DEFAULT};
    char bus_name[SHMBUS_BUS_NAME_MAX + 1];
    shmbus_bus *b;
    int rc = cli_parse_one_operand(argc, argv, bench_opts, bench_option, &a, &a.topic);

    rc = cli_bus_start(rc, cli_bench_usage, a.bus, bus_name, &b);
    if (b == NULL)
        return rc; /* --help, or an error reported */
    rc = a.topic != NULL ? bench_topic(b, &a) : bench_scratch(b, &a);
    shmbus_close(b);
    return rc;
}
