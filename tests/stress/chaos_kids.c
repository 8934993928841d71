/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chaos test's local children (chaos.h): publishers, subscribers and
 * consumer-group members, killable or sentinels, each reconnecting to
 * whichever daemon serves the bus.
 */
#include "stress/chaos.h"

/* ---------------------------------------------------------------- children */

/* Failures that a bounce explains: no daemon yet, the connection to the
 * last one lost, or a new one still taking the topics over. */
static int ch_daemon_away(int rc)
{
    return rc == SHMBUS_ERR_NO_DAEMON || rc == SHMBUS_ERR_DAEMON_LOST || rc == SHMBUS_ERR_NOT_READY;
}

/* One attempt at connecting, opening the topic and creating the publisher
 * or subscriber (a member joins the group), resuming after the steps that
 * succeeded. @return 0 or an error; *what names the step. */
static int ch_conn_try(const struct ch_kid *k, struct ch_conn *c, const char **what)
{
    shmbus_sub_opts so = {.spin_ns = k->sentinel ? 0 : -1,
                          .group_name = k->role == CH_MEMBER ? CH_GROUP : NULL};
    int rc;

    if (k->role == CH_ACKER) {
        so.group_name = CH_ACK_GROUP;
        so.flags = SHMBUS_SUB_ACK;
        so.max_inflight = k->inflight;
        so.max_deliveries = CH_ACK_DELIVERIES;
    }

    *what = "connect";
    if (c->bus == NULL && (rc = shmbus_connect(k->bus, &c->bus)) < 0)
        return rc;
    *what = "open";
    if (c->t == NULL &&
        (rc = shmbus_open(c->bus, ch_topic_names[k->topic], NULL, SHMBUS_OPEN_NOCREATE, &c->t)) < 0)
        return rc;
    *what = "create";
    return k->role == CH_PUB ? shmbus_pub_create(c->t, &c->pub)
                             : shmbus_sub_create(c->t, &so, &c->sub);
}

/* Connect, open the topic and create the publisher or subscriber: retried
 * while no daemon serves (a bounce) for CH_DAEMON_MS, and a full table
 * (slots of the dead not yet freed) for CH_NO_SLOT_MS. */
int ch_conn_open(const struct ch_kid *k, struct ch_conn *c)
{
    int64_t end = du_now_ms() + CH_DAEMON_MS, no_slot_end = 0, now;
    const char *what;
    int rc;

    memset(c, 0, sizeof(*c));
    while ((rc = ch_conn_try(k, c, &what)) < 0) {
        now = du_now_ms();
        if (rc == SHMBUS_ERR_NO_SLOT && no_slot_end == 0)
            no_slot_end = now + CH_NO_SLOT_MS;
        if (!(ch_daemon_away(rc) && now < end) && !(rc == SHMBUS_ERR_NO_SLOT && now < no_slot_end))
            return ch_fail(k->sh, "%s: %s: %s", ch_who(k), what, shmbus_strerror(rc));
        du_sleep_ms(10);
    }
    c->check_ms = du_now_ms();
    return 0;
}

void ch_conn_close(struct ch_conn *c)
{
    shmbus_pub_destroy(c->pub);
    shmbus_sub_destroy(c->sub);
    shmbus_topic_destroy(c->t);
    shmbus_close(c->bus);
}

/* Every CH_CHECK_MS: reconnect to a new daemon once one serves (none yet
 * is fine), re-registering the topic, publisher and slot with it. */
int ch_keep_connected(const struct ch_kid *k, struct ch_conn *c)
{
    int64_t now = du_now_ms();
    int rc;

    if (now - c->check_ms < CH_CHECK_MS)
        return 0;
    c->check_ms = now;
    rc = shmbus_bus_check(c->bus);
    if (rc == 0 || rc == SHMBUS_ERR_DAEMON_LOST)
        return 0;
    return ch_fail(k->sh, "%s: shmbus_bus_check: %s", ch_who(k), shmbus_strerror(rc));
}

/* Publish index @p i, by copy or in place; killable publishers sometimes
 * hold the claim open (a kill may land there). @return 1 when the index is
 * used, 0 to try it again (the reliable ring stayed full), or CH_FAILED
 * negated. */
