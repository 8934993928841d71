/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One scrape (collect.h). The topics are walked once, under one RCU
 * read-side section, and each series goes into its family's buffer, so
 * that every family comes out whole, as the format wants, after a single
 * walk. Cardinality is bounded by the daemon's own limits: a series per
 * topic (--max-topics), per consumer group in use (max_groups of its
 * topic), and per busy subscriber slot up to --metrics-max-slots a topic
 * (the lowest slot numbers; the rest are counted in
 * shmbus_topic_slot_series_omitted).
 */
#include "collect.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bridge/bridge.h"
#include "fed/fed.h"
#include "registry.h"
#include "shmbus/monitor.h"
#include "shmbus/version.h"
#include "util/proc.h"
#include "util/vec.h"

/* A family's TYPE and its name's suffix, by the monitor.h lists' kinds. */
#define SBM_TYPE_COUNTER   "counter"
#define SBM_TYPE_GAUGE     "gauge"
#define SBM_SUFFIX_COUNTER "_total"
#define SBM_SUFFIX_GAUGE   ""

/* The topic counters of shmbus_topic_info shown: X(field, help). */
#define SBM_TOPIC_COUNTERS(X)                                                                      \
    X(published, "Messages published (claimed) on the topic.")                                     \
    X(overruns,                                                                                    \
      "Lossy topics: messages a newer publisher overtook before every reader read them.")          \
    X(skipped, "Claims aborted or abandoned, seen by readers as lost.")                            \
    X(unblocked, "Claims the daemon ended (dead or stalled publishers); counted in skipped too.")  \
    X(reaped, "Subscriber slots and publisher records of dead processes freed.")                   \
    X(evicted, "Subscribers evicted for stalling publishers (stall timeout).")                     \
    X(abandoned, "Group messages whose member died or was evicted before its callback returned.")

enum sbm_fam {
#define SBM_FAM_TOPIC(f, h) SBM_FAM_TOPIC_##f,
    SBM_TOPIC_COUNTERS(SBM_FAM_TOPIC) SBM_FAM_SUBSCRIBERS,
    SBM_FAM_PUBLISHERS,
    SBM_FAM_OMITTED,
    SBM_FAM_SLOT_LAG,
    SBM_FAM_SLOT_LOST,
    SBM_FAM_SLOT_RECEIVED,
    SBM_FAM_GROUP_MEMBERS,
#define SBM_FAM_GROUP(kind, field, key, doc) SBM_FAM_GROUP_##field,
    SHMBUS_GROUP_COUNTERS(SBM_FAM_GROUP) SBM_FAMS
};

