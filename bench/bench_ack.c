/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ack: consumer-group throughput with acknowledgements (issue 14) against
 * the same group without them, in one run. Acknowledging groups exist on
 * bus topics only, so the run starts a private shmbusd. One publisher
 * process publishes fixed-size messages on a reliable topic as fast as the
 * group lets it, for a fixed time, while M member processes of one named
 * group drain it with shmbus_poll():
 *   - none:  no acknowledgements (the baseline), polls of up to 256;
 *   - ack 1: SHMBUS_SUB_ACK with max_inflight 1: each poll takes one
 *            message, which is acknowledged before the next poll;
 *   - ack N: max_inflight N: a poll takes up to N, then each is
 *            acknowledged.
 * Each round runs every configuration once, on a fresh topic of a daemon
 * of its own (stopped after the round, which removes its topics), in an
 * order that alternates from round to round so that each sees the same
 * machine.
 * With --drain the members do not poll until the publisher has published
 * --count messages into a topic that holds them all; the time is then
 * the members' alone (go to the last member's end): what a member spends
 * per message, without the cache-line traffic of a publisher running at
 * the same time, which in the concurrent run slows the publisher more the
 * faster the members poll.
 * Reported per configuration: the median over the rounds of the messages
 * the members received per second (publisher's start to the last member's
 * end); per member count, the per-message cost ratio: the median over the
 * rounds of baseline msgs/s / acknowledging msgs/s in the same round (1.0:
 * acknowledgements cost nothing).
 * The publisher runs on CPU 0 and the members on CPU 1 (bench_pin_cpu(),
 * as every command); one member spins, several spin the default 50 µs
 * and then sleep, as they share one CPU.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define ACK_MEMBERS_MAX 8u
#define ACK_BATCH       256u /* a baseline poll's messages at most */
#define ACK_ROUNDS_MAX  20u
#define ACK_GROUP       "bench"
#define ACK_COUNT_MAX   (1u << 22) /* --count: the topic holds them all */

enum ack_kind { ACK_NONE, ACK_ONE, ACK_MANY, ACK_KINDS };

static const char *const ack_kind_names[ACK_KINDS] = {"none", "ack 1", "ack N"};

struct ack_opts {
    uint64_t size;
    uint64_t count; /* --drain: messages published before the members start */
    int drain;
    double seconds; /* each configuration, each round */
    uint64_t rounds;
    uint64_t inflight; /* N of "ack N" */
    uint64_t members[2];
    unsigned nmembers;
    int json;
    int want_pin;
    int pin;
};

/* One member's results, written by it before it exits. */
struct ack_member_res {
    _Alignas(BENCH_BLOCK) _Atomic uint64_t delivered;
    _Atomic uint64_t end_ns;
    _Atomic uint64_t checksum;
};

struct ack_shared {
    struct bench_tp_shared tp;
    struct ack_member_res m[ACK_MEMBERS_MAX];
};

struct ack_ctx {
    const struct ack_opts *o;
    const char *bus;
    char topic[48];
    enum ack_kind kind;
    unsigned members;
    unsigned index;          /* set before each member's fork */
    struct bench_pipe ready; /* members -> publisher, one byte each */
    struct ack_shared *sh;
};

/* What a member's poll callback gathers. */
struct ack_acc {
    uint64_t delivered;
    uint64_t sum;
    unsigned n; /* seqs to acknowledge after the poll */
    uint64_t seqs[SHMBUS_INFLIGHT_MAX];
    int ack;
};

static int ack_on_msg(const shmbus_msg *m, void *arg)
{
    struct ack_acc *a = arg;

    a->delivered++;
    /* Touch the payload, as the throughput consumer does. */
    if (m->len > 0)
        a->sum += ((const uint8_t *)m->data)[0];
    if (a->ack && a->n < SHMBUS_INFLIGHT_MAX)
        a->seqs[a->n++] = m->seq;
    return 0;
}

