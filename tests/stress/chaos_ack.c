/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chaos test's work queue (chaos.h): acknowledging members of the
 * group CH_ACK_GROUP of the reliable topic, killable or the sentinel, and
 * the parent's side of the queue: the dead-letter topic it reads all
 * along, and the exact accounting at the end (ack_ledger.h).
 *
 * A member takes up to its max_inflight, checks each message (intact,
 * from a publisher of the topic and its process, a delivery number in
 * range and new for that seq), nacks a poison one (ak_is_poison()) with a
 * short delay, and acknowledges any other; a killable member sometimes
 * lingers before the ack, so that kills land between take and ack. A
 * message is never taken twice as the same delivery; the sentinel member
 * moves the group's cursor all along and drains the queue at the end.
 */
#include "stress/chaos.h"

/* ----------------------------------------------------------- the members */

struct ch_acker {
    const struct ch_kid *k;
    struct ch_conn c;
    uint64_t rng, cursor;
    uint32_t n;
    struct {
        uint64_t seq;
        int poison;
    } held[CH_ACK_INFLIGHT_S];
};

/* A message taken: check it and note its delivery. @return 0 or CH_FAILED. */
static int ch_acker_got(struct ch_acker *a, const uint8_t *buf, int len, const shmbus_msg *m)
{
    const struct ch_kid *k = a->k;
    struct tu_payload p = {0};

    if (ch_check_payload(k, buf, (uint32_t)len, m->seq, &p) != 0 || ch_check_pid(k, m, &p) != 0)
        return CH_FAILED;
    if (m->deliveries < 1 || m->deliveries > CH_ACK_DELIVERIES)
        return ch_fail(k->sh, "%s: seq %llu as delivery %u of at most %u", ch_who(k),
                       (unsigned long long)m->seq, m->deliveries, CH_ACK_DELIVERIES);
    if (m->seq < CH_SEQS && ak_took(&k->sh->acks[m->seq], m->deliveries))
        return ch_fail(k->sh, "%s: seq %llu delivered twice as delivery %u", ch_who(k),
                       (unsigned long long)m->seq, m->deliveries);
    if (a->n >= k->inflight)
        return ch_fail(k->sh, "%s: seq %llu taken while holding %u of max_inflight %u", ch_who(k),
                       (unsigned long long)m->seq, a->n, k->inflight);
    a->held[a->n].seq = m->seq;
    a->held[a->n].poison = ak_is_poison(p.publisher, p.seq, CH_POISON_ONE_IN);
    a->n++;
    /* relaxed: a counter for the summary. */
    if (!k->sentinel)
        atomic_fetch_add_explicit(&k->sh->acker_msgs, 1, memory_order_relaxed);
    return 0;
}

/* Take up to max_inflight: wait for the first, then take what is there. */
static int ch_acker_fill(struct ch_acker *a)
{
    const struct ch_kid *k = a->k;
    uint8_t buf[CH_MSG_MAX];
    shmbus_msg m;
    int n;

    while (a->n < k->inflight) {
        n = shmbus_recv(a->c.sub, buf, sizeof(buf), &m, a->n == 0 ? CH_WAIT_NS : 0);
        if (n == SHMBUS_ERR_TIMEOUT || n == -EAGAIN || n == -EINTR)
            return 0;
        if (n < 0)
            return ch_fail(k->sh, "%s: recv: %s", ch_who(k), shmbus_strerror(n));
        if (ch_acker_got(a, buf, n, &m) != 0)
            return CH_FAILED;
    }
    return 0;
}