static int ch_pub_one(const struct ch_kid *k, shmbus_pub *pub, uint64_t i, uint64_t *rng)
{
    int64_t wait = k->topic == CH_RELIABLE ? CH_WAIT_NS : 0;
    uint32_t len = ch_between(rng, CH_MSG_MIN, CH_MSG_MAX);
    uint8_t buf[CH_MSG_MAX];
    shmbus_claim cl;
    int rc;

    if (ch_rand(rng) % 2 == 0) {
        rc = shmbus_publish(pub, buf, tu_fill(buf, k->id, i, len), wait);
    } else {
        rc = shmbus_pub_claim(pub, &cl, wait);
        if (rc == 0) {
            len = tu_fill(cl.data, k->id, i, len);
            if (!k->sentinel && ch_rand(rng) % 4 == 0)
                ch_sleep_us(ch_between(rng, 0, CH_HOLD_US));
            rc = shmbus_pub_commit(pub, &cl, len);
        }
    }
    if (rc == SHMBUS_ERR_TIMEOUT || rc == -EAGAIN || rc == -EINTR)
        return 0; /* back-pressure: the same index again */
    if (rc == SHMBUS_ERR_OVERRUN) {
        /* relaxed: a counter read after the publishers are gone. */
        atomic_fetch_add_explicit(&k->sh->overruns[k->topic], 1, memory_order_relaxed);
        return 1;
    }
    if (rc < 0)
        return -ch_fail(k->sh, "%s: publish index %llu: %s", ch_who(k), (unsigned long long)i,
                        shmbus_strerror(rc));
    return 1;
}

/* Bursts of 1-32 messages, 0-1 ms apart, until killed (or, a sentinel,
 * until told to stop). */
static int ch_pub_loop(const struct ch_kid *k, struct ch_conn *c)
{
    struct ch_pubrec *rec = &k->sh->pubs[k->id];
    struct ch_sentinel *me = &k->sh->sent[ch_sidx(CH_PUB, k->topic)];
    uint64_t rng = k->seed, i = 0;
    int rc;

    /* relaxed, all: ready and stop are polled; sent and last_ms are
     * ordered for readers by the ring's commit (release) or by waitpid. */
    while (!k->sentinel || atomic_load_explicit(&k->sh->stop, memory_order_relaxed) == 0) {
        for (uint32_t n = ch_between(&rng, 1, 32); n > 0; n--) {
            rc = ch_pub_one(k, c->pub, i, &rng);
            if (rc < 0)
                return -rc;
            if (rc == 0)
                break;
            atomic_store_explicit(&rec->sent, ++i, memory_order_relaxed);
            if (k->sentinel) {
                atomic_store_explicit(&me->count, i, memory_order_relaxed);
                atomic_store_explicit(&me->last_ms, du_now_ms(), memory_order_relaxed);
            }
        }
        if ((rc = ch_keep_connected(k, c)) != 0)
            return rc;
        ch_sleep_us(ch_between(&rng, 0, 1000));
    }
    return 0;
}

int ch_pub_run(void *arg)
{
    const struct ch_kid *k = arg;
    struct ch_sentinel *me = &k->sh->sent[ch_sidx(CH_PUB, k->topic)];
    struct ch_conn c;
    int rc;

    /* relaxed: ordered before our first message by its commit (release). */
    atomic_store_explicit(&k->sh->pubs[k->id].pid, (uint32_t)getpid(), memory_order_relaxed);
    rc = ch_conn_open(k, &c);
    if (rc == 0 && k->sentinel) {
        /* relaxed: polled by the parent. */
        atomic_store_explicit(&me->last_ms, du_now_ms(), memory_order_relaxed);
        atomic_store_explicit(&me->ready, 1, memory_order_relaxed);
    }
    if (rc == 0)
        rc = ch_pub_loop(k, &c);
    ch_conn_close(&c);
    return rc;
}

int ch_check_payload(const struct ch_kid *k, const void *data, uint32_t len, uint64_t seq,
                     struct tu_payload *p)
{
    const struct ch_pubrec *rec;

