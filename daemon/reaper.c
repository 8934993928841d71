/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reaper's scan (reaper.h): a pass over every topic, one slot,
 * record or group at a time (a step: a bounded amount of work whatever
 * the segment holds), run in slices of about SBD_REAPER_SLICE_NS, each
 * followed by SBD_REAPER_IDLE_FACTOR times its own CPU time without one. A
 * pass starts at a tick once the last one is done, and at once after a
 * death if none is under way. A process known dead stays in the table
 * (reaper_proc.c), marked, so that every slot and record naming it is
 * found dead at once, and the slices run at SBD_REAPER_IDLE_FACTOR_DEAD
 * (half a core) until the walk has been everywhere once since the death:
 * the rest of the pass under way, then the next one as far as where the
 * walk was at the death. Work on the segments goes through admin.h.
 */
#include "reaper.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "deadletter.h"
#include "events.h"
#include "log.h"
#include "reaped.h"
#include "reaper_proc.h"
#include "stall.h"
#include "registry/admin.h"
#include "util/clock.h"

#define REAPER_BUCKETS 1024u

/* The steps of a topic's scan, in order (topic_step()). */
enum scan_phase {
    PH_SLOTS,     /* dead slot owners: reaped */
    PH_PUBS,      /* dead publishers: records marked, claims ended */
    PH_RECONCILE, /* groups counted without members (admin.h) */
    PH_CLAIMS,    /* stall timeouts (stall.h): claims first */
    PH_GATES,
    PH_GROUPS,
    PH_ACKS, /* acknowledged groups' pending messages (stall.h) */
    PH_DEAD, /* dead letters (deadletter.h): one message a step */
    PH_DONE
};

static void pass_begin(struct sbd_reaper *r);

int sbd_reaper_init(struct sbd_reaper *r, struct sbd_registry *reg, int epfd, uint32_t interval_ms,
                    void *timer_tag)
{
    struct itimerspec its = {
        .it_interval = {.tv_sec = interval_ms / 1000,
                        .tv_nsec = (long)(interval_ms % 1000) * 1000000},
    };
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = timer_tag};

    memset(r, 0, sizeof(*r));
    r->dead_tail = &r->dead;
    r->reg = reg;
    r->epfd = epfd;
    /* Without pidfds (forbidden here), every process is looked up in
     * /proc at every scan. */
    r->pidfd_ok = (sbd_reaper_probe(NULL, NULL) & SBD_REAP_PIDFD) != 0;
    r->nbuckets = REAPER_BUCKETS;
    r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
    if (r->buckets == NULL)
        return -ENOMEM;
    its.it_value = its.it_interval;
    r->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (r->timerfd < 0 || timerfd_settime(r->timerfd, 0, &its, NULL) < 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, r->timerfd, &ev) < 0) {
        int rc = -errno;

        sbd_reaper_fini(r);
        return rc;
    }
    return 0;
}

void sbd_reaper_fini(struct sbd_reaper *r)
{
    for (uint32_t b = 0; b < r->nbuckets && r->buckets != NULL; b++) {
        while (r->buckets[b] != NULL) {
            struct sbd_proc *p = r->buckets[b];

            r->buckets[b] = p->next;
            if (p->pidfd >= 0)
                close(p->pidfd);
            free(p);
        }
    }
    free(r->buckets);
    if (r->timerfd > 0)
        close(r->timerfd);
    memset(r, 0, sizeof(*r));
}

/* End what the DEAD record @p i of @p t left open, if nothing holds it up. */
static void pub_settle(struct sbd_topic *t, uint32_t i)
{
    uint32_t pid = 0;
    uint64_t start, seq = 0;
    int claimed;

    sb_admin_owner(t->t, SB_ADMIN_PUB, i, &pid, &start); /* a DEAD record's pid too */
    claimed = sb_admin_pub_dead_claim(t->t, i, &seq);
    if (!sb_admin_pub_settle(t->t, i))
        return; /* held up: the next look finishes it */
    sbd_log(SBD_INFO, "topic %s: a dead publisher's claim ended", t->name);
    if (!claimed)
        return; /* it claimed no seq: nothing was unblocked */
    sbd_reaped_note(t, pid, SBD_REAPED_CLAIMS, 1);
    sbd_event("unblocked",
              (struct sbd_ev_field[]){SBD_EV_S("topic", t->name), SBD_EV_U("pid", pid),
                                      SBD_EV_U("seq", seq), SBD_EV_S("why", "dead")},
              4);
}

