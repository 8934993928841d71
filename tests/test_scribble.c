/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostile segment contents against the daemon (the threat model in
 * docs/design.md): a process that can write a topic's segment scribbles
 * its words (records, slots, tail, cursors, stamps, anything) while the
 * reaper scans it. The daemon keeps answering control calls at once and
 * never dies; and the processes a segment names cost it a bounded number
 * of descriptors.
 */
#include "daemonutil.h"

#include <limits.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "ring/ring.h"
#include "shm/layout.h"
#include "util/clock.h"
#include "util/proc.h"
#include "segfile.h"

/* The scribbled topic: a large ring (a crafted tail can claim all of it)
 * and every slot and record the format allows. */
#define SCR_CAPACITY (1u << 20)
#define SCR_SUBS     1024u
#define SCR_PUBS     1024u
#define SCR_GROUPS   8u
/* Rounds of timed control calls; the fastest of a round counts, so that
 * one call delayed by a noisy machine does not fail the test, while a
 * daemon stuck in a scan delays them all. */
#define SCR_ROUNDS    20
#define SCR_CALLS     10
#define SCR_SLOW_NS   (100 * 1000000LL)
#define SCR_SETTLE_MS 300 /* scribbling before the first round */
#define SCR_PAUSE_MS  30  /* between rounds */
#define SCR_BURST     512 /* writes between the scribbler's pauses */
#define SCR_STAMPS    4096

/* Processes named in one topic's slots, more than the daemon watches for
 * a topic (reaper.h SBD_REAPER_PROCS_PER_TOPIC, 64). */
#define NAMED_KIDS    100
#define NAMED_WAIT_MS 1000
/* Their slots are freed within this once they die: a pass or two (those
 * without a pidfd are looked up at the start of each pass). */
#define NAMED_REAP_MS 5000
/* What a daemon of 16 clients and 16 topics needs (config.h
 * sbd_config_fds(): 3 a client, 1 a topic, 64), and the descriptors a
 * limit leaves beyond it. */
#define NAMED_FD_NEED (16 * 3 + 16 + 64)
#define NAMED_FD_ROOM 16

/* One hostile write into @p seg: values the daemon acts on (DEAD records
 * with a claim, owners, a tail far ahead, stamps reset, cursor words),
 * or any word anywhere. Every load and store is relaxed: a hostile writer
 * orders nothing, and the daemon must cope with any order (its loads
 * pair with no store here). */
static void scribble_one(const struct sb_segment *seg, uint64_t *rng, uint64_t len)
{
    uint64_t v = tu_rng_next(rng), w = tu_rng_next(rng);
    uint32_t i = (uint32_t)(v >> 40);

    switch (v % 8) {
    case 0:
    case 1: {
        struct sb_shm_pubrec *r = &seg->pubs[i % SCR_PUBS];
        /* A claim somewhere in the ring below the tail: each dead record
         * then has its own cells for the daemon to look at. */
        /* relaxed: a hint for the value written, never trusted. */
        uint64_t tail = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
        uint64_t at = tail - (w >> 8) % SCR_CAPACITY;

        atomic_store_explicit(&r->claim,
                              (w & 1) ? SB_CLAIM_CLAIMING | (at & ~SB_CLAIM_CLAIMING) : at,
                              memory_order_relaxed);
        atomic_store_explicit(&r->pid, (uint32_t)(w >> 48) | 1u, memory_order_relaxed);
        atomic_store_explicit(&r->state, (w & 2) ? SB_PUB_DEAD : SB_PUB_ACTIVE,
                              memory_order_relaxed);
        break;
    }
    case 2: {
        struct sb_shm_slot *s = &seg->slots[i % SCR_SUBS];

        atomic_store_explicit(&s->pos, w >> 30, memory_order_relaxed);
        atomic_store_explicit(&s->group, (uint32_t)(w % (SCR_GROUPS + 2)), memory_order_relaxed);
        atomic_store_explicit(&s->pid, (uint32_t)(w >> 48) | 1u, memory_order_relaxed);
        atomic_store_explicit(&s->state, (uint32_t)(w % 7), memory_order_relaxed);
        break;
    }
    case 3:
        atomic_store_explicit(&seg->hdr->tail, w >> 24, memory_order_relaxed);
        break;
    case 4:
        for (uint32_t k = 0; k < SCR_STAMPS; k++)
            atomic_store_explicit(&sb_cell(seg, w + k)->stamp, 0, memory_order_relaxed);
        break;
    case 5:
        atomic_store_explicit(&seg->groups[i % SCR_GROUPS].cursor, w, memory_order_relaxed);
        break;
    default: {
        /* Any aligned word of the segment. */
        _Atomic uint64_t *p =
            (_Atomic uint64_t *)(void *)((uint8_t *)seg->base + (w % len & ~7ull));

        atomic_store_explicit(p, v, memory_order_relaxed);
        break;
    }
    }
}

