/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for tests that run shmbusd: one daemon per test, on its own bus
 * and in its own runtime directory (XDG_RUNTIME_DIR), started by fork+exec
 * and always stopped with SIGTERM by the teardown, which then checks that
 * the daemon exited 0 and left no segment and no socket behind (a stop
 * keeps the topics live processes use: a test releases what it holds
 * first, and its children are killed before the stop). Also raw
 * control-socket calls for protocol tests. A daemon can be run without
 * pidfd_open() (a seccomp filter, as a sandbox would install) and without
 * /proc (a mount namespace of its own). SHMBUSD_PATH names the daemon binary
 * (tests/CMakeLists.txt). Include instead of testutil.h.
 */
#ifndef SHMBUS_TESTS_DAEMONUTIL_H
#define SHMBUS_TESTS_DAEMONUTIL_H

#include "testutil.h"

#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>

#include "events.h"
#include "registry/admin.h"
#include "registry/wire.h"
#include "segfile.h"

#ifndef SHMBUSD_PATH
#error "SHMBUSD_PATH must name the shmbusd binary"
#endif

#define DU_READY_MS     10000 /* a fresh daemon answers a hello within this */
#define DU_STOP_MS      30000 /* and exits within this after SIGTERM */
#define DU_REPLY_S      10    /* raw sockets: longest wait for a reply */
#define DU_EXTRA_MAX    16    /* extra daemon arguments */
#define DU_DIR_TEMPLATE "/tmp/shmbus-dtest.XXXXXX"

struct du_daemon {
    pid_t pid;    /* 0 when not running */
    int status;   /* exit status at the last du_stop() (0 before any) */
    int no_pidfd; /* start it with pidfd_open() failing with EPERM (du_deny_pidfd()) */
    int no_proc;  /* start it without /proc (du_hide_proc()) */
    uid_t uid;    /* run it as this uid and gid (0: as the test) */
    gid_t gid;
    char bus[SHMBUS_BUS_NAME_MAX + 1];
    char dir[sizeof(DU_DIR_TEMPLATE)];
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static inline int64_t du_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void du_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Like tu_wait(), but gives up after @p ms. @return the exit status,
 * 128 + signal, or -1 on timeout (the process is left running). */
static inline int du_wait_ms(pid_t pid, int ms)
{
    int64_t end = du_now_ms() + ms;
    int st = 0;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);

        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (du_now_ms() > end)
            return -1;
        du_sleep_ms(5);
    }
    for (int i = 0; i < TU_MAX_KIDS; i++)
        if (tu_kids[i] == pid)
            tu_kids[i] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#if defined(__x86_64__)
#define DU_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define DU_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/*
 * Make pidfd_open() fail with EPERM in this process and whatever it execs:
 * a seccomp filter (after PR_SET_NO_NEW_PRIVS, so no privilege is needed),
 * as a container's profile would. Other system calls are allowed; calls of
 * another architecture's ABI too (the filter tests the number of ours).
 * @return 0 or -errno (seccomp unavailable).
 */
static inline int du_deny_pidfd(void)
{
    struct sock_filter f[] = {
#ifdef DU_AUDIT_ARCH
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DU_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#endif
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f};

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
        return -errno;
    return 0;
}

/* Can du_deny_pidfd() work here? Tried in a child. @return 1 or 0. */
static inline int du_deny_pidfd_works(void)
{
    pid_t pid = fork();
    int st;

    if (pid == 0)
        _exit(du_deny_pidfd() == 0 && syscall(SYS_pidfd_open, getpid(), 0) < 0 && errno == EPERM
                  ? 0
                  : 1);
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Unmount /proc for this process and whatever it execs, in a mount
 * namespace of its own (needs CAP_SYS_ADMIN). @return 0 or -errno. */
static inline int du_hide_proc(void)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        umount2("/proc", MNT_DETACH) < 0)
        return -errno;
    return access("/proc/self/stat", F_OK) < 0 ? 0 : -EEXIST;
}

