/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus sub`: subscribe to a topic (creating it if needed) and print each
 * message in the format asked for (msgout.h: by default the payload's raw
 * bytes on a line of its own), reporting losses on stderr; with --latency,
 * a percentile summary of the latencies on stderr at the end. Several
 * topics and a pattern are read through a wait set (submulti.c). It waits
 * in short slices so that SIGINT and SIGTERM end it cleanly: the
 * subscriber, the topic handle and the connection are released, and the
 * daemon frees the slot at once.
 * With --ack it is an acknowledging group member: it acknowledges each
 * message once printed, or hands it to the worker pool of --exec
 * (cmd_exec.c), which acknowledges it when its command succeeds.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "exec.h"
#include "latency.h"
#include "msgout.h"
#include "submulti.h"
#include "util/name.h"
#include "util/timefmt.h"

/* Longest wait for a message before looking at the stop flag again. */
#define SUB_SLICE_NS (200ll * 1000000ll)

struct sub_args {
    const char *bus;
    const char *topic;
    char **topics; /* every topic named, borrowed from argv */
    int n_topics;
    const char *pattern; /* --pattern, or NULL */
    shmbus_topic_opts topic_opts;
    shmbus_sub_opts opts;
    uint64_t count; /* 0: no limit */
    int starts;     /* --from, --from-seq and --from-time given */
    struct cli_msgout out;
    struct cli_latency *lat; /* --latency: the summary's samples, or NULL */
    int ack;
    struct cli_exec_conf exec; /* exec.cmd NULL: print */
};

/* The work queue options, in cli_sub_usage(). */
static void sub_ack_usage(FILE *f)
{
    fprintf(f,
            "Work queues (acknowledging group members; --ack creates the topic reliable):\n"
            "  --ack            acknowledge each message (with --group): it stays pending,\n"
            "                   holding publishers back, until acknowledged; if this\n"
            "                   worker dies or is evicted first, the group delivers it\n"
            "                   again. Without --exec: print it, and acknowledge it once\n"
            "                   written to standard output\n"
            "  --exec CMD       run `sh -c CMD` for each message, with the payload on its\n"
            "                   standard input (a file in memory: any size, seekable) and\n"
            "                   SHMBUS_TOPIC, SHMBUS_SEQ and SHMBUS_DELIVERY (1 the first\n"
            "                   time) in its environment; its output is this worker's.\n"
            "                   Exit status 0 acknowledges; anything else, a signal too,\n"
            "                   nacks: the group delivers it again\n"
            "  --inflight N     run up to N commands at once, 1..%d (default 1)\n"
            "  --retry-delay SECONDS\n"
            "                   deliver a failed command's message again no sooner than\n"
            "                   this (default: at once; at most 3600; decimals allowed)\n"
            "  --max-deliveries N\n"
            "                   the group's deliveries of a message before it goes to the\n"
            "                   dead-letter topic, 1..%d (default %d)\n"
            "  --dead-letter TOPIC\n"
            "                   the group's dead-letter topic (default: TOPIC.dlq)\n"
            "The group's first member sets --max-deliveries and --dead-letter; later\n"
            "members must give the same or none. Commands run in a process group of\n"
            "their own, so a Ctrl-C at the terminal reaches the worker only. SIGINT or\n"
            "SIGTERM: take no more messages, let the running commands finish, acknowledge\n"
            "or nack each, exit 0. A second signal: exit at once, leaving the commands\n"
            "running; their messages go back to the group (another worker may run them\n"
            "again) and the exit status is 1. It is 1 too when the worker was evicted\n"
            "(stall timeout), the topic removed, or a command could not be started.\n"
            "Nothing bounds a command's run: one that never exits holds its message,\n"
            "and the topic's publishers once its ring is full, until --stall-timeout\n"
            "(default: never) evicts the worker. Bound it in CMD: 'timeout 60 ./job'.\n"
            "\n",
            SHMBUS_INFLIGHT_MAX, SHMBUS_MAX_DELIVERIES_MAX, SHMBUS_MAX_DELIVERIES_DEFAULT);
}

void cli_sub_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] sub TOPIC... [OPTIONS]\n"
            "       shmbus [--bus NAME] sub --pattern GLOB [TOPIC...] [OPTIONS]\n"
            "Print each message of each TOPIC (created if absent) as --format says: by\n"
            "default on its own line, the payload's bytes as they are, then a newline.\n"
            "With several topics or a pattern, each message says its topic (text: the\n"
            "topic and a tab before it). Losses are reported on stderr. Runs until\n"
            "SIGINT or SIGTERM, or until --count messages arrived.\n"
            "\n"
            "  --pattern GLOB   also read every existing topic whose name matches GLOB\n"
            "                   (a Redis glob: * ? [abc] [^a-z], \\ escapes; quote it\n"
            "                   from the shell), and those created later: the topics\n"
            "                   are listed again every second, and one that first\n"
            "                   shows then is read from its oldest message. At most\n"
            "                   %d topics in all (the others are reported once, not\n"
            "                   read); a removed one is read again once created anew,\n"
            "                   an evicted one never\n"
            "  --latency        on exit (signal, --count, error), print on stderr\n"
            "                   'latency (us) over N messages: p50=.. p90=.. p99=..\n"
            "                   p99.9=.. max=..': receive time minus publish time, both\n"
            "                   CLOCK_REALTIME (same host); with --format text, also\n"
            "                   start each line with its latency in microseconds and a tab\n"
            "  --group G        join consumer group G: each message goes to one member\n"
            "  --from WHERE     'next' (default): messages published from now on;\n"
            "                   'oldest': also those the ring still holds\n"
            "  --from-seq N     from the message of seq N on: from the ring if it still\n"
            "                   holds it, else from the topic's journal if the daemon\n"
            "                   records it (shmbusd --record), then on into the ring,\n"
            "                   with no gap and no duplicate\n"
            "  --from-time TIME the same from the first message published at or after\n"
            "                   TIME: RFC 3339 (2026-12-07T15:04:05.123Z, or with\n"
            "                   +hh:mm) or integer nanoseconds since the epoch\n"
            "  --count N        exit after N messages\n"
            "  --observe        never hold reliable publishers back: read as a lossy\n"
            "                   subscriber does (losses reported), for monitors and "
            "pipes\n" CLI_MSGOUT_USAGE
            "  --bus NAME       bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help           this text\n"
            "Several topics or a pattern: --ack, --exec, --from-seq, --from-time and\n"
            "--dead-letters read one topic only.\n"
            "\n",
            SHMBUS_WAITSET_MAX, SHMBUS_BUS_DEFAULT);
    sub_ack_usage(f);
    cli_topic_usage(f);
}

enum {
    OPT_BUS = 256,
    OPT_GROUP,
    OPT_FROM,
    OPT_FROM_SEQ,
    OPT_FROM_TIME,
    OPT_COUNT,
    OPT_LATENCY,
    OPT_OBSERVE,
    OPT_HELP,
    OPT_ACK,
    OPT_EXEC,
    OPT_INFLIGHT,
    OPT_MAX_DELIVERIES,
    OPT_DEAD_LETTER,
    OPT_RETRY_DELAY,
    OPT_DEAD_LETTERS,
    OPT_FORMAT,
    OPT_PATTERN
};

static const struct option sub_opts[] = {
    {"bus", required_argument, NULL, OPT_BUS},
    {"group", required_argument, NULL, OPT_GROUP},
    {"from", required_argument, NULL, OPT_FROM},
    {"from-seq", required_argument, NULL, OPT_FROM_SEQ},
    {"from-time", required_argument, NULL, OPT_FROM_TIME},
    {"count", required_argument, NULL, OPT_COUNT},
    {"latency", no_argument, NULL, OPT_LATENCY},
    {"observe", no_argument, NULL, OPT_OBSERVE},
    {"help", no_argument, NULL, OPT_HELP},
    {"ack", no_argument, NULL, OPT_ACK},
    {"exec", required_argument, NULL, OPT_EXEC},
    {"inflight", required_argument, NULL, OPT_INFLIGHT},
    {"max-deliveries", required_argument, NULL, OPT_MAX_DELIVERIES},
    {"dead-letter", required_argument, NULL, OPT_DEAD_LETTER},
    {"retry-delay", required_argument, NULL, OPT_RETRY_DELAY},
    {"dead-letters", no_argument, NULL, OPT_DEAD_LETTERS},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"pattern", required_argument, NULL, OPT_PATTERN},
    CLI_TOPIC_OPTIONS,
    {NULL, 0, NULL, 0}};

/* Longest --retry-delay: shmbus_nack()'s. */
#define SUB_RETRY_DELAY_MAX_NS ((uint64_t)SHMBUS_NACK_DELAY_MAX)

/* A work queue option. @return 0; 1 when @p opt is not one; CLI_EXIT_USAGE. */
static int sub_ack_option(struct sub_args *a, int opt, const char *cmd)
{
    uint64_t ns;

    switch (opt) {
    case OPT_ACK:
        a->ack = 1;
        a->opts.flags |= SHMBUS_SUB_ACK;
        return 0;
    case OPT_EXEC:
        a->exec.cmd = optarg;
        return 0;
    case OPT_INFLIGHT:
        if (cli_parse_u32(optarg, 1, SHMBUS_INFLIGHT_MAX, &a->opts.max_inflight) < 0)
            return cli_usage_err(cmd, "--inflight wants a number from 1 to %d, not '%s'",
                                 SHMBUS_INFLIGHT_MAX, optarg);
        return 0;
    case OPT_MAX_DELIVERIES:
        if (cli_parse_u32(optarg, 1, SHMBUS_MAX_DELIVERIES_MAX, &a->opts.max_deliveries) < 0)
            return cli_usage_err(cmd, "--max-deliveries wants a number from 1 to %d, not '%s'",
                                 SHMBUS_MAX_DELIVERIES_MAX, optarg);
        return 0;
    case OPT_DEAD_LETTER:
        if (!sb_name_valid(optarg, SHMBUS_TOPIC_NAME_MAX))
            return cli_usage_err(cmd, "bad dead-letter topic '%s': " SB_NAME_TOPIC_RULE, optarg);
        a->opts.dead_letter = optarg;
        return 0;
    case OPT_RETRY_DELAY:
        if (cli_parse_seconds(optarg, &ns) < 0 || ns > SUB_RETRY_DELAY_MAX_NS)
            return cli_usage_err(cmd, "--retry-delay wants seconds from 0 to 3600, not '%s'",
                                 optarg);
        a->exec.retry_delay_ns = (int64_t)ns;
        return 0;
    default:
        return 1; /* not a work queue option */
    }
}

/* One option. @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int sub_option(struct sub_args *a, int opt, const char *cmd)
{
    int rc = cli_topic_option(cmd, opt, optarg, &a->topic_opts);

    /* A topic option, good or bad. */
    if (rc != 1)
        return rc;
    rc = sub_ack_option(a, opt, cmd);
    /* A work queue option, good or bad. */
    if (rc != 1)
        return rc;
    switch (opt) {
    case OPT_BUS:
        a->bus = optarg;
        return 0;
    case OPT_GROUP:
        /* Checked before connecting: the topic would otherwise be created first. */
        if (!sb_name_valid(optarg, SHMBUS_GROUP_NAME_MAX))
            return cli_usage_err(cmd, "bad group name '%s': " SB_NAME_GROUP_RULE, optarg);
        a->opts.group_name = optarg;
        return 0;
    case OPT_FROM_SEQ:
        a->starts++;
        a->opts.start = SHMBUS_START_SEQ;
        if (sb_units_u64(optarg, 0, UINT64_MAX, &a->opts.start_seq) < 0)
            return cli_usage_err(cmd, "--from-seq wants a sequence number, not '%s'", optarg);
        return 0;
    case OPT_FROM_TIME:
        a->starts++;
        a->opts.start = SHMBUS_START_TIME;
        if (sb_time_parse(optarg, &a->opts.start_time_ns) < 0)
            return cli_usage_err(cmd,
                                 "--from-time wants an RFC 3339 time "
                                 "(2026-12-07T15:04:05.123Z) or nanoseconds, not '%s'",
                                 optarg);
        return 0;
    case OPT_FROM:
        a->starts++;
        if (strcmp(optarg, "oldest") == 0)
            a->opts.start = SHMBUS_START_OLDEST;
        else if (strcmp(optarg, "next") == 0)
            a->opts.start = SHMBUS_START_NEXT;
        else
            return cli_usage_err(cmd, "--from wants 'next' or 'oldest', not '%s'", optarg);
        return 0;
    case OPT_COUNT:
        if (sb_units_u64(optarg, 1, UINT64_MAX, &a->count) < 0)
            return cli_usage_err(cmd, "--count wants a positive number, not '%s'", optarg);
        return 0;
    case OPT_LATENCY:
        a->out.latency = 1;
        return 0;
    case OPT_FORMAT:
        if (cli_msgout_format(optarg, &a->out.format) < 0)
            return cli_usage_err(cmd, "--format wants text, json, raw or hex, not '%s'", optarg);
        return 0;
    case OPT_PATTERN:
        if (optarg[0] == '\0' || strlen(optarg) > SHMBUS_TOPIC_NAME_MAX)
            return cli_usage_err(cmd, "--pattern wants 1 to %d characters", SHMBUS_TOPIC_NAME_MAX);
        a->pattern = optarg;
        return 0;
    case OPT_OBSERVE:
        a->opts.flags |= SHMBUS_SUB_OBSERVER;
        return 0;
    case OPT_DEAD_LETTERS:
        a->out.dead_letters = 1;
        return 0;
    case OPT_HELP:
        return CLI_HELP;
    default:
        /* getopt printed what was wrong. */
        return cli_usage_hint(cmd);
    }
}

/* The work queue options go together as they must. @return 0; CLI_EXIT_USAGE. */
static int sub_ack_check(struct sub_args *a, const char *cmd)
{
    int need_ack = a->exec.cmd != NULL || a->opts.max_deliveries != 0 ||
                   a->opts.dead_letter != NULL || a->opts.max_inflight != 0 ||
                   a->exec.retry_delay_ns != 0;

    if (!a->ack) {
        return need_ack ? cli_usage_err(cmd, "--exec, --inflight, --retry-delay, "
                                             "--max-deliveries and --dead-letter need --ack")
                        : 0;
    }
    if (a->opts.group_name == NULL)
        return cli_usage_err(cmd, "--ack needs --group: acknowledging members share a group");
    if (a->exec.cmd == NULL && (a->opts.max_inflight != 0 || a->exec.retry_delay_ns != 0))
        return cli_usage_err(cmd, "--inflight and --retry-delay need --exec");
    if (a->exec.cmd != NULL && (a->out.latency || a->out.dead_letters))
        return cli_usage_err(cmd, "--latency and --dead-letters do not go with --exec");
    if (a->opts.dead_letter != NULL && strcmp(a->opts.dead_letter, a->topic) == 0)
        return cli_usage_err(cmd, "--dead-letter cannot be the topic itself");
    /* Only reliable topics keep a message until it is acknowledged. */
    if (a->topic_opts.mode == 0)
        a->topic_opts.mode = SHMBUS_RELIABLE;
    a->exec.topic = a->topic;
    a->exec.count = a->count;
    a->exec.inflight = a->opts.max_inflight != 0 ? a->opts.max_inflight : 1;
    /* The pool sleeps at once: its wake-ups are signals (cmd_exec.c). */
    if (a->exec.cmd != NULL)
        a->opts.spin_ns = -1;
    return 0;
}

/* Several topics or a pattern: what goes with them. @return 0; CLI_EXIT_USAGE. */
static int sub_multi_check(struct sub_args *a, const char *cmd)
{
    if (a->ack || a->exec.cmd != NULL || a->out.dead_letters || a->opts.start == SHMBUS_START_SEQ ||
        a->opts.start == SHMBUS_START_TIME)
        return cli_usage_err(cmd, "--ack, --exec, --from-seq, --from-time and --dead-letters "
                                  "read one topic only");
    /* Text says which topic each line came from. */
    a->out.topic_prefix = 1;
    return 0;
}

/* @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int sub_parse(int argc, char **argv, struct sub_args *a)
{
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", sub_opts, NULL)) != -1) {
        rc = sub_option(a, opt, argv[0]);
        if (rc != 0)
            return rc;
    }
    if (optind >= argc && a->pattern == NULL)
        return cli_usage_err(argv[0], "no topic given");
    if (argc - optind > SHMBUS_WAITSET_MAX)
        return cli_usage_err(argv[0], "at most %d topics", SHMBUS_WAITSET_MAX);
    a->topics = argv + optind;
    a->n_topics = argc - optind;
    a->topic = a->n_topics > 0 ? a->topics[0] : a->pattern;
    a->out.topic = a->topic;
    if (a->out.dead_letters && a->out.format != CLI_FMT_TEXT)
        return cli_usage_err(argv[0], "--dead-letters needs --format text");
    if ((a->opts.flags & SHMBUS_SUB_OBSERVER) && a->opts.group_name != NULL)
        return cli_usage_err(argv[0], "--observe and --group do not go together");
    if (a->starts > 1)
        return cli_usage_err(argv[0], "give one of --from, --from-seq and --from-time");
    if ((a->opts.start == SHMBUS_START_SEQ || a->opts.start == SHMBUS_START_TIME) &&
        a->opts.group_name != NULL)
        return cli_usage_err(argv[0], "--from-seq and --from-time do not go with --group");
    if (a->n_topics > 1 || a->pattern != NULL)
        return sub_multi_check(a, argv[0]);
    return sub_ack_check(a, argv[0]);
}

/* The exit status after cli_flush() failed with @p rc. */
static int sub_out_status(int rc)
{
    return rc == -EPIPE ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/*
 * --ack: acknowledge message @p seq once printed and written out
 * (@p rc: cli_msgout_print()'s result); nack it when standard output broke, so
 * that another member gets it.
 * @return 0; cli_flush()'s error; a shmbus error (reported).
 */
static int sub_settle(shmbus_sub *s, const struct sub_args *a, uint64_t seq, int rc)
{
    if (rc == 0)
        rc = cli_flush();
    if (rc < 0) {
        int nrc = shmbus_nack(s, seq, 0);

        if (nrc < 0)
            cli_err("%s: cannot nack seq %llu: %s", a->topic, (unsigned long long)seq,
                    shmbus_strerror(nrc));
        return rc;
    }
    rc = shmbus_ack(s, seq);
    /* Evicted, or the topic removed: what was printed goes to the group again. */
    if (rc < 0)
        cli_err("%s: cannot acknowledge seq %llu: %s", a->topic, (unsigned long long)seq,
                shmbus_strerror(rc));
    return rc;
}

/*
 * Receive until the count, a signal or an error. Output is flushed only
 * when nothing is ready: a burst costs one write, an idle feed shows at once.
 * @return an exit status.
 */
static int sub_loop(shmbus_sub *s, const struct sub_args *a, void *buf, size_t cap)
{
    uint64_t got = 0, now;
    shmbus_msg m;
    int rc;

    while (!cli_stop && (a->count == 0 || got < a->count)) {
        rc = shmbus_recv(s, buf, cap, &m, 0);
        if (rc == -EAGAIN) {
            /* Nothing ready, and stdout is gone: nobody to print for. */
            if ((rc = cli_flush()) < 0)
                return sub_out_status(rc);
            rc = shmbus_recv(s, buf, cap, &m, SUB_SLICE_NS);
        }
        /* Nothing yet, or a signal: look at the stop flag again. */
        if (rc == SHMBUS_ERR_TIMEOUT || rc == -EINTR)
            continue;
        /* A corrupt ring, an eviction (stall timeout) or a removed topic:
         * nothing more can be read. */
        if (rc < 0) {
            cli_err("cannot receive from '%s': %s", a->topic, shmbus_strerror(rc));
            return CLI_EXIT_FAIL;
        }
        /* One clock read for the summary and the line's column alike. */
        now = a->lat != NULL ? cli_realtime_ns() : 0;
        if (a->lat != NULL)
            cli_latency_add(a->lat, now, m.timestamp_ns);
        rc = cli_msgout_print(&a->out, buf, &m, now);
        if (a->ack)
            rc = sub_settle(s, a, m.seq, rc);
        /* stdout is gone (nobody to print for), or an acknowledgement failed. */
        if (rc < 0)
            return sub_out_status(rc);
        got++;
    }
    rc = cli_flush();
    return rc < 0 ? sub_out_status(rc) : CLI_EXIT_OK;
}

static int sub_run(shmbus_topic *t, const void *arg)
{
    const struct sub_args *a = arg;
    shmbus_topic_info info;
    shmbus_sub *s;
    void *buf;
    int rc;

    shmbus_topic_info_get(t, &info);
    buf = malloc(info.max_msg_size);
    /* Up to 16 MiB: the one allocation that can fail. */
    if (buf == NULL) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    rc = shmbus_sub_create(t, &a->opts, &s);
    /* No slot or group left, the daemon went away, or a group of the
     * other kind. */
    if (rc < 0) {
        cli_err("cannot subscribe to '%s': %s%s", a->topic, shmbus_strerror(rc),
                !a->ack                     ? ""
                : rc == SHMBUS_ERR_INVALID  ? " (--ack needs a reliable topic)"
                : rc == SHMBUS_ERR_MISMATCH ? " (the group's first member set it up otherwise: "
                                              "see `shmbus stat`)"
                                            : "");
        free(buf);
        return CLI_EXIT_FAIL;
    }
    if (a->exec.cmd != NULL)
        rc = cli_exec_run(s, &a->exec, buf, info.max_msg_size);
    else
        rc = sub_loop(s, a, buf, info.max_msg_size);
    shmbus_sub_destroy(s);
    free(buf);
    return rc;
}

/* Several topics or a pattern, through a wait set. */
static int sub_multi(const struct sub_args *a)
{
    struct cli_sub_multi m = {.bus = a->bus,
                              .topics = a->topics,
                              .n_topics = a->n_topics,
                              .pattern = a->pattern,
                              .topic_opts = &a->topic_opts,
                              .opts = &a->opts,
                              .count = a->count,
                              .out = a->out,
                              .lat = a->lat};

    return cli_sub_multi_run(&m);
}

int cli_sub_main(const char *bus, int argc, char **argv)
{
    static struct cli_latency lat; /* 30 KiB: not on the stack */
    struct sub_args a = {.bus = bus};
    int rc = sub_parse(argc, argv, &a);

    /* --help, or a usage error already reported. */
    if (rc == CLI_HELP)
        cli_sub_usage(stdout);
    if (rc != 0)
        return rc == CLI_HELP ? CLI_EXIT_OK : rc;
    if (a.out.latency)
        a.lat = &lat;
    /* The per-line latency is text's; the others keep their framing. */
    if (a.out.format != CLI_FMT_TEXT)
        a.out.latency = 0;
    cli_signals_catch();
    if (a.n_topics > 1 || a.pattern != NULL)
        rc = sub_multi(&a);
    else
        rc = cli_on_topic(a.bus, a.topic, &a.topic_opts, sub_run, &a);
    if (a.lat != NULL)
        cli_latency_print(a.lat, stderr);
    return rc;
}