/* The scribbler child: attaches the segment by name and writes into it
 * until it is killed. */
static int scribbler_main(void *arg)
{
    const char *seg_name = arg;
    shmbus_topic *t;
    uint64_t rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;

    if (shmbus_topic_attach(seg_name, &t) < 0)
        return 1;
    for (;;) {
        for (int k = 0; k < SCR_BURST; k++)
            scribble_one(&t->seg, &rng, t->seg.g.total_len);
        usleep(100); /* leave the daemon and the test a CPU on a small machine */
    }
}

/* The fastest of SCR_CALLS timed control calls (a list of the topics and
 * an open of a quiet one) in ns; counts those slower than SCR_SLOW_NS. */
static int64_t round_fastest(shmbus_bus *bus, int *slow)
{
    int64_t best = INT64_MAX;

    for (int c = 0; c < SCR_CALLS; c++) {
        shmbus_topic_entry e[4];
        shmbus_topic *q;
        int64_t t0 = (int64_t)sb_mono_ns(), dt;

        if (c % 2 == 0) {
            assert_true(shmbus_list(bus, NULL, e, 4) >= 1);
        } else {
            assert_shmbus_ok(shmbus_open(bus, "quiet", NULL, 0, &q));
            shmbus_topic_destroy(q);
        }
        dt = (int64_t)sb_mono_ns() - t0;
        *slow += dt > SCR_SLOW_NS;
        best = dt < best ? dt : best;
    }
    return best;
}

/* Free every slot and record of @p t, so that no owner the scribbler
 * named (a live pid with start time 0 counts as alive) keeps the segment
 * past the daemon's stop. Through the test's own mapping: attaching by
 * name validates the header, which the scribbler may have overwritten. */
static void scribbled_clear(shmbus_topic *t)
{
    for (uint32_t i = 0; i < SCR_SUBS; i++)
        atomic_store(&t->seg.slots[i].state, SB_SLOT_FREE);
    for (uint32_t i = 0; i < SCR_PUBS; i++)
        atomic_store(&t->seg.pubs[i].state, SB_PUB_FREE);
}

/* Control calls keep answering while another process scribbles the live
 * segment of a large topic, and the daemon survives it. */
static void test_scribble_control_calls_keep_answering(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                           .capacity = SCR_CAPACITY,
                           .max_msg_size = 64,
                           .max_subscribers = SCR_SUBS,
                           .max_publishers = SCR_PUBS,
                           .max_groups = SCR_GROUPS,
                           .stall_timeout_ms = 50};
    char seg[SHMBUS_NAME_MAX + 1];
    shmbus_topic *t, *q;
    shmbus_bus *bus;
    int64_t worst = 0;
    int slow = 0;
    pid_t kid;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "scribbled", &o, 0, &t));
    assert_shmbus_ok(shmbus_open(bus, "quiet", NULL, 0, &q));
    sbd_seg_name(seg, sizeof(seg), d->bus, "scribbled", 0);
    kid = tu_fork(scribbler_main, seg);
    du_sleep_ms(SCR_SETTLE_MS);
    for (int r = 0; r < SCR_ROUNDS; r++) {
        int64_t best = round_fastest(bus, &slow);

        worst = best > worst ? best : worst;
        du_sleep_ms(SCR_PAUSE_MS);
    }
    assert_int_equal(kill(kid, SIGKILL), 0);
    assert_int_equal(tu_wait(kid), 128 + SIGKILL); /* it never stops by itself */
    scribbled_clear(t);
    print_message("fastest call of the slowest round: %lld us; calls over 100 ms: %d of %d\n",
                  (long long)(worst / 1000), slow, SCR_ROUNDS * SCR_CALLS);
    assert_true(worst < SCR_SLOW_NS);
    /* And no stall that comes back: a preemption may slow a call or two on
     * a loaded machine, a scan that holds the control thread slows many. */
    assert_true(slow * 50 <= SCR_ROUNDS * SCR_CALLS);
    assert_int_equal(kill(d->pid, 0), 0); /* alive */
    shmbus_topic_destroy(q);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* Slots and records of dead processes @p t's daemon freed so far. */
static uint64_t reaped_of(const shmbus_topic *t)
{
    shmbus_topic_info info;

    assert_shmbus_ok(shmbus_topic_info_get(t, &info));
    return info.reaped;
}

/* A child that sleeps until the test closes @p arg's pipe (or dies). */
static void named_kid(int rd)
{
    char c;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    while (read(rd, &c, 1) < 0 && errno == EINTR)
        ;
    _exit(0);
}

/* The descriptors of process @p pid, the fewest of a few looks: the scan
 * has a /proc file open for a moment now and then. */
