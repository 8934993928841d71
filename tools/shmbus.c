/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbus: the command-line tool of a shmbus bus. It reads the global
 * options (--bus), then hands the rest of the command line to one
 * subcommand: pub (publish messages), sub (print messages), stat (list
 * topics, subscribers and TCP bridge connections), top (a live view of
 * the topics), rm (remove topics), bench (latency and throughput), record (topics into
 * journal files), journal (list and verify journals), replay (publish a
 * journal again) or doctor (check the machine). Everything goes through
 * the public API and the bus's daemon, shmbusd.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Longest "shmbus CMD" that getopt and messages name a subcommand by. */
#define CMD_NAME_MAX 32

struct command {
    const char *name;
    const char *summary;
    int (*run)(const char *bus, int argc, char **argv);
    void (*usage)(FILE *f);
};

static const struct command commands[] = {
    {"pub", "publish messages: arguments, standard input, a file or synthetic load", cli_pub_main,
     cli_pub_usage},
    {"sub", "print the messages of topics or a pattern: text, json, raw or hex", cli_sub_main,
     cli_sub_usage},
    {"stat", "list topics, subscribers, lag, losses, rates and bridge connections", cli_stat_main,
     cli_stat_usage},
    {"top", "a live view of the topics, sorted by rate or lag", cli_top_main, cli_top_usage},
    {"record", "record topics into journal files", cli_record_main, cli_record_usage},
    {"journal", "list and verify the journals of a directory", cli_journal_main, cli_journal_usage},
    {"replay", "publish (or print) a recorded journal again, at its pace", cli_replay_main,
     cli_replay_usage},
    {"doctor", "check this machine for what breaks a bus, and say what to change", cli_doctor_main,
     cli_doctor_usage},
    {"bench", "measure latency and throughput on the bus (scratch topics)", cli_bench_main,
     cli_bench_usage},
    {"rm", "remove topics from the bus (--force: even in use)", cli_rm_main, cli_rm_usage},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: shmbus [--bus NAME] COMMAND [ARGS...]\n"
               "Publish, subscribe and monitor a shmbus bus (served by shmbusd).\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "Options:\n"
            "  --bus NAME  bus to use (default: $SHMBUS_BUS, else \"%s\"); may also\n"
            "              follow the command\n"
            "  --help      this text; `shmbus COMMAND --help` or `shmbus help COMMAND`\n"
            "              describe a command\n"
            "  --version   print the versions of shmbus and libshmbus\n"
            "\n"
            "Exit status: 0 done, 1 an operation failed, 2 bad usage.\n",
            SHMBUS_BUS_DEFAULT);
}

static const struct command *command_find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

/* `shmbus help [COMMAND]`. */
static int help(int argc, char **argv)
{
    const struct command *c;

    /* No command named: the tool's own text. */
    if (argc < 2) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    c = command_find(argv[1]);
    if (c == NULL)
        return cli_usage_err("shmbus", "unknown command '%s'", argv[1]);
    c->usage(stdout);
    return CLI_EXIT_OK;
}

enum { OPT_BUS = 256, OPT_HELP, OPT_VERSION };

/* What parse_global() returns for --version (CLI_HELP's kin). */
#define CLI_VERSION (-2)

static const struct option global_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                            {"help", no_argument, NULL, OPT_HELP},
                                            {"version", no_argument, NULL, OPT_VERSION},
                                            {NULL, 0, NULL, 0}};

/* The options before the command. @return 0, CLI_HELP, CLI_VERSION or
 * CLI_EXIT_USAGE. */
static int parse_global(int argc, char **argv, const char **bus)
{
    int opt;

    /* '+': stop at the command, whose options are its own. */
    while ((opt = getopt_long(argc, argv, "+", global_opts, NULL)) != -1) {
        if (opt == OPT_BUS)
            *bus = optarg;
        else if (opt == OPT_HELP)
            return CLI_HELP;
        else if (opt == OPT_VERSION)
            return CLI_VERSION;
        else
            return cli_usage_hint("shmbus"); /* getopt printed what was wrong */
    }
    return 0;
}

int main(int argc, char **argv)
{
    const struct command *c;
    const char *bus = NULL;
    char name[CMD_NAME_MAX];
    int rc;

    argv[0] = "shmbus";
    rc = parse_global(argc, argv, &bus);
    /* --help, or a bad option already reported. */
    if (rc == CLI_HELP)
        usage(stdout);
    /* The version this binary was built with, and the libshmbus it runs with. */
    if (rc == CLI_VERSION)
        printf("shmbus %s (libshmbus %s)\n", SHMBUS_VERSION_STRING, shmbus_version());
    if (rc != 0)
        return rc == CLI_HELP || rc == CLI_VERSION ? CLI_EXIT_OK : rc;
    if (optind >= argc)
        return cli_usage_err("shmbus", "no command given");
    argc -= optind;
    argv += optind;
    if (strcmp(argv[0], "help") == 0)
        return help(argc, argv);
    c = command_find(argv[0]);
    if (c == NULL)
        return cli_usage_err("shmbus", "unknown command '%s'", argv[0]);
    /* The subcommand's getopt starts afresh and names it in its messages. */
    snprintf(name, sizeof(name), "shmbus %s", c->name);
    argv[0] = name;
    optind = 0;
    signal(SIGPIPE, SIG_IGN);
    return c->run(bus, argc, argv);
}
