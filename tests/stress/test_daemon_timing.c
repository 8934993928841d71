/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmbusd's control socket under clients that hold it up, measured in
 * time (each passes on a deadline or the daemon's CPU time, so each is a
 * timing test and lives here): connections that never say hello are
 * closed after 5 s and lock nobody out meanwhile; out of descriptors with
 * connections waiting, the daemon pauses accepting instead of spinning.
 * Every test runs its own daemon (daemonutil.h).
 */
#include "daemonclient.h"

#include <sys/resource.h>
#include <sys/socket.h>

/* Has the daemon closed raw connection @p s (EOF within 1 s)? */
static int raw_closed(int s)
{
    struct pollfd p = {.fd = s, .events = POLLIN};
    char c;

    return poll(&p, 1, 1000) == 1 && recv(s, &c, 1, MSG_DONTWAIT) == 0;
}

/* Connections that never say hello cannot lock others out: past 64 of
 * them new ones are closed at once, and each is closed 5 s after it came,
 * after which clients connect again. */
static void test_daemon_hello_deadline(void **state)
{
    struct du_daemon *d = *state;
    int idle[64], extra;
    shmbus_bus *bus;
    int64_t t0 = du_now_ms();

    for (int i = 0; i < 64; i++)
        idle[i] = raw_open(d);
    extra = raw_open(d);
    assert_true(raw_closed(extra));
    close(extra);
    assert_int_not_equal(shmbus_connect(d->bus, &bus), 0); /* no room yet */
    while (!raw_closed(idle[0]))
        assert_true(du_now_ms() - t0 < 20000);
    assert_true(du_now_ms() - t0 >= 4500);
    for (int i = 1; i < 64; i++)
        assert_true(raw_closed(idle[i]));
    for (int i = 0; i < 64; i++)
        close(idle[i]);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shmbus_close(bus);
}

#define EMFILE_CONNS 8

/*
 * The daemon out of descriptors with connections waiting to be accepted:
 * it pauses accepting instead of spinning on EMFILE (its CPU time over a
 * second stays far below the second a spin takes), and serves again once
 * descriptors are back.
 */
static void test_trust_control_emfile_no_spin(void **state)
{
    struct du_daemon *d = *state;
    struct rlimit low, high;
    int conns[EMFILE_CONNS], n;
    shmbus_bus *bus;
    int64_t before, used;

    assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, NULL, &high), 0);
    n = du_fd_count(d->pid);
    assert_true(n > 0);
    low = high;
    low.rlim_cur = (rlim_t)n + 2;
    assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &low, NULL), 0);
    for (int i = 0; i < EMFILE_CONNS; i++) {
        conns[i] = du_raw_connect(d->sock);
        assert_true(conns[i] >= 0);
    }
    du_sleep_ms(200); /* the daemon takes two, then meets EMFILE */
    before = du_cpu_ms(d->pid);
    du_sleep_ms(1000);
    used = du_cpu_ms(d->pid) - before;
    print_message("daemon CPU over 1 s at EMFILE: %lld ms\n", (long long)used);
    assert_true(used < 250); /* a quarter of the second */
    for (int i = 0; i < EMFILE_CONNS; i++)
        close(conns[i]);
    assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &high, NULL), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shmbus_close(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        DAEMON_TEST(test_daemon_hello_deadline),
        DAEMON_TEST(test_trust_control_emfile_no_spin),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("daemon_timing", tests, NULL, NULL);
}
