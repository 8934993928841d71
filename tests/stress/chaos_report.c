/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chaos test's end-of-run report (chaos.h): once every child is
 * reaped, the checks on what the sentinels, the members and the remote
 * subscribers recorded in the shared state and the per-seq map, against
 * the topics' counters, and the summary printed for each topic, the
 * group, the remote subscribers, the work queue and the daemon.
 */
#include "stress/chaos.h"

/* Reliable: every loss is a dead publisher's claim the daemon ended. */
void ch_check_reliable(const struct ch_run *run)
{
    const struct ch_sentinel *s = &run->sh->sent[ch_sidx(CH_SUB, CH_RELIABLE)];
    shmbus_topic_info ti;
    /* relaxed, all: the children that wrote them have been reaped. */
    uint64_t lost = atomic_load_explicit(&s->lost, memory_order_relaxed);
    uint64_t overruns = atomic_load_explicit(&run->sh->overruns[CH_RELIABLE], memory_order_relaxed);
    unsigned killed = run->kills[CH_RELIABLE][CH_PUB];

    assert_shmbus_ok(shmbus_topic_info_get(run->t[CH_RELIABLE], &ti));
    if (overruns != 0 || lost > killed || lost != ti.skipped || ti.skipped != ti.unblocked ||
        atomic_load_explicit(&s->position, memory_order_relaxed) != ti.published) {
        ch_dump(run);
        fail_msg("reliable: sentinel lost %llu, %u publishers killed, %llu overruns; topic "
                 "skipped %llu, unblocked %llu, published %llu, sentinel at %llu",
                 (unsigned long long)lost, killed, (unsigned long long)overruns,
                 (unsigned long long)ti.skipped, (unsigned long long)ti.unblocked,
                 (unsigned long long)ti.published,
                 (unsigned long long)atomic_load_explicit(&s->position, memory_order_relaxed));
    }
}

/* Lossy: the sentinel passed every seq (its own totals were checked). */
void ch_check_lossy(const struct ch_run *run)
{
    const struct ch_sentinel *s = &run->sh->sent[ch_sidx(CH_SUB, CH_LOSSY)];
    shmbus_topic_info ti;

    assert_shmbus_ok(shmbus_topic_info_get(run->t[CH_LOSSY], &ti));
    /* relaxed: written by a reaped child. */
    assert_int_equal(atomic_load_explicit(&s->position, memory_order_relaxed), ti.published);
}

/* Each reliable seq is a message or a loss to the sentinel subscriber; a
 * member took only messages, and finished only what it took; the bridge
 * lost only losses. */
void ch_check_seqs(const struct ch_run *run, struct ch_seqsum *sum)
{
    shmbus_topic_info ti;

    assert_shmbus_ok(shmbus_topic_info_get(run->t[CH_RELIABLE], &ti));
    memset(sum, 0, sizeof(*sum));
    sum->mapped = ti.published < CH_SEQS ? ti.published : CH_SEQS;
    for (uint64_t s = 0; s < sum->mapped; s++) {
        /* relaxed: every writer has been reaped. */
        unsigned b = atomic_load_explicit(&run->seqs[s], memory_order_relaxed);
        int got = (b & CH_SEQ_GOT) != 0, taken = (b & CH_SEQ_TAKEN) != 0;
        int done = (b & CH_SEQ_DONE) != 0;

        if (got == ((b & CH_SEQ_LOST) != 0) || (!got && taken) || (done && !taken) ||
            (got && (b & CH_SEQ_BRIDGE_LOST))) {
            ch_dump(run);
            fail_msg("reliable seq %llu: %s to the sentinel; member: %s; %s lost by the bridge",
                     (unsigned long long)s,
                     got ? (b & CH_SEQ_LOST ? "both a message and lost" : "a message")
                         : (b & CH_SEQ_LOST ? "lost" : "unseen"),
                     done ? (taken ? "delivered" : "done, never taken")
                          : (taken ? "taken" : "none"),
                     b & CH_SEQ_BRIDGE_LOST ? "reported" : "not reported");
        }
        sum->got += got;
        sum->done += done;
        sum->in_hand += taken && !done;
        sum->undelivered += got && !done;
        sum->bridge_lost += (b & CH_SEQ_BRIDGE_LOST) != 0;
    }
}

/* Group: every message was delivered to a member or counted abandoned
 * (C - D <= A: in hand at a kill, or taken and not yet in the callback),
 * and the daemon counted at most one message per dead member (A <= K). */
