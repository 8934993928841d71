/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal-io: the journal writer's I/O pattern, write() against io_uring,
 * to decide which the writer uses (the issue: "may use io_uring where that
 * measurably helps"). One process appends batches of --batch bytes (a
 * recorder's flush: 4 KiB to 1 MiB) to a fresh file in a private directory
 * under --dir, each followed by fdatasync() with --sync batch, for
 * --seconds or --max-bytes, whichever comes first. Three methods, the
 * order rotating from round to round:
 *   write  write() until the batch is in, then fdatasync(): what the
 *          journal writer does (two system calls per synced batch);
 *   uring  IORING_OP_WRITE linked (IOSQE_IO_LINK) to IORING_OP_FSYNC
 *          with IORING_FSYNC_DATASYNC, one io_uring_submit_and_wait():
 *          one system call per batch, the caller waits as with write();
 *   async  the same pair, but up to JIO_DEPTH batches in flight: the call
 *          returns after the submit (as a recorder would go back to its
 *          ring) and completions are reaped when the window is full;
 *   lagged async's baseline: write() per batch, fdatasync() after every
 *          JIO_DEPTH-th, so that as many batches wait to be known durable
 *          as async leaves in flight.
 * Reported per method: the median over the rounds of MB/s (bytes over the
 * time to the last completion) and of each round's p50/p99/p99.9 of one
 * batch's call as the caller sees it (for async, its submit and any reap).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Batches in flight at most in the async method. */
#define JIO_DEPTH 4u
/* Rounds at most. */
#define JIO_ROUNDS_MAX 20u
/* Batches timed per run at most (the run ends when they are used up). */
#define JIO_SAMPLES_MAX (1u << 20)

enum jio_method { JIO_WRITE, JIO_URING, JIO_ASYNC, JIO_LAGGED, JIO_METHODS };

static const char *const jio_method_name[JIO_METHODS] = {"write", "uring", "async", "lagged"};

struct jio_opts {
    const char *dir;
    uint64_t batch;
    uint64_t max_bytes;
    uint64_t rounds;
    double seconds;
    int sync;
    int json;
};

/* One method's state in one run. */
struct jio_run {
    const struct jio_opts *o;
    int fd;
    uint64_t off;      /* bytes submitted so far */
    unsigned inflight; /* async: batches submitted, not reaped */
    unsigned next;     /* the buffer the next batch is written from */
    struct io_uring ring;
    int ring_ok;
    uint8_t *buf[JIO_DEPTH]; /* async: one buffer per batch in flight */
};

/* One method's results in one round. */
struct jio_result {
    double mb_s;
    struct bench_stats lat;
};

static int jio_write_batch(struct jio_run *r, int sync)
{
    size_t done = 0;

    while (done < r->o->batch) {
        ssize_t n = write(r->fd, r->buf[0] + done, r->o->batch - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return bench_fail("journal-io: write", n < 0 ? -errno : -EIO);
        done += (size_t)n;
    }
    r->off += r->o->batch;
    if (sync && fdatasync(r->fd) < 0)
        return bench_fail("journal-io: fdatasync", -errno);
    return 0;
}

/* Reap one batch's completions (its write, and its fsync when syncing). */
static int jio_reap(struct jio_run *r)
{
    unsigned want = r->o->sync ? 2u : 1u;

    for (unsigned i = 0; i < want; i++) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_wait_cqe(&r->ring, &cqe);
        if (rc < 0)
            return bench_fail("journal-io: io_uring_wait_cqe", rc);
        /* user_data 1: a write, which must be whole; 2: an fsync. */
        if (cqe->res < 0 || (cqe->user_data == 1 && (uint64_t)cqe->res != r->o->batch))
            rc = bench_fail("journal-io: io_uring completion", cqe->res < 0 ? cqe->res : -EIO);
        io_uring_cqe_seen(&r->ring, cqe);
        if (rc < 0)
            return rc;
    }
    r->inflight--;
    return 0;
}

/* Queue one batch (write, and a linked fdatasync) and submit it. */
static int jio_submit(struct jio_run *r, int wait)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    unsigned nr = r->o->sync ? 2u : 1u;
    int rc;

    if (sqe == NULL)
        return bench_fail("journal-io: io_uring_get_sqe", -EBUSY);
    io_uring_prep_write(sqe, r->fd, r->buf[r->next], (unsigned)r->o->batch, r->off);
    r->next = (r->next + 1) % JIO_DEPTH;
    sqe->user_data = 1;
    if (r->o->sync) {
        sqe->flags |= IOSQE_IO_LINK;
        sqe = io_uring_get_sqe(&r->ring);
        if (sqe == NULL)
            return bench_fail("journal-io: io_uring_get_sqe", -EBUSY);
        io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
        sqe->user_data = 2;
    }
    rc = wait ? io_uring_submit_and_wait(&r->ring, nr) : io_uring_submit(&r->ring);
    if (rc < 0)
        return bench_fail("journal-io: io_uring_submit", rc);
    r->off += r->o->batch;
    r->inflight++;
    return wait ? jio_reap(r) : 0;
}

