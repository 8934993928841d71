/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A private shmbusd for the commands that go through the daemon. It is
 * started with fork+exec, in the foreground, on a bus named after our pid,
 * with a new private directory as XDG_RUNTIME_DIR (so that its socket and
 * lock file are ours alone and no other daemon is disturbed), and it is
 * ready once shmbus_connect() succeeds. bench_daemon_stop() undoes all of
 * it from any state: SIGTERM and waitpid() (SIGKILL if it hangs), then the
 * segments of the bus a dying daemon may have left in /dev/shm, the
 * directory, and the caller's XDG_RUNTIME_DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "segfile.h"

/* Arguments of shmbusd: our fixed ones plus the caller's. */
#define DAEMON_ARGV_MAX 24
/* How long shmbusd may take to listen, and to exit after SIGTERM. */
#define DAEMON_READY_NS 5000000000ull
#define DAEMON_STOP_NS  5000000000ull
/* Pause between two looks at a daemon that is starting or stopping. */
#define DAEMON_POLL_NS 1000000L

const char *bench_daemon_path(const char *opt)
{
    const char *env = getenv("SHMBUS_BENCH_SHMBUSD");

    if (opt != NULL)
        return opt;
    return env != NULL && env[0] != '\0' ? env : SHMBUSD_PATH;
}

static void daemon_pause(void)
{
    struct timespec ts = {.tv_nsec = DAEMON_POLL_NS};

    nanosleep(&ts, NULL);
}

/* @return 0 if @p status is a clean exit, else -1 (message printed). */
static int daemon_judge(pid_t pid, int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "shmbus-bench: shmbusd %ld killed by signal %d\n", (long)pid,
                WTERMSIG(status));
    else
        fprintf(stderr, "shmbus-bench: shmbusd %ld exited with status %d\n", (long)pid,
                WEXITSTATUS(status));
    return -1;
}

/* In the child: become shmbusd. Never returns. */
static void daemon_exec(pid_t parent, char *const *argv)
{
    /* Its own process group: a ^C meant for the benchmark must not stop
     * the daemon under clients the parent is still stopping; the parent
     * stops it. Should the parent be killed outright, so is the daemon
     * (which then removes the segments no live process uses). */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* The parent died before prctl(): nobody would ever stop us. */
    if (getppid() != parent)
        _exit(127);
    execvp(argv[0], argv);
    fprintf(stderr, "shmbus-bench: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static int daemon_spawn(struct bench_daemon *d, const char *path, const char *const *args)
{
    const char *argv[DAEMON_ARGV_MAX + 1] = {path,   "--foreground", "--bus",
                                             d->bus, "--log-level",  "warn"};
    unsigned n = 6;
    pid_t parent = getpid();

    for (; args != NULL && *args != NULL; args++) {
        /* More is a caller bug: refuse rather than drop an argument. */
        if (n == DAEMON_ARGV_MAX) {
            fprintf(stderr, "shmbus-bench: more than %u shmbusd arguments\n", DAEMON_ARGV_MAX);
            return -1;
        }
        argv[n++] = *args;
    }
    argv[n] = NULL;
    /* The child execs or _exit()s: flush so nothing is printed twice. */
    fflush(stdout);
    fflush(stderr);
    d->pid = fork();
    if (d->pid < 0) {
        fprintf(stderr, "shmbus-bench: fork: %s\n", strerror(errno));
        d->pid = 0;
        return -1;
    }
    if (d->pid == 0)
        daemon_exec(parent, (char *const *)argv);
    return 0;
}

/* Connect until the daemon answers; a daemon that exits meanwhile failed. */
static int daemon_wait_ready(struct bench_daemon *d)
{
    uint64_t deadline = bench_now_ns() + DAEMON_READY_NS;

    for (;;) {
        shmbus_bus *bus;
        int status, rc = shmbus_connect(d->bus, &bus);

        if (rc == 0) {
            shmbus_close(bus);
            return 0;
        }
        /* Anything but "nobody listens yet" will not go away by waiting. */
        if (rc != SHMBUS_ERR_NO_DAEMON)
            return bench_fail("shmbus_connect to the new shmbusd", rc);
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            pid_t pid = d->pid;

            d->pid = 0;
            daemon_judge(pid, status);
            fprintf(stderr, "shmbus-bench: shmbusd exited before it listened\n");
            return -1;
        }
        if (bench_interrupted() || bench_now_ns() > deadline) {
            fprintf(stderr, "shmbus-bench: shmbusd %ld did not listen on bus %s\n", (long)d->pid,
                    d->bus);
            return -1;
        }
        daemon_pause();
    }
}

/* SIGTERM, then wait (SIGKILL after DAEMON_STOP_NS). @return 0 on a clean exit. */
static int daemon_terminate(struct bench_daemon *d)
{
    uint64_t deadline = bench_now_ns() + DAEMON_STOP_NS;
    pid_t pid = d->pid, got;
    int status = 0;

    /* Never started, or already reaped. */
    if (pid <= 0)
        return 0;
    d->pid = 0;
    kill(pid, SIGTERM);
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && bench_now_ns() < deadline)
        daemon_pause();
    if (got == 0) {
        fprintf(stderr, "shmbus-bench: shmbusd %ld ignored SIGTERM: killing it\n", (long)pid);
        kill(pid, SIGKILL);
        do
            got = waitpid(pid, &status, 0);
        while (got < 0 && errno == EINTR);
    }
    /* ECHILD: bench_reap() collected it, so it died during the run. */
    if (got < 0) {
        fprintf(stderr, "shmbus-bench: shmbusd %ld had exited during the run\n", (long)pid);
        return -1;
    }
    return daemon_judge(pid, status);
}