    if (!tu_check(data, len, p))
        return ch_fail(k->sh, "%s: torn payload at seq %llu (%u bytes)", ch_who(k),
                       (unsigned long long)seq, len);
    /* relaxed, all: written before the message's commit (release), which
     * the reader's receive read with acquire (a remote reader: before the
     * bridge's, and then the socket orders them). */
    if (p->publisher >= CH_IDS ||
        atomic_load_explicit(&k->sh->pubs[p->publisher].topic, memory_order_relaxed) !=
            (uint32_t)k->topic + 1)
        return ch_fail(k->sh, "%s: seq %llu from publisher %u of another topic", ch_who(k),
                       (unsigned long long)seq, p->publisher);
    rec = &k->sh->pubs[p->publisher];
    if (p->seq > atomic_load_explicit(&rec->sent, memory_order_relaxed))
        return ch_fail(k->sh, "%s: seq %llu: publisher %u index %llu, but it sent %llu", ch_who(k),
                       (unsigned long long)seq, p->publisher, (unsigned long long)p->seq,
                       (unsigned long long)atomic_load_explicit(&rec->sent, memory_order_relaxed));
    return 0;
}

/* A local reader's message came from the process that published it. */
int ch_check_pid(const struct ch_kid *k, const shmbus_msg *m, const struct tu_payload *p)
{
    /* relaxed: see ch_check_payload(). */
    uint32_t pid = atomic_load_explicit(&k->sh->pubs[p->publisher].pid, memory_order_relaxed);

    if (m->publisher_pid == pid)
        return 0;
    return ch_fail(k->sh, "%s: seq %llu: pid %u, publisher %u is pid %u", ch_who(k),
                   (unsigned long long)m->seq, m->publisher_pid, p->publisher, pid);
}

/* A subscriber's private view. */
struct ch_reader {
    const struct ch_kid *k;
    uint64_t *next; /* per publisher id: the index expected next (0: none seen) */
    uint64_t start, pos, received, lost, rng;
    int64_t last_ms, drain_end;
};

/* Each publisher's order: reliable, no gap (a killable subscriber may join
 * a publisher's stream anywhere; the sentinel sees each from index 0);
 * lossy, increasing. */
static int ch_order_ok(const struct ch_reader *r, const struct tu_payload *p)
{
    uint64_t want = r->next[p->publisher];

    if (r->k->topic == CH_LOSSY)
        return p->seq >= want;
    if (want == 0 && !r->k->sentinel)
        return 1;
    return p->seq == want;
}

/* The reliable sentinel subscriber records each seq it passed: a message,
 * or one of the losses counted just before it. */
static void ch_seq_note(const struct ch_reader *r, const shmbus_msg *m)
{
    if (r->k->topic != CH_RELIABLE || !r->k->sentinel)
        return;
    for (uint64_t s = m->seq - m->lost; s < m->seq; s++)
        ch_seq_or(r->k->sh, s, CH_SEQ_LOST);
    ch_seq_or(r->k->sh, m->seq, CH_SEQ_GOT);
}

static int ch_check_msg(struct ch_reader *r, const uint8_t *buf, int n, const shmbus_msg *m)
{
    const struct ch_kid *k = r->k;
    struct tu_payload p;

    if (ch_check_payload(k, buf, (uint32_t)n, m->seq, &p) != 0 || ch_check_pid(k, m, &p) != 0)
        return CH_FAILED;
    if (m->seq != r->pos + m->lost)
        return ch_fail(k->sh, "%s: seq %llu with %llu lost after position %llu", ch_who(k),
                       (unsigned long long)m->seq, (unsigned long long)m->lost,
                       (unsigned long long)r->pos);
    if (!ch_order_ok(r, &p))
        return ch_fail(k->sh, "%s: seq %llu: publisher %u index %llu, expected %llu", ch_who(k),
                       (unsigned long long)m->seq, p.publisher, (unsigned long long)p.seq,
                       (unsigned long long)r->next[p.publisher]);
    ch_seq_note(r, m);
    r->next[p.publisher] = p.seq + 1;
    r->pos = m->seq + 1;
    r->received++;
    r->lost += m->lost;
    return 0;
}

/* Reliable, at the end: the sentinel got everything each publisher was
 * done with, and at most one more (committed just before a kill). */
