/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry: the daemon's footprint and its topic lookups.
 *
 * Memory: start a private shmbusd (bench_daemon.c), create --topics small
 * topics through it (capacity 64, 64-byte messages), connect --clients
 * clients from this process that open --opens topics each, and read the
 * daemon's /proc/PID/status. Its own memory is RssAnon + RssFile; RssShmem
 * is the topic segments it maps, counted apart (their size is the topics'
 * choice, not the daemon's).
 *
 * Lookups: build the daemon's registry in this process (shmbusd_core) with
 * 100, 1,000, ... up to --lookup-max tiny topics (capacity 2, 8-byte
 * messages, one slot, one group) and time sbd_topic_lookup() on random
 * existing names and on misses, each under its own urcu_memb_read_lock()
 * as the daemon takes it. A hash table keeps the time per lookup flat as
 * the registry grows; the report gives largest / smallest. The table grows
 * lazily, in a liburcu worker thread, after the adds that call for it:
 * each size is measured after a pause (--settle-ms) that lets it finish,
 * so that the figure is the steady state and not the table before it grew.
 *
 * Unlike every other bench file, this one reaches past the public API into
 * the daemon (daemon/registry.h).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "log.h"
#include "registry.h"

/* Topic "t.<n>"; the misses are names past the last one ever created. */
#define RG_NAME_LEN 24
#define RG_MISSES   4096u
/* Registry sizes measured: RG_SIZE_FIRST, ten times that, ..., --lookup-max. */
#define RG_SIZE_FIRST 100u
#define RG_SIZES_MAX  8u
#define RG_ROUNDS_MAX 101u
/* Page of shmbus_list() when counting the daemon's topics. */
#define RG_LIST_PAGE 64u
/* The bound on the daemon's own resident memory, in KiB. */
#define RG_OWN_TARGET_KIB (32u * 1024u)

struct rg_opts {
    uint64_t topics;
    uint64_t clients;
    uint64_t opens;
    uint64_t lookup_max;
    uint64_t lookups;
    uint64_t rounds;
    uint64_t settle_ms;
    const char *shmbusd;
    int json;
};

/* From /proc/PID/status, in KiB. */
struct rg_mem {
    uint64_t rss, anon, file, shmem;
};

struct rg_mem_result {
    struct rg_mem idle;   /* just started */
    struct rg_mem loaded; /* topics created, clients connected */
    uint64_t create_ns;   /* creating every topic */
    uint64_t connect_ns;  /* connecting every client, with its opens */
};

struct rg_lookup_result {
    unsigned n;
    uint64_t size[RG_SIZES_MAX];
    double hit_ns[RG_SIZES_MAX]; /* medians of the rounds */
    double miss_ns[RG_SIZES_MAX];
    /* Baseline: comparing the name of the topic a hit finds, reached
     * through a plain array: the cache misses any lookup must pay. */
    double touch_ns[RG_SIZES_MAX];
};

/* The memory part's clients: connections and their topic handles. */
struct rg_clients {
    shmbus_bus **conn;
    shmbus_topic **topic; /* opens handles per client, client after client */
    uint64_t n;           /* connections made */
    uint64_t opens;
};

struct rg_name {
    char s[RG_NAME_LEN];
};

static void rg_name_fill(struct rg_name *n, uint64_t i)
{
    snprintf(n->s, sizeof(n->s), "t.%" PRIu64, i);
}

/* @return 1 (message printed) once SIGINT or SIGTERM arrived. */
static int rg_interrupted(void)
{
    if (!bench_interrupted())
        return 0;
    fprintf(stderr, "shmbus-bench: registry: interrupted\n");
    return 1;
}

/* ------------------------------------------------------------------ memory */

static int rg_mem_read(pid_t pid, struct rg_mem *m)
{
    const struct {
        const char *key;
        uint64_t *val;
    } k[] = {
        {"VmRSS", &m->rss}, {"RssAnon", &m->anon}, {"RssFile", &m->file}, {"RssShmem", &m->shmem}};
    char path[64], line[256], key[32];
    unsigned long long v;
    unsigned found = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "re");
    if (f == NULL) {
        fprintf(stderr, "shmbus-bench: registry: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%31[^:]: %llu", key, &v) != 2)
            continue;
        for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
            if (strcmp(key, k[i].key) == 0) {
                *k[i].val = v;
                found++;
            }
    }
    fclose(f);
    if (found != sizeof(k) / sizeof(k[0])) {
        fprintf(stderr, "shmbus-bench: registry: %s lacks VmRSS, RssAnon, RssFile or RssShmem\n",
                path);
        return -1;
    }
    return 0;
}

