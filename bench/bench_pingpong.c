/*
 * pingpong: one-way latency between two processes over two topics. Side A
 * (pp_run_pinger) publishes on "ping"; side B (pp_run_echoer), subscribed to
 * ping, answers every message on "pong"; A times publish-to-reply and
 * records half the round trip. The same run then measures the floor under
 * the same conditions (bench_floor.c): a bare cache-line ping-pong for spin
 * and adaptive waits, a bare futex ping-pong for block, and reports
 * shmbus p50 / floor p50.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum pp_wait { PP_SPIN, PP_BLOCK, PP_ADAPTIVE };

static const char *const pp_wait_names[] = {"spin", "block", "adaptive"};

struct pp_opts {
    uint64_t size;
    uint64_t count;
    uint64_t warmup;
    uint64_t rounds;
    enum pp_wait wait;
    uint32_t mode;
    int exclusive; /* SHMBUS_TOPIC_EXCLUSIVE topics */
    int json;
    int want_pin;
    int pin; /* decided by bench_pin_plan() */
};

/* What both sides need; each child works on its fork-time copy. */
struct pp_ctx {
    const struct pp_opts *o;
    const char *ping; /* segment names */
    const char *pong;
    struct bench_pipe ready;   /* B -> A: B's subscriber on ping exists */
    _Atomic uint64_t *samples; /* count entries, shared with the parent */
};

/* The subscriber spin option of each wait kind. */
static int64_t pp_spin_ns(enum pp_wait w)
{
    if (w == PP_SPIN)
        return INT64_MAX;          /* spin, never sleep */
    return w == PP_BLOCK ? -1 : 0; /* sleep at once; library default */
}

/* Check a received message: the expected length and sequence, no loss. */
static int pp_check(const char *side, int len, const shmbus_msg *info, const struct pp_opts *o,
                    uint64_t seq)
{
    if ((uint64_t)len == o->size && info->seq == seq && info->lost == 0)
        return 0;
    fprintf(stderr,
            "shmbus-bench: pingpong %s: got len %d seq %llu lost %llu, want len %llu seq %llu\n",
            side, len, (unsigned long long)info->seq, (unsigned long long)info->lost,
            (unsigned long long)o->size, (unsigned long long)seq);
    return -1;
}

static int pp_echo(const struct pp_opts *o, struct bench_ep *in, struct bench_ep *out, uint8_t *buf)
{
    uint64_t total = o->warmup + o->count;
    shmbus_msg info;

    for (uint64_t i = 0; i < total; i++) {
        int rc = shmbus_recv(in->sub, buf, o->size, &info, -1);
        if (rc < 0)
            return bench_fail("pingpong B: shmbus_recv", rc);
        if (pp_check("B", rc, &info, o, i) < 0)
            return -1;
        rc = shmbus_publish(out->pub, buf, o->size, -1);
        if (rc < 0)
            return bench_fail("pingpong B: shmbus_publish", rc);
    }
    return 0;
}

static int pp_run_echoer(void *arg)
{
    struct pp_ctx *c = arg;
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT, .spin_ns = pp_spin_ns(c->o->wait)};
    struct bench_ep in = {0}, out = {0};
    uint8_t *buf = bench_calloc(c->o->size);
    int rc = -1;

    bench_fd_close(&c->ready.rd);
    bench_pin_cpu(c->o->pin, 1);
    if (buf == NULL || bench_ep_open(&in, c->ping, 0, &so) < 0 ||
        bench_ep_open(&out, c->pong, 1, NULL) < 0)
        goto done;
    /* Our subscriber exists: A may publish the first ping. */
    if (bench_ready_post(c->ready.wr) < 0)
        goto done;
    bench_fd_close(&c->ready.wr);
    rc = pp_echo(c->o, &in, &out, buf);
done:
    bench_ep_close(&out);
    bench_ep_close(&in);
    free(buf);
    return rc;
}

static int pp_measure(const struct pp_ctx *c, struct bench_ep *out, struct bench_ep *in,
                      uint8_t *buf)
{
    const struct pp_opts *o = c->o;
    uint64_t total = o->warmup + o->count;
    shmbus_msg info;

    for (uint64_t i = 0; i < total; i++) {
        uint64_t t0 = bench_now_ns(), t1;
        int rc = shmbus_publish(out->pub, buf, o->size, -1);
        if (rc < 0)
            return bench_fail("pingpong A: shmbus_publish", rc);
        rc = shmbus_recv(in->sub, buf, o->size, &info, -1);
        t1 = bench_now_ns();
        if (rc < 0)
            return bench_fail("pingpong A: shmbus_recv", rc);
        if (pp_check("A", rc, &info, o, i) < 0)
            return -1;
        /* relaxed: the parent reads samples only after waitpid() on us. */
        if (i >= o->warmup)
            atomic_store_explicit(&c->samples[i - o->warmup], (t1 - t0) / 2, memory_order_relaxed);
    }
    return 0;
}