void ch_check_group(const struct ch_run *run, const struct ch_seqsum *sum)
{
    const struct ch_sentinel *s = &run->sh->sent[CH_S_MEMBER];
    unsigned killed = run->kills[CH_RELIABLE][CH_MEMBER];
    shmbus_topic_info ti;

    assert_shmbus_ok(shmbus_topic_info_get(run->t[CH_RELIABLE], &ti));
    /* relaxed: written by a reaped child. */
    if (sum->undelivered > ti.abandoned || ti.abandoned > killed || ti.evicted != 0 ||
        atomic_load_explicit(&s->position, memory_order_relaxed) != ti.published) {
        ch_dump(run);
        fail_msg("group: %llu of %llu messages delivered to no member (%llu in hand at a kill), "
                 "%llu abandoned, %u members killed, %llu evicted, group at %llu of %llu",
                 (unsigned long long)sum->undelivered, (unsigned long long)sum->got,
                 (unsigned long long)sum->in_hand, (unsigned long long)ti.abandoned, killed,
                 (unsigned long long)ti.evicted,
                 (unsigned long long)atomic_load_explicit(&s->position, memory_order_relaxed),
                 (unsigned long long)ti.published);
    }
}

/* Remote: the sentinel reached the tail, over at least one connection per
 * daemon (each bounce ends its connection). */
void ch_check_remote(const struct ch_run *run)
{
    const struct ch_sentinel *s = &run->sh->sent[CH_S_REMOTE];
    shmbus_topic_info ti;
    /* relaxed, both: written by a reaped child. */
    uint64_t pos = atomic_load_explicit(&s->position, memory_order_relaxed);
    uint64_t conns = atomic_load_explicit(&s->conns, memory_order_relaxed);

    assert_shmbus_ok(shmbus_topic_info_get(run->t[CH_RELIABLE], &ti));
    if (pos != ti.published || conns < 1u + run->bounces[0] + run->bounces[1]) {
        ch_dump(run);
        fail_msg("remote: the sentinel ended at %llu of %llu, over %llu connections (%u bounces)",
                 (unsigned long long)pos, (unsigned long long)ti.published,
                 (unsigned long long)conns, run->bounces[0] + run->bounces[1]);
    }
}

/* relaxed: written by reaped children. */
#define CH_LD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

void ch_summary(const struct ch_run *run, unsigned seconds, const struct ch_seqsum *sum)
{
    const struct ch_shared *sh = run->sh;
    const struct ch_sentinel *m = &sh->sent[CH_S_MEMBER], *r = &sh->sent[CH_S_REMOTE];
    shmbus_topic_info ti[CH_TOPICS];

    for (int i = 0; i < CH_TOPICS; i++)
        shmbus_topic_info_get(run->t[i], &ti[i]);
    for (int i = 0; i < CH_TOPICS; i++)
        print_message("chaos %s: %u s; killed %u publishers, %u subscribers; sentinel got %llu "
                      "lost %llu of %llu; killable subscribers got %llu; skipped %llu "
                      "(daemon-ended %llu), overruns %llu; longest sentinel gap: receive "
                      "%lld ms, publish %lld ms\n",
                      ch_topic_names[i], seconds, run->kills[i][CH_PUB], run->kills[i][CH_SUB],
                      CH_LD(sh->sent[ch_sidx(CH_SUB, i)].count),
                      CH_LD(sh->sent[ch_sidx(CH_SUB, i)].lost), (unsigned long long)ti[i].published,
                      CH_LD(sh->churn_msgs[i]), (unsigned long long)ti[i].skipped,
                      (unsigned long long)ti[i].unblocked, (unsigned long long)ti[i].overruns,
                      (long long)run->gap[ch_sidx(CH_SUB, i)],
                      (long long)run->gap[ch_sidx(CH_PUB, i)]);
    print_message("chaos group: killed %u members; delivered %llu of %llu messages (sentinel "
                  "%llu, killable %llu), to none %llu (in hand at a kill %llu), abandoned %llu; "
                  "longest gap %lld ms\n",
                  run->kills[CH_RELIABLE][CH_MEMBER], (unsigned long long)sum->done,
                  (unsigned long long)sum->got, CH_LD(m->count), CH_LD(sh->member_msgs),
                  (unsigned long long)sum->undelivered, (unsigned long long)sum->in_hand,
                  (unsigned long long)ti[CH_RELIABLE].abandoned, (long long)run->gap[CH_S_MEMBER]);
    print_message("chaos remote: killed %u; sentinel got %llu lost %llu over %llu connections, "
                  "missed %llu between them; killable got %llu; bridge-lost seqs %llu; "
                  "longest gap %lld ms\n",
                  run->kills[CH_RELIABLE][CH_REMOTE], CH_LD(r->count), CH_LD(r->lost),
                  CH_LD(r->conns), CH_LD(r->missed), CH_LD(sh->remote_msgs),
                  (unsigned long long)sum->bridge_lost, (long long)run->gap[CH_S_REMOTE]);
    ch_acks_summary(&run->acks, sh, run->kills[CH_RELIABLE][CH_ACKER]);
    print_message("chaos daemon: %u bounces by SIGTERM, %u by SIGKILL; longest without a daemon "
                  "%lld ms\n",
                  run->bounces[0], run->bounces[1], (long long)run->away_ms);
}

#undef CH_LD
