/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's memory budgets (daemon/bridge/mem.c) on connections built
 * in the test, without sockets to clients: the largest connection is
 * marked for closing when another's charge would pass --bridge-max-memory,
 * and one already closed for a full output buffer (sbb_out_doom()) is never
 * marked as well (it would be closed, counted and logged twice).
 */
#include "testutil.h"

#include <sys/eventfd.h>
#include <sys/socket.h>

#include "bridge/mem.h"
#include "bridge/out.h"
#include "bridge/state.h"

struct fx {
    struct sbd_config cfg;
    struct sbd_bridge b;
    struct sbb_conn conn[2];
    int peer[2]; /* the other ends of the connections' sockets */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    sbd_config_defaults(&f->cfg);
    f->cfg.bridge_max_memory = 1000;
    f->b.cfg = &f->cfg;
    f->b.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    sbb_rlist_init(&f->b.conns);
    for (int i = 0; i < 2; i++) {
        struct sbb_conn *c = &f->conn[i];
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            return -1;
        c->fd = sv[0];
        f->peer[i] = sv[1];
        c->b = &f->b;
        c->id = (uint64_t)i + 1;
        pthread_mutex_init(&c->mu, NULL);
        sbb_rlist_append(&f->b.conns, &c->node);
    }
    urcu_memb_register_thread();
    *state = f;
    return f->b.evfd >= 0 ? 0 : -1;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    urcu_memb_unregister_thread();
    for (int i = 0; i < 2; i++) {
        close(f->conn[i].fd);
        close(f->peer[i]);
        pthread_mutex_destroy(&f->conn[i].mu);
    }
    close(f->b.evfd);
    free(f);
    return 0;
}

/* The budget full: the other connection, holding the most, is marked and
 * lends its bytes; the asking one goes on. */
static void test_bridge_mem_largest_marked(void **state)
{
    struct fx *f = *state;

    assert_int_equal(sbb_mem_charge(&f->b, &f->conn[0], 900, 0), 0);
    assert_int_equal(sbb_mem_charge(&f->b, &f->conn[1], 200, 0), 0);
    assert_ptr_equal(sbb_mem_evict_next(&f->b), &f->conn[0]);
    sbb_mem_evict_done(&f->conn[0]);
    assert_null(sbb_mem_evict_next(&f->b));
}

/* A connection closed for a full output buffer is being closed already:
 * it is not marked again, and the asking one gets no loan from it. */
static void test_bridge_mem_doomed_not_marked(void **state)
{
    struct fx *f = *state;

    assert_int_equal(sbb_mem_charge(&f->b, &f->conn[0], 900, 0), 0);
    pthread_mutex_lock(&f->conn[0].mu);
    sbb_out_doom(&f->conn[0]);
    pthread_mutex_unlock(&f->conn[0].mu);
    assert_int_equal(sbb_mem_charge(&f->b, &f->conn[1], 200, 0), -1);
    assert_null(sbb_mem_evict_next(&f->b));
    /* relaxed: this thread's own stores. */
    assert_int_equal(atomic_load_explicit(&f->b.evicting, memory_order_relaxed), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bridge_mem_largest_marked, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bridge_mem_doomed_not_marked, fx_setup, fx_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("bridge_mem", tests, NULL, NULL);
}