/* Acknowledge what the last poll took. @return 0 or -1 (message printed). */
static int ack_flush(shmbus_sub *sub, struct ack_acc *a)
{
    for (unsigned i = 0; i < a->n; i++) {
        int rc = shmbus_ack(sub, a->seqs[i]);

        if (rc < 0)
            return bench_fail("ack member: shmbus_ack", rc);
    }
    a->n = 0;
    return 0;
}

/* Poll (and acknowledge) until the publisher is done and nothing is left
 * for the group. */
static int ack_drain(struct ack_ctx *c, shmbus_sub *sub)
{
    struct ack_acc acc = {.ack = c->kind != ACK_NONE};
    unsigned batch = c->kind == ACK_NONE  ? ACK_BATCH
                     : c->kind == ACK_ONE ? 1u
                                          : (unsigned)c->o->inflight;
    struct ack_member_res *r = &c->sh->m[c->index];
    int stop = 0, n;

    /* --drain: everything is published before the first poll. */
    while (c->o->drain && !(stop = bench_tp_done(&c->sh->tp)))
        bench_cpu_relax();
    for (;;) {
        n = shmbus_poll(sub, ack_on_msg, &acc, batch);
        if (n < 0)
            return bench_fail("ack member: shmbus_poll", n);
        if (ack_flush(sub, &acc) < 0)
            return -1;
        if (n > 0)
            continue;
        if (!stop) {
            /* Once the publisher is done, the polls after this load see
             * every message it sent. */
            stop = bench_tp_done(&c->sh->tp);
            continue;
        }
        n = shmbus_sub_ready(sub);
        if (n < 0)
            return bench_fail("ack member: shmbus_sub_ready", n);
        if (n == 0)
            break;
    }
    /* relaxed, all: the parent reads them after waitpid() on us. */
    atomic_store_explicit(&r->delivered, acc.delivered, memory_order_relaxed);
    atomic_store_explicit(&r->checksum, acc.sum, memory_order_relaxed);
    atomic_store_explicit(&r->end_ns, bench_now_ns(), memory_order_relaxed);
    return 0;
}

static int ack_member(void *arg)
{
    struct ack_ctx *c = arg;
    shmbus_sub_opts so = {.group_name = ACK_GROUP, .spin_ns = c->members == 1 ? INT64_MAX : 0};
    struct bench_ep ep = {0};
    shmbus_bus *bus = NULL;
    int rc;

    bench_fd_close(&c->ready.rd);
    bench_pin_cpu(c->o->pin, 1);
    if (c->kind != ACK_NONE) {
        so.flags = SHMBUS_SUB_ACK;
        so.max_inflight = c->kind == ACK_ONE ? 1u : (uint32_t)c->o->inflight;
    }
    rc = shmbus_connect(c->bus, &bus);
    if (rc < 0)
        return bench_fail("ack member: shmbus_connect", rc);
    rc = -1;
    if (bench_ep_open_bus(&ep, bus, c->topic, NULL, 0, &so) == 0 &&
        bench_ready_post(c->ready.wr) == 0) {
        bench_fd_close(&c->ready.wr);
        rc = ack_drain(c, ep.sub);
    }
    bench_ep_close(&ep);
    shmbus_close(bus);
    return rc;
}

/* --drain: publish count messages (the topic holds them all), then start
 * the clock and let the members go. */
static int ack_publish_count(struct ack_ctx *c, shmbus_pub *pub, const uint8_t *buf)
{
    for (uint64_t n = 0; n < c->o->count; n++) {
        int rc = shmbus_publish(pub, buf, c->o->size, -1);

        if (rc < 0)
            return bench_fail("ack publisher: shmbus_publish", rc);
    }
    bench_tp_begin(&c->sh->tp, 0.0);
    bench_tp_finish(&c->sh->tp, c->o->count, 0);
    return 0;
}

static int ack_publish_all(struct ack_ctx *c, shmbus_pub *pub, const uint8_t *buf)
{
    uint64_t n = 0, deadline;

    if (c->o->drain)
        return ack_publish_count(c, pub, buf);
    deadline = bench_tp_begin(&c->sh->tp, c->o->seconds);
    for (;; n++) {
        int rc;

        if (n % BENCH_CLOCK_EVERY == 0 && bench_now_ns() >= deadline)
            break;
        /* Reliable: wait for room as long as it takes. */
        rc = shmbus_publish(pub, buf, c->o->size, -1);
        if (rc < 0)
            return bench_fail("ack publisher: shmbus_publish", rc);
    }
    bench_tp_finish(&c->sh->tp, n, 0);
    return 0;
}

