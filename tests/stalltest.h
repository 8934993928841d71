/* SPDX-License-Identifier: Apache-2.0 */
/* What test_stall.c and test_stall_wake.c share: a child's description
 * (struct kid) and the children both run, topics opened through the
 * test's daemon, and waits on the counters shmbus_topic_stat() reports. */
#ifndef SHMBUS_TESTS_STALLTEST_H
#define SHMBUS_TESTS_STALLTEST_H

#include "daemonutil.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "registry/relay.h"
#include "shm/layout.h"
#include "segfile.h"

#define WAIT_NS  10000000000ll /* only a hang reaches it */
#define READY_MS 30000
#define MSG_MAX  64
#define CAP      8
#define STALL_MS 1000u

enum { KID_OK = 0, KID_CONNECT = 2, KID_OPEN, KID_PUB, KID_SUB, KID_PIPE, KID_RECV, KID_WRONG };

struct kid {
    const char *bus;
    const char *topic;
    const char *group;
    int ready;         /* write end: one byte once set up */
    int observe;       /* subscribe as an observer */
    int lazy;          /* subscribe lazy (wake_bound_ns) */
    uint32_t n;        /* messages to publish or expect */
    const char *fault; /* kid_stopped_batch(): where it stops */
    int want;          /* kid_stopped_batch(): what its batch returns */
};

static inline shmbus_topic_opts topic_opts(uint32_t mode, uint32_t stall_ms)
{
    return (shmbus_topic_opts){
        .mode = mode, .capacity = CAP, .max_msg_size = MSG_MAX, .stall_timeout_ms = stall_ms};
}

static inline void open_topic(const char *bus_name, const char *name, const shmbus_topic_opts *o,
                              shmbus_bus **bus, shmbus_topic **t)
{
    assert_shmbus_ok(shmbus_connect(bus_name, bus));
    assert_shmbus_ok(shmbus_open(*bus, name, o, 0, t));
}

static inline void close_topic(shmbus_bus *bus, shmbus_topic *t)
{
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A child's subscriber on k->topic, opened through the daemon. */
static inline int kid_sub(const struct kid *k, shmbus_bus **bus, shmbus_topic **t, shmbus_sub **sub)
{
    shmbus_sub_opts so = {.group_name = k->group,
                          .flags = k->observe ? SHMBUS_SUB_OBSERVER : 0u,
                          .spin_ns = -1,
                          .wake_bound_ns = k->lazy ? 1000000000ull : 0};

    if (shmbus_connect(k->bus, bus) < 0)
        return KID_CONNECT;
    if (shmbus_open(*bus, k->topic, NULL, SHMBUS_OPEN_NOCREATE, t) < 0)
        return KID_OPEN;
    return shmbus_sub_create(*t, &so, sub) < 0 ? KID_SUB : KID_OK;
}

/* Watch the topic's counters until @p pick(info) reaches @p want. */
static inline void wait_count(shmbus_topic *t, uint64_t (*pick)(const shmbus_topic_info *),
                              uint64_t want)
{
    shmbus_topic_info info;

    for (int64_t end = du_now_ms() + READY_MS;; du_sleep_ms(5)) {
        assert_shmbus_ok(shmbus_topic_info_get(t, &info));
        if (pick(&info) >= want || du_now_ms() > end)
            break;
    }
    assert_int_equal(pick(&info), want);
}

static inline uint64_t evicted_of(const shmbus_topic_info *i)
{
    return i->evicted;
}

static inline uint64_t abandoned_of(const shmbus_topic_info *i)
{
    return i->abandoned;
}

static inline uint64_t reaped_of(const shmbus_topic_info *i)
{
    return i->reaped;
}

static inline uint64_t unblocked_of(const shmbus_topic_info *i)
{
    return i->unblocked;
}

/* ------------------------------------------------ sleepers killed asleep */

/* Receive (asleep when nothing comes) in a loop; report how the first
 * failure ended it. */
static inline int kid_receiver(void *arg)
{
    const struct kid *k = arg;
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
    uint8_t buf[MSG_MAX];
    int rc = kid_sub(k, &bus, &t, &sub);

    if (rc != KID_OK)
        return rc;
    if (du_signal(k->ready) < 0)
        return KID_PIPE;
    do
        rc = shmbus_recv(sub, buf, sizeof(buf), NULL, WAIT_NS);
    while (rc >= 0);
    /* 0: told it was evicted, as the API says. */
    return rc == SHMBUS_ERR_EVICTED ? KID_OK : KID_RECV;
}

/* Run the shmbus tool with ARGS under strace; @return how many shared
 * FUTEX_WAKE calls it made (shmbus's wake-ups, plain or with a bitset,
 * util/futex.h: glibc's and the sanitizers' own are private), or -1 if it
 * failed. */
static inline int futex_wakes_of(const char *const *args)
{
    char out[] = "/tmp/shmbus-strace.XXXXXX", line[512];
    const char *argv[32] = {"strace", "-f", "-qq", "-e", "trace=futex", "-o", out, SHMBUS_CLI_PATH};
    int n = 8, wakes = 0, fd = mkstemp(out), st;
    FILE *f;
    pid_t pid;

    assert_true(fd >= 0);
    close(fd);
    for (; *args != NULL && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        /* LeakSanitizer cannot run under ptrace (an ASan build). */
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
        dup2(null, STDOUT_FILENO);
        execvp("strace", (char *const *)argv);
        _exit(127);
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    f = fopen(out, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        wakes += strstr(line, "FUTEX_WAKE,") != NULL || strstr(line, "FUTEX_WAKE_BITSET,") != NULL;
    if (f != NULL)
        fclose(f);
    unlink(out);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? wakes : -1;
}

/* The topic's segment header, mapped read-write (layout.h); unmap with
 * munmap(h, *len). The tests read its words (data_pending, data_waiters)
 * and set data_pending with atomic_load/atomic_store, seq_cst by default:
 * more than needed, as each only has to be one whole access; what orders
 * them against the daemon and the kids is the handshake around them (pipe,
 * kill and waitpid, a polled count), not the access's own order. */
static inline struct sb_shm_header *header_map(const char *bus, const char *topic, size_t *len)
{
    char seg[96];

    sbd_seg_name(seg, sizeof(seg), bus, topic, 0);
    return (struct sb_shm_header *)tu_raw_map(seg, len);
}

/* Wait until the topic's data_waiters reads @p want (header_map()). */
static inline void wait_sleepers(const char *bus, const char *topic, uint32_t want)
{
    const struct sb_shm_header *h;
    size_t len;

    h = header_map(bus, topic, &len);
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end; du_sleep_ms(2))
        if (atomic_load(&h->data_waiters) == want)
            break;
    assert_int_equal(atomic_load(&h->data_waiters), want);
    munmap((void *)h, len);
}

#endif
