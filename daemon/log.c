/* SPDX-License-Identifier: Apache-2.0 */
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
 *
 * An ERROR line often comes right before the end (an abort, a crash, an
 * exit): its caller waits, at most SBD_LOG_FLUSH_S, until the writer has
 * written it and every line before it (counted in bytes: not the lines
 * other threads log after it); once such a wait has timed out, later
 * ERROR lines do not wait until stderr has drained, so a slow or stuck
 * stderr costs one wait, not one per line. A line dropped is not waited
 * for.
 * A fatal signal (SIGSEGV, SIGABRT, SIGILL, SIGFPE; under AddressSanitizer,
 * its report instead of SIGSEGV) writes what the buffer holds before the
 * process dies, best effort (it may repeat or lose the lines the writer
 * is in the middle of), waiting at most SBD_LOG_FLUSH_S for a full stderr
 * (the process must die, not hang).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"

/* AddressSanitizer: GCC says so with __SANITIZE_ADDRESS__, clang with
 * __has_feature(address_sanitizer). */
#if defined(__SANITIZE_ADDRESS__)
#define LOG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOG_ASAN 1
#endif
#endif
#ifdef LOG_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

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
    /* Bytes put in the buffer and bytes the writer has written out, ever:
     * an ERROR line waits until written reaches the end of its line. */
    uint64_t queued, written;
    /* An ERROR line's wait timed out: later ones do not wait until stderr
     * has drained (the writer found the buffer empty). A write that only
     * got some lines out does not clear it: a slow stderr costs one wait,
     * not one per line. */
    int stuck;
    /* relaxed everywhere, under mu, except the crash path's load: a fatal
     * signal's handler reads it without the lock (log_crash_write()). */
    _Atomic size_t len;
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

/* The syslog priority of each level (sd-daemon(3)'s "<3>" prefixes):
 * LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const int level_priorities[] = {3, 4, 6, 7};

/* Is stderr the journal? Decided once (log_journal_detect()). */
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static int journal;

/* systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream it connects
 * stderr to; a stderr redirected since (to a file, a pipe) is not that
 * one, and keeps the plain format. */
static void log_journal_detect(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    int end = 0;

    if (v == NULL || sscanf(v, "%llu:%llu%n", &dev, &ino, &end) != 2 || v[end] != '\0')
        return;
    journal = fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
              (unsigned long long)st.st_ino == ino;
}

/* @p src into @p dst (@p cap bytes) with every control byte written as
 * "\xNN", cut to fit: a message holds text other processes and hosts
 * chose (a client's name, a peer's error), and a newline in it would
 * start a line of their own, in the journal with any priority they like. */
static void log_escape(char *dst, size_t cap, const char *src)
{
    size_t n = 0;

    for (; *src != '\0'; src++) {
        unsigned char ch = (unsigned char)*src;

        if (ch >= 0x20 && ch != 0x7f) {
            if (n + 1 >= cap)
                break;
            dst[n++] = (char)ch;
        } else {
            if (n + 4 >= cap)
                break;
            snprintf(dst + n, cap - n, "\\x%02x", ch);
            n += 4;
        }
    }
    dst[n] = '\0';
}

/* One line into @p line: the time and level first, or for the journal,
 * which stamps lines itself, the priority prefix; control bytes in
 * @p msg escaped (log_escape()). @return its length. */
static size_t log_format(char *line, enum sbd_level level, const char *msg)
{
    char stamp[32], safe[LOG_LINE];
    struct timespec ts;
    struct tm tm;
    int n;

    log_escape(safe, sizeof(safe), msg);
    pthread_once(&journal_once, log_journal_detect);
    if (journal) {
        n = snprintf(line, LOG_LINE, "<%d>%s\n", level_priorities[level], safe);
    } else {
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, LOG_LINE, "%s.%03ldZ shmbusd %-5s %s\n", stamp, ts.tv_nsec / 1000000,
                     level_names[level], safe);
    }
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

/* The bytes waiting in the buffer. Call with lg.mu held. */
static size_t log_len(void)
{
    /* relaxed: under lg.mu (the field is atomic for log_crash_write()). */
    return atomic_load_explicit(&lg.len, memory_order_relaxed);
}

static void log_len_set(size_t n)
{
    /* relaxed: under lg.mu, as in log_len(). */
    atomic_store_explicit(&lg.len, n, memory_order_relaxed);
}