static int ack_publisher(void *arg)
{
    struct ack_ctx *c = arg;
    struct bench_ep ep = {0};
    shmbus_bus *bus = NULL;
    uint8_t *buf = bench_calloc(c->o->size);
    int rc = -1;

    bench_fd_close(&c->ready.wr);
    bench_pin_cpu(c->o->pin, 0);
    if (buf == NULL)
        return -1;
    memset(buf, 0x5a, c->o->size);
    rc = shmbus_connect(c->bus, &bus);
    if (rc < 0) {
        free(buf);
        return bench_fail("ack publisher: shmbus_connect", rc);
    }
    rc = -1;
    if (bench_ep_open_bus(&ep, bus, c->topic, NULL, 1, NULL) == 0 &&
        bench_ready_wait(c->ready.rd, c->members) == 0)
        rc = ack_publish_all(c, ep.pub, buf);
    bench_ep_close(&ep);
    shmbus_close(bus);
    free(buf);
    return rc;
}

/* The smallest power of two that holds @p count messages. */
static uint32_t ack_capacity(uint64_t count)
{
    uint32_t cap = BENCH_CAPACITY;

    while (cap < count)
        cap *= 2;
    return cap;
}

/* After the reap: what the members received, from the publisher's start
 * to the last member's end, into @p rate. @return 0, or -1 if they did not
 * receive every message (message printed). */
static int ack_collect(const struct ack_ctx *c, struct bench_rate *rate)
{
    uint64_t end = 0;

    bench_tp_read(&c->sh->tp, rate);
    rate->delivered = 0;
    /* relaxed, all: the members were reaped. */
    for (unsigned i = 0; i < c->members; i++) {
        uint64_t e = atomic_load_explicit(&c->sh->m[i].end_ns, memory_order_relaxed);

        rate->delivered += atomic_load_explicit(&c->sh->m[i].delivered, memory_order_relaxed);
        end = e > end ? e : end;
    }
    /* relaxed: as above. */
    rate->elapsed_ns = end - atomic_load_explicit(&c->sh->tp.start_ns, memory_order_relaxed);
    if (rate->delivered == rate->sent)
        return 0;
    fprintf(stderr, "shmbus-bench: ack: %s, %u members: received %" PRIu64 " of %" PRIu64 "\n",
            ack_kind_names[c->kind], c->members, rate->delivered, rate->sent);
    return -1;
}

/* One configuration once: a fresh topic (a group's kind is fixed for its
 * topic's life), the members, then the publisher. @return msgs/s, or < 0. */
static double ack_run_one(const struct ack_opts *o, const char *bus, shmbus_bus *conn,
                          enum ack_kind kind, unsigned members, uint64_t round)
{
    shmbus_topic_opts to = {.mode = SHMBUS_RELIABLE,
                            .capacity = o->drain ? ack_capacity(o->count) : BENCH_CAPACITY,
                            .max_msg_size = (uint32_t)o->size,
                            .max_groups = 1};
    struct ack_ctx c = {
        .o = o, .bus = bus, .kind = kind, .members = members, .ready = BENCH_PIPE_INIT};
    struct bench_procs ps = {0};
    struct bench_rate rate = {0};
    shmbus_topic *t = NULL;
    int rc;