static int pp_run_pinger(void *arg)
{
    struct pp_ctx *c = arg;
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT, .spin_ns = pp_spin_ns(c->o->wait)};
    struct bench_ep in = {0}, out = {0};
    uint8_t *buf = bench_calloc(c->o->size);
    int rc = -1;

    bench_fd_close(&c->ready.wr);
    bench_pin_cpu(c->o->pin, 0);
    bench_samples_touch(c->samples, c->o->count);
    /* Our pong subscriber exists before our first ping, so before B's
     * first pong. */
    if (buf == NULL || bench_ep_open(&out, c->ping, 1, NULL) < 0 ||
        bench_ep_open(&in, c->pong, 0, &so) < 0)
        goto done;
    if (bench_ready_wait(c->ready.rd, 1) < 0)
        goto done;
    rc = pp_measure(c, &out, &in, buf);
done:
    bench_ep_close(&in);
    bench_ep_close(&out);
    free(buf);
    return rc;
}

/* The shmbus run: create both topics, fork B then A, reap, unlink. */
static int pp_run_bus(const struct pp_opts *o, _Atomic uint64_t *samples)
{
    /* max_msg_size 0 would mean the default (1024), which also holds 0 bytes. */
    shmbus_topic_opts to = {.mode = o->mode,
                            .capacity = BENCH_CAPACITY,
                            .max_msg_size = (uint32_t)o->size,
                            .flags = o->exclusive ? SHMBUS_TOPIC_EXCLUSIVE : 0u};
    struct pp_ctx c = {.o = o, .ready = BENCH_PIPE_INIT, .samples = samples};
    struct bench_topics tp = {0};
    struct bench_procs ps = {0};
    int rc = -1;

    if (bench_topics_add(&tp, "ping", &to) < 0 || bench_topics_add(&tp, "pong", &to) < 0 ||
        bench_pipe_open(&c.ready) < 0)
        goto out;
    c.ping = tp.name[0];
    c.pong = tp.name[1];
    rc = bench_spawn(&ps, pp_run_echoer, &c);
    if (rc == 0)
        rc = bench_spawn(&ps, pp_run_pinger, &c);
    /* Close our ends so that a side waiting on the pipe sees EOF if its
     * peer dies. */
    bench_pipe_close(&c.ready);
    if (bench_reap(&ps) < 0)
        rc = -1;
out:
    bench_pipe_close(&c.ready);
    bench_topics_cleanup(&tp);
    return rc;
}

static void pp_usage(FILE *f)
{
    fputs("usage: shmbus-bench pingpong [options]\n"
          "  One-way latency (round trip / 2) between two processes over two topics,\n"
          "  then the same for a bare cache-line (spin, adaptive) or futex (block)\n"
          "  ping-pong, in the same run.\n"
          "  --size BYTES        payload size (default 64)\n"
          "  --count N           measured round trips (default 200000)\n"
          "  --warmup N          unmeasured round trips before each round (default 10000)\n"
          "  --rounds R          alternate shmbus and floor R times (default 5)\n"
          "  --wait KIND         spin | block | adaptive (default adaptive)\n"
          "  --mode MODE         lossy | reliable (default lossy)\n"
          "  --exclusive         one-publisher topics (SHMBUS_TOPIC_EXCLUSIVE)\n"
          "  --no-pin            do not pin the sides to CPU 0 and CPU 1\n"
          "  --json              print the last line as a JSON object\n"
          "  --help              this text\n",
          f);
}

static int pp_parse_wait(const char *arg, enum pp_wait *w)
{
    for (int i = PP_SPIN; i <= PP_ADAPTIVE; i++) {
        if (strcmp(arg, pp_wait_names[i]) == 0) {
            *w = (enum pp_wait)i;
            return 0;
        }
    }
    fprintf(stderr, "shmbus-bench: --wait wants spin, block or adaptive, not '%s'\n", arg);
    return -1;
}

enum {
    PP_OPT_SIZE = 256,
    PP_OPT_COUNT,
    PP_OPT_WARMUP,
    PP_OPT_ROUNDS,
    PP_OPT_WAIT,
    PP_OPT_MODE,
    PP_OPT_EXCL,
    PP_OPT_NOPIN,
    PP_OPT_JSON
};