/* Nack a poison message, acknowledge any other. */
static int ch_acker_finish(struct ch_acker *a, uint64_t seq, int poison)
{
    const struct ch_kid *k = a->k;
    struct ak_hand *hand = &k->sh->hands[k->hand];
    struct ak_seq *e = seq < CH_SEQS ? &k->sh->acks[seq] : NULL;
    int rc;

    if (poison) {
        if (e != NULL)
            ak_mark_nacked(e, 1);
        rc = shmbus_nack(a->c.sub, seq, (int64_t)(ch_rand(&a->rng) % CH_NACK_DELAY_NS));
        /* relaxed: a counter for the summary. */
        atomic_fetch_add_explicit(&k->sh->nacks, 1, memory_order_relaxed);
    } else {
        if (!k->sentinel && ch_rand(&a->rng) % 4 == 0)
            ch_sleep_us(ch_between(&a->rng, 0, CH_LINGER_US));
        ak_hand_acking(hand, seq);
        rc = shmbus_ack(a->c.sub, seq);
        if (rc == 0 && e != NULL && ak_hand_acked(hand, e) != 0)
            return ch_fail(k->sh, "%s: seq %llu acknowledged twice", ch_who(k),
                           (unsigned long long)seq);
    }
    if (rc < 0)
        return ch_fail(k->sh, "%s: %s %llu: %s", ch_who(k), poison ? "nack" : "ack",
                       (unsigned long long)seq, shmbus_strerror(rc));
    return 0;
}

/* The sentinel: note that the group's cursor moved (monitoring), and once
 * told to drain, finish when the queue is empty: the group at the tail,
 * nothing held, nothing pending (dead letters moved by the daemon). */
static int ch_acker_watch(struct ch_acker *a, int *done)
{
    const struct ch_kid *k = a->k;
    shmbus_sub_stats st;
    struct ak_table *tab;
    int rc;

    shmbus_sub_stats_get(a->c.sub, &st);
    if (st.position != a->cursor) {
        a->cursor = st.position;
        /* relaxed: monitoring. */
        atomic_store_explicit(&k->sh->sent[CH_S_ACKER].last_ms, du_now_ms(), memory_order_relaxed);
    }
    if (!ch_draining(k->sh) || a->n != 0 ||
        /* relaxed: stored before drain, which ch_draining() read with acquire. */
        st.position < atomic_load_explicit(&k->sh->tail, memory_order_relaxed))
        return 0;
    tab = malloc(sizeof(*tab));
    if (tab == NULL)
        return ch_fail(k->sh, "%s: out of memory", ch_who(k));
    rc = ak_table_try(k->bus, ch_topic_names[CH_RELIABLE], CH_ACK_GROUP, tab);
    *done = rc == 0 && tab->n == 0;
    free(tab);
    if (rc < 0)
        return ch_fail(k->sh, "%s: reading the pending table: %s", ch_who(k), shmbus_strerror(rc));
    if (*done)
        ch_report(k, st.received, st.lost, st.position);
    return 0;
}

int ch_acker_run(void *arg)
{
    const struct ch_kid *k = arg;
    struct ch_acker a = {.k = k, .rng = k->seed};
    int64_t drain_end = 0;
    int rc, done = 0;

    rc = ch_conn_open(k, &a.c);
    if (rc == 0 && k->sentinel) {
        /* relaxed, both: polled by the parent. */
        atomic_store_explicit(&k->sh->sent[CH_S_ACKER].last_ms, du_now_ms(), memory_order_relaxed);
        atomic_store_explicit(&k->sh->sent[CH_S_ACKER].ready, 1, memory_order_relaxed);
    }
    while (rc == 0 && !done) {
        rc = ch_acker_fill(&a);
        for (uint32_t i = 0; rc == 0 && i < a.n; i++)
            rc = ch_acker_finish(&a, a.held[i].seq, a.held[i].poison);
        a.n = 0;
        if (rc == 0 && k->sentinel)
            rc = ch_acker_watch(&a, &done);
        if (rc == 0 && k->sentinel && ch_draining(k->sh) && drain_end == 0)
            drain_end = du_now_ms() + CH_DRAIN_MS;
        if (rc == 0 && !done && drain_end != 0 && du_now_ms() > drain_end)
            rc = ch_fail(k->sh, "%s: the queue is not empty %d ms after the end", ch_who(k),
                         CH_DRAIN_MS);
        if (rc == 0)
            rc = ch_keep_connected(k, &a.c);
    }
    ch_conn_close(&a.c);
    return rc;
}

/* ------------------------------------------------------ the parent's side */

