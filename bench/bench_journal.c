/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal: what recording a topic costs. Three parts (--part):
 *   record   a publisher process publishes as fast as it can while a
 *            recorder process (a subscriber that appends each message to a
 *            journal and flushes per poll batch) records it into a private
 *            directory on tmpfs, or on the disk; baseline: the same
 *            subscriber loop without a journal, in the same run. Rounds
 *            rotate the three; medians of the received rates.
 *   replay   bench_journal_replay.c: reading a journal back.
 *   latency  bench_journal_lat.c: a paced publisher's publish times with
 *            and without a recorder attached.
 * Journals go to directories "jbench.XXXXXX" under --tmpfs-dir and
 * --disk-dir, removed after each run. The writer's sync policy is --sync.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_journal.h"

const char *const jb_where_name[JB_WHERE] = {"none", "tmpfs", "disk"};

int jb_dir_make(const struct jb_opts *o, enum jb_where w, char *dir)
{
    int n = snprintf(dir, JB_PATH_MAX, "%s/jbench.XXXXXX", o->base[w]);

    if (n < 0 || (unsigned)n >= JB_PATH_MAX) {
        fprintf(stderr, "shmbus-bench: journal: --%s-dir too long\n", jb_where_name[w]);
        return -1;
    }
    if (mkdtemp(dir) == NULL)
        return bench_fail("journal: mkdtemp", -errno);
    return 0;
}

static int dir_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

