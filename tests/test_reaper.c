/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reaper's pacing (daemon/reaper.c), driven in process on a registry
 * of topics large enough that a pass spans many slices: the idle time
 * after a slice follows the CPU time it took, not a stall of the machine
 * in the middle of it, and is capped; a death's round runs paced too, and
 * ends, in a fraction of a paced pass's time; a dead owner's kept slot is
 * left when the keeps hook says so, and reaped when not, or when it was
 * evicted (nobody could adopt it). Every test gets a fresh registry on
 * the bus "trpr<pid>"; whatever a failed test leaves in /dev/shm is
 * removed at exit.
 */
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/time.h>

#include "log.h"
#include "reaper.h"
#include "registry/admin.h"
#include "registry/relay.h"
#include "registry.h"
#include "util/clock.h"
#include "util/proc.h"
#include "segfile.h"

#define SHM_DIR "/dev/shm"
/* Topics of 1024 slots and records with a stall timeout (each slot and
 * record a costly step, a stall check): a pass takes tens of slices. The
 * timeout never expires in a test. */
#define RP_TOPICS           256
#define RP_SLOTS            1024u
#define RP_STALL_TIMEOUT_MS 600000
/* The stall put in the middle of a slice (a signal handler's sleep), and
 * the shortest slice that counts as having had it. */
#define RP_STALL_MS     200
#define RP_STALLED_MS   150
#define RP_STALL_TRIES  20
#define RP_ROUND_SLICES 100000
/* A death's round goes round once at half a core, a paced pass at a
 * tenth: about a fifth of the time (0.3 measured, slices being whole).
 * Left to the paced passes, it took longer than a pass. */
#define RP_ROUND_FRACTION 2

struct fx {
    struct sbd_config cfg;
    struct sbd_registry reg;
    struct sbd_reaper r;
    int epfd;
};

static char bus_prefix[64]; /* SBD_SEG_PREFIX "trpr<pid>." */

static void bus_cleanup(void)
{
    DIR *d = opendir(SHM_DIR);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, bus_prefix, strlen(bus_prefix)) == 0)
            shmbus_topic_unlink(e->d_name);
    closedir(d);
}

/* A registry of @p ntopics topics, and its reaper. */
static int fx_make(void **state, int ntopics)
{
    struct fx *f = calloc(1, sizeof(*f));
    char why[SB_WIRE_ERR_TEXT], name[32];

    if (f == NULL)
        return -1;
    sbd_config_defaults(&f->cfg);
    snprintf(f->cfg.bus, sizeof(f->cfg.bus), "trpr%d", (int)getpid());
    f->cfg.max_topics = RP_TOPICS;
    f->cfg.max_slots = RP_SLOTS;
    f->cfg.max_segment = 1u << 24;
    f->cfg.max_shm = 1u << 30;
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (f->epfd < 0 || sbd_registry_init(&f->reg, &f->cfg) < 0)
        return -1;
    for (int i = 0; i < ntopics; i++) {
        struct sb_wire_open q = {.mode = SHMBUS_RELIABLE,
                                 .capacity = 64,
                                 .max_msg_size = 8,
                                 .max_subscribers = RP_SLOTS,
                                 .max_groups = 1,
                                 .max_publishers = RP_SLOTS,
                                 .stall_timeout_ms = RP_STALL_TIMEOUT_MS};
        struct sbd_topic *t;
        int created;

        snprintf(name, sizeof(name), "r.%d", i);
        memcpy(q.name, name, strlen(name) + 1);
        if (sbd_topic_open(&f->reg, &q, &t, &created, why, sizeof(why)) < 0) {
            fprintf(stderr, "topic %s: %s\n", name, why);
            return -1;
        }
    }
    if (sbd_reaper_init(&f->r, &f->reg, f->epfd, 1000, NULL) < 0)
        return -1;
    *state = f;
    return 0;
}

static int fx_setup(void **state)
{
    return fx_make(state, RP_TOPICS);
}

static int fx_one_setup(void **state)
{
    return fx_make(state, 1);
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    sbd_reaper_fini(&f->r);
    sbd_registry_fini(&f->reg, 1);
    close(f->epfd);
    free(f);
    bus_cleanup();
    return 0;
}

/* SIGALRM: the machine stops the thread for a while (a SIGSTOP, a VM's
 * steal), in the middle of whatever it runs. */
static void stall_handler(int sig)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = RP_STALL_MS * 1000000L};

    (void)sig;
    nanosleep(&ts, NULL);
}

