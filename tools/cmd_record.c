/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus record`: record topics into journals (shmbus/journal.h), one
 * subscriber and one journal writer per topic, all waited on by one wait
 * set. Each batch a poll delivers is appended, then flushed: what a batch
 * held is in the file before the next wait. A reliable topic is gated by
 * the recorder like by any subscriber, so its journal is complete; a lossy
 * one's losses become gap records (the writer sees the seqs jump).
 *
 * Restart: a journal that holds messages up to seq L is continued from
 * L + 1 (SHMBUS_START_SEQ) when the ring still holds it, else from the
 * oldest message the ring holds, the writer recording the gap. A reliable
 * ring holds a message only while a subscriber has not read it, and the
 * daemon frees a dead recorder's slot at once: what was published while
 * no recorder ran is there only if another subscriber holds it. A journal
 * past the topic's tail is an earlier topic's: moved aside (rec_set_aside).
 * SIGINT or
 * SIGTERM end it cleanly: every journal flushed and closed, a summary on
 * stderr. A writer that fails (a full disk) ends the recording: the
 * others are flushed and closed, and the exit status is 1.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "shmbus/journal.h"
#include "util/name.h"

/* Longest wait before looking at the stop flag again, and the interval
 * of rec_flush_all()'s flushes. */
#define REC_SLICE_NS (200ll * 1000000ll)
/* Most messages one poll appends before the batch is flushed. */
#define REC_BATCH 4096u

struct rec_args {
    const char *bus;
    const char *dir;
    char **topics; /* borrowed from argv */
    int n_topics;
    uint64_t count; /* 0: no limit */
    shmbus_topic_opts topic_opts;
    shmbus_journal_opts jopts;
};

/* One recorded topic. */
struct rec_topic {
    const char *name;
    shmbus_journal *j;
    shmbus_topic *t;
    shmbus_sub *s;
    int err; /* the writer's error, once it failed */
};

struct rec_state {
    const struct rec_args *a;
    struct rec_topic *tp;
    shmbus_waitset *ws;
    uint64_t got;     /* messages delivered, all topics */
    int live;         /* topics still read */
    int status;       /* the exit status so far */
    int writer_err;   /* a writer failed: stop */
    uint64_t idle_ns; /* CLOCK_MONOTONIC of rec_flush_all()'s last flush */
};

void cli_record_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] record TOPIC... --dir DIR [OPTIONS]\n"
            "Record each TOPIC into DIR/TOPIC/ (see docs/journal.md) until SIGINT or\n"
            "SIGTERM, or until --count messages were recorded; then flush, close and\n"
            "print a summary on stderr. Run again, it continues each journal where it\n"
            "ends: from the next message if the ring still holds it, else from the\n"
            "oldest message the ring holds, with a gap record for what was missed. A\n"
            "lossy ring holds its last messages; a reliable one only those another\n"
            "subscriber has not read yet (a dead recorder's slot is freed at once). A\n"
            "journal that ends past the topic's last message is an earlier topic's of\n"
            "that name: it is moved aside to DIR/TOPIC.old-NS.\n"
            "\n"
            "  --dir DIR        directory of the journals (must exist)\n"
            "  --count N        exit after N messages in all\n"
            "  --segment-size SIZE\n"
            "                   start a new file at this size, 64K..1024G (default 64M)\n"
            "  --retain SIZE|AGE|SIZE,AGE\n"
            "                   delete a topic's oldest files while they hold more than\n"
            "                   SIZE (K, M, G), or once their newest record is older\n"
            "                   than AGE (s, m, h, d: 'm' is minutes, 'M' MiB)\n"
            "  --sync none|batch|MS\n"
            "                   fdatasync never (default; the kernel writes back), after\n"
            "                   every batch, or at a batch MS milliseconds after the last\n"
            "                   (1..%u). A crash of this process loses nothing\n"
            "                   flushed; a crash of the machine, what was not synced\n"
            "  --bus NAME       bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help           this text\n"
            "Exit status: 0 done or stopped, 1 a journal or topic failed (named on\n"
            "stderr), 2 bad usage.\n"
            "\n",
            SB_UNITS_SYNC_MAX_MS, SHMBUS_BUS_DEFAULT);
    cli_topic_usage(f);
}

enum { OPT_BUS = 256, OPT_DIR, OPT_COUNT, OPT_SEGMENT, OPT_RETAIN, OPT_SYNC, OPT_HELP };

static const struct option rec_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                         {"dir", required_argument, NULL, OPT_DIR},
                                         {"count", required_argument, NULL, OPT_COUNT},
                                         {"segment-size", required_argument, NULL, OPT_SEGMENT},
                                         {"retain", required_argument, NULL, OPT_RETAIN},
                                         {"sync", required_argument, NULL, OPT_SYNC},
                                         {"help", no_argument, NULL, OPT_HELP},
                                         CLI_TOPIC_OPTIONS,
                                         {NULL, 0, NULL, 0}};

/* A journal option. @return 0; 1 when @p opt is not one; CLI_EXIT_USAGE. */
static int rec_journal_option(struct rec_args *a, int opt, const char *cmd)
{
    switch (opt) {
    case OPT_SEGMENT:
        /* The range shmbus_journal_opts.segment_size allows. */
        if (sb_units_size(optarg, &a->jopts.segment_size) < 0 ||
            a->jopts.segment_size < SB_UNITS_SEGMENT_MIN ||
            a->jopts.segment_size > SB_UNITS_SEGMENT_MAX)
            return cli_usage_err(cmd, "--segment-size wants a size from 64K to 1024G, not '%s'",
                                 optarg);
        return 0;
    case OPT_RETAIN:
        if (sb_units_retain(optarg, &a->jopts.retain_bytes, &a->jopts.retain_ns) < 0)
            return cli_usage_err(cmd, "--retain wants " SB_UNITS_RETAIN_WANTS ", not '%s'", optarg);
        return 0;
    case OPT_SYNC:
        if (sb_units_sync(optarg, &a->jopts.sync, &a->jopts.sync_interval_ms) < 0)
            return cli_usage_err(cmd, "--sync wants " SB_UNITS_SYNC_WANTS ", not '%s'", optarg);
        return 0;
    default:
        return 1; /* not a journal option */
    }
}

/* One option. @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int rec_option(struct rec_args *a, int opt, const char *cmd)
{
    int rc = cli_topic_option(cmd, opt, optarg, &a->topic_opts);

    /* A topic option, good or bad. */
    if (rc != 1)
        return rc;
    rc = rec_journal_option(a, opt, cmd);
    /* A journal option, good or bad. */
    if (rc != 1)
        return rc;
    switch (opt) {
    case OPT_BUS:
        a->bus = optarg;
        return 0;
    case OPT_DIR:
        a->dir = optarg;
        return 0;
    case OPT_COUNT:
        if (sb_units_u64(optarg, 1, UINT64_MAX, &a->count) < 0)
            return cli_usage_err(cmd, "--count wants a positive number, not '%s'", optarg);
        return 0;
    case OPT_HELP:
        return CLI_HELP;
    default:
        /* getopt printed what was wrong. */
        return cli_usage_hint(cmd);
    }
}

/* The topics: valid names, each once, no more than a wait set holds. */
static int rec_check_topics(const struct rec_args *a, const char *cmd)
{
    if (a->n_topics > SHMBUS_WAITSET_MAX)
        return cli_usage_err(cmd, "at most %d topics, not %d", SHMBUS_WAITSET_MAX, a->n_topics);
    for (int i = 0; i < a->n_topics; i++) {
        if (!sb_name_valid(a->topics[i], SHMBUS_TOPIC_NAME_MAX))
            return cli_usage_err(cmd, "bad topic name '%s': " SB_NAME_TOPIC_RULE, a->topics[i]);
        for (int k = 0; k < i; k++) {
            if (strcmp(a->topics[k], a->topics[i]) == 0)
                return cli_usage_err(cmd, "topic '%s' given twice", a->topics[i]);
        }
    }
    return 0;
}

/* @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int rec_parse(int argc, char **argv, struct rec_args *a)
{
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", rec_opts, NULL)) != -1) {
        rc = rec_option(a, opt, argv[0]);
        if (rc != 0)
            return rc;
    }
    if (optind >= argc)
        return cli_usage_err(argv[0], "no topic given");
    if (a->dir == NULL)
        return cli_usage_err(argv[0], "no --dir given");
    a->topics = argv + optind;
    a->n_topics = argc - optind;
    return rec_check_topics(a, argv[0]);
}

/* Report a journal that cannot be opened for writing, in the user's words. */
static void rec_open_err(const struct rec_args *a, const char *topic, int rc)
{
    const char *why = rc == -EBUSY                 ? " (another recorder writes it)"
                      : rc == SHMBUS_ERR_BAD_MAGIC ? " (a file there is not a journal file)"
                      : rc == SHMBUS_ERR_VERSION   ? " (a journal of another format version)"
                      : rc == -ENOENT              ? " (no such directory)"
                      : rc == -ENOTDIR             ? " (not a directory)"
                      : rc == -ELOOP ? " (a symbolic link there: a journal never follows one)"
                      : rc == SHMBUS_ERR_INVALID ? " (an option is out of range)"
                                                 : "";

    cli_err("cannot open the journal %s/%s: %s%s", a->dir, topic, shmbus_strerror(rc), why);
}

/* Open every topic's journal, before anything touches the bus: a bad
 * directory creates no topic. @return 0; CLI_EXIT_FAIL (reported). */
static int rec_open_journals(const struct rec_args *a, struct rec_topic *tp)
{
    shmbus_journal_stats st;

    for (int i = 0; i < a->n_topics; i++) {
        int rc = shmbus_journal_open(a->dir, tp[i].name, &a->jopts, &tp[i].j);

        if (rc < 0) {
            rec_open_err(a, tp[i].name, rc);
            return CLI_EXIT_FAIL;
        }
        shmbus_journal_stats_get(tp[i].j, &st);
        /* A previous recorder died mid-write: say what its torn tail cost. */
        if (st.cut_bytes > 0)
            cli_err("%s: cut a torn tail of %llu bytes in %s/%s", tp[i].name,
                    (unsigned long long)st.cut_bytes, a->dir, tp[i].name);
    }
    return 0;
}

/*
 * The journal of @p rt ends at a seq its topic has not published: it is
 * an earlier topic's of that name (the daemon stopped, which removes
 * topics, and the topic was made anew from seq 0), whose seqs the writer
 * would take for ones it has and skip as duplicates. Move it aside to
 * DIR/NAME.old-NS (a journal of its own, as shmbusd --record does) and
 * start a new one. @return 0; CLI_EXIT_FAIL (reported).
 */
static int rec_set_aside(const struct rec_args *a, struct rec_topic *rt)
{
    char aside[SHMBUS_TOPIC_NAME_MAX + 1] = "";
    shmbus_journal_stats st;
    shmbus_topic_info info;
    int rc;

    shmbus_journal_stats_get(rt->j, &st);
    /* A new journal, or one that ends before the topic's tail. */
    if (shmbus_topic_info_get(rt->t, &info) < 0 || st.last_seq == UINT64_MAX ||
        st.last_seq < info.published)
        return 0;
    shmbus_journal_close(rt->j);
    rt->j = NULL;
    rc = shmbus_journal_set_aside(a->dir, rt->name, aside, sizeof(aside));
    if (rc < 0) {
        cli_err("cannot move the journal %s/%s aside to %s/%s: %s", a->dir, rt->name, a->dir, aside,
                shmbus_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    cli_err("%s: the journal ends at seq %llu but the topic has published only %llu messages: "
            "it is an earlier topic's of that name, moved to %s/%s",
            rt->name, (unsigned long long)st.last_seq, (unsigned long long)info.published, a->dir,
            aside);
    rc = shmbus_journal_open(a->dir, rt->name, &a->jopts, &rt->j);
    if (rc < 0) {
        rt->j = NULL;
        rec_open_err(a, rt->name, rc);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

/*
 * Subscribe to @p rt where its journal ends: at its last seq + 1 if the
 * ring still holds it, else at the oldest message the ring holds (the
 * writer records the gap); at the next message for a new journal.
 * @return 0; CLI_EXIT_FAIL (reported).
 */
static int rec_subscribe(struct rec_topic *rt)
{
    shmbus_sub_opts so = {.start = SHMBUS_START_NEXT};
    shmbus_journal_stats st;
    int rc;

    shmbus_journal_stats_get(rt->j, &st);
    if (st.last_seq != UINT64_MAX) {
        so.start = SHMBUS_START_SEQ;
        so.start_seq = st.last_seq + 1;
    }
    rc = shmbus_sub_create(rt->t, &so, &rt->s);
    /* The ring moved past the journal's end: take what it still holds. */
    if (rc == SHMBUS_ERR_RANGE) {
        cli_err("%s: the ring no longer holds seq %llu: recording from its oldest message, "
                "with a gap",
                rt->name, (unsigned long long)so.start_seq);
        so = (shmbus_sub_opts){.start = SHMBUS_START_OLDEST};
        rc = shmbus_sub_create(rt->t, &so, &rt->s);
    }
    if (rc < 0) {
        cli_err("cannot subscribe to '%s': %s", rt->name, shmbus_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    return 0;
}

/* Open, subscribe and add to the wait set every topic. @return 0; an exit status. */
static int rec_attach(struct rec_state *st, shmbus_bus *bus)
{
    for (int i = 0; i < st->a->n_topics; i++) {
        struct rec_topic *rt = &st->tp[i];
        int rc = cli_open(bus, rt->name, &st->a->topic_opts, &rt->t);

        if (rc != 0)
            return rc; /* reported */
        rc = rec_set_aside(st->a, rt);
        if (rc != 0)
            return rc; /* reported */
        rc = rec_subscribe(rt);
        if (rc != 0)
            return rc; /* reported */
        rc = shmbus_waitset_add(st->ws, rt->s);
        /* Bounded by rec_check_topics(): only memory can fail here. */
        if (rc < 0) {
            cli_err("cannot wait on '%s': %s", rt->name, shmbus_strerror(rc));
            return CLI_EXIT_FAIL;
        }
        st->live++;
    }
    return 0;
}

/* shmbus_poll() callback: append one message. A failed writer stops the poll. */
static int rec_on_msg(const shmbus_msg *m, void *arg)
{
    struct rec_topic *rt = arg;
    int rc = shmbus_journal_append(rt->j, m);

    if (rc < 0) {
        rt->err = rc;
        return 1; /* stop: nothing more goes into this journal */
    }
    return 0;
}

/* Stop reading @p rt (its subscriber failed); its journal stays open. */
static void rec_drop(struct rec_state *st, struct rec_topic *rt)
{
    shmbus_waitset_remove(st->ws, rt->s);
    shmbus_sub_destroy(rt->s);
    rt->s = NULL;
    st->live--;
    st->status = CLI_EXIT_FAIL;
}

/* A writer failed: name the topic, the path and the error. */
static void rec_writer_failed(struct rec_state *st, struct rec_topic *rt)
{
    cli_err("cannot write the journal %s/%s: %s%s", st->a->dir, rt->name, shmbus_strerror(rt->err),
            rt->err == -ENOSPC ? " (the disk is full): recording stops" : ": recording stops");
    st->writer_err = 1;
    st->status = CLI_EXIT_FAIL;
}

/* Append what @p rt has ready (one batch) and flush it. */
static void rec_drain(struct rec_state *st, struct rec_topic *rt)
{
    unsigned max = REC_BATCH;
    int rc;

    if (st->a->count != 0 && st->a->count - st->got < max)
        max = (unsigned)(st->a->count - st->got);
    rc = shmbus_poll(rt->s, rec_on_msg, rt, max);
    /* Evicted (stall timeout), the topic removed, or a corrupt ring. */
    if (rc < 0) {
        cli_err("cannot receive from '%s': %s: no longer recorded", rt->name, shmbus_strerror(rc));
        rec_drop(st, rt);
    } else {
        /* A failed append consumed its message too (it counts as delivered). */
        st->got += (uint64_t)rc - (rt->err != 0);
    }
    if (rt->err == 0)
        rt->err = shmbus_journal_flush(rt->j);
    if (rt->err != 0)
        rec_writer_failed(st, rt);
}

/* Every slice, flush every journal still written, so that an interval's
 * fdatasync and age retention come to a quiet topic too, busy ones
 * beside it or not. */
static void rec_flush_all(struct rec_state *st)
{
    uint64_t now = cli_monotonic_ns();

    /* Flushed less than a slice ago. */
    if (now - st->idle_ns < (uint64_t)REC_SLICE_NS)
        return;
    st->idle_ns = now;
    for (int i = 0; i < st->a->n_topics && !st->writer_err; i++) {
        struct rec_topic *rt = &st->tp[i];

        /* Its subscriber failed: its journal was flushed then, and is idle. */
        if (rt->s == NULL)
            continue;
        rt->err = shmbus_journal_flush(rt->j);
        if (rt->err != 0)
            rec_writer_failed(st, rt);
    }
}

/* Wait and record until the count, a signal, a failed writer or no topic left. */
static void rec_loop(struct rec_state *st)
{
    shmbus_sub *ready[SHMBUS_WAITSET_MAX];

    while (!cli_stop && !st->writer_err && st->live > 0 &&
           (st->a->count == 0 || st->got < st->a->count)) {
        int n = shmbus_waitset_wait(st->ws, ready, SHMBUS_WAITSET_MAX, REC_SLICE_NS);

        rec_flush_all(st);
        /* Nothing for a slice, or a signal: look at the stop flag again. */
        if (n == SHMBUS_ERR_TIMEOUT || n == -EINTR)
            continue;
        if (n < 0) {
            cli_err("cannot wait for messages: %s", shmbus_strerror(n));
            st->status = CLI_EXIT_FAIL;
            return;
        }
        for (int i = 0; i < n && !st->writer_err; i++) {
            for (int k = 0; k < st->a->n_topics; k++) {
                if (st->tp[k].s == ready[i])
                    rec_drain(st, &st->tp[k]);
            }
        }
    }
}

/* Close everything; the summary line of each journal on stderr. */
static void rec_close(struct rec_state *st)
{
    for (int i = 0; i < st->a->n_topics; i++) {
        struct rec_topic *rt = &st->tp[i];
        shmbus_journal_stats js;
        int rc;

        shmbus_sub_destroy(rt->s);
        shmbus_topic_destroy(rt->t);
        /* Never opened: an earlier journal failed to open. */
        if (rt->j == NULL)
            continue;
        shmbus_journal_stats_get(rt->j, &js);
        rc = shmbus_journal_close(rt->j);
        if (rc < 0 && rt->err == 0) {
            cli_err("cannot close the journal %s/%s: %s", st->a->dir, rt->name,
                    shmbus_strerror(rc));
            st->status = CLI_EXIT_FAIL;
        }
        fprintf(stderr,
                "shmbus record: %s: %llu records, %llu gaps (%llu messages), %llu bytes, "
                "%llu duplicates skipped\n",
                rt->name, (unsigned long long)js.records, (unsigned long long)js.gaps,
                (unsigned long long)js.gap_messages, (unsigned long long)js.bytes,
                (unsigned long long)js.duplicates);
    }
}

static int rec_run(const struct rec_args *a)
{
    char bus_name[SHMBUS_BUS_NAME_MAX + 1];
    struct rec_state st = {.a = a, .status = CLI_EXIT_OK};
    shmbus_bus *bus = NULL;
    int rc;

    st.tp = calloc((size_t)a->n_topics, sizeof(*st.tp));
    /* At most SHMBUS_WAITSET_MAX small entries. */
    if (st.tp == NULL || shmbus_waitset_create(&st.ws) < 0) {
        cli_err("out of memory");
        free(st.tp);
        return CLI_EXIT_FAIL;
    }
    for (int i = 0; i < a->n_topics; i++)
        st.tp[i].name = a->topics[i];
    rc = rec_open_journals(a, st.tp);
    if (rc == 0)
        rc = cli_connect(a->bus, bus_name, &bus);
    if (rc == 0)
        rc = rec_attach(&st, bus);
    if (rc == 0)
        rec_loop(&st);
    else
        st.status = rc;
    rec_close(&st);
    shmbus_waitset_destroy(st.ws);
    shmbus_close(bus);
    free(st.tp);
    return st.status;
}

int cli_record_main(const char *bus, int argc, char **argv)
{
    struct rec_args a = {.bus = bus};
    int rc = rec_parse(argc, argv, &a);

    /* --help, or a usage error already reported. */
    if (rc == CLI_HELP)
        cli_record_usage(stdout);
    if (rc != 0)
        return rc == CLI_HELP ? CLI_EXIT_OK : rc;
    cli_signals_catch();
    return rec_run(&a);
}
