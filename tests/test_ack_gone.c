/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Acknowledged groups' give-backs (ring/ack.c, registry/admin_ack.c): the
 * daemon's dead-letter primitives on pending entries and its give-backs
 * of dead or evicted members, and, with a real shmbusd (daemonclient.h):
 * an ack keeps its entry as the member's one reservation (freed by the
 * reaper if the member is killed, nothing returned), a returned take is
 * read by copy, a member's destroy or death gives its messages back, a
 * stalled member's messages go to another once it is evicted, and an
 * eviction while a callback reads is reported. Children report through
 * their exit status.
 */
#include "acktest.h"

/* ------------------------------------------------ without a daemon */

/* The daemon's dead-letter pass: what it hands out, what a failed or a
 * finished attempt leaves, and pending entries gating publishers. */
static void test_ack_dead_letter_primitives(void **state)
{
    (void)state;
    const char *name = tu_name("dead");
    shmbus_topic *t = raw_topic(name, SHMBUS_RELIABLE);
    struct sb_admin_ack ack = {.max_deliveries = 2, .topic = name};
    struct sb_admin_dead d;
    struct tu_payload p = {0};
    shmbus_pub *pub;
    uint64_t seq, abandoned;
    uint32_t pos = 0, entry, owner;
    uint8_t buf[MSG_MAX];

    assert_int_equal(sb_admin_group_number(t, "jobs", &ack), 1);
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    publish_n(pub, 2, 0);
    /* Seq 0 delivered twice and given back: the daemon's. Seq 1 delivered
     * once and held by slot 2's owner. */
    entry_set(t, 5, SB_PEND_RETURNED, 0, 2, SHMBUS_DL_NACKED);
    entry_set(t, 9, SB_PEND_HELD, 1, 1, 3);
    assert_int_equal(sb_admin_ack_gate(t, 0, &seq, &entry, &owner), 1);
    assert_int_equal(seq, 0);
    assert_int_equal(entry, 5);
    assert_int_equal(owner, 0);
    /* Both gate: the ring (4 cells) takes seqs 2 and 3, not 4. */
    publish_n(pub, 2, 2);
    assert_int_equal(shmbus_publish(pub, buf, tu_fill(buf, 1, 4, 40), 0), -EAGAIN);

    assert_int_equal(sb_admin_ack_dead_next(t, &pos, &d), 1);
    assert_int_equal(d.group, 0);
    assert_int_equal(d.entry, 5);
    assert_int_equal(d.seq, 0);
    assert_int_equal(d.deliveries, 2);
    assert_int_equal(d.reason, SHMBUS_DL_NACKED);
    assert_int_equal(d.pid, (uint32_t)getpid());
    assert_true(tu_check(d.data, d.len, &p));
    assert_int_equal(p.seq, 0);
    assert_int_equal(entry_state(t, 5), SB_PEND_DEAD);
    assert_int_equal(atomic_load(&t->seg.groups[0].returned), 0);
    assert_int_equal(sb_admin_ack_dead_next(t, &pos, &d), 0); /* HELD ones are not */
    /* The dead-letter topic was full: it stays, gating, and counts. */
    sb_admin_ack_dead_done(t, &d, 0);
    assert_int_equal(entry_state(t, 5), SB_PEND_DEAD);
    assert_int_equal(atomic_load(&t->seg.groups[0].dead_letter_failed), 1);
    assert_int_equal(shmbus_publish(pub, buf, tu_fill(buf, 1, 4, 40), 0), -EAGAIN);
    /* The next pass hands it out again; moved, it is acknowledged. */
    pos = 0;
    assert_int_equal(sb_admin_ack_dead_next(t, &pos, &d), 1);
    assert_int_equal(d.entry, 5);
    sb_admin_ack_dead_done(t, &d, 1);
    assert_int_equal(entry_state(t, 5), SB_PEND_FREE);
    assert_int_equal(atomic_load(&t->seg.groups[0].dead_lettered), 1);
    /* Seq 1 still gates (HELD): seq 4 fits, seq 5 does not. */
    publish_n(pub, 1, 4);
    assert_int_equal(shmbus_publish(pub, buf, tu_fill(buf, 1, 5, 40), 0), -EAGAIN);

    /* Returned, then stalled past the timeout: dead-lettered as STALLED. */
    entry_set(t, 9, SB_PEND_RETURNED, 1, 1, SHMBUS_DL_DIED);
    assert_int_equal(sb_admin_ack_stalled(t, 0, 9), 1);
    assert_int_equal(sb_admin_ack_stalled(t, 0, 9), 0); /* DEAD now */
    pos = 0;
    assert_int_equal(sb_admin_ack_dead_next(t, &pos, &d), 1);
    assert_int_equal(d.seq, 1);
    assert_int_equal(d.reason, SHMBUS_DL_STALLED);
    sb_admin_ack_dead_done(t, &d, 1);
    publish_n(pub, 1, 5);

    /* An entry whose cell no longer shows its message: freed, counted. */
    abandoned = atomic_load(&t->seg.hdr->abandoned);
    entry_set(t, 0, SB_PEND_DEAD, 2, 2, SHMBUS_DL_NACKED);
    atomic_store(&sb_cell(&t->seg, 2)->stamp, SB_STAMP(77, SB_ST_COMMITTED));
    pos = 0;
    assert_int_equal(sb_admin_ack_dead_next(t, &pos, &d), 0);
    assert_int_equal(entry_state(t, 0), SB_PEND_FREE);
    assert_int_equal(atomic_load(&t->seg.hdr->abandoned), abandoned + 1);

    /* An entry the daemon returned from RESERVED may gate nothing: its
     * dead letter is a checked copy, which a publisher reusing the cell
     * does not touch. */
    entry_set(t, 1, SB_PEND_RETURNED, 5, 2, SHMBUS_DL_DIED);
    entry_mark(t, 1);
    pos = 0;
    assert_int_equal(sb_admin_ack_dead_next(t, &pos, &d), 1);
    assert_int_equal(d.seq, 5);
    assert_non_null(d.copy);
    /* Marked still (state and mark: the word's low bits). */
    assert_int_equal(atomic_load(&sb_pending(&t->seg, 0, 1)->word) & 0xfu,
                     SB_PEND_DEAD | SB_PEND_COPY);
    cell_reuse(t, 5);
    assert_true(tu_check(d.data, d.len, &p));
    assert_int_equal(p.seq, 5);
    sb_admin_ack_dead_done(t, &d, 1);
    assert_int_equal(entry_state(t, 1), SB_PEND_FREE);
    /* Its message gone: a duplicate another member took, freed, no loss;
     * after an eviction it may be the eviction's window: counted. */
    entry_set(t, 1, SB_PEND_RETURNED, 5, 2, SHMBUS_DL_DIED);
    entry_mark(t, 1);
    pos = 0;
    assert_int_equal(sb_admin_ack_dead_next(t, &pos, &d), 0);
    assert_int_equal(entry_state(t, 1), SB_PEND_FREE);
    assert_int_equal(atomic_load(&t->seg.hdr->abandoned), abandoned + 1);
    entry_set(t, 1, SB_PEND_RETURNED, 5, 2, SHMBUS_DL_EVICTED);
    entry_mark(t, 1);
    pos = 0;
    assert_int_equal(sb_admin_ack_dead_next(t, &pos, &d), 0);
    assert_int_equal(atomic_load(&t->seg.hdr->abandoned), abandoned + 2);
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* Slot @p idx, taken for a member of group 1 that holds @p hold. */
static void slot_member(shmbus_topic *t, uint32_t idx, uint64_t hold)
{
    struct sb_shm_slot *sl = &t->seg.slots[idx];

    atomic_store(&sl->group, 1);
    atomic_store(&sl->pos, hold);
    atomic_store(&sl->state, SB_SLOT_ACTIVE);
}

/* The reaper's and the stall timeout's give-backs: a dead member's HELD
 * entries, and the take it died in the middle of (its RESERVED entry
 * shows the seq of its hold, the cursor past it), go back to the group;
 * a reservation that took nothing is freed; a live evicted member keeps
 * its reservation, and its take in flight goes back. */
static void test_ack_give_backs_of_gone_members(void **state)
{
    (void)state;
    const char *name = tu_name("reap");
    shmbus_topic *t = raw_topic(name, SHMBUS_RELIABLE);
    struct sb_admin_ack ack = {.topic = name};
    struct sb_shm_group *grp = &t->seg.groups[0];
    uint32_t owner, n;
    int idx;

    assert_int_equal(sb_admin_group_number(t, "jobs", &ack), 1);
    atomic_store(&grp->cursor, SB_GRP_WORD(10, 1)); /* one member, next seq 10 */
    idx = sb_admin_slot_take(t, 4242, 1);
    assert_true(idx >= 0);
    owner = (uint32_t)idx + 1;
    /* Died between its cursor CAS (for seq 9) and its entry turning HELD,
     * holding 3 and 5. */
    slot_member(t, (uint32_t)idx, 9);
    entry_set(t, 0, SB_PEND_HELD, 3, 1, owner);
    entry_set(t, 1, SB_PEND_HELD, 5, 2, owner);
    entry_set(t, 2, SB_PEND_RESERVED, 9, 0, owner);
    entry_set(t, 3, SB_PEND_HELD, 4, 1, owner + 1); /* another member's */
    n = sb_admin_slot_free(t, (uint32_t)idx, 1);
    assert_int_equal(n, 3);
    for (uint32_t i = 0; i < 3; i++) {
        uint64_t w = atomic_load(&sb_pending(&t->seg, 0, i)->word);
        assert_int_equal(SB_PEND_ST(w), SB_PEND_RETURNED);
        assert_int_equal(SB_PEND_REASON(w), SHMBUS_DL_DIED);
    }
    assert_int_equal(SB_PEND_DELIVERIES(atomic_load(&sb_pending(&t->seg, 0, 1)->word)), 2);
    assert_int_equal(SB_PEND_DELIVERIES(atomic_load(&sb_pending(&t->seg, 0, 2)->word)), 0);
    /* Only the take the daemon could not confirm is marked for copies. */
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&sb_pending(&t->seg, 0, i)->word) & SB_PEND_COPY,
                         i == 2 ? SB_PEND_COPY : 0);
    assert_int_equal(entry_state(t, 3), SB_PEND_HELD);
    assert_int_equal(atomic_load(&grp->returned), 3);
    assert_int_equal(atomic_load(&t->seg.hdr->abandoned), 0); /* returned, not lost */

    /* A reservation whose take never moved the cursor: freed, nothing
     * returned. Its seq is the hold, but the cursor is not past it. */
    idx = sb_admin_slot_take(t, 4243, 1);
    assert_true(idx >= 0);
    slot_member(t, (uint32_t)idx, 10);
    entry_set(t, 4, SB_PEND_RESERVED, 10, 0, (uint32_t)idx + 1);
    assert_int_equal(sb_admin_slot_free(t, (uint32_t)idx, 1), 0);
    assert_int_equal(entry_state(t, 4), SB_PEND_FREE);

    /* Evicted alive: the take in flight goes back, HELD ones too; an idle
     * reservation stays its owner's (it frees it on destroy). */
    idx = sb_admin_slot_take(t, getpid(), 1);
    assert_true(idx >= 0);
    slot_member(t, (uint32_t)idx, 9);
    atomic_store(&t->seg.slots[idx].counted, 0);
    entry_set(t, 5, SB_PEND_RESERVED, 9, 0, (uint32_t)idx + 1);
    entry_set(t, 6, SB_PEND_HELD, 8, 1, (uint32_t)idx + 1);
    assert_int_equal(sb_admin_slot_evict_count(t, (uint32_t)idx, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(entry_state(t, 5), SB_PEND_RETURNED);
    assert_int_equal(entry_state(t, 6), SB_PEND_RETURNED);
    assert_int_equal(atomic_load(&sb_pending(&t->seg, 0, 5)->word) & SB_PEND_COPY, SB_PEND_COPY);
    entry_set(t, 7, SB_PEND_RESERVED, SB_POS_IDLE, 0, (uint32_t)idx + 1);
    assert_int_equal(sb_admin_slot_evict_count(t, (uint32_t)idx, &n), 0); /* evicted already */
    assert_int_equal(n, 0);
    assert_int_equal(entry_state(t, 7), SB_PEND_RESERVED);
    shmbus_topic_destroy(t);
    tu_release(name);
}

/* --------------------------------------------------- with a daemon */
/* A member holding no reservation keeps the entry it acks as its next
 * one, unmarked, and its next take uses it; acking several messages, it
 * keeps one and frees the others; its destroy frees the one kept. */
static void test_ack_keeps_one_reservation(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(2);
    struct member m;
    struct bench b;
    uint32_t owner;
    uint64_t w;

    bench_open(&b, d, "keep", 0);
    assert_shmbus_ok(member_open(&m, d->bus, "keep", &so));
    owner = (uint32_t)(m.sub->slot - m.t->seg.slots) + 1;
    publish_n(b.pub, 1, 0);
    /* A marked redelivery, taken before the member reserved anything. */
    entry_set(m.t, 7, SB_PEND_RETURNED, 0, 0, SHMBUS_DL_DIED);
    entry_mark(m.t, 7);
    expect_take(m.sub, 0, 1);
    assert_shmbus_ok(shmbus_ack(m.sub, 0));
    w = atomic_load(&sb_pending(&m.t->seg, 0, 7)->word);
    assert_int_equal(SB_PEND_ST(w), SB_PEND_RESERVED);
    assert_int_equal(SB_PEND_OWNER(w), owner);
    assert_int_equal(w & SB_PEND_COPY, 0);
    assert_int_equal(entries_in(m.t, SB_PEND_RESERVED, 0), 1);
    expect_take(m.sub, 0, 1); /* seq 0 at the cursor, into entry 7 */
    assert_int_equal(entry_state(m.t, 7), SB_PEND_HELD);
    assert_int_equal(entries_in(m.t, SB_PEND_FREE, 0), SB_ACK_ENTRIES - 1);
    publish_n(b.pub, 1, 1);
    expect_take(m.sub, 1, 1); /* into an entry it reserves */
    assert_int_equal(entries_in(m.t, SB_PEND_HELD, owner), 2);
    assert_shmbus_ok(shmbus_ack(m.sub, 0));
    assert_shmbus_ok(shmbus_ack(m.sub, 1));
    assert_int_equal(entry_state(m.t, 7), SB_PEND_RESERVED);
    assert_int_equal(entries_in(m.t, SB_PEND_FREE, 0), SB_ACK_ENTRIES - 1);
    member_close(&m);
    assert_int_equal(entries_in(b.t, SB_PEND_FREE, 0), SB_ACK_ENTRIES);
    bench_close(&b);
}

/* What a redelivery's callback saw, while a publisher reused the cell. */
struct reuse_seen {
    shmbus_topic *t;
    uint64_t seq;
    uint32_t deliveries;
    int intact; /* the data was the message, after the cell's reuse */
};

static int reuse_cb(const shmbus_msg *msg, void *arg)
{
    struct reuse_seen *r = arg;
    struct tu_payload p;

    cell_reuse(r->t, msg->seq);
    r->seq = msg->seq;
    r->deliveries = msg->deliveries;
    r->intact = tu_check(msg->data, (uint32_t)msg->len, &p) && p.seq == msg->seq;
    return 0;
}

/* The daemon returns a dead member's RESERVED entry whose seq is its hold,
 * the cursor past it; that may be a message another member took and
 * acked (the dead member's cursor CAS would have failed), whose cell a
 * publisher that scanned before the give-back reuses. Its redelivery is
 * a checked copy, which the reuse does not tear; a copy found gone is a
 * duplicate dropped, no loss (after an eviction, counted abandoned: it
 * may be the eviction's window). */
static void test_ack_returned_take_read_by_copy(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(1);
    struct reuse_seen r = {0};
    shmbus_topic_info info;
    shmbus_sub_stats st;
    struct member m;
    struct bench b;

    bench_open(&b, d, "copy", 0);
    assert_shmbus_ok(member_open(&m, d->bus, "copy", &so));
    publish_n(b.pub, 1, 0);
    expect_take(m.sub, 0, 1);
    assert_shmbus_ok(shmbus_ack(m.sub, 0));
    entry_set(m.t, 7, SB_PEND_RETURNED, 0, 0, SHMBUS_DL_DIED);
    entry_mark(m.t, 7);
    r.t = m.t;
    assert_int_equal(shmbus_poll(m.sub, reuse_cb, &r, 1), 1);
    assert_int_equal(r.seq, 0);
    assert_int_equal(r.deliveries, 1);
    assert_true(r.intact);
    assert_shmbus_ok(shmbus_ack(m.sub, 0));
    assert_int_equal(entry_state(m.t, 7), SB_PEND_FREE);

    entry_set(m.t, 7, SB_PEND_RETURNED, 0, 0, SHMBUS_DL_DIED);
    entry_mark(m.t, 7);
    assert_int_equal(shmbus_poll(m.sub, reuse_cb, &r, 1), 0);
    assert_int_equal(entry_state(m.t, 7), SB_PEND_FREE);
    assert_shmbus_ok(shmbus_topic_info_get(m.t, &info));
    assert_int_equal(info.abandoned, 0);
    assert_shmbus_ok(shmbus_sub_stats_get(m.sub, &st));
    assert_int_equal(st.lost, 0);
    entry_set(m.t, 7, SB_PEND_RETURNED, 0, 0, SHMBUS_DL_EVICTED);
    entry_mark(m.t, 7);
    assert_int_equal(shmbus_poll(m.sub, reuse_cb, &r, 1), 0);
    assert_shmbus_ok(shmbus_topic_info_get(m.t, &info));
    assert_int_equal(info.abandoned, 1);
    member_close(&m);
    bench_close(&b);
}

/* A member evicted while its callback reads a message in place: the
 * message goes to another member, which acks it, and a publisher reuses
 * its cell under the reads. The poll says so (SHMBUS_ERR_EVICTED) rather
 * than report a delivery of what the callback saw. */
struct evict_in_read {
    struct member *a, *c;
    struct bench *b;
    int torn; /* the callback's bytes changed under it */
};

static int evict_in_read_cb(const shmbus_msg *msg, void *arg)
{
    struct evict_in_read *x = arg;
    struct tu_payload p;
    uint64_t seq;
    uint32_t dv;

    sb_admin_slot_evict(x->a->t, (uint32_t)(x->a->sub->slot - x->a->t->seg.slots));
    if (take(x->c->sub, DC_WAIT_NS, &seq, &dv) == 0 && seq == 0 && dv == 2 &&
        shmbus_ack(x->c->sub, 0) == 0)
        publish_n(x->b->pub, CAP, 1); /* seq CAP lands in seq 0's cell */
    x->torn = !tu_check(msg->data, msg->len, &p) || p.seq != msg->seq;
    return 0;
}

static void test_ack_evicted_while_reading(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(1);
    struct member a, c;
    struct bench b;
    struct evict_in_read x = {&a, &c, &b, 0};

    bench_open(&b, d, "inread", 0);
    assert_shmbus_ok(member_open(&a, d->bus, "inread", &so));
    assert_shmbus_ok(member_open(&c, d->bus, "inread", &so));
    publish_n(b.pub, 1, 0);
    assert_int_equal(shmbus_poll(a.sub, evict_in_read_cb, &x, 1), SHMBUS_ERR_EVICTED);
    assert_true(x.torn); /* what the poll must not call a delivery */
    assert_int_equal(shmbus_ack(a.sub, 0), SHMBUS_ERR_EVICTED);
    member_close(&a);
    member_close(&c);
    bench_close(&b);
}

/* A member's destroy gives its pending messages back (reason LEFT); its
 * death (SIGKILL) too, with the reaper, even in the middle of a take. */
struct kid {
    const char *bus;
    int ready; /* write end: one byte once subscribed */
};

static int kid_member(const struct kid *k, const char *topic, struct member *m)
{
    shmbus_sub_opts so = ack_opts(1);

    if (member_open(m, k->bus, topic, &so) < 0)
        return -1;
    return write(k->ready, "r", 1) == 1 ? 0 : -1;
}

/* Wait for a child's byte on @p fd. */
static void kid_ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;

    assert_int_equal(poll(&p, 1, READY_MS), 1);
    assert_int_equal(read(fd, &c, 1), 1);
}

