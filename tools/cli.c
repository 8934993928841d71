/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the subcommands of the shmbus tool: messages, strict
 * parsing of numbers and durations, the signal flag, clocks, JSON strings,
 * and connecting to a bus and opening a topic with errors worded for a user.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/name.h"
#include "util/utf8.h"

#define DIGITS       "0123456789"
#define NS_PER_S     1000000000ull
#define MAX_SECONDS  86400ull /* a day: longer than any sensible refresh */
#define MAX_SEC_DIGS 6        /* enough digits for MAX_SECONDS */
/* Topic limits (shmbus_topic_opts), checked here to word the error. */
#define CLI_CAPACITY_MIN 2u
#define CLI_CAPACITY_MAX (1u << 24)
#define CLI_MSG_MAX      (16u << 20)

volatile sig_atomic_t cli_stop;

static void cli_on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

void cli_signals_catch(void)
{
    struct sigaction sa = {.sa_handler = cli_on_signal};

    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void cli_err(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("shmbus: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help'.\n", cmd);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_usage_hint(const char *cmd)
{
    fprintf(stderr, "Try '%s --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v;

    if (sb_units_u64(s, min, max, &v) < 0)
        return -1; /* not a number in range */
    *out = (uint32_t)v;
    return 0;
}

int cli_parse_seconds(const char *s, uint64_t *out_ns)
{
    size_t int_len = strspn(s, DIGITS), frac_len;
    const char *frac = s + int_len;
    uint64_t ns = 0, scale = NS_PER_S / 10;

    /* Digits must come first, and few enough that no overflow can happen. */
    if (int_len == 0 || int_len > MAX_SEC_DIGS)
        return -1;
    if (*frac == '.') {
        frac++;
        frac_len = strspn(frac, DIGITS);
        /* A point must be followed by digits and nothing else. */
        if (frac_len == 0 || frac[frac_len] != '\0')
            return -1;
        for (size_t i = 0; i < frac_len && scale > 0; i++, scale /= 10)
            ns += (uint64_t)(frac[i] - '0') * scale;
    } else if (*frac != '\0') {
        return -1; /* a suffix or other garbage */
    }
    ns += strtoull(s, NULL, 10) * NS_PER_S;
    if (ns == 0 || ns > MAX_SECONDS * NS_PER_S)
        return -1; /* out of range */
    *out_ns = ns;
    return 0;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t cli_realtime_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

uint64_t cli_monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int cli_sleep(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S)};

    while (!cli_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return cli_stop ? -1 : 0;
}

int cli_flush(void)
{
    int err;

    /* Everything written: the usual case. */
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    err = errno != 0 ? errno : EIO;
    /* The reader went away (e.g. `| head`): nothing to tell anyone. */
    if (err == EPIPE)
        return -EPIPE;
    cli_err("cannot write to standard output: %s", strerror(err));
    return -err;
}

void cli_topic_usage(FILE *f)
{
    fprintf(f,
            "Options used when the topic does not exist yet (if it does, those given\n"
            "must match it):\n"
            "  --reliable       publishers wait for the slowest subscriber (default: lossy)\n"
            "  --capacity N     cells in the ring, a power of two, %u..%u (default 1024)\n"
            "  --max-msg BYTES  largest message, 1..%u (default 1024)\n"
            "  --exclusive      one publisher at a time (faster)\n"
            "  --stall-timeout SECONDS\n"
            "                   evict a subscriber that holds reliable publishers back\n"
            "                   this long, and end a claim left open this long\n"
            "                   (default: never; decimals allowed, e.g. 0.5)\n",
            CLI_CAPACITY_MIN, CLI_CAPACITY_MAX, CLI_MSG_MAX);
}

int cli_topic_option(const char *cmd, int opt, const char *arg, shmbus_topic_opts *o)
{
    uint64_t ns;

    switch (opt) {
    case CLI_OPT_RELIABLE:
        o->mode = SHMBUS_RELIABLE;
        return 0;
    case CLI_OPT_CAPACITY:
        if (cli_parse_u32(arg, CLI_CAPACITY_MIN, CLI_CAPACITY_MAX, &o->capacity) < 0 ||
            (o->capacity & (o->capacity - 1)) != 0)
            return cli_usage_err(cmd, "--capacity wants a power of two from %u to %u, not '%s'",
                                 CLI_CAPACITY_MIN, CLI_CAPACITY_MAX, arg);
        return 0;
    case CLI_OPT_MAX_MSG:
        if (cli_parse_u32(arg, 1, CLI_MSG_MAX, &o->max_msg_size) < 0)
            return cli_usage_err(cmd, "--max-msg wants a size from 1 to %u bytes, not '%s'",
                                 CLI_MSG_MAX, arg);
        return 0;
    case CLI_OPT_EXCLUSIVE:
        o->flags |= SHMBUS_TOPIC_EXCLUSIVE;
        return 0;
    case CLI_OPT_STALL_TIMEOUT:
        /* Whole milliseconds in the topic, at least one. */
        if (cli_parse_seconds(arg, &ns) < 0 || ns < 1000000u)
            return cli_usage_err(cmd, "--stall-timeout wants seconds from 0.001 to %llu, not '%s'",
                                 MAX_SECONDS, arg);
        o->stall_timeout_ms = (uint32_t)(ns / 1000000u);
        return 0;
    default:
        return 1; /* not a topic option: the caller's */
    }
}

int cli_connect(const char *bus, char *name_out, shmbus_bus **out)
{
    const char *env = getenv("SHMBUS_BUS");
    int rc;

    *out = NULL;
    rc = shmbus_bus_resolve(bus, name_out, NULL, 0);
    if (rc < 0) {
        /* Only a bad name can fail without a path to build. */
        cli_err("bad bus name '%s'%s: 1..%d characters of [A-Za-z0-9_-]", bus ? bus : env,
                bus ? "" : " (from $SHMBUS_BUS)", SHMBUS_BUS_NAME_MAX);
        return CLI_EXIT_USAGE;
    }
    rc = shmbus_connect(name_out, out);
    /* No daemon, refused, or another version: the message says which. */
    if (rc == SHMBUS_ERR_INVALID)
        cli_err("cannot connect to bus '%s': $SHMBUS_DAEMON_UID '%s' names no user", name_out,
                getenv("SHMBUS_DAEMON_UID"));
    else if (rc == SHMBUS_ERR_UNTRUSTED)
        cli_err("cannot connect to bus '%s': %s (name its user in $SHMBUS_DAEMON_UID if it is "
                "the bus's)",
                name_out, shmbus_strerror(rc));
    else if (rc < 0)
        cli_err("cannot connect to bus '%s': %s", name_out, shmbus_strerror(rc));
    return rc < 0 ? CLI_EXIT_FAIL : 0;
}

int cli_bus_start(int parse_rc, void (*usage)(FILE *f), const char *bus, char *name_out,
                  shmbus_bus **out)
{
    *out = NULL;
    if (parse_rc == CLI_HELP)
        usage(stdout);
    if (parse_rc != 0)
        return parse_rc == CLI_HELP ? CLI_EXIT_OK : parse_rc;
    cli_signals_catch();
    return cli_connect(bus, name_out, out);
}

int cli_parse_one_operand(int argc, char **argv, const struct option *opts,
                          int (*option)(void *args, int opt, const char *cmd), void *args,
                          const char **operand)
{
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if ((rc = option(args, opt, argv[0])) != 0)
            return rc;
    if (optind < argc)
        *operand = argv[optind++];
    if (optind < argc)
        return cli_usage_err(argv[0], "unexpected argument '%s'", argv[optind]);
    return 0;
}

int cli_open(shmbus_bus *bus, const char *topic, const shmbus_topic_opts *opts, shmbus_topic **out)
{
    int rc = shmbus_open(bus, topic, opts, 0, out);

    /* Opened (or created): the usual case. */
    if (rc == 0)
        return 0;
    /* A user's typo: a usage error. */
    if (rc == SHMBUS_ERR_BAD_NAME) {
        cli_err("bad topic name '%s': " SB_NAME_TOPIC_RULE, topic);
        return CLI_EXIT_USAGE;
    }
    if (rc == SHMBUS_ERR_MISMATCH)
        cli_err("cannot open topic '%s': %s (see `shmbus stat`)", topic, shmbus_strerror(rc));
    else
        cli_err("cannot open topic '%s': %s", topic, shmbus_strerror(rc));
    return CLI_EXIT_FAIL;
}

int cli_on_topic(const char *bus, const char *topic, const shmbus_topic_opts *opts,
                 int (*fn)(shmbus_topic *t, const void *arg), const void *arg)
{
    char bus_name[SHMBUS_BUS_NAME_MAX + 1];
    shmbus_bus *b;
    shmbus_topic *t;
    int rc = cli_connect(bus, bus_name, &b);

    if (rc != 0)
        return rc; /* reported */
    rc = cli_open(b, topic, opts, &t);
    if (rc == 0) {
        rc = fn(t, arg);
        shmbus_topic_destroy(t);
    }
    shmbus_close(b);
    return rc;
}

void cli_json_str(const char *str)
{
    cli_json_strn(str, strlen(str));
}

void cli_json_strn(const void *str, size_t len)
{
    const unsigned char *s = str, *end = s + len;

    putchar('"');
    while (s < end) {
        size_t n = sb_utf8_seq(s, end);

        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if (*s < 0x20)
            printf("\\u%04x", *s);
        else if (n == 0)
            printf("\\ufffd");
        else
            fwrite(s, 1, n, stdout);
        s += n ? n : 1;
    }
    putchar('"');
}