/* Count the daemon's topics with shmbus_list(). @return the count, or -1. */
static int64_t rg_count_topics(shmbus_bus *conn)
{
    shmbus_topic_entry page[RG_LIST_PAGE];
    char after[SHMBUS_TOPIC_NAME_MAX + 1] = "";
    int64_t total = 0;
    int n;

    do {
        n = shmbus_list(conn, after, page, RG_LIST_PAGE);
        if (n < 0)
            return bench_fail("registry: shmbus_list", n);
        if (n > 0)
            memcpy(after, page[n - 1].name, sizeof(after));
        total += n;
    } while (n == (int)RG_LIST_PAGE);
    return total;
}

/* Create every topic through one connection; the daemon keeps them once
 * the handles are gone. */
static int rg_create_topics(const struct rg_opts *o, const char *bus)
{
    const shmbus_topic_opts to = {.mode = SHMBUS_LOSSY, .capacity = 64, .max_msg_size = 64};
    shmbus_bus *conn;
    int64_t listed;
    int rc = shmbus_connect(bus, &conn);

    if (rc < 0)
        return bench_fail("registry: shmbus_connect", rc);
    for (uint64_t i = 0; i < o->topics && rc == 0; i++) {
        struct rg_name name;
        shmbus_topic *t;

        rg_name_fill(&name, i);
        rc = shmbus_open(conn, name.s, &to, 0, &t);
        if (rc < 0)
            bench_fail("registry: shmbus_open (create)", rc);
        shmbus_topic_destroy(t);
        if (rc == 0 && rg_interrupted())
            rc = -EINTR;
    }
    listed = rc == 0 ? rg_count_topics(conn) : -1;
    shmbus_close(conn);
    /* The daemon must list exactly what we created. */
    if (rc == 0 && listed >= 0 && (uint64_t)listed != o->topics) {
        fprintf(stderr,
                "shmbus-bench: registry: shmbus_list gives %" PRId64 " topics, not %" PRIu64 "\n",
                listed, o->topics);
        return -1;
    }
    return rc < 0 || listed < 0 ? -1 : 0;
}

/* Open one client's topics (NOCREATE: they all exist). */
static int rg_client_opens(struct rg_clients *c, uint64_t i, uint64_t topics)
{
    for (uint64_t j = 0; j < c->opens; j++) {
        uint64_t k = i * c->opens + j;
        struct rg_name name;
        int rc;

        rg_name_fill(&name, k % topics);
        rc = shmbus_open(c->conn[i], name.s, NULL, SHMBUS_OPEN_NOCREATE, &c->topic[k]);
        if (rc < 0)
            return bench_fail("registry: client shmbus_open", rc);
    }
    return 0;
}

static int rg_clients_open(struct rg_clients *c, const struct rg_opts *o, const char *bus)
{
    c->opens = o->opens;
    c->conn = bench_calloc(o->clients * sizeof(*c->conn));
    c->topic = bench_calloc(o->clients * o->opens * sizeof(*c->topic));
    /* Out of memory (message printed). */
    if (c->conn == NULL || c->topic == NULL)
        return -1;
    for (uint64_t i = 0; i < o->clients; i++) {
        int rc = shmbus_connect(bus, &c->conn[i]);

        if (rc < 0)
            return bench_fail("registry: client shmbus_connect", rc);
        c->n = i + 1;
        if (rg_client_opens(c, i, o->topics) < 0 || rg_interrupted())
            return -1;
    }
    return 0;
}

