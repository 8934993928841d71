/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's SIGBUS guard (daemon/guard.c): a fault on a guarded
 * mapping whose file was truncated lands on zeroes and flags the topic; a
 * fault in a thread whose window is open (a segment being taken over,
 * before it can be guarded) lands on zeroes and sets the window's flag;
 * any other SIGBUS still kills the process.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "guard.h"

/* A file of two pages in /dev/shm, mapped; then truncated to nothing, so
 * that any access to the mapping faults. @return the mapping. */
static uint8_t *truncated_mapping(size_t *len)
{
    const char *name = tu_name("guard");
    char path[128];
    uint8_t *base;
    int fd;

    /* cmocka installs its own SIGBUS handler around each test. */
    assert_int_equal(sbd_guard_init(), 0);
    *len = 2 * (size_t)sysconf(_SC_PAGESIZE);
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)*len), 0);
    base = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(base != MAP_FAILED);
    base[0] = 1; /* readable while the file is whole */
    assert_int_equal(ftruncate(fd, 0), 0);
    close(fd);
    tu_release(name);
    return base;
}

/* A guarded range: the fault reads zeroes, the topic is flagged broken. */
static void test_guard_range_fault_flags_broken(void **state)
{
    (void)state;
    size_t len;
    uint8_t *base = truncated_mapping(&len);
    static _Atomic int broken; /* the guard keeps a pointer to it for good */

    assert_int_equal(sbd_guard_add(base, len, &broken), 0);
    assert_int_equal(((volatile uint8_t *)base)[len - 1], 0);
    /* relaxed: set by this thread's own handler. */
    assert_int_equal(atomic_load_explicit(&broken, memory_order_relaxed), 1);
    assert_int_equal(((volatile uint8_t *)base)[0], 0); /* the whole mapping */
}

/* An open window: the fault reads zeroes and sets its flag; reads and
 * writes after it go on. */
static void test_guard_window_catches_fault(void **state)
{
    (void)state;
    size_t len;
    uint8_t *base = truncated_mapping(&len);
    _Atomic int hit = 0;

    sbd_guard_window(&hit);
    assert_int_equal(((volatile uint8_t *)base)[0], 0);
    ((volatile uint8_t *)base)[1] = 7;
    sbd_guard_window(NULL);
    /* relaxed: set by this thread's own handler. */
    assert_int_equal(atomic_load_explicit(&hit, memory_order_relaxed), 1);
    assert_int_equal(base[1], 7);
    munmap(base, len);
}

static int fault_unguarded(void *arg)
{
    return ((volatile uint8_t *)arg)[0];
}

/* A closed window and no range: the SIGBUS kills the process, as it would
 * without the guard. */
static void test_guard_other_fault_kills(void **state)
{
    (void)state;
    size_t len;
    uint8_t *base = truncated_mapping(&len);
    pid_t kid = tu_fork(fault_unguarded, base);
    int st;

    assert_int_equal(waitpid(kid, &st, 0), kid);
    for (int i = 0; i < TU_MAX_KIDS; i++)
        if (tu_kids[i] == kid)
            tu_kids[i] = 0; /* reaped: nothing for tu_cleanup() to kill */
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGBUS);
    munmap(base, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_range_fault_flags_broken),
        cmocka_unit_test(test_guard_window_catches_fault),
        cmocka_unit_test(test_guard_other_fault_kills),
    };

    tu_init();
    return cmocka_run_group_tests_name("guard", tests, NULL, NULL);
}
