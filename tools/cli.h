/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - what the subcommands of the `shmbus` tool share: exit codes,
 * messages, strict number parsing, the stop flag set by SIGINT/SIGTERM,
 * clocks, JSON strings and connecting to the bus. Each subcommand lives in
 * cmd_NAME.c and exports cli_NAME_main() and cli_NAME_usage().
 */
#ifndef SHMBUS_TOOLS_CLI_H
#define SHMBUS_TOOLS_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "shmbus/shmbus.h"
#include "util/units.h"

/* Exit statuses of the tool. */
#define CLI_EXIT_OK    0 /* done (also: stopped by SIGINT, SIGTERM or SIGHUP) */
#define CLI_EXIT_FAIL  1 /* an operation failed */
#define CLI_EXIT_USAGE 2 /* the command line was wrong */
/* What option parsers return when --help was asked for. */
#define CLI_HELP (-1)

/* Set by SIGINT, SIGTERM and SIGHUP once cli_signals_catch() ran. */
extern volatile sig_atomic_t cli_stop;

/*
 * Make SIGINT, SIGTERM and SIGHUP set cli_stop instead of killing the
 * process: a closed terminal or a hung-up session ends a command as
 * Ctrl-C does, so that what it must undo (bench's scratch topic, top's
 * terminal, record's journals) is undone.
 * No SA_RESTART: a blocking read or wait returns EINTR so loops see the flag.
 */
void cli_signals_catch(void);

/* Print "shmbus: " and the formatted message, and a newline, on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print a usage error and the hint to see `shmbus CMD --help`.
 * @return CLI_EXIT_USAGE. */
int cli_usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print the hint to see `CMD --help` after getopt reported a bad option.
 * @return CLI_EXIT_USAGE. */
int cli_usage_hint(const char *cmd);

/* Numbers and sizes are parsed by util/units.h, as shmbusd parses them:
 * sb_units_u64() (digits only, within [min, max]) and sb_units_size()
 * (digits and an optional K, M or G in either case, above 0). */

/* As sb_units_u64(), into a uint32_t; @p max must fit in 32 bits. */
int cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

/*
 * Parse a duration in seconds: digits with an optional fraction ("2",
 * "0.25"), greater than 0 and at most one day.
 * @return 0 with *out_ns set; -1 otherwise.
 */
int cli_parse_seconds(const char *s, uint64_t *out_ns);

/* CLOCK_REALTIME (the clock of shmbus_msg.timestamp_ns) in nanoseconds. */
uint64_t cli_realtime_ns(void);

/* CLOCK_MONOTONIC in nanoseconds, for intervals. */
uint64_t cli_monotonic_ns(void);

/*
 * Sleep @p ns nanoseconds, or less if cli_stop gets set.
 * @return 0 after the full time; -1 when stopped.
 */
int cli_sleep(uint64_t ns);

/*
 * Flush stdout. @return 0; -EPIPE when the reader went away (nothing is
 * reported: the tool ends quietly); another -errno, reported on stderr.
 */
int cli_flush(void);

/* Print @p str on stdout as a JSON string. Any bytes may come (a bridge
 * client's name, a path): bytes that are not UTF-8 become U+FFFD, so the
 * document stays valid. */
void cli_json_str(const char *str);

/* As cli_json_str(), for @p len bytes that may hold NULs (written \u0000). */
void cli_json_strn(const void *str, size_t len);

/* Options that create a topic, shared by pub and sub (getopt_long values). */
enum {
    CLI_OPT_RELIABLE = 512,
    CLI_OPT_CAPACITY,
    CLI_OPT_MAX_MSG,
    CLI_OPT_EXCLUSIVE,
    CLI_OPT_STALL_TIMEOUT
};

/* Their struct option entries, to put in a getopt_long table. */
#define CLI_TOPIC_OPTIONS                                                                          \
    {"reliable", no_argument, NULL, CLI_OPT_RELIABLE},                                             \
        {"capacity", required_argument, NULL, CLI_OPT_CAPACITY},                                   \
        {"max-msg", required_argument, NULL, CLI_OPT_MAX_MSG},                                     \
        {"exclusive", no_argument, NULL, CLI_OPT_EXCLUSIVE},                                       \
    {                                                                                              \
        "stall-timeout", required_argument, NULL, CLI_OPT_STALL_TIMEOUT                            \
    }