/* Topics before their connection, as the API asks. */
static void rg_clients_close(struct rg_clients *c)
{
    for (uint64_t i = 0; i < c->n; i++) {
        for (uint64_t j = 0; j < c->opens; j++)
            shmbus_topic_destroy(c->topic[i * c->opens + j]);
        shmbus_close(c->conn[i]);
    }
    free(c->topic);
    free(c->conn);
    memset(c, 0, sizeof(*c));
}

static int rg_memory(const struct rg_opts *o, struct rg_mem_result *res)
{
    char max_topics[24], max_clients[24];
    const char *args[] = {"--max-topics", max_topics, "--max-clients", max_clients, NULL};
    struct bench_daemon d;
    struct rg_clients c = {0};
    uint64_t t0;
    int rc = -1;

    /* Slack for the creating connection, which the daemon may still count. */
    snprintf(max_topics, sizeof(max_topics), "%" PRIu64, o->topics + 16);
    snprintf(max_clients, sizeof(max_clients), "%" PRIu64, o->clients + 16);
    /* Our side holds a socket per client and a descriptor per open topic. */
    if (bench_nofile_raise(o->clients * (o->opens + 1) + 64) < 0)
        return -1;
    if (bench_daemon_start(&d, bench_daemon_path(o->shmbusd), args) < 0)
        return -1;
    if (rg_mem_read(d.pid, &res->idle) < 0)
        goto out;
    t0 = bench_now_ns();
    if (rg_create_topics(o, d.bus) < 0)
        goto out;
    res->create_ns = bench_now_ns() - t0;
    t0 = bench_now_ns();
    if (rg_clients_open(&c, o, d.bus) < 0)
        goto out;
    res->connect_ns = bench_now_ns() - t0;
    rc = rg_mem_read(d.pid, &res->loaded);
out:
    rg_clients_close(&c);
    if (bench_daemon_stop(&d) < 0)
        rc = -1;
    return rc;
}

/* ----------------------------------------------------------------- lookups */

/* xorshift64*: cheap, and random enough to pick names. */
static uint64_t rg_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void rg_draw(const struct rg_name *pool, uint64_t pool_n, const char **q, uint64_t n,
                    uint64_t *seed)
{
    for (uint64_t i = 0; i < n; i++)
        q[i] = pool[rg_rand(seed) % pool_n].s;
}

/* Time @p n lookups, each of which must find a topic (@p want_hit) or
 * none. @return ns per lookup, or -1 (message printed). */
static double rg_time(struct sbd_registry *r, const char *const *q, uint64_t n, int want_hit)
{
    uint64_t found = 0, t0 = bench_now_ns(), elapsed;

    for (uint64_t i = 0; i < n; i++) {
        /* Each lookup under its own read lock, as sbd_topic_open() takes it. */
        urcu_memb_read_lock();
        found += sbd_topic_lookup(r, q[i]) != NULL;
        urcu_memb_read_unlock();
    }
    elapsed = bench_now_ns() - t0;
    if (found != (want_hit ? n : 0)) {
        fprintf(stderr, "shmbus-bench: registry: %" PRIu64 " of %" PRIu64 " %s names found\n",
                found, n, want_hit ? "existing" : "missing");
        return -1.0;
    }
    return (double)elapsed / (double)n;
}

static int rg_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The baseline of a hit: the same names compared against the topics they
 * find, reached through an array resolved beforehand (untimed), one after
 * the other: the cache misses on the topic any lookup must pay, which grow
 * with the working set whatever the table does. @return ns per comparison. */
