/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus pub`: publish messages on a topic, creating it if needed. The
 * messages are the arguments after the topic, or else the lines of
 * standard input (one message each, without its newline). A message that
 * fails is reported and the next one is tried, unless the failure means no
 * later message can succeed either; the exit status then says so.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli.h"

/* How long a reliable publish waits for space before giving up. */
#define PUB_TIMEOUT_NS (10ll * 1000000000ll)

struct pub_args {
    const char *bus;
    const char *topic;
    shmbus_topic_opts opts;
    char **msgs; /* borrowed from argv */
    int n_msgs;
};

struct pub_state {
    shmbus_pub *pub;
    uint64_t tried;
    uint64_t failed;
    int gave_up; /* an error made further messages pointless */
};

void cli_pub_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] pub [OPTIONS] TOPIC [MESSAGE...]\n"
            "Publish each MESSAGE on TOPIC or, when none is given, each line of standard\n"
            "input (without its newline). Put `--` before messages that start with '-'.\n"
            "A reliable topic waits up to %lld s for space, then the message fails.\n"
            "Failures are reported on stderr and make the exit status 1.\n"
            "\n",
            PUB_TIMEOUT_NS / 1000000000ll);
    cli_topic_usage(f);
    fprintf(f,
            "Other options:\n"
            "  --bus NAME       bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help           this text\n",
            SHMBUS_BUS_DEFAULT);
}

enum { OPT_BUS = 256, OPT_HELP };

static const struct option pub_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                         {"help", no_argument, NULL, OPT_HELP},
                                         CLI_TOPIC_OPTIONS,
                                         {NULL, 0, NULL, 0}};

/* One option. @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int pub_option(struct pub_args *a, int opt, const char *cmd)
{
    int rc = cli_topic_option(cmd, opt, optarg, &a->opts);

    /* A topic option, good or bad. */
    if (rc != 1)
        return rc;
    if (opt == OPT_BUS) {
        a->bus = optarg;
        return 0;
    }
    if (opt == OPT_HELP)
        return CLI_HELP;
    return cli_usage_hint(cmd); /* getopt printed what was wrong */
}

/* @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int pub_parse(int argc, char **argv, struct pub_args *a)
{
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", pub_opts, NULL)) != -1) {
        rc = pub_option(a, opt, argv[0]);
        if (rc != 0)
            return rc;
    }
    if (optind >= argc)
        return cli_usage_err(argv[0], "no topic given");
    a->topic = argv[optind];
    a->msgs = argv + optind + 1;
    a->n_msgs = argc - optind - 1;
    return 0;
}

/* Whether a failed publish leaves hope for the next message. */
static int pub_err_is_per_message(int rc)
{
    return rc == SHMBUS_ERR_TOO_BIG || rc == SHMBUS_ERR_OVERRUN;
}

/* Publish one message. @return 0, or -1 when publishing should stop. */
static int pub_one(struct pub_state *ps, const void *data, size_t len)
{
    int rc = shmbus_publish(ps->pub, data, len, PUB_TIMEOUT_NS);

    ps->tried++;
    /* Published: nothing to report. */
    if (rc >= 0)
        return 0;
    ps->failed++;
    cli_err("message %llu (%zu byte%s) not published: %s", (unsigned long long)ps->tried, len,
            len == 1 ? "" : "s", rc == -EINTR && cli_stop ? "interrupted" : shmbus_strerror(rc));
    /* Too big or overtaken: the next message may well succeed. */
    if (pub_err_is_per_message(rc))
        return 0;
    ps->gave_up = !cli_stop;
    return -1;
}

static void pub_args_loop(struct pub_state *ps, char **msgs, int n)
{
    for (int i = 0; i < n && !cli_stop; i++) {
        if (pub_one(ps, msgs[i], strlen(msgs[i])) < 0)
            break;
    }
}

/* One message per line of stdin; stops at EOF, on a signal or a fatal error. */
static void pub_stdin_loop(struct pub_state *ps)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    while (!cli_stop && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (pub_one(ps, line, (size_t)len) < 0)
            break;
    }
    /* A signal interrupts the read (EINTR); anything else is worth telling. */
    if (ferror(stdin) && !cli_stop) {
        cli_err("cannot read standard input: %s", strerror(errno));
        ps->failed++;
    }
    free(line);
}

static int pub_run(shmbus_topic *t, const void *arg)
{
    const struct pub_args *a = arg;
    struct pub_state ps = {0};
    int rc = shmbus_pub_create(t, &ps.pub);

    /* Exclusive topic, token taken: say so in the user's words. */
    if (rc == -EBUSY) {
        cli_err("topic '%s' is exclusive and another publisher holds it", a->topic);
        return CLI_EXIT_FAIL;
    }
    /* Out of memory, or the daemon refused or went away. */
    if (rc < 0) {
        cli_err("cannot create a publisher on '%s': %s", a->topic, shmbus_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    if (a->n_msgs > 0)
        pub_args_loop(&ps, a->msgs, a->n_msgs);
    else
        pub_stdin_loop(&ps);
    shmbus_pub_destroy(ps.pub);
    if (ps.gave_up)
        cli_err("gave up at message %llu", (unsigned long long)ps.tried);
    else if (ps.failed > 0 && ps.tried > 1)
        cli_err("%llu of %llu messages not published", (unsigned long long)ps.failed,
                (unsigned long long)ps.tried);
    return ps.failed > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_pub_main(const char *bus, int argc, char **argv)
{
    struct pub_args a = {.bus = bus};
    int rc = pub_parse(argc, argv, &a);

    /* --help, or a usage error already reported. */
    if (rc == CLI_HELP)
        cli_pub_usage(stdout);
    if (rc != 0)
        return rc == CLI_HELP ? CLI_EXIT_OK : rc;
    cli_signals_catch();
    return cli_on_topic(a.bus, a.topic, &a.opts, pub_run, &a);
}
