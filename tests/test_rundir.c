/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's runtime directory and bus lock (daemon/rundir.c), tried as
 * another local user would: a directory another user made, or others may
 * write, or a link is refused; an existing one is used as it is, never
 * changed; a lock nobody planted in /dev/shm (a socket or empty
 * directory) is removed by a root daemon, one held locked is left and the
 * bus served without it, also under fs.protected_regular; a second daemon
 * of the bus is refused, one of another uid's left alone; a --group the
 * daemon's user is not in is refused at start.
 */
#include "trustutil.h"

#include <sys/file.h>
#include <sys/un.h>

/*
 * The socket and lock live in a runtime directory that must be the
 * daemon's and writable by nobody else: one another user made, one that
 * others may write, or a link there is refused with a message saying so,
 * and the daemon starts once the directory is sound.
 */
static void test_rundir_runtime_dir_checked(void **state)
{
    struct du_daemon *d = *state;
    char run[PATH_MAX], log[PATH_MAX], other[PATH_MAX];
    uid_t uid;
    gid_t gid;

    du_nobody_stopped(d, &uid, &gid);
    snprintf(run, sizeof(run), "%s/run", d->dir);
    snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
    snprintf(other, sizeof(other), "%s/other", d->dir);
    du_use_runtime_dir(d, run);
    assert_int_equal(mkdir(run, 0700), 0);

    assert_int_equal(chown(run, uid, gid), 0);
    assert_int_equal(du_launch_refused(d, log, NULL), 1);
    assert_int_equal(du_log_wait(log, "it belongs to another user", 1), 1);

    assert_int_equal(chown(run, 0, 0), 0);
    assert_int_equal(chmod(run, 0777), 0);
    assert_int_equal(du_launch_refused(d, log, NULL), 1);
    assert_int_equal(du_log_wait(log, "group or others may write it", 1), 1);

    assert_int_equal(rename(run, other), 0);
    assert_int_equal(symlink(other, run), 0);
    assert_int_equal(du_launch_refused(d, log, NULL), 1);
    assert_int_equal(du_log_wait(log, "not a directory", 1), 1);

    assert_int_equal(unlink(run), 0);
    assert_int_equal(rmdir(other), 0);
    assert_int_equal(du_launch(d, NULL), 0);
}

/*
 * A directory that exists is used as it is, never changed: given /run (or
 * any shared directory of its uid) by mistake, a daemon that let other
 * uids in or had a --group would lock everyone else out of it. It says
 * when the peers it lets in cannot reach the socket.
 */
static void test_rundir_runtime_dir_kept(void **state)
{
    struct du_daemon *d = *state;
    const char *opts[] = {"--allow-uid", "nobody", "--group", "nogroup", NULL};
    char run[PATH_MAX], log[PATH_MAX];
    uid_t uid;
    gid_t gid;
    int fd;

    du_nobody_stopped(d, &uid, &gid);
    snprintf(run, sizeof(run), "%s/shared", d->dir);
    snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
    du_use_runtime_dir(d, run);
    assert_int_equal(mkdir(run, 0755), 0);
    assert_int_equal(chmod(run, 0755), 0);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(du_launch_out(d, opts, fd), 0);
    close(fd);
    du_assert_mode_group(run, 0755, 0);
    assert_int_equal(du_stop(d), 0);

    assert_int_equal(chmod(run, 0700), 0);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(du_launch_out(d, opts, fd), 0);
    close(fd);
    du_assert_mode_group(run, 0700, 0);
    assert_int_equal(du_log_wait(log, "cannot reach the socket", 1), 1);
}

#define SYSCTL_PATH  "/proc/sys/fs/protected_regular"
#define SYSCTL_LOCK  "/run/shmbus-test-sysctl.lock"
#define SYSCTL_SAVED "/run/shmbus-test-sysctl.saved"

/* What a test planted at the bus-wide lock's name (removed at teardown). */
static char rundir_planted[PATH_MAX];

/* SYSCTL_LOCK, flocked while a test has fs.protected_regular set, or -1. */
static int rundir_sysctl_fd = -1;