static int jio_batch(struct jio_run *r, enum jio_method m)
{
    if (m == JIO_WRITE)
        return jio_write_batch(r, r->o->sync);
    if (m == JIO_LAGGED)
        return jio_write_batch(r, r->o->sync && r->off / r->o->batch % JIO_DEPTH == JIO_DEPTH - 1);
    if (m == JIO_URING)
        return jio_submit(r, 1);
    /* async: make room in the window first. */
    if (r->inflight == JIO_DEPTH && jio_reap(r) < 0)
        return -1;
    return jio_submit(r, 0);
}

static int jio_open(struct jio_run *r, const char *path, enum jio_method m)
{
    r->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (r->fd < 0)
        return bench_fail("journal-io: creating the file", -errno);
    for (unsigned i = 0; i < JIO_DEPTH; i++) {
        r->buf[i] = bench_calloc(r->o->batch);
        if (r->buf[i] == NULL)
            return -1;
        memset(r->buf[i], 0x5a + (int)i, r->o->batch);
    }
    if (m != JIO_WRITE) {
        int rc = io_uring_queue_init(2 * JIO_DEPTH, &r->ring, 0);
        if (rc < 0)
            return bench_fail("journal-io: io_uring_queue_init", rc);
        r->ring_ok = 1;
    }
    return 0;
}

static void jio_close(struct jio_run *r, const char *path)
{
    if (r->ring_ok)
        io_uring_queue_exit(&r->ring);
    if (r->fd >= 0)
        close(r->fd);
    for (unsigned i = 0; i < JIO_DEPTH; i++)
        free(r->buf[i]);
    unlink(path);
}

/* The timed loop of one run; @p samples gets each batch's call time. */
static int jio_loop(struct jio_run *r, enum jio_method m, _Atomic uint64_t *samples,
                    size_t *nsamples, uint64_t *elapsed)
{
    uint64_t t0 = bench_now_ns(), deadline = t0 + (uint64_t)(r->o->seconds * 1e9);
    size_t n = 0;

    while (n < JIO_SAMPLES_MAX && r->off + r->o->batch <= r->o->max_bytes) {
        uint64_t a = bench_now_ns();
        if (a >= deadline)
            break;
        if (jio_batch(r, m) < 0)
            return -1;
        /* relaxed: this process alone reads the samples, afterwards. */
        atomic_store_explicit(&samples[n++], bench_now_ns() - a, memory_order_relaxed);
    }
    while (r->inflight > 0)
        if (jio_reap(r) < 0)
            return -1;
    /* lagged: the last batches' sync, as async waits for its last ones. */
    if (m == JIO_LAGGED && r->o->sync && fdatasync(r->fd) < 0)
        return bench_fail("journal-io: fdatasync", -errno);
    *elapsed = bench_now_ns() - t0;
    *nsamples = n;
    return 0;
}

static int jio_run_one(const struct jio_opts *o, const char *dir, enum jio_method m,
                       _Atomic uint64_t *samples, struct jio_result *out)
{
    struct jio_run r = {.o = o, .fd = -1};
    char path[4200];
    uint64_t elapsed = 0;
    size_t n = 0;
    int rc;

    rc = snprintf(path, sizeof(path), "%s/%s.dat", dir, jio_method_name[m]);
    if (rc < 0 || (size_t)rc >= sizeof(path)) {
        fprintf(stderr, "shmbus-bench: journal-io: --dir too long\n");
        return -1;
    }
    rc = jio_open(&r, path, m);
    if (rc == 0)
        rc = jio_loop(&r, m, samples, &n, &elapsed);
    jio_close(&r, path);
    if (rc < 0)
        return -1;
    out->mb_s = bench_ratio((double)r.off, (double)elapsed) * 1e9 / 1e6;
    return bench_stats_compute(samples, n, &out->lat);
}

