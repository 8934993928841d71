/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the daemon against hostile segment contents, after
 * Redis's corrupt-dump fuzzer (tests/integration/corrupt-dump-fuzzer.tcl:
 * damage what the server reads, then drive it, and require that it never
 * crashes or hangs). The daemon's own registry (daemon/registry.c) creates
 * four small topics (reliable with groups and a stall timeout, lossy,
 * exclusive, reliable without timeout) and a large one (64K cells, 256
 * slots and records, a stall timeout) once per process; each input
 * restores every topic's fresh contents, runs a fresh reaper on them all,
 * picks the topic it writes into, then is read as a sequence of steps:
 *   - writes into the segment: any 64- or 32-bit word, or a field the
 *     daemon acts on (slot and record owners and states, claims, the
 *     tail, stamps, cursor words) set to a value from a small palette
 *     (live, dead and impossible pids, seqs around the tail, flags);
 *   - reaper work: one slice of a pass, or a whole pass (stall checks
 *     included), and a short sleep so that a 1 ms stall timeout expires;
 *   - a death: the first starts a child the reaper watches (as a client's
 *     hello does) and that the palette of owners names; the next kills it,
 *     and its pidfd's event goes to the reaper as in the control loop;
 *   - control-style operations: open the topic again, take a slot for a
 *     client, free a slot as the daemon does for a dead owner, end a dead
 *     record's claim, end a live claim, evict, name a group, reconcile,
 *     read the topic's info and slots, list the topics.
 * The daemon must not crash (ASan, UBSan); a slice must read the clock
 * after at most 2 x SBD_REAPER_CLOCK_STEPS - 1 of step cost (the reaper's
 * gap_max: what bounds a slice, counted, not timed); at most one slice may
 * run per batch of events; a pass must end within pass_slices_max()
 * slices. Time bounds only catch hangs: every step at most STEP_MAX_NS of
 * the thread's CPU time, a slice at most SLICE_MAX_NS (CPU time leaves out
 * a busy machine's preemptions and the sleeps).
 *
 * Segments are named shmbus.fzseg<pid>.<topic> (the daemon's dead-letter
 * topics too): removed at exit, and those of a run that crashed are
 * removed by the next run's start.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "reaper.h"
#include "registry.h"
#include "registry/admin.h"
#include "segfile.h"
#include "ring/ring.h"
#include "shm/layout.h"
#include "stall.h"
#include "util/clock.h"
#include "util/proc.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_TOPICS 5
#define BIG      4 /* the large topic */
/* A step (one write, one slice, one operation) takes microseconds, a
 * whole pass over the large topic milliseconds; under ASan a few times
 * that. What this is for is an unbounded step: seconds. */
#define STEP_MAX_NS (100 * 1000000ull)
/* A slice ends at the first look at the clock past 1 ms of wall time,
 * which comes after every costly step (reaper.c), so its CPU time is about
 * 1 ms and one costly step (4096 cells of a dead record's claim, 16 looks
 * over the records, a stall check: up to 2.4 ms under ASan here). How
 * long that is depends on the machine (under ASan on a busy VM, slices of
 * 17 ms CPU were seen): this bound catches a slice that does not end, and
 * the step cost between looks at the clock (gap_max) is what is checked
 * for a slice that ends late. */
#define SLICE_MAX_NS (100 * 1000000ull)
/* Sleeps of an input (STALL_MS each), so that a stall timeout expires. */
#define SLEEPS_MAX 3
#define STALL_MS   1

static struct {
    struct sbd_config cfg;
    struct sbd_registry reg;
    struct sbd_topic *topics[N_TOPICS];
    uint8_t *fresh[N_TOPICS]; /* each segment as created */
    int epfd;
    pid_t dead_pid; /* a child that exited: its pid names no process */
    uint64_t self_start;
    pid_t kid; /* the input's watched child (death_step()); 0: none */
    uint64_t kid_start;
    int kid_alive;
} fz;

/* ---------------------------------------------------------------- input */

struct in {
    const uint8_t *p;
    size_t n;
};

static uint64_t take(struct in *in, unsigned bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < bytes && in->n > 0; i++, in->p++, in->n--)
        v |= (uint64_t)in->p[0] << (8 * i);
    return v;
}

/* ----------------------------------------------------------------- setup */

