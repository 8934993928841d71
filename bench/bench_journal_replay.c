/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal --part replay: reading a journal back. A journal of --count
 * messages is written once into a private directory on tmpfs (--tmpfs-dir),
 * then each round measures, in rotating order:
 *   reader   shmbus_journal_reader_open() and shmbus_journal_next() to the
 *            end, in this process; baseline: read() of the same files with
 *            a 1 MiB buffer (the bytes the reader must at least move);
 *   publish  a process reading the journal and publishing every record on
 *            a fresh topic (--mode) while another drains it, as a replay
 *            tool does; baseline: the same publisher publishing --count
 *            messages from memory.
 * Medians over the rounds of the rates, and their ratios.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_journal.h"

/* The journal's topic name, in its private directory. */
#define RP_TOPIC "replay"
/* Appends between two flushes while the journal is written. */
#define RP_FILL_BATCH 1024u
/* The baseline's read() size. */
#define RP_READ_BUF (1u << 20)

enum rp_kind { RP_READER, RP_RAW, RP_PUB_JOURNAL, RP_PUB_MEMORY, RP_KINDS };

static const char *const rp_kind_name[RP_KINDS] = {"reader", "read()", "replay+publish",
                                                   "publish from memory"};

static int rp_fill(const struct jb_opts *o, const char *dir)
{
    uint8_t *buf = bench_calloc(o->size);
    shmbus_msg m = {.len = (uint32_t)o->size, .publisher_pid = (uint32_t)getpid()};
    shmbus_journal *j = NULL;
    struct timespec ts;
    int rc;

    if (buf == NULL)
        return -1;
    memset(buf, 0x5a, o->size);
    m.data = buf;
    rc = shmbus_journal_open(dir, RP_TOPIC, &o->jo, &j);
    for (uint64_t i = 0; rc >= 0 && i < o->count; i++) {
        clock_gettime(CLOCK_REALTIME, &ts);
        m.seq = i;
        m.timestamp_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        rc = shmbus_journal_append(j, &m);
        if (rc >= 0 && (i + 1) % RP_FILL_BATCH == 0)
            rc = shmbus_journal_flush(j);
    }
    if (j != NULL) {
        int crc = shmbus_journal_close(j);
        rc = rc < 0 ? rc : crc;
    }
    free(buf);
    return rc < 0 ? bench_fail("journal replay: writing the journal", rc) : 0;
}

/* Read the whole journal; @p n gets the records. */
static int rp_reader(const char *dir, uint64_t *n)
{
    shmbus_journal_reader *r = NULL;
    shmbus_journal_record rec;
    uint64_t sum = 0;
    int rc = shmbus_journal_reader_open(dir, RP_TOPIC, &r);

    *n = 0;
    while (rc >= 0 && (rc = shmbus_journal_next(r, &rec)) == 1) {
        /* Touch the payload, as a consumer would. */
        if (rec.len > 0)
            sum += ((const uint8_t *)rec.data)[0];
        (*n)++;
    }
    shmbus_journal_reader_close(r);
    if (rc < 0)
        return bench_fail("journal replay: reading the journal", rc);
    return sum == 0 && *n > 0 ? bench_fail("journal replay: payloads read as zero", -EIO) : 0;
}

/* The baseline: read() every file of the topic's directory; @p bytes. */
static int rp_raw(const char *dir, uint8_t *buf, uint64_t *bytes)
{
    char path[JB_PATH_MAX + 300];
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", dir, RP_TOPIC);
    d = opendir(path);
    if (d == NULL)
        return bench_fail("journal replay: opendir", -errno);
    *bytes = 0;
    while ((e = readdir(d)) != NULL) {
        ssize_t got;
        int fd;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/%s", dir, RP_TOPIC, e->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        while ((got = read(fd, buf, RP_READ_BUF)) > 0)
            *bytes += (uint64_t)got;
        close(fd);
    }
    closedir(d);
    return 0;
}

/* ------------------------------------------------ replaying onto a topic */

struct rp_ctx {
    const struct jb_opts *o;
    const char *name;
    const char *dir; /* NULL: publish from memory */
    struct bench_pipe ready;
    struct bench_tp_shared *sh;
};