static int kid_take_and_die(void *arg)
{
    const struct kid *k = arg;
    struct member m;
    uint64_t seq;
    uint32_t dv;

    if (kid_member(k, "gone", &m) < 0)
        return 2;
    if (take(m.sub, DC_WAIT_NS, &seq, &dv) < 0 || seq != 1 || dv != 1)
        return 3;
    raise(SIGKILL); /* holding seq 1 */
    return 4;
}

static void test_ack_gone_member_gives_back(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(1);
    struct member a, c;
    struct bench b;
    struct kid k = {.bus = d->bus};
    int fds[2];
    pid_t kid;
    int st;

    assert_int_equal(pipe(fds), 0);
    k.ready = fds[1];
    bench_open(&b, d, "gone", 0);
    assert_shmbus_ok(member_open(&a, d->bus, "gone", &so));
    publish_n(b.pub, 1, 0);
    expect_take(a.sub, 0, 1);
    shmbus_sub_destroy(a.sub);
    a.sub = NULL;
    assert_shmbus_ok(member_open(&c, d->bus, "gone", &so));
    expect_take(c.sub, 0, 2); /* given back by a's destroy */
    /* c holds 0 (at its limit); a child takes 1 and dies holding it. */
    kid = tu_fork(kid_take_and_die, &k);
    kid_ready(fds[0]);
    publish_n(b.pub, 1, 1);
    st = du_wait_ms(kid, READY_MS);
    assert_int_equal(st, 128 + SIGKILL);
    assert_shmbus_ok(shmbus_ack(c.sub, 0));
    expect_take(c.sub, 1, 2); /* the reaper gave it back */
    assert_shmbus_ok(shmbus_ack(c.sub, 1));
    member_close(&a);
    member_close(&c);
    bench_close(&b);
    close(fds[0]);
    close(fds[1]);
}

