/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon as a service, with a real shmbusd: where the control socket
 * is (shmbusd --socket, $SHMBUS_SOCKET, the system bus a client falls
 * back to), the systemd notify protocol (READY=1, STOPPING=1) through a
 * real datagram socket, and log lines for the journal ($JOURNAL_STREAM).
 * This file is built with its own copy of libshmbus's client.c whose
 * system directory is SB_RUNTIME_DIR_SYSTEM in the build tree
 * (tests/CMakeLists.txt).
 */
#include "trustutil.h"

#include <sys/stat.h>

#ifndef SB_RUNTIME_DIR_SYSTEM
#error "SB_RUNTIME_DIR_SYSTEM must name the test's system bus directory"
#endif

#define SVC_NOTIFY_MS 10000 /* a notification arrives within this */

/* cmocka setup: a bus and its directory, no daemon yet. */
static int svc_setup(void **state)
{
    struct du_daemon *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return -1;
    if (du_prepare(d) < 0) {
        du_discard(d);
        return -1;
    }
    *state = d;
    return 0;
}

/* cmocka teardown: the variables a test set go, then du_teardown(), then
 * the system bus's directory, empty once its daemon has stopped. */
static int svc_teardown(void **state)
{
    int rc;

    unsetenv("SHMBUS_SOCKET");
    unsetenv("NOTIFY_SOCKET");
    unsetenv("JOURNAL_STREAM");
    rc = du_teardown(state);
    rmdir(SB_RUNTIME_DIR_SYSTEM);
    return rc;
}

/* Start the daemon with @p extra and wait until it answers. */
static void svc_launch(struct du_daemon *d, const char *const *extra)
{
    assert_int_equal(du_launch(d, extra), 0);
}

/* Run a daemon that must fail to start: @return its exit status. */
static int svc_refused(struct du_daemon *d, const char *const *extra)
{
    int err = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_t pid = du_spawn(d, extra, err);

    close(err);
    assert_true(pid > 0);
    return du_wait_ms(pid, DU_STOP_MS);
}

static int svc_connect(const char *bus)
{
    shmbus_bus *b = NULL;
    int rc = shmbus_connect(bus, &b);

    shmbus_close(b);
    return rc;
}

static void test_socket_flag_serves_there(void **state)
{
    struct du_daemon *d = *state;
    char sock[108], lock[120], dir[64];
    const char *extra[] = {"--socket", sock, NULL};
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/srv", d->dir);
    snprintf(sock, sizeof(sock), "%s/bus.sock", dir);
    snprintf(lock, sizeof(lock), "%s/bus.lock", dir);
    setenv("SHMBUS_SOCKET", sock, 1);
    svc_launch(d, extra);
    /* The directory made as a runtime directory is, the lock beside. */
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(access(lock, F_OK), 0);
    assert_int_not_equal(access(d->sock, F_OK), 0);
    /* Without the variable the client looks in its runtime directory. */
    unsetenv("SHMBUS_SOCKET");
    assert_shmbus_rc(svc_connect(d->bus), SHMBUS_ERR_NO_DAEMON);
    /* The /dev/shm lock keeps a second daemon of the bus out. */
    assert_int_not_equal(svc_refused(d, NULL), 0);
    setenv("SHMBUS_SOCKET", sock, 1);
    assert_shmbus_ok(svc_connect(d->bus));
    assert_int_equal(du_stop(d), 0);
    assert_int_not_equal(access(sock, F_OK), 0);
    assert_int_not_equal(access(lock, F_OK), 0);
}

static void test_socket_env_daemon_and_client(void **state)
{
    struct du_daemon *d = *state;
    char sock[108];

    snprintf(sock, sizeof(sock), "%s/env.sock", d->dir);
    setenv("SHMBUS_SOCKET", sock, 1);
    svc_launch(d, NULL); /* the daemon takes it from the environment */
    assert_int_equal(access(sock, F_OK), 0);
    assert_shmbus_ok(svc_connect(d->bus));
}