static void *log_writer(void *arg)
{
    static char out[SBD_LOG_BUFFER];

    (void)arg;
    size_t n = 0;

    for (;;) {
        char note[LOG_LINE] = "", msg[96];
        size_t nn = 0;
        uint64_t dropped;

        pthread_mutex_lock(&lg.mu);
        lg.written += n;
        if (log_len() == 0 && lg.dropped == 0)
            lg.stuck = 0; /* stderr has drained: ERROR lines wait again */
        lg.busy = 0;
        pthread_cond_broadcast(&lg.drained);
        while (log_len() == 0 && lg.dropped == 0)
            pthread_cond_wait(&lg.more, &lg.mu);
        n = log_len();
        memcpy(out, lg.buf, n);
        dropped = lg.dropped;
        log_len_set(0);
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

/* @p n bytes of @p p to stderr, non-blocking (O_NONBLOCK set), waiting
 * for room at most until monotonic @p until_ms: a stderr nobody reads
 * must not keep a dying process alive. Async-signal-safe. */
static void log_write_until(const char *p, size_t n, int64_t until_ms)
{
    while (n > 0) {
        struct pollfd pf = {.fd = STDERR_FILENO, .events = POLLOUT};
        ssize_t w = write(STDERR_FILENO, p, n);
        struct timespec now;
        int64_t left;

        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0 || errno != EAGAIN)
            return; /* stderr closed, an error: nobody else to tell */
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = until_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            return; /* full for SBD_LOG_FLUSH_S: the lines go with the process */
    }
}

/* A fatal signal, or a sanitizer's report: write what the buffer holds,
 * without the lock (the thread that died may hold it), for at most
 * SBD_LOG_FLUSH_S: stderr is made non-blocking for it (and put back,
 * another process may share it). fcntl(), write(), poll() and
 * clock_gettime() only: async-signal-safe. */
static void log_crash_write(void)
{
    /* relaxed: best effort, on a crash. The bytes below it were copied in
     * under the lock before it grew: by this thread, in program order; by
     * another, nothing here orders them (the lock cannot be taken in a
     * signal handler), so a line another thread was adding as we crashed
     * may come out partly written. */
    size_t n = atomic_load_explicit(&lg.len, memory_order_relaxed);
    int saved = errno, fl = fcntl(STDERR_FILENO, F_GETFL);
    struct timespec now;

    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK);
    clock_gettime(CLOCK_MONOTONIC, &now);
    log_write_until(lg.buf, n < sizeof(lg.buf) ? n : sizeof(lg.buf),
                    (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + SBD_LOG_FLUSH_S * 1000);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(STDERR_FILENO, F_SETFL, fl);
    errno = saved;
}

static void log_crash(int sig)
{
    log_crash_write();
    /* SA_RESETHAND: the default action, once the handler returns (the
     * signal is blocked until then). */
    raise(sig);
}

/* Write the buffer on the way down at a fatal signal. SIGBUS is the
 * segment guard's (guard.c). Under AddressSanitizer, SIGSEGV is its own:
 * its report ends in the death callback instead. */
static void log_crash_install(void)
{
    static const int sigs[] = {SIGABRT, SIGILL, SIGFPE,
#ifndef LOG_ASAN
                               SIGSEGV
#endif
    };
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = log_crash;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0)
            fprintf(stderr, "shmbusd: cannot catch signal %d for the log: %s\n", sigs[i],
                    strerror(errno));
#ifdef LOG_ASAN
    __sanitizer_set_death_callback(log_crash_write);
#endif
}

int sbd_log_start(void)
{
    sigset_t all, old;
    pthread_t th;
    int rc;

    /* Before the writer: a process that cannot flush at exit gets none. */
    if (atexit(sbd_log_flush) != 0)
        return -ENOMEM;
    /* The writer takes no signal but its own faults: the control loop
     * reads SIGTERM and SIGINT from a signalfd, which needs them blocked
     * in every thread, and a fault it blocked would kill the daemon past
     * the crash handler (guard.h sbd_guard_sigmask()). */
    sbd_guard_sigmask(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&th, NULL, log_writer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    pthread_detach(th);
    pthread_mutex_lock(&lg.mu);
    lg.started = 1;
    pthread_mutex_unlock(&lg.mu);
    log_crash_install();
    return 0;
}

/* Wait until the writer has written everything so far, or @p until.
 * Call with lg.mu held. @return 0, or ETIMEDOUT. */
static int log_drain(const struct timespec *until)
{
    while (lg.started && (log_len() > 0 || lg.dropped > 0 || lg.busy))
        if (pthread_cond_timedwait(&lg.drained, &lg.mu, until) == ETIMEDOUT)
            return ETIMEDOUT;
    return 0;
}

static void log_deadline(struct timespec *until)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += SBD_LOG_FLUSH_S;
}

/* Wait until the writer has written @p end bytes in all, at most
 * SBD_LOG_FLUSH_S; a timeout sets lg.stuck. Call with lg.mu held. */
static void log_wait_written(uint64_t end)
{
    struct timespec until;

    log_deadline(&until);
    while (lg.written < end)
        if (pthread_cond_timedwait(&lg.drained, &lg.mu, &until) == ETIMEDOUT) {
            lg.stuck = 1;
            return;
        }
}

void sbd_log_flush(void)
{
    struct timespec until;

    log_deadline(&until);
    pthread_mutex_lock(&lg.mu);
    log_drain(&until); /* a timeout: stderr is stuck, what is left is lost with the process */
    pthread_mutex_unlock(&lg.mu);
}

void sbd_log(enum sbd_level level, const char *fmt, ...)
{
    char msg[512], line[LOG_LINE];
    va_list ap;
    size_t n, len;

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
    len = log_len();
    if (len + n > sizeof(lg.buf)) {
        lg.dropped++; /* stderr is behind: counted, said when it drains */
        pthread_cond_signal(&lg.more);
        pthread_mutex_unlock(&lg.mu);
        return; /* never written: nothing to wait for */
    }
    memcpy(lg.buf + len, line, n);
    log_len_set(len + n);
    lg.queued += n;
    pthread_cond_signal(&lg.more);
    /* An ERROR may be the last line before the end: wait until it is out
     * (not for the lines other threads log after it), unless the last
     * such wait found stderr stuck and it has not drained since. */
    if (level == SBD_ERROR && !lg.stuck)
        log_wait_written(lg.queued);
    pthread_mutex_unlock(&lg.mu);
}