/* Unlink the entries of @p dir whose names start with @p prefix. @return how many. */
static unsigned daemon_unlink_prefixed(const char *dir, const char *prefix)
{
    size_t plen = strlen(prefix);
    DIR *dp = opendir(dir);
    struct dirent *e;
    unsigned n = 0;

    /* Nothing can be removed from a directory we cannot read: say so. */
    if (dp == NULL) {
        fprintf(stderr, "shmbus-bench: cannot read %s: %s\n", dir, strerror(errno));
        return 0;
    }
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strncmp(e->d_name, prefix, plen) != 0)
            continue;
        if (unlinkat(dirfd(dp), e->d_name, 0) == 0)
            n++;
        else
            fprintf(stderr, "shmbus-bench: cannot remove %s/%s: %s\n", dir, e->d_name,
                    strerror(errno));
    }
    closedir(dp);
    return n;
}

static int daemon_env_set(struct bench_daemon *d)
{
    const char *old = getenv("XDG_RUNTIME_DIR");

    if (old != NULL && (d->saved_xdg = strdup(old)) == NULL) {
        fprintf(stderr, "shmbus-bench: out of memory\n");
        return -1;
    }
    if (setenv("XDG_RUNTIME_DIR", d->dir, 1) < 0) {
        fprintf(stderr, "shmbus-bench: setenv XDG_RUNTIME_DIR: %s\n", strerror(errno));
        free(d->saved_xdg);
        d->saved_xdg = NULL;
        return -1;
    }
    d->xdg_set = 1;
    /* These would send the daemon and its clients to another runtime
     * directory, or trust another daemon: the bench's bus is its own. */
    unsetenv("SHMBUS_RUNTIME_DIR");
    unsetenv("SHMBUS_DAEMON_UID");
    return 0;
}

static void daemon_env_restore(struct bench_daemon *d)
{
    /* XDG_RUNTIME_DIR was never replaced. */
    if (!d->xdg_set)
        return;
    if (d->saved_xdg != NULL)
        setenv("XDG_RUNTIME_DIR", d->saved_xdg, 1);
    else
        unsetenv("XDG_RUNTIME_DIR");
    free(d->saved_xdg);
    d->saved_xdg = NULL;
    d->xdg_set = 0;
}

int bench_daemon_start(struct bench_daemon *d, const char *path, const char *const *args)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->bus, sizeof(d->bus), "bench-%ld", (long)getpid());
    snprintf(d->dir, sizeof(d->dir), "/tmp/shmbus-bench.XXXXXX");
    if (mkdtemp(d->dir) == NULL) {
        fprintf(stderr, "shmbus-bench: mkdtemp %s: %s\n", d->dir, strerror(errno));
        d->dir[0] = '\0';
        goto err;
    }
    if (daemon_env_set(d) < 0 || daemon_spawn(d, path, args) < 0 || daemon_wait_ready(d) < 0)
        goto err;
    printf("shmbusd: %s, pid %ld, bus %s, XDG_RUNTIME_DIR=%s\n", path, (long)d->pid, d->bus,
           d->dir);
    return 0;
err:
    bench_daemon_stop(d);
    return -1;
}

int bench_daemon_stop(struct bench_daemon *d)
{
    char prefix[SHMBUS_BUS_NAME_MAX + 16];
    int rc = daemon_terminate(d);
    unsigned left;

    if (d->bus[0] != '\0') {
        sbd_seg_bus_prefix(prefix, sizeof(prefix), d->bus);
        left = daemon_unlink_prefixed("/dev/shm", prefix);
        if (left > 0) {
            fprintf(stderr, "shmbus-bench: removed %u segments shmbusd left behind\n", left);
            rc = -1;
        }
    }
    if (d->dir[0] != '\0') {
        char run[sizeof(d->dir) + 8];

        /* The bus's runtime directory, emptied by a clean stop. */
        snprintf(run, sizeof(run), "%s/shmbus", d->dir);
        daemon_unlink_prefixed(run, "");
        rmdir(run);
        daemon_unlink_prefixed(d->dir, "");
        if (rmdir(d->dir) < 0)
            fprintf(stderr, "shmbus-bench: rmdir %s: %s\n", d->dir, strerror(errno));
    }
    daemon_env_restore(d);
    memset(d, 0, sizeof(*d));
    return rc;
}