int jb_dir_remove(const char *dir)
{
    /* Depth first, not following links: files before their directory. */
    if (nftw(dir, dir_remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "shmbus-bench: journal: removing %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int jb_run_dir(const struct jb_opts *o, enum jb_where w, char *dir, const char **used)
{
    *used = NULL;
    if (w == JB_NONE)
        return 0;
    if (jb_dir_make(o, w, dir) < 0)
        return -1;
    *used = dir;
    return 0;
}

int jb_spawn_pair(struct bench_pipe *ready, int (*consume)(void *), int (*produce)(void *),
                  void *arg)
{
    struct bench_procs ps = {0};
    int rc = bench_spawn(&ps, consume, arg);

    if (rc == 0)
        rc = bench_spawn(&ps, produce, arg);
    bench_pipe_close(ready);
    if (bench_reap(&ps) < 0)
        rc = -1;
    return rc;
}

int jb_produce(const struct jb_opts *o, const char *name, struct bench_pipe *ready,
               jb_publish_fn fn, void *arg)
{
    struct bench_ep ep = {0};
    uint8_t *buf = bench_calloc(o->size);
    int rc = -1;

    bench_fd_close(&ready->wr);
    bench_pin_cpu(o->pin, 0);
    if (buf != NULL && bench_ep_open(&ep, name, 1, NULL) == 0 &&
        bench_ready_wait(ready->rd, 1) == 0) {
        memset(buf, 0x5a, o->size);
        rc = fn(arg, ep.pub, buf);
    }
    bench_ep_close(&ep);
    free(buf);
    return rc;
}

int jb_rec_open(struct jb_rec *r, const struct jb_opts *o, const char *dir, const char *topic)
{
    int rc;

    *r = (struct jb_rec){0};
    if (dir == NULL)
        return 0;
    rc = shmbus_journal_open(dir, topic, &o->jo, &r->j);
    return rc < 0 ? bench_fail("journal: shmbus_journal_open", rc) : 0;
}

static int rec_msg(const shmbus_msg *m, void *arg)
{
    struct jb_rec *r = arg;

    r->delivered++;
    r->lost += m->lost;
    /* Touch the payload, as the throughput command's subscriber does. */
    if (m->len > 0)
        r->sum += ((const uint8_t *)m->data)[0];
    if (r->j != NULL) {
        int rc = shmbus_journal_append(r->j, m);
        if (rc < 0) {
            r->err = rc;
            return 1;
        }
    }
    return 0;
}

int jb_rec_poll(struct jb_rec *r, shmbus_sub *sub)
{
    int n = shmbus_poll(sub, rec_msg, r, JB_BATCH), rc;

    if (n < 0)
        return bench_fail("journal: shmbus_poll", n);
    if (r->err < 0)
        return bench_fail("journal: shmbus_journal_append", r->err);
    if (n > 0)
        r->batches++;
    if (n == 0 || r->j == NULL)
        return n;
    rc = shmbus_journal_flush(r->j);
    return rc < 0 ? bench_fail("journal: shmbus_journal_flush", rc) : n;
}

int jb_rec_close(struct jb_rec *r, struct jb_jstats *out)
{
    shmbus_journal_stats st = {0};
    int rc = 0;

    if (r->j != NULL) {
        shmbus_journal_stats_get(r->j, &st);
        rc = shmbus_journal_close(r->j);
        r->j = NULL;
        if (rc < 0)
            return bench_fail("journal: shmbus_journal_close", rc);
    }
    if (out == NULL)
        return 0;
    /* relaxed, all: the parent reads them after waitpid() on us. */
    atomic_store_explicit(&out->records, st.records, memory_order_relaxed);
    atomic_store_explicit(&out->gaps, st.gaps, memory_order_relaxed);
    atomic_store_explicit(&out->bytes, st.bytes, memory_order_relaxed);
    atomic_store_explicit(&out->batches, r->batches, memory_order_relaxed);
    return 0;
}

/* Poll @p sub into @p r until the producer of @p sh raised done and
 * nothing is left, then report to @p sh. @return 0, or -1. */
static int jb_drain(struct jb_rec *r, shmbus_sub *sub, struct bench_tp_shared *sh)
{
    int stop = 0;

    for (;;) {
        int n = jb_rec_poll(r, sub);
        if (n < 0)
            return -1;
        if (n > 0)
            continue;
        if (!stop) {
            /* Nothing ready: has the producer finished? Once it has, the
             * polls after this load see every message it sent. */
            stop = bench_tp_done(sh);
            continue;
        }
        /* A poll may return 0 after moving over a lap; ask before leaving. */
        n = shmbus_sub_ready(sub);
        if (n < 0)
            return bench_fail("journal: shmbus_sub_ready", n);
        if (n == 0)
            break;
    }
    bench_tp_report(sh, r->delivered, r->lost, r->sum);
    return 0;
}

int jb_consume(const struct jb_opts *o, const char *name, const char *dir, struct bench_pipe *ready,
               struct bench_tp_shared *sh, struct jb_jstats *js)
{
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT, .spin_ns = INT64_MAX};
    struct bench_ep ep = {0};
    struct jb_rec r;
    int rc = -1;

    bench_fd_close(&ready->rd);
    bench_pin_cpu(o->pin, 1);
    if (jb_rec_open(&r, o, dir, name) < 0)
        return -1;
    if (bench_ep_open(&ep, name, 0, &so) < 0 || bench_ready_post(ready->wr) < 0)
        goto done;
    bench_fd_close(&ready->wr);
    rc = jb_drain(&r, ep.sub, sh);
done:
    bench_ep_close(&ep);
    if (jb_rec_close(&r, js) < 0)
        rc = -1;
    return rc;
}

/* ------------------------------------------------------------ record part */

/* What the record part's parent and children share. */
struct rec_shared {
    struct bench_tp_shared tp;
    struct jb_jstats js;
};

struct rec_ctx {
    const struct jb_opts *o;
    const char *name;
    const char *dir;         /* NULL: unrecorded */
    struct bench_pipe ready; /* recorder -> producer: subscribed */
    struct rec_shared *sh;
};

/* One run's results. */
struct rec_result {
    struct bench_rate rate;
    uint64_t records, gaps, bytes, batches;
};

static int rec_consume(void *arg)
{
    struct rec_ctx *c = arg;

    return jb_consume(c->o, c->name, c->dir, &c->ready, &c->sh->tp, &c->sh->js);
}

static int rec_publish(void *arg, shmbus_pub *pub, uint8_t *buf)
{
    struct rec_ctx *c = arg;
    /* Reliable: wait for room as long as it takes; lossy never waits. */
    int64_t timeout = c->o->mode == SHMBUS_RELIABLE ? -1 : 0;
    uint64_t n = 0, overruns = 0, deadline;

    for (deadline = bench_tp_begin(&c->sh->tp, c->o->seconds);; n++) {
        if (n % BENCH_CLOCK_EVERY == 0 && bench_now_ns() >= deadline)
            break;
        int prc = shmbus_publish(pub, buf, c->o->size, timeout);
        /* Lossy: a newer message took the cell; it is counted as lost. */
        if (prc == SHMBUS_ERR_OVERRUN)
            overruns++;
        else if (prc < 0)
            return bench_fail("journal producer: shmbus_publish", prc);
    }
    bench_tp_finish(&c->sh->tp, n, overruns);
    return 0;
}

static int rec_produce(void *arg)
{
    struct rec_ctx *c = arg;

    return jb_produce(c->o, c->name, &c->ready, rec_publish, c);
}

static void rec_read(struct rec_shared *sh, struct rec_result *out)
{
    bench_tp_read(&sh->tp, &out->rate);
    /* relaxed, all: the recorder was reaped. */
    out->records = atomic_load_explicit(&sh->js.records, memory_order_relaxed);
    out->gaps = atomic_load_explicit(&sh->js.gaps, memory_order_relaxed);
    out->bytes = atomic_load_explicit(&sh->js.bytes, memory_order_relaxed);
    out->batches = atomic_load_explicit(&sh->js.batches, memory_order_relaxed);
}

/* One run: a fresh topic and directory, recorder then producer. */
static int rec_once(const struct jb_opts *o, enum jb_where w, struct rec_result *out)
{
    shmbus_topic_opts to = {
        .mode = o->mode, .capacity = BENCH_CAPACITY, .max_msg_size = (uint32_t)o->size};
    struct rec_ctx c = {.o = o, .ready = BENCH_PIPE_INIT};
    struct bench_topics tp = {0};
    char dir[JB_PATH_MAX];
    int rc = -1;

    c.sh = bench_shared_alloc(sizeof(*c.sh));
    if (c.sh == NULL || bench_topics_add(&tp, "jr", &to) < 0 || bench_pipe_open(&c.ready) < 0 ||
        jb_run_dir(o, w, dir, &c.dir) < 0)
        goto out;
    c.name = tp.name[0];
    rc = jb_spawn_pair(&c.ready, rec_consume, rec_produce, &c);
    if (rc == 0)
        rec_read(c.sh, out);
out:
    if (c.dir != NULL && jb_dir_remove(dir) < 0)
        rc = -1;
    bench_pipe_close(&c.ready);
    bench_topics_cleanup(&tp);
    bench_shared_free(c.sh, sizeof(*c.sh));
    return rc;
}

static void rec_print_run(enum jb_where w, const struct rec_result *r)
{
    printf("  %-5s received %.0f/s, lost %" PRIu64 ", published %" PRIu64 " (%" PRIu64
           " overruns); %.1f messages per poll",
           jb_where_name[w], bench_per_s(r->rate.delivered, r->rate.elapsed_ns), r->rate.lost,
           r->rate.sent, r->rate.overruns,
           bench_ratio((double)r->rate.delivered, (double)r->batches));
    if (w != JB_NONE)
        printf("; journal %" PRIu64 " records, %" PRIu64 " gaps, %" PRIu64
               " bytes, %.0f bytes per flush",
               r->records, r->gaps, r->bytes, bench_ratio((double)r->bytes, (double)r->batches));
    printf("\n");
}

/* The medians of a record run: rates, each round's own ratio to the
 * unrecorded run next to it (the host's speed moves between rounds), the
 * messages each non-empty poll returned, and bytes per flush on tmpfs. */
struct rec_medians {
    double rate[JB_WHERE];
    double ratio[JB_WHERE];
    double per_poll[JB_WHERE];
    double flush_bytes;
};

static void rec_report(const struct jb_opts *o, const struct rec_medians *m)
{
    struct bench_report r = {0};

    printf("medians: unrecorded %.0f msgs/s, recorded on tmpfs %.0f msgs/s, on disk %.0f "
           "msgs/s; of each round's ratio to unrecorded: tmpfs %.3f, disk %.3f\n",
           m->rate[JB_NONE], m->rate[JB_TMPFS], m->rate[JB_DISK], m->ratio[JB_TMPFS],
           m->ratio[JB_DISK]);
    printf("medians: messages per poll: unrecorded %.1f, tmpfs %.1f, disk %.1f; tmpfs %.0f "
           "bytes per flush\n",
           m->per_poll[JB_NONE], m->per_poll[JB_TMPFS], m->per_poll[JB_DISK], m->flush_bytes);
    bench_report_str(&r, "cmd", "journal");
    bench_report_str(&r, "part", "record");
    bench_report_str(&r, "mode", bench_mode_name(o->mode));
    bench_report_str(&r, "sync", o->sync_name);
    bench_report_u64(&r, "size", o->size);
    bench_report_u64(&r, "none_msgs_per_s", (uint64_t)(m->rate[JB_NONE] + 0.5));
    bench_report_u64(&r, "tmpfs_msgs_per_s", (uint64_t)(m->rate[JB_TMPFS] + 0.5));
    bench_report_u64(&r, "disk_msgs_per_s", (uint64_t)(m->rate[JB_DISK] + 0.5));
    bench_report_f64(&r, "tmpfs_ratio", m->ratio[JB_TMPFS]);
    bench_report_f64(&r, "disk_ratio", m->ratio[JB_DISK]);
    bench_report_f64(&r, "none_per_poll", m->per_poll[JB_NONE]);
    bench_report_f64(&r, "tmpfs_per_poll", m->per_poll[JB_TMPFS]);
    bench_report_f64(&r, "disk_per_poll", m->per_poll[JB_DISK]);
    bench_report_u64(&r, "tmpfs_flush_bytes", (uint64_t)(m->flush_bytes + 0.5));
    bench_report_emit(&r, o->json);
}

/* Every round runs the three once, the order rotating; medians. */
static int rec_run(const struct jb_opts *o)
{
    double rate[JB_WHERE][JB_ROUNDS_MAX], ratio[JB_WHERE][JB_ROUNDS_MAX];
    double per_poll[JB_WHERE][JB_ROUNDS_MAX], flush_bytes[JB_ROUNDS_MAX];
    struct rec_medians m;

    for (uint64_t i = 0; i < o->rounds; i++) {
        printf("round %" PRIu64 ":\n", i + 1);
        for (unsigned k = 0; k < JB_WHERE; k++) {
            enum jb_where w = (enum jb_where)((i + k) % JB_WHERE);
            struct rec_result r = {0};
            if (bench_interrupted() || rec_once(o, w, &r) < 0)
                return -1;
            rec_print_run(w, &r);
            rate[w][i] = bench_per_s(r.rate.delivered, r.rate.elapsed_ns);
            per_poll[w][i] = bench_ratio((double)r.rate.delivered, (double)r.batches);
            if (w == JB_TMPFS)
                flush_bytes[i] = bench_ratio((double)r.bytes, (double)r.batches);
        }
        for (unsigned w = 0; w < JB_WHERE; w++)
            ratio[w][i] = bench_ratio(rate[w][i], rate[JB_NONE][i]);
    }
    for (unsigned w = 0; w < JB_WHERE; w++) {
        m.rate[w] = bench_median(rate[w], o->rounds);
        m.ratio[w] = bench_median(ratio[w], o->rounds);
        m.per_poll[w] = bench_median(per_poll[w], o->rounds);
    }
    m.flush_bytes = bench_median(flush_bytes, o->rounds);
    rec_report(o, &m);
    return 0;
}

/* ---------------------------------------------------------------- options */

static void jb_usage(FILE *f)
{
    fputs("usage: shmbus-bench journal [options]\n"
          "  --part record: a publisher as fast as it can, recorded to tmpfs, to disk, and\n"
          "  unrecorded (a subscriber that only reads), rounds rotating; --part replay:\n"
          "  reading a journal back, alone and publishing what it reads, vs read() and\n"
          "  publishing from memory; --part latency: a paced publisher's publish times\n"
          "  unrecorded, recorded to tmpfs and to disk.\n"
          "  --part PART         record | replay | latency (default record)\n"
          "  --size BYTES        payload size (default 64)\n"
          "  --mode MODE         lossy | reliable (default reliable)\n"
          "  --sync POLICY       none | batch | MS (an interval; default none)\n"
          "  --seconds S         record: each run (default 1)\n"
          "  --count N           replay: journal messages (default 2000000); latency:\n"
          "                      publishes per run (default 100000)\n"
          "  --interval-us US    latency: the publisher's pace (default 10)\n"
          "  --rounds R          rounds, medians over them (default 3)\n"
          "  --tmpfs-dir DIR     tmpfs parent of the journals (default /dev/shm)\n"
          "  --disk-dir DIR      disk parent of the journals (default /var/tmp)\n"
          "  --no-pin            do not pin the two sides to CPU 0 and CPU 1\n"
          "  --json              print the last line as a JSON object\n"
          "  --help              this text\n",
          f);
}

enum {
    JB_OPT_PART = 256,
    JB_OPT_SIZE,
    JB_OPT_MODE,
    JB_OPT_SYNC,
    JB_OPT_SECONDS,
    JB_OPT_COUNT,
    JB_OPT_INTERVAL,
    JB_OPT_ROUNDS,
    JB_OPT_TMPFS,
    JB_OPT_DISK,
    JB_OPT_NOPIN,
    JB_OPT_JSON
};

static const struct option jb_longopts[] = {
    {"part", required_argument, NULL, JB_OPT_PART},
    {"size", required_argument, NULL, JB_OPT_SIZE},
    {"mode", required_argument, NULL, JB_OPT_MODE},
    {"sync", required_argument, NULL, JB_OPT_SYNC},
    {"seconds", required_argument, NULL, JB_OPT_SECONDS},
    {"count", required_argument, NULL, JB_OPT_COUNT},
    {"interval-us", required_argument, NULL, JB_OPT_INTERVAL},
    {"rounds", required_argument, NULL, JB_OPT_ROUNDS},
    {"tmpfs-dir", required_argument, NULL, JB_OPT_TMPFS},
    {"disk-dir", required_argument, NULL, JB_OPT_DISK},
    {"no-pin", no_argument, NULL, JB_OPT_NOPIN},
    {"json", no_argument, NULL, JB_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int jb_parse_part(const char *arg, enum jb_part *out)
{
    static const char *const names[] = {"record", "replay", "latency"};

    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(arg, names[i]) == 0) {
            *out = (enum jb_part)i;
            return 0;
        }
    }
    fprintf(stderr, "shmbus-bench: journal: --part takes record, replay or latency\n");
    return -1;
}

static int jb_parse_sync(const char *arg, struct jb_opts *o)
{
    uint64_t ms;

    o->sync_name = arg;
    if (strcmp(arg, "none") == 0 || strcmp(arg, "batch") == 0) {
        o->jo.sync = arg[0] == 'n' ? SHMBUS_JOURNAL_SYNC_NONE : SHMBUS_JOURNAL_SYNC_BATCH;
        return 0;
    }
    if (bench_parse_u64(arg, "--sync", 1, 3600000, &ms) < 0)
        return -1;
    o->jo.sync = SHMBUS_JOURNAL_SYNC_INTERVAL;
    o->jo.sync_interval_ms = (uint32_t)ms;
    return 0;
}

static int jb_option(int opt, const char *arg, struct jb_opts *o, int *count_set)
{
    switch (opt) {
    case JB_OPT_PART:
        return jb_parse_part(arg, &o->part);
    case JB_OPT_SIZE:
        return bench_parse_u64(arg, "--size", 0, BENCH_SIZE_MAX, &o->size);
    case JB_OPT_MODE:
        return bench_parse_mode(arg, &o->mode);
    case JB_OPT_SYNC:
        return jb_parse_sync(arg, o);
    case JB_OPT_SECONDS:
        return bench_parse_f64(arg, "--seconds", 0.01, 3600.0, &o->seconds);
    case JB_OPT_COUNT:
        *count_set = 1;
        return bench_parse_u64(arg, "--count", 1, 1ull << 32, &o->count);
    case JB_OPT_INTERVAL:
        return bench_parse_u64(arg, "--interval-us", 1, 1000000, &o->interval_us);
    case JB_OPT_ROUNDS:
        return bench_parse_u64(arg, "--rounds", 1, JB_ROUNDS_MAX, &o->rounds);
    case JB_OPT_TMPFS:
    case JB_OPT_DISK:
        o->base[opt == JB_OPT_TMPFS ? JB_TMPFS : JB_DISK] = arg;
        return 0;
    case JB_OPT_NOPIN:
        o->want_pin = 0;
        return 0;
    case JB_OPT_JSON:
        o->json = 1;
        return 0;
    default:
        return -1;
    }
}

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int jb_parse(int argc, char **argv, struct jb_opts *o)
{
    int opt, rc = 0, count_set = 0;

    *o = (struct jb_opts){.part = JB_PART_RECORD,
                          .size = 64,
                          .rounds = 3,
                          .seconds = 1.0,
                          .interval_us = 10,
                          .mode = SHMBUS_RELIABLE,
                          .sync_name = "none",
                          .base = {NULL, "/dev/shm", "/var/tmp"},
                          .want_pin = 1};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", jb_longopts, NULL)) != -1) {
        if (opt == 'h') {
            jb_usage(stdout);
            return 1;
        }
        rc = jb_option(opt, optarg, o, &count_set);
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "shmbus-bench: journal: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    if (!count_set)
        o->count = o->part == JB_PART_REPLAY ? 2000000 : 100000;
    return rc;
}

int bench_cmd_journal(int argc, char **argv)
{
    static const char *const part_name[] = {"record", "replay", "latency"};
    struct jb_opts o;
    int rc = jb_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    o.pin = bench_pin_plan(o.want_pin);
    printf("journal %s: %s topic, %" PRIu64 "-byte messages, sync %s, %" PRIu64
           " rounds; journals under %s and %s\n",
           part_name[o.part], bench_mode_name(o.mode), o.size, o.sync_name, o.rounds,
           o.base[JB_TMPFS], o.base[JB_DISK]);
    if (o.part == JB_PART_RECORD)
        rc = rec_run(&o);
    else if (o.part == JB_PART_REPLAY)
        rc = jb_replay(&o);
    else
        rc = jb_latency(&o);
    return rc == 0 ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}