static const struct option pp_longopts[] = {
    {"size", required_argument, NULL, PP_OPT_SIZE},
    {"count", required_argument, NULL, PP_OPT_COUNT},
    {"warmup", required_argument, NULL, PP_OPT_WARMUP},
    {"rounds", required_argument, NULL, PP_OPT_ROUNDS},
    {"wait", required_argument, NULL, PP_OPT_WAIT},
    {"mode", required_argument, NULL, PP_OPT_MODE},
    {"exclusive", no_argument, NULL, PP_OPT_EXCL},
    {"no-pin", no_argument, NULL, PP_OPT_NOPIN},
    {"json", no_argument, NULL, PP_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int pp_parse(int argc, char **argv, struct pp_opts *o)
{
    int opt, rc = 0;

    *o = (struct pp_opts){.size = 64,
                          .count = 200000,
                          .warmup = 10000,
                          .rounds = 5,
                          .wait = PP_ADAPTIVE,
                          .mode = SHMBUS_LOSSY,
                          .want_pin = 1};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", pp_longopts, NULL)) != -1) {
        switch (opt) {
        case PP_OPT_SIZE:
            rc = bench_parse_u64(optarg, "--size", 0, BENCH_SIZE_MAX, &o->size);
            break;
        case PP_OPT_COUNT: /* counts stay below 2^32 with warm-up: futex words */
            rc = bench_parse_u64(optarg, "--count", 1, 1000000000, &o->count);
            break;
        case PP_OPT_WARMUP:
            rc = bench_parse_u64(optarg, "--warmup", 0, 1000000000, &o->warmup);
            break;
        case PP_OPT_ROUNDS:
            rc = bench_parse_u64(optarg, "--rounds", 1, 1000, &o->rounds);
            break;
        case PP_OPT_WAIT:
            rc = pp_parse_wait(optarg, &o->wait);
            break;
        case PP_OPT_MODE:
            rc = bench_parse_mode(optarg, &o->mode);
            break;
        case PP_OPT_EXCL:
            o->exclusive = 1;
            break;
        case PP_OPT_NOPIN:
            o->want_pin = 0;
            break;
        case PP_OPT_JSON:
            o->json = 1;
            break;
        case 'h':
            pp_usage(stdout);
            return 1;
        default:
            return -1;
        }
    }
    if (rc == 0 && o->count < o->rounds) {
        fprintf(stderr, "shmbus-bench: pingpong: --count must be at least --rounds\n");
        rc = -1;
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "shmbus-bench: pingpong: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    return rc;
}

static void pp_print(const struct pp_opts *o, const struct bench_stats *bus,
                     const struct bench_stats *base)
{
    struct bench_report r = {0};
    double ratio = bench_ratio((double)bus->p50, (double)base->p50);
    char label[64];

    snprintf(label, sizeof(label), "shmbus %s/%s:", bench_mode_name(o->mode),
             pp_wait_names[o->wait]);
    bench_stats_print(label, bus);
    bench_stats_print(
        o->wait == PP_BLOCK ? "floor futex ping-pong:" : "floor cache-line ping-pong:", base);
    printf("ratio (shmbus p50 / floor p50): %.3f\n", ratio);
    bench_report_str(&r, "cmd", "pingpong");
    bench_report_str(&r, "mode", bench_mode_name(o->mode));
    bench_report_u64(&r, "exclusive", (uint64_t)o->exclusive);
    bench_report_str(&r, "wait", pp_wait_names[o->wait]);
    bench_report_u64(&r, "size", o->size);
    bench_report_u64(&r, "count", o->count);
    bench_report_u64(&r, "p50_ns", bus->p50);
    bench_report_u64(&r, "p99_ns", bus->p99);
    bench_report_u64(&r, "p999_ns", bus->p999);
    bench_report_u64(&r, "max_ns", bus->max);
    bench_report_u64(&r, "floor_p50_ns", base->p50);
    bench_report_u64(&r, "floor_p99_ns", base->p99);
    bench_report_f64(&r, "ratio", ratio);
    bench_report_emit(&r, o->json);
}

/* Alternate shmbus and floor rounds so that both see the same machine: on
 * a shared host the floor itself moves by 2x from one minute to the next.
 * Samples of all rounds go into one array each, then the report. */
static int pp_run(const struct pp_opts *o, _Atomic uint64_t *bus, _Atomic uint64_t *base)
{
    struct pp_opts ro = *o;
    struct bench_stats sb, sf;
    uint64_t total;

    ro.count = o->count / o->rounds;
    total = ro.count * o->rounds;
    printf("pingpong: %s topics, %s wait, %llu-byte messages, %llu round trips in %llu rounds, "
           "%llu warm-up each\n",
           bench_mode_name(o->mode), pp_wait_names[o->wait], (unsigned long long)o->size,
           (unsigned long long)total, (unsigned long long)o->rounds, (unsigned long long)o->warmup);
    for (uint64_t r = 0; r < o->rounds; r++) {
        struct bench_floor_args fa = {
            .count = ro.count, .warmup = o->warmup, .pin = o->pin, .samples = base + r * ro.count};
        if (pp_run_bus(&ro, bus + r * ro.count) < 0)
            return -1;
        if ((o->wait == PP_BLOCK ? bench_floor_futex(&fa) : bench_floor_spin(&fa)) < 0)
            return -1;
    }
    if (bench_stats_compute(bus, total, &sb) < 0 || bench_stats_compute(base, total, &sf) < 0)
        return -1;
    ro.count = total;
    pp_print(&ro, &sb, &sf);
    return 0;
}

int bench_cmd_pingpong(int argc, char **argv)
{
    struct pp_opts o;
    size_t len;
    _Atomic uint64_t *bus, *base;
    int rc = pp_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    o.pin = bench_pin_plan(o.want_pin);
    len = o.count * sizeof(*bus);
    bus = bench_shared_alloc(len);
    base = bench_shared_alloc(len);
    rc = bus != NULL && base != NULL ? pp_run(&o, bus, base) : -1;
    bench_shared_free(bus, len);
    bench_shared_free(base, len);
    return rc == 0 ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}
