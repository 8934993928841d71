/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `shmbus top`: a live view of the bus's topics, sorted by message rate
 * or by their worst subscriber's lag, redrawn every interval as top(1)
 * redraws. It takes the samples of `shmbus stat` (stat.h). On a terminal
 * (standard input and output both) it clears the screen with ANSI codes,
 * reads keys without echo (q quits) and restores the terminal on every
 * way out; otherwise it prints one plain frame per interval, for scripts
 * and tests (--iterations ends it).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "stat.h"

#define TOP_HOME       "\033[H\033[2J" /* ANSI: cursor home, clear screen */
#define TOP_CURSOR_OFF "\033[?25l"
#define TOP_CURSOR_ON  "\033[?25h"
#define TOP_MS_MIN     50u       /* --interval bounds, milliseconds */
#define TOP_MS_MAX     86400000u /* a day */
#define TOP_MS_DEFAULT 1000u
#define TOP_ITER_MAX   1000000000u
#define TOP_ROWS       24 /* a terminal's rows when it does not say */
#define TOP_HEAD_ROWS  4  /* the title, the limits, a blank line, the header */
#define TOP_NS_PER_MS  1000000ull

enum top_sort { TOP_SORT_RATE, TOP_SORT_LAG };

struct top_args {
    const char *bus;
    const char *pattern; /* NULL: every topic */
    int sort;            /* enum top_sort */
    uint32_t interval_ms;
    uint32_t iterations; /* 0: until q, SIGINT, SIGTERM or SIGHUP */
};

/* One topic's line, computed from two samples. */
struct top_row {
    const struct stat_topic *t;
    double rate;   /* messages per second; < 0 unknown */
    uint64_t lag;  /* its subscribers' largest lag */
    uint64_t lost; /* its subscribers' losses together */
};

void cli_top_usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus [--bus NAME] top [--sort rate|lag] [--interval MS] [--iterations N]\n"
            "                               [PATTERN]\n"
            "A live view of the bus's topics (or those whose names match the Redis glob\n"
            "PATTERN), redrawn every interval: messages per second, the largest lag of a\n"
            "subscriber, losses, subscribers and publishers, and the bus's shm against\n"
            "--max-shm. On a terminal q or Ctrl-C quits; when standard output is not a\n"
            "terminal, one plain frame is printed per interval, without screen control.\n"
            "\n"
            "Options:\n"
            "  --sort rate|lag   order of the topics, largest first (default rate)\n"
            "  --interval MS     milliseconds between frames, %u..%u (default %u)\n"
            "  --iterations N    stop after N frames (default: until q or SIGINT/TERM/HUP)\n"
            "  --bus NAME        bus to use (default: $SHMBUS_BUS, else \"%s\")\n"
            "  --help            this text\n",
            TOP_MS_MIN, TOP_MS_MAX, TOP_MS_DEFAULT, SHMBUS_BUS_DEFAULT);
}

enum { OPT_BUS = 256, OPT_HELP, OPT_SORT, OPT_INTERVAL, OPT_ITERATIONS };

static const struct option top_opts[] = {{"bus", required_argument, NULL, OPT_BUS},
                                         {"help", no_argument, NULL, OPT_HELP},
                                         {"sort", required_argument, NULL, OPT_SORT},
                                         {"interval", required_argument, NULL, OPT_INTERVAL},
                                         {"iterations", required_argument, NULL, OPT_ITERATIONS},
                                         {NULL, 0, NULL, 0}};