/* A member killed right after its ack leaves the acked entry as its
 * reservation, showing the acked seq: the reaper frees it, and returns
 * nothing (the seq is no take in flight). */
static int kid_ack_and_die(void *arg)
{
    const struct kid *k = arg;
    struct member m;
    uint64_t seq;
    uint32_t dv;

    if (kid_member(k, "acked", &m) < 0)
        return 2;
    if (take(m.sub, DC_WAIT_NS, &seq, &dv) < 0 || seq != 0 || shmbus_ack(m.sub, 0) < 0)
        return 3;
    raise(SIGKILL); /* its reservation kept, seq 0 */
    return 4;
}

static void test_ack_killed_after_ack_returns_nothing(void **state)
{
    struct du_daemon *d = *state;
    struct bench b;
    struct kid k = {.bus = d->bus};
    int fds[2];
    pid_t kid;
    int64_t end;

    assert_int_equal(pipe(fds), 0);
    k.ready = fds[1];
    bench_open(&b, d, "acked", 0);
    kid = tu_fork(kid_ack_and_die, &k);
    kid_ready(fds[0]);
    publish_n(b.pub, 1, 0);
    assert_int_equal(du_wait_ms(kid, READY_MS), 128 + SIGKILL);
    for (end = du_now_ms() + READY_MS;
         entries_in(b.t, SB_PEND_RESERVED, 0) != 0 && du_now_ms() < end; du_sleep_ms(10))
        ;
    assert_int_equal(entries_in(b.t, SB_PEND_FREE, 0), SB_ACK_ENTRIES);
    assert_int_equal(atomic_load(&b.t->seg.groups[0].returned), 0);
    bench_close(&b);
    close(fds[0]);
    close(fds[1]);
}