/* Start a pass now if none is under way. */
static void pass_request(struct sbd_reaper *r)
{
    if (!r->active)
        pass_begin(r);
    r->next_ns = 0; /* due now */
}

/* Process @p p is dead: keep it, marked, on the list of the dead, so that
 * the walk reaps what it owns everywhere. The walk goes on from where it
 * is: through the rest of this pass, then the next one as far as the topic
 * it was in (the topics met before the death), which is one full round. */
void sbd_reaper_reap(struct sbd_reaper *r, struct sbd_proc *p)
{
    r->reaped++;
    sbd_log(SBD_INFO, "process %d died: reaping its slots and claims", (int)p->pid);
    if (p->pidfd >= 0) {
        close(p->pidfd); /* leaves the epoll set with it */
        r->npidfds -= p->topic != NULL;
    } else {
        r->npolled--;
    }
    p->pidfd = -1;
    p->dead = 1;
    /* The first death starts its round at once; one under way keeps its
     * pace (a stream of exits must not make every slice due at once). */
    if (r->dead == NULL)
        r->next_ns = 0;
    if (!r->active || (r->cur == NULL && r->topics_done == 0)) {
        if (!r->active)
            pass_begin(r); /* a pass that meets every topic after the death */
        p->until_pass = r->pass;
        p->until_topics = UINT32_MAX;
    } else {
        /* The topic being scanned counts as met: its slots before the
         * step under way were looked at before the death. */
        p->until_pass = r->pass + 1;
        p->until_topics = r->topics_done + (r->cur != NULL);
    }
    p->dead_next = NULL;
    *r->dead_tail = p;
    r->dead_tail = &p->dead_next;
}

/* The walk has finished @p done topics of pass r->pass (UINT32_MAX: all of
 * them): drop the dead it has been everywhere for since they died. The
 * list is in order of death, which is the order of their bounds. */
static void dead_forget(struct sbd_reaper *r, uint32_t done)
{
    while (r->dead != NULL) {
        struct sbd_proc *p = r->dead;

        if (p->until_pass > r->pass || (p->until_pass == r->pass && p->until_topics > done))
            return; /* not everywhere yet, nor anyone who died after it */
        r->dead = p->dead_next;
        sbd_reaper_proc_remove(r, p);
    }
    r->dead_tail = &r->dead;
}

void sbd_reaper_event(struct sbd_reaper *r, void *tagged)
{
    struct sbd_proc *p = (struct sbd_proc *)((uintptr_t)tagged & ~(uintptr_t)SBD_REAPER_TAG);

    /* The slice that reaps it runs after the batch of events (control.c),
     * one slice however many died in it. */
    sbd_reaper_reap(r, p);
}

/* A client truncated the segment of @p t (guard.h): stop serving it. */
static void topic_broken(struct sbd_topic *t)
{
    sbd_log(SBD_ERROR, "topic %s: a client truncated segment %s: removing it", t->name, t->seg);
    shmbus_topic_unlink(t->seg);
    /* relaxed: a flag (sbd_topic_broken()). */
    atomic_store_explicit(&t->broken, 2, memory_order_relaxed);
}

/* Does the daemon keep kept slot @p i of @p t, whose owner died, for
 * adoption (registry.h keeps)? Then it is left gating where its owner
 * left it: the next daemon resends from there. */
static int slot_kept(struct sbd_reaper *r, struct sbd_topic *t, uint32_t i)
{
    return r->reg->keeps != NULL && sb_admin_slot_kept(t->t, i) &&
           r->reg->keeps(r->reg->keeps_arg, t) == 1;
}