static void test_socket_path_checked(void **state)
{
    struct du_daemon *d = *state;
    char long_path[200], out[108];
    const char *relative[] = {"--socket", "bus.sock", NULL};
    const char *dir[] = {"--socket", "/tmp/", NULL};
    const char *too_long[] = {"--socket", long_path, NULL};

    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    assert_int_equal(svc_refused(d, relative), 2);
    assert_int_equal(svc_refused(d, dir), 2);
    assert_int_equal(svc_refused(d, too_long), 2);
    setenv("SHMBUS_SOCKET", "bus.sock", 1);
    assert_shmbus_rc(shmbus_bus_resolve(d->bus, NULL, out, sizeof(out)), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(svc_connect(d->bus), SHMBUS_ERR_INVALID);
    assert_int_equal(svc_refused(d, NULL), 2);
    setenv("SHMBUS_SOCKET", long_path, 1);
    assert_shmbus_rc(shmbus_bus_resolve(d->bus, NULL, out, sizeof(out)), -ENAMETOOLONG);
    assert_int_equal(svc_refused(d, NULL), 2);
}

/* A socket file nobody listens on at @p path, as a killed daemon leaves. */
static void svc_dead_socket(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    assert_true(s >= 0);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    close(s);
}

static void test_system_bus_fallback(void **state)
{
    struct du_daemon *d = *state;
    char sock[108], own[108];
    const char *extra[] = {"--socket", sock, NULL};

    du_remove_dir(SB_RUNTIME_DIR_SYSTEM); /* a failed run's */
    snprintf(sock, sizeof(sock), "%s/%s.sock", SB_RUNTIME_DIR_SYSTEM, d->bus);
    svc_launch(d, extra); /* found by the fallback itself */
    /* Our own directory has no socket: the system bus answers. */
    assert_int_not_equal(access(d->sock, F_OK), 0);
    assert_shmbus_ok(svc_connect(d->bus));
    /* An explicit directory is taken at its word. */
    setenv("SHMBUS_RUNTIME_DIR", d->dir, 1);
    assert_shmbus_rc(svc_connect(d->bus), SHMBUS_ERR_NO_DAEMON);
    unsetenv("SHMBUS_RUNTIME_DIR");
    /* Our own daemon's socket, left by its death: that bus is down. */
    snprintf(own, sizeof(own), "%s/shmbus", d->dir);
    assert_int_equal(mkdir(own, 0700), 0);
    svc_dead_socket(d->sock);
    assert_shmbus_rc(svc_connect(d->bus), SHMBUS_ERR_NO_DAEMON);
    unlink(d->sock);
    assert_shmbus_ok(svc_connect(d->bus));
}

/* May only root write every directory above the system bus's (trust.c's
 * rule for trusting a directory's owner)? */
static int svc_system_root_held(void)
{
    char path[] = SB_RUNTIME_DIR_SYSTEM;
    struct stat st;
    char *slash;

    while ((slash = strrchr(path, '/')) != NULL) {
        slash[slash == path] = '\0'; /* "/x" becomes "/" */
        if (stat(path, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) != 0)
            return 0;
        if (slash == path)
            return 1;
    }
    return 0;
}

#define SVC_GROUPS 256 /* the test's own supplementary groups, kept aside */

struct svc_member {
    const struct du_daemon *d;
    int in_group; /* a member of the daemon's group, or of none */
    int want;     /* shmbus_connect()'s answer */
};

/* Child: root, in the daemon's group or in none, as a member of the
 * system bus's group would be: connect with the system bus's fallback.
 * @return 0 when shmbus_connect() gave m->want. */
static int svc_member_connect(void *arg)
{
    const struct svc_member *m = arg;
    shmbus_bus *bus = NULL;
    int rc;

    if (setgroups(m->in_group ? 1 : 0, &m->d->gid) < 0)
        return 2;
    rc = shmbus_connect(m->d->bus, &bus);
    shmbus_close(bus);
    return rc == m->want ? 0 : 1;
}

/*
 * The system bus as the unit runs it: its daemon another user (nobody for
 * shmbus) with --group, its directory that user's, 0710, given to the
 * group. A client of another uid finds it without settings, and trusts
 * it only as a member of the group (the directory owner's rule).
 */
static void test_system_bus_other_user(void **state)
{
    struct du_daemon *d = *state;
    char sock[108], gid[16];
    const char *extra[] = {"--group", gid, "--socket", sock, NULL};
    struct svc_member in = {.d = d, .in_group = 1, .want = 0};
    struct svc_member out = {.d = d, .in_group = 0, .want = SHMBUS_ERR_UNTRUSTED};
    gid_t groups[SVC_GROUPS];
    int n, rc;

    du_nobody_ids(&d->uid, &d->gid);
    if (!svc_system_root_held())
        skip(); /* the build tree is not below directories only root may write */
    du_remove_dir(SB_RUNTIME_DIR_SYSTEM); /* a failed run's */
    assert_int_equal(mkdir(SB_RUNTIME_DIR_SYSTEM, 0710), 0);
    assert_int_equal(chown(SB_RUNTIME_DIR_SYSTEM, d->uid, d->gid), 0);
    snprintf(gid, sizeof(gid), "%u", (unsigned)d->gid);
    snprintf(sock, sizeof(sock), "%s/%s.sock", SB_RUNTIME_DIR_SYSTEM, d->bus);
    /* Its coming up is watched as a member of the group. */
    n = getgroups(SVC_GROUPS, groups);
    assert_true(n >= 0);
    assert_int_equal(setgroups(1, &d->gid), 0);
    rc = du_launch(d, extra);
    assert_int_equal(setgroups((size_t)n, groups), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(du_wait_ms(tu_fork(svc_member_connect, &in), DU_READY_MS), 0);
    assert_int_equal(du_wait_ms(tu_fork(svc_member_connect, &out), DU_READY_MS), 0);
}

/* A datagram socket for NOTIFY_SOCKET: @p name a path or "@abstract". */
static int svc_notify_socket(const char *name)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(s >= 0);
    memcpy(a.sun_path, name, strlen(name));
    if (name[0] == '@')
        a.sun_path[0] = '\0';
    assert_int_equal(bind(s, (struct sockaddr *)&a, len), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    return s;
}

/* The next notification on @p s into @p buf, or fail. */
static void svc_notify_recv(int s, char *buf, size_t cap)
{
    struct pollfd p = {.fd = s, .events = POLLIN};
    ssize_t n;

    assert_int_equal(poll(&p, 1, SVC_NOTIFY_MS), 1);
    n = recv(s, buf, cap - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
}

/* READY=1 once the socket answers, STOPPING=1 at SIGTERM, over @p name. */
static void svc_notify_run(struct du_daemon *d, const char *name)
{
    int s = svc_notify_socket(name);
    char msg[512], want[64];

    d->pid = du_spawn(d, NULL, -1);
    assert_true(d->pid > 0);
    svc_notify_recv(s, msg, sizeof(msg));
    /* Ready means serving: the first connect after it succeeds. */
    assert_shmbus_ok(svc_connect(d->bus));
    assert_non_null(strstr(msg, "READY=1\n"));
    snprintf(want, sizeof(want), "MAINPID=%d", (int)d->pid);
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, "STATUS=serving bus"));
    kill(d->pid, SIGTERM);
    svc_notify_recv(s, msg, sizeof(msg));
    assert_non_null(strstr(msg, "STOPPING=1\n"));
    close(s);
    assert_int_equal(du_stop(d), 0);
}

static void test_notify_path_socket(void **state)
{
    struct du_daemon *d = *state;
    char name[108];

    snprintf(name, sizeof(name), "%s/notify", d->dir);
    svc_notify_run(d, name);
}

static void test_notify_abstract_socket(void **state)
{
    struct du_daemon *d = *state;
    char name[108];

    snprintf(name, sizeof(name), "@shmbus-test-notify-%s", d->bus);
    svc_notify_run(d, name);
}

/* A notify socket nobody listens on: logged, and the bus serves anyway. */
static void test_notify_unreachable_not_fatal(void **state)
{
    struct du_daemon *d = *state;
    char name[108], path[PATH_MAX];

    snprintf(name, sizeof(name), "%s/no-manager", d->dir);
    setenv("NOTIFY_SOCKET", name, 1);
    du_launch_logged(d, path, sizeof(path));
    assert_shmbus_ok(svc_connect(d->bus));
    assert_int_equal(du_stop(d), 0);
    assert_int_equal(du_log_count(path, "cannot notify the service manager"), 2);
}

/* Start the daemon at info with stderr in its log file, JOURNAL_STREAM
 * naming that file (@p same) or another; @return the log's path. */
static void svc_log_start(struct du_daemon *d, int same, char *path, size_t cap)
{
    const char *info[] = {"--log-level", "info", NULL};
    char v[64];
    struct stat st;
    int fd;

    snprintf(path, cap, "%s/daemon.log", d->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    close(fd);
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (same ? 0 : 1));
    setenv("JOURNAL_STREAM", v, 1);
    assert_int_equal(du_launch_log(d, info, path, cap), 0);
}

/* svc_log_start(), then stop the daemon. */
static void svc_log_run(struct du_daemon *d, int same, char *path, size_t cap)
{
    svc_log_start(d, same, path, cap);
    assert_int_equal(du_stop(d), 0);
}

static void test_log_journal_priorities(void **state)
{
    struct du_daemon *d = *state;
    char path[PATH_MAX];

    svc_log_run(d, 1, path, sizeof(path));
    assert_int_equal(du_log_count(path, "<6>serving bus"), 1);
    assert_int_equal(du_log_count(path, "<6>signal 15: shutting down"), 1);
    assert_int_equal(du_log_count(path, "shmbusd info"), 0); /* no stamp, no level word */
    /* Another stream than stderr's: the plain format. */
    svc_log_run(d, 0, path, sizeof(path));
    assert_int_equal(du_log_count(path, "<6>"), 0);
    assert_int_equal(du_log_count(path, "shmbusd info  serving bus"), 1);
}

/* A client names itself with a newline and a priority prefix: the
 * journal must get one line at the daemon's priority, not a forged one. */
static void test_log_control_bytes_escaped(void **state)
{
    struct du_daemon *d = *state;
    struct sb_wire_hello h = {.pid = (uint32_t)getpid()};
    struct du_reply r;
    char path[PATH_MAX];
    int s;

    svc_log_start(d, 1, path, sizeof(path));
    snprintf(h.name, sizeof(h.name), "evil\n<0>forged\r");
    s = du_raw_connect(d->sock);
    assert_true(s >= 0);
    assert_int_equal(du_raw_req(s, SB_MSG_HELLO, 1, &h, sizeof(h)), 0);
    du_raw_ok(s, 1, &r);
    assert_true(du_log_wait(path, "(evil\\x0a<0>forged\\x0d)", 1) >= 1);
    close(s);
    assert_int_equal(du_stop(d), 0);
    /* Every line that names it (connected, disconnected) escapes it. */
    assert_int_equal(du_log_count(path, "forged"), du_log_count(path, "(evil\\x0a<0>forged\\x0d)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_socket_flag_serves_there, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_socket_env_daemon_and_client, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_socket_path_checked, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_system_bus_fallback, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_system_bus_other_user, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_notify_path_socket, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_notify_abstract_socket, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_notify_unreachable_not_fatal, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_log_journal_priorities, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_log_control_bytes_escaped, svc_setup, svc_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("service", tests, NULL, NULL);
}
