/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fixture shared by test_merge.c, stress/stress_merge.c and
 * stress/test_merge_timing.c: a real shmbusd recording topics "rec.*"
 * (--record, --journal-dir) into its directory's journal/, and a
 * connection to it, as cmocka setup and teardown.
 */
#ifndef SHMBUS_TESTS_MERGETEST_H
#define SHMBUS_TESTS_MERGETEST_H

#include "daemonutil.h"

#include <sys/stat.h>

/* A daemon recording "rec.*", its journal directory and a connection. */
struct rec_env {
    struct du_daemon d;
    char jdir[PATH_MAX];
    shmbus_bus *bus;
};

/* cmocka setup: start the daemon and connect. A failed setup cleans up
 * itself. */
static inline int rec_setup(void **state)
{
    struct rec_env *e = calloc(1, sizeof(*e));
    const char *extra[] = {"--record", "rec.*", "--journal-dir", e != NULL ? e->jdir : "", NULL};

    if (e == NULL)
        return -1;
    if (du_prepare(&e->d) < 0)
        goto err;
    snprintf(e->jdir, sizeof(e->jdir), "%s/journal", e->d.dir);
    if (mkdir(e->jdir, 0700) < 0 || du_launch(&e->d, extra) < 0)
        goto err;
    if (shmbus_connect(e->d.bus, &e->bus) < 0) {
        du_stop(&e->d);
        goto err;
    }
    *state = e;
    return 0;
err:
    du_segments(e->d.bus, 1);
    du_remove_dir(e->d.dir);
    free(e);
    return -1;
}

/* cmocka teardown, after a failed test too: the daemon stopped, its
 * segments and directory (the journals in it) removed, then its exit
 * status checked. */
static inline int rec_teardown(void **state)
{
    struct rec_env *e = *state;
    int status;

    shmbus_close(e->bus);
    tu_cleanup();
    status = du_stop(&e->d);
    du_segments(e->d.bus, 1);
    du_remove_dir(e->d.dir);
    free(e);
    if (status != 0)
        fail_msg("shmbusd exit status %d, want 0", status);
    return 0;
}

#endif