/* Slot @p i of @p t: reap it if its owner is dead, unless the daemon keeps
 * it; else note the group it is a member of, which the reconcile step
 * then leaves alone. @return the step's cost. */
static uint32_t slot_check(struct sbd_reaper *r, struct sbd_topic *t, uint32_t i)
{
    uint32_t pid, g, cost = SBD_REAP_STEP_CHEAP;
    uint64_t start;

    if (sb_admin_owner(t->t, SB_ADMIN_SLOT, i, &pid, &start) &&
        !sbd_reaper_owner_check(r, t, (pid_t)pid, start, &cost)) {
        if (slot_kept(r, t, i))
            return SBD_REAP_STEP_COSTLY;
        sbd_slot_reap(r->reg, t, i); /* walks the sessions */
        return SBD_REAP_STEP_COSTLY;
    }
    g = sb_admin_slot_member(t->t, i);
    if (g != 0)
        r->busy[(g - 1) / 64] |= 1ull << ((g - 1) % 64);
    return cost;
}

/* Record @p i of @p t: end a DEAD one's claim (a retry, or left by a
 * daemon before us); mark it DEAD and end its claim if its owner died.
 * @return the step's cost. */
static uint32_t pub_check(struct sbd_reaper *r, struct sbd_topic *t, uint32_t i)
{
    uint32_t pid, cost = SBD_REAP_STEP_CHEAP;
    uint64_t start;

    if (sb_admin_pub_is_dead(t->t, i)) {
        pub_settle(t, i); /* up to 4096 cells and a sort of the claims */
        return SBD_REAP_STEP_COSTLY;
    }
    if (sb_admin_owner(t->t, SB_ADMIN_PUB, i, &pid, &start) &&
        !sbd_reaper_owner_check(r, t, (pid_t)pid, start, &cost) && sb_admin_pub_dead(t->t, i)) {
        sbd_reaped_note(t, pid, SBD_REAPED_PUBLISHERS, 1);
        pub_settle(t, i);
        return SBD_REAP_STEP_COSTLY;
    }
    return cost;
}

/* The items of phase @p ph of @p t; 0 when it is skipped. */
static uint32_t phase_items(const struct sbd_topic *t, enum scan_phase ph)
{
    switch (ph) {
    case PH_SLOTS:
        return t->info.max_subscribers;
    case PH_PUBS:
        return t->info.max_publishers;
    case PH_RECONCILE:
        return 1;
    case PH_CLAIMS:
        return sbd_stall_claims(t) ? t->info.max_publishers : 0;
    case PH_GATES:
        return sbd_stall_gates(t) ? t->info.max_subscribers : 0;
    case PH_GROUPS:
    case PH_ACKS:
        return sbd_stall_gates(t) ? t->info.max_groups : 0;
    case PH_DEAD:
        return sbd_dl_topic(t) ? SBD_DL_PER_PASS : 0;
    default:
        return 0;
    }
}

/* The reconcile step of @p t (admin.h), and its tail read for the stall
 * checks that follow. */
static void reconcile_step(struct sbd_reaper *r, struct sbd_topic *t)
{
    shmbus_topic_info info;

    sb_admin_groups_reconcile_except(t->t, r->busy);
    /* The tail, a line every publish writes, is read once per pass, and
     * only for a topic whose gates have a stall timeout. */
    if (sbd_stall_gates(t)) {
        shmbus_topic_info_get(t->t, &info);
        r->tail = info.published;
    }
}

/* The next dead letter of @p t; none left ends the phase. */
static void dead_step(struct sbd_reaper *r, struct sbd_topic *t)
{
    if (!sbd_dl_step(r->reg, t, &r->dl_pos))
        r->idx = SBD_DL_PER_PASS;
}

/* Item @p i of phase @p ph of @p t, at monotonic @p now_ms. The reconcile
 * and the stall checks may each look at every slot or record (an eviction,
 * ending a claim), a dead letter at every pending entry and one message:
 * costly. @return the step's cost. */
