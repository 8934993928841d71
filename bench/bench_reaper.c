/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reaper: what the daemon's periodic scan (daemon/reaper.c) costs on a
 * large bus, and how long it can keep a control call waiting. Build the
 * daemon's registry in this process (shmbusd_core) with --topics reliable
 * topics of --slots subscriber slots each (a stall timeout set, so that
 * the stall checks run too), half of the slots owned by this process (a
 * live owner: a pidfd, then one table lookup per slot), and run --passes
 * scan passes the way the control loop does: a slice at each tick, the
 * next slices back to back. Each pass reports its time and slices, and
 * the longest slice: what a control call arriving at the worst moment
 * waits for, in wall time and in the thread's CPU time (which leaves out
 * the preemptions of a shared machine). The first pass takes the owner's pidfd and faults the
 * segments in, and is reported apart.
 *
 * Like bench_registry.c, this reaches past the public API into the daemon
 * (daemon/reaper.h, daemon/registry.h).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "log.h"
#include "reaper.h"
#include "registry.h"
#include "registry/admin.h"
#include "util/clock.h"
#include "util/cmp.h"
#include "util/proc.h"

#define RP_PASSES_MAX 101u
/* The reaper's timer: never fires during a run (passes are asked for). */
#define RP_TIMER_MS 3600000u

struct rp_opts {
    uint64_t topics;
    uint64_t slots;
    uint64_t passes;
    int json;
};

struct rp_pass {
    uint64_t ns;
    uint64_t slices;
    uint64_t longest_ns;     /* wall time */
    uint64_t longest_cpu_ns; /* this thread's CPU time */
};

/* Topics "r.<n>", half of their slots taken for this process. */
static int rp_build(struct sbd_registry *reg, const struct rp_opts *o)
{
    struct sb_wire_open req = {.mode = SHMBUS_RELIABLE,
                               .capacity = 64,
                               .max_msg_size = 8,
                               .max_subscribers = (uint32_t)o->slots,
                               .max_groups = 1,
                               .stall_timeout_ms = 1000};
    char why[SB_WIRE_ERR_TEXT];
    uint64_t start = sb_proc_self_start();

    for (uint64_t i = 0; i < o->topics; i++) {
        struct sbd_topic *t;
        int created, rc;

        snprintf(req.name, sizeof(req.name), "r.%" PRIu64, i);
        rc = sbd_topic_open(reg, &req, &t, &created, why, sizeof(why));
        if (rc < 0) {
            fprintf(stderr, "shmbus-bench: reaper: topic %s: %s\n", req.name, why);
            return bench_fail("sbd_topic_open", rc);
        }
        for (uint64_t k = 0; k < o->slots / 2; k++)
            sb_admin_slot_take(t->t, (uint32_t)getpid(), start);
        if (bench_interrupted())
            return -1;
    }
    return 0;
}

/* One pass: a slice, then slices back to back until it ends. */
static void rp_pass(struct sbd_reaper *r, struct rp_pass *p)
{
    uint64_t t0 = bench_now_ns();

    *p = (struct rp_pass){0};
    sbd_reaper_pass(r);
    while (sbd_reaper_busy(r)) {
        uint64_t s0 = bench_now_ns(), c0 = sb_now_ns(CLOCK_THREAD_CPUTIME_ID), dt, dc;

        sbd_reaper_slice(r);
        dt = bench_now_ns() - s0;
        dc = sb_now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
        p->slices++;
        p->longest_ns = dt > p->longest_ns ? dt : p->longest_ns;
        p->longest_cpu_ns = dc > p->longest_cpu_ns ? dc : p->longest_cpu_ns;
    }
    p->ns = bench_now_ns() - t0;
}

static uint64_t rp_median(uint64_t *v, uint64_t n)
{
    qsort(v, n, sizeof(*v), sb_u64_cmp);
    return v[n / 2];
}

static void rp_report(const struct rp_opts *o, const struct rp_pass *first, const struct rp_pass *p,
                      uint64_t n)
{
    uint64_t ns[RP_PASSES_MAX], sl[RP_PASSES_MAX], longest = 0, longest_cpu = 0;
    struct bench_report rep = {0};

    for (uint64_t i = 0; i < n; i++) {
        ns[i] = p[i].ns;
        sl[i] = p[i].slices;
        longest = p[i].longest_ns > longest ? p[i].longest_ns : longest;
        longest_cpu = p[i].longest_cpu_ns > longest_cpu ? p[i].longest_cpu_ns : longest_cpu;
    }
    printf("reaper: %" PRIu64 " topics x %" PRIu64 " slots: first pass %.1f ms in %" PRIu64
           " slices (longest %.2f ms)\n",
           o->topics, o->slots, (double)first->ns / 1e6, first->slices,
           (double)first->longest_ns / 1e6);
    printf("reaper: then median pass %.1f ms in %" PRIu64 " slices; longest slice %.2f ms, "
           "%.2f ms of CPU (%" PRIu64 " passes)\n",
           (double)rp_median(ns, n) / 1e6, rp_median(sl, n), (double)longest / 1e6,
           (double)longest_cpu / 1e6, n);
    bench_report_u64(&rep, "topics", o->topics);
    bench_report_u64(&rep, "slots", o->slots);
    bench_report_u64(&rep, "first_pass_us", first->ns / 1000);
    bench_report_u64(&rep, "pass_us", rp_median(ns, n) / 1000);
    bench_report_u64(&rep, "slices", rp_median(sl, n));
    bench_report_u64(&rep, "longest_slice_us", longest / 1000);
    bench_report_u64(&rep, "longest_slice_cpu_us", longest_cpu / 1000);
    bench_report_emit(&rep, o->json);
}