static void test_reaper_idle_after_stalled_slice_capped(void **state)
{
    struct fx *f = *state;
    struct itimerval in_slice = {.it_value = {.tv_sec = 0, .tv_usec = 300}};
    struct sigaction sa = {.sa_handler = stall_handler, .sa_flags = SA_RESTART};
    int64_t took = 0;
    int tries = 0;

    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    /* A slice lasts at least 1 ms of wall time: the timer goes off in it. */
    while (took < RP_STALLED_MS && tries++ < RP_STALL_TRIES) {
        int64_t t0;

        sbd_reaper_pass(&f->r);
        t0 = (int64_t)(sb_mono_ns() / 1000000u);
        assert_int_equal(setitimer(ITIMER_REAL, &in_slice, NULL), 0);
        sbd_reaper_slice(&f->r);
        took = (int64_t)(sb_mono_ns() / 1000000u) - t0;
    }
    signal(SIGALRM, SIG_DFL);
    print_message("a slice stalled for %lld ms: next slice due in %d ms\n", (long long)took,
                  sbd_reaper_wait_ms(&f->r));
    assert_true(took >= RP_STALLED_MS);
    assert_true(sbd_reaper_busy(&f->r));
    assert_true(sbd_reaper_wait_ms(&f->r) <= (int)(SBD_REAPER_IDLE_MAX_NS / 1000000u));
}

/* Start a child, watch it, kill it and hand its pidfd's event to the
 * reaper, as the control loop does. */
static void death_told(struct fx *f)
{
    struct epoll_event ev;
    uint64_t start;
    pid_t kid = fork();

    assert_true(kid >= 0);
    if (kid == 0) {
        for (;;)
            pause();
    }
    assert_int_equal(sb_proc_start_get(kid, &start), 1);
    sbd_reaper_watch(&f->r, kid, start);
    kill(kid, SIGKILL);
    assert_int_equal(waitpid(kid, NULL, 0), kid);
    for (;;) {
        uint64_t expirations;

        assert_int_equal(epoll_wait(f->epfd, &ev, 1, 5000), 1);
        if ((uintptr_t)ev.data.ptr & SBD_REAPER_TAG)
            break;
        /* The scan timer (a slow test outlives its second): not a death;
         * its passes are the test's to start. */
        assert_null(ev.data.ptr);
        assert_int_equal(read(f->r.timerfd, &expirations, sizeof(expirations)),
                         sizeof(expirations));
    }
    sbd_reaper_event(&f->r, ev.data.ptr);
}

static void test_reaper_death_round_paced(void **state)
{
    struct fx *f = *state;
    uint64_t t0, passes, next;
    int slices = 0;

    death_told(f);
    assert_true(sbd_reaper_busy(&f->r));
    assert_int_equal(sbd_reaper_wait_ms(&f->r), 0); /* the first slice is due at once */
    passes = f->r.passes;
    t0 = sb_mono_ns();
    sbd_reaper_slice(&f->r);
    /* A pass spans many slices: the dead process still waits for the
     * walk, and the next slice is not due at once but after an idle time
     * as long as the slice's CPU time. */
    assert_non_null(f->r.dead);
    assert_true(f->r.next_ns > t0);
    /* Another death while the round is under way keeps its pace. */
    next = f->r.next_ns;
    death_told(f);
    assert_int_equal(f->r.next_ns, next);
    /* The round ends (the processes are forgotten) by the end of the pass
     * after the one under way. */
    while (f->r.dead != NULL && slices++ < RP_ROUND_SLICES)
        sbd_reaper_slice(&f->r);
    assert_null(f->r.dead);
    assert_true(f->r.passes - passes <= 2);
}

/* Run the reaper as the control loop does (wait until the next slice is
 * due, run it) until @p done says so. @return the wall time it took, ns. */
static uint64_t run_paced(struct fx *f, int (*done)(const struct fx *, uint64_t), uint64_t arg)
{
    uint64_t t0 = sb_mono_ns();

    while (!done(f, arg)) {
        int ms = sbd_reaper_wait_ms(&f->r);

        assert_true(ms >= 0); /* a pass is under way until done */
        if (ms > 0)
            usleep((useconds_t)ms * 1000u);
        sbd_reaper_run(&f->r);
    }
    return sb_mono_ns() - t0;
}

static int passes_reach(const struct fx *f, uint64_t passes)
{
    return f->r.passes >= passes;
}

static int slices_reach(const struct fx *f, uint64_t slices)
{
    return f->r.slices >= slices;
}

static int dead_gone(const struct fx *f, uint64_t unused)
{
    (void)unused;
    return f->r.dead == NULL;
}

static void test_reaper_death_round_faster_than_pass(void **state)
{
    struct fx *f = *state;
    uint64_t pass_ns, death_ns, slices;

    /* The first pass faults the segments in: the second is the measure. */
    sbd_reaper_pass(&f->r);
    run_paced(f, passes_reach, f->r.passes + 1);
    slices = f->r.slices;
    sbd_reaper_pass(&f->r);
    pass_ns = run_paced(f, passes_reach, f->r.passes + 1);
    slices = f->r.slices - slices;
    /* The next pass, a quarter in: a death there waits for the walk to go
     * round from that point. */
    sbd_reaper_pass(&f->r);
    run_paced(f, slices_reach, f->r.slices + 1 + slices / 4);
    assert_true(sbd_reaper_busy(&f->r));
    death_told(f);
    death_ns = run_paced(f, dead_gone, 0);
    print_message("a paced pass: %llu ms in %llu slices; a death's round: %llu ms\n",
                  (unsigned long long)(pass_ns / 1000000u), (unsigned long long)slices,
                  (unsigned long long)(death_ns / 1000000u));
    assert_true(death_ns * RP_ROUND_FRACTION < pass_ns);
}