/* A member stopped holding a message that fills the ring is evicted after
 * the stall timeout; its message goes to another member, asleep waiting
 * for one (the give-back wakes it); the stopped member's late ack says
 * it was evicted. */
static int kid_take_and_stop(void *arg)
{
    const struct kid *k = arg;
    struct member m;
    uint64_t seq;
    uint32_t dv;

    if (kid_member(k, "stall", &m) < 0)
        return 2;
    if (take(m.sub, DC_WAIT_NS, &seq, &dv) < 0 || seq != 0)
        return 3;
    raise(SIGSTOP);
    /* Continued after the eviction. */
    if (shmbus_ack(m.sub, 0) != SHMBUS_ERR_EVICTED)
        return 4;
    member_close(&m);
    return 0;
}

static void test_ack_evicted_member_gives_back(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(CAP);
    uint8_t buf[MSG_MAX];
    struct member c;
    struct bench b;
    struct kid k = {.bus = d->bus};
    int fds[2];
    pid_t kid;
    int st;

    assert_int_equal(pipe(fds), 0);
    k.ready = fds[1];
    bench_open(&b, d, "stall", STALL_MS);
    kid = tu_fork(kid_take_and_stop, &k);
    kid_ready(fds[0]);
    publish_n(b.pub, 1, 0);
    assert_int_equal(waitpid(kid, &st, WUNTRACED), kid);
    assert_true(WIFSTOPPED(st));
    assert_shmbus_ok(member_open(&c, d->bus, "stall", &so));
    publish_n(b.pub, CAP - 1, 1); /* the ring is full against seq 0 */
    for (uint64_t s = 1; s < CAP; s++) {
        expect_take(c.sub, s, 1);
        assert_shmbus_ok(shmbus_ack(c.sub, s));
    }
    assert_int_equal(shmbus_publish(b.pub, buf, tu_fill(buf, 1, CAP, 40), 0), -EAGAIN);
    expect_take(c.sub, 0, 2); /* asleep until the eviction gave it back */
    assert_shmbus_ok(shmbus_ack(c.sub, 0));
    assert_shmbus_ok(shmbus_publish(b.pub, buf, tu_fill(buf, 1, CAP, 40), 0));
    kill(kid, SIGCONT);
    assert_int_equal(du_wait_ms(kid, READY_MS), 0);
    member_close(&c);
    bench_close(&b);
    close(fds[0]);
    close(fds[1]);
}

