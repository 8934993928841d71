/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus stat`: a snapshot of every topic of the bus (or of those a glob
 * PATTERN matches), as a table or as JSON (stat_json.c). A sample lists the topics through the
 * daemon, then opens each one (never creating it) to read its counters, its subscriber slots and
 * its consumer groups from the segment, then asks the daemon for its TCP bridge's totals and
 * connections, and for its link to NATS and its federated topics. Message rates compare two
 * samples: half a second apart for a single report, one refresh apart with --watch.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "stat.h"
#include "util/glob.h"
#include "util/vec.h"
#include "shmbus/monitor.h"

#define STAT_PAGE       64              /* topics asked for per shmbus_list() */
#define STAT_CONN_PAGE  64              /* connections per shmbus_bridge_stat() */
#define STAT_FED_PAGE   64              /* federated topics per shmbus_nats_stat() */
#define STAT_FED_FL_W   21              /* "export,import,persist" */
#define STAT_FED_W      10              /* a federated topic's counter column */
#define STAT_FIRST_NS   500000000ull    /* time between the first two samples */
#define STAT_DEFAULT_NS 1000000000ull   /* --watch without SECONDS */
#define STAT_CLEAR      "\033[H\033[2J" /* ANSI: cursor home, clear screen */
#define STAT_MODE_W     13              /* "reliable,excl" */
#define STAT_TOPIC_W    5               /* "TOPIC" */
#define STAT_FLAGS_W    13              /* "authed,paused" */
#define STAT_AGE_CAP    24              /* a formatted age: "213503982334d23h" */
#define STAT_GROUP_W    16              /* a group's column, wider for a longer name */
#define STAT_MIB        1048576.0       /* bytes in a MiB */

struct stat_args {
    const char *bus;
    const char *pattern; /* PATTERN: a Redis glob the topics' names match; NULL: all */
    int watch;
    uint64_t interval_ns;
    int json;
};

void cli_stat_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] stat [--watch [SECONDS]] [--json] [PATTERN]\n"
            "List every topic of the bus, or those whose names match PATTERN (a Redis\n"
            "glob: * ? [abc] [^a-z], \\ escapes; quote it from the shell). First the\n"
            "bus's shm against --max-shm, its topics and clients against their limits;\n"
            "then each topic: mode, capacity, largest message, publishers, subscribers,\n"
            "messages published, overruns, skipped claims, messages per second, slots\n"
            "and records of dead processes reaped (REAPED), claims the daemon ended\n"
            "(UNBLOCKED: dead publishers', or held past the stall timeout),\n"
            "subscribers evicted for stalling publishers (EVICTED) and group messages\n"
            "whose member died or was evicted before finishing them (ABANDONED); and each\n"
            "subscriber slot: pid, lag, losses, messages received, consumer group, and\n"
            "its state (observer, evicted) when not a plain gating reader; each process\n"
            "publishing on it (PUB_PID), its publishers and those of them dead; and each\n"
            "consumer group in use: members, position, lag, losses and, when its members\n"
            "acknowledge (a work queue), its messages pending (delivered and not yet\n"
            "acknowledged, waiting for redelivery, or on their way to the dead-letter\n"
            "topic), redelivered, dead-lettered, failed attempts to dead-letter, the\n"
            "deliveries allowed before a message is dead-lettered and its dead-letter topic.\n"
            "When the daemon runs a TCP bridge (shmbusd --bridge), also its totals (the\n"
            "memory its connections hold, those closed for holding the most among them)\n"
            "and each remote connection: id, peer, protocol, name, flags, subscriptions,\n"
            "buffered output, memory (--json), messages in and out, and age.\n"
            "When the daemon federates topics through NATS (shmbusd --nats), also its\n"
            "link (state, server, origin, subject prefix, reconnects, refused names,\n"
            "errors) and each federated topic: direction, persistence, messages out and\n"
            "in, lost each way, duplicates dropped and messages awaiting JetStream's\n"
            "acknowledgement; and their sums.\n"
            "\n"
            "  --watch [SECONDS]  refresh every SECONDS (default 1, fractions allowed)\n"
            "                     until SIGINT; rates are over the last refresh. A next\n"
            "                     word of other than digits and dots is the PATTERN\n"
            "  --json             one JSON object per refresh, on one line\n"
            "  --bus NAME         bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help             this text\n"
            "\n"
            "Without --watch, rates compare two samples taken 0.5 s apart.\n",
            SHMBUS_BUS_DEFAULT);
}

enum { OPT_BUS = 256, OPT_WATCH, OPT_JSON, OPT_HELP };

static const struct option stat_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                          {"watch", optional_argument, NULL, OPT_WATCH},
                                          {"json", no_argument, NULL, OPT_JSON},
                                          {"help", no_argument, NULL, OPT_HELP},
                                          {NULL, 0, NULL, 0}};

/* --watch [SECONDS]: the value may be the next word (`--watch 2`) when
 * it is made of digits and dots; else that word is the PATTERN
 * (`--watch 'md.*'`). */
static int stat_watch_option(struct stat_args *a, int argc, char **argv)
{
    const char *v = optarg;

    if (v == NULL && optind < argc && argv[optind][0] != '\0' &&
        argv[optind][strspn(argv[optind], "0123456789.")] == '\0')
        v = argv[optind++];
    a->watch = 1;
    a->interval_ns = STAT_DEFAULT_NS;
    if (v != NULL && cli_parse_seconds(v, &a->interval_ns) < 0)
        return cli_usage_err(argv[0],
                             "--watch wants seconds, more than 0 and at most a day, "
                             "not '%s'",
                             v);
    return 0;
}

/* @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int stat_parse(int argc, char **argv, struct stat_args *a)
{
    int opt, rc;

    /* '+': no reordering, so that `--watch 2` can take the next word;
     * getopt stops at PATTERN, and goes on after it. */
    for (;;) {
        opt = getopt_long(argc, argv, "+", stat_opts, NULL);
        if (opt == -1 && optind < argc && a->pattern == NULL) {
            a->pattern = argv[optind++];
            continue;
        }
        if (opt == -1)
            break;
        if (opt == OPT_BUS) {
            a->bus = optarg;
        } else if (opt == OPT_WATCH) {
            if ((rc = stat_watch_option(a, argc, argv)) != 0)
                return rc;
        } else if (opt == OPT_JSON) {
            a->json = 1;
        } else if (opt == OPT_HELP) {
            return CLI_HELP;
        } else {
            return cli_usage_hint(argv[0]); /* getopt printed what was wrong */
        }
    }
    if (optind < argc)
        return cli_usage_err(argv[0], "unexpected argument '%s'", argv[optind]);
    return 0;
}

void cli_stat_sample_free(struct stat_sample *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].slots);
        free(s->v[i].groups);
        free(s->v[i].procs);
    }
    free(s->v);
    free(s->conns);
    free(s->fed);
    memset(s, 0, sizeof(*s));
}

/* Append the listed entries whose names match @p pattern (NULL: all).
 * @return 0 or -ENOMEM. */
static int sample_append(struct stat_sample *s, const char *pattern, const shmbus_topic_entry *e,
                         size_t n)
{
    if (SB_VEC_RESERVE(s->v, s->cap, s->n, n, STAT_PAGE) < 0)
        return -ENOMEM; /* the sample keeps what it had: cli_stat_sample_free() frees it */
    for (size_t i = 0; i < n; i++)
        if (pattern == NULL || sb_glob_match(pattern, strlen(pattern), e[i].name,
                                             strnlen(e[i].name, sizeof(e[i].name))))
            s->v[s->n++] = (struct stat_topic){.e = e[i]};
    return 0;
}

/* List every topic (that matches @p pattern), a page at a time.
 * @return 0 or an error code. */
static int sample_list(shmbus_bus *b, const char *pattern, struct stat_sample *s)
{
    shmbus_topic_entry page[STAT_PAGE];
    char after[SHMBUS_TOPIC_NAME_MAX + 1] = "";
    int n, rc;

    do {
        n = shmbus_list(b, after, page, STAT_PAGE);
        if (n < 0)
            return n; /* the daemon went away or refused */
        rc = sample_append(s, pattern, page, (size_t)n);
        if (rc < 0)
            return rc; /* out of memory */
        if (n > 0)
            memcpy(after, page[n - 1].name, sizeof(after));
    } while (n == STAT_PAGE);
    return 0;
}

/* Make room for a page of connections. @return 0 or -ENOMEM. */
static int sample_conns_grow(struct stat_sample *s)
{
    if (SB_VEC_RESERVE(s->conns, s->conns_cap, s->n_conns, STAT_CONN_PAGE, STAT_CONN_PAGE) < 0)
        return -ENOMEM; /* the sample keeps what it had: cli_stat_sample_free() frees it */
    return 0;
}

/* Read the bridge's totals and every connection, a page at a time.
 * @return 0 or an error code. */
static int sample_bridge(shmbus_bus *b, struct stat_sample *s)
{
    uint64_t after = 0;
    int n, rc;

    do {
        rc = sample_conns_grow(s);
        if (rc < 0)
            return rc; /* out of memory */
        n = shmbus_bridge_stat(b, after, &s->bridge, s->conns + s->n_conns, STAT_CONN_PAGE);
        if (n < 0)
            return n; /* the daemon went away or refused */
        s->n_conns += (size_t)n;
        if (n > 0)
            after = s->conns[s->n_conns - 1].id;
    } while (n == STAT_CONN_PAGE);
    return 0;
}

/* Read the NATS link and every federated topic, a page at a time.
 * @return 0 or an error code. */
static int sample_nats(shmbus_bus *b, struct stat_sample *s)
{
    uint64_t after = 0;
    int n;

    do {
        if (SB_VEC_RESERVE(s->fed, s->fed_cap, s->n_fed, STAT_FED_PAGE, STAT_FED_PAGE) < 0)
            return -ENOMEM; /* the sample keeps what it had: cli_stat_sample_free() frees it */
        n = shmbus_nats_stat(b, after, &s->nats, s->fed + s->n_fed, STAT_FED_PAGE);
        if (n < 0)
            return n; /* the daemon went away or refused */
        s->n_fed += (size_t)n;
        if (n > 0)
            after = s->fed[s->n_fed - 1].id;
    } while (n == STAT_FED_PAGE);
    return 0;
}

/* Count the publisher records of @p t by process into st->procs.
 * @return 0 or -ENOMEM. */
static int sample_procs(const shmbus_topic *t, struct stat_topic *st)
{
    unsigned cap = st->info.max_publishers, n;
    shmbus_pub_info *recs = calloc(cap, sizeof(*recs));
    int rc;

    st->procs = calloc(cap, sizeof(*st->procs));
    if (recs == NULL || st->procs == NULL) {
        free(recs);
        free(st->procs);
        st->procs = NULL;
        return -ENOMEM;
    }
    rc = shmbus_topic_pubs_get(t, recs, cap);
    n = rc > 0 ? ((unsigned)rc < cap ? (unsigned)rc : cap) : 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned k = 0;

        while (k < st->n_procs && st->procs[k].pid != recs[i].pid)
            k++;
        if (k == st->n_procs)
            st->procs[st->n_procs++] = (struct stat_proc){.pid = recs[i].pid};
        st->procs[k].records++;
        st->procs[k].dead += recs[i].dead;
    }
    free(recs);
    return 0;
}

/*
 * Read a listed topic's counters, slots, groups and publisher records
 * from its segment.
 * @return 0; 1 if the topic is gone; an error code (reported).
 */
static int sample_probe(shmbus_bus *b, struct stat_topic *st)
{
    shmbus_topic *t;
    int rc = shmbus_open(b, st->e.name, NULL, SHMBUS_OPEN_NOCREATE, &t);

    /* Removed since it was listed: leave it out. */
    if (rc == -ENOENT)
        return 1;
    /* The daemon went away or hit a limit: this sample cannot be complete. */
    if (rc < 0) {
        cli_err("cannot open topic '%s': %s", st->e.name, shmbus_strerror(rc));
        return rc;
    }
    shmbus_topic_info_get(t, &st->info);
    st->when_ns = cli_monotonic_ns();
    st->slots = calloc(st->info.max_subscribers, sizeof(*st->slots));
    st->groups = calloc(st->info.max_groups, sizeof(*st->groups));
    /* Out of memory: give up on the sample. */
    if (st->slots == NULL || (st->groups == NULL && st->info.max_groups > 0)) {
        cli_err("out of memory");
        free(st->slots);
        free(st->groups);
        st->slots = NULL;
        st->groups = NULL;
        shmbus_topic_destroy(t);
        return -ENOMEM;
    }
    /* cap is every slot the topic has: the count cannot exceed it. */
    rc = shmbus_topic_slots_get(t, st->slots, st->info.max_subscribers);
    st->n_slots = rc > 0 ? (unsigned)rc : 0;
    /* As for the slots: there are no more groups than the topic has. */
    rc = shmbus_topic_groups_get(t, st->groups, st->info.max_groups);
    st->n_groups = rc > 0 ? (unsigned)rc : 0;
    rc = sample_procs(t, st);
    shmbus_topic_destroy(t);
    /* Out of memory: give up on the sample, as above; a failed entry owns
     * nothing (cli_stat_sample_take()). */
    if (rc < 0) {
        cli_err("out of memory");
        free(st->slots);
        free(st->groups);
        st->slots = NULL;
        st->groups = NULL;
    }
    return rc;
}

int cli_stat_sample_take(shmbus_bus *b, const char *pattern, struct stat_sample *s)
{
    size_t keep = 0;
    int rc;

    s->realtime_ns = cli_realtime_ns();
    rc = shmbus_bus_stat(b, &s->limits);
    /* As for the NATS link below. */
    if (rc < 0) {
        cli_err("cannot read the bus's limits: %s%s", shmbus_strerror(rc),
                rc == SHMBUS_ERR_PROTOCOL ? " (or shmbusd is older than this shmbus)" : "");
        return rc;
    }
    rc = sample_list(b, pattern, s);
    /* The daemon went away, or out of memory: nothing to show. */
    if (rc < 0) {
        cli_err("cannot list topics: %s", shmbus_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < s->n; i++) {
        rc = sample_probe(b, &s->v[i]);
        /* Reported by sample_probe(): the sample cannot be complete. */
        if (rc < 0) {
            s->n = keep; /* the entries that own slots and groups; the failed one owns none */
            return rc;
        }
        if (rc == 0)
            s->v[keep++] = s->v[i];
    }
    s->n = keep;
    rc = sample_bridge(b, s);
    /* The daemon went away, or out of memory: the sample is incomplete. */
    if (rc < 0) {
        cli_err("cannot read the bridge: %s", shmbus_strerror(rc));
        return rc;
    }
    rc = sample_nats(b, s);
    /* As for the bridge; a daemon older than this tool answers the request
     * it does not know with a protocol error (docs/protocol.md). */
    if (rc < 0) {
        cli_err("cannot read the NATS link: %s%s", shmbus_strerror(rc),
                rc == SHMBUS_ERR_PROTOCOL ? " (or shmbusd is older than this shmbus)" : "");
        return rc;
    }
    return 0;
}

static int topic_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct stat_topic *)elem)->e.name);
}

double cli_stat_rate(const struct stat_topic *t, const struct stat_sample *prev)
{
    /* bsearch() may not be given a null array, even of no elements. */
    const struct stat_topic *p =
        prev->n == 0 ? NULL : bsearch(t->e.name, prev->v, prev->n, sizeof(*p), topic_cmp);

    /* Not in the previous sample, or its counter went back. */
    if (p == NULL || t->info.published < p->info.published || t->when_ns <= p->when_ns)
        return -1.0;
    return (double)(t->info.published - p->info.published) * 1e9 /
           (double)(t->when_ns - p->when_ns);
}

const char *cli_stat_conn_proto(const shmbus_bridge_conn *c)
{
    if (c->proto == SHMBUS_BRIDGE_PROTO_JSON)
        return "json";
    return c->proto == SHMBUS_BRIDGE_PROTO_RESP ? "resp" : NULL;
}

static const char *topic_mode(const struct stat_topic *t)
{
    int excl = (t->info.flags & SHMBUS_TOPIC_EXCLUSIVE) != 0;

    if (t->info.mode == SHMBUS_RELIABLE)
        return excl ? "reliable,excl" : "reliable";
    return excl ? "lossy,excl" : "lossy";
}

/* ------------------------------------------------------------------ text */

/* A topic counter's column, and its header. */
#define TEXT_COUNTER(field, header, width)                                                         \
    printf(" %*llu", width, (unsigned long long)t->info.field);
#define TEXT_COUNTER_HEADER(field, header, width) printf(" %*s", width, header);

/* "observer", "evicted", or "-" for a plain reader or group member. */
static const char *slot_state(const shmbus_slot_info *s)
{
    if (s->flags & SHMBUS_SLOT_EVICTED)
        return "evicted";
    return (s->flags & SHMBUS_SLOT_OBSERVER) ? "observer" : "-";
}

/* The width of @p t's group columns: the longest group name, at least
 * STAT_GROUP_W, so that the columns after a long name stay aligned. */
static int group_w(const struct stat_topic *t)
{
    int w = STAT_GROUP_W;

    for (unsigned i = 0; i < t->n_slots; i++) {
        int len = (int)strlen(t->slots[i].group_name);

        w = len > w ? len : w;
    }
    for (unsigned i = 0; i < t->n_groups; i++) {
        int len = (int)strlen(t->groups[i].name);

        w = len > w ? len : w;
    }
    return w;
}

static void text_slots(const struct stat_topic *t, int gw)
{
    if (t->n_slots == 0)
        return; /* no header for an empty list */
    printf("    %5s %8s %10s %10s %12s  %-*s %s\n", "SLOT", "PID", "LAG", "LOST", "RECEIVED", gw,
           "GROUP", "STATE");
    for (unsigned i = 0; i < t->n_slots; i++) {
        const shmbus_slot_info *s = &t->slots[i];

        printf("    %5u %8u %10llu %10llu %12llu  ", s->index, s->pid, (unsigned long long)s->lag,
               (unsigned long long)s->lost, (unsigned long long)s->received);
        if (s->group == 0)
            printf("%-*s ", gw, "-");
        else if (s->group_name[0] != '\0')
            printf("%-*s ", gw, s->group_name);
        else
            printf("#%-*u ", gw - 1, s->group);
        printf("%s\n", slot_state(s));
    }
}

/* text_groups() lays a group's numbers out by hand; this fails when
 * SHMBUS_GROUP_COUNTERS gains one it does not show. */
#define TEXT_GROUP_ONE(kind, field, key, doc) +1
static_assert(0 SHMBUS_GROUP_COUNTERS(TEXT_GROUP_ONE) == 7, "text_groups(): show the new number");

/* The consumer groups in use: where each is, and for an acknowledged
 * group (max_deliveries > 0) its work-queue numbers, else "-". */
static void text_groups(const struct stat_topic *t, int gw)
{
    char num[16];

    if (t->n_groups == 0)
        return; /* no header for an empty list */
    printf("    %-*s %7s %12s %10s %10s %8s %11s %13s %9s %9s  %s\n", gw, "GROUP", "MEMBERS",
           "POSITION", "LAG", "LOST", "PENDING", "REDELIVERED", "DEAD_LETTERED", "DL_FAILED",
           "MAX_DELIV", "DEAD_LETTER");
    for (unsigned i = 0; i < t->n_groups; i++) {
        const shmbus_group_info *g = &t->groups[i];

        snprintf(num, sizeof(num), "#%u", g->index);
        /* Names from shmbus_topic_groups_get() are valid: plain ASCII. */
        printf("    %-*s %7u %12llu %10llu %10llu", gw, g->name[0] ? g->name : num, g->members,
               (unsigned long long)g->position, (unsigned long long)g->lag,
               (unsigned long long)g->lost);
        if (g->max_deliveries == 0) {
            printf(" %8s %11s %13s %9s %9s  %s\n", "-", "-", "-", "-", "-", "-");
            continue;
        }
        printf(" %8llu %11llu %13llu %9llu %9u  %s\n", (unsigned long long)g->pending,
               (unsigned long long)g->redelivered, (unsigned long long)g->dead_lettered,
               (unsigned long long)g->dead_letter_failed, g->max_deliveries,
               g->dead_letter[0] ? g->dead_letter : "-");
    }
}

/* The processes publishing on the topic, by their publisher records. */
static void text_procs(const struct stat_topic *t)
{
    if (t->n_procs == 0)
        return; /* no header for an empty list */
    printf("    %8s %10s %s\n", "PUB_PID", "PUBLISHERS", "DEAD");
    for (unsigned i = 0; i < t->n_procs; i++)
        printf("    %8u %10u %u\n", t->procs[i].pid, t->procs[i].records, t->procs[i].dead);
}

static void text_topic(const struct stat_topic *t, int name_w, double rate)
{
    int gw = group_w(t);

    printf("%-*s %-*s %8u %8u %5u %5u", name_w, t->e.name, STAT_MODE_W, topic_mode(t),
           t->info.capacity, t->info.max_msg_size, t->e.publishers, t->e.subscribers);
    STAT_TOPIC_COUNTERS(TEXT_COUNTER)
    putchar(' ');
    if (rate < 0)
        printf("%10s\n", "-");
    else
        printf("%10.1f\n", rate);
    text_slots(t, gw);
    text_procs(t);
    text_groups(t, gw);
}

static void text_topics(const struct stat_sample *cur, const struct stat_sample *prev)
{
    int name_w = STAT_TOPIC_W;

    /* Nothing to tabulate. */
    if (cur->n == 0)
        return;
    for (size_t i = 0; i < cur->n; i++) {
        int len = (int)strlen(cur->v[i].e.name);

        name_w = len > name_w ? len : name_w;
    }
    printf("%-*s %-*s %8s %8s %5s %5s", name_w, "TOPIC", STAT_MODE_W, "MODE", "CAPACITY", "MAX_MSG",
           "PUBS", "SUBS");
    STAT_TOPIC_COUNTERS(TEXT_COUNTER_HEADER)
    printf(" %10s\n", "MSG/S");
    for (size_t i = 0; i < cur->n; i++)
        text_topic(&cur->v[i], name_w, cli_stat_rate(&cur->v[i], prev));
}

/* A string from the daemon or a remote client, fit for a terminal: bytes
 * other than printable ASCII become '?'. "" becomes "-". */
static const char *text_clean(const char *s, char *buf, size_t cap)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        buf[i] = c >= ' ' && c <= '~' ? (char)c : '?';
    }
    buf[i] = '\0';
    return i > 0 ? buf : "-";
}

/* A connection's age: "12.3s", "4m05s", "3h07m", "2d05h". */
static const char *text_age(uint64_t ms, char *buf, size_t cap)
{
    unsigned long long s = ms / 1000u;

    if (s < 60)
        snprintf(buf, cap, "%llu.%llus", s, (unsigned long long)(ms % 1000u) / 100u);
    else if (s < 3600)
        snprintf(buf, cap, "%llum%02llus", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%lluh%02llum", s / 3600, s / 60 % 60);
    else
        snprintf(buf, cap, "%llud%02lluh", s / 86400, s / 3600 % 24);
    return buf;
}

static void text_conn(const shmbus_bridge_conn *c, int peer_w, int name_w)
{
    static const char *const flags[] = {"-", "authed", "paused", "authed,paused"};
    char peer[sizeof(c->peer)], name[sizeof(c->name)], subs[sizeof(c->subs)];
    char age[STAT_AGE_CAP];
    const char *proto = cli_stat_conn_proto(c);

    printf("    %6llu %-*s %-5s %-*s %-*s %5u %5u %10llu %10llu %10llu %8s  %s\n",
           (unsigned long long)c->id, peer_w, text_clean(c->peer, peer, sizeof(peer)),
           proto ? proto : "-", name_w, text_clean(c->name, name, sizeof(name)), STAT_FLAGS_W,
           flags[c->flags & (SHMBUS_BRIDGE_AUTHED | SHMBUS_BRIDGE_PAUSED)], c->channels,
           c->patterns, (unsigned long long)c->buffered, (unsigned long long)c->msgs_in,
           (unsigned long long)c->msgs_out, text_age(c->age_ms, age, sizeof(age)),
           text_clean(c->subs, subs, sizeof(subs)));
}

/* text_bridge() lays the totals out by hand, in the order people read
 * them; this fails when SHMBUS_BRIDGE_TOTALS gains one it does not show. */
#define TEXT_TOTAL_ONE(kind, field, key, doc) +1
static_assert(0 SHMBUS_BRIDGE_TOTALS(TEXT_TOTAL_ONE) == 12, "text_bridge(): show the new total");

static void text_bridge(const struct stat_sample *s)
{
    const shmbus_bridge_info *in = &s->bridge;
    char listen[sizeof(in->listen)];
    int peer_w = 4, name_w = 4; /* "PEER", "NAME" */

    if (in->listen[0] == '\0')
        return; /* the daemon runs no bridge: no section */
    printf("\nbridge %s: %llu connection%s open, %llu accepted, %llu refused\n",
           text_clean(in->listen, listen, sizeof(listen)), (unsigned long long)in->connections,
           in->connections == 1 ? "" : "s", (unsigned long long)in->accepted,
           (unsigned long long)in->refused);
    printf("  msgs_in %llu, msgs_out %llu, slow_closed %llu, auth_failed %llu, auth_expired %llu, "
           "proto_errors %llu, bad_cells %llu\n",
           (unsigned long long)in->msgs_in, (unsigned long long)in->msgs_out,
           (unsigned long long)in->slow_closed, (unsigned long long)in->auth_failed,
           (unsigned long long)in->auth_expired, (unsigned long long)in->proto_errors,
           (unsigned long long)in->bad_cells);
    printf("  memory %llu bytes, evicted %llu\n", (unsigned long long)in->memory,
           (unsigned long long)in->evicted);
    if (s->n_conns == 0)
        return; /* no header for an empty list */
    for (size_t i = 0; i < s->n_conns; i++) {
        int pl = (int)strlen(s->conns[i].peer), nl = (int)strlen(s->conns[i].name);

        peer_w = pl > peer_w ? pl : peer_w;
        name_w = nl > name_w ? nl : name_w;
    }
    printf("    %6s %-*s %-5s %-*s %-*s %5s %5s %10s %10s %10s %8s  %s\n", "ID", peer_w, "PEER",
           "PROTO", name_w, "NAME", STAT_FLAGS_W, "FLAGS", "CHANS", "PATS", "BUFFERED", "MSGS_IN",
           "MSGS_OUT", "AGE", "SUBSCRIPTIONS");
    for (size_t i = 0; i < s->n_conns; i++)
        text_conn(&s->conns[i], peer_w, name_w);
}

const char *const cli_stat_nats_states[] = {"off", "connecting", "connected", "reconnecting",
                                            "closed"};
static_assert(sizeof(cli_stat_nats_states) / sizeof(cli_stat_nats_states[0]) ==
                  SHMBUS_NATS_CLOSED + 1,
              "cli_stat_nats_states[]: name the new state");

/* A federated topic's flags: "export,import,persist" or some of them
 * (shmbus_nats_stat() stores no topic without a direction). */
static const char *fed_flags(uint32_t f, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s%s%s", (f & SHMBUS_NATS_EXPORT) ? "export" : "",
             (f & SHMBUS_NATS_EXPORT) && (f & SHMBUS_NATS_IMPORT) ? "," : "",
             (f & SHMBUS_NATS_IMPORT) ? "import" : "", (f & SHMBUS_NATS_PERSIST) ? "," : "",
             (f & SHMBUS_NATS_PERSIST) ? "persist" : "");
    return buf;
}

/* A counter's column header: its --json key in capitals. */
static void text_fed_header(const char *key)
{
    char up[STAT_FED_W + 1];
    size_t i;

    for (i = 0; key[i] != '\0' && i < STAT_FED_W; i++)
        up[i] = key[i] >= 'a' && key[i] <= 'z' ? (char)(key[i] - 'a' + 'A') : key[i];
    up[i] = '\0';
    printf(" %*s", STAT_FED_W, up);
}

/* The counters of SHMBUS_NATS_TOPIC_COUNTERS, every one a column: a
 * counter added there is shown without a change here, if its key fits. */
#define TEXT_FED_FITS(kind, field, key, doc)                                                       \
    static_assert(sizeof(key) - 1 <= STAT_FED_W, "key " key ": widen STAT_FED_W");
SHMBUS_NATS_TOPIC_COUNTERS(TEXT_FED_FITS)
#define TEXT_FED_HEADER(kind, field, key, doc) text_fed_header(key);
#define TEXT_FED_SUM(kind, field, key, doc)    sum.field = in->field;
#define TEXT_FED_COUNTER(kind, field, key, doc)                                                    \
    printf(" %*llu", STAT_FED_W, (unsigned long long)c->field);

static void text_fed_row(const char *id, const char *name, int name_w, const char *flags,
                         const shmbus_nats_topic *c)
{
    printf("    %6s %-*s %-*s", id, name_w, name, STAT_FED_FL_W, flags);
    SHMBUS_NATS_TOPIC_COUNTERS(TEXT_FED_COUNTER)
    putchar('\n');
}

/* text_nats() lays the link's own fields out by hand: this fails when
 * shmbus_nats_info gains a field it does not show. */
static_assert(sizeof(shmbus_nats_info) ==
                  256 + 8 + 3 * 8 + (0 SHMBUS_NATS_TOPIC_COUNTERS(TEXT_TOTAL_ONE)) * 8,
              "text_nats(): show the new field");

static void text_nats(const struct stat_sample *s)
{
    const shmbus_nats_info *in = &s->nats;
    char server[sizeof(in->server)], origin[sizeof(in->origin)], prefix[sizeof(in->prefix)];
    char flags[STAT_FED_FL_W + 1], id[24];
    shmbus_nats_topic sum = {0};
    int name_w = 5; /* "TOPIC" */

    if (in->state == SHMBUS_NATS_OFF)
        return; /* the daemon does not federate: no section */
    /* The server only when connected to one. */
    printf("\nnats %s%s%s: origin %s, prefix %s, %u topic%s, %llu reconnects, %llu refused, "
           "%llu errors\n",
           cli_stat_nats_states[in->state], in->server[0] ? " " : "",
           in->server[0] ? text_clean(in->server, server, sizeof(server)) : "",
           text_clean(in->origin, origin, sizeof(origin)),
           text_clean(in->prefix, prefix, sizeof(prefix)), in->topics, in->topics == 1 ? "" : "s",
           (unsigned long long)in->reconnects, (unsigned long long)in->refused,
           (unsigned long long)in->errors);
    for (size_t i = 0; i < s->n_fed; i++) {
        int len = (int)strlen(s->fed[i].name);

        name_w = len > name_w ? len : name_w;
    }
    printf("    %6s %-*s %-*s", "ID", name_w, "TOPIC", STAT_FED_FL_W, "FLAGS");
    SHMBUS_NATS_TOPIC_COUNTERS(TEXT_FED_HEADER)
    putchar('\n');
    for (size_t i = 0; i < s->n_fed; i++) {
        snprintf(id, sizeof(id), "%llu", (unsigned long long)s->fed[i].id);
        text_fed_row(id, s->fed[i].name, name_w, fed_flags(s->fed[i].flags, flags, sizeof(flags)),
                     &s->fed[i]);
    }
    SHMBUS_NATS_TOPIC_COUNTERS(TEXT_FED_SUM)
    text_fed_row("", "total", name_w, "", &sum);
}

void cli_stat_limits_show(const shmbus_bus_info *l)
{
    printf("shm %.1f of %.1f MiB (%.1f%%, --max-shm), topics %u of %u, clients %u of %u\n",
           (double)l->shm_bytes / STAT_MIB, (double)l->max_shm / STAT_MIB,
           l->max_shm > 0 ? 100.0 * (double)l->shm_bytes / (double)l->max_shm : 0.0, l->topics,
           l->max_topics, l->clients, l->max_clients);
}

static void text_show(const char *bus, const struct stat_sample *cur,
                      const struct stat_sample *prev)
{
    time_t now = (time_t)(cur->realtime_ns / 1000000000ull);
    char when[16] = "";
    struct tm tm;

    if (localtime_r(&now, &tm) != NULL)
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
    printf("bus %s: %zu topic%s at %s\n", bus, cur->n, cur->n == 1 ? "" : "s", when);
    cli_stat_limits_show(&cur->limits);
    text_topics(cur, prev);
    text_bridge(cur);
    text_nats(cur);
}

/* ------------------------------------------------------------------ loop */

/* Print one refresh. @return 0 or cli_flush()'s error. */
static int stat_show(const struct stat_args *a, const char *bus, const struct stat_sample *cur,
                     const struct stat_sample *prev)
{
    /* JSON is for programs: one line per refresh, no screen control. */
    if (a->json) {
        cli_stat_json_show(bus, cur, prev);
        return cli_flush();
    }
    if (a->watch && isatty(STDOUT_FILENO))
        fputs(STAT_CLEAR, stdout);
    text_show(bus, cur, prev);
    return cli_flush();
}

/* Sample, wait, sample and show; again with --watch until a signal.
 * @return an exit status. */
static int stat_loop(shmbus_bus *b, const char *bus, const struct stat_args *a)
{
    struct stat_sample prev = {0}, cur = {0};
    uint64_t delay = STAT_FIRST_NS;
    int rc = cli_stat_sample_take(b, a->pattern, &prev);

    if (a->watch && a->interval_ns < delay)
        delay = a->interval_ns;
    while (rc == 0 && cli_sleep(delay) == 0) {
        rc = cli_stat_sample_take(b, a->pattern, &cur);
        if (rc == 0 && (rc = stat_show(a, bus, &cur, &prev)) == -EPIPE)
            rc = 1; /* the reader left: stop, quietly and successfully */
        cli_stat_sample_free(&prev);
        prev = cur;
        memset(&cur, 0, sizeof(cur));
        if (!a->watch)
            break;
        delay = a->interval_ns;
    }
    cli_stat_sample_free(&prev);
    cli_stat_sample_free(&cur);
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_stat_main(const char *bus, int argc, char **argv)
{
    struct stat_args a = {.bus = bus};
    char bus_name[SHMBUS_BUS_NAME_MAX + 1];
    shmbus_bus *b;
    int rc = stat_parse(argc, argv, &a);

    rc = cli_bus_start(rc, cli_stat_usage, a.bus, bus_name, &b);
    if (b == NULL)
        return rc; /* --help, or an error reported */
    rc = stat_loop(b, bus_name, &a);
    shmbus_close(b);
    return rc;
}
