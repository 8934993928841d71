/*
 * shmbusd's logging (daemon/log.c) never blocks the daemon: with its
 * stderr a pipe nobody reads, it keeps serving control calls at once,
 * drops the lines that do not fit its buffer, and says how many once the
 * pipe is read again.
 */
#include "daemonutil.h"

#include <fcntl.h>

/* Connections made and closed, two log lines each (connected,
 * disconnected): far more than a pipe (64 KiB) and the daemon's buffer
 * (64 KiB) hold. */
#define LOG_CYCLES   1500
#define LOG_ROUNDS   10
#define LOG_CALLS    10
#define LOG_SLOW_NS  (100 * 1000000LL)
#define LOG_DRAIN_MS 10000

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The fastest of LOG_CALLS timed lists, in ns. */
static int64_t round_fastest(shmbus_bus *bus)
{
    int64_t best = INT64_MAX;

    for (int c = 0; c < LOG_CALLS; c++) {
        shmbus_topic_entry e;
        int64_t t0 = mono_ns(), dt;

        assert_true(shmbus_list(bus, NULL, &e, 1) >= 0);
        dt = mono_ns() - t0;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_log_unread_stderr_never_blocks, du_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