/* Read an int from @p path. @return it, or -1. */
static int read_int(const char *path)
{
    FILE *f = fopen(path, "re");
    int v;

    if (f == NULL)
        return -1;
    if (fscanf(f, "%d", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

/* Write @p v to @p path. @return 0 or -1. */
static int write_int(const char *path, int v)
{
    FILE *f = fopen(path, "we");
    int ok;

    if (f == NULL)
        return -1;
    ok = fprintf(f, "%d\n", v) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/*
 * Set fs.protected_regular, a host-wide setting, to @p v until
 * rundir_teardown(), if we may. Runs in other trees are kept out by an
 * flock on SYSCTL_LOCK held meanwhile; the host's own value is kept in
 * SYSCTL_SAVED under it, and one found there was left by a run killed
 * before restoring (ctest's TIMEOUT): that is the value to restore.
 * Meanwhile other tests may run under the setting: 1 is the systemd
 * default that every test must pass under anyway (and ctest keeps the
 * tests that plant files as nobody apart: RESOURCE_LOCK).
 */
static void set_protected_regular(int v)
{
    int fd = open(SYSCTL_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600), host;

    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        if (fd >= 0)
            close(fd);
        return; /* no /run of ours: as the host has it */
    }
    host = read_int(SYSCTL_SAVED);
    if (host < 0 && ((host = read_int(SYSCTL_PATH)) < 0 || write_int(SYSCTL_SAVED, host) < 0)) {
        close(fd);
        return;
    }
    if (write_int(SYSCTL_PATH, v) < 0) {
        unlink(SYSCTL_SAVED); /* read-only /proc/sys (a container): as the host has it */
        close(fd);
        return;
    }
    rundir_sysctl_fd = fd;
}

/* Restores fs.protected_regular after a test that set it, and removes
 * what it planted, also after a failure. */
static int rundir_teardown(void **state)
{
    struct stat st;

    if (rundir_sysctl_fd >= 0) {
        write_int(SYSCTL_PATH, read_int(SYSCTL_SAVED));
        unlink(SYSCTL_SAVED);
        close(rundir_sysctl_fd); /* the flock goes with it */
        rundir_sysctl_fd = -1;
    }
    if (rundir_planted[0] != '\0' && lstat(rundir_planted, &st) == 0)
        S_ISDIR(st.st_mode) ? du_remove_dir(rundir_planted) : (void)unlink(rundir_planted);
    rundir_planted[0] = '\0';
    return du_teardown(state);
}

struct squatter {
    char lock[PATH_MAX]; /* the bus-wide lock's name in /dev/shm */
    int ready;
};

/* Child: as nobody, hold a lock on a file at the bus's /dev/shm lock
 * name; stay. */
static int squat_run(void *arg)
{
    const struct squatter *q = arg;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int fd;

    if (du_become_nobody() < 0)
        return 1;
    fd = open(q->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0)
        return 1;
    du_signal(q->ready);
    pause();
    return 0;
}

/*
 * nobody squats the bus-wide lock's name in /dev/shm, locked, as nobody's
 * own daemon of the bus would. It does not block the bus: a root daemon
 * serves without that lock and leaves it (a live daemon's lock is not
 * taken from it), also with fs.protected_regular (stock distributions),
 * under which the kernel refuses even root an O_CREAT open of another
 * user's file there.
 */
static void test_rundir_squatted_lock(void **state)
{
    struct du_daemon *d = *state;
    struct squatter q;
    shmbus_bus *bus;
    uid_t uid;
    gid_t gid;
    struct stat st;

    du_nobody_stopped(d, &uid, &gid);
    set_protected_regular(1);
    snprintf(q.lock, sizeof(q.lock), "/dev/shm/shmbus-%s.lock", d->bus);
    snprintf(rundir_planted, sizeof(rundir_planted), "%s", q.lock);
    du_fork_ready(squat_run, &q, &q.ready);
    assert_int_equal(du_launch(d, NULL), 0);
    assert_int_equal(stat(q.lock, &st), 0);
    assert_int_equal(st.st_uid, uid); /* left to the process that holds it */
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    du_roundtrip(bus, "t", "through");
    shmbus_close(bus);
}

enum plant { PLANT_SOCKET, PLANT_DIR, PLANT_FULL_DIR };

struct planter {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    enum plant what;
};

/* Child: as nobody, make arg's thing at its path. */
static int plant_run(void *arg)
{
    const struct planter *p = arg;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char inner[PATH_MAX + 8];
    int s, fd;

    if (du_become_nobody() < 0)
        return 1;
    if (p->what == PLANT_SOCKET) {
        s = socket(AF_UNIX, SOCK_STREAM, 0);
        memcpy(a.sun_path, p->path, sizeof(a.sun_path));
        return s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0;
    }
    if (mkdir(p->path, 0755) < 0)
        return 1;
    if (p->what == PLANT_DIR)
        return 0;
    snprintf(inner, sizeof(inner), "%s/f", p->path);
    fd = open(inner, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    return fd < 0;
}

/* Launch the daemon with nobody's @p what at the bus-wide lock's name,
 * logging to @p log; then connect. */
static void launch_planted(struct du_daemon *d, struct planter *p, enum plant what, const char *log)
{
    shmbus_bus *bus;
    int fd;

    p->what = what;
    assert_int_equal(du_wait_ms(tu_fork(plant_run, p), DU_READY_MS), 0);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(du_launch_out(d, NULL, fd), 0);
    close(fd);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    du_roundtrip(bus, "t", "through");
    shmbus_close(bus);
}

/*
 * What nobody plants at the bus-wide lock's name need not be a file: a
 * unix socket, or an empty directory, is removed by a root daemon as well
 * and the lock taken; a directory with something in it is not, and the
 * daemon says so and serves without that lock.
 */
static void test_rundir_squatted_lock_not_file(void **state)
{
    struct du_daemon *d = *state;
    struct planter p;
    char log[PATH_MAX];
    struct stat st;

    assert_int_equal(du_stop(d), 0);
    snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
    snprintf(p.path, sizeof(p.path), "/dev/shm/shmbus-%s.lock", d->bus);
    snprintf(rundir_planted, sizeof(rundir_planted), "%s", p.path);
    for (enum plant w = PLANT_SOCKET; w <= PLANT_DIR; w++) {
        launch_planted(d, &p, w, log);
        assert_int_equal(lstat(p.path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_uid, geteuid()); /* replaced, and ours */
        assert_int_equal(du_stop(d), 0);
    }
    launch_planted(d, &p, PLANT_FULL_DIR, log);
    assert_int_equal(du_log_wait(log, "serving without lock", 1), 1);
    assert_int_equal(lstat(p.path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

/*
 * A second daemon of the bus started with another runtime directory (as
 * the same uid would be with and without XDG_RUNTIME_DIR) is refused: the
 * bus-wide lock in /dev/shm excludes it, and it leaves the first one's
 * files alone.
 */
static void test_rundir_second_daemon_other_dir_refused(void **state)
{
    struct du_daemon *d = *state, other = *d;
    char run[PATH_MAX], log[PATH_MAX];
    shmbus_bus *bus;

    snprintf(run, sizeof(run), "%s/other", d->dir);
    snprintf(log, sizeof(log), "%s/other.log", d->dir);
    du_use_runtime_dir(&other, run);
    assert_int_equal(du_launch_refused(&other, log, NULL), 1);
    assert_int_equal(du_log_wait(log, "is already served by shmbusd pid", 1), 1);
    assert_int_equal(unsetenv("SHMBUS_RUNTIME_DIR"), 0);
    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    shmbus_close(bus);
}

/*
 * A daemon of the bus run by nobody (a user's own bus of the name the
 * system bus has, say) serves; a root daemon of the same bus started in
 * another runtime directory serves beside it without the bus-wide lock
 * nobody's holds, and leaves nobody's live segments alone.
 */
static void test_rundir_other_uid_daemon_kept(void **state)
{
    const char *allow_root[] = {"--allow-uid", "0", NULL}; /* our readiness checks */
    struct du_daemon *d = *state, other;
    char run[PATH_MAX], seg[SHMBUS_NAME_MAX + 1];
    struct stat st;
    uid_t uid;
    gid_t gid;

    du_nobody_stopped(d, &uid, &gid);
    other = *d; /* the bus and its directory, stopped */
    other.uid = uid;
    other.gid = gid;
    snprintf(run, sizeof(run), "%s/nobody", d->dir);
    du_nobody_run_dir(&other, run, other.gid, 0700);
    du_use_runtime_dir(&other, run);
    assert_int_equal(setenv("SHMBUS_DAEMON_UID", "nobody", 1), 0);
    assert_int_equal(du_launch(&other, allow_root), 0);
    snprintf(seg, sizeof(seg), SBD_SEG_PREFIX "%s." SBD_EVENTS_TOPIC, d->bus);
    assert_true(du_seg_exists(seg));
    assert_int_equal(unsetenv("SHMBUS_RUNTIME_DIR"), 0);
    assert_int_equal(du_launch(d, NULL), 0);
    snprintf(run, sizeof(run), "/dev/shm/%s", seg);
    assert_int_equal(stat(run, &st), 0);
    assert_int_equal(st.st_uid, other.uid); /* nobody's, still there */
    assert_int_equal(du_stop(&other), 0);
    unsetenv("SHMBUS_DAEMON_UID");
}

/*
 * A non-root daemon given a --group its user is not a member of cannot
 * give the bus's files to it: it refuses to start, naming the membership
 * it needs.
 */
static void test_rundir_group_not_member(void **state)
{
    struct du_daemon *d = *state;
    const char *group_root[] = {"--group", "0", NULL};
    char run[PATH_MAX], log[PATH_MAX];

    du_nobody_ids(&d->uid, &d->gid);
    assert_int_equal(du_stop(d), 0);
    snprintf(run, sizeof(run), "%s/run", d->dir);
    snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
    du_nobody_run_dir(d, run, d->gid, 0700);
    du_use_runtime_dir(d, run);
    assert_int_equal(du_launch_refused(d, log, group_root), 1);
    assert_int_equal(du_log_wait(log, "is not a member of group root", 1), 1);
}

#define RUNDIR_TEST(f) cmocka_unit_test_setup_teardown(f, du_setup, rundir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        RUNDIR_TEST(test_rundir_runtime_dir_checked),
        RUNDIR_TEST(test_rundir_runtime_dir_kept),
        RUNDIR_TEST(test_rundir_squatted_lock),
        RUNDIR_TEST(test_rundir_squatted_lock_not_file),
        RUNDIR_TEST(test_rundir_second_daemon_other_dir_refused),
        RUNDIR_TEST(test_rundir_other_uid_daemon_kept),
        RUNDIR_TEST(test_rundir_group_not_member),
    };

    tu_init();
    return cmocka_run_group_tests_name("rundir", tests, NULL, NULL);
}