static int ch_check_complete(const struct ch_reader *r)
{
    const struct ch_kid *k = r->k;
    /* relaxed, all: every publisher has exited (the parent reaped them
     * before it set drain). */
    uint32_t nids = atomic_load_explicit(&k->sh->nids, memory_order_relaxed);
    uint32_t sentinel =
        atomic_load_explicit(&k->sh->sent[ch_sidx(CH_PUB, k->topic)].id, memory_order_relaxed);

    for (uint32_t id = 0; id < nids && id < CH_IDS; id++) {
        const struct ch_pubrec *rec = &k->sh->pubs[id];
        uint64_t sent = atomic_load_explicit(&rec->sent, memory_order_relaxed);

        if (atomic_load_explicit(&rec->topic, memory_order_relaxed) != (uint32_t)k->topic + 1)
            continue;
        if (r->next[id] < sent || r->next[id] > sent + (id == sentinel ? 0 : 1))
            return ch_fail(k->sh, "%s: publisher %u%s was done with %llu messages, got %llu",
                           ch_who(k), id, id == sentinel ? " (sentinel)" : "",
                           (unsigned long long)sent, (unsigned long long)r->next[id]);
    }
    return 0;
}

void ch_report(const struct ch_kid *k, uint64_t received, uint64_t lost, uint64_t position)
{
    struct ch_sentinel *me = &k->sh->sent[ch_sidx(k->role, k->topic)];

    /* relaxed, all: the parent reads them after reaping us. */
    atomic_store_explicit(&me->count, received, memory_order_relaxed);
    atomic_store_explicit(&me->lost, lost, memory_order_relaxed);
    atomic_store_explicit(&me->position, position, memory_order_relaxed);
}

/* The sentinel at the end: its counters agree, and it reports them. */
static int ch_sub_final(struct ch_reader *r, const shmbus_sub_stats *st)
{
    const struct ch_kid *k = r->k;

    if (st->received != r->received || st->lost < r->lost ||
        st->received + st->lost != st->position - r->start)
        return ch_fail(k->sh,
                       "%s: received %llu (counted %llu), lost %llu (reported %llu), "
                       "positions %llu..%llu",
                       ch_who(k), (unsigned long long)st->received, (unsigned long long)r->received,
                       (unsigned long long)st->lost, (unsigned long long)r->lost,
                       (unsigned long long)r->start, (unsigned long long)st->position);
    if (k->topic == CH_RELIABLE && ch_check_complete(r) != 0)
        return CH_FAILED;
    ch_report(k, st->received, st->lost, st->position);
    return 0;
}

/* A sentinel told to drain: done once it has passed the tail (every
 * publisher is gone, and every dead claim must be ended by the daemon). */
static int ch_sub_drained(struct ch_reader *r, const struct ch_conn *c, int *done)
{
    shmbus_sub_stats st;
    shmbus_topic_info ti;

    if (r->drain_end == 0)
        r->drain_end = du_now_ms() + CH_DRAIN_MS;
    shmbus_sub_stats_get(c->sub, &st);
    shmbus_topic_info_get(c->t, &ti);
    if (st.position < ti.published) {
        if (du_now_ms() < r->drain_end)
            return 0; /* not yet: more to read, or a dead claim not yet ended */
        return ch_fail(r->k->sh,
                       "%s: stuck at seq %llu of %llu after the end (skipped %llu, unblocked "
                       "%llu)",
                       ch_who(r->k), (unsigned long long)st.position,
                       (unsigned long long)ti.published, (unsigned long long)ti.skipped,
                       (unsigned long long)ti.unblocked);
    }
    *done = 1;
    return ch_sub_final(r, &st);
}