/* A member evicted holding an entry the daemon's give-back missed (one it
 * took from the pending table as the eviction passed, made here by
 * marking the slot evicted alone): its ack gives the entry back, so that
 * no slot nobody evicts again holds it HELD, gating publishers, forever. */
static void test_ack_evicted_ack_gives_back(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(1);
    struct member a, c;
    struct bench b;

    bench_open(&b, d, "missed", 0);
    assert_shmbus_ok(member_open(&a, d->bus, "missed", &so));
    assert_shmbus_ok(member_open(&c, d->bus, "missed", &so));
    publish_n(b.pub, 1, 0);
    expect_take(a.sub, 0, 1);
    atomic_store(&a.sub->slot->state, SB_SLOT_EVICTED);
    assert_int_equal(shmbus_ack(a.sub, 0), SHMBUS_ERR_EVICTED);
    expect_take(c.sub, 0, 2);
    assert_shmbus_ok(shmbus_ack(c.sub, 0));
    member_close(&a);
    member_close(&c);
    bench_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_dead_letter_primitives),
        cmocka_unit_test(test_ack_give_backs_of_gone_members),
        DAEMON_TEST(test_ack_keeps_one_reservation),
        DAEMON_TEST(test_ack_returned_take_read_by_copy),
        DAEMON_TEST(test_ack_gone_member_gives_back),
        DAEMON_TEST(test_ack_killed_after_ack_returns_nothing),
        DAEMON_TEST(test_ack_evicted_member_gives_back),
        DAEMON_TEST(test_ack_evicted_while_reading),
        DAEMON_TEST(test_ack_evicted_ack_gives_back),
    };
    tu_init();
    return cmocka_run_group_tests_name("ack_gone", tests, NULL, NULL);
}
