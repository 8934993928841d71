/*
 * shmbusd logging (log.h). Once sbd_log_start() has run, sbd_log() never
 * writes: it formats its line and appends it to a bounded buffer under a
 * mutex held for a copy, and a writer thread of its own drains the buffer
 * to stderr. When stderr does not drain (a stopped journald, a pipe into
 * a pager nobody reads), only that thread blocks: the buffer fills, later
 * lines are dropped and counted, and once stderr drains the writer says
 * how many went ("N log lines dropped") after the lines kept before them.
 * Before sbd_log_start() (and in programs that never call it: tests,
 * benches, fuzzers), lines go straight to stderr with one fprintf each,
 * so lines never interleave.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE 640

static enum sbd_level log_level = SBD_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* The buffer and its writer. Everything below is guarded by mu. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t more;    /* the writer waits for lines */
    pthread_cond_t drained; /* sbd_log_flush() waits for the writer */
    int started;
    int busy; /* the writer holds lines it took out and has not written yet */
    size_t len;
    uint64_t dropped;
    char buf[SBD_LOG_BUFFER];
} lg = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .more = PTHREAD_COND_INITIALIZER,
        .drained = PTHREAD_COND_INITIALIZER};

void sbd_log_set_level(enum sbd_level level)
{
    log_level = level;
}

int sbd_log_parse_level(const char *s, enum sbd_level *out)
{
    for (int i = 0; i <= SBD_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum sbd_level)i;
            return 0;
        }
    }
    return -1;
}

/* One line, time and level first, into @p line. @return its length. */
static size_t log_format(char *line, enum sbd_level level, const char *msg)
{
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line, LOG_LINE, "%s.%03ldZ shmbusd %-5s %s\n", stamp, ts.tv_nsec / 1000000,
                 level_names[level], msg);
    if (n < 0)
        return 0;
    if ((size_t)n >= LOG_LINE) {
        line[LOG_LINE - 2] = '\n'; /* cut, still one line */
        return LOG_LINE - 1;
    }
    return (size_t)n;
}

/* All of @p n bytes to stderr, blocking; what cannot be written (stderr
 * closed, an error) is given up: there is nobody else to tell. */
static void log_write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *log_writer(void *arg)
{
    static char out[SBD_LOG_BUFFER];

    (void)arg;
    for (;;) {
        char note[LOG_LINE] = "", msg[96];
        size_t n, nn = 0;
        uint64_t dropped;

        pthread_mutex_lock(&lg.mu);
        lg.busy = 0;
        pthread_cond_broadcast(&lg.drained);
        while (lg.len == 0 && lg.dropped == 0)
            pthread_cond_wait(&lg.more, &lg.mu);
        n = lg.len;
        memcpy(out, lg.buf, n);
        dropped = lg.dropped;
        lg.len = 0;
        lg.dropped = 0;
        lg.busy = 1;
        pthread_mutex_unlock(&lg.mu);
        if (dropped > 0) {
            snprintf(msg, sizeof(msg), "%llu log lines dropped: stderr was not being read",
                     (unsigned long long)dropped);
            nn = log_format(note, SBD_WARN, msg);
        }
        log_write_all(out, n);
        log_write_all(note, nn);
    }
    return NULL;
}

int sbd_log_start(void)
{
    sigset_t all, old;
    pthread_t th;
    int rc;

    /* The writer takes no signal: the control loop reads SIGTERM and
     * SIGINT from a signalfd, which needs them blocked in every thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&th, NULL, log_writer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    pthread_detach(th);
    pthread_mutex_lock(&lg.mu);
    lg.started = 1;
    pthread_mutex_unlock(&lg.mu);
    if (atexit(sbd_log_flush) != 0)
        return -ENOMEM;
    return 0;
}

void sbd_log_flush(void)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SBD_LOG_FLUSH_S;
    pthread_mutex_lock(&lg.mu);
    while (lg.started && (lg.len > 0 || lg.dropped > 0 || lg.busy))
        if (pthread_cond_timedwait(&lg.drained, &lg.mu, &until) == ETIMEDOUT)
            break; /* stderr is stuck: what is left is lost with the process */
    pthread_mutex_unlock(&lg.mu);
}

void sbd_log(enum sbd_level level, const char *fmt, ...)
{
    char msg[512], line[LOG_LINE];
    va_list ap;
    size_t n;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    n = log_format(line, level, msg);
    pthread_mutex_lock(&lg.mu);
    if (!lg.started) {
        pthread_mutex_unlock(&lg.mu);
        fputs(line, stderr); /* no writer: one call per line, as always */
        return;
    }
    if (lg.len + n <= sizeof(lg.buf)) {
        memcpy(lg.buf + lg.len, line, n);
        lg.len += n;
    } else {
        lg.dropped++; /* stderr is behind: counted, said when it drains */
    }
    pthread_cond_signal(&lg.more);
    pthread_mutex_unlock(&lg.mu);
}