    snprintf(c.topic, sizeof(c.topic), "ack.%llu.%d.%u", (unsigned long long)round, (int)kind,
             members);
    c.sh = bench_shared_alloc(sizeof(*c.sh));
    rc = c.sh == NULL ? -1 : shmbus_open(conn, c.topic, &to, 0, &t);
    if (rc < 0 && c.sh != NULL)
        bench_fail("shmbus_open", rc);
    if (rc == 0)
        rc = bench_pipe_open(&c.ready);
    for (unsigned i = 0; rc == 0 && i < members; i++) {
        c.index = i;
        rc = bench_spawn(&ps, ack_member, &c);
    }
    if (rc == 0)
        rc = bench_spawn(&ps, ack_publisher, &c);
    bench_pipe_close(&c.ready);
    if (bench_reap(&ps) < 0)
        rc = -1;
    if (rc == 0)
        rc = ack_collect(&c, &rate);
    shmbus_topic_destroy(t);
    bench_shared_free(c.sh, sizeof(*c.sh));
    return rc == 0 ? bench_per_s(rate.delivered, rate.elapsed_ns) : -1.0;
}

static void ack_usage(FILE *f)
{
    fputs("usage: shmbus-bench ack [options]\n"
          "  Group throughput through a private shmbusd: one publisher, M members of one\n"
          "  group, without acknowledgements, with max_inflight 1 and with max_inflight N;\n"
          "  every configuration once per round, alternating the order.\n"
          "  --size BYTES        payload size (default 64)\n"
          "  --seconds S         each configuration's time in each round (default 2)\n"
          "  --rounds R          rounds; medians are taken over them (default 3)\n"
          "  --inflight N        the larger max_inflight (default 16)\n"
          "  --drain             publish --count messages first, then time the members\n"
          "                      draining them (without a publisher running)\n"
          "  --count N           --drain: messages (default 100000)\n"
          "  --members M[,M2]    member counts (default 1,4; at most 8)\n"
          "  --shmbusd PATH      the daemon (default: $SHMBUS_BENCH_SHMBUSD, else the\n"
          "                      one built with the benchmark)\n"
          "  --no-pin            do not pin the publisher to CPU 0, members to CPU 1\n"
          "  --json              print the last line as a JSON object\n"
          "  --help              this text\n",
          f);
}

enum {
    ACK_OPT_SIZE = 256,
    ACK_OPT_SECONDS,
    ACK_OPT_ROUNDS,
    ACK_OPT_INFLIGHT,
    ACK_OPT_MEMBERS,
    ACK_OPT_SHMBUSD,
    ACK_OPT_NOPIN,
    ACK_OPT_JSON,
    ACK_OPT_DRAIN,
    ACK_OPT_COUNT
};

