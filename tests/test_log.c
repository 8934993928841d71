/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd's logging (daemon/log.c) never blocks the daemon: with its
 * stderr a pipe nobody reads, it keeps serving control calls at once,
 * drops the lines that do not fit its buffer, and says how many once the
 * pipe is read again. And the lines do not die with the process: an
 * ERROR line just before an abort, and the lines buffered before a
 * crash, reach stderr; with stderr full, a crash still ends the process;
 * a fault in the log writer thread reaches the crash handler too.
 */
#include "daemonutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "log.h"
#include "util/clock.h"

/* Connections made and closed, two log lines each (connected,
 * disconnected): far more than a pipe (64 KiB) and the daemon's buffer
 * (64 KiB) hold. */
#define LOG_CYCLES   1500
#define LOG_ROUNDS   10
#define LOG_CALLS    10
#define LOG_SLOW_NS  (100 * 1000000LL)
#define LOG_DRAIN_MS 10000

/* The fastest of LOG_CALLS timed lists, in ns. */
static int64_t round_fastest(shmbus_bus *bus)
{
    int64_t best = INT64_MAX;

    for (int c = 0; c < LOG_CALLS; c++) {
        shmbus_topic_entry e;
        int64_t t0 = (int64_t)sb_mono_ns(), dt;

        assert_true(shmbus_list(bus, NULL, &e, 1) >= 0);
        dt = (int64_t)sb_mono_ns() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

/* Bytes of one read kept for the next, so that a line cut between two
 * reads is still found. */
#define LOG_CARRY 64

/* Read the pipe @p rd until a line says how many were dropped, or
 * LOG_DRAIN_MS. @return the count it says, or -1. */
static long dropped_said(int rd)
{
    static char buf[LOG_CARRY + (1 << 16) + 1];
    int64_t until = du_now_ms() + LOG_DRAIN_MS;
    size_t carry = 0;

    while (du_now_ms() < until) {
        struct pollfd p = {.fd = rd, .events = POLLIN};
        size_t len, keep;
        ssize_t n;
        char *at;

        if (poll(&p, 1, 100) <= 0)
            continue;
        n = read(rd, buf + carry, sizeof(buf) - carry - 1);
        if (n <= 0)
            return -1; /* the daemon closed its stderr without saying it */
        len = carry + (size_t)n;
        buf[len] = '\0';
        at = strstr(buf, " log lines dropped");
        if (at != NULL) {
            while (at > buf && at[-1] >= '0' && at[-1] <= '9')
                at--;
            return strtol(at, NULL, 10);
        }
        keep = len < LOG_CARRY ? len : LOG_CARRY;
        memmove(buf, buf + len - keep, keep);
        carry = keep;
    }
    return -1;
}

static void test_log_unread_stderr_never_blocks(void **state)
{
    const char *const extra[] = {"--log-level", "debug", NULL};
    struct du_daemon *d = calloc(1, sizeof(*d));
    int64_t worst = 0;
    shmbus_bus *bus;
    int pfd[2];
    long dropped;

    assert_non_null(d);
    *state = d; /* the teardown stops it and removes what it made */
    assert_int_equal(du_prepare(d), 0);
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    assert_int_equal(du_launch_out(d, extra, pfd[1]), 0);
    close(pfd[1]);
    for (int i = 0; i < LOG_CYCLES; i++) {
        assert_shmbus_ok(shmbus_connect(d->bus, &bus));
        shmbus_close(bus);
    }
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    for (int r = 0; r < LOG_ROUNDS; r++) {
        int64_t best = round_fastest(bus);

        worst = best > worst ? best : worst;
    }
    shmbus_close(bus);
    print_message("fastest list of the slowest round with stderr unread: %lld us\n",
                  (long long)(worst / 1000));
    assert_true(worst < LOG_SLOW_NS);
    dropped = dropped_said(pfd[0]);
    print_message("the daemon says %ld lines were dropped\n", dropped);
    assert_true(dropped > 0);
    close(pfd[0]);
}

/* Crashes of a child logging through the writer thread, each run
 * LOG_CRASH_RUNS times: a line lost once fails. */
#define LOG_CRASH_RUNS 5
#define LOG_CRASH_OUT  4096

enum log_crash_kind { CRASH_ABORT, CRASH_SIGNAL };

static int crash_kind;

/* Exit codes of a child that did not die of its signal. */
enum { KID_LOG_SETUP = 100, KID_LOG_ALIVE = 101 };

/* A daemon's logging, then the end: an ERROR line right before abort(), or
 * a WARN line (buffered, never waited for) before a fatal signal. */
static int kid_log_crash(void *arg)
{
    int out = *(const int *)arg;
    struct rlimit none = {0, 0};

    setrlimit(RLIMIT_CORE, &none); /* the crash is the test's: no core file */
    if (dup2(out, STDERR_FILENO) < 0 || sbd_log_start() < 0)
        return KID_LOG_SETUP;
    if (crash_kind == CRASH_ABORT) {
        sbd_log(SBD_ERROR, "the last words before abort");
        abort();
    }
    sbd_log(SBD_WARN, "the last words before a crash");
    /* SIGILL rather than SIGSEGV: under AddressSanitizer SIGSEGV is its
     * own, and cmocka's handler took its place in this process. */
    raise(SIGILL);
    return KID_LOG_ALIVE;
}

/* Run kid_log_crash() as @p kind; @return what it wrote to stderr, in
 * @p buf. */
static void log_crash_run(int kind, char *buf, size_t size)
{
    size_t len = 0;
    int pfd[2], st;
    ssize_t n;
    pid_t kid;

    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    crash_kind = kind;
    kid = tu_fork(kid_log_crash, &pfd[1]);
    close(pfd[1]);
    while (len < size - 1 && (n = read(pfd[0], buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(pfd[0]);
    st = tu_wait(kid);
    assert_true(st >= 128); /* it died of its signal */
}

static void test_log_error_before_abort_written(void **state)
{
    static char out[LOG_CRASH_OUT];

    (void)state;
    for (int i = 0; i < LOG_CRASH_RUNS; i++) {
        log_crash_run(CRASH_ABORT, out, sizeof(out));
        assert_non_null(strstr(out, "error the last words before abort"));
    }
}

static void test_log_buffer_written_at_crash(void **state)
{
    static char out[LOG_CRASH_OUT];

    (void)state;
    for (int i = 0; i < LOG_CRASH_RUNS; i++) {
        log_crash_run(CRASH_SIGNAL, out, sizeof(out));
        assert_non_null(strstr(out, "warn  the last words before a crash"));
    }
}

/* A crash with stderr full: the handler writes what it can for at most
 * SBD_LOG_FLUSH_S, then the process dies; generous for a busy machine. */
#define LOG_FULL_DEATH_MS 10000

/* Fill @p fd, a pipe nobody reads, to the last byte. */
static int pipe_fill(int fd)
{
    static const char junk[4096];
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    while (write(fd, junk, sizeof(junk)) > 0 || write(fd, junk, 1) > 0)
        ;
    return errno == EAGAIN ? fcntl(fd, F_SETFL, fl) : -1;
}

/* Logging into a full stderr, then a crash. */
static int kid_crash_full(void *arg)
{
    int out = *(const int *)arg;
    struct rlimit none = {0, 0};

    setrlimit(RLIMIT_CORE, &none);
    if (dup2(out, STDERR_FILENO) < 0 || pipe_fill(STDERR_FILENO) < 0 || sbd_log_start() < 0)
        return KID_LOG_SETUP;
    sbd_log(SBD_WARN, "a line stderr has no room for");
    raise(SIGILL);
    return KID_LOG_ALIVE;
}

static void test_log_crash_with_stderr_full_dies(void **state)
{
    int pfd[2], st;
    pid_t kid;

    (void)state;
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    kid = tu_fork(kid_crash_full, &pfd[1]);
    close(pfd[1]);
    st = du_wait_ms(kid, LOG_FULL_DEATH_MS); /* nobody reads pfd[0] meanwhile */
    close(pfd[0]);
    assert_int_equal(st, 128 + SIGILL);
}

/* The log writer thread of this process (its only thread but the
 * caller's), or -1. */
static pid_t log_writer_tid(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    pid_t tid = -1;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && atoi(de->d_name) != (int)syscall(SYS_gettid))
            tid = atoi(de->d_name);
    closedir(d);
    return tid;
}

/* Logging, then SIGILL sent to the log writer thread alone. A thread that
 * blocks it leaves it pending: the child then sleeps LOG_FULL_DEATH_MS and
 * exits alive. (A fault it raised itself would be forced with the default
 * action instead, past the crash handler: the same mask decides both.) */
static int kid_writer_signalled(void *arg)
{
    int out = *(const int *)arg;
    struct rlimit none = {0, 0};
    pid_t tid;

    setrlimit(RLIMIT_CORE, &none);
    if (dup2(out, STDERR_FILENO) < 0 || sbd_log_start() < 0 || (tid = log_writer_tid()) < 0)
        return KID_LOG_SETUP;
    sbd_log(SBD_WARN, "the last words before the writer's fault");
    if (syscall(SYS_tgkill, getpid(), tid, SIGILL) != 0)
        return KID_LOG_SETUP;
    du_sleep_ms(LOG_FULL_DEATH_MS);
    return KID_LOG_ALIVE;
}

/* A fault signal in the log writer thread reaches the crash handler: the
 * buffered line is written and the process dies of that signal. */
static void test_log_writer_takes_faults(void **state)
{
    static char out[LOG_CRASH_OUT];
    size_t len = 0;
    int pfd[2], st;
    ssize_t n;
    pid_t kid;

    (void)state;
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    kid = tu_fork(kid_writer_signalled, &pfd[1]);
    close(pfd[1]);
    while (len < sizeof(out) - 1 && (n = read(pfd[0], out + len, sizeof(out) - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(pfd[0]);
    st = du_wait_ms(kid, 2 * LOG_FULL_DEATH_MS);
    assert_int_equal(st, 128 + SIGILL);
    assert_non_null(strstr(out, "warn  the last words before the writer's fault"));
}

/* ERROR lines, LOG_ERROR_GAP_MS apart, while another thread logs faster
 * than stderr is read (LOG_SLOW_READ bytes every LOG_SLOW_READ_MS), so
 * that the buffer never empties but writes complete (64 KiB in 160 ms):
 * each waits for its own line at most, and once a wait timed out the next
 * ones do not wait again while stderr has not drained. Waiting for the
 * buffer to empty, each waited the full second (LOG_ERRORS s in all);
 * the bound leaves room for one such wait and a busy machine. */
#define LOG_ERRORS       5
#define LOG_ERRORS_MS    3000
#define LOG_SLOW_READ    4096
#define LOG_SLOW_READ_MS 10
#define LOG_FILL_MS      300
#define LOG_ERROR_GAP_MS 200

enum { KID_LOG_ERRORS_SLOW = 102 };

static atomic_int filler_on;

static void *filler(void *arg)
{
    (void)arg;
    /* relaxed: a stop flag, nothing else to see */
    for (int i = 0; atomic_load_explicit(&filler_on, memory_order_relaxed); i++) {
        sbd_log(SBD_WARN, "filler line %d from another thread: %0300d", i, 0);
        usleep(100);
    }
    return NULL;
}

static int kid_errors_while_logging(void *arg)
{
    int out = *(const int *)arg;
    int64_t waited = 0;
    pthread_t th;

    if (dup2(out, STDERR_FILENO) < 0 || sbd_log_start() < 0)
        return KID_LOG_SETUP;
    atomic_store_explicit(&filler_on, 1, memory_order_relaxed); /* before the thread */
    if (pthread_create(&th, NULL, filler, NULL) != 0)
        return KID_LOG_SETUP;
    du_sleep_ms(LOG_FILL_MS); /* the pipe and the buffer fill */
    for (int i = 0; i < LOG_ERRORS; i++) {
        int64_t t0 = du_now_ms();

        sbd_log(SBD_ERROR, "error line %d", i);
        waited += du_now_ms() - t0;
        du_sleep_ms(LOG_ERROR_GAP_MS); /* writes complete meanwhile */
    }
    atomic_store_explicit(&filler_on, 0, memory_order_relaxed); /* joined below */
    pthread_join(th, NULL);
    printf("%d ERROR lines with stderr slow and another thread logging: %lld ms\n", LOG_ERRORS,
           (long long)waited);
    fflush(stdout);
    return waited < LOG_ERRORS_MS ? 0 : KID_LOG_ERRORS_SLOW;
}

static void test_log_error_waits_once_while_slow(void **state)
{
    char buf[LOG_SLOW_READ];
    int pfd[2];
    pid_t kid;

    (void)state;
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    kid = tu_fork(kid_errors_while_logging, &pfd[1]);
    close(pfd[1]);
    /* Read slowly until the child is gone and its lines are read. */
    while (read(pfd[0], buf, sizeof(buf)) > 0)
        du_sleep_ms(LOG_SLOW_READ_MS);
    close(pfd[0]);
    assert_int_equal(tu_wait(kid), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_log_unread_stderr_never_blocks, du_teardown),
        cmocka_unit_test(test_log_error_before_abort_written),
        cmocka_unit_test(test_log_buffer_written_at_crash),
        cmocka_unit_test(test_log_crash_with_stderr_full_dies),
        cmocka_unit_test(test_log_writer_takes_faults),
        cmocka_unit_test(test_log_error_waits_once_while_slow),
    };

    tu_init();
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