/* Can du_hide_proc() work here? Tried in a child. @return 1 or 0. */
static inline int du_hide_proc_works(void)
{
    pid_t pid = fork();
    int st;

    if (pid == 0)
        _exit(du_hide_proc() == 0 ? 0 : 1);
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/*
 * fork+exec shmbusd --bus BUS --foreground --log-level warn EXTRA...,
 * with its stderr on @p err_fd (-1: ours), without pidfd_open() if
 * d->no_pidfd, without /proc if d->no_proc, as d->uid if set. It gets SIGTERM if we die,
 * so it still stops cleanly (removing its socket and the topics no live
 * process uses). @return its pid or -errno.
 */
static inline pid_t du_spawn(const struct du_daemon *d, const char *const *extra, int err_fd)
{
    const char *argv[DU_EXTRA_MAX + 8] = {SHMBUSD_PATH,   "--bus",       d->bus,
                                          "--foreground", "--log-level", "warn"};
    pid_t parent = getpid(), pid;
    int n = 6;

    for (; extra != NULL && *extra != NULL && n < DU_EXTRA_MAX + 6; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* A change of uid clears the death signal: drop privileges first. */
        if (d->uid != 0 && tu_become(d->uid, d->gid) < 0)
            _exit(127);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        if (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0)
            _exit(127);
        if ((d->no_proc && du_hide_proc() < 0) || (d->no_pidfd && du_deny_pidfd() < 0))
            _exit(127);
        execv(SHMBUSD_PATH, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Retry shmbus_connect() until the daemon answers, up to @p ms.
 * @return 0, -ECHILD if the daemon exited, SHMBUS_ERR_TIMEOUT, or the
 *         unexpected error shmbus_connect() returned. */
static inline int du_wait_ready(struct du_daemon *d, int ms)
{
    int64_t end = du_now_ms() + ms;

    for (;;) {
        shmbus_bus *bus = NULL;
        int rc = shmbus_connect(d->bus, &bus);

        if (rc == 0) {
            shmbus_close(bus);
            return 0;
        }
        if (rc != SHMBUS_ERR_NO_DAEMON)
            return rc;
        if (waitpid(d->pid, &rc, WNOHANG) == d->pid) {
            d->pid = 0;
            return -ECHILD;
        }
        if (du_now_ms() > end)
            return SHMBUS_ERR_TIMEOUT;
        du_sleep_ms(10);
    }
}

/* SIGTERM (or @p sig) the daemon and reap it; SIGKILL after DU_STOP_MS.
 * @return its exit status (-1: it had to be killed), also kept in d->status. */
static inline int du_stop_sig(struct du_daemon *d, int sig)
{
    int st;

    if (d->pid <= 0)
        return d->status;
    kill(d->pid, sig);
    st = du_wait_ms(d->pid, DU_STOP_MS);
    if (st < 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
    }
    d->pid = 0;
    d->status = st;
    return st;
}

static inline int du_stop(struct du_daemon *d)
{
    return du_stop_sig(d, SIGTERM);
}

/* Is @p rest, a segment name after the bus's prefix, the daemon's events
 * topic (at its first name, or a generation: ".GEN.TOPIC")? */
static inline int du_segment_events(const char *rest)
{
    if (rest[0] == '.' && strchr(rest + 1, '.') != NULL)
        rest = strchr(rest + 1, '.') + 1;
    return strcmp(rest, SBD_EVENTS_TOPIC) == 0;
}

/* Count the segments of bus @p bus in /dev/shm; with @p remove, remove
 * them. The daemon's events topic, there while it serves, is not counted
 * while it runs; once it stopped (@p remove) it is. */
static inline int du_segments(const char *bus, int remove)
{
    char prefix[SHMBUS_BUS_NAME_MAX + 16];
    DIR *dir = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;

    if (dir == NULL)
        return 0;
    sbd_seg_bus_prefix(prefix, sizeof(prefix), bus);
    while ((e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (!remove && du_segment_events(e->d_name + strlen(prefix)))
            continue;
        n++;
        if (remove) {
            print_error("left behind: /dev/shm/%s\n", e->d_name);
            shmbus_topic_unlink(e->d_name);
        }
    }
    closedir(dir);
    return n;
}

/* Remove the test's directory and whatever is in it, one level of
 * directories included (the bus's runtime directory, XDG_RUNTIME_DIR/shmbus,
 * and its lock file). */
static inline void du_remove_dir(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *e;
    char f[PATH_MAX];

    if (dir == NULL)
        return;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(f, sizeof(f), "%s/%s", path, e->d_name) >= sizeof(f))
            continue; /* no such path in a test's directory */
        if (e->d_type == DT_DIR)
            du_remove_dir(f);
        else
            unlink(f);
    }
    closedir(dir);
    rmdir(path);
}

/* A fresh bus name and runtime directory; XDG_RUNTIME_DIR points there.
 * @return 0 or -errno. */
static inline int du_prepare(struct du_daemon *d)
{
    static unsigned counter;
    int rc;

    memset(d, 0, sizeof(*d));
    snprintf(d->bus, sizeof(d->bus), "t%dx%u", (int)getpid(), counter++);
    memcpy(d->dir, DU_DIR_TEMPLATE, sizeof(DU_DIR_TEMPLATE));
    if (mkdtemp(d->dir) == NULL) {
        d->dir[0] = '\0';
        return -errno;
    }
    if (setenv("XDG_RUNTIME_DIR", d->dir, 1) < 0)
        return -errno;
    unsetenv("SHMBUS_BUS");
    unsetenv("SHMBUS_RUNTIME_DIR");
    unsetenv("SHMBUS_DAEMON_UID");
    unsetenv("SHMBUS_SOCKET");
    rc = shmbus_bus_resolve(d->bus, NULL, d->sock, sizeof(d->sock));
    return rc;
}

/* Start the daemon of a prepared bus, its stderr on @p out (-1: the
 * test's), and wait until it serves. @return 0 or an error (the daemon is
 * then stopped). */
static inline int du_launch_out(struct du_daemon *d, const char *const *extra, int out)
{
    int rc;

    d->pid = du_spawn(d, extra, out);
    if (d->pid < 0) {
        rc = d->pid;
        d->pid = 0;
        return rc;
    }
    rc = du_wait_ready(d, DU_READY_MS);
    if (rc < 0) {
        print_error("shmbusd did not come up: %s\n", shmbus_strerror(rc));
        du_stop_sig(d, SIGKILL);
    }
    return rc;
}

/* du_launch_out() with the daemon's stderr on the test's. */
static inline int du_launch(struct du_daemon *d, const char *const *extra)
{
    return du_launch_out(d, extra, -1);
}

/* du_launch_out() with the daemon's stderr in the file daemon.log of its
 * directory (emptied first), whose name @p path gets. @return 0 or an
 * error. */
static inline int du_launch_log(struct du_daemon *d, const char *const *extra, char *path,
                                size_t cap)
{
    int fd, rc;

    snprintf(path, cap, "%s/daemon.log", d->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    rc = du_launch_out(d, extra, fd);
    close(fd);
    return rc;
}

/* Restart the daemon with --log-level info and its log in @p path. */
static inline void du_launch_logged(struct du_daemon *d, char *path, size_t cap)
{
    const char *info[] = {"--log-level", "info", NULL};

    assert_int_equal(du_launch_log(d, info, path, cap), 0);
}

/* CPU time (user and system, all threads) process @p pid has used, in ms
 * (/proc/PID/stat: fields 14 and 15, in clock ticks of 10 ms). */
static inline int64_t du_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut, st;
    const char *p;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The fields are counted after the ')' that ends the command name
     * (which may hold spaces): state, then 10 before utime. */
    p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        fail_msg("%s: cannot read its CPU times", path);
    return (int64_t)((ut + st) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}
/* Subscriber slots of @p t taken (in any state but FREE) by process @p pid. */
static inline int du_slots_of(const shmbus_topic *t, pid_t pid)
{
    shmbus_topic_info info;
    uint32_t opid;
    uint64_t start;
    int n = 0;

    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    for (uint32_t i = 0; i < info.max_subscribers; i++)
        n += sb_admin_owner(t, SB_ADMIN_SLOT, i, &opid, &start) && (pid_t)opid == pid;
    return n;
}

/* Lines of the file @p path (a daemon's captured stderr) that contain
 * @p needle; -1 if it cannot be read. */
static inline int du_log_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int n = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* du_log_count() once at least @p want lines contain @p needle, or after
 * 5 s: the daemon's logging thread writes a line some time after the
 * event it tells of. */
static inline int du_log_wait(const char *path, const char *needle, int want)
{
    int64_t end = du_now_ms() + 5000;
    int n;

    while ((n = du_log_count(path, needle)) < want && du_now_ms() < end)
        du_sleep_ms(5);
    return n;
}

/* Number of descriptors process @p pid has open, or -1. */
static inline int du_fd_count(pid_t pid)
{
    char path[64];
    struct dirent *e;
    DIR *dir;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    dir = opendir(path);
    if (dir == NULL)
        return -1;
    while ((e = readdir(dir)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* Undo a setup that failed before its daemon served (cmocka runs no
 * teardown after a failed setup): remove what the bus left in /dev/shm and
 * the runtime directory, if made, and free @p d. */
static inline void du_discard(struct du_daemon *d)
{
    du_segments(d->bus, 1);
    if (d->dir[0] != '\0')
        du_remove_dir(d->dir);
    free(d);
}

/*
 * cmocka setup: *state holds NULL or a NULL-terminated list of extra daemon
 * arguments (cmocka_unit_test_prestate_setup_teardown()); it is replaced
 * by the running daemon. A failed setup cleans up itself (cmocka runs no
 * teardown after it).
 */
static inline int du_setup(void **state)
{
    const char *const *extra = *state;
    struct du_daemon *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return -1;
    if (du_prepare(d) < 0 || du_launch(d, extra) < 0) {
        du_discard(d);
        return -1;
    }
    *state = d;
    return 0;
}

/*
 * cmocka teardown, also after a failed test: kill and reap the test's
 * children, stop the daemon, check what it left, remove the directory.
 * Everything is undone before anything is asserted.
 */
static inline int du_teardown(void **state)
{
    struct du_daemon *d = *state;
    int status, segs, sock_left;

    tu_cleanup(); /* SIGKILL and reap every tu_fork() child */
    status = du_stop(d);
    segs = du_segments(d->bus, 1);
    sock_left = access(d->sock, F_OK) == 0;
    du_remove_dir(d->dir);
    free(d);
    *state = NULL;
    if (status != 0)
        fail_msg("shmbusd exit status %d, want 0 (-1: it did not stop)", status);
    if (segs != 0)
        fail_msg("%d segments of the bus left in /dev/shm after the daemon stopped", segs);
    if (sock_left)
        fail_msg("socket file left after the daemon stopped");
    return 0;
}

/* ------------------------------------------------------------- raw socket */

/* Connect a bare SOCK_SEQPACKET socket to the daemon. @return it, or -errno. */
static inline int du_raw_connect(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = DU_REPLY_S};
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (s < 0)
        return -errno;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;

        close(s);
        return -e;
    }
    return s;
}

/* Send a header with every field chosen by the caller, then @p body_len
 * bytes of @p body, as one packet. @return 0 or -errno. */
static inline int du_raw_send(int s, uint32_t magic, uint16_t version, uint16_t type, uint32_t len,
                              uint32_t req, const void *body, size_t body_len)
{
    struct sb_wire_hdr h = {magic, version, type, len, req};
    struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)body, body_len}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = body_len ? 2 : 1};

    return sendmsg(s, &m, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* A well-formed request (header filled in correctly). */
static inline int du_raw_req(int s, uint16_t type, uint32_t req, const void *body, uint32_t len)
{
    return du_raw_send(s, SB_WIRE_MAGIC, SHMBUS_PROTOCOL_VERSION, type, len, req, body, len);
}

/* One reply, checked for shape. */
struct du_reply {
    long n;        /* bytes received; 0: the daemon closed; < 0: -errno */
    uint16_t type; /* SB_MSG_OK or SB_MSG_ERR */
    uint32_t req;
    uint32_t len;
    int code; /* ERR: its code */
    char text[SB_WIRE_ERR_TEXT];
    int fd; /* a descriptor that came with it, or -1 */
    uint8_t body[SB_WIRE_MAX];
};

/* Receive one reply. @return r->n. A descriptor that came with it is kept in r->fd. */
static inline long du_raw_reply(int s, struct du_reply *r)
{
    uint8_t buf[SB_WIRE_MAX];
    struct sb_wire_hdr h;
    struct sb_wire_err e;

    memset(r, 0, sizeof(*r));
    r->n = sb_wire_recv(s, buf, sizeof(buf), &r->fd);
    if (r->n < (long)sizeof(h))
        return r->n;
    memcpy(&h, buf, sizeof(h));
    r->type = h.magic == SB_WIRE_MAGIC && h.version == SHMBUS_PROTOCOL_VERSION ? h.type : 0;
    r->req = h.req;
    r->len = h.len;
    if (h.len != (uint32_t)r->n - sizeof(h))
        r->type = 0; /* malformed: the caller's check fails */
    else
        memcpy(r->body, buf + sizeof(h), h.len);
    if (r->type == SB_MSG_ERR && h.len == sizeof(e)) {
        memcpy(&e, r->body, sizeof(e));
        r->code = e.code;
        memcpy(r->text, e.text, sizeof(r->text));
        r->text[sizeof(r->text) - 1] = '\0';
    }
    return r->n;
}

/* Any request id (the daemon could not read the request's header). */
#define DU_ANY_REQ UINT32_MAX

/* Assert that the next reply on @p sock_ is ERR @p want_ for request @p rq_. */
#define assert_raw_err(sock_, rq_, want_)                                                          \
    do {                                                                                           \
        struct du_reply r_;                                                                        \
        long n_ = du_raw_reply((sock_), &r_);                                                      \
        if (r_.fd >= 0)                                                                            \
            close(r_.fd);                                                                          \
        if (n_ <= 0)                                                                               \
            fail_msg("no reply (%ld: %s), want ERR %d (%s)", n_,                                   \
                     n_ == 0 ? "daemon closed" : shmbus_strerror((int)n_), (int)(want_),           \
                     shmbus_strerror(want_));                                                      \
        if (r_.type != SB_MSG_ERR || r_.len != sizeof(struct sb_wire_err))                         \
            fail_msg("reply type %#x len %u, want ERR %d (%s)", r_.type, r_.len, (int)(want_),     \
                     shmbus_strerror(want_));                                                      \
        if (r_.code != (want_) || ((uint32_t)(rq_) != DU_ANY_REQ && r_.req != (uint32_t)(rq_)))    \
            fail_msg("ERR %d (%s: %s) req %u, want %d (%s) req %u", r_.code,                       \
                     shmbus_strerror(r_.code), r_.text, r_.req, (int)(want_),                      \
                     shmbus_strerror(want_), (unsigned)(rq_));                                     \
    } while (0)

/* Assert that the next reply on @p s is OK for request @p req; returns its body length. */
static inline uint32_t du_raw_ok(int s, uint32_t req, struct du_reply *r)
{
    long n = du_raw_reply(s, r);

    if (n <= 0)
        fail_msg("no reply (%ld) to request %u", n, req);
    if (r->type != SB_MSG_OK || r->req != req)
        fail_msg("reply type %#x (ERR %d: %s) req %u, want OK for %u", r->type, r->code, r->text,
                 r->req, req);
    return r->len;
}

/* Say hello on a raw socket as process @p pid (normally ours). */
static inline int du_raw_hello(int s, uint32_t req, uint32_t pid)
{
    struct sb_wire_hello h = {.pid = pid};

    snprintf(h.name, sizeof(h.name), "rawtest");
    return du_raw_req(s, SB_MSG_HELLO, req, &h, sizeof(h));
}

/* ------------------------------------------------------------- children */

/* Read @p n bytes from a pipe within @p ms. @return bytes read (fewer:
 * the writers closed it or time ran out). */
static inline int du_read_ms(int fd, void *buf, int n, int ms)
{
    int64_t end = du_now_ms() + ms;
    int got = 0;

    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = end - du_now_ms();
        ssize_t r;

        if (left <= 0 || poll(&p, 1, (int)left) == 0)
            break;
        r = read(fd, (char *)buf + got, (size_t)(n - got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (int)r;
    }
    return got;
}

/* Write one byte to a pipe (a child's "ready", or a "go" to a child). */
static inline int du_signal(int fd)
{
    char c = 1;

    return write(fd, &c, 1) == 1 ? 0 : -1;
}

/* Start a child running @p fn(@p arg) (tu_fork()), with the write end of
 * a pipe in *@p ready, and wait until it writes its byte (du_signal()):
 * it is set up. @return its pid. */
static inline pid_t du_fork_ready(int (*fn)(void *), void *arg, int *ready)
{
    int p[2];
    char c;
    pid_t kid;

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    *ready = p[1];
    kid = tu_fork(fn, arg);
    close(p[1]);
    assert_int_equal(du_read_ms(p[0], &c, 1, DU_READY_MS), 1);
    close(p[0]);
    return kid;
}

#endif