/* Has the run of process @p pid ended? */
static int run_ended(int pid)
{
    return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Remove this run's segments (@p self), or those of earlier runs whose
 * process is gone (a crash skips the exit handler): by name, so that the
 * topics the daemon made for itself (dead-letter topics a scribbled
 * pending table names) go too. */
static void sweep(int self)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char path[300];
        int pid;

        if (sscanf(e->d_name, SBD_SEG_PREFIX "fzseg%d.", &pid) != 1 || pid <= 0 ||
            !(self ? pid == (int)getpid() : run_ended(pid)))
            continue;
        snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void remove_segments(void)
{
    sweep(1);
}

static const struct sb_wire_open topic_reqs[N_TOPICS] = {
    {.mode = SHMBUS_RELIABLE,
     .capacity = 16,
     .max_msg_size = 32,
     .max_subscribers = 8,
     .max_groups = 2,
     .max_publishers = 4,
     .stall_timeout_ms = STALL_MS,
     .name = "rel"},
    {.mode = SHMBUS_LOSSY,
     .capacity = 8,
     .max_msg_size = 32,
     .max_subscribers = 4,
     .max_groups = 1,
     .max_publishers = 4,
     .stall_timeout_ms = STALL_MS,
     .name = "lossy"},
    {.mode = SHMBUS_RELIABLE,
     .capacity = 8,
     .max_msg_size = 32,
     .max_subscribers = 4,
     .max_groups = 1,
     .max_publishers = 2,
     .topic_flags = SHMBUS_TOPIC_EXCLUSIVE,
     .stall_timeout_ms = STALL_MS,
     .name = "excl"},
    {.mode = SHMBUS_RELIABLE,
     .capacity = 8,
     .max_msg_size = 32,
     .max_subscribers = 4,
     .max_groups = 2,
     .max_publishers = 2,
     .name = "quiet"},
    {.mode = SHMBUS_RELIABLE,
     .capacity = 1u << 16,
     .max_msg_size = 8,
     .max_subscribers = 256,
     .max_groups = 16,
     .max_publishers = 256,
     .stall_timeout_ms = STALL_MS,
     .name = "big"},
};

/* The daemon's keeps hook (registry.h): the topics of odd id keep the
 * kept slots of dead owners (a federation's persisted exports), the others
 * have them reaped, so that the reaper walks both ways. */
static int keeps_odd(void *arg, const struct sbd_topic *t)
{
    (void)arg;
    return t->id & 1;
}

static void setup_topics(void)
{
    char why[SB_WIRE_ERR_TEXT];

    for (int i = 0; i < N_TOPICS; i++) {
        struct sbd_topic *t;
        void *base;
        size_t len;
        int created;

        CHECK(sbd_topic_open(&fz.reg, &topic_reqs[i], &t, &created, why, sizeof(why)) == 0);
        fz.topics[i] = t;
        sb_admin_mapping(t->t, &base, &len);
        fz.fresh[i] = malloc(len);
        CHECK(fz.fresh[i] != NULL);
        memcpy(fz.fresh[i], base, len);
    }
}

static void setup(void)
{
    pid_t kid;

    sweep(0);
    sbd_log_set_level(SBD_ERROR); /* not a line per death the input invents */
    sbd_config_defaults(&fz.cfg);
    snprintf(fz.cfg.bus, sizeof(fz.cfg.bus), "fzseg%d", (int)getpid());
    fz.cfg.max_topics = 16;
    fz.cfg.max_clients = 4;
    fz.cfg.max_slots = 1024;
    fz.cfg.max_segment = 1u << 24;
    fz.cfg.max_shm = 1u << 26;
    fz.cfg.reap_interval_ms = 1000;
    urcu_memb_register_thread();
    CHECK(sbd_registry_init(&fz.reg, &fz.cfg) == 0);
    fz.reg.keeps = keeps_odd;
    fz.epfd = epoll_create1(EPOLL_CLOEXEC);
    CHECK(fz.epfd >= 0);
    setup_topics();
    atexit(remove_segments);
    kid = fork();
    CHECK(kid >= 0);
    if (kid == 0)
        _exit(0);
    CHECK(waitpid(kid, NULL, 0) == kid);
    fz.dead_pid = kid;
    CHECK(sb_proc_start_get(getpid(), &fz.self_start) == 1);
}

/* ---------------------------------------------------------------- writes */

/* A pid and start time: ours, a dead child's, pid 1 judged by pid alone,
 * impossible ones, the input's watched child (ours while it has none), or
 * any. */
static void pick_owner(uint32_t sel, uint32_t any, uint32_t *pid, uint64_t *start)
{
    static const uint32_t odd[] = {0, 0x7fffffffu, 0x80000000u, 0xffffffffu};

    switch (sel % 7) {
    case 0:
        *pid = (uint32_t)getpid();
        *start = fz.self_start;
        break;
    case 1:
        *pid = (uint32_t)getpid();
        *start = fz.self_start + 1; /* our pid, another start: a reused pid */
        break;
    case 2:
        *pid = (uint32_t)fz.dead_pid;
        *start = 0;
        break;
    case 3:
        *pid = 1;
        *start = 0;
        break;
    case 4:
        *pid = odd[any % 4];
        *start = any;
        break;
    case 5:
        *pid = (uint32_t)(fz.kid > 0 ? fz.kid : getpid());
        *start = fz.kid > 0 ? fz.kid_start : fz.self_start;
        break;
    default:
        *pid = any;
        *start = 0;
        break;
    }
}

/* A 64-bit value near what the daemon compares: seqs around the tail,
 * claim words, packed group words, stamps, extremes. */
static uint64_t pick_value(const struct sb_segment *seg, uint32_t sel, uint64_t any)
{
    /* relaxed: a hint for the values, never trusted. */
    uint64_t tail = atomic_load_explicit(&seg->hdr->tail, memory_order_relaxed);
    uint64_t near = tail + (any % 33) - 16;

    switch (sel % 8) {
    case 0:
        return near;
    case 1:
        return SB_CLAIM_CLAIMING | (near & (SB_CLAIM_CLAIMING - 1));
    case 2:
        return SB_CLAIM_IDLE;
    case 3:
        return SB_GRP_WORD(near, any & SB_GRP_LOW);
    case 4:
        return SB_STAMP(near, any & 3);
    case 5:
        return any & 1 ? UINT64_MAX : UINT64_MAX - 1;
    case 6:
        return any % 8;
    default:
        return any;
    }
}

/* The values one field write draws from the input. */
struct field_val {
    uint32_t sel, any32;
    uint64_t v; /* pick_value() */
};

/* A slot's field (@p kind 0-2). relaxed, all: a hostile writer orders
 * nothing. */
static void write_slot(const struct sb_segment *seg, struct sb_shm_slot *s, uint32_t kind,
                       const struct field_val *f)
{
    uint32_t pid;
    uint64_t start;

    if (kind == 0) {
        pick_owner(f->sel, f->any32, &pid, &start);
        atomic_store_explicit(&s->start, start, memory_order_relaxed);
        atomic_store_explicit(&s->pid, pid, memory_order_relaxed);
        atomic_store_explicit(&s->state, f->any32 % 8, memory_order_relaxed);
    } else if (kind == 1) {
        atomic_store_explicit(&s->pos, f->v, memory_order_relaxed);
        atomic_store_explicit(&s->group, f->any32 % (seg->g.max_groups + 2), memory_order_relaxed);
    } else {
        atomic_store_explicit(&s->counted, f->any32 & 1, memory_order_relaxed);
        atomic_store_explicit(&s->sleep, f->any32 >> 1, memory_order_relaxed);
        /* Kept or not, or adopting for any pid (layout.h SB_KEEP_*). */
        atomic_store_explicit(&s->kept, (uint32_t)f->v, memory_order_relaxed);
    }
}

/* A publisher record's field (@p kind 0-2). relaxed, all: as above. */
static void write_rec(struct sb_shm_pubrec *r, uint32_t kind, const struct field_val *f)
{
    uint32_t pid;
    uint64_t start;

    if (kind == 0) {
        pick_owner(f->sel, f->any32, &pid, &start);
        atomic_store_explicit(&r->start, start, memory_order_relaxed);
        atomic_store_explicit(&r->pid, pid, memory_order_relaxed);
        atomic_store_explicit(&r->state, f->any32 % 5, memory_order_relaxed);
    } else if (kind == 1) {
        atomic_store_explicit(&r->claim, f->v, memory_order_relaxed);
    } else {
        atomic_store_explicit(&r->ended, f->v, memory_order_relaxed);
        atomic_store_explicit(&r->sleep, f->any32, memory_order_relaxed);
    }
}

/* A field the daemon acts on: of a slot, a record, the header, a cell or
 * a group. relaxed, all: as above. */
static void write_field(const struct sb_segment *seg, struct in *in)
{
    uint32_t kind = (uint32_t)take(in, 1) % 10, idx = (uint32_t)take(in, 1), pid;
    struct field_val f = {.sel = (uint32_t)take(in, 1), .any32 = (uint32_t)take(in, 4)};
    uint64_t start;

    f.v = pick_value(seg, f.sel, take(in, 8));
    if (kind < 3) {
        write_slot(seg, &seg->slots[idx % seg->g.max_subs], kind, &f);
    } else if (kind < 6) {
        write_rec(&seg->pubs[idx % seg->g.max_pubs], kind - 3, &f);
    } else if (kind == 6) {
        atomic_store_explicit(&seg->hdr->tail, f.v, memory_order_relaxed);
    } else if (kind == 7) {
        atomic_store_explicit(&sb_cell(seg, idx)->stamp, f.v, memory_order_relaxed);
    } else if (kind == 8) {
        atomic_store_explicit(&seg->groups[idx % seg->g.max_groups].cursor, f.v,
                              memory_order_relaxed);
    } else {
        pick_owner(f.sel, f.any32, &pid, &start);
        atomic_store_explicit(&seg->hdr->data_waiters, f.any32, memory_order_relaxed);
        atomic_store_explicit(&seg->hdr->space_waiters, f.any32 >> 8, memory_order_relaxed);
        atomic_store_explicit(&seg->hdr->excl_owner, pid, memory_order_relaxed);
    }
}

/* Any aligned word of the mapping, 64 or 32 bits wide. */
static void write_word(const struct sb_segment *seg, struct in *in, int wide)
{
    uint64_t off = take(in, 2) * (wide ? 8u : 4u) % seg->g.total_len;
    uint64_t v = take(in, wide ? 8 : 4);
    uint8_t *at = (uint8_t *)seg->base + off;

    /* relaxed: a hostile writer orders nothing. */
    if (wide)
        atomic_store_explicit((_Atomic uint64_t *)(void *)at, v, memory_order_relaxed);
    else
        atomic_store_explicit((_Atomic uint32_t *)(void *)at, (uint32_t)v, memory_order_relaxed);
}

/* ------------------------------------------------------------ operations */

/* The most slices a pass, and the one a death during it starts, may take:
 * each slice but a pass's last runs at least one step (a slot, a record,
 * a group, a topic's end, a bucket of processes without a pidfd), however
 * slow the machine. */
static uint64_t pass_slices_max(const struct sbd_reaper *r)
{
    uint64_t steps = r->nbuckets;

    for (int i = 0; i < N_TOPICS; i++)
        steps += 2u * topic_reqs[i].max_subscribers + 2u * topic_reqs[i].max_publishers +
                 topic_reqs[i].max_groups + 2u;
    return 2 * (steps + 1);
}

/* A slice: bounded by step cost between looks at the clock; a CPU time
 * bound catches a hang. */
static void run_slice(struct sbd_reaper *r)
{
    uint64_t t0 = sb_now_ns(CLOCK_THREAD_CPUTIME_ID);

    sbd_reaper_slice(r);
    CHECK(sb_now_ns(CLOCK_THREAD_CPUTIME_ID) - t0 < SLICE_MAX_NS);
    CHECK(r->gap_max < 2 * SBD_REAPER_CLOCK_STEPS);
}

/* A whole pass, which must end within pass_slices_max() slices. */
static void run_pass(struct sbd_reaper *r)
{
    uint64_t slices = 0;

    sbd_reaper_pass(r);
    while (sbd_reaper_busy(r) && slices++ < pass_slices_max(r))
        run_slice(r);
    CHECK(!sbd_reaper_busy(r));
}

/* The daemon's dead-letter and stall passes over the pending tables of a
 * scribbled segment: every entry handed out must lie in the ring. */
static void ack_look(struct sbd_topic *t)
{
    const struct sb_segment *seg = &t->t->seg;
    struct sb_admin_dead d;
    char dl[SHMBUS_TOPIC_NAME_MAX + 1];
    uint64_t seq;
    uint32_t pos = 0, entry, owner;

    for (uint32_t g = 0; g < seg->g.max_groups; g++) {
        sb_admin_ack_dead_letter(t->t, g, dl, sizeof(dl));
        if (sb_admin_ack_gate(t->t, g, &seq, &entry, &owner))
            sb_admin_ack_stalled(t->t, g, entry);
    }
    for (int n = 0; sb_admin_ack_dead_next(t->t, &pos, &d); n++) {
        CHECK((const uint8_t *)d.data >= seg->cells &&
              (const uint8_t *)d.data + d.len <= seg->base + seg->g.total_len);
        sb_admin_ack_dead_done(t->t, &d, n & 1);
    }
}

/* What a client's request that only looks leads to: open the topic
 * again (@p op 0), read its info and slots (8), list the topics (9). */
static void control_look(struct sbd_topic *t, int which, uint32_t op)
{
    shmbus_slot_info slots[8];
    shmbus_group_info groups[8];
    shmbus_topic_entry list[N_TOPICS];
    shmbus_topic_info info;
    struct sbd_topic *again;
    char why[SB_WIRE_ERR_TEXT];
    int created;

    if (op == 0) {
        CHECK(sbd_topic_open(&fz.reg, &topic_reqs[which], &again, &created, why, sizeof(why)) ==
                  0 &&
              again == t);
    } else if (op == 8) {
        shmbus_topic_info_get(t->t, &info);
        shmbus_topic_slots_get(t->t, slots, 8);
        shmbus_topic_groups_get(t->t, groups, 8);
        sb_admin_waiters_settle(t->t);
        ack_look(t);
    } else {
        urcu_memb_read_lock();
        CHECK(sbd_topic_list(&fz.reg, "", list, N_TOPICS) == N_TOPICS);
        urcu_memb_read_unlock();
    }
}

/* What a client's request, or the daemon on its behalf, does. */
static void control_op(struct sbd_topic *t, int which, struct in *in)
{
    uint32_t op = (uint32_t)take(in, 1) % 10, idx = (uint32_t)take(in, 1), pid;
    uint64_t arg = take(in, 8), start;
    const struct sb_segment *seg = &t->t->seg;
    char name[16];

    switch (op) {
    case 1:
        pick_owner(idx, (uint32_t)arg, &pid, &start);
        sb_admin_slot_take(t->t, pid, start);
        break;
    case 2:
        sbd_slot_reap(&fz.reg, t, idx % seg->g.max_subs);
        break;
    case 3:
        sb_admin_pub_settle(t->t, idx % seg->g.max_pubs);
        break;
    case 4:
        if (t->info.flags & SHMBUS_TOPIC_EXCLUSIVE)
            break; /* not for them (admin.h) */
        sb_admin_pub_unblock(t->t, idx % seg->g.max_pubs, pick_value(seg, idx, arg), idx & 1);
        sb_admin_pub_end_rest(t->t, idx % seg->g.max_pubs, pick_value(seg, idx, arg));
        break;
    case 5:
        if (t->info.mode == SHMBUS_RELIABLE) /* evictions are of reliable topics */
            sb_admin_slot_evict(t->t, idx % seg->g.max_subs);
        break;
    case 6:
        snprintf(name, sizeof(name), "g%u", idx % 4);
        if (idx & 4) { /* an acknowledging member's request (admin_ack.c) */
            struct sb_admin_ack ack = {.max_deliveries = (uint32_t)arg % 1002, .topic = "fz.topic"};
            sb_admin_group_number(t->t, name, &ack);
        } else {
            sb_admin_group_number(t->t, name, NULL);
        }
        sb_admin_groups_reconcile(t->t);
        break;
    case 7:
        if (sb_admin_pub_dead(t->t, idx % seg->g.max_pubs))
            sb_admin_pub_settle(t->t, idx % seg->g.max_pubs);
        break;
    default:
        control_look(t, which, op);
        break;
    }
}

/* The input's child: pause until killed (or until the fuzzer dies). */
static void kid_wait(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0); /* the fuzzer died before the signal was asked for */
    for (;;)
        pause();
}

