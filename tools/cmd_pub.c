/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus pub`: publish messages on a topic, creating it if needed. The
 * messages are the arguments after the topic, one file's bytes (--file),
 * synthetic payloads (--size), or else the lines (or, with -0, the
 * NUL-separated records) of standard input; --count bounds or repeats
 * them and --rate paces them against absolute deadlines, so that a late
 * message does not push the later ones back. A message that fails is
 * reported and the next one is tried, unless the failure means no later
 * message can succeed either; the exit status then says so.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "cli.h"

#define PUB_NS_PER_S 1000000000ull
/* How long a reliable publish waits for space unless --timeout says. */
#define PUB_TIMEOUT_DEFAULT_NS (10ll * 1000000000ll)
/* Highest --rate: beyond it the pacing costs more than the publishing. */
#define PUB_RATE_MAX 10000000ull
/* Largest --size, and the most --file reads: the largest message a topic takes. */
#define PUB_SIZE_MAX (16ull << 20)
/* The counter at the start of a --size payload. */
#define PUB_COUNTER_BYTES 8

/* Where the messages come from. */
enum pub_source { PUB_SRC_STDIN = 0, PUB_SRC_ARGS, PUB_SRC_FILE, PUB_SRC_SIZE };

struct pub_args {
    const char *bus;
    const char *topic;
    shmbus_topic_opts opts;
    char **msgs; /* borrowed from argv */
    int n_msgs;
    int source;       /* enum pub_source */
    uint64_t count;   /* 0: as many as the source has (--size: until stopped) */
    uint64_t rate;    /* messages per second; 0: as fast as possible */
    uint64_t size;    /* --size */
    const char *file; /* --file; "-" is standard input */
    int nul;          /* -0 */
    int64_t timeout_ns;
};

struct pub_state {
    const struct pub_args *a;
    shmbus_pub *pub;
    uint64_t start_ns; /* CLOCK_MONOTONIC of the first deadline */
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
            "Failures are reported on stderr and make the exit status 1.\n"
            "\n"
            "  --count N        publish N messages: the MESSAGEs over and over, --file\n"
            "                   or --size N times, or at most N of standard input\n"
            "  --rate R         R messages a second (1..%llu), each at its deadline\n"
            "                   start + k/R on CLOCK_MONOTONIC: one that is late (a full\n"
            "                   reliable topic) does not delay the next ones, which\n"
            "                   follow at once until the schedule is met (default: as\n"
            "                   fast as the topic takes them)\n"
            "  --size B         synthetic messages of B bytes (1..%llu; K, M suffixes):\n"
            "                   the message's number from 0 as a little-endian u64 in\n"
            "                   its first 8 bytes (fewer when B < 8), then bytes\n"
            "                   0, 1, 2... (offset mod 256). Without --count, until\n"
            "                   SIGINT or SIGTERM\n"
            "  --file F         one message: the bytes of file F ('-': standard input),\n"
            "                   at most the topic's largest message (an error if larger)\n"
            "  -0               read standard input as NUL-separated messages, not lines\n"
            "  --timeout SEC    how long a publish on a full reliable topic waits for\n"
            "                   its slowest subscriber, then the message fails and\n"
            "                   publishing stops (0: fail at once; decimals allowed;\n"
            "                   default %lld). A lossy topic never waits. It does not\n"
            "                   bound connecting: with no daemon that fails at once, and\n"
            "                   a daemon that does not answer fails it in 10 s\n"
            "\n",
            PUB_RATE_MAX, PUB_SIZE_MAX, PUB_TIMEOUT_DEFAULT_NS / 1000000000ll);
    cli_topic_usage(f);
    fprintf(f,
            "Other options:\n"
            "  --bus NAME       bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help           this text\n",
            SHMBUS_BUS_DEFAULT);
}

enum { OPT_BUS = 256, OPT_HELP, OPT_COUNT, OPT_RATE, OPT_SIZE, OPT_FILE, OPT_TIMEOUT };

static const struct option pub_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                         {"help", no_argument, NULL, OPT_HELP},
                                         {"count", required_argument, NULL, OPT_COUNT},
                                         {"rate", required_argument, NULL, OPT_RATE},
                                         {"size", required_argument, NULL, OPT_SIZE},
                                         {"file", required_argument, NULL, OPT_FILE},
                                         {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                         CLI_TOPIC_OPTIONS,
                                         {NULL, 0, NULL, 0}};

/* --timeout: 0, or cli_parse_seconds()'s durations. @return 0; CLI_EXIT_USAGE. */
static int pub_timeout_option(struct pub_args *a, const char *arg, const char *cmd)
{
    size_t z = strspn(arg, "0");
    uint64_t ns;

    /* 0, or 0.0 and the like: never wait (cli_parse_seconds() wants more than 0). */
    if (z > 0 && (arg[z] == '\0' || (arg[z] == '.' && arg[z + 1] != '\0' &&
                                     arg[z + 1 + strspn(arg + z + 1, "0")] == '\0'))) {
        a->timeout_ns = 0;
        return 0;
    }
    if (cli_parse_seconds(arg, &ns) < 0)
        return cli_usage_err(cmd, "--timeout wants seconds from 0 to 86400, not '%s'", arg);
    a->timeout_ns = (int64_t)ns;
    return 0;
}

/* One of pub's own options. @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int pub_own_option(struct pub_args *a, int opt, const char *cmd)
{
    switch (opt) {
    case OPT_BUS:
        a->bus = optarg;
        return 0;
    case OPT_HELP:
        return CLI_HELP;
    case OPT_COUNT:
        if (sb_units_u64(optarg, 1, UINT64_MAX, &a->count) < 0)
            return cli_usage_err(cmd, "--count wants a positive number, not '%s'", optarg);
        return 0;
    case OPT_RATE:
        if (sb_units_u64(optarg, 1, PUB_RATE_MAX, &a->rate) < 0)
            return cli_usage_err(cmd, "--rate wants messages a second from 1 to %llu, not '%s'",
                                 PUB_RATE_MAX, optarg);
        return 0;
    case OPT_SIZE:
        if (sb_units_size(optarg, &a->size) < 0 || a->size > PUB_SIZE_MAX)
            return cli_usage_err(cmd, "--size wants bytes from 1 to %llu, not '%s'", PUB_SIZE_MAX,
                                 optarg);
        return 0;
    case OPT_FILE:
        a->file = optarg;
        return 0;
    case '0':
        a->nul = 1;
        return 0;
    case OPT_TIMEOUT:
        return pub_timeout_option(a, optarg, cmd);
    default:
        return cli_usage_hint(cmd); /* getopt printed what was wrong */
    }
}

/* Which source the arguments name; one at most. @return 0; CLI_EXIT_USAGE. */
static int pub_source(struct pub_args *a, const char *cmd)
{
    int n = (a->n_msgs > 0) + (a->file != NULL) + (a->size != 0);

    if (n > 1)
        return cli_usage_err(cmd, "give one of MESSAGE..., --file and --size");
    if (a->nul && n > 0)
        return cli_usage_err(cmd, "-0 reads standard input: no MESSAGE, --file or --size");
    a->source = a->n_msgs > 0     ? PUB_SRC_ARGS
                : a->file != NULL ? PUB_SRC_FILE
                : a->size != 0    ? PUB_SRC_SIZE
                                  : PUB_SRC_STDIN;
    return 0;
}

/* @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int pub_parse(int argc, char **argv, struct pub_args *a)
{
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "0", pub_opts, NULL)) != -1) {
        rc = cli_topic_option(argv[0], opt, optarg, &a->opts);
        /* Not a topic option: one of pub's. */
        if (rc == 1)
            rc = pub_own_option(a, opt, argv[0]);
        if (rc != 0)
            return rc;
    }
    if (optind >= argc)
        return cli_usage_err(argv[0], "no topic given");
    a->topic = argv[optind];
    a->msgs = argv + optind + 1;
    a->n_msgs = argc - optind - 1;
    return pub_source(a, argv[0]);
}

/* Whether a failed publish leaves hope for the next message. */
static int pub_err_is_per_message(int rc)
{
    return rc == SHMBUS_ERR_TOO_BIG || rc == SHMBUS_ERR_OVERRUN;
}

/* --rate: sleep until message @p k's deadline, start + k/rate, computed
 * from the start each time so that rounding never accumulates.
 * @return 0; -1 when a signal stopped the command. */
static int pub_pace(const struct pub_state *ps, uint64_t k)
{
    uint64_t rate = ps->a->rate;
    uint64_t at = ps->start_ns + k / rate * PUB_NS_PER_S + k % rate * PUB_NS_PER_S / rate;
    struct timespec ts = {.tv_sec = (time_t)(at / PUB_NS_PER_S),
                          .tv_nsec = (long)(at % PUB_NS_PER_S)};

    /* A signal interrupts the sleep (EINTR): look at the flag, sleep on. */
    while (!cli_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return cli_stop ? -1 : 0;
}

/* Message number ps->tried, @p len bytes, failed with @p rc: report it.
 * @return 0, or -1 when publishing should stop. */
static int pub_failed(struct pub_state *ps, size_t len, int rc)
{
    ps->failed++;
    cli_err("message %llu (%zu byte%s) not published: %s", (unsigned long long)ps->tried, len,
            len == 1 ? "" : "s",
            rc == -EINTR && cli_stop ? "interrupted"
            : rc == SHMBUS_ERR_TIMEOUT || rc == -EAGAIN
                ? "the reliable topic stayed full (--timeout)"
                : shmbus_strerror(rc));
    /* Too big or overtaken: the next message may well succeed. */
    if (pub_err_is_per_message(rc))
        return 0;
    ps->gave_up = !cli_stop;
    return -1;
}

/* Publish one message. @return 0, or -1 when publishing should stop. */
static int pub_one(struct pub_state *ps, const void *data, size_t len)
{
    int rc;

    if (ps->a->rate != 0 && pub_pace(ps, ps->tried) < 0)
        return -1;
    rc = shmbus_publish(ps->pub, data, len, ps->a->timeout_ns);
    ps->tried++;
    /* Published: nothing to report. */
    return rc >= 0 ? 0 : pub_failed(ps, len, rc);
}

/* Whether --count more messages are wanted (@p dflt: the source's own
 * number, 0 for no end). */
static int pub_more(const struct pub_state *ps, uint64_t dflt)
{
    uint64_t n = ps->a->count != 0 ? ps->a->count : dflt;

    return !cli_stop && (n == 0 || ps->tried < n);
}

/* The MESSAGEs, over and over until --count, else once each. */
static void pub_args_loop(struct pub_state *ps)
{
    const struct pub_args *a = ps->a;

    while (pub_more(ps, (uint64_t)a->n_msgs)) {
        const char *msg = a->msgs[ps->tried % (uint64_t)a->n_msgs];

        if (pub_one(ps, msg, strlen(msg)) < 0)
            break;
    }
}

/* The same payload @p len bytes long, --count times (default once). */
static void pub_repeat_loop(struct pub_state *ps, const void *data, size_t len)
{
    while (pub_more(ps, 1)) {
        if (pub_one(ps, data, len) < 0)
            break;
    }
}

/* --size: synthetic payloads numbered from 0, until --count or a signal. */
static void pub_size_loop(struct pub_state *ps, unsigned char *buf)
{
    size_t len = (size_t)ps->a->size;

    for (size_t i = PUB_COUNTER_BYTES; i < len; i++)
        buf[i] = (unsigned char)i;
    while (pub_more(ps, 0)) {
        for (size_t i = 0; i < PUB_COUNTER_BYTES && i < len; i++)
            buf[i] = (unsigned char)(ps->tried >> (8 * i));
        if (pub_one(ps, buf, len) < 0)
            break;
    }
}

/*
 * Read one record of @p f, up to @p delim (not kept) or EOF, into @p buf,
 * which holds @p cap bytes; the bytes past @p cap are read and dropped, so
 * that a record of any length costs no more memory.
 * @return the record's whole length (more than @p cap: cut short); -1 at
 * EOF with nothing read, or on a read error.
 */
static long long pub_record_read(FILE *f, int delim, char *buf, size_t cap)
{
    long long n = 0;
    int c;

    while ((c = getc_unlocked(f)) != EOF && c != delim) {
        if ((size_t)n < cap)
            buf[n] = (char)c;
        n++;
    }
    /* Nothing before EOF, or a read error (a signal too) cutting it short. */
    if (c == EOF && (n == 0 || ferror(f)))
        return -1;
    return n;
}

/* One message per line (-0: per NUL-terminated record) of stdin, at most
 * @p max bytes each (a longer one fails alone); stops at EOF, --count, a
 * signal or a fatal error. @return 0; -1 out of memory (reported). */
static int pub_stdin_loop(struct pub_state *ps, size_t max)
{
    int delim = ps->a->nul ? '\0' : '\n';
    char *rec = malloc(max);
    long long len;

    if (rec == NULL) {
        cli_err("out of memory");
        return -1;
    }
    while (pub_more(ps, 0) && (len = pub_record_read(stdin, delim, rec, max)) >= 0) {
        /* Longer than the topic takes: counted and reported, not published. */
        if ((unsigned long long)len > max) {
            ps->tried++;
            if (pub_failed(ps, (size_t)len, SHMBUS_ERR_TOO_BIG) < 0)
                break;
            continue;
        }
        if (pub_one(ps, rec, (size_t)len) < 0)
            break;
    }
    /* A signal interrupts the read (EINTR); anything else is worth telling. */
    if (ferror(stdin) && !cli_stop) {
        cli_err("cannot read standard input: %s", strerror(errno));
        ps->failed++;
    }
    free(rec);
    return 0;
}

/* --file: read it whole into *@p out (the caller frees it), at most @p max
 * bytes. @return its length; -1 (reported). */
static long pub_file_read(const char *path, size_t max, unsigned char **out)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    unsigned char *buf = malloc(max + 1);
    size_t n = 0;
    long rc = -1;

    *out = NULL;
    if (f == NULL || buf == NULL) {
        cli_err("cannot read '%s': %s", path, f == NULL ? strerror(errno) : "out of memory");
        goto out;
    }
    /* One byte more than fits tells a file that is too large. */
    while (n <= max && !ferror(f) && !feof(f))
        n += fread(buf + n, 1, max + 1 - n, f);
    if (ferror(f))
        cli_err("cannot read '%s': %s", path, strerror(errno));
    else if (n > max)
        cli_err("'%s' is larger than the topic's largest message (%zu bytes; see --max-msg)", path,
                max);
    else
        rc = (long)n;
out:
    if (f != NULL && !is_stdin)
        fclose(f);
    if (rc < 0)
        free(buf);
    else
        *out = buf;
    return rc;
}

/* Publish from the source the arguments name. @return 0; -1 (reported). */
static int pub_from_source(struct pub_state *ps, size_t max_msg)
{
    const struct pub_args *a = ps->a;
    unsigned char *buf = NULL;
    long len;

    switch (a->source) {
    case PUB_SRC_ARGS:
        pub_args_loop(ps);
        return 0;
    case PUB_SRC_STDIN:
        return pub_stdin_loop(ps, max_msg);
    case PUB_SRC_FILE:
        len = pub_file_read(a->file, max_msg, &buf);
        if (len < 0)
            return -1;
        pub_repeat_loop(ps, buf, (size_t)len);
        break;
    default:
        if (a->size > max_msg) {
            cli_err("--size %llu is larger than the topic's largest message (%zu bytes; see "
                    "--max-msg)",
                    (unsigned long long)a->size, max_msg);
            return -1;
        }
        buf = malloc((size_t)a->size);
        if (buf == NULL) {
            cli_err("out of memory");
            return -1;
        }
        pub_size_loop(ps, buf);
        break;
    }
    free(buf);
    return 0;
}

static int pub_run(shmbus_topic *t, const void *arg)
{
    const struct pub_args *a = arg;
    struct pub_state ps = {.a = a};
    shmbus_topic_info info;
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
    shmbus_topic_info_get(t, &info);
    ps.start_ns = cli_monotonic_ns();
    rc = pub_from_source(&ps, info.max_msg_size);
    shmbus_pub_destroy(ps.pub);
    /* Nothing could be published: the source was reported. */
    if (rc < 0)
        return CLI_EXIT_FAIL;
    if (ps.gave_up)
        cli_err("gave up at message %llu", (unsigned long long)ps.tried);
    else if (ps.failed > 0 && ps.tried > 1)
        cli_err("%llu of %llu messages not published", (unsigned long long)ps.failed,
                (unsigned long long)ps.tried);
    return ps.failed > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_pub_main(const char *bus, int argc, char **argv)
{
    struct pub_args a = {.bus = bus, .timeout_ns = PUB_TIMEOUT_DEFAULT_NS};
    int rc = pub_parse(argc, argv, &a);

    /* --help, or a usage error already reported. */
    if (rc == CLI_HELP)
        cli_pub_usage(stdout);
    if (rc != 0)
        return rc == CLI_HELP ? CLI_EXIT_OK : rc;
    cli_signals_catch();
    return cli_on_topic(a.bus, a.topic, &a.opts, pub_run, &a);
}
