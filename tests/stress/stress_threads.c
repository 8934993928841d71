/* Ring stress with threads: run under ThreadSanitizer in CI. */
#include "stress/stress_run.h"

#include <pthread.h>

struct thread_job {
    pthread_t th;
    int (*fn)(void *);
    void *arg;
    int rc;
};

static void *thread_main(void *arg)
{
    struct thread_job *j = arg;
    j->rc = j->fn(j->arg);
    return NULL;
}

static long thread_start(int (*fn)(void *), void *arg)
{
    struct thread_job *j = calloc(1, sizeof(*j));
    assert_non_null(j);
    j->fn = fn;
    j->arg = arg;
    assert_int_equal(pthread_create(&j->th, NULL, thread_main, j), 0);
    return (long)(intptr_t)j;
}

static int thread_join(long token)
{
    struct thread_job *j = (struct thread_job *)(intptr_t)token;
    int rc;
    pthread_join(j->th, NULL);
    rc = j->rc;
    free(j);
    return rc;
}

static void test_stress_threads_reliable(void **state)
{
    (void)state;
    struct st_scenario sc = {.mode = SHMBUS_RELIABLE,
                             .capacity = 64,
                             .publishers = 3,
                             .per_publisher = 20000,
                             .subscribers = 2,
                             .members = 2,
                             .spin_ns = 0};
    st_run(&sc, thread_start, thread_join, 1);
}

static void test_stress_threads_reliable_sleepers(void **state)
{
    (void)state;
    struct st_scenario sc = {.mode = SHMBUS_RELIABLE,
                             .capacity = 8,
                             .publishers = 2,
                             .per_publisher = 5000,
                             .subscribers = 2,
                             .members = 3,
                             .spin_ns = -1};
    st_run(&sc, thread_start, thread_join, 1);
}

static void test_stress_threads_lossy(void **state)
{
    (void)state;
    struct st_scenario sc = {.mode = SHMBUS_LOSSY,
                             .capacity = 16,
                             .publishers = 3,
                             .per_publisher = 30000,
                             .subscribers = 3,
                             .members = 2,
                             .spin_ns = 0};
    st_run(&sc, thread_start, thread_join, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_threads_reliable),
        cmocka_unit_test(test_stress_threads_reliable_sleepers),
        cmocka_unit_test(test_stress_threads_lossy),
    };
    tu_init();
    return cmocka_run_group_tests_name("stress_threads", tests, NULL, NULL);
}
