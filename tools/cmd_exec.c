/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker pool of `shmbus sub --ack --exec CMD`: one `sh -c CMD` per
 * message, up to --inflight at once, acknowledged when it exits 0 and
 * nacked otherwise (a non-zero status or death by a signal).
 *
 * The payload reaches the command's standard input as a file in memory (a
 * memfd written in full, then rewound), not a pipe: a payload larger than a
 * pipe's buffer can never block the pool while the command has not read
 * it yet, nothing has to pump it, and the command may read it at its own
 * pace or seek it.
 *
 * Waiting on both the subscriber and the commands, without spinning: the
 * subscriber is a futex, the commands are SIGCHLD, and no call waits on
 * both. SIGCHLD, SIGINT and SIGTERM have handlers installed without
 * SA_RESTART, which set a flag and interrupt the futex sleep of
 * shmbus_recv() (-EINTR; the subscriber never spins, spin_ns < 0). The
 * flags are checked just before each receive; a signal landing in the few
 * instructions between that check and the sleep is seen when the receive's
 * bounded slice ends (EXEC_SLICE_BUSY_NS while commands run). When the
 * pool is full, or is draining after a signal, the subscriber is not
 * wanted at all: the pool sleeps in sigsuspend() with the three signals
 * blocked around the check, which loses no wake-up.
 *
 * Commands run in a process group of their own, so that a Ctrl-C at the
 * terminal (SIGINT to the foreground group) stops the worker from taking
 * messages but lets the commands finish.
 */
#include "exec.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

/* Longest receive before the flags are looked at again: with no command
 * running (only a stop signal can be missed) and with some. */
#define EXEC_SLICE_IDLE_NS (200ll * 1000000ll)
#define EXEC_SLICE_BUSY_NS (20ll * 1000000ll)
/* "SHMBUS_SEQ=" or "SHMBUS_DELIVERY=" and a 64-bit number. */
#define EXEC_ENV_NUM_MAX 48

/* Set by the handlers below; read by the loop. */
static volatile sig_atomic_t exec_child;   /* a command exited */
static volatile sig_atomic_t exec_signals; /* SIGINT/SIGTERM received, at most 2 */

/* A running command and the message it works on. */
struct exec_job {
    pid_t pid;
    uint64_t seq;
    uint32_t delivery;
};

struct exec_pool {
    shmbus_sub *s;
    const struct cli_exec_conf *c;
    struct exec_job jobs[SHMBUS_INFLIGHT_MAX];
    unsigned running;
    uint64_t taken;
    int quit;   /* an error: take nothing more */
    int status; /* exit status so far */
    sig_atomic_t signals_seen;
    posix_spawnattr_t attr;
    char *argv[4]; /* sh -c CMD */
    char **envp;   /* the environment, then the three SHMBUS_ variables */
    size_t env_n;  /* where the SHMBUS_ variables go in envp */
    char *env_topic;
    char env_seq[EXEC_ENV_NUM_MAX];
    char env_delivery[EXEC_ENV_NUM_MAX];
};

static void exec_on_child(int sig)
{
    (void)sig;
    exec_child = 1;
}

static void exec_on_stop(int sig)
{
    (void)sig;
    cli_stop = 1;
    if (exec_signals < 2)
        exec_signals = exec_signals + 1;
}

/* No SA_RESTART: a signal ends the futex sleep of shmbus_recv() (-EINTR).
 * SIGINT and SIGTERM block each other so that the count is exact. */
static void exec_signals_install(void)
{
    struct sigaction sa = {.sa_handler = exec_on_stop};

    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = exec_on_child;
    sa.sa_flags = SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
}

/* Whether @p entry is one of the variables the pool sets itself. */
static int exec_env_ours(const char *entry)
{
    static const char *const ours[] = {"SHMBUS_TOPIC=", "SHMBUS_SEQ=", "SHMBUS_DELIVERY="};

    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        if (strncmp(entry, ours[i], strlen(ours[i])) == 0)
            return 1;
    }
    return 0;
}

/* The commands' environment: the worker's, without SHMBUS_TOPIC, SHMBUS_SEQ
 * and SHMBUS_DELIVERY, which each spawn sets. @return 0; -ENOMEM. */
static int exec_env_build(struct exec_pool *p)
{
    size_t n = 0, len = strlen("SHMBUS_TOPIC=") + strlen(p->c->topic) + 1;

    while (environ[n] != NULL)
        n++;
    p->envp = calloc(n + 4, sizeof(*p->envp));
    p->env_topic = malloc(len);
    if (p->envp == NULL || p->env_topic == NULL)
        return -ENOMEM; /* exec_fini() frees what was allocated */
    snprintf(p->env_topic, len, "SHMBUS_TOPIC=%s", p->c->topic);
    for (size_t i = 0; i < n; i++) {
        if (!exec_env_ours(environ[i]))
            p->envp[p->env_n++] = environ[i];
    }
    p->envp[p->env_n] = p->env_topic;
    p->envp[p->env_n + 1] = p->env_seq;
    p->envp[p->env_n + 2] = p->env_delivery;
    return 0;
}