static uint32_t phase_item(struct sbd_reaper *r, struct sbd_topic *t, enum scan_phase ph,
                           uint32_t i, int64_t now_ms)
{
    switch (ph) {
    case PH_SLOTS:
        return slot_check(r, t, i);
    case PH_PUBS:
        return pub_check(r, t, i);
    case PH_RECONCILE:
        reconcile_step(r, t);
        break;
    case PH_CLAIMS:
        sbd_stall_claim(t, i, now_ms);
        break;
    case PH_GATES:
        sbd_stall_slot(t, i, r->tail, now_ms);
        break;
    case PH_GROUPS:
        sbd_stall_group(t, i, r->tail, now_ms);
        break;
    case PH_ACKS:
        sbd_stall_acks(t, i, r->tail, now_ms);
        break;
    case PH_DEAD:
        dead_step(r, t);
        break;
    default:
        break;
    }
    return SBD_REAP_STEP_COSTLY;
}

/* One step of the scan of topic @p t: the next item of the current phase;
 * r->cur becomes NULL when the topic is done for this pass. @return the
 * step's cost. */
static uint32_t topic_step(struct sbd_reaper *r, struct sbd_topic *t, int64_t now_ms)
{
    if (sbd_topic_broken(t) == 1)
        topic_broken(t);
    while (!sbd_topic_broken(t) && r->phase < PH_DONE && r->idx >= phase_items(t, r->phase)) {
        r->phase++;
        r->idx = 0;
    }
    /* Not served any more (nothing to scan), or every phase done. */
    if (sbd_topic_broken(t) || r->phase == PH_DONE) {
        r->cur = NULL;
        return SBD_REAP_STEP_CHEAP;
    }
    return phase_item(r, t, r->phase, r->idx++, now_ms);
}

static void pass_begin(struct sbd_reaper *r)
{
    r->pass++;
    r->active = 1;
    r->poll_bucket = 0;
    r->cur = NULL;
    r->walking = 0;
    r->topics_done = 0;
}

/* The next topic of this pass, or NULL when it has been everywhere; one
 * created behind the iterator waits for the next pass. Call with
 * urcu_memb_read_lock held, in the section walk_resume() began. */
static struct sbd_topic *pass_next_topic(struct sbd_reaper *r)
{
    struct cds_lfht_node *n;

    if (!r->walking)
        cds_lfht_first(r->reg->topics, &r->it);
    else
        cds_lfht_next(r->reg->topics, &r->it);
    r->walking = 1;
    n = cds_lfht_iter_get_node(&r->it);
    if (n == NULL)
        return NULL;
    memcpy(r->at, sbd_topic_of(n)->name, sizeof(r->at));
    return sbd_topic_of(n);
}

/* A new RCU read section: find the walk's place again by the name of the
 * topic it is at. Neither the iterator (its cached next node) nor r->cur
 * is used from an earlier section, which a topic's removal may have
 * freed since. A topic gone from the table (removed, sbd_topic_remove(),
 * or the registry's end) starts the walk over: the pass only gets longer,
 * and the dead are forgotten no earlier. Call with urcu_memb_read_lock
 * held. */
static void walk_resume(struct sbd_reaper *r)
{
    struct cds_lfht_node *n;

    if (!r->walking)
        return; /* not begun: cds_lfht_first() */
    sbd_topic_seek(r->reg, r->at, &r->it);
    n = cds_lfht_iter_get_node(&r->it);
    if (n == NULL) {
        r->walking = 0;
        r->cur = NULL;
        r->topics_done = 0;
        return;
    }
    if (r->cur != NULL)
        r->cur = sbd_topic_of(n); /* the same topic, or one made under its name */
}

/* The pass is over: forget the dead it reaped; go on at once with the next
 * if someone died during it (the walk goes round once from the death). */
static void pass_end(struct sbd_reaper *r)
{
    r->active = 0;
    r->passes++;
    dead_forget(r, UINT32_MAX);
    sbd_reaped_pass_end();
    if (r->dead != NULL)
        pass_begin(r);
}