static const struct sbm_fam_def {
    const char *name, *type, *help;
} sbm_fams[SBM_FAMS] = {
#define SBM_DEF_TOPIC(f, h) [SBM_FAM_TOPIC_##f] = {"shmbus_topic_" #f "_total", "counter", h},
    SBM_TOPIC_COUNTERS(SBM_DEF_TOPIC)[SBM_FAM_SUBSCRIBERS] =
        {"shmbus_topic_subscribers", "gauge",
         "Subscriber slots in use, observers and group members included."},
    [SBM_FAM_PUBLISHERS] = {"shmbus_topic_publishers", "gauge",
                            "Publishers registered with the daemon."},
    [SBM_FAM_OMITTED] = {"shmbus_topic_slot_series_omitted", "gauge",
                         "Slots in use shown by no shmbus_subscriber_* series "
                         "(past shmbusd --metrics-max-slots)."},
    [SBM_FAM_SLOT_LAG] = {"shmbus_subscriber_lag", "gauge",
                          "Messages published and not yet read by the slot (a group member: "
                          "its group's)."},
    [SBM_FAM_SLOT_LOST] = {"shmbus_subscriber_lost_total", "counter",
                           "Messages the slot lost (lapped in a lossy ring)."},
    [SBM_FAM_SLOT_RECEIVED] = {"shmbus_subscriber_received_total", "counter",
                               "Messages the slot received."},
    [SBM_FAM_GROUP_MEMBERS] = {"shmbus_group_members", "gauge", "Members of the group now."},
#define SBM_DEF_GROUP(kind, field, key, doc)                                                       \
    [SBM_FAM_GROUP_##field] = {"shmbus_group_" #field SBM_SUFFIX_##kind, SBM_TYPE_##kind, doc},
    SHMBUS_GROUP_COUNTERS(SBM_DEF_GROUP)};

struct sbm_scratch {
    struct sbm_out fam[SBM_FAMS];
    shmbus_slot_info *slots;
    size_t slots_cap;
    shmbus_group_info *groups;
    size_t groups_cap;
};

/* Begin a series of family @p f with label topic="@p topic": the caller
 * adds labels and ends it with series_end(). */
static struct sbm_out *series_begin(struct sbm_scratch *s, enum sbm_fam f, const char *topic)
{
    struct sbm_out *o = &s->fam[f];

    sbm_out_fmt(o, "%s{topic=\"", sbm_fams[f].name);
    sbm_out_label(o, topic);
    sbm_out_put(o, "\"", 1);
    return o;
}

static void series_end(struct sbm_out *o, uint64_t v)
{
    sbm_out_fmt(o, "} %" PRIu64 "\n", v);
}

/* The @p n slots in use of @p t (a snapshot in s->slots). */
static void collect_slots(struct sbm_scratch *s, const struct sbm_source *src,
                          const struct sbd_topic *t, int n)
{
    unsigned shown = n < (int)src->max_slots ? (unsigned)n : src->max_slots;

    series_end(series_begin(s, SBM_FAM_SUBSCRIBERS, t->name), (uint64_t)n);
    series_end(series_begin(s, SBM_FAM_OMITTED, t->name), (uint64_t)n - shown);
    for (unsigned i = 0; i < shown; i++) {
        const shmbus_slot_info *si = &s->slots[i];
        static const enum sbm_fam f[] = {SBM_FAM_SLOT_LAG, SBM_FAM_SLOT_LOST,
                                         SBM_FAM_SLOT_RECEIVED};
        const uint64_t v[] = {si->lag, si->lost, si->received};

        for (unsigned k = 0; k < 3; k++) {
            struct sbm_out *o = series_begin(s, f[k], t->name);

            sbm_out_fmt(o, ",slot=\"%" PRIu32 "\",pid=\"%" PRIu32 "\"", si->index, si->pid);
            series_end(o, v[k]);
        }
    }
}

/* Begin a series of group @p g of topic @p t: its name, or "#N". */
static struct sbm_out *group_begin(struct sbm_scratch *s, enum sbm_fam f, const char *topic,
                                   const shmbus_group_info *g)
{
    struct sbm_out *o = series_begin(s, f, topic);

    if (g->name[0] != '\0') {
        sbm_out_put(o, ",group=\"", 8);
        sbm_out_label(o, g->name);
        sbm_out_put(o, "\"", 1);
    } else {
        sbm_out_fmt(o, ",group=\"#%" PRIu32 "\"", g->index);
    }
    return o;
}

static void collect_groups(struct sbm_scratch *s, const struct sbd_topic *t, int n)
{
    for (int i = 0; i < n; i++) {
        const shmbus_group_info *g = &s->groups[i];

        series_end(group_begin(s, SBM_FAM_GROUP_MEMBERS, t->name, g), g->members);
#define SBM_GROUP_SERIES(kind, field, key, doc)                                                    \
    series_end(group_begin(s, SBM_FAM_GROUP_##field, t->name, g), g->field);
        SHMBUS_GROUP_COUNTERS(SBM_GROUP_SERIES)
    }
}

/* Topic @p t's series. Under the RCU read lock (the walk's). */
static void collect_topic(struct sbm_scratch *s, const struct sbm_source *src,
                          const struct sbd_topic *t)
{
    shmbus_topic_info info;
    int ns, ng;

    /* A truncated segment (guard.h) has nothing left to read. */
    if (sbd_topic_broken(t) || shmbus_topic_info_get(t->t, &info) < 0)
        return;
    if (SB_VEC_RESERVE(s->slots, s->slots_cap, 0, t->info.max_subscribers, 64) < 0 ||
        SB_VEC_RESERVE(s->groups, s->groups_cap, 0, t->info.max_groups, 8) < 0) {
        s->fam[0].oom = 1;
        return;
    }
#define SBM_TOPIC_SERIES(f, h) series_end(series_begin(s, SBM_FAM_TOPIC_##f, t->name), info.f);
    SBM_TOPIC_COUNTERS(SBM_TOPIC_SERIES)
    /* relaxed: a count for monitoring, independent of every other
     * (registry.h). */
    series_end(series_begin(s, SBM_FAM_PUBLISHERS, t->name),
               atomic_load_explicit(&t->publishers, memory_order_relaxed));
    ns = shmbus_topic_slots_get(t->t, s->slots, t->info.max_subscribers);
    if (ns > (int)t->info.max_subscribers)
        ns = (int)t->info.max_subscribers;
    collect_slots(s, src, t, ns < 0 ? 0 : ns);
    ng = shmbus_topic_groups_get(t->t, s->groups, t->info.max_groups);
    if (ng > (int)t->info.max_groups)
        ng = (int)t->info.max_groups;
    collect_groups(s, t, ng < 0 ? 0 : ng);
}

/* Every topic's families into @p out. */
static void collect_topics(struct sbm_scratch *s, const struct sbm_source *src, struct sbm_out *out)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;

    for (unsigned f = 0; f < SBM_FAMS; f++) {
        s->fam[f].len = 0;
        s->fam[f].oom = 0;
    }
    urcu_memb_read_lock();
    cds_lfht_for_each (src->reg->topics, &it, n)
        collect_topic(s, src, sbd_topic_of(n));
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    for (unsigned f = 0; f < SBM_FAMS; f++) {
        if (s->fam[f].oom)
            out->oom = 1;
        sbm_out_family(out, sbm_fams[f].name, sbm_fams[f].type, sbm_fams[f].help);
        sbm_out_put(out, s->fam[f].p != NULL ? s->fam[f].p : "", s->fam[f].len);
    }
}

/* One sample without labels, with its HELP and TYPE. */
static void collect_one(struct sbm_out *out, const char *name, const char *type, const char *help,
                        uint64_t v)
{
    sbm_out_family(out, name, type, help);
    sbm_out_fmt(out, "%s %" PRIu64 "\n", name, v);
}

static void collect_bridge(const struct sbm_source *src, struct sbm_out *out)
{
    shmbus_bridge_info bi;

    /* No --bridge: no series, rather than zeros that look like a bridge. */
    if (src->bridge == NULL)
        return;
    sbd_bridge_stat(src->bridge, 0, &bi, NULL, 0);
#define SBM_BRIDGE_SERIES(kind, field, key, doc)                                                   \
    collect_one(out, "shmbus_bridge_" #field SBM_SUFFIX_##kind, SBM_TYPE_##kind, doc, bi.field);
    SHMBUS_BRIDGE_TOTALS(SBM_BRIDGE_SERIES)
}

static void collect_fed(const struct sbm_source *src, struct sbm_out *out)
{
    shmbus_nats_info ni;

    /* No --nats: no series. */
    if (src->fed == NULL)
        return;
    sbd_fed_stat(src->fed, 0, &ni, NULL, 0);
    collect_one(out, "shmbus_nats_state", "gauge",
                "The link to NATS: 1 connecting, 2 connected, 3 reconnecting, 4 closed.", ni.state);
    collect_one(out, "shmbus_nats_topics", "gauge", "Federated topics.", ni.topics);
    collect_one(out, "shmbus_nats_reconnects_total", "counter",
                "Connections to a server again after losing one.", ni.reconnects);
    collect_one(out, "shmbus_nats_refused_total", "counter",
                "Topics and subjects refused: names that cannot map to the other side.",
                ni.refused);
    collect_one(out, "shmbus_nats_errors_total", "counter",
                "Errors the server or the NATS client reported.", ni.errors);
#define SBM_NATS_SERIES(kind, field, key, doc)                                                     \
    collect_one(out, "shmbus_nats_" #field SBM_SUFFIX_##kind, SBM_TYPE_##kind, doc, ni.field);
    SHMBUS_NATS_TOPIC_COUNTERS(SBM_NATS_SERIES)
}

/* Seconds since the epoch the system booted at (/proc/stat btime), or 0. */
static uint64_t collect_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    unsigned long long bt = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %llu", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

/* Descriptors open now (entries of /proc/self/fd but its own), or 0. */
static uint64_t collect_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    uint64_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

/* The process metrics, named as Prometheus's client libraries name them. */
static void collect_process(struct sbm_out *out)
{
    struct rusage ru;
    struct rlimit rl;
    unsigned long long vsz = 0, rss = 0;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");

    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &vsz, &rss) != 2)
            vsz = rss = 0;
        fclose(f);
    }
    getrusage(RUSAGE_SELF, &ru);
    sbm_out_family(out, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.");
    sbm_out_fmt(out, "process_cpu_seconds_total %.6f\n",
                (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    collect_one(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                rss * (uint64_t)page);
    collect_one(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                vsz * (uint64_t)page);
    collect_one(out, "process_open_fds", "gauge", "Number of open file descriptors.",
                collect_open_fds());
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        collect_one(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                    rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
    sbm_out_family(out, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
    sbm_out_fmt(out, "process_start_time_seconds %.2f\n",
                (double)collect_boot_time() + (double)sb_proc_self_start() / (double)tck);
}

int sbm_collect(const struct sbm_source *src, struct sbm_scratch **scratch, struct sbm_out *out)
{
    if (*scratch == NULL && (*scratch = calloc(1, sizeof(**scratch))) == NULL)
        return -ENOMEM;
    sbm_out_family(out, "shmbus_build_info", "gauge",
                   "The daemon's version, as a label; always 1.");
    sbm_out_fmt(out, "shmbus_build_info{version=\"%s\"} 1\n", SHMBUS_VERSION_STRING);
    collect_topics(*scratch, src, out);
    collect_bridge(src, out);
    collect_fed(src, out);
    collect_process(out);
    return out->oom ? -ENOMEM : 0;
}

void sbm_collect_free(struct sbm_scratch *s)
{
    if (s == NULL)
        return;
    for (unsigned f = 0; f < SBM_FAMS; f++)
        sbm_out_free(&s->fam[f]);
    free(s->slots);
    free(s->groups);
    free(s);
}