static double rg_touch(struct sbd_registry *r, const char *const *q, uint64_t n,
                       const struct sbd_topic **t)
{
    uint64_t same = 0, t0;

    urcu_memb_read_lock();
    for (uint64_t i = 0; i < n; i++)
        t[i] = sbd_topic_lookup(r, q[i]);
    urcu_memb_read_unlock();
    t0 = bench_now_ns();
    for (uint64_t i = 0, dep = 0; i < n; i++) {
        /* dep is always 0 (every name matches) but the compiler cannot
         * know: each access waits for the one before, as the dependent
         * loads of a lookup do, instead of overlapping its cache misses. */
        int c = strcmp(t[i + dep]->name, q[i + dep]);

        same += c == 0;
        dep = (uint32_t)c >> 31;
    }
    if (same != n)
        return -1.0;
    return (double)(bench_now_ns() - t0) / (double)n;
}

static double rg_median(double *v, uint64_t n)
{
    qsort(v, n, sizeof(v[0]), rg_cmp_double);
    return v[n / 2];
}

/* Medians over the rounds of ns per lookup: hits among the first @p have
 * names, misses among the RG_MISSES names after --lookup-max, and the
 * hits' baseline. */
static int rg_measure(struct sbd_registry *r, const struct rg_opts *o, const struct rg_name *names,
                      uint64_t have, const char **q, struct rg_lookup_result *res, unsigned k)
{
    double h[RG_ROUNDS_MAX], m[RG_ROUNDS_MAX], b[RG_ROUNDS_MAX];
    const struct sbd_topic **t = bench_calloc(o->lookups * sizeof(*t));
    uint64_t seed = 0x9e3779b97f4a7c15ull + have;

    if (t == NULL)
        return -1;
    for (uint64_t i = 0; i < o->rounds; i++) {
        rg_draw(names, have, q, o->lookups, &seed);
        h[i] = rg_time(r, q, o->lookups, 1);
        b[i] = rg_touch(r, q, o->lookups, t);
        rg_draw(names + o->lookup_max, RG_MISSES, q, o->lookups, &seed);
        m[i] = rg_time(r, q, o->lookups, 0);
        if (h[i] < 0.0 || m[i] < 0.0 || b[i] < 0.0 || rg_interrupted()) {
            free(t);
            return -1;
        }
    }
    free(t);
    res->hit_ns[k] = rg_median(h, o->rounds);
    res->miss_ns[k] = rg_median(m, o->rounds);
    res->touch_ns[k] = rg_median(b, o->rounds);
    return 0;
}

/* Add topics @p from .. @p to - 1 to the registry. */
static int rg_grow(struct sbd_registry *r, const struct rg_name *names, uint64_t from, uint64_t to)
{
    struct sb_wire_open req = {.mode = SHMBUS_LOSSY,
                               .capacity = 2,
                               .max_msg_size = 8,
                               .max_subscribers = 1,
                               .max_groups = 1};
    char why[SB_WIRE_ERR_TEXT];

    for (uint64_t i = from; i < to; i++) {
        struct sbd_topic *t;
        int created, rc;

        why[0] = '\0';
        snprintf(req.name, sizeof(req.name), "%s", names[i].s);
        rc = sbd_topic_open(r, &req, &t, &created, why, sizeof(why));
        if (rc < 0) {
            fprintf(stderr, "shmbus-bench: registry: topic %s: %s\n", names[i].s, why);
            return bench_fail("sbd_topic_open", rc);
        }
        if (rg_interrupted())
            return -1;
    }
    return 0;
}

/* A registry of our own: segment names carry the bus (segfile.h), so a bus
 * name of ours keeps them apart from any daemon's. */