static const struct option ack_longopts[] = {
    {"size", required_argument, NULL, ACK_OPT_SIZE},
    {"seconds", required_argument, NULL, ACK_OPT_SECONDS},
    {"rounds", required_argument, NULL, ACK_OPT_ROUNDS},
    {"inflight", required_argument, NULL, ACK_OPT_INFLIGHT},
    {"members", required_argument, NULL, ACK_OPT_MEMBERS},
    {"shmbusd", required_argument, NULL, ACK_OPT_SHMBUSD},
    {"no-pin", no_argument, NULL, ACK_OPT_NOPIN},
    {"json", no_argument, NULL, ACK_OPT_JSON},
    {"drain", no_argument, NULL, ACK_OPT_DRAIN},
    {"count", required_argument, NULL, ACK_OPT_COUNT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* "M" or "M,M2". @return 0, or -1 (message printed). */
static int ack_parse_members(const char *arg, struct ack_opts *o)
{
    char first[16];
    const char *comma = strchr(arg, ',');
    size_t len = comma ? (size_t)(comma - arg) : strlen(arg);

    if (len == 0 || len >= sizeof(first)) {
        fprintf(stderr, "shmbus-bench: ack: --members wants M or M,M2, not '%s'\n", arg);
        return -1;
    }
    memcpy(first, arg, len);
    first[len] = '\0';
    o->nmembers = comma ? 2 : 1;
    if (bench_parse_u64(first, "--members", 1, ACK_MEMBERS_MAX, &o->members[0]) < 0)
        return -1;
    return comma ? bench_parse_u64(comma + 1, "--members", 1, ACK_MEMBERS_MAX, &o->members[1]) : 0;
}

static int ack_option(int opt, const char *arg, struct ack_opts *o, const char **shmbusd)
{
    switch (opt) {
    case ACK_OPT_SIZE:
        return bench_parse_u64(arg, "--size", 0, BENCH_SIZE_MAX, &o->size);
    case ACK_OPT_SECONDS:
        return bench_parse_f64(arg, "--seconds", 0.01, 3600.0, &o->seconds);
    case ACK_OPT_ROUNDS:
        return bench_parse_u64(arg, "--rounds", 1, ACK_ROUNDS_MAX, &o->rounds);
    case ACK_OPT_INFLIGHT:
        return bench_parse_u64(arg, "--inflight", 2, SHMBUS_INFLIGHT_MAX, &o->inflight);
    case ACK_OPT_MEMBERS:
        return ack_parse_members(arg, o);
    case ACK_OPT_SHMBUSD:
        *shmbusd = arg;
        return 0;
    case ACK_OPT_NOPIN:
        o->want_pin = 0;
        return 0;
    case ACK_OPT_JSON:
        o->json = 1;
        return 0;
    case ACK_OPT_DRAIN:
        o->drain = 1;
        return 0;
    case ACK_OPT_COUNT:
        return bench_parse_u64(arg, "--count", 1, ACK_COUNT_MAX, &o->count);
    default:
        return -1;
    }
}

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int ack_parse(int argc, char **argv, struct ack_opts *o, const char **shmbusd)
{
    int opt, rc = 0;

    *o = (struct ack_opts){.size = 64,
                           .seconds = 2.0,
                           .count = 100000,
                           .rounds = 3,
                           .inflight = 16,
                           .members = {1, 4},
                           .nmembers = 2,
                           .want_pin = 1};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", ack_longopts, NULL)) != -1) {
        if (opt == 'h') {
            ack_usage(stdout);
            return 1;
        }
        rc = ack_option(opt, optarg, o, shmbusd);
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "shmbus-bench: ack: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    return rc;
}

static int ack_cmp_f64(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median of @p n rates (sorted in place). */
static double ack_median(double *v, uint64_t n)
{
    qsort(v, n, sizeof(*v), ack_cmp_f64);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* rates[m][kind][round] */
typedef double ack_rates[2][ACK_KINDS][ACK_ROUNDS_MAX];

/* Round @p r on the daemon of bus @p bus: each configuration once, odd
 * rounds in reverse order. */
static int ack_round(const struct ack_opts *o, const char *bus, uint64_t r, ack_rates rates)
{
    unsigned nconf = o->nmembers * ACK_KINDS;
    shmbus_bus *conn = NULL;
    int rc = shmbus_connect(bus, &conn);

    if (rc < 0)
        return bench_fail("shmbus_connect", rc);
    for (unsigned i = 0; i < nconf; i++) {
        unsigned k = r % 2 ? nconf - 1 - i : i;
        unsigned mi = k / ACK_KINDS;
        enum ack_kind kind = (enum ack_kind)(k % ACK_KINDS);
        double v = ack_run_one(o, bus, conn, kind, (unsigned)o->members[mi], r);

        if (v < 0 || bench_interrupted()) {
            rc = -1;
            break;
        }
        rates[mi][kind][r] = v;
        printf("round %" PRIu64 ": %u member%s, %-5s: %.0f msgs/s\n", r, (unsigned)o->members[mi],
               o->members[mi] == 1 ? "" : "s", ack_kind_names[kind], v);
    }
    shmbus_close(conn);
    return rc;
}

/* Every round with a daemon of its own. */
static int ack_run(const struct ack_opts *o, const char *shmbusd, ack_rates rates)
{
    int rc = 0;

    for (uint64_t r = 0; rc == 0 && r < o->rounds; r++) {
        struct bench_daemon d = {0};

        rc = bench_daemon_start(&d, bench_daemon_path(shmbusd), NULL);
        if (rc == 0)
            rc = ack_round(o, d.bus, r, rates);
        if (bench_daemon_stop(&d) < 0)
            rc = -1;
    }
    return rc;
}

/* Of one member count's rounds: the median rate of each kind, and its
 * cost ratio: the median over the rounds of that round's baseline rate
 * over its rate (runs of one round are minutes apart at most, so the host
 * changing speed moves both sides of a round's ratio alike). */
static void ack_summarise(const struct ack_opts *o, double (*rates)[ACK_ROUNDS_MAX],
                          double med[ACK_KINDS], double ratio[ACK_KINDS])
{
    double r[ACK_ROUNDS_MAX];

    for (int k = 0; k < ACK_KINDS; k++) {
        for (uint64_t i = 0; i < o->rounds; i++)
            r[i] = bench_ratio(rates[ACK_NONE][i], rates[k][i]);
        ratio[k] = ack_median(r, o->rounds);
    }
    for (int k = 0; k < ACK_KINDS; k++)
        med[k] = ack_median(rates[k], o->rounds);
}

/* The report's keys of each member count, "m<M>_...": the report keeps
 * the pointers, so they live as long as the program. */
static char ack_keys[2][5][32];

static void ack_print(const struct ack_opts *o, ack_rates rates)
{
    static const char *const suffix[5] = {"none_msgs_per_s", "ack1_msgs_per_s", "ackn_msgs_per_s",
                                          "ratio_ack1", "ratio_ackn"};
    char(*keys)[5][32] = ack_keys;
    struct bench_report r = {0};

    for (unsigned mi = 0; mi < o->nmembers; mi++)
        for (int i = 0; i < 5; i++)
            snprintf(ack_keys[mi][i], sizeof(ack_keys[mi][i]), "m%u_%s", (unsigned)o->members[mi],
                     suffix[i]);
    bench_report_str(&r, "cmd", "ack");
    bench_report_str(&r, "run", o->drain ? "drain" : "concurrent");
    bench_report_u64(&r, "size", o->size);
    bench_report_u64(&r, "rounds", o->rounds);
    bench_report_u64(&r, "inflight", o->inflight);
    for (unsigned mi = 0; mi < o->nmembers; mi++) {
        double med[ACK_KINDS], ratio[ACK_KINDS];

        ack_summarise(o, rates[mi], med, ratio);
        printf("%u member%s, medians: none %.0f msgs/s; ack 1 %.0f msgs/s (cost ratio %.2f); "
               "ack %" PRIu64 " %.0f msgs/s (cost ratio %.2f)\n",
               (unsigned)o->members[mi], o->members[mi] == 1 ? "" : "s", med[ACK_NONE],
               med[ACK_ONE], ratio[ACK_ONE], o->inflight, med[ACK_MANY], ratio[ACK_MANY]);
        bench_report_u64(&r, keys[mi][0], (uint64_t)(med[ACK_NONE] + 0.5));
        bench_report_u64(&r, keys[mi][1], (uint64_t)(med[ACK_ONE] + 0.5));
        bench_report_u64(&r, keys[mi][2], (uint64_t)(med[ACK_MANY] + 0.5));
        bench_report_f64(&r, keys[mi][3], ratio[ACK_ONE]);
        bench_report_f64(&r, keys[mi][4], ratio[ACK_MANY]);
    }
    bench_report_emit(&r, o->json);
}

int bench_cmd_ack(int argc, char **argv)
{
    struct ack_opts o;
    const char *shmbusd = NULL;
    ack_rates *rates = NULL;
    int rc = ack_parse(argc, argv, &o, &shmbusd);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    o.pin = bench_pin_plan(o.want_pin);
    if (o.drain)
        printf("ack --drain: reliable topic, %" PRIu64 " messages of %" PRIu64
               " bytes drained per configuration, %" PRIu64 " rounds, members ",
               o.count, o.size, o.rounds);
    else
        printf("ack: reliable topic, %" PRIu64 "-byte messages, %.3f s per configuration, %" PRIu64
               " rounds, members ",
               o.size, o.seconds, o.rounds);
    for (unsigned i = 0; i < o.nmembers; i++)
        printf("%s%" PRIu64, i ? "," : "", o.members[i]);
    printf(", larger max_inflight %" PRIu64 "\n", o.inflight);
    rates = calloc(1, sizeof(*rates));
    rc = rates == NULL ? -1 : ack_run(&o, shmbusd, *rates);
    if (rc == 0)
        ack_print(&o, *rates);
    free(rates);
    return rc == 0 ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}