/* Spawn attributes: a process group of its own, every signal unblocked,
 * and SIGPIPE (which the tool ignores), SIGINT, SIGTERM and SIGCHLD at
 * their defaults. @return 0; -errno. */
static int exec_attr_init(struct exec_pool *p)
{
    sigset_t none, dfl;
    int rc = posix_spawnattr_init(&p->attr);

    if (rc != 0)
        return -rc; /* nothing to undo */
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGCHLD);
    posix_spawnattr_setsigmask(&p->attr, &none);
    posix_spawnattr_setsigdefault(&p->attr, &dfl);
    posix_spawnattr_setpgroup(&p->attr, 0);
    rc = posix_spawnattr_setflags(&p->attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                POSIX_SPAWN_SETPGROUP);
    return -rc;
}

static void exec_fini(struct exec_pool *p)
{
    posix_spawnattr_destroy(&p->attr);
    free(p->envp);
    free(p->env_topic);
}

/* @return 0; -errno (reported), with nothing to undo. */
static int exec_init(struct exec_pool *p, shmbus_sub *s, const struct cli_exec_conf *c)
{
    static char sh[] = "sh", dash_c[] = "-c";
    int rc;

    *p = (struct exec_pool){.s = s, .c = c, .status = CLI_EXIT_OK};
    p->argv[0] = sh;
    p->argv[1] = dash_c;
    p->argv[2] = c->cmd;
    rc = exec_attr_init(p);
    if (rc < 0) {
        cli_err("cannot set up the commands' attributes: %s", strerror(-rc));
        return rc;
    }
    rc = exec_env_build(p);
    if (rc < 0) {
        cli_err("out of memory");
        exec_fini(p);
    }
    return rc;
}

/* Write all of @p len bytes. @return 0; -errno. */
static int exec_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue; /* a signal before anything was written */
        if (n < 0)
            return -errno;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The payload as a rewound file in memory. Not close-on-exec: the spawn
 * makes it the command's stdin (and closes the original) while the pool
 * (one thread) spawns nothing else. @return the descriptor; -errno. */
static int exec_payload_fd(const void *data, size_t len)
{
    int fd = memfd_create("shmbus-payload", 0), rc;

    if (fd < 0)
        return -errno; /* out of descriptors or memory */
    rc = exec_write_all(fd, data, len);
    if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Run the command for message @p m, payload @p data. @return 0; -errno. */
static int exec_spawn(struct exec_pool *p, const void *data, const shmbus_msg *m)
{
    posix_spawn_file_actions_t fa;
    struct exec_job *j = &p->jobs[p->running];
    int fd = exec_payload_fd(data, m->len), rc;

    if (fd < 0)
        return fd; /* nothing spawned */
    snprintf(p->env_seq, sizeof(p->env_seq), "SHMBUS_SEQ=%llu", (unsigned long long)m->seq);
    snprintf(p->env_delivery, sizeof(p->env_delivery), "SHMBUS_DELIVERY=%u", m->deliveries);
    rc = posix_spawn_file_actions_init(&fa);
    /* Out of memory: nothing to destroy. */
    if (rc != 0) {
        close(fd);
        return -rc;
    }
    if (fd != STDIN_FILENO) {
        rc = posix_spawn_file_actions_adddup2(&fa, fd, STDIN_FILENO);
        if (rc == 0)
            rc = posix_spawn_file_actions_addclose(&fa, fd);
    }
    /* glibc's posix_spawn() returns once the child has exec'd (or failed
     * to), so the argument and environment strings may change afterwards. */
    if (rc == 0)
        rc = posix_spawn(&j->pid, "/bin/sh", &fa, &p->attr, p->argv, p->envp);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    if (rc != 0)
        return -rc;
    j->seq = m->seq;
    j->delivery = m->deliveries;
    p->running++;
    return 0;
}

/* Report an acknowledgement that failed, and stop taking messages. */
static void exec_ack_failed(struct exec_pool *p, const struct exec_job *j, const char *what, int rc)
{
    cli_err("%s: cannot %s seq %llu: %s", p->c->topic, what, (unsigned long long)j->seq,
            rc == -ENOENT ? "no longer held by this worker" : shmbus_strerror(rc));
    p->status = CLI_EXIT_FAIL;
    p->quit = 1;
}

/* A command ended with wait status @p st: acknowledge or nack its message. */
static void exec_done(struct exec_pool *p, struct exec_job *j, int st)
{
    int rc;

    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        rc = shmbus_ack(p->s, j->seq);
        if (rc < 0)
            exec_ack_failed(p, j, "acknowledge", rc);
        return;
    }
    if (WIFEXITED(st))
        cli_err("%s: seq %llu (delivery %u): command exited with status %d; nacked", p->c->topic,
                (unsigned long long)j->seq, j->delivery, WEXITSTATUS(st));
    else
        cli_err("%s: seq %llu (delivery %u): command killed by signal %d (%s); nacked", p->c->topic,
                (unsigned long long)j->seq, j->delivery, WTERMSIG(st), strsignal(WTERMSIG(st)));
    rc = shmbus_nack(p->s, j->seq, p->c->retry_delay_ns);
    if (rc < 0)
        exec_ack_failed(p, j, "nack", rc);
}

