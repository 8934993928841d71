/* SPDX-License-Identifier: Apache-2.0 */
/* Ring stress across processes (fork): the same checks as stress_threads. */
#include "stress/stress_run.h"

static long proc_start(int (*fn)(void *), void *arg)
{
    return (long)tu_fork(fn, arg);
}

static int proc_join(long token)
{
    return tu_wait((pid_t)token);
}

static void test_stress_procs_reliable(void **state)
{
    (void)state;
    struct st_scenario sc = {.mode = SHMBUS_RELIABLE,
                             .capacity = 32,
                             .publishers = 2,
                             .per_publisher = 20000,
                             .subscribers = 2,
                             .members = 3,
                             .spin_ns = 0};
    st_run(&sc, proc_start, proc_join, 0);
}

static void test_stress_procs_lossy(void **state)
{
    (void)state;
    struct st_scenario sc = {.mode = SHMBUS_LOSSY,
                             .capacity = 16,
                             .publishers = 3,
                             .per_publisher = 30000,
                             .subscribers = 2,
                             .members = 2,
                             .spin_ns = -1};
    st_run(&sc, proc_start, proc_join, 0);
}

static void test_stress_procs_exclusive(void **state)
{
    (void)state;
    struct st_scenario sc = {.mode = SHMBUS_LOSSY,
                             .flags = SHMBUS_TOPIC_EXCLUSIVE,
                             .capacity = 16,
                             .publishers = 1,
                             .per_publisher = 40000,
                             .subscribers = 2,
                             .members = 2,
                             .spin_ns = -1};
    st_run(&sc, proc_start, proc_join, 0);
    sc.mode = SHMBUS_RELIABLE;
    sc.spin_ns = 0;
    st_run(&sc, proc_start, proc_join, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_procs_reliable),
        cmocka_unit_test(test_stress_procs_lossy),
        cmocka_unit_test(test_stress_procs_exclusive),
    };
    tu_init();
    return cmocka_run_group_tests_name("stress_procs", tests, NULL, NULL);
}