/* ------------------------------------------------------------ kept slots */

/* What the keeps hook says, and what it was asked about. */
struct keeps_probe {
    int answer;
    unsigned calls;
    const struct sbd_topic *asked;
};

static int keeps_hook(void *arg, const struct sbd_topic *t)
{
    struct keeps_probe *k = arg;

    k->calls++;
    k->asked = t;
    return k->answer;
}

/* A child that subscribes to the daemon's own mapping of @p arg, holds
 * and keeps the slot, and exits without cleaning up: what a daemon's
 * exporter leaves when it is killed. */
static int kid_keeper(void *arg)
{
    shmbus_sub *sub;

    if (shmbus_sub_create(arg, NULL, &sub) < 0 || sb_relay_sub_hold(sub) < 0 ||
        sb_relay_sub_keep(sub) < 0)
        return 1;
    return 0;
}

/* The one topic's slot kept by a dead child (evicted after its death if
 * @p evict), after a reaper pass with hook @p k (NULL: none). @return
 * whether the slot was still there to adopt; *reaped: the topic's count
 * of reaped slots. */
static int kept_after_pass(struct fx *f, struct keeps_probe *k, int evict, uint64_t *reaped)
{
    struct cds_lfht_iter it;
    shmbus_topic_info info;
    struct sbd_topic *t;
    shmbus_sub *sub;
    int rc;

    urcu_memb_read_lock();
    cds_lfht_first(f->reg.topics, &it);
    t = sbd_topic_of(cds_lfht_iter_get_node(&it));
    urcu_memb_read_unlock();
    f->reg.keeps = k != NULL ? keeps_hook : NULL;
    f->reg.keeps_arg = k;
    assert_int_equal(tu_wait(tu_fork(kid_keeper, t->t)), 0);
    if (evict)
        assert_int_equal(sb_admin_slot_evict(t->t, 0), 1); /* the child's, the first free */
    sbd_reaper_pass(&f->r);
    while (sbd_reaper_busy(&f->r))
        sbd_reaper_slice(&f->r);
    if (k != NULL && k->calls > 0)
        assert_ptr_equal(k->asked, t);
    assert_shmbus_ok(shmbus_topic_info_get(t->t, &info));
    *reaped = info.reaped;
    rc = sb_relay_sub_adopt(t->t, &sub);
    if (rc == 0)
        shmbus_sub_destroy(sub);
    assert_true(rc == 0 || rc == -ENOENT);
    return rc == 0;
}

/* keeps() says 1: the dead owner's kept slot is left for adoption. */
static void test_reaper_kept_slot_left(void **state)
{
    struct keeps_probe k = {.answer = 1};
    uint64_t reaped;

    assert_true(kept_after_pass(*state, &k, 0, &reaped));
    assert_int_equal(reaped, 0);
    assert_true(k.calls >= 1);
}

/* keeps() says 0: reaped as any slot. */
static void test_reaper_kept_slot_reaped_when_not_kept(void **state)
{
    struct keeps_probe k = {.answer = 0};
    uint64_t reaped;

    assert_false(kept_after_pass(*state, &k, 0, &reaped));
    assert_int_equal(reaped, 1);
    assert_int_equal(k.calls, 1);
}

/* No hook: reaped as any slot. */
static void test_reaper_kept_slot_reaped_without_hook(void **state)
{
    uint64_t reaped;

    assert_false(kept_after_pass(*state, NULL, 0, &reaped));
    assert_int_equal(reaped, 1);
}

/* A kept slot evicted (an eviction decided before its owner kept it) can
 * never be adopted: reaped even though keeps() says 1, not kept for
 * nobody until the daemon stops. */
static void test_reaper_kept_slot_evicted_reaped(void **state)
{
    struct keeps_probe k = {.answer = 1};
    uint64_t reaped;

    assert_false(kept_after_pass(*state, &k, 1, &reaped));
    assert_int_equal(reaped, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(test_reaper_idle_after_stalled_slice_capped),
        T(test_reaper_death_round_paced),
        T(test_reaper_death_round_faster_than_pass),
#undef T
#define T1(fn) cmocka_unit_test_setup_teardown(fn, fx_one_setup, fx_teardown)
        T1(test_reaper_kept_slot_left),
        T1(test_reaper_kept_slot_reaped_when_not_kept),
        T1(test_reaper_kept_slot_reaped_without_hook),
        T1(test_reaper_kept_slot_evicted_reaped),
#undef T1
    };
    int rc;

    tu_init();
    snprintf(bus_prefix, sizeof(bus_prefix), SBD_SEG_PREFIX "trpr%d.", (int)getpid());
    atexit(bus_cleanup);
    sbd_log_set_level(SBD_WARN);
    urcu_memb_register_thread();
    rc = cmocka_run_group_tests_name("reaper", tests, NULL, NULL);
    urcu_memb_unregister_thread();
    return rc;
}
