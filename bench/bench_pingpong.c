/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pingpong: one-way latency between two processes over two topics. Side A
 * (pp_run_pinger) publishes on "ping"; side B (pp_run_echoer), subscribed to
 * ping, answers every message on "pong"; A times publish-to-reply and
 * records half the round trip. The same run then measures the floor under
 * the same conditions (bench_floor.c): one-line rings, one each way, that
 * spin for spin and adaptive waits and sleep on futexes for block, and
 * reports shmbus p50 / floor p50. With --same-cpu (block only) both sides
 * and both floor sides run on CPU 0.
 *
 * With --bus the sides go through a private shmbusd (bench_daemon.c) and
 * the public bus API instead: each connects (shmbus_connect), opens the
 * topics by name (shmbus_open) and registers its publisher and subscriber
 * with the daemon. The baseline is then the direct mode above (segments
 * created and attached without a daemon), in alternating rounds, and the
 * ratio bus p50 / direct p50: what going through the daemon costs on the
 * data path, which should be nothing (the target: within 10%).
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
    int bus;       /* through shmbusd, against the direct mode */
    int same_cpu;  /* both sides on CPU 0 (--wait block only) */
    const char *shmbusd;
    int json;
    int want_pin;
    int pin; /* decided by bench_pin_plan() */
};

/* What both sides need; each child works on its fork-time copy. */
struct pp_ctx {
    const struct pp_opts *o;
    const char *bus;  /* the daemon's bus, or NULL: attach to segments */
    const char *ping; /* segment names, or topic names on the bus */
    const char *pong;
    shmbus_topic_opts topt;    /* on the bus: the options of both topics */
    struct bench_pipe ready;   /* B -> A: B's subscriber on ping exists */
    _Atomic uint64_t *samples; /* count entries, shared with the parent */
};

/* One side's view of both topics, and on the bus its own connection. */
struct pp_side {
    shmbus_bus *conn;
    struct bench_ep in;  /* subscriber */
    struct bench_ep out; /* publisher */
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

/* Open a subscriber on @p sub_name and a publisher on @p pub_name: attached
 * directly, or on the bus through a connection of this process. */
static int pp_side_open(const struct pp_ctx *c, struct pp_side *s, const char *sub_name,
                        const char *pub_name)
{
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT, .spin_ns = pp_spin_ns(c->o->wait)};
    int rc;

    if (c->bus == NULL) {
        if (bench_ep_open(&s->in, sub_name, 0, &so) < 0)
            return -1;
        return bench_ep_open(&s->out, pub_name, 1, NULL);
    }
    rc = shmbus_connect(c->bus, &s->conn);
    if (rc < 0)
        return bench_fail("pingpong: shmbus_connect", rc);
    if (bench_ep_open_bus(&s->in, s->conn, sub_name, &c->topt, 0, &so) < 0)
        return -1;
    return bench_ep_open_bus(&s->out, s->conn, pub_name, &c->topt, 1, NULL);
}

/* Topics first: they must go before their connection. */
static void pp_side_close(struct pp_side *s)
{
    bench_ep_close(&s->out);
    bench_ep_close(&s->in);
    shmbus_close(s->conn);
    s->conn = NULL;
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
    struct pp_side s = {0};
    uint8_t *buf = bench_calloc(c->o->size);
    int rc = -1;

    bench_fd_close(&c->ready.rd);
    bench_pin_cpu(c->o->pin, bench_cpu_b(c->o->same_cpu));
    if (buf == NULL || pp_side_open(c, &s, c->ping, c->pong) < 0)
        goto done;
    /* Our subscriber exists: A may publish the first ping. */
    if (bench_ready_post(c->ready.wr) < 0)
        goto done;
    bench_fd_close(&c->ready.wr);
    rc = pp_echo(c->o, &s.in, &s.out, buf);
done:
    pp_side_close(&s);
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
    struct pp_side s = {0};
    uint8_t *buf = bench_calloc(c->o->size);
    int rc = -1;

    bench_fd_close(&c->ready.wr);
    bench_pin_cpu(c->o->pin, 0);
    bench_samples_touch(c->samples, c->o->count);
    /* Our pong subscriber exists before our first ping, so before B's
     * first pong. */
    if (buf == NULL || pp_side_open(c, &s, c->pong, c->ping) < 0)
        goto done;
    if (bench_ready_wait(c->ready.rd, 1) < 0)
        goto done;
    rc = pp_measure(c, &s.out, &s.in, buf);
done:
    pp_side_close(&s);
    free(buf);
    return rc;
}