static void rg_config(struct sbd_config *cfg, uint64_t max)
{
    sbd_config_defaults(cfg);
    snprintf(cfg->bus, sizeof(cfg->bus), "lookup-%ld", (long)getpid());
    cfg->max_topics = (uint32_t)max;
    cfg->max_clients = 1;
    cfg->max_slots = 1;
    cfg->max_segment = 1u << 20;
    cfg->max_shm = UINT64_MAX;
}

/* Let liburcu's worker resize the table after a burst of adds. */
static void rg_settle(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !bench_interrupted())
        ;
}

/* Grow the registry size by size and measure each. */
static int rg_lookup_sizes(struct sbd_registry *r, const struct rg_opts *o,
                           const struct rg_name *names, const char **q,
                           struct rg_lookup_result *res)
{
    uint64_t have = 0;

    res->n = 0;
    for (uint64_t s = RG_SIZE_FIRST; s < o->lookup_max && res->n < RG_SIZES_MAX - 1; s *= 10)
        res->size[res->n++] = s;
    res->size[res->n++] = o->lookup_max;
    for (unsigned k = 0; k < res->n; k++) {
        if (rg_grow(r, names, have, res->size[k]) < 0)
            return -1;
        have = res->size[k];
        rg_settle(o->settle_ms);
        if (rg_measure(r, o, names, have, q, res, k) < 0)
            return -1;
    }
    return 0;
}

static int rg_lookups(const struct rg_opts *o, struct rg_lookup_result *res)
{
    uint64_t nnames = o->lookup_max + RG_MISSES;
    struct rg_name *names = bench_calloc(nnames * sizeof(*names));
    const char **q = bench_calloc(o->lookups * sizeof(*q));
    struct sbd_config cfg;
    struct sbd_registry reg;
    int rc = -1;

    /* Out of memory (message printed), or too few descriptors: the
     * registry keeps one open per topic. */
    if (names == NULL || q == NULL || bench_nofile_raise(o->lookup_max + 64) < 0)
        goto out;
    for (uint64_t i = 0; i < nnames; i++)
        rg_name_fill(&names[i], i);
    rg_config(&cfg, o->lookup_max);
    sbd_log_set_level(SBD_WARN); /* not a line per topic created */
    urcu_memb_register_thread();
    if (sbd_registry_init(&reg, &cfg) < 0) {
        fprintf(stderr, "shmbus-bench: registry: sbd_registry_init: out of memory\n");
    } else {
        rc = rg_lookup_sizes(&reg, o, names, q, res);
        sbd_registry_fini(&reg, 1);
    }
    urcu_memb_unregister_thread();
out:
    free(q);
    free(names);
    return rc;
}

/* ------------------------------------------------------------------ report */

static void rg_print_mem(const char *label, const struct rg_mem *m)
{
    printf("%-28s VmRSS %7" PRIu64 " KiB  RssAnon %7" PRIu64 "  RssFile %7" PRIu64
           "  RssShmem %7" PRIu64 "\n",
           label, m->rss, m->anon, m->file, m->shmem);
}

static void rg_print_text(const struct rg_opts *o, const struct rg_mem_result *mr,
                          const struct rg_lookup_result *lr)
{
    uint64_t own = mr->loaded.anon + mr->loaded.file;
    unsigned last = lr->n - 1;

    printf("registry: %" PRIu64 " topics created in %.1f ms; %" PRIu64
           " clients connected, %" PRIu64 " opens each, in %.1f ms\n",
           o->topics, (double)mr->create_ns / 1e6, o->clients, o->opens,
           (double)mr->connect_ns / 1e6);
    rg_print_mem("shmbusd, just started:", &mr->idle);
    rg_print_mem("shmbusd, loaded:", &mr->loaded);
    printf("shmbusd own memory (RssAnon + RssFile): %.1f MiB (target < %u MiB: %s)\n",
           (double)own / 1024.0, RG_OWN_TARGET_KIB / 1024u,
           own < RG_OWN_TARGET_KIB ? "met" : "NOT met");
    for (unsigned k = 0; k < lr->n; k++)
        printf("sbd_topic_lookup, %7" PRIu64 " topics: hit %7.1f ns  miss %7.1f ns"
               "  baseline %7.1f ns  hit - baseline %7.1f ns  (median of %" PRIu64
               " rounds of %" PRIu64 ")\n",
               lr->size[k], lr->hit_ns[k], lr->miss_ns[k], lr->touch_ns[k],
               lr->hit_ns[k] - lr->touch_ns[k], o->rounds, o->lookups);
    printf("ratio (%" PRIu64 " / %" PRIu64 " topics): hit %.3f  miss %.3f  hit - baseline %.3f\n",
           lr->size[last], lr->size[0], bench_ratio(lr->hit_ns[last], lr->hit_ns[0]),
           bench_ratio(lr->miss_ns[last], lr->miss_ns[0]),
           bench_ratio(lr->hit_ns[last] - lr->touch_ns[last], lr->hit_ns[0] - lr->touch_ns[0]));
}

