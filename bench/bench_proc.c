/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Processes of a run. The parent forks every measuring side as a child and
 * only supervises: it blocks in waitpid(), and when one child fails (or the
 * user interrupts) it kills the others, which may be waiting forever for the
 * failed peer, so that the caller always gets to reap and unlink. Children
 * leave with _exit(). Also here: CPU pinning, shared anonymous mappings,
 * the readiness pipes through which one side tells the other it is set up,
 * and the descriptor limit.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* Set by SIGINT/SIGTERM in the parent; read between waits. */
static volatile sig_atomic_t proc_interrupted;

static void proc_note_signal(int sig)
{
    (void)sig;
    proc_interrupted = 1;
}

void bench_signals_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = proc_note_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: waitpid() must return EINTR so that the parent stops
     * its children and goes on to unlink the segments. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int bench_interrupted(void)
{
    return proc_interrupted;
}

int bench_nofile_raise(uint64_t need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "shmbus-bench: getrlimit(RLIMIT_NOFILE): %s\n", strerror(errno));
        return -1;
    }
    /* Enough already (RLIM_INFINITY is the largest rlim_t). */
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max < need) {
        fprintf(stderr, "shmbus-bench: %llu descriptors needed, hard limit %llu (ulimit -Hn)\n",
                (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "shmbus-bench: setrlimit(RLIMIT_NOFILE, %llu): %s\n",
                (unsigned long long)need, strerror(errno));
        return -1;
    }
    return 0;
}

static void proc_kill_rest(struct bench_procs *ps)
{
    ps->stopping = 1;
    for (unsigned i = 0; i < ps->n; i++)
        if (ps->pid[i] > 0)
            kill(ps->pid[i], SIGKILL);
}

int bench_spawn(struct bench_procs *ps, bench_child_fn fn, void *arg)
{
    pid_t pid;

    /* A full table is a caller bug; treat it like a failed fork. */
    if (ps->n == BENCH_PROCS_MAX) {
        fprintf(stderr, "shmbus-bench: more than %u children\n", BENCH_PROCS_MAX);
        proc_kill_rest(ps);
        return -1;
    }
    /* Children end with _exit(), which drops stdio buffers: flush ours now
     * so that nothing printed so far is lost or printed twice. */
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "shmbus-bench: fork: %s\n", strerror(errno));
        proc_kill_rest(ps);
        return -1;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        _exit(fn(arg) == 0 ? 0 : 1);
    }
    ps->pid[ps->n++] = pid;
    ps->live++;
    return 0;
}

/* Account for a reaped child. @return 0 if it exited with status 0. */
static int proc_settle(struct bench_procs *ps, pid_t pid, int status)
{
    unsigned i;

    for (i = 0; i < ps->n && ps->pid[i] != pid; i++)
        ;
    /* Not one of ours: the only other child is a shmbusd the run started
     * (bench_daemon_start()), and it is not meant to exit before the run. */
    if (i == ps->n) {
        fprintf(stderr, "shmbus-bench: process %ld (shmbusd?) exited during the run\n", (long)pid);
        return -1;
    }
    ps->pid[i] = 0;
    ps->live--;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    /* The rest were killed on purpose after a first failure. */
    if (ps->stopping)
        return -1;
    if (WIFSIGNALED(status))
        fprintf(stderr, "shmbus-bench: child %ld killed by signal %d\n", (long)pid,
                WTERMSIG(status));
    else
        fprintf(stderr, "shmbus-bench: child %ld exited with status %d\n", (long)pid,
                WEXITSTATUS(status));
    return -1;
}

int bench_reap(struct bench_procs *ps)
{
    int failed = ps->stopping;

    while (ps->live > 0) {
        int status;
        pid_t pid;

        if (proc_interrupted && !ps->stopping) {
            fprintf(stderr, "shmbus-bench: interrupted, stopping children\n");
            proc_kill_rest(ps);
            failed = 1;
        }
        pid = waitpid(-1, &status, 0);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0) {
            fprintf(stderr, "shmbus-bench: waitpid: %s\n", strerror(errno));
            failed = 1;
            break;
        }
        if (proc_settle(ps, pid, status) < 0) {
            failed = 1;
            if (!ps->stopping)
                proc_kill_rest(ps);
        }
    }
    ps->n = 0;
    ps->live = 0;
    ps->stopping = 0;
    return failed ? -1 : 0;
}

int bench_pin_plan(int want)
{
    cpu_set_t set;

    if (!want) {
        printf("pinning: off (--no-pin)\n");
        return 0;
    }
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        printf("pinning: off (sched_getaffinity: %s)\n", strerror(errno));
        return 0;
    }
    /* Fewer than two usable CPUs: both sides would share one; leave it to
     * the scheduler rather than force it. */
    if (CPU_COUNT(&set) < 2 || !CPU_ISSET(0, &set) || !CPU_ISSET(1, &set)) {
        printf("pinning: off (CPUs 0 and 1 are not both available)\n");
        return 0;
    }
    printf("pinning: side A on CPU 0, side B on CPU 1\n");
    return 1;
}

void bench_pin_cpu(int pin, int cpu)
{
    cpu_set_t set;

    if (!pin)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        fprintf(stderr, "shmbus-bench: warning: sched_setaffinity(CPU %d): %s\n", cpu,
                strerror(errno));
}

void *bench_shared_alloc(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        fprintf(stderr, "shmbus-bench: mmap of %zu shared bytes: %s\n", len, strerror(errno));
        return NULL;
    }
    return p;
}

void bench_shared_free(void *p, size_t len)
{
    if (p != NULL)
        munmap(p, len);
}

int bench_pipe_open(struct bench_pipe *p)
{
    int fd[2];

    if (pipe(fd) != 0) {
        fprintf(stderr, "shmbus-bench: pipe: %s\n", strerror(errno));
        return -1;
    }
    p->rd = fd[0];
    p->wr = fd[1];
    return 0;
}

void bench_fd_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void bench_pipe_close(struct bench_pipe *p)
{
    bench_fd_close(&p->rd);
    bench_fd_close(&p->wr);
}

int bench_ready_post(int fd)
{
    const char b = 1;
    ssize_t n;

    do
        n = write(fd, &b, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        fprintf(stderr, "shmbus-bench: readiness pipe: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

int bench_ready_wait(int fd, unsigned count)
{
    char buf[64];

    while (count > 0) {
        ssize_t n = read(fd, buf, count < sizeof(buf) ? count : sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        /* EOF: every writer is gone, so a peer died before it was ready. */
        if (n == 0) {
            fprintf(stderr, "shmbus-bench: a peer exited before it was ready\n");
            return -1;
        }
        if (n < 0) {
            fprintf(stderr, "shmbus-bench: readiness pipe: %s\n", strerror(errno));
            return -1;
        }
        count -= (unsigned)n;
    }
    return 0;
}