/* Deliver the pidfd events waiting in the control loop's epoll set (at
 * most @p ms for the first) to the reaper, and run the slice that is due,
 * as the control loop does after a batch. */
static void deliver_deaths(struct sbd_reaper *r, int ms)
{
    struct epoll_event ev[8];
    int n = epoll_wait(fz.epfd, ev, 8, ms);
    uint64_t slices = r->slices;

    for (int i = 0; i < n; i++)
        if ((uintptr_t)ev[i].data.ptr & SBD_REAPER_TAG)
            sbd_reaper_event(r, ev[i].data.ptr);
    CHECK(r->slices == slices); /* an event runs no slice of its own */
    sbd_reaper_run(r);
}

/* A death: the first starts the input's child, which the reaper watches
 * as it does a client after its hello; the second kills it and hands its
 * pidfd's event to the reaper. */
static void death_step(struct sbd_reaper *r)
{
    if (fz.kid == 0) {
        pid_t parent = getpid();

        fz.kid = fork();
        CHECK(fz.kid >= 0);
        if (fz.kid == 0)
            kid_wait(parent);
        CHECK(sb_proc_start_get(fz.kid, &fz.kid_start) == 1);
        fz.kid_alive = 1;
        sbd_reaper_watch(r, fz.kid, fz.kid_start);
    } else if (fz.kid_alive) {
        CHECK(kill(fz.kid, SIGKILL) == 0);
        CHECK(waitpid(fz.kid, NULL, 0) == fz.kid);
        fz.kid_alive = 0;
        deliver_deaths(r, 1000); /* the pidfd is readable once it exited */
    }
}