static void rg_report(const struct rg_opts *o, const struct rg_mem_result *mr,
                      const struct rg_lookup_result *lr)
{
    struct bench_report r = {0};
    unsigned last = lr->n - 1;

    bench_report_str(&r, "cmd", "registry");
    bench_report_u64(&r, "topics", o->topics);
    bench_report_u64(&r, "clients", o->clients);
    bench_report_u64(&r, "rss_kib", mr->loaded.rss);
    bench_report_u64(&r, "anon_kib", mr->loaded.anon);
    bench_report_u64(&r, "file_kib", mr->loaded.file);
    bench_report_u64(&r, "shmem_kib", mr->loaded.shmem);
    bench_report_u64(&r, "own_kib", mr->loaded.anon + mr->loaded.file);
    bench_report_u64(&r, "idle_own_kib", mr->idle.anon + mr->idle.file);
    bench_report_u64(&r, "lookup_max", o->lookup_max);
    bench_report_f64(&r, "hit_ns_small", lr->hit_ns[0]);
    bench_report_f64(&r, "hit_ns_large", lr->hit_ns[last]);
    bench_report_f64(&r, "hit_ratio", bench_ratio(lr->hit_ns[last], lr->hit_ns[0]));
    bench_report_f64(&r, "miss_ns_small", lr->miss_ns[0]);
    bench_report_f64(&r, "miss_ns_large", lr->miss_ns[last]);
    bench_report_f64(&r, "miss_ratio", bench_ratio(lr->miss_ns[last], lr->miss_ns[0]));
    bench_report_f64(&r, "touch_ns_small", lr->touch_ns[0]);
    bench_report_f64(&r, "touch_ns_large", lr->touch_ns[last]);
    bench_report_emit(&r, o->json);
}

/* ----------------------------------------------------------------- options */

static void rg_usage(FILE *f)
{
    fputs("usage: shmbus-bench registry [options]\n"
          "  shmbusd's resident memory with many topics and clients (from\n"
          "  /proc/PID/status), then the time of a registry lookup as the number of\n"
          "  topics grows from 100 by tens (sbd_topic_lookup(), in this process).\n"
          "  --topics N          topics created through the daemon (default 1000)\n"
          "  --clients N         connections to it, from this process (default 500)\n"
          "  --opens N           topics each client opens (default 2)\n"
          "  --lookup-max N      largest registry timed (default 10000)\n"
          "  --lookups N         lookups per round, hits and misses each (default 200000)\n"
          "  --rounds R          rounds per size; the median is reported (default 7)\n"
          "  --settle-ms MS      pause before timing each size, for the table to finish\n"
          "                      growing in liburcu's worker thread (default 500)\n"
          "  --shmbusd PATH      the daemon (default: $SHMBUS_BENCH_SHMBUSD, else the\n"
          "                      one built with this program)\n"
          "  --json              print the last line as a JSON object\n"
          "  --help              this text\n",
          f);
}