/* One option. @return 0, CLI_HELP, or CLI_EXIT_USAGE (reported). */
static int top_option(void *args, int opt, const char *cmd)
{
    struct top_args *a = args;

    if (opt == OPT_BUS) {
        a->bus = optarg;
    } else if (opt == OPT_HELP) {
        return CLI_HELP;
    } else if (opt == OPT_SORT) {
        if (strcmp(optarg, "rate") != 0 && strcmp(optarg, "lag") != 0)
            return cli_usage_err(cmd, "--sort wants rate or lag, not '%s'", optarg);
        a->sort = strcmp(optarg, "lag") == 0 ? TOP_SORT_LAG : TOP_SORT_RATE;
    } else if (opt == OPT_INTERVAL) {
        if (cli_parse_u32(optarg, TOP_MS_MIN, TOP_MS_MAX, &a->interval_ms) < 0)
            return cli_usage_err(cmd, "--interval wants milliseconds, %u..%u, not '%s'", TOP_MS_MIN,
                                 TOP_MS_MAX, optarg);
    } else if (opt == OPT_ITERATIONS) {
        if (cli_parse_u32(optarg, 1, TOP_ITER_MAX, &a->iterations) < 0)
            return cli_usage_err(cmd, "--iterations wants a count, 1..%u, not '%s'", TOP_ITER_MAX,
                                 optarg);
    } else {
        return cli_usage_hint(cmd); /* getopt printed what was wrong */
    }
    return 0;
}

/* Largest first: by rate (unknown last) or by lag, then by name. */
static int top_sort_by;

static int row_cmp(const void *x, const void *y)
{
    const struct top_row *a = x, *b = y;

    if (top_sort_by == TOP_SORT_LAG && a->lag != b->lag)
        return a->lag < b->lag ? 1 : -1;
    if (top_sort_by == TOP_SORT_RATE && a->rate != b->rate)
        return a->rate < b->rate ? 1 : -1;
    return strcmp(a->t->e.name, b->t->e.name);
}

/* The rows of @p cur against @p prev, sorted. @return them (the caller
 * frees) or NULL when out of memory (or no topic). */
static struct top_row *top_rows(const struct stat_sample *cur, const struct stat_sample *prev,
                                int sort)
{
    struct top_row *rows = calloc(cur->n ? cur->n : 1, sizeof(*rows));

    if (rows == NULL)
        return NULL;
    for (size_t i = 0; i < cur->n; i++) {
        const struct stat_topic *t = &cur->v[i];

        rows[i] = (struct top_row){.t = t, .rate = cli_stat_rate(t, prev)};
        for (unsigned k = 0; k < t->n_slots; k++) {
            rows[i].lag = t->slots[k].lag > rows[i].lag ? t->slots[k].lag : rows[i].lag;
            rows[i].lost += t->slots[k].lost;
        }
    }
    top_sort_by = sort;
    qsort(rows, cur->n, sizeof(*rows), row_cmp);
    return rows;
}

/* The terminal's rows, or TOP_ROWS when it does not say. */
static unsigned top_term_rows(void)
{
    struct winsize w;

    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) < 0 || w.ws_row == 0)
        return TOP_ROWS;
    return w.ws_row;
}

/* Print one frame: on a terminal, as many rows as fit below the header. */
static void top_frame(const struct top_args *a, const char *bus, const struct stat_sample *cur,
                      const struct top_row *rows, int tty)
{
    unsigned room = tty ? top_term_rows() : UINT32_MAX;
    time_t now = (time_t)(cur->realtime_ns / 1000000000ull);
    char when[16] = "";
    struct tm tm;

    if (localtime_r(&now, &tm) != NULL)
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
    printf("%sshmbus top - bus %s - %s - %zu topic%s, by %s\n", tty ? TOP_HOME : "", bus, when,
           cur->n, cur->n == 1 ? "" : "s", a->sort == TOP_SORT_LAG ? "lag" : "rate");
    cli_stat_limits_show(&cur->limits);
    putchar('\n');
    printf("%-32s %12s %12s %12s %5s %5s %14s\n", "TOPIC", "MSG/S", "LAG", "LOST", "SUBS", "PUBS",
           "PUBLISHED");
    for (size_t i = 0; i < cur->n && i + TOP_HEAD_ROWS < room; i++) {
        const struct top_row *r = &rows[i];

        printf("%-32.128s ", r->t->e.name);
        if (r->rate < 0)
            printf("%12s", "-");
        else
            printf("%12.1f", r->rate);
        printf(" %12llu %12llu %5u %5u %14llu\n", (unsigned long long)r->lag,
               (unsigned long long)r->lost, r->t->e.subscribers, r->t->e.publishers,
               (unsigned long long)r->t->info.published);
    }
    if (!tty)
        putchar('\n'); /* frames apart */
}