static int rp_consume(void *arg)
{
    struct rp_ctx *c = arg;

    /* c->dir is the journal the producer reads: the consumer records none. */
    return jb_consume(c->o, c->name, NULL, &c->ready, c->sh, NULL);
}

/* Publish one message, waiting for room on a reliable topic. */
static int rp_pub(const struct rp_ctx *c, shmbus_pub *pub, const void *data, size_t len,
                  uint64_t *overruns)
{
    int rc = shmbus_publish(pub, data, len, c->o->mode == SHMBUS_RELIABLE ? -1 : 0);

    if (rc == SHMBUS_ERR_OVERRUN) {
        (*overruns)++;
        return 0;
    }
    return rc < 0 ? bench_fail("journal replay: shmbus_publish", rc) : 0;
}

static int rp_publish(void *arg, shmbus_pub *pub, uint8_t *buf)
{
    struct rp_ctx *c = arg;
    shmbus_journal_reader *r = NULL;
    shmbus_journal_record rec;
    uint64_t n = 0, overruns = 0;
    int rc = 0;

    bench_tp_begin(c->sh, 0.0);
    if (c->dir == NULL) {
        for (; rc == 0 && n < c->o->count; n++)
            rc = rp_pub(c, pub, buf, c->o->size, &overruns);
    } else {
        rc = shmbus_journal_reader_open(c->dir, RP_TOPIC, &r);
        while (rc >= 0 && (rc = shmbus_journal_next(r, &rec)) == 1) {
            rc = rp_pub(c, pub, rec.data, rec.len, &overruns);
            n++;
        }
        shmbus_journal_reader_close(r);
        if (rc < -1)
            rc = bench_fail("journal replay: reading the journal", rc);
    }
    if (rc < 0)
        return -1;
    bench_tp_finish(c->sh, n, overruns);
    return 0;
}

static int rp_produce(void *arg)
{
    struct rp_ctx *c = arg;

    return jb_produce(c->o, c->name, &c->ready, rp_publish, c);
}

/* One replay onto a fresh topic; @p out gets the received rate. */
static int rp_onto_topic(const struct jb_opts *o, const char *dir, double *out)
{
    shmbus_topic_opts to = {
        .mode = o->mode, .capacity = BENCH_CAPACITY, .max_msg_size = (uint32_t)o->size};
    struct rp_ctx c = {.o = o, .dir = dir, .ready = BENCH_PIPE_INIT};
    struct bench_topics tp = {0};
    struct bench_rate rate;
    int rc = -1;

    c.sh = bench_shared_alloc(sizeof(*c.sh));
    if (c.sh == NULL || bench_topics_add(&tp, "jp", &to) < 0 || bench_pipe_open(&c.ready) < 0)
        goto out;
    c.name = tp.name[0];
    rc = jb_spawn_pair(&c.ready, rp_consume, rp_produce, &c);
    if (rc == 0) {
        bench_tp_read(c.sh, &rate);
        *out = bench_per_s(rate.delivered, rate.elapsed_ns);
        if (o->mode == SHMBUS_RELIABLE && rate.delivered != o->count)
            rc = bench_fail("journal replay: messages delivered != --count", -EIO);
    }
out:
    bench_pipe_close(&c.ready);
    bench_topics_cleanup(&tp);
    bench_shared_free(c.sh, sizeof(*c.sh));
    return rc;
}

/* ------------------------------------------------------------------ rounds */

/* One measurement of @p k: messages/s into @p rate, MB/s into @p mb. */
static int rp_measure(const struct jb_opts *o, const char *dir, enum rp_kind k, uint8_t *buf,
                      double *rate, double *mb)
{
    uint64_t t0 = bench_now_ns(), n = 0, bytes = 0;
    shmbus_journal_summary s;
    int rc;

    if (k == RP_PUB_JOURNAL || k == RP_PUB_MEMORY) {
        *mb = 0;
        return rp_onto_topic(o, k == RP_PUB_JOURNAL ? dir : NULL, rate);
    }
    rc = k == RP_READER ? rp_reader(dir, &n) : rp_raw(dir, buf, &bytes);
    t0 = bench_now_ns() - t0;
    if (rc < 0)
        return -1;
    if (k == RP_READER) {
        if ((rc = shmbus_journal_summary_get(dir, RP_TOPIC, &s)) < 0)
            return bench_fail("journal replay: shmbus_journal_summary_get", rc);
        bytes = s.bytes;
        if (n != o->count)
            return bench_fail("journal replay: records read != --count", -EIO);
    }
    *rate = bench_per_s(k == RP_READER ? n : o->count, t0);
    *mb = bench_per_s(bytes, t0) / 1e6;
    return 0;
}