/* Collect the commands that ended. The flag is cleared first: a command
 * ending after it is either collected here or sets it again. */
static void exec_reap(struct exec_pool *p)
{
    pid_t pid;
    int st;

    exec_child = 0;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (unsigned i = 0; i < p->running; i++) {
            if (p->jobs[i].pid != pid)
                continue;
            exec_done(p, &p->jobs[i], st);
            p->jobs[i] = p->jobs[--p->running];
            break;
        }
    }
}

/* Whether the pool takes more messages. */
static int exec_taking(const struct exec_pool *p)
{
    return !cli_stop && !p->quit && (p->c->count == 0 || p->taken < p->c->count);
}

/* Receive one message (waiting a slice at most) and start its command. */
static void exec_take(struct exec_pool *p, void *buf, size_t cap)
{
    shmbus_msg m;
    int rc;

    /* Something to handle first: do not sleep. */
    if (exec_child || exec_signals != p->signals_seen)
        return;
    rc = shmbus_recv(p->s, buf, cap, &m, p->running > 0 ? EXEC_SLICE_BUSY_NS : EXEC_SLICE_IDLE_NS);
    /* Nothing yet, or a signal (a command ended, or a stop). */
    if (rc == SHMBUS_ERR_TIMEOUT || rc == -EINTR)
        return;
    /* Evicted (stall timeout), the topic removed, a corrupt ring: nothing
     * more comes; the running commands still finish. */
    if (rc < 0) {
        cli_err("cannot receive from '%s': %s", p->c->topic, shmbus_strerror(rc));
        p->status = CLI_EXIT_FAIL;
        p->quit = 1;
        return;
    }
    p->taken++;
    rc = exec_spawn(p, buf, &m);
    if (rc == 0)
        return;
    /* No process or memory left: this worker cannot work; another may. */
    cli_err("%s: cannot run the command for seq %llu: %s; nacked", p->c->topic,
            (unsigned long long)m.seq, strerror(-rc));
    rc = shmbus_nack(p->s, m.seq, p->c->retry_delay_ns);
    if (rc < 0)
        cli_err("%s: cannot nack seq %llu: %s", p->c->topic, (unsigned long long)m.seq,
                shmbus_strerror(rc));
    p->status = CLI_EXIT_FAIL;
    p->quit = 1;
}

/* Sleep until a command ends or a signal comes. The signals are blocked
 * while the flags are checked, and sigsuspend() unblocks them atomically. */
static void exec_suspend(const struct exec_pool *p)
{
    sigset_t block, old;

    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    if (!exec_child && exec_signals == p->signals_seen)
        sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* Say what a new signal does. @return 1 on the second: stop waiting. */
static int exec_signalled(struct exec_pool *p)
{
    sig_atomic_t n = exec_signals;

    if (n == p->signals_seen)
        return 0; /* nothing new */
    p->signals_seen = n;
    if (n == 1 && p->running > 0)
        cli_err("stopping: waiting for %u running command%s (a second signal exits without "
                "waiting)",
                p->running, p->running == 1 ? "" : "s");
    return n >= 2;
}

/* The second signal: leave the commands running, their messages go back to
 * the group when the caller destroys the subscriber. */
static void exec_abandon(struct exec_pool *p)
{
    if (p->running == 0)
        return; /* nothing left behind */
    cli_err("exiting without waiting: %u command%s still running, %s message%s go%s back to "
            "the group:",
            p->running, p->running == 1 ? "" : "s", p->running == 1 ? "its" : "their",
            p->running == 1 ? "" : "s", p->running == 1 ? "es" : "");
    for (unsigned i = 0; i < p->running; i++)
        cli_err("  pid %ld, seq %llu", (long)p->jobs[i].pid, (unsigned long long)p->jobs[i].seq);
    p->status = CLI_EXIT_FAIL;
}

int cli_exec_run(shmbus_sub *s, const struct cli_exec_conf *c, void *buf, size_t cap)
{
    struct exec_pool p;

    if (exec_init(&p, s, c) < 0)
        return CLI_EXIT_FAIL; /* reported */
    exec_signals_install();
    /* A signal that came before the handlers (cli_signals_catch()'s) counts. */
    if (cli_stop && exec_signals == 0)
        exec_signals = 1;
    while (p.running > 0 || exec_taking(&p)) {
        if (exec_signalled(&p)) {
            exec_abandon(&p);
            break;
        }
        exec_reap(&p);
        if (exec_taking(&p) && p.running < c->inflight)
            exec_take(&p, buf, cap);
        else if (p.running > 0)
            exec_suspend(&p);
    }
    exec_fini(&p);
    return p.status;
}
