/*
 * `shmbus sub`: subscribe to a topic (creating it if needed) and print each message's
 * payload, as raw bytes, on a line of its own (optionally after its
 * latency), reporting losses on stderr. It waits in short slices so that
 * SIGINT and SIGTERM end it cleanly: the subscriber, the topic handle and
 * the connection are released, and the daemon frees the slot at once.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/name.h"

/* Longest wait for a message before looking at the stop flag again. */
#define SUB_SLICE_NS (200ll * 1000000ll)

struct sub_args {
    const char *bus;
    const char *topic;
    shmbus_topic_opts topic_opts;
    shmbus_sub_opts opts;
    uint64_t count; /* 0: no limit */
    int latency;
};

void cli_sub_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] sub TOPIC [OPTIONS]\n"
            "Print each message of TOPIC on its own line (the payload's bytes as they\n"
            "are, then a newline). Losses are reported on stderr. Runs until SIGINT or\n"
            "SIGTERM, or until --count messages arrived.\n"
            "\n"
            "  --group G        join consumer group G: each message goes to one member\n"
            "  --from WHERE     'next' (default): messages published from now on;\n"
            "                   'oldest': also those the ring still holds\n"
            "  --count N        exit after N messages\n"
            "  --observe        never hold reliable publishers back: read as a lossy\n"
            "                   subscriber does (losses reported), for monitors and pipes\n"
            "  --latency        start each line with the latency in microseconds\n"
            "                   (now minus publish time, CLOCK_REALTIME) and a tab\n"
            "  --bus NAME       bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help           this text\n"
            "\n",
            SHMBUS_BUS_DEFAULT);
    cli_topic_usage(f);
}

enum { OPT_BUS = 256, OPT_GROUP, OPT_FROM, OPT_COUNT, OPT_LATENCY, OPT_OBSERVE, OPT_HELP };

static const struct option sub_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                         {"group", required_argument, NULL, OPT_GROUP},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"count", required_argument, NULL, OPT_COUNT},
                                         {"latency", no_argument, NULL, OPT_LATENCY},
                                         {"observe", no_argument, NULL, OPT_OBSERVE},
                                         {"help", no_argument, NULL, OPT_HELP},
                                         CLI_TOPIC_OPTIONS,
                                         {NULL, 0, NULL, 0}};

/* One option. @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int sub_option(struct sub_args *a, int opt, const char *cmd)
{
    int rc = cli_topic_option(cmd, opt, optarg, &a->topic_opts);

    /* A topic option, good or bad. */
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
    case OPT_FROM:
        if (strcmp(optarg, "oldest") == 0)
            a->opts.start = SHMBUS_START_OLDEST;
        else if (strcmp(optarg, "next") == 0)
            a->opts.start = SHMBUS_START_NEXT;
        else
            return cli_usage_err(cmd, "--from wants 'next' or 'oldest', not '%s'", optarg);
        return 0;
    case OPT_COUNT:
        if (cli_parse_u64(optarg, 1, UINT64_MAX, &a->count) < 0)
            return cli_usage_err(cmd, "--count wants a positive number, not '%s'", optarg);
        return 0;
    case OPT_LATENCY:
        a->latency = 1;
        return 0;
    case OPT_OBSERVE:
        a->opts.flags |= SHMBUS_SUB_OBSERVER;
        return 0;
    case OPT_HELP:
        return CLI_HELP;
    default:
        /* getopt printed what was wrong. */
        return cli_usage_hint(cmd);
    }
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
    if (optind >= argc)
        return cli_usage_err(argv[0], "no topic given");
    if (argc - optind > 1)
        return cli_usage_err(argv[0], "unexpected argument '%s'", argv[optind + 1]);
    a->topic = argv[optind];
    if ((a->opts.flags & SHMBUS_SUB_OBSERVER) && a->opts.group_name != NULL)
        return cli_usage_err(argv[0], "--observe and --group do not go together");
    return 0;
}

/* The exit status after cli_flush() failed with @p rc. */
static int sub_out_status(int rc)
{
    return rc == -EPIPE ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* Print one message. @return 0, or cli_flush()'s error when stdout broke. */
static int sub_print(const struct sub_args *a, const void *buf, const shmbus_msg *m)
{
    if (m->lost > 0)
        cli_err("%s: lost %llu message%s before seq %llu", a->topic, (unsigned long long)m->lost,
                m->lost == 1 ? "" : "s", (unsigned long long)m->seq);
    if (a->latency) {
        int64_t ns = (int64_t)(cli_realtime_ns() - m->timestamp_ns);

        printf("%.3f\t", (double)ns / 1e3);
    }
    fwrite(buf, 1, m->len, stdout);
    putchar('\n');
    return ferror(stdout) ? cli_flush() : 0;
}

/*
 * Receive until the count, a signal or an error. Output is flushed only
 * when nothing is ready: a burst costs one write, an idle feed shows at once.
 * @return an exit status.
 */
static int sub_loop(shmbus_sub *s, const struct sub_args *a, void *buf, size_t cap)
{
    uint64_t got = 0;
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
        /* stdout is gone: nobody to print for. */
        if ((rc = sub_print(a, buf, &m)) < 0)
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
    /* No slot or group left, or the daemon went away. */
    if (rc < 0) {
        cli_err("cannot subscribe to '%s': %s", a->topic, shmbus_strerror(rc));
        free(buf);
        return CLI_EXIT_FAIL;
    }
    rc = sub_loop(s, a, buf, info.max_msg_size);
    shmbus_sub_destroy(s);
    free(buf);
    return rc;
}

int cli_sub_main(const char *bus, int argc, char **argv)
{
    struct sub_args a = {.bus = bus};
    int rc = sub_parse(argc, argv, &a);

    /* --help, or a usage error already reported. */
    if (rc == CLI_HELP)
        cli_sub_usage(stdout);
    if (rc != 0)
        return rc == CLI_HELP ? CLI_EXIT_OK : rc;
    cli_signals_catch();
    return cli_on_topic(a.bus, a.topic, &a.topic_opts, sub_run, &a);
}