void ch_acks_open(struct ch_acks *a, shmbus_bus *bus)
{
    shmbus_topic_opts o = {
        .mode = SHMBUS_RELIABLE, .capacity = CH_DLQ_CAPACITY, .max_msg_size = CH_DLQ_MSG_MAX};
    shmbus_sub_opts so = {0};

    assert_shmbus_ok(shmbus_open(bus, CH_DLQ, &o, 0, &a->dlq));
    assert_shmbus_ok(shmbus_sub_create(a->dlq, &so, &a->dl_sub));
}

void ch_acks_killed(struct ch_acks *a, struct ch_shared *sh, int j)
{
    uint64_t hand = ak_hand_take(&sh->hands[j]);

    a->could_return += (j % 2 ? CH_ACK_INFLIGHT : 1) + 1;
    if (hand == 0)
        return;
    if (a->n_in_hand == a->cap_in_hand) {
        a->cap_in_hand = a->cap_in_hand ? 2 * a->cap_in_hand : 64;
        a->in_hand = realloc(a->in_hand, a->cap_in_hand * sizeof(*a->in_hand));
        assert_non_null(a->in_hand);
    }
    a->in_hand[a->n_in_hand++] = hand - 1;
}

/* One dead letter: well formed, of our topic and group, a message of a
 * publisher of the topic, given up after CH_ACK_DELIVERIES deliveries:
 * nacked (poison), or its last member died holding it. */
static void ch_acks_dead_letter(struct ch_acks *a, struct ch_shared *sh, const void *buf, int n)
{
    shmbus_dead_letter dl;
    struct tu_payload p = {0};
    int rc = shmbus_dead_letter_parse(buf, (size_t)n, &dl), poison;

    if (rc < 0)
        fail_msg("dead letter of %d bytes: %s", n, shmbus_strerror(rc));
    /* relaxed: the publisher stored its topic before the fork. */
    if (strcmp(dl.topic, ch_topic_names[CH_RELIABLE]) != 0 || strcmp(dl.group, CH_ACK_GROUP) != 0 ||
        !tu_check(dl.data, dl.len, &p) || p.publisher >= CH_IDS ||
        atomic_load_explicit(&sh->pubs[p.publisher].topic, memory_order_relaxed) !=
            CH_RELIABLE + 1 ||
        dl.timestamp_ns == 0 || dl.dead_ns < dl.timestamp_ns)
        fail_msg("dead letter: topic '%s' group '%s' seq %llu (%u bytes), published %llu, dead "
                 "%llu",
                 dl.topic, dl.group, (unsigned long long)dl.seq, dl.len,
                 (unsigned long long)dl.timestamp_ns, (unsigned long long)dl.dead_ns);
    poison = ak_is_poison(p.publisher, p.seq, CH_POISON_ONE_IN);
    if (dl.deliveries != CH_ACK_DELIVERIES ||
        (dl.reason != SHMBUS_DL_NACKED && dl.reason != SHMBUS_DL_DIED) ||
        (dl.reason == SHMBUS_DL_NACKED &&
         (!poison || (dl.seq < CH_SEQS && !ak_was_nacked(&sh->acks[dl.seq])))))
        fail_msg("dead letter seq %llu%s: %u deliveries, reason %u", (unsigned long long)dl.seq,
                 poison ? " (poison)" : "", dl.deliveries, dl.reason);
    if (dl.seq < CH_SEQS)
        ak_dead(&sh->acks[dl.seq], dl.reason);
    a->dl_read++;
}

void ch_acks_read_dlq(struct ch_acks *a, struct ch_shared *sh)
{
    uint8_t buf[CH_DLQ_MSG_MAX];
    shmbus_msg m;
    int n;

    while ((n = shmbus_recv(a->dl_sub, buf, sizeof(buf), &m, 0)) >= 0) {
        if (m.lost != 0)
            fail_msg("%llu dead letters lost", (unsigned long long)m.lost);
        ch_acks_dead_letter(a, sh, buf, n);
    }
    if (n != -EAGAIN && n != SHMBUS_ERR_TIMEOUT)
        fail_msg("reading the dead letters: %s", shmbus_strerror(n));
}