/* The input's child is gone: killed, waited for. */
static void kid_end(void)
{
    if (fz.kid > 0 && fz.kid_alive) {
        kill(fz.kid, SIGKILL);
        waitpid(fz.kid, NULL, 0);
    }
    fz.kid = 0;
    fz.kid_alive = 0;
}

/* One step of the input. @p sleeps counts the sleeps left. */
static void step(struct sbd_reaper *r, struct sbd_topic *t, int which, struct in *in, int *sleeps)
{
    const struct sb_segment *seg = &t->t->seg;
    uint8_t op = (uint8_t)take(in, 1);

    switch (op % 8) {
    case 0:
        write_word(seg, in, 1);
        break;
    case 1:
        write_word(seg, in, 0);
        break;
    case 2:
    case 3:
        write_field(seg, in);
        break;
    case 4:
        sbd_reaper_pass(r);
        sbd_reaper_run(r);
        break;
    case 5:
        run_pass(r);
        break;
    case 6:
        if (op & 0x80)
            death_step(r);
        else if (*sleeps > 0) {
            (*sleeps)--;
            usleep(STALL_MS * 1000 + 100);
        }
        break;
    default:
        control_op(t, which, in);
        break;
    }
}

/* Back to fresh topics and a fresh reaper: every pass scans them all, so
 * that an input does the same whatever ran before it. */