/* A message arrived and passed the checks. */
static void ch_sub_got(struct ch_reader *r, int64_t now)
{
    const struct ch_kid *k = r->k;

    r->last_ms = now;
    /* relaxed, both: monitoring. */
    if (k->sentinel) {
        atomic_store_explicit(&k->sh->sent[ch_sidx(CH_SUB, k->topic)].last_ms, now,
                              memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&k->sh->churn_msgs[k->topic], 1, memory_order_relaxed);
    if (ch_rand(&r->rng) % 64 == 0)
        ch_sleep_us(ch_between(&r->rng, 1000, 5000)); /* a slow reader: back-pressure */
}

/* Receive one message, or time out. */
static int ch_sub_step(struct ch_reader *r, struct ch_conn *c, int *done)
{
    const struct ch_kid *k = r->k;
    uint8_t buf[CH_MSG_MAX];
    shmbus_msg m;
    int n = shmbus_recv(c->sub, buf, sizeof(buf), &m, CH_WAIT_NS);
    int64_t now = du_now_ms(), since;

    if (n >= 0) {
        if (ch_check_msg(r, buf, n, &m) != 0)
            return CH_FAILED;
        ch_sub_got(r, now);
        return ch_keep_connected(k, c);
    }
    if (n != SHMBUS_ERR_TIMEOUT && n != -EINTR)
        return ch_fail(k->sh, "%s: recv: %s", ch_who(k), shmbus_strerror(n));
    since = ch_since(k->sh, k->topic, r->last_ms);
    if (!k->sentinel && since >= 0 && now - since > CH_STALL_MS)
        return ch_fail(k->sh, "%s: nothing received for %lld ms", ch_who(k),
                       (long long)(now - since));
    if (k->sentinel && ch_draining(k->sh))
        return ch_sub_drained(r, c, done);
    return ch_keep_connected(k, c);
}

int ch_sub_run(void *arg)
{
    const struct ch_kid *k = arg;
    struct ch_sentinel *me = &k->sh->sent[ch_sidx(CH_SUB, k->topic)];
    struct ch_reader r = {.k = k, .rng = k->seed, .last_ms = du_now_ms()};
    shmbus_sub_stats st;
    struct ch_conn c;
    int rc, done = 0;

    r.next = calloc(CH_IDS, sizeof(*r.next));
    if (r.next == NULL)
        return ch_fail(k->sh, "%s: out of memory", ch_who(k));
    rc = ch_conn_open(k, &c);
    if (rc == 0) {
        shmbus_sub_stats_get(c.sub, &st);
        r.start = r.pos = st.position;
        r.last_ms = du_now_ms();
    }
    if (rc == 0 && k->sentinel) {
        /* relaxed, all: polled by the parent. */
        atomic_store_explicit(&me->last_ms, r.last_ms, memory_order_relaxed);
        atomic_store_explicit(&me->ready, 1, memory_order_relaxed);
    }
    while (rc == 0 && !done)
        rc = ch_sub_step(&r, &c, &done);
    ch_conn_close(&c);
    free(r.next);
    return rc;
}

/* ----------------------------------------------------------- group members */

/* A member's private view. */
struct ch_member {
    const struct ch_kid *k;
    uint64_t *next;  /* per publisher id: the index after the last one it got (0: none) */
    uint64_t pos;    /* the seq after the last one it got */
    uint64_t cursor; /* the group's position when last looked at */
    uint64_t received, rng;
    int64_t last_ms, drain_end;
    int rc; /* a failed check, from the callback */
};

/* A member's message: intact, from its publisher's process, after the
 * member's last one, and after that publisher's last one it got. */
static int ch_member_check(struct ch_member *mb, const shmbus_msg *m, struct tu_payload *p)
{
    const struct ch_kid *k = mb->k;

    if (ch_check_payload(k, m->data, m->len, m->seq, p) != 0 || ch_check_pid(k, m, p) != 0)
        return CH_FAILED;
    if (m->seq < mb->pos || p->seq < mb->next[p->publisher])
        return ch_fail(k->sh, "%s: seq %llu (publisher %u index %llu) after seq %llu (index %llu)",
                       ch_who(k), (unsigned long long)m->seq, p->publisher,
                       (unsigned long long)p->seq, (unsigned long long)mb->pos - 1,
                       (unsigned long long)mb->next[p->publisher] - 1);
    /* Taken: a kill from here until the callback is done leaves it in
     * hand, to be counted abandoned. */
    if (ch_seq_or(k->sh, m->seq, CH_SEQ_TAKEN) & CH_SEQ_TAKEN)
        return ch_fail(k->sh, "%s: seq %llu (publisher %u index %llu) went to two members",
                       ch_who(k), (unsigned long long)m->seq, p->publisher,
                       (unsigned long long)p->seq);
    return 0;
}

/* Poll callback: check the message and record it taken; a killable
 * member sometimes lingers with it in hand (a kill may land there); then
 * record it done: delivered. */
static int ch_member_cb(const shmbus_msg *m, void *arg)
{
    struct ch_member *mb = arg;
    struct tu_payload p;

    mb->rc = ch_member_check(mb, m, &p);
    if (mb->rc != 0)
        return 1;
    mb->next[p.publisher] = p.seq + 1;
    mb->pos = m->seq + 1;
    mb->received++;
    if (!mb->k->sentinel && ch_rand(&mb->rng) % 8 == 0)
        ch_sleep_us(ch_between(&mb->rng, 0, CH_LINGER_US));
    ch_seq_or(mb->k->sh, m->seq, CH_SEQ_DONE);
    /* relaxed: a counter for the summary. */
    if (!mb->k->sentinel)
        atomic_fetch_add_explicit(&mb->k->sh->member_msgs, 1, memory_order_relaxed);
    return 0;
}

/* The sentinel member told to drain: done once the group has passed the
 * tail (every other member is dead and reaped). */
static int ch_member_drained(struct ch_member *mb, const struct ch_conn *c, int *done)
{
    shmbus_sub_stats st;
    shmbus_topic_info ti;

    if (mb->drain_end == 0)
        mb->drain_end = du_now_ms() + CH_DRAIN_MS;
    shmbus_sub_stats_get(c->sub, &st);
    shmbus_topic_info_get(c->t, &ti);
    if (st.position < ti.published) {
        if (du_now_ms() < mb->drain_end)
            return 0;
        return ch_fail(mb->k->sh, "%s: the group is stuck at seq %llu of %llu after the end",
                       ch_who(mb->k), (unsigned long long)st.position,
                       (unsigned long long)ti.published);
    }
    *done = 1;
    ch_report(mb->k, mb->received, st.lost, st.position);
    return 0;
}

/* Take what is there (up to 16), else wait for the group's next message. */
static int ch_member_step(struct ch_member *mb, struct ch_conn *c, shmbus_waitset *ws, int *done)
{
    const struct ch_kid *k = mb->k;
    shmbus_sub_stats st;
    shmbus_sub *ready;
    int n = shmbus_poll(c->sub, ch_member_cb, mb, 16);

    if (mb->rc != 0)
        return mb->rc;
    if (n < 0)
        return ch_fail(k->sh, "%s: poll: %s", ch_who(k), shmbus_strerror(n));
    if (n == 0)
        n = shmbus_waitset_wait(ws, &ready, 1, CH_WAIT_NS);
    if (n < 0 && n != SHMBUS_ERR_TIMEOUT && n != -EINTR)
        return ch_fail(k->sh, "%s: wait: %s", ch_who(k), shmbus_strerror(n));
    shmbus_sub_stats_get(c->sub, &st);
    if (st.position != mb->cursor) {
        mb->cursor = st.position;
        mb->last_ms = du_now_ms();
        /* relaxed: monitoring. */
        if (k->sentinel)
            atomic_store_explicit(&k->sh->sent[CH_S_MEMBER].last_ms, mb->last_ms,
                                  memory_order_relaxed);
    }
    if (k->sentinel && ch_draining(k->sh))
        return ch_member_drained(mb, c, done);
    return ch_keep_connected(k, c);
}

int ch_member_run(void *arg)
{
    const struct ch_kid *k = arg;
    struct ch_member mb = {.k = k, .rng = k->seed, .last_ms = du_now_ms()};
    shmbus_waitset *ws = NULL;
    struct ch_conn c;
    int rc, done = 0;

    mb.next = calloc(CH_IDS, sizeof(*mb.next));
    if (mb.next == NULL)
        return ch_fail(k->sh, "%s: out of memory", ch_who(k));
    rc = ch_conn_open(k, &c);
    if (rc == 0 &&
        ((rc = shmbus_waitset_create(&ws)) < 0 || (rc = shmbus_waitset_add(ws, c.sub)) < 0))
        rc = ch_fail(k->sh, "%s: wait set: %s", ch_who(k), shmbus_strerror(rc));
    if (rc == 0 && k->sentinel) {
        /* relaxed, both: polled by the parent. */
        atomic_store_explicit(&k->sh->sent[CH_S_MEMBER].last_ms, du_now_ms(), memory_order_relaxed);
        atomic_store_explicit(&k->sh->sent[CH_S_MEMBER].ready, 1, memory_order_relaxed);
    }
    while (rc == 0 && !done)
        rc = ch_member_step(&mb, &c, ws, &done);
    shmbus_waitset_destroy(ws);
    ch_conn_close(&c);
    free(mb.next);
    return rc;
}