enum {
    RG_OPT_TOPICS = 256,
    RG_OPT_CLIENTS,
    RG_OPT_OPENS,
    RG_OPT_LOOKUP_MAX,
    RG_OPT_LOOKUPS,
    RG_OPT_ROUNDS,
    RG_OPT_SETTLE,
    RG_OPT_SHMBUSD,
    RG_OPT_JSON
};

static const struct option rg_longopts[] = {
    {"topics", required_argument, NULL, RG_OPT_TOPICS},
    {"clients", required_argument, NULL, RG_OPT_CLIENTS},
    {"opens", required_argument, NULL, RG_OPT_OPENS},
    {"lookup-max", required_argument, NULL, RG_OPT_LOOKUP_MAX},
    {"lookups", required_argument, NULL, RG_OPT_LOOKUPS},
    {"rounds", required_argument, NULL, RG_OPT_ROUNDS},
    {"settle-ms", required_argument, NULL, RG_OPT_SETTLE},
    {"shmbusd", required_argument, NULL, RG_OPT_SHMBUSD},
    {"json", no_argument, NULL, RG_OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option. @return 0, 1 after --help, -1 on a bad value. */
static int rg_option(struct rg_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case RG_OPT_TOPICS:
        return bench_parse_u64(arg, "--topics", 1, 100000, &o->topics);
    case RG_OPT_CLIENTS:
        return bench_parse_u64(arg, "--clients", 1, 10000, &o->clients);
    case RG_OPT_OPENS:
        return bench_parse_u64(arg, "--opens", 1, 16, &o->opens);
    case RG_OPT_LOOKUP_MAX:
        return bench_parse_u64(arg, "--lookup-max", RG_SIZE_FIRST, 1000000, &o->lookup_max);
    case RG_OPT_LOOKUPS:
        return bench_parse_u64(arg, "--lookups", 1000, 100000000, &o->lookups);
    case RG_OPT_ROUNDS:
        return bench_parse_u64(arg, "--rounds", 1, RG_ROUNDS_MAX, &o->rounds);
    case RG_OPT_SETTLE:
        return bench_parse_u64(arg, "--settle-ms", 0, 60000, &o->settle_ms);
    case RG_OPT_SHMBUSD:
        o->shmbusd = arg;
        return 0;
    case RG_OPT_JSON:
        o->json = 1;
        return 0;
    case 'h':
        rg_usage(stdout);
        return 1;
    default:
        return -1;
    }
}

/* @return 0 to run, 1 after --help, -1 on a bad option. */
static int rg_parse(int argc, char **argv, struct rg_opts *o)
{
    int opt, rc = 0;

    *o = (struct rg_opts){.topics = 1000,
                          .clients = 500,
                          .opens = 2,
                          .lookup_max = 10000,
                          .lookups = 200000,
                          .rounds = 7,
                          .settle_ms = 500};
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", rg_longopts, NULL)) != -1)
        rc = rg_option(o, opt, optarg);
    /* --help: done; a bad option: already reported. */
    if (rc != 0)
        return rc;
    if (optind < argc) {
        fprintf(stderr, "shmbus-bench: registry: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

int bench_cmd_registry(int argc, char **argv)
{
    struct rg_opts o;
    struct rg_mem_result mr = {0};
    struct rg_lookup_result lr = {0};
    int rc = rg_parse(argc, argv, &o);

    if (rc != 0)
        return rc > 0 ? BENCH_EXIT_OK : BENCH_EXIT_USAGE;
    /* The daemon first: the lookups start liburcu's threads in this process. */
    if (rg_memory(&o, &mr) < 0 || rg_lookups(&o, &lr) < 0)
        return BENCH_EXIT_FAIL;
    rg_print_text(&o, &mr, &lr);
    rg_report(&o, &mr, &lr);
    return BENCH_EXIT_OK;
}