static int rp_run(const struct rp_opts *o)
{
    struct sbd_config cfg;
    struct rp_pass first, passes[RP_PASSES_MAX];
    struct sbd_registry reg;
    struct sbd_reaper r;
    int epfd, rc = -1;

    sbd_config_defaults(&cfg);
    cfg.max_clients = 1;
    cfg.max_shm = UINT64_MAX;
    cfg.max_segment = 1u << 30;
    snprintf(cfg.bus, sizeof(cfg.bus), "reap-%ld", (long)getpid());
    cfg.max_topics = (uint32_t)o->topics;
    cfg.max_slots = (uint32_t)o->slots;
    /* What the daemon's limits need (sbd_config_fds()), and room beyond
     * for the owner's pidfd (the reaper's budget). */
    if (bench_nofile_raise(o->topics + 128) < 0)
        return -1;
    sbd_log_set_level(SBD_WARN);
    urcu_memb_register_thread();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0 || sbd_registry_init(&reg, &cfg) < 0) {
        fprintf(stderr, "shmbus-bench: reaper: out of memory or descriptors\n");
        goto out;
    }
    if (rp_build(&reg, o) == 0 && sbd_reaper_init(&r, &reg, epfd, RP_TIMER_MS, NULL) == 0) {
        rp_pass(&r, &first);
        for (uint64_t i = 0; i < o->passes && !bench_interrupted(); i++)
            rp_pass(&r, &passes[i]);
        if (!bench_interrupted()) {
            rp_report(o, &first, passes, o->passes);
            rc = 0;
        }
        sbd_reaper_fini(&r);
    }
    sbd_registry_fini(&reg, 1);
out:
    if (epfd >= 0)
        close(epfd);
    urcu_memb_unregister_thread();
    return rc;
}

static void rp_usage(FILE *f)
{
    fputs("usage: shmbus-bench reaper [--topics N] [--slots N] [--passes N] [--json]\n"
          "  the daemon's scan passes over N reliable topics (default 4096) of N slots\n"
          "  (default 1024), half of them owned by a live process: time per pass, slices\n"
          "  per pass, longest slice (what a control call may wait); median of --passes\n"
          "  (default 5) after a first pass reported apart\n",
          f);
}

enum { RP_OPT_TOPICS = 256, RP_OPT_SLOTS, RP_OPT_PASSES, RP_OPT_JSON };

static const struct option rp_longopts[] = {
    {"topics", required_argument, NULL, RP_OPT_TOPICS},
    {"slots", required_argument, NULL, RP_OPT_SLOTS},
    {"passes", required_argument, NULL, RP_OPT_PASSES},
    {"json", no_argument, NULL, RP_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int rp_parse(int argc, char **argv, struct rp_opts *o)
{
    int opt, rc = 0;

    *o = (struct rp_opts){.topics = 4096, .slots = 1024, .passes = 5};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", rp_longopts, NULL)) != -1) {
        if (opt == RP_OPT_TOPICS)
            rc = bench_parse_u64(optarg, "--topics", 1, 100000, &o->topics);
        else if (opt == RP_OPT_SLOTS)
            rc = bench_parse_u64(optarg, "--slots", 2, 1024, &o->slots);
        else if (opt == RP_OPT_PASSES)
            rc = bench_parse_u64(optarg, "--passes", 1, RP_PASSES_MAX, &o->passes);
        else if (opt == RP_OPT_JSON)
            o->json = 1;
        else if (opt == 'h')
            rc = 1, rp_usage(stdout);
        else
            rc = -1;
    }
    /* --help: done; a bad option: already reported. */
    if (rc != 0)
        return rc;
    if (optind < argc) {
        fprintf(stderr, "shmbus-bench: reaper: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

int bench_cmd_reaper(int argc, char **argv)
{
    struct rp_opts o;
    int rc = rp_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    return rp_run(&o) < 0 ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
}