static void reset(struct sbd_reaper *r)
{
    for (int i = 0; i < N_TOPICS; i++) {
        struct sbd_topic *t = fz.topics[i];
        void *base;
        size_t len;

        sb_admin_mapping(t->t, &base, &len);
        memcpy(base, fz.fresh[i], len);
        sbd_stall_free(t->stall);
        t->stall = NULL;
        t->stall_nomem = 0;
        t->procs = 0;
        t->procs_full = 0;
    }
    CHECK(sbd_reaper_init(r, &fz.reg, fz.epfd, fz.cfg.reap_interval_ms, NULL) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct in in = {data, size};
    struct sbd_reaper r;
    int which, sleeps = SLEEPS_MAX;

    if (!ready) {
        setup();
        ready = 1;
    }
    which = (int)(take(&in, 1) % N_TOPICS);
    reset(&r);
    while (in.n > 0) {
        uint64_t t0 = sb_now_ns(CLOCK_THREAD_CPUTIME_ID);

        step(&r, fz.topics[which], which, &in, &sleeps);
        CHECK(sb_now_ns(CLOCK_THREAD_CPUTIME_ID) - t0 < STEP_MAX_NS);
    }
    run_pass(&r); /* whatever the input left, a pass ends */
    sbd_reaper_fini(&r);
    kid_end();
    return 0;
}