/*
 * Wait @p ms for the next frame. On a terminal a key ends the wait:
 * q (or Q) quits. @return 1 to go on, 0 to quit (q, or a signal).
 */
static int top_wait(uint32_t ms, int tty)
{
    uint64_t end = cli_monotonic_ns() + (uint64_t)ms * TOP_NS_PER_MS;

    if (!tty)
        return cli_sleep((uint64_t)ms * TOP_NS_PER_MS) == 0 && !cli_stop;
    while (!cli_stop) {
        uint64_t now = cli_monotonic_ns();
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        char c;

        if (now >= end)
            return 1;
        /* A signal ends the poll (EINTR): cli_stop says which. */
        if (poll(&p, 1, (int)((end - now + TOP_NS_PER_MS - 1) / TOP_NS_PER_MS)) <= 0)
            continue;
        if (read(STDIN_FILENO, &c, 1) != 1)
            return 0; /* the terminal went away */
        if (c == 'q' || c == 'Q')
            return 0;
    }
    return 0;
}

/* Keys without echo or line buffering; the cursor hidden. @return 0, or
 * -1 if the terminal cannot be set (then it is left as it is). */
static int top_term_raw(struct termios *saved)
{
    struct termios raw;

    if (tcgetattr(STDIN_FILENO, saved) < 0)
        return -1;
    raw = *saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
        return -1;
    fputs(TOP_CURSOR_OFF, stdout);
    return 0;
}

static void top_term_restore(const struct termios *saved)
{
    fputs(TOP_CURSOR_ON, stdout);
    fflush(stdout);
    tcsetattr(STDIN_FILENO, TCSANOW, saved);
}

/* Sample, wait, sample and draw, until told to stop. @return an exit status. */
static int top_loop(shmbus_bus *b, const char *bus, const struct top_args *a, int tty)
{
    struct stat_sample prev = {0}, cur = {0};
    uint32_t frames = 0;
    int rc = cli_stat_sample_take(b, a->pattern, &prev);

    while (rc == 0 && top_wait(a->interval_ms, tty)) {
        struct top_row *rows;

        rc = cli_stat_sample_take(b, a->pattern, &cur);
        rows = rc == 0 ? top_rows(&cur, &prev, a->sort) : NULL;
        if (rc == 0 && rows == NULL) {
            cli_err("out of memory");
            rc = -ENOMEM;
        }
        if (rc == 0) {
            top_frame(a, bus, &cur, rows, tty);
            if (cli_flush() == -EPIPE)
                rc = 1; /* the reader left: stop, quietly and successfully */
        }
        free(rows);
        cli_stat_sample_free(&prev);
        prev = cur;
        memset(&cur, 0, sizeof(cur));
        if (a->iterations != 0 && ++frames >= a->iterations)
            break;
    }
    cli_stat_sample_free(&prev);
    cli_stat_sample_free(&cur);
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_top_main(const char *bus, int argc, char **argv)
{
    struct top_args a = {.bus = bus, .interval_ms = TOP_MS_DEFAULT};
    char bus_name[SHMBUS_BUS_NAME_MAX + 1];
    struct termios saved;
    shmbus_bus *b;
    int tty, rc = cli_parse_one_operand(argc, argv, top_opts, top_option, &a, &a.pattern);

    rc = cli_bus_start(rc, cli_top_usage, a.bus, bus_name, &b);
    if (b == NULL)
        return rc; /* --help, or an error reported */
    tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && top_term_raw(&saved) == 0;
    rc = top_loop(b, bus_name, &a, tty);
    if (tty)
        top_term_restore(&saved);
    shmbus_close(b);
    return rc;
}
