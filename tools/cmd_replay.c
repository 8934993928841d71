/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus replay`: publish a topic's journal (shmbus/journal.h) again, in
 * order, onto a topic of the bus (the recorded one, or another), or print
 * it as `shmbus sub` prints (msgout.h). With --speed F the records keep
 * their recorded spacing divided by F: each is due at the monotonic time
 * of the first plus its publish-time offset / F, an absolute deadline, so
 * that late wake-ups never add up; --speed 0 publishes as fast as the
 * topic takes them (a reliable topic blocks the replay instead of dropping).
 * Gap records and damaged records (skipped by the reader, never published)
 * are counted and reported at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "msgout.h"
#include "shmbus/journal.h"
#include "util/name.h"
#include "util/timefmt.h"

/* Longest wait of one publish on a full reliable ring before looking at
 * the stop flag again. */
#define RP_SLICE_NS (200ll * 1000000ll)
/* Fastest --speed: a million times the recorded pace. */
#define RP_SPEED_MAX 1e6
/* A wait for one record longer than this is announced on stderr: the
 * quiet hours of a journal take hours to replay at --speed 1. */
#define RP_NOTE_NS (10ull * SB_TIME_NS_PER_S)

struct rp_args {
    const char *bus;
    const char *dir;
    const char *topic; /* the journal's */
    const char *to;    /* the topic published to */
    uint64_t from_seq, from_time, to_seq;
    int has_from_seq, has_from_time, has_to_seq, has_format;
    double speed;
    int print;
    struct cli_msgout out;
    shmbus_topic_opts topic_opts;
};

/* What a replay did, for the report at its end. */
struct rp_count {
    uint64_t published;
    uint64_t gaps, gap_messages;
    uint64_t damaged;
    uint64_t failed; /* not published: too big for the topic, or overtaken */
    uint64_t lost;   /* gap messages not yet reported to --print */
};

void cli_replay_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] replay --dir DIR --topic T [OPTIONS]\n"
            "Publish the messages recorded in DIR/T (by `shmbus record` or shmbusd\n"
            "--record) in order, keeping their recorded spacing, then report on stderr\n"
            "how many were published, the gaps in the journal and the damaged records\n"
            "skipped (never published). The journal is replayed as it is at the start:\n"
            "what a recorder appends meanwhile is not.\n"
            "\n"
            "  --dir DIR        directory of the journals\n"
            "  --topic T        the journal to replay\n"
            "  --to TOPIC       publish on TOPIC (default: T)\n"
            "  --from-seq N     start at the message of seq N\n"
            "  --from-time TIME start at the first message published at or after TIME:\n"
            "                   RFC 3339 (2026-12-07T15:04:05.123Z, or with +hh:mm) or\n"
            "                   nanoseconds since the epoch\n"
            "  --to-seq M       stop after the message of seq M\n"
            "  --speed F        F times the recorded pace (default 1; decimals allowed;\n"
            "                   0: as fast as the topic takes them). A long silence in\n"
            "                   the journal is waited out; a wait over 10 s is said\n"
            "                   on stderr\n"
            "  --print          print instead of publishing, as `shmbus sub` does\n"
            "%s"
            "  --latency        text: start each line with the latency in microseconds\n"
            "                   (now minus publish time, CLOCK_REALTIME) and a tab\n"
            "  --bus NAME       bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help           this text\n"
            "A message too big for TOPIC is reported and counted, and the replay goes\n"
            "on. Exit status: 0 done or stopped, 1 a damaged record was skipped, a\n"
            "message not published or something failed, 2 bad usage or a seq or time\n"
            "outside the journal.\n"
            "\n",
            CLI_MSGOUT_USAGE, SHMBUS_BUS_DEFAULT);
    cli_topic_usage(f);
}

enum {
    OPT_BUS = 256,
    OPT_DIR,
    OPT_TOPIC,
    OPT_TO,
    OPT_FROM_SEQ,
    OPT_FROM_TIME,
    OPT_TO_SEQ,
    OPT_SPEED,
    OPT_PRINT,
    OPT_LATENCY,
    OPT_DEAD_LETTERS,
    OPT_FORMAT,
    OPT_HELP
};

static const struct option rp_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                        {"dir", required_argument, NULL, OPT_DIR},
                                        {"topic", required_argument, NULL, OPT_TOPIC},
                                        {"to", required_argument, NULL, OPT_TO},
                                        {"from-seq", required_argument, NULL, OPT_FROM_SEQ},
                                        {"from-time", required_argument, NULL, OPT_FROM_TIME},
                                        {"to-seq", required_argument, NULL, OPT_TO_SEQ},
                                        {"speed", required_argument, NULL, OPT_SPEED},
                                        {"print", no_argument, NULL, OPT_PRINT},
                                        {"latency", no_argument, NULL, OPT_LATENCY},
                                        {"dead-letters", no_argument, NULL, OPT_DEAD_LETTERS},
                                        {"format", required_argument, NULL, OPT_FORMAT},
                                        {"help", no_argument, NULL, OPT_HELP},
                                        CLI_TOPIC_OPTIONS,
                                        {NULL, 0, NULL, 0}};

/* --speed: a decimal from 0 to RP_SPEED_MAX. @return 0; -1. */
static int rp_parse_speed(const char *s, double *out)
{
    size_t n = strspn(s, "0123456789");
    char *end;
    double v;

    /* Digits, then an optional fraction: no sign, exponent, inf or nan. */
    if (n == 0 || (s[n] != '\0' && (s[n] != '.' || strspn(s + n + 1, "0123456789") == 0 ||
                                    s[n + 1 + strspn(s + n + 1, "0123456789")] != '\0')))
        return -1;
    v = strtod(s, &end);
    if (*end != '\0' || !isfinite(v) || v > RP_SPEED_MAX)
        return -1;
    *out = v;
    return 0;
}

/* A seq or time option. @return 0; 1 when @p opt is not one; CLI_EXIT_USAGE. */
static int rp_range_option(struct rp_args *a, int opt, const char *cmd)
{
    switch (opt) {
    case OPT_FROM_SEQ:
        a->has_from_seq = 1;
        if (sb_units_u64(optarg, 0, UINT64_MAX - 1, &a->from_seq) < 0)
            return cli_usage_err(cmd, "--from-seq wants a seq, not '%s'", optarg);
        return 0;
    case OPT_TO_SEQ:
        a->has_to_seq = 1;
        if (sb_units_u64(optarg, 0, UINT64_MAX - 1, &a->to_seq) < 0)
            return cli_usage_err(cmd, "--to-seq wants a seq, not '%s'", optarg);
        return 0;
    case OPT_FROM_TIME:
        a->has_from_time = 1;
        if (sb_time_parse(optarg, &a->from_time) < 0)
            return cli_usage_err(cmd,
                                 "--from-time wants an RFC 3339 time (2026-12-07T15:04:05.123Z "
                                 "or with +hh:mm) or nanoseconds since the epoch, not '%s'",
                                 optarg);
        return 0;
    case OPT_SPEED:
        if (rp_parse_speed(optarg, &a->speed) < 0)
            return cli_usage_err(cmd, "--speed wants a number from 0 to %g, not '%s'", RP_SPEED_MAX,
                                 optarg);
        return 0;
    default:
        return 1; /* not one of them */
    }
}

/* One option. @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int rp_option(struct rp_args *a, int opt, const char *cmd)
{
    int rc = cli_topic_option(cmd, opt, optarg, &a->topic_opts);

    /* A topic option, good or bad. */
    if (rc != 1)
        return rc;
    rc = rp_range_option(a, opt, cmd);
    /* A seq, time or speed option, good or bad. */
    if (rc != 1)
        return rc;
    switch (opt) {
    case OPT_BUS:
        a->bus = optarg;
        return 0;
    case OPT_DIR:
        a->dir = optarg;
        return 0;
    case OPT_TOPIC:
    case OPT_TO:
        if (!sb_name_valid(optarg, SHMBUS_TOPIC_NAME_MAX))
            return cli_usage_err(cmd, "bad topic name '%s': " SB_NAME_TOPIC_RULE, optarg);
        *(opt == OPT_TOPIC ? &a->topic : &a->to) = optarg;
        return 0;
    case OPT_PRINT:
        a->print = 1;
        return 0;
    case OPT_LATENCY:
        a->out.latency = 1;
        return 0;
    case OPT_DEAD_LETTERS:
        a->out.dead_letters = 1;
        return 0;
    case OPT_FORMAT:
        a->has_format = 1;
        if (cli_msgout_format(optarg, &a->out.format) < 0)
            return cli_usage_err(cmd, "--format wants text, json, raw or hex, not '%s'", optarg);
        return 0;
    case OPT_HELP:
        return CLI_HELP;
    default:
        /* getopt printed what was wrong. */
        return cli_usage_hint(cmd);
    }
}

/* @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int rp_parse(int argc, char **argv, struct rp_args *a)
{
    const char *cmd = argv[0];
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", rp_opts, NULL)) != -1) {
        rc = rp_option(a, opt, cmd);
        if (rc != 0)
            return rc;
    }
    if (optind < argc)
        return cli_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
    if (a->dir == NULL || a->topic == NULL)
        return cli_usage_err(cmd, "--dir and --topic are required");
    if (a->has_from_seq && a->has_from_time)
        return cli_usage_err(cmd, "--from-seq and --from-time do not go together");
    if (a->has_to_seq && a->has_from_seq && a->to_seq < a->from_seq)
        return cli_usage_err(cmd, "--to-seq %llu is before --from-seq %llu",
                             (unsigned long long)a->to_seq, (unsigned long long)a->from_seq);
    if (a->print && a->to != NULL)
        return cli_usage_err(cmd, "--print and --to do not go together");
    if (!a->print && (a->out.latency || a->out.dead_letters || a->has_format))
        return cli_usage_err(cmd, "--latency, --dead-letters and --format need --print");
    if ((a->out.latency || a->out.dead_letters) && a->out.format != CLI_FMT_TEXT)
        return cli_usage_err(cmd, "--latency and --dead-letters need --format text");
    if (a->to == NULL)
        a->to = a->topic;
    a->out.topic = a->topic;
    return 0;
}

/* The journal's extent, to word a range error. */
static void rp_range_err(const struct rp_args *a, const char *what)
{
    shmbus_journal_summary s;
    char t0[SB_TIME_STR_LEN], t1[SB_TIME_STR_LEN];

    if (shmbus_journal_summary_get(a->dir, a->topic, &s) < 0 || s.records == 0) {
        cli_err("%s is outside the journal %s/%s (%s)", what, a->dir, a->topic,
                shmbus_strerror(SHMBUS_ERR_RANGE));
        return;
    }
    cli_err("%s is outside the journal %s/%s (%s): it holds seqs %llu..%llu, published %s..%s",
            what, a->dir, a->topic, shmbus_strerror(SHMBUS_ERR_RANGE),
            (unsigned long long)s.first_seq, (unsigned long long)s.last_seq,
            sb_time_format(s.first_time_ns, t0), sb_time_format(s.last_time_ns, t1));
}

/* A seq option that a seek took but that no message of the journal
 * (summary @p s, with messages) meets: --from-seq past its last message
 * (the seek takes the seq after it, where a follower waits), --to-seq
 * before its first. @p what names it. @return 1 if so; 0. */
static int rp_outside(const struct rp_args *a, const shmbus_journal_summary *s, char *what,
                      size_t len)
{
    if (a->has_from_seq && a->from_seq > s->last_seq) {
        snprintf(what, len, "--from-seq %llu", (unsigned long long)a->from_seq);
        return 1;
    }
    if (a->has_to_seq && a->to_seq < s->first_seq) {
        snprintf(what, len, "--to-seq %llu", (unsigned long long)a->to_seq);
        return 1;
    }
    return 0;
}

/* Open the journal and seek where the options say, and set *stop to the
 * first seq not to replay: after --to-seq, and after the journal's last
 * message now. What is appended while it replays is not replayed: a
 * recorder of the topic replayed onto (by default the recorded one)
 * appends each message replayed, which the reader would meet again, and
 * the replay would never end. On failure nothing stays open.
 * @return 0; an exit status (reported). */
static int rp_open(const struct rp_args *a, shmbus_journal_reader **r, uint64_t *stop)
{
    char what[64] = "", t[SB_TIME_STR_LEN];
    shmbus_journal_summary s;
    int have = shmbus_journal_summary_get(a->dir, a->topic, &s) == 0;
    int rc = shmbus_journal_reader_open(a->dir, a->topic, r);

    if (rc < 0) {
        int dir_rc = rc == -ENOENT ? shmbus_journal_list(a->dir, NULL, 0) : 0;

        cli_err("cannot read the journal %s/%s: %s%s", a->dir, a->topic, shmbus_strerror(rc),
                rc != -ENOENT        ? ""
                : dir_rc == -ENOENT  ? " (no such directory)"
                : dir_rc == -ENOTDIR ? " (not a directory)"
                                     : " (no journal of that topic there)");
        return CLI_EXIT_FAIL;
    }
    if (a->has_from_seq) {
        rc = shmbus_journal_seek_seq(*r, a->from_seq);
        snprintf(what, sizeof(what), "--from-seq %llu", (unsigned long long)a->from_seq);
    } else if (a->has_from_time) {
        rc = shmbus_journal_seek_time(*r, a->from_time);
        snprintf(what, sizeof(what), "--from-time %s", sb_time_format(a->from_time, t));
    }
    /* No summary: the reader says what is wrong as it reads. */
    *stop = a->has_to_seq ? a->to_seq + 1 : UINT64_MAX;
    if (have && s.records == 0)
        *stop = 0; /* no message at all */
    else if (have && s.last_seq < *stop)
        *stop = s.last_seq + 1;
    if (rc == 0 && have && s.records > 0 && rp_outside(a, &s, what, sizeof(what)))
        rc = SHMBUS_ERR_RANGE;
    if (rc == SHMBUS_ERR_RANGE)
        rp_range_err(a, what);
    else if (rc < 0)
        cli_err("cannot seek in the journal %s/%s: %s", a->dir, a->topic, shmbus_strerror(rc));
    if (rc < 0) {
        shmbus_journal_reader_close(*r);
        *r = NULL;
    }
    return rc == SHMBUS_ERR_RANGE ? CLI_EXIT_USAGE : rc < 0 ? CLI_EXIT_FAIL : 0;
}

/* Sleep until @p due_ns (CLOCK_MONOTONIC), or less when stopped. In
 * slices of RP_SLICE_NS: a signal that comes between the look at the stop
 * flag and the sleep ends the wait within one, not at a deadline hours
 * away. The last slice ends at @p due_ns itself: lateness never adds up. */
static void rp_sleep_until(uint64_t due_ns)
{
    for (uint64_t now = cli_monotonic_ns(); !cli_stop && now < due_ns; now = cli_monotonic_ns()) {
        uint64_t until = due_ns - now > (uint64_t)RP_SLICE_NS ? now + RP_SLICE_NS : due_ns;
        struct timespec ts = {.tv_sec = (time_t)(until / SB_TIME_NS_PER_S),
                              .tv_nsec = (long)(until % SB_TIME_NS_PER_S)};

        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

/* Publish one message, waiting on a full reliable ring in slices.
 * @return 0; 1 when stopped before it went; a shmbus error (reported). */
static int rp_publish(shmbus_pub *pub, const struct rp_args *a, const shmbus_journal_record *rec)
{
    int rc;

    do {
        rc = shmbus_publish(pub, rec->data, rec->len, RP_SLICE_NS);
    } while ((rc == SHMBUS_ERR_TIMEOUT || rc == -EINTR) && !cli_stop);
    /* Stopped while the ring stayed full: not an error of the replay, but
     * not published either. */
    if ((rc == SHMBUS_ERR_TIMEOUT || rc == -EINTR) && cli_stop)
        return 1;
    if (rc < 0)
        cli_err("cannot publish seq %llu on '%s': %s", (unsigned long long)rec->seq, a->to,
                shmbus_strerror(rc));
    return rc;
}

/* Deliver one message: print or publish it. @return 0; < 0 to stop. */
static int rp_deliver(shmbus_pub *pub, const struct rp_args *a, struct rp_count *c,
                      const shmbus_journal_record *rec)
{
    shmbus_msg m = {.data = rec->data,
                    .len = rec->len,
                    .publisher_pid = rec->publisher_pid,
                    .seq = rec->seq,
                    .timestamp_ns = rec->timestamp_ns,
                    .lost = c->lost,
                    .flags = (rec->flags & SHMBUS_JOURNAL_IMPORTED) ? SHMBUS_MSG_IMPORTED : 0};
    int rc = a->print
                 ? cli_msgout_print(&a->out, rec->data, &m, a->out.latency ? cli_realtime_ns() : 0)
                 : rp_publish(pub, a, rec);

    /* Stopped on a full ring: the summary does not count it. */
    if (rc == 1)
        return 0;
    if (rc == 0) {
        c->lost = 0;
        c->published++;
    }
    /* Too big for the topic, or overtaken on a lossy one (reported): the
     * next message may well go, and the summary counts this one. */
    if (rc == SHMBUS_ERR_TOO_BIG || rc == SHMBUS_ERR_OVERRUN) {
        c->failed++;
        return 0;
    }
    return rc;
}

/* Report the damaged record the reader skipped last. */
static void rp_damage(const struct rp_args *a, const shmbus_journal_reader *r)
{
    shmbus_journal_damage d;

    if (shmbus_journal_reader_damage(r, &d) < 0)
        return; /* the reader keeps none: nothing more to say */
    d.file[sizeof(d.file) - 1] = '\0';
    d.what[sizeof(d.what) - 1] = '\0';
    cli_err("%s/%s/%s: skipped a damaged record at offset %llu: %s", a->dir, a->topic, d.file,
            (unsigned long long)d.offset, d.what);
}

/* A gap record: count the messages it stands for within the range, which
 * ends before @p stop. */
static void rp_gap(const struct rp_args *a, struct rp_count *c, const shmbus_journal_record *rec,
                   uint64_t stop)
{
    uint64_t first = rec->seq, end = rec->seq + rec->count; /* [first, end) */

    if (a->has_from_seq && first < a->from_seq)
        first = a->from_seq;
    if (end > stop)
        end = stop;
    /* The part of it inside the range, if any. */
    if (end <= first)
        return;
    c->gaps++;
    c->gap_messages += end - first;
    c->lost += end - first;
}

/* The due time of a record published at @p ts, for --speed F > 0. */
static uint64_t rp_due(uint64_t t0_mono, uint64_t ts0, uint64_t ts, double speed)
{
    double wait;

    /* A clock stepped back between two records: due at once. */
    if (ts <= ts0)
        return t0_mono;
    wait = (double)(ts - ts0) / speed;
    /* Past what 64-bit nanoseconds hold (a slow --speed): never, in
     * effect, rather than an out-of-range conversion. */
    if (wait >= (double)(UINT64_MAX - t0_mono))
        return UINT64_MAX;
    return t0_mono + (uint64_t)wait;
}

/* Say on stderr that @p rec is due in @p wait_ns, long enough to look
 * like a hang. */
static void rp_note_wait(const struct rp_args *a, const shmbus_journal_record *rec,
                         uint64_t wait_ns)
{
    unsigned long long sec = wait_ns / SB_TIME_NS_PER_S;
    char t[SB_TIME_STR_LEN];

    cli_err("%s: waiting %lluh%02llum%02llus for seq %llu (published %s), as --speed %g "
            "spaces it (--speed 0 does not wait)",
            a->topic, sec / 3600, sec / 60 % 60, sec % 60, (unsigned long long)rec->seq,
            sb_time_format(rec->timestamp_ns, t), a->speed);
}

/* Wait until @p rec is due; a printout is flushed first, so that it shows
 * at the pace it is replayed, and a long wait is announced.
 * @return 0; cli_flush()'s error. */
static int rp_pace(const struct rp_args *a, uint64_t t0, uint64_t ts0,
                   const shmbus_journal_record *rec)
{
    uint64_t due = rp_due(t0, ts0, rec->timestamp_ns, a->speed), now = cli_monotonic_ns();
    int rc;

    /* Due already: no wait, no flush. */
    if (due <= now)
        return 0;
    if (a->print && (rc = cli_flush()) < 0)
        return rc;
    if (due - now > RP_NOTE_NS)
        rp_note_wait(a, rec, due - now);
    rp_sleep_until(due);
    return 0;
}

/* Read, pace and deliver until @p stop (rp_open()), the end, a signal or
 * a failure. @return 0; < 0 when delivery failed (reported). */
static int rp_loop(shmbus_journal_reader *r, shmbus_pub *pub, const struct rp_args *a,
                   struct rp_count *c, uint64_t stop)
{
    shmbus_journal_record rec;
    uint64_t t0 = 0, ts0 = 0;
    int rc, started = 0;

    while (!cli_stop && (rc = shmbus_journal_next(r, &rec)) != 0) {
        if (rc == SHMBUS_ERR_CORRUPT) {
            c->damaged++;
            rp_damage(a, r);
            continue;
        }
        if (rc < 0) {
            cli_err("cannot read the journal %s/%s: %s", a->dir, a->topic, shmbus_strerror(rc));
            return rc;
        }
        if (rec.seq >= stop)
            break; /* past the end of the range */
        if (rec.flags & SHMBUS_JOURNAL_GAP) {
            rp_gap(a, c, &rec, stop);
            continue;
        }
        if (!started) {
            started = 1;
            t0 = cli_monotonic_ns();
            ts0 = rec.timestamp_ns;
        } else if (a->speed > 0 && (rc = rp_pace(a, t0, ts0, &rec)) < 0) {
            return rc;
        }
        if (cli_stop)
            break;
        rc = rp_deliver(pub, a, c, &rec);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Replay into @p pub (NULL: --print). @return an exit status. */
static int rp_replay(const struct rp_args *a, shmbus_pub *pub)
{
    struct rp_count c = {0};
    shmbus_journal_reader *r;
    uint64_t stop;
    int rc = rp_open(a, &r, &stop), out;

    if (rc != 0)
        return rc; /* reported */
    rc = rp_loop(r, pub, a, &c, stop);
    shmbus_journal_reader_close(r);
    out = a->print && rc >= 0 ? cli_flush() : 0;
    /* Nobody reads the printout any more (| head): a quiet end. */
    if (out == -EPIPE || rc == -EPIPE)
        out = rc = 0;
    fprintf(stderr,
            "shmbus replay: %s: %llu messages %s, %llu not published, %llu gaps (%llu messages "
            "missing), %llu damaged records skipped%s\n",
            a->topic, (unsigned long long)c.published, a->print ? "printed" : "published",
            (unsigned long long)c.failed, (unsigned long long)c.gaps,
            (unsigned long long)c.gap_messages, (unsigned long long)c.damaged,
            cli_stop ? " (stopped)" : "");
    return rc < 0 || out < 0 || c.damaged > 0 || c.failed > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int rp_on_topic(shmbus_topic *t, const void *arg)
{
    const struct rp_args *a = arg;
    shmbus_pub *pub;
    int rc = shmbus_pub_create(t, &pub);

    if (rc < 0) {
        cli_err("cannot create a publisher on '%s': %s%s", a->to, shmbus_strerror(rc),
                rc == -EBUSY ? " (the topic is exclusive and another publisher holds it)" : "");
        return CLI_EXIT_FAIL;
    }
    rc = rp_replay(a, pub);
    shmbus_pub_destroy(pub);
    return rc;
}

int cli_replay_main(const char *bus, int argc, char **argv)
{
    struct rp_args a = {.bus = bus, .speed = 1.0};
    shmbus_journal_reader *r = NULL;
    uint64_t stop;
    int rc = rp_parse(argc, argv, &a);

    /* --help, or a usage error already reported. */
    if (rc == CLI_HELP)
        cli_replay_usage(stdout);
    if (rc != 0)
        return rc == CLI_HELP ? CLI_EXIT_OK : rc;
    cli_signals_catch();
    if (a.print)
        return rp_replay(&a, NULL);
    /* A journal that cannot be read, or a range outside it, creates no topic. */
    rc = rp_open(&a, &r, &stop);
    shmbus_journal_reader_close(r);
    if (rc != 0)
        return rc;
    return cli_on_topic(a.bus, a.to, &a.topic_opts, rp_on_topic, &a);
}