/* @p rr and @p rpub: the medians of each round's own ratios (the host's
 * speed moves between rounds). */
static void rp_report(const struct jb_opts *o, const double rate[RP_KINDS],
                      const double mb[RP_KINDS], double rr, double rpub)
{
    struct bench_report r = {0};

    printf("medians: reader %.0f msgs/s (%.0f MB/s of files), read() %.0f MB/s; ratio (of "
           "each round's) %.3f\n",
           rate[RP_READER], mb[RP_READER], mb[RP_RAW], rr);
    printf("medians: replay+publish %.0f msgs/s, publish from memory %.0f msgs/s; ratio %.3f\n",
           rate[RP_PUB_JOURNAL], rate[RP_PUB_MEMORY], rpub);
    bench_report_str(&r, "cmd", "journal");
    bench_report_str(&r, "part", "replay");
    bench_report_str(&r, "mode", bench_mode_name(o->mode));
    bench_report_u64(&r, "size", o->size);
    bench_report_u64(&r, "count", o->count);
    bench_report_u64(&r, "reader_msgs_per_s", (uint64_t)(rate[RP_READER] + 0.5));
    bench_report_f64(&r, "reader_mb_s", mb[RP_READER]);
    bench_report_f64(&r, "read_mb_s", mb[RP_RAW]);
    bench_report_f64(&r, "reader_ratio", rr);
    bench_report_u64(&r, "replay_pub_msgs_per_s", (uint64_t)(rate[RP_PUB_JOURNAL] + 0.5));
    bench_report_u64(&r, "memory_pub_msgs_per_s", (uint64_t)(rate[RP_PUB_MEMORY] + 0.5));
    bench_report_f64(&r, "replay_pub_ratio", rpub);
    bench_report_emit(&r, o->json);
}

static int rp_rounds(const struct jb_opts *o, const char *dir, uint8_t *buf)
{
    double rate[RP_KINDS][JB_ROUNDS_MAX], mb[RP_KINDS][JB_ROUNDS_MAX];
    double mrate[RP_KINDS], mmb[RP_KINDS], rr[JB_ROUNDS_MAX], rpub[JB_ROUNDS_MAX];

    for (uint64_t i = 0; i < o->rounds; i++) {
        for (unsigned k = 0; k < RP_KINDS; k++) {
            /* Odd rounds swap each pair: baseline first. */
            enum rp_kind kind = (enum rp_kind)(i % 2 ? k ^ 1u : k);
            if (bench_interrupted() ||
                rp_measure(o, dir, kind, buf, &rate[kind][i], &mb[kind][i]) < 0)
                return -1;
            printf("  round %" PRIu64 " %-19s %.0f msgs/s", i + 1, rp_kind_name[kind],
                   rate[kind][i]);
            if (kind == RP_READER || kind == RP_RAW)
                printf(", %.0f MB/s", mb[kind][i]);
            printf("\n");
        }
        rr[i] = bench_ratio(mb[RP_READER][i], mb[RP_RAW][i]);
        rpub[i] = bench_ratio(rate[RP_PUB_JOURNAL][i], rate[RP_PUB_MEMORY][i]);
    }
    for (unsigned k = 0; k < RP_KINDS; k++) {
        mrate[k] = bench_median(rate[k], o->rounds);
        mmb[k] = bench_median(mb[k], o->rounds);
    }
    rp_report(o, mrate, mmb, bench_median(rr, o->rounds), bench_median(rpub, o->rounds));
    return 0;
}

int jb_replay(const struct jb_opts *o)
{
    char dir[JB_PATH_MAX];
    uint8_t *buf = bench_calloc(RP_READ_BUF);
    int rc = -1;

    if (buf == NULL || jb_dir_make(o, JB_TMPFS, dir) < 0) {
        free(buf);
        return -1;
    }
    if (rp_fill(o, dir) == 0)
        rc = rp_rounds(o, dir, buf);
    if (jb_dir_remove(dir) < 0)
        rc = -1;
    free(buf);
    return rc;
}