/* Medians over the rounds of one method's results. */
static void jio_medians(struct jio_result *rs, uint64_t n, struct jio_result *med)
{
    double v[JIO_ROUNDS_MAX], p50[JIO_ROUNDS_MAX], p99[JIO_ROUNDS_MAX], p999[JIO_ROUNDS_MAX];

    for (uint64_t i = 0; i < n; i++) {
        v[i] = rs[i].mb_s;
        p50[i] = (double)rs[i].lat.p50;
        p99[i] = (double)rs[i].lat.p99;
        p999[i] = (double)rs[i].lat.p999;
    }
    med->mb_s = bench_median(v, n);
    med->lat.p50 = (uint64_t)bench_median(p50, n);
    med->lat.p99 = (uint64_t)bench_median(p99, n);
    med->lat.p999 = (uint64_t)bench_median(p999, n);
}

static void jio_print(const struct jio_opts *o, const struct jio_result med[JIO_METHODS])
{
    static const char *const k_mb[JIO_METHODS] = {"write_mb_s", "uring_mb_s", "async_mb_s",
                                                  "lagged_mb_s"};
    static const char *const k_p50[JIO_METHODS] = {"write_p50_ns", "uring_p50_ns", "async_p50_ns",
                                                   "lagged_p50_ns"};
    struct bench_report r = {0};
    double ru = bench_ratio(med[JIO_URING].mb_s, med[JIO_WRITE].mb_s);
    double ra = bench_ratio(med[JIO_ASYNC].mb_s, med[JIO_LAGGED].mb_s);

    for (unsigned m = 0; m < JIO_METHODS; m++)
        printf("%-6s medians: %.1f MB/s; per batch p50 %" PRIu64 " ns, p99 %" PRIu64
               " ns, p99.9 %" PRIu64 " ns\n",
               jio_method_name[m], med[m].mb_s, med[m].lat.p50, med[m].lat.p99, med[m].lat.p999);
    printf("ratio MB/s uring/write: %.3f, async/lagged: %.3f\n", ru, ra);
    bench_report_str(&r, "cmd", "journal-io");
    bench_report_str(&r, "dir", o->dir);
    bench_report_u64(&r, "batch", o->batch);
    bench_report_str(&r, "sync", o->sync ? "batch" : "none");
    for (unsigned m = 0; m < JIO_METHODS; m++) {
        bench_report_f64(&r, k_mb[m], med[m].mb_s);
        bench_report_u64(&r, k_p50[m], med[m].lat.p50);
    }
    bench_report_f64(&r, "uring_ratio", ru);
    bench_report_f64(&r, "async_ratio", ra);
    bench_report_emit(&r, o->json);
}

/* Every round runs each method once, the order rotating. */
static int jio_rounds(const struct jio_opts *o, const char *dir, _Atomic uint64_t *samples)
{
    struct jio_result res[JIO_METHODS][JIO_ROUNDS_MAX], med[JIO_METHODS];

    for (uint64_t i = 0; i < o->rounds; i++) {
        for (unsigned k = 0; k < JIO_METHODS; k++) {
            enum jio_method m = (enum jio_method)((i + k) % JIO_METHODS);
            if (bench_interrupted() || jio_run_one(o, dir, m, samples, &res[m][i]) < 0)
                return -1;
        }
    }
    for (unsigned m = 0; m < JIO_METHODS; m++)
        jio_medians(res[m], o->rounds, &med[m]);
    jio_print(o, med);
    return 0;
}

static int jio_run(const struct jio_opts *o)
{
    char dir[4200];
    size_t len = JIO_SAMPLES_MAX * sizeof(uint64_t);
    _Atomic uint64_t *samples = bench_calloc(len);
    int rc = -1;

    if (samples == NULL)
        return -1;
    snprintf(dir, sizeof(dir), "%s/jbench-io.XXXXXX", o->dir);
    if (mkdtemp(dir) == NULL) {
        rc = bench_fail("journal-io: mkdtemp under --dir", -errno);
    } else {
        bench_samples_touch(samples, JIO_SAMPLES_MAX);
        rc = jio_rounds(o, dir, samples);
        if (rmdir(dir) < 0)
            rc = bench_fail("journal-io: removing its directory", -errno);
    }
    free(samples);
    return rc;
}

