/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared test helpers: cmocka includes, an assertion that names shmbus
 * errors, unique segment names that are removed even when a test fails,
 * child processes that die with their parent and are always reaped, a
 * child's drop to another user, and a topic made without a daemon.
 */
#ifndef SHMBUS_TESTS_TESTUTIL_H
#define SHMBUS_TESTS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmbus/monitor.h"
#include "shmbus/shmbus.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#include <sanitizer/common_interface_defs.h>
#define TU_SANITIZED 1
#endif

#define assert_shmbus_ok(expr)                                                                     \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ < 0)                                                                               \
            fail_msg("%s -> %d (%s)", #expr, rc_, shmbus_strerror(rc_));                           \
    } while (0)

#define assert_shmbus_rc(expr, want)                                                               \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != (want))                                                                         \
            fail_msg("%s -> %d (%s), want %d (%s)", #expr, rc_, shmbus_strerror(rc_), (want),      \
                     shmbus_strerror(want));                                                       \
    } while (0)

#define TU_MAX_SEGS 64
#define TU_MAX_KIDS 64

/* A test of several files defines TU_STATE as extern before including
 * this and defines the state once (bridgetest.h): one set for all. */
#ifndef TU_STATE
#define TU_STATE static
#endif

/* Names created by this process; removed by tu_cleanup() at teardown,
 * at exit, and on a fatal signal. */
TU_STATE char tu_segs[TU_MAX_SEGS][64];
TU_STATE pid_t tu_kids[TU_MAX_KIDS];
TU_STATE pid_t tu_owner;

static inline void tu_cleanup(void)
{
    if (getpid() != tu_owner)
        return; /* children never remove the parent's segments */
    for (int i = 0; i < TU_MAX_KIDS; i++) {
        if (tu_kids[i] > 0) {
            kill(tu_kids[i], SIGKILL);
            waitpid(tu_kids[i], NULL, 0);
            tu_kids[i] = 0;
        }
    }
    for (int i = 0; i < TU_MAX_SEGS; i++) {
        if (tu_segs[i][0] != '\0') {
            shmbus_topic_unlink(tu_segs[i]);
            tu_segs[i][0] = '\0';
        }
    }
}

static inline void tu_on_signal(int sig)
{
    tu_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* xorshift64: the random tests are the same on every run. */
static inline uint64_t tu_rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Call once from main(). */
static inline void tu_init(void)
{
    tu_owner = getpid();
    atexit(tu_cleanup);
#ifdef TU_SANITIZED
    /* A sanitizer's report ends the process without atexit handlers. */
    __sanitizer_set_death_callback(tu_cleanup);
#endif
    signal(SIGINT, tu_on_signal);
    signal(SIGTERM, tu_on_signal);
    signal(SIGSEGV, tu_on_signal);
    signal(SIGABRT, tu_on_signal);
}

/* A fresh segment name, registered for removal. */
static inline const char *tu_name(const char *tag)
{
    static unsigned counter;
    for (int i = 0; i < TU_MAX_SEGS; i++) {
        if (tu_segs[i][0] == '\0') {
            snprintf(tu_segs[i], sizeof(tu_segs[i]), "shmbus-test.%d.%s.%u", (int)getpid(), tag,
                     counter++);
            shmbus_topic_unlink(tu_segs[i]);
            return tu_segs[i];
        }
    }
    fail_msg("too many test segments");
    return NULL;
}

/* Remove a segment made by tu_name() and free its entry. */
static inline void tu_release(const char *name)
{
    for (int i = 0; i < TU_MAX_SEGS; i++) {
        if (tu_segs[i] == name) {
            shmbus_topic_unlink(name);
            tu_segs[i][0] = '\0';
        }
    }
}

/* A topic a test creates directly, without a daemon: lossy, 64-byte
 * messages, under a fresh tu_name(). */
struct tu_topic {
    const char *name;
    shmbus_topic *t;
};

/* Create @p f's topic of @p capacity cells, named after @p tag.
 * @return 0, or < 0 (shmbus_topic_create's code). */
static inline int tu_topic_open(struct tu_topic *f, const char *tag, uint32_t capacity)
{
    shmbus_topic_opts o = {.mode = SHMBUS_LOSSY, .capacity = capacity, .max_msg_size = 64};

    f->name = tu_name(tag);
    return shmbus_topic_create(f->name, &o, &f->t);
}

/* Destroy @p f's topic and remove its segment. */
static inline void tu_topic_close(struct tu_topic *f)
{
    shmbus_topic_destroy(f->t);
    tu_release(f->name);
}

/* Fork a child that runs fn(arg) and exits with its return value. The
 * child dies if the parent does; the parent kills and reaps it at cleanup. */
static inline pid_t tu_fork(int (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != tu_owner)
            _exit(99);
        _exit(fn(arg));
    }
    for (int i = 0; i < TU_MAX_KIDS; i++) {
        if (tu_kids[i] == 0) {
            tu_kids[i] = pid;
            return pid;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("too many children");
    return -1;
}

/* Drop to @p uid and @p gid, with no supplementary groups (a child's
 * drop from root to another user). @return 0 or -errno. */
static inline int tu_become(uid_t uid, gid_t gid)
{
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
        return -errno;
    return 0;
}

/* Wait for a child; @return its exit status, or 128 + signal. */
static inline int tu_wait(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    for (int i = 0; i < TU_MAX_KIDS; i++)
        if (tu_kids[i] == pid)
            tu_kids[i] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Map a segment's file read-write as raw bytes, to damage it on purpose. */
static inline uint8_t *tu_raw_map(const char *name, size_t *len)
{
    char path[128];
    struct stat st;
    void *p;
    int fd;

    snprintf(path, sizeof(path), "/%s", name);
    fd = shm_open(path, O_RDWR, 0);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    assert_true(p != MAP_FAILED);
    *len = (size_t)st.st_size;
    return p;
}

/* Entries of directory @p path but . and .., or -1. */
static inline int tu_dir_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Self-checking payloads: header plus bytes derived from it. */
struct tu_payload {
    uint32_t publisher;
    uint32_t len;
    uint64_t seq;
};

static inline uint8_t tu_byte(const struct tu_payload *h, uint32_t i)
{
    return (uint8_t)(h->publisher * 131u + h->seq * 7u + i * 13u);
}

static inline uint32_t tu_fill(uint8_t *buf, uint32_t publisher, uint64_t seq, uint32_t len)
{
    struct tu_payload h = {.publisher = publisher, .len = len, .seq = seq};
    if (len < sizeof(h))
        len = sizeof(h);
    h.len = len;
    memcpy(buf, &h, sizeof(h));
    for (uint32_t i = sizeof(h); i < len; i++)
        buf[i] = tu_byte(&h, i);
    return len;
}

/* 1 if @p buf of @p len bytes is an intact payload; fills @p out. */
static inline int tu_check(const uint8_t *buf, uint32_t len, struct tu_payload *out)
{
    if (len < sizeof(*out))
        return 0;
    memcpy(out, buf, sizeof(*out));
    if (out->len != len)
        return 0;
    for (uint32_t i = sizeof(*out); i < len; i++)
        if (buf[i] != tu_byte(out, i))
            return 0;
    return 1;
}

#endif