/* A message of the reliable topic (the sentinel subscriber got it), not
 * a claim the daemon ended. */
static int ch_acks_is_msg(uint64_t seq, void *arg)
{
    const struct ch_shared *sh = arg;

    /* relaxed: every writer has been reaped. */
    return (atomic_load_explicit(&sh->seqs[seq], memory_order_relaxed) & CH_SEQ_GOT) != 0;
}

void ch_acks_account(struct ch_acks *a, struct ch_shared *sh, const char *bus, uint64_t published,
                     unsigned kill9)
{
    shmbus_topic_info ti;
    struct ak_books b = {.l = sh->acks,
                         .published = published < CH_SEQS ? published : CH_SEQS,
                         .is_msg = ch_acks_is_msg,
                         .arg = sh,
                         .in_hand = a->in_hand,
                         .n_in_hand = a->n_in_hand,
                         .dead_twice_max = kill9,
                         .tab = &a->tab};
    char why[512];

    ch_acks_read_dlq(a, sh);
    assert_shmbus_ok(shmbus_topic_info_get(a->dlq, &ti));
    ak_table_read(bus, ch_topic_names[CH_RELIABLE], CH_ACK_GROUP, &a->tab);
    if (a->tab.n != 0 || a->dl_read != ti.published)
        fail_msg("work queue at the end: %u pending, %llu of %llu dead letters read", a->tab.n,
                 (unsigned long long)a->dl_read, (unsigned long long)ti.published);
    if (a->n_in_hand > 0)
        qsort(a->in_hand, a->n_in_hand, sizeof(*a->in_hand), ak_u64_cmp);
    if (ak_account(&b, &a->sums, why, sizeof(why)) < 0)
        fail_msg("work queue accounting: %s", why);
    if (a->sums.returns > a->could_return || a->sums.poison_dead != a->sums.poison ||
        a->tab.lost != 0 || a->tab.redelivered < a->sums.seen_redeliveries)
        fail_msg("work queue: %llu redeliveries of messages never nacked (killed ackers held at "
                 "most %llu); %llu of %llu poison dead-lettered; group lost %llu, redelivered "
                 "%llu (seen %llu)",
                 (unsigned long long)a->sums.returns, (unsigned long long)a->could_return,
                 (unsigned long long)a->sums.poison_dead, (unsigned long long)a->sums.poison,
                 (unsigned long long)a->tab.lost, (unsigned long long)a->tab.redelivered,
                 (unsigned long long)a->sums.seen_redeliveries);
}

void ch_acks_summary(const struct ch_acks *a, const struct ch_shared *sh, unsigned kills)
{
    const struct ak_sums *s = &a->sums;

    /* relaxed, both: written by reaped children. */
    print_message("chaos work queue: killed %u ackers (%zu with an ack in hand); %llu messages = "
                  "%llu acknowledged (%llu twice after a kill) + %llu dead-lettered (%llu poison, "
                  "%llu never nacked) + %llu pending; killable ackers took %llu, %llu nacks, "
                  "%llu redeliveries seen (group: %llu), %llu dead letters failed\n",
                  kills, a->n_in_hand, (unsigned long long)s->messages,
                  (unsigned long long)s->acked, (unsigned long long)s->twice,
                  (unsigned long long)s->dead, (unsigned long long)s->poison_dead,
                  (unsigned long long)s->dead_unnacked, (unsigned long long)s->pending,
                  (unsigned long long)atomic_load_explicit(&sh->acker_msgs, memory_order_relaxed),
                  (unsigned long long)atomic_load_explicit(&sh->nacks, memory_order_relaxed),
                  (unsigned long long)s->seen_redeliveries, (unsigned long long)a->tab.redelivered,
                  (unsigned long long)a->tab.dead_letter_failed);
}

void ch_acks_close(struct ch_acks *a)
{
    shmbus_sub_destroy(a->dl_sub);
    shmbus_topic_destroy(a->dlq);
    free(a->in_hand);
}
