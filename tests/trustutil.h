/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the tests that act as another local user (test_trust.c,
 * test_segfile.c, test_rundir.c): user nobody's ids and a child's drop to
 * them, a daemon in another runtime directory, and a message's round
 * trip through the bus. Everything a test makes outside its own
 * directory it removes itself.
 */
#ifndef SHMBUS_TESTS_TRUSTUTIL_H
#define SHMBUS_TESTS_TRUSTUTIL_H

#include "daemonutil.h"

#include <pwd.h>
#include <sys/stat.h>

#define WAIT_NS 10000000000ll /* only a hang reaches it */

/* nobody's uid and gid; the test is skipped without root or without the
 * user (it cannot act as another user then). */
static inline void du_nobody_ids(uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam("nobody");

    if (geteuid() != 0 || pw == NULL)
        skip();
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
}

/* The opening of a test that starts its daemon its own way: nobody's ids
 * into @p uid and @p gid (du_nobody_ids()), then the daemon of the setup
 * stopped. */
static inline void du_nobody_stopped(struct du_daemon *d, uid_t *uid, gid_t *gid)
{
    du_nobody_ids(uid, gid);
    assert_int_equal(du_stop(d), 0);
}

/* Become nobody in a child (tu_become()). @return 0 or -errno. */
static inline int du_become_nobody(void)
{
    struct passwd *pw = getpwnam("nobody");

    return pw == NULL ? -ENOENT : tu_become(pw->pw_uid, pw->pw_gid);
}

/* @p path (not followed) has mode @p mode and group @p gid. */
static inline void du_assert_mode_group(const char *path, mode_t mode, gid_t gid)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, mode);
    assert_int_equal(st.st_gid, gid);
}

/* Is there a file /dev/shm/SEG? */
static inline int du_seg_exists(const char *seg)
{
    char path[SHMBUS_NAME_MAX + 16];

    snprintf(path, sizeof(path), "/dev/shm/%s", seg);
    return access(path, F_OK) == 0;
}

/* Publish @p text on topic @p name through the daemon and receive it. */
static inline void du_roundtrip(shmbus_bus *bus, const char *name, const char *text)
{
    shmbus_topic_opts o = {.capacity = 16, .max_msg_size = 64};
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_sub *sub;
    char buf[64];

    assert_shmbus_ok(shmbus_open(bus, name, &o, 0, &t));
    assert_shmbus_ok(shmbus_sub_create(t, NULL, &sub));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_publish(pub, text, strlen(text), 0));
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS), (int)strlen(text));
    assert_memory_equal(buf, text, strlen(text));
    shmbus_pub_destroy(pub);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
}

/* Point the bus at runtime directory @p run (SHMBUS_RUNTIME_DIR) and
 * resolve the daemon's socket there. */
static inline void du_use_runtime_dir(struct du_daemon *d, const char *run)
{
    assert_int_equal(setenv("SHMBUS_RUNTIME_DIR", run, 1), 0);
    assert_shmbus_ok(shmbus_bus_resolve(d->bus, NULL, d->sock, sizeof(d->sock)));
}

/* Start a daemon that must refuse to start: its exit status, and in
 * @p log its stderr. */
static inline int du_launch_refused(struct du_daemon *d, const char *log, const char *const *extra)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid_t pid;

    assert_true(fd >= 0);
    pid = du_spawn(d, extra, fd);
    close(fd);
    assert_true(pid > 0);
    return du_wait_ms(pid, DU_READY_MS);
}

/* Make @p run a runtime directory of nobody's, mode @p mode, group @p g. */
static inline void du_nobody_run_dir(struct du_daemon *d, const char *run, gid_t g, mode_t mode)
{
    assert_int_equal(chmod(d->dir, 0711), 0); /* nobody must reach it */
    if (mkdir(run, mode) < 0)
        assert_int_equal(errno, EEXIST);
    assert_int_equal(chown(run, d->uid, g), 0);
    assert_int_equal(chmod(run, mode), 0);
}

#endif
