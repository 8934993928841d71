/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus sub A B C` and `shmbus sub --pattern GLOB` (submulti.h): a
 * subscriber per topic in one wait set. Each ready subscriber is drained
 * up to a batch before the next is looked at, so that a busy topic does
 * not starve the others. Output is flushed only when nothing is ready, as
 * in the single-topic loop (cmd_sub.c).
 */
#include "submulti.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "shmbus/monitor.h"
#include "util/glob.h"

/* Longest wait before looking at the stop flag and the pattern again. */
#define MULTI_SLICE_NS (200ll * 1000000ll)
/* Messages taken from one ready subscriber before turning to the next. */
#define MULTI_BATCH 64
/* Topics listed per round trip of a rescan. */
#define MULTI_PAGE 32

struct multi_entry {
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    shmbus_topic *t;
    shmbus_sub *s;
    int from_pattern; /* dropped, not fatal, when it goes away */
};

/* What became of a topic the pattern matched. */
enum multi_fate {
    MULTI_SEEN = 0, /* listed: read, or to be read as --from says */
    MULTI_EVICTED,  /* this command's subscriber was evicted: not read again */
    MULTI_GONE,     /* removed under this command: listed again, it is new */
    MULTI_REFUSED   /* could not be opened or subscribed: said once, tried quietly */
};

/* A topic the pattern matched at the last listing. */
struct multi_known {
    char name[sizeof(((shmbus_topic_entry *)0)->name)];
    int fate; /* enum multi_fate */
};

/* The matches of a listing under way, and where it is in the last one's. */
struct multi_scan_list {
    struct multi_known *k;
    size_t n, cap;
    size_t at; /* multi_known_next()'s place in multi_state.known */
};

struct multi_state {
    const struct cli_sub_multi *m;
    shmbus_bus *bus;
    shmbus_waitset *ws;
    struct multi_entry e[SHMBUS_WAITSET_MAX];
    int n;
    void *buf;
    size_t cap;
    uint64_t got;
    int full_told;             /* the wait set's limit was reported */
    struct multi_known *known; /* the last listing's matches, in its order */
    size_t n_known;
};

static struct multi_entry *multi_find(struct multi_state *st, const shmbus_sub *s, const char *name)
{
    for (int i = 0; i < st->n; i++) {
        if (st->e[i].s == s || (name != NULL && strcmp(st->e[i].name, name) == 0))
            return &st->e[i];
    }
    return NULL; /* not subscribed */
}

/* @p name among the last listing's matches, or NULL, for names asked in
 * increasing order (shmbus_list() checks that it lists them so): *@p at
 * moves on past the smaller ones, so that a scan costs one walk. */
static struct multi_known *multi_known_next(struct multi_state *st, size_t *at, const char *name)
{
    while (*at < st->n_known && strcmp(st->known[*at].name, name) < 0)
        (*at)++;
    return *at < st->n_known && strcmp(st->known[*at].name, name) == 0 ? &st->known[*at] : NULL;
}

static void multi_drop(struct multi_state *st, struct multi_entry *e)
{
    shmbus_waitset_remove(st->ws, e->s);
    shmbus_sub_destroy(e->s);
    shmbus_topic_destroy(e->t);
    *e = st->e[--st->n];
}

/* Grow the receive buffer to the topic's largest message. @return 0; -1 (reported). */
static int multi_buf_fit(struct multi_state *st, shmbus_topic *t)
{
    shmbus_topic_info info;
    void *nb;

    shmbus_topic_info_get(t, &info);
    /* Large enough already. */
    if (info.max_msg_size <= st->cap)
        return 0;
    nb = realloc(st->buf, info.max_msg_size);
    if (nb == NULL) {
        cli_err("out of memory");
        return -1;
    }
    st->buf = nb;
    st->cap = info.max_msg_size;
    return 0;
}

/* Subscribe to the open topic @p t. @return 0; -1 (reported unless
 * @p quiet; @p t destroyed). */
static int multi_add(struct multi_state *st, const char *name, shmbus_topic *t,
                     const shmbus_sub_opts *opts, int from_pattern, int quiet)
{
    struct multi_entry *e = &st->e[st->n];
    int rc;

    if (multi_buf_fit(st, t) < 0)
        goto err;
    rc = shmbus_sub_create(t, opts, &e->s);
    /* No slot or group left, or the daemon went away. */
    if (rc < 0) {
        if (!quiet)
            cli_err("cannot subscribe to '%s': %s%s", name, shmbus_strerror(rc),
                    from_pattern ? " (tried again every second, quietly)" : "");
        goto err;
    }
    /* Cannot fail: the set has room (checked by the callers) and the sub is new. */
    shmbus_waitset_add(st->ws, e->s);
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->t = t;
    e->from_pattern = from_pattern;
    st->n++;
    return 0;
err:
    shmbus_topic_destroy(t);
    return -1;
}

/* Subscribe to the topics named on the command line. @return 0; an exit status. */
static int multi_named(struct multi_state *st)
{
    const struct cli_sub_multi *m = st->m;

    for (int i = 0; i < m->n_topics; i++) {
        shmbus_topic *t;
        int rc;

        /* Named twice: one subscriber is enough. */
        if (multi_find(st, NULL, m->topics[i]) != NULL)
            continue;
        rc = cli_open(st->bus, m->topics[i], m->topic_opts, &t);
        if (rc != 0)
            return rc; /* reported */
        if (multi_add(st, m->topics[i], t, m->opts, 0, 0) < 0)
            return CLI_EXIT_FAIL;
    }
    return 0;
}

/* Subscribe to topic @p name, which the pattern matched; @p later: created
 * after the start, so read from its oldest message (all were published
 * after the start). Failures are reported (unless @p quiet) and skipped.
 * @return 0; SHMBUS_ERR_NOT_READY when the topic is still being created;
 * -1 when it could not be opened or subscribed. */
static int multi_match(struct multi_state *st, const char *name, int later, int quiet)
{
    shmbus_sub_opts opts = *st->m->opts;
    shmbus_topic *t;
    int rc;

    if (st->n == SHMBUS_WAITSET_MAX) {
        if (!st->full_told)
            cli_err("--pattern: more than %d topics; '%s' and later ones are not read",
                    SHMBUS_WAITSET_MAX, name);
        st->full_told = 1;
        return 0;
    }
    /* What exists, as it is: never created here, whatever its options. */
    rc = shmbus_open(st->bus, name, NULL, SHMBUS_OPEN_NOCREATE, &t);
    /* Removed since it was listed, or not served yet: the next scan tells. */
    if (rc == -ENOENT || rc == SHMBUS_ERR_NOT_READY)
        return rc == SHMBUS_ERR_NOT_READY ? rc : 0;
    if (rc < 0) {
        if (!quiet)
            cli_err("cannot open topic '%s': %s (tried again every second, quietly)", name,
                    shmbus_strerror(rc));
        return -1;
    }
    if (later && opts.start == SHMBUS_START_NEXT)
        opts.start = SHMBUS_START_OLDEST;
    return multi_add(st, name, t, &opts, 1, quiet);
}

/*
 * Whether the pattern's topic @p name is read and from where: a topic the
 * last listing did not show was created since (a later scan reads it from
 * its oldest message); one it showed but that is not read (the wait set was
 * full, or it could not be opened) existed at the start, so it is read as
 * the options say; an evicted one is not read again, and a removed one
 * that a listing shows again was created anew. One that could not be read
 * is tried again at each scan, its failure reported the first time only.
 * One still being created is left out of the list: the next scan finds it
 * new.
 * @return 0; -1 when out of memory (reported).
 */
static int multi_matched(struct multi_state *st, struct multi_scan_list *l,
                         const shmbus_topic_entry *te, int later)
{
    const char *name = te->name;
    struct multi_known *old = multi_known_next(st, &l->at, name), *k;
    int rc;

    if (l->n == l->cap) {
        size_t c = l->cap != 0 ? l->cap * 2 : MULTI_PAGE;
        struct multi_known *g = realloc(l->k, c * sizeof(*g));

        if (g == NULL) {
            cli_err("out of memory");
            return -1;
        }
        l->k = g;
        l->cap = c;
    }
    k = &l->k[l->n];
    /* The same size, and shmbus_list() terminates every name. */
    memcpy(k->name, te->name, sizeof(k->name));
    k->fate = old != NULL && old->fate == MULTI_EVICTED ? MULTI_EVICTED : MULTI_SEEN;
    /* Evicted, or read already (a removed one until its receive says so). */
    if (k->fate == MULTI_EVICTED || multi_find(st, NULL, name) != NULL) {
        l->n++;
        return 0;
    }
    rc = multi_match(st, name, later && (old == NULL || old->fate == MULTI_GONE),
                     old != NULL && old->fate == MULTI_REFUSED);
    if (rc == SHMBUS_ERR_NOT_READY)
        return 0;
    k->fate = rc < 0 ? MULTI_REFUSED : MULTI_SEEN;
    l->n++;
    return 0;
}

/* Match the pattern against the daemon's topics. @return 0; an exit status. */
static int multi_scan(struct multi_state *st, int later)
{
    shmbus_topic_entry page[MULTI_PAGE];
    char after[SHMBUS_TOPIC_NAME_MAX + 1] = "";
    struct multi_scan_list l = {0};
    int rc;

    do {
        rc = shmbus_list(st->bus, after, page, MULTI_PAGE);
        /* The daemon went away: nothing more will come. */
        if (rc < 0) {
            cli_err("cannot list topics: %s", shmbus_strerror(rc));
            free(l.k);
            return CLI_EXIT_FAIL;
        }
        for (int i = 0; i < rc; i++) {
            if (sb_glob_match(st->m->pattern, strlen(st->m->pattern), page[i].name,
                              strnlen(page[i].name, sizeof(page[i].name))) &&
                multi_matched(st, &l, &page[i], later) < 0) {
                free(l.k);
                return CLI_EXIT_FAIL;
            }
        }
        if (rc > 0)
            snprintf(after, sizeof(after), "%s", page[rc - 1].name);
    } while (rc == MULTI_PAGE);
    free(st->known);
    st->known = l.k;
    st->n_known = l.n;
    return 0;
}

/* The exit status after cli_flush() failed with @p rc. */
static int multi_out_status(int rc)
{
    return rc == -EPIPE ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* A receive on @p e failed with @p rc: drop a pattern's topic, or end.
 * @return 0 (dropped); CLI_EXIT_FAIL. */
static int multi_recv_err(struct multi_state *st, struct multi_entry *e, int rc)
{
    size_t at = 0;
    struct multi_known *k;

    cli_err("cannot receive from '%s': %s%s", e->name, shmbus_strerror(rc),
            e->from_pattern ? " (no longer read)" : "");
    /* A named topic that cannot be read ends the command, as with one topic. */
    if (!e->from_pattern)
        return CLI_EXIT_FAIL;
    /* Evicted: the topic stays listed, and the next scan must not take it
     * again. Removed: one of that name listed again is another topic, new. */
    k = multi_known_next(st, &at, e->name);
    if (k != NULL && rc == SHMBUS_ERR_EVICTED)
        k->fate = MULTI_EVICTED;
    else if (k != NULL && rc == SHMBUS_ERR_TOPIC_GONE)
        k->fate = MULTI_GONE;
    multi_drop(st, e);
    return 0;
}

/* Take up to MULTI_BATCH messages of the ready subscriber @p s.
 * @return 0; an exit status (reported). */
static int multi_drain(struct multi_state *st, shmbus_sub *s)
{
    const struct cli_sub_multi *m = st->m;
    struct multi_entry *e = multi_find(st, s, NULL);
    struct cli_msgout out = m->out;
    shmbus_msg msg;
    uint64_t now;

    out.topic = e->name;
    for (int i = 0; i < MULTI_BATCH && (m->count == 0 || st->got < m->count); i++) {
        int rc = shmbus_recv(s, st->buf, st->cap, &msg, 0);

        /* Nothing more ready here. */
        if (rc == -EAGAIN)
            return 0;
        if (rc < 0)
            return multi_recv_err(st, e, rc);
        /* One clock read for the summary and the line's column alike. */
        now = m->lat != NULL ? cli_realtime_ns() : 0;
        if (m->lat != NULL)
            cli_latency_add(m->lat, now, msg.timestamp_ns);
        rc = cli_msgout_print(&out, st->buf, &msg, now);
        /* stdout is gone: nobody to print for. */
        if (rc < 0)
            return multi_out_status(rc);
        st->got++;
    }
    return 0;
}

/* One wait and what it found. @return 0; an exit status. */
static int multi_step(struct multi_state *st)
{
    shmbus_sub *ready[SHMBUS_WAITSET_MAX];
    int n = shmbus_waitset_wait(st->ws, ready, SHMBUS_WAITSET_MAX, 0), rc;

    if (n == -EAGAIN) {
        /* Nothing ready: show what was printed, then sleep. */
        if ((rc = cli_flush()) < 0)
            return multi_out_status(rc);
        n = shmbus_waitset_wait(st->ws, ready, SHMBUS_WAITSET_MAX, MULTI_SLICE_NS);
    }
    /* Nothing yet, or a signal: look at the stop flag and the pattern again. */
    if (n == SHMBUS_ERR_TIMEOUT || n == -EINTR)
        return 0;
    if (n < 0) {
        cli_err("cannot wait for messages: %s", shmbus_strerror(n));
        return CLI_EXIT_FAIL;
    }
    for (int i = 0; i < n; i++) {
        /* A subscriber dropped in this round is no longer in the set. */
        if (multi_find(st, ready[i], NULL) == NULL)
            continue;
        if ((rc = multi_drain(st, ready[i])) != 0)
            return rc;
    }
    return 0;
}

static int multi_loop(struct multi_state *st)
{
    const struct cli_sub_multi *m = st->m;
    uint64_t next_scan = cli_monotonic_ns() + CLI_SUB_RESCAN_NS;
    int rc = 0;

    while (rc == 0 && !cli_stop && (m->count == 0 || st->got < m->count)) {
        if (m->pattern != NULL && cli_monotonic_ns() >= next_scan) {
            rc = multi_scan(st, 1);
            next_scan = cli_monotonic_ns() + CLI_SUB_RESCAN_NS;
            continue;
        }
        /* Only a pattern that matches nothing yet: wait for the next scan. */
        if (st->n == 0) {
            cli_sleep((uint64_t)MULTI_SLICE_NS);
            continue;
        }
        rc = multi_step(st);
    }
    if (rc != 0)
        return rc;
    rc = cli_flush();
    return rc < 0 ? multi_out_status(rc) : CLI_EXIT_OK;
}

int cli_sub_multi_run(const struct cli_sub_multi *m)
{
    char bus_name[SHMBUS_BUS_NAME_MAX + 1];
    struct multi_state st = {.m = m};
    int rc = cli_connect(m->bus, bus_name, &st.bus);

    if (rc != 0)
        return rc; /* reported */
    rc = shmbus_waitset_create(&st.ws);
    if (rc < 0) {
        cli_err("out of memory");
        shmbus_close(st.bus);
        return CLI_EXIT_FAIL;
    }
    rc = multi_named(&st);
    if (rc == 0 && m->pattern != NULL)
        rc = multi_scan(&st, 0);
    if (rc == 0)
        rc = multi_loop(&st);
    while (st.n > 0)
        multi_drop(&st, &st.e[st.n - 1]);
    shmbus_waitset_destroy(st.ws);
    free(st.known);
    free(st.buf);
    shmbus_close(st.bus);
    return rc;
}