/*
 * Apply one of the CLI_OPT_* options to @p o.
 * @return 0; 1 when @p opt is not one of them; CLI_EXIT_USAGE (reported).
 */
int cli_topic_option(const char *cmd, int opt, const char *arg, shmbus_topic_opts *o);

/* Describe the CLI_OPT_* options in a --help text. */
void cli_topic_usage(FILE *f);

/*
 * Connect to a bus, reporting any failure.
 * @param bus       --bus argument, or NULL for $SHMBUS_BUS or the default.
 * @param name_out  receives the resolved name (SHMBUS_BUS_NAME_MAX + 1 bytes).
 * @param out       receives the connection (the caller closes it).
 * @return 0; CLI_EXIT_USAGE for a bad bus name; CLI_EXIT_FAIL otherwise.
 */
int cli_connect(const char *bus, char *name_out, shmbus_bus **out);

/*
 * The start of a command on a bus, after its parse returned @p parse_rc:
 * --help (CLI_HELP) prints @p usage; a usage error (reported) ends it;
 * else SIGINT, SIGTERM and SIGHUP are caught (cli_signals_catch()) and
 * the bus connected (cli_connect()).
 * @return 0 with *out connected (the caller closes it); otherwise, *out
 * NULL, the exit status to return (CLI_EXIT_OK after --help).
 */
int cli_bus_start(int parse_rc, void (*usage)(FILE *f), const char *bus, char *name_out,
                  shmbus_bus **out);

/*
 * Parse argv with getopt_long(3) and @p opts: each option goes to
 * @p option (@p args, the option, argv[0]), whose non-zero return ends
 * the parse; then at most one operand, into *operand (left as it is when
 * there is none).
 * @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported).
 */
int cli_parse_one_operand(int argc, char **argv, const struct option *opts,
                          int (*option)(void *args, int opt, const char *cmd), void *args,
                          const char **operand);

/* Open @p topic on @p bus, creating it with @p opts if it does not exist;
 * reports any failure. @return 0; CLI_EXIT_USAGE for a bad topic name;
 * CLI_EXIT_FAIL. */
int cli_open(shmbus_bus *bus, const char *topic, const shmbus_topic_opts *opts, shmbus_topic **out);

/* Connect to @p bus, open @p topic (creating it with @p opts), run
 * @p fn(topic, arg), then destroy the topic and close the connection.
 * @return fn's exit status, or that of a reported connect/open failure. */
int cli_on_topic(const char *bus, const char *topic, const shmbus_topic_opts *opts,
                 int (*fn)(shmbus_topic *t, const void *arg), const void *arg);

/* Subcommands: argv[0] is the command's name ("shmbus pub"); @p bus the
 * global --bus or NULL. @return an exit status. */
int cli_pub_main(const char *bus, int argc, char **argv);
int cli_sub_main(const char *bus, int argc, char **argv);
int cli_stat_main(const char *bus, int argc, char **argv);
int cli_record_main(const char *bus, int argc, char **argv);
int cli_journal_main(const char *bus, int argc, char **argv);
int cli_replay_main(const char *bus, int argc, char **argv);
int cli_doctor_main(const char *bus, int argc, char **argv);
int cli_rm_main(const char *bus, int argc, char **argv);
int cli_top_main(const char *bus, int argc, char **argv);
int cli_bench_main(const char *bus, int argc, char **argv);

/* Their --help texts. */
void cli_pub_usage(FILE *f);
void cli_sub_usage(FILE *f);
void cli_stat_usage(FILE *f);
void cli_record_usage(FILE *f);
void cli_journal_usage(FILE *f);
void cli_replay_usage(FILE *f);
void cli_doctor_usage(FILE *f);
void cli_rm_usage(FILE *f);
void cli_top_usage(FILE *f);
void cli_bench_usage(FILE *f);

#endif /* SHMBUS_TOOLS_CLI_H */