/* The steps since the clock was last read cost @p cost: note the most. */
static void slice_gap(struct sbd_reaper *r, uint32_t cost)
{
    if (cost > r->gap_max)
        r->gap_max = cost;
}

/* Is the slice begun at @p t0 (ns) over, with @p *cost the cost of the
 * steps since the clock was last read? */
static int slice_over(struct sbd_reaper *r, uint64_t t0, uint32_t *cost)
{
    if (*cost < SBD_REAPER_CLOCK_STEPS)
        return 0;
    slice_gap(r, *cost);
    *cost = 0;
    return sb_mono_ns() - t0 >= SBD_REAPER_SLICE_NS;
}

/* The walk through the topics: steps until the slice begun at @p t0 is
 * over or the pass ends. Call with urcu_memb_read_lock held. */
static void slice_topics(struct sbd_reaper *r, uint64_t t0, uint32_t *cost)
{
    int64_t now_ms = (int64_t)(t0 / 1000000u);

    walk_resume(r);
    while (r->active) {
        if (r->cur == NULL) {
            r->cur = pass_next_topic(r);
            r->phase = PH_SLOTS;
            r->idx = 0;
            r->dl_pos = 0;
            memset(r->busy, 0, sizeof(r->busy));
            if (r->cur == NULL) {
                pass_end(r);
                return; /* a pass that goes on for the dead starts at the next slice */
            }
        }
        *cost += topic_step(r, r->cur, now_ms);
        if (r->cur == NULL)
            dead_forget(r, ++r->topics_done);
        if (slice_over(r, t0, cost))
            return;
    }
}

/* The idle time after a slice that took @p cpu_ns of the thread's CPU
 * time. CPU time, not wall time: a slice the machine stalled (a stop, a
 * VM's steal) did not busy the core for that long. */
static uint64_t slice_idle_ns(const struct sbd_reaper *r, uint64_t cpu_ns)
{
    uint64_t idle =
        (r->dead != NULL ? SBD_REAPER_IDLE_FACTOR_DEAD : SBD_REAPER_IDLE_FACTOR) * cpu_ns;

    return idle < SBD_REAPER_IDLE_MAX_NS ? idle : SBD_REAPER_IDLE_MAX_NS;
}

void sbd_reaper_slice(struct sbd_reaper *r)
{
    uint64_t t0 = sb_mono_ns(), c0 = sb_now_ns(CLOCK_THREAD_CPUTIME_ID), cpu;
    uint32_t cost = 0;

    r->slices++;
    while (r->active && !sbd_reaper_poll_step(r)) {
        cost += SBD_REAP_STEP_COSTLY; /* a bucket of /proc looks */
        if (slice_over(r, t0, &cost))
            goto paced;
    }
    urcu_memb_read_lock();
    slice_topics(r, t0, &cost);
    urcu_memb_read_unlock();
paced:
    slice_gap(r, cost);
    cpu = sb_now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    r->busy_ns += cpu;
    r->next_ns = sb_mono_ns() + slice_idle_ns(r, cpu);
}

void sbd_reaper_pass(struct sbd_reaper *r)
{
    pass_request(r);
}

int sbd_reaper_busy(const struct sbd_reaper *r)
{
    return r->active;
}

int sbd_reaper_wait_ms(const struct sbd_reaper *r)
{
    uint64_t now;

    if (!r->active)
        return -1; /* nothing to do until the timer, or a death */
    now = sb_mono_ns();
    if (r->next_ns <= now)
        return 0;
    /* Rounded up: a wake-up before the slice is due would spin. At most
     * SBD_REAPER_IDLE_MAX_NS away: fits an int. */
    return (int)((r->next_ns - now + 999999u) / 1000000u);
}

void sbd_reaper_run(struct sbd_reaper *r)
{
    if (r->active && r->next_ns <= sb_mono_ns())
        sbd_reaper_slice(r);
}

void sbd_reaper_tick(struct sbd_reaper *r)
{
    uint64_t expirations;

    if (read(r->timerfd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
        return;
    sbd_registry_retry(r->reg);
    if (!r->active)
        pass_request(r);
}