/* Name this round's topics: on the bus fresh ones per round (the daemon
 * keeps topics until it stops, and each round counts from sequence 0),
 * else create both segments here. */
static int pp_topics(struct pp_ctx *c, struct bench_topics *tp, uint64_t round, char *ping,
                     char *pong, size_t cap)
{
    if (c->bus != NULL) {
        snprintf(ping, cap, "ping.%llu", (unsigned long long)round);
        snprintf(pong, cap, "pong.%llu", (unsigned long long)round);
        c->ping = ping;
        c->pong = pong;
        return 0;
    }
    if (bench_topics_add(tp, "ping", &c->topt) < 0 || bench_topics_add(tp, "pong", &c->topt) < 0)
        return -1;
    c->ping = tp->name[0];
    c->pong = tp->name[1];
    return 0;
}

/* One shmbus round, directly (@p bus NULL) or on @p bus: name or create
 * both topics, fork B then A, reap, unlink. */
static int pp_run_shmbus(const struct pp_opts *o, const char *bus, uint64_t round,
                         _Atomic uint64_t *samples)
{
    /* max_msg_size 0 would mean the default (1024), which also holds 0 bytes. */
    struct pp_ctx c = {.o = o,
                       .bus = bus,
                       .topt = {.mode = o->mode,
                                .capacity = BENCH_CAPACITY,
                                .max_msg_size = (uint32_t)o->size,
                                .flags = o->exclusive ? SHMBUS_TOPIC_EXCLUSIVE : 0u},
                       .ready = BENCH_PIPE_INIT,
                       .samples = samples};
    char ping[32], pong[32];
    struct bench_topics tp = {0};
    struct bench_procs ps = {0};
    int rc = -1;

    if (pp_topics(&c, &tp, round, ping, pong, sizeof(ping)) < 0 || bench_pipe_open(&c.ready) < 0)
        goto out;
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
          "  then the floor in the same run: one-line rings, one each way, spinning\n"
          "  (spin, adaptive) or sleeping on futexes (block).\n"
          "  --size BYTES        payload size (default 64)\n"
          "  --count N           measured round trips (default 200000)\n"
          "  --warmup N          unmeasured round trips before each round (default 10000)\n"
          "  --rounds R          alternate shmbus and floor R times, report the medians of\n"
          "                      the rounds' percentiles (default 5)\n"
          "  --wait KIND         spin | block | adaptive (default adaptive)\n"
          "  --mode MODE         lossy | reliable (default lossy)\n"
          "  --exclusive         one-publisher topics (SHMBUS_TOPIC_EXCLUSIVE)\n"
          "  --bus               go through a private shmbusd (shmbus_connect, shmbus_open);\n"
          "                      the baseline is then the direct mode, not the floor\n"
          "  --shmbusd PATH      the daemon for --bus (default: $SHMBUS_BENCH_SHMBUSD,\n"
          "                      else the one built with this program)\n"
          "  --same-cpu          both sides (and both floor sides) on CPU 0; needs\n"
          "                      --wait block\n"
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
    PP_OPT_BUS,
    PP_OPT_SHMBUSD,
    PP_OPT_SAME_CPU,
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
    {"bus", no_argument, NULL, PP_OPT_BUS},
    {"shmbusd", required_argument, NULL, PP_OPT_SHMBUSD},
    {"same-cpu", no_argument, NULL, PP_OPT_SAME_CPU},
    {"no-pin", no_argument, NULL, PP_OPT_NOPIN},
    {"json", no_argument, NULL, PP_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option. @return 0, 1 after --help, -1 on a bad value. */
static int pp_option(struct pp_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case PP_OPT_SIZE:
        return bench_parse_u64(arg, "--size", 0, BENCH_SIZE_MAX, &o->size);
    case PP_OPT_COUNT: /* counts stay below 2^32 with warm-up: futex words */
        return bench_parse_u64(arg, "--count", 1, 1000000000, &o->count);
    case PP_OPT_WARMUP:
        return bench_parse_u64(arg, "--warmup", 0, 1000000000, &o->warmup);
    case PP_OPT_ROUNDS:
        return bench_parse_u64(arg, "--rounds", 1, BENCH_ROUNDS_MAX, &o->rounds);
    case PP_OPT_WAIT:
        return pp_parse_wait(arg, &o->wait);
    case PP_OPT_MODE:
        return bench_parse_mode(arg, &o->mode);
    case PP_OPT_EXCL:
        o->exclusive = 1;
        return 0;
    case PP_OPT_BUS:
        o->bus = 1;
        return 0;
    case PP_OPT_SHMBUSD:
        o->shmbusd = arg;
        return 0;
    case PP_OPT_SAME_CPU:
        o->same_cpu = 1;
        return 0;
    case PP_OPT_NOPIN:
        o->want_pin = 0;
        return 0;
    case PP_OPT_JSON:
        o->json = 1;
        return 0;
    case 'h':
        pp_usage(stdout);
        return 1;
    default:
        return -1;
    }
}

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
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", pp_longopts, NULL)) != -1)
        rc = pp_option(o, opt, optarg);
    /* --help: done; a bad option: already reported. */
    if (rc != 0)
        return rc;
    if (o->count < o->rounds) {
        fprintf(stderr, "shmbus-bench: pingpong: --count must be at least --rounds\n");
        return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "shmbus-bench: pingpong: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    /* Two spinning sides on one CPU take turns by time slice: no figure. */
    if (o->same_cpu && o->wait != PP_BLOCK) {
        fprintf(stderr, "shmbus-bench: pingpong: --same-cpu needs --wait block\n");
        return -1;
    }
    if (o->shmbusd != NULL && !o->bus) {
        fprintf(stderr, "shmbus-bench: pingpong: --shmbusd needs --bus\n");
        return -1;
    }
    return 0;
}

/* The pairs of the report about the measured side, in both modes. */
static void pp_report_head(struct bench_report *r, const struct pp_opts *o,
                           const struct bench_stats *s)
{
    bench_report_str(r, "cmd", "pingpong");
    if (o->bus)
        bench_report_str(r, "via", "bus");
    bench_report_str(r, "mode", bench_mode_name(o->mode));
    bench_report_u64(r, "exclusive", (uint64_t)o->exclusive);
    bench_report_str(r, "wait", pp_wait_names[o->wait]);
    bench_report_u64(r, "same_cpu", (uint64_t)o->same_cpu);
    bench_report_u64(r, "size", o->size);
    bench_report_u64(r, "count", o->count);
    bench_report_u64(r, "p50_ns", s->p50);
    bench_report_u64(r, "p99_ns", s->p99);
    bench_report_u64(r, "p999_ns", s->p999);
    bench_report_u64(r, "max_ns", s->max);
}

static void pp_print(const struct pp_opts *o, const struct bench_stats *s,
                     const struct bench_stats *base)
{
    struct bench_report r = {0};
    double ratio = bench_ratio((double)s->p50, (double)base->p50);
    const char *kind = o->bus ? "bus" : "shmbus";
    char label[64];

    snprintf(label, sizeof(label), "%s %s/%s:", kind, bench_mode_name(o->mode),
             pp_wait_names[o->wait]);
    bench_stats_print(label, s);
    if (o->bus) {
        snprintf(label, sizeof(label), "direct %s/%s:", bench_mode_name(o->mode),
                 pp_wait_names[o->wait]);
        bench_stats_print(label, base);
    } else {
        bench_stats_print(o->wait == PP_BLOCK ? "floor one-line rings, futex:"
                                              : "floor one-line rings, spin:",
                          base);
    }
    printf("ratio (%s p50 / %s p50): %.3f\n", kind, o->bus ? "direct" : "floor", ratio);
    pp_report_head(&r, o, s);
    bench_report_u64(&r, o->bus ? "direct_p50_ns" : "floor_p50_ns", base->p50);
    bench_report_u64(&r, o->bus ? "direct_p99_ns" : "floor_p99_ns", base->p99);
    bench_report_u64(&r, o->bus ? "direct_p999_ns" : "floor_p999_ns", base->p999);
    bench_report_f64(&r, "ratio", ratio);
    bench_report_emit(&r, o->json);
}

/* One baseline round: the direct mode against --bus, else the floor. */
static int pp_run_base(const struct pp_opts *ro, uint64_t round, _Atomic uint64_t *samples)
{
    struct bench_floor_args fa = {.count = ro->count,
                                  .warmup = ro->warmup,
                                  .pin = ro->pin,
                                  .same_cpu = ro->same_cpu,
                                  .samples = samples};

    if (ro->bus)
        return pp_run_shmbus(ro, NULL, round, samples);
    return ro->wait == PP_BLOCK ? bench_floor_futex(&fa) : bench_floor_spin(&fa);
}

/* Alternate shmbus and baseline rounds so that both see the same machine:
 * on a shared host the floor itself moves by 2x from one minute to the
 * next. Each round's samples are summarised apart (@p st: rounds entries
 * per side, shmbus first); the report gives the medians of the rounds'
 * percentiles. @p bus is the daemon's bus with --bus, else NULL. */
static int pp_run(const struct pp_opts *o, const char *bus, _Atomic uint64_t *samples,
                  struct bench_stats *st)
{
    struct pp_opts ro = *o;
    struct bench_stats ss, sb;
    struct bench_stats *subj = st, *base = st + o->rounds;

    ro.count = o->count / o->rounds;
    printf("pingpong: %s topics, %s wait, %llu-byte messages, %llu round trips in %llu rounds, "
           "%llu warm-up each\n",
           bench_mode_name(o->mode), pp_wait_names[o->wait], (unsigned long long)o->size,
           (unsigned long long)(ro.count * o->rounds), (unsigned long long)o->rounds,
           (unsigned long long)o->warmup);
    if (bus != NULL)
        printf("pingpong: through shmbusd (bus %s), against the direct mode\n", bus);
    for (uint64_t r = 0; r < o->rounds; r++) {
        if (pp_run_shmbus(&ro, bus, r, samples) < 0 ||
            bench_stats_compute(samples, ro.count, &subj[r]) < 0)
            return -1;
        if (pp_run_base(&ro, r, samples) < 0 ||
            bench_stats_compute(samples, ro.count, &base[r]) < 0)
            return -1;
        printf("round %llu: p50 %llu ns, %s p50 %llu ns\n", (unsigned long long)r + 1,
               (unsigned long long)subj[r].p50, o->bus ? "direct" : "floor",
               (unsigned long long)base[r].p50);
    }
    bench_stats_median(subj, o->rounds, &ss);
    bench_stats_median(base, o->rounds, &sb);
    ro.count = ss.n;
    pp_print(&ro, &ss, &sb);
    return 0;
}

int bench_cmd_pingpong(int argc, char **argv)
{
    struct pp_opts o;
    struct bench_daemon d = {0};
    size_t len, slen;
    _Atomic uint64_t *samples;
    struct bench_stats *st;
    int rc = pp_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    o.pin = bench_pin_plan(o.want_pin);
    if (o.pin && o.same_cpu)
        printf("pinning: --same-cpu, side B on CPU 0 too\n");
    /* One round's samples at a time, then two summaries per round. */
    len = (o.count / o.rounds) * sizeof(*samples);
    slen = 2 * o.rounds * sizeof(*st);
    samples = bench_shared_alloc(len);
    st = bench_calloc(slen);
    rc = samples != NULL && st != NULL ? 0 : -1;
    if (rc == 0 && o.bus)
        rc = bench_daemon_start(&d, bench_daemon_path(o.shmbusd), NULL);
    if (rc == 0)
        rc = pp_run(&o, o.bus ? d.bus : NULL, samples, st);
    if (bench_daemon_stop(&d) < 0)
        rc = -1;
    free(st);
    bench_shared_free(samples, len);
    return rc == 0 ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}