static void jio_usage(FILE *f)
{
    fputs("usage: shmbus-bench journal-io [options]\n"
          "  Append batches to a file with write() + fdatasync() against io_uring (a write\n"
          "  linked to an fsync, waited for; the same with 4 batches in flight, against\n"
          "  write() with fdatasync() after every 4th batch).\n"
          "  --dir DIR           file system to write to (default /var/tmp)\n"
          "  --batch BYTES       bytes per batch, 512..16777216 (default 65536)\n"
          "  --sync MODE         batch (fdatasync after each batch) | none (default batch)\n"
          "  --seconds S         each method's run at most (default 1)\n"
          "  --max-bytes N       each method's run writes at most this (default 268435456)\n"
          "  --rounds R          rounds, methods rotating; medians (default 3)\n"
          "  --json              print the last line as a JSON object\n"
          "  --help              this text\n",
          f);
}

enum {
    JIO_OPT_DIR = 256,
    JIO_OPT_BATCH,
    JIO_OPT_SYNC,
    JIO_OPT_SECONDS,
    JIO_OPT_MAX,
    JIO_OPT_ROUNDS,
    JIO_OPT_JSON
};

static const struct option jio_longopts[] = {
    {"dir", required_argument, NULL, JIO_OPT_DIR},
    {"batch", required_argument, NULL, JIO_OPT_BATCH},
    {"sync", required_argument, NULL, JIO_OPT_SYNC},
    {"seconds", required_argument, NULL, JIO_OPT_SECONDS},
    {"max-bytes", required_argument, NULL, JIO_OPT_MAX},
    {"rounds", required_argument, NULL, JIO_OPT_ROUNDS},
    {"json", no_argument, NULL, JIO_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int jio_parse_sync(const char *arg, int *out)
{
    if (strcmp(arg, "batch") == 0 || strcmp(arg, "none") == 0) {
        *out = arg[0] == 'b';
        return 0;
    }
    fprintf(stderr, "shmbus-bench: journal-io: --sync takes batch or none, not '%s'\n", arg);
    return -1;
}

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int jio_parse(int argc, char **argv, struct jio_opts *o)
{
    int opt, rc = 0;

    *o = (struct jio_opts){.dir = "/var/tmp",
                           .batch = 65536,
                           .max_bytes = 256u << 20,
                           .rounds = 3,
                           .seconds = 1.0,
                           .sync = 1};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", jio_longopts, NULL)) != -1) {
        switch (opt) {
        case JIO_OPT_DIR:
            o->dir = optarg;
            rc = strlen(optarg) < 4000 ? 0 : -1;
            if (rc < 0)
                fprintf(stderr, "shmbus-bench: journal-io: --dir too long\n");
            break;
        case JIO_OPT_BATCH:
            rc = bench_parse_u64(optarg, "--batch", 512, 16u << 20, &o->batch);
            break;
        case JIO_OPT_SYNC:
            rc = jio_parse_sync(optarg, &o->sync);
            break;
        case JIO_OPT_SECONDS:
            rc = bench_parse_f64(optarg, "--seconds", 0.01, 3600.0, &o->seconds);
            break;
        case JIO_OPT_MAX:
            rc = bench_parse_u64(optarg, "--max-bytes", 1u << 20, 1ull << 40, &o->max_bytes);
            break;
        case JIO_OPT_ROUNDS:
            rc = bench_parse_u64(optarg, "--rounds", 1, JIO_ROUNDS_MAX, &o->rounds);
            break;
        case JIO_OPT_JSON:
            o->json = 1;
            break;
        case 'h':
            jio_usage(stdout);
            return 1;
        default:
            return -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "shmbus-bench: journal-io: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    return rc;
}

int bench_cmd_journal_io(int argc, char **argv)
{
    struct jio_opts o;
    int rc = jio_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    printf("journal-io: %" PRIu64 "-byte batches to %s, sync %s, %.3f s or %" PRIu64
           " bytes per method, %" PRIu64 " rounds\n",
           o.batch, o.dir, o.sync ? "batch" : "none", o.seconds, o.max_bytes, o.rounds);
    return jio_run(&o) == 0 ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}