static int fds_settled(pid_t pid)
{
    int fewest = INT_MAX;

    for (int i = 0; i < 5; i++) {
        int n = du_fd_count(pid);

        fewest = n < fewest ? n : fewest;
        du_sleep_ms(10);
    }
    return fewest;
}

/* Name NAMED_KIDS live processes in the slots of a topic of @p d's
 * daemon, as direct attachers would: the daemon takes at most @p cap
 * descriptors for them (it looks the rest up in /proc); when they die,
 * every one of their slots is freed, those of the processes looked up in
 * /proc too. */
static void named_owners(struct du_daemon *d, int cap)
{
    shmbus_topic_opts o = {.mode = SHMBUS_LOSSY, .capacity = 4, .max_subscribers = 128};
    char seg[SHMBUS_NAME_MAX + 1];
    pid_t kids[NAMED_KIDS];
    shmbus_topic *t, *raw;
    shmbus_bus *bus;
    int pipefd[2], before, after;
    int64_t until;

    assert_shmbus_ok(shmbus_connect(d->bus, &bus));
    assert_shmbus_ok(shmbus_open(bus, "named", &o, 0, &t));
    sbd_seg_name(seg, sizeof(seg), d->bus, "named", 0);
    assert_shmbus_ok(shmbus_topic_attach(seg, &raw));
    du_sleep_ms(100); /* a pass or more: the daemon's descriptors settle */
    before = fds_settled(d->pid);
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    for (int k = 0; k < NAMED_KIDS; k++) {
        uint64_t start = 0;

        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            close(pipefd[1]);
            named_kid(pipefd[0]);
        }
        assert_int_equal(sb_proc_start_get(kids[k], &start), 1);
        /* An owner as a direct attacher writes it: start, pid, then the
         * state (INIT: it gates nothing). relaxed, then release: pairs
         * with the daemon's acquire load of the state (sb_admin_owner()). */
        atomic_store_explicit(&raw->seg.slots[k].start, start, memory_order_relaxed);
        atomic_store_explicit(&raw->seg.slots[k].pid, (uint32_t)kids[k], memory_order_relaxed);
        atomic_store_explicit(&raw->seg.slots[k].state, SB_SLOT_INIT, memory_order_release);
    }
    close(pipefd[0]);
    du_sleep_ms(NAMED_WAIT_MS);
    after = fds_settled(d->pid);
    close(pipefd[1]); /* the children exit */
    for (int k = 0; k < NAMED_KIDS; k++)
        assert_int_equal(waitpid(kids[k], NULL, 0), kids[k]);
    print_message("daemon descriptors: %d before, %d with %d processes named\n", before, after,
                  NAMED_KIDS);
    assert_in_range(after, before, before + cap);
    until = du_now_ms() + NAMED_REAP_MS;
    while (reaped_of(raw) < NAMED_KIDS && du_now_ms() < until)
        du_sleep_ms(10);
    assert_int_equal(reaped_of(raw), NAMED_KIDS);
    shmbus_topic_destroy(raw);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
}

/* A topic watches at most 64 processes its segment names
 * (SBD_REAPER_PROCS_PER_TOPIC). */
static void test_scribble_named_processes_bounded(void **state)
{
    named_owners(*state, 64);
}

/* Under a descriptor limit (set by prlimit on the running daemon) that
 * leaves NAMED_FD_ROOM beyond what its limits need (config.h
 * sbd_config_fds()), the daemon takes no more for the processes segments
 * name, and says so (again each time the budget fills after it had room). */
static void test_scribble_named_processes_fd_limit(void **state)
{
    const char *const extra[] = {"--max-clients", "16", "--max-topics", "16", NULL};
    const struct rlimit low = {NAMED_FD_NEED + NAMED_FD_ROOM, NAMED_FD_NEED + NAMED_FD_ROOM};
    struct du_daemon *d = calloc(1, sizeof(*d));
    char log[sizeof(d->dir) + 8];
    int fd;

    assert_non_null(d);
    *state = d; /* the teardown stops it and removes what it made */
    assert_int_equal(du_prepare(d), 0);
    snprintf(log, sizeof(log), "%s/log", d->dir);
    fd = open(log, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(du_launch_out(d, extra, fd), 0);
    close(fd);
    assert_int_equal(prlimit(d->pid, RLIMIT_NOFILE, &low, NULL), 0);
    named_owners(d, NAMED_FD_ROOM);
    assert_true(du_log_count(log, "all the descriptor limit leaves") >= 1);
}

#define SCRIBBLE_TEST(f) cmocka_unit_test_setup_teardown(f, du_setup, du_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SCRIBBLE_TEST(test_scribble_control_calls_keep_answering),
        SCRIBBLE_TEST(test_scribble_named_processes_bounded),
        cmocka_unit_test_teardown(test_scribble_named_processes_fd_limit, du_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("scribble", tests, NULL, NULL);
}
