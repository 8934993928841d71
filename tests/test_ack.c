/*
 * Acknowledged groups (ring/ack.c, registry/admin_ack.c): the options a
 * member is refused for, the group's kind as the daemon's numbering fixes
 * it, the daemon's dead-letter and stall primitives on pending entries,
 * and, with a real shmbusd (daemonclient.h), what members see: an ack
 * frees the cell a reliable publisher waits for and keeps its entry as
 * the member's one reservation (freed by the reaper if the member is
 * killed, nothing returned), a nack's delay is kept,
 * max_inflight bounds what a member holds, redeliveries come first and in
 * order, a member's destroy or death gives its messages back, a stalled
 * member's messages go to another once it is evicted, and no publisher
 * ever overwrites a pending message. Children report through their exit
 * status.
 */
#include "daemonclient.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "ring/ring.h"
#include "shm/layout.h"
#include "util/clock.h"

#define CAP       4u
#define MSG_MAX   64u
#define STALL_MS  500u
#define READY_MS  30000
#define GATE_MSGS 20000u
#define GATE_KIDS 3

/* ------------------------------------------------ without a daemon */

static shmbus_topic *raw_topic(const char *name, uint32_t mode)
{
    shmbus_topic_opts o = {.mode = mode, .capacity = CAP, .max_msg_size = MSG_MAX, .max_groups = 4};
    shmbus_topic *t;

    assert_shmbus_ok(shmbus_topic_create(name, &o, &t));
    return t;
}

static void test_ack_options_refused(void **state)
{
    (void)state;
    const char *name = tu_name("opts");
    shmbus_topic *t = raw_topic(name, SHMBUS_RELIABLE);
    struct sb_admin_ack ack = {.topic = name};
    uint8_t buf[MSG_MAX];
    shmbus_sub_opts so;
    shmbus_msg info;
    shmbus_pub *pub;
    shmbus_sub *sub;
    int g;

    /* Acknowledgements need the daemon: not on a topic of our own. */
    so = (shmbus_sub_opts){.group = 1, .flags = SHMBUS_SUB_ACK};
    assert_shmbus_rc(shmbus_sub_create(t, &so, &sub), SHMBUS_ERR_INVALID);
    /* Their options without the flag. */
    so = (shmbus_sub_opts){.group = 1, .max_inflight = 1};
    assert_shmbus_rc(shmbus_sub_create(t, &so, &sub), SHMBUS_ERR_INVALID);
    so = (shmbus_sub_opts){.group = 1, .max_deliveries = 3};
    assert_shmbus_rc(shmbus_sub_create(t, &so, &sub), SHMBUS_ERR_INVALID);
    so = (shmbus_sub_opts){.group = 1, .dead_letter = "x.dlq"};
    assert_shmbus_rc(shmbus_sub_create(t, &so, &sub), SHMBUS_ERR_INVALID);
    /* Reserved room. */
    so = (shmbus_sub_opts){.reserved0 = 1};
    assert_shmbus_rc(shmbus_sub_create(t, &so, &sub), SHMBUS_ERR_INVALID);
    so = (shmbus_sub_opts){.reserved = {0, 0, 0, 1}};
    assert_shmbus_rc(shmbus_sub_create(t, &so, &sub), SHMBUS_ERR_INVALID);
    /* A member by number of a group the daemon made acknowledged: not of
     * its kind, and it would bypass the pending table. */
    g = sb_admin_group_number(t, "work", &ack);
    assert_int_equal(g, 1);
    so = (shmbus_sub_opts){.group = (uint32_t)g};
    assert_shmbus_rc(shmbus_sub_create(t, &so, &sub), SHMBUS_ERR_MISMATCH);
    /* The refused member gave its slot back: another one fits. */
    so = (shmbus_sub_opts){.group = 2};
    for (int i = 0; i < 70; i++) {
        assert_shmbus_ok(shmbus_sub_create(t, &so, &sub));
        shmbus_sub_destroy(sub);
    }
    /* Not an acknowledging member: deliveries 0; ack and nack refused. */
    assert_shmbus_ok(shmbus_sub_create(t, &so, &sub));
    assert_shmbus_ok(shmbus_pub_create(t, &pub));
    assert_shmbus_ok(shmbus_publish(pub, buf, tu_fill(buf, 1, 0, 40), 0));
    assert_int_equal(shmbus_recv(sub, buf, sizeof(buf), &info, 0), 40);
    assert_int_equal(info.deliveries, 0);
    shmbus_pub_destroy(pub);
    assert_shmbus_rc(shmbus_ack(sub, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_nack(sub, 0, 0), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_ack(NULL, 0), SHMBUS_ERR_INVALID);
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    tu_release(name);
}

static void test_ack_group_kind_fixed_by_first(void **state)
{
    (void)state;
    const char *name = tu_name("kind");
    shmbus_topic *t = raw_topic(name, SHMBUS_RELIABLE), *lossy;
    char dl[SHMBUS_TOPIC_NAME_MAX + 1], want[SHMBUS_TOPIC_NAME_MAX + 8];
    char long_topic[SHMBUS_TOPIC_NAME_MAX + 1];
    struct sb_admin_ack ack = {.topic = name};
    int g;

    snprintf(want, sizeof(want), "%s.dlq", name);
    g = sb_admin_group_number(t, "jobs", &ack);
    assert_int_equal(g, 1);
    assert_int_equal(atomic_load(&t->seg.groups[0].max_deliveries), SHMBUS_MAX_DELIVERIES_DEFAULT);
    assert_shmbus_ok(sb_admin_ack_dead_letter(t, 0, dl, sizeof(dl)));
    assert_string_equal(dl, want);
    assert_int_equal(sb_admin_ack_dead_letter(t, 0, dl, 4), -ENOSPC);
    /* Later members: the group's values, or left to it. */
    assert_int_equal(sb_admin_group_number(t, "jobs", &ack), 1);
    ack.max_deliveries = SHMBUS_MAX_DELIVERIES_DEFAULT;
    ack.dead_letter = want;
    assert_int_equal(sb_admin_group_number(t, "jobs", &ack), 1);
    ack.max_deliveries = 7;
    assert_int_equal(sb_admin_group_number(t, "jobs", &ack), SHMBUS_ERR_MISMATCH);
    ack.max_deliveries = 0;
    ack.dead_letter = "elsewhere";
    assert_int_equal(sb_admin_group_number(t, "jobs", &ack), SHMBUS_ERR_MISMATCH);
    assert_int_equal(sb_admin_group_number(t, "jobs", NULL), SHMBUS_ERR_MISMATCH);
    /* A group without acknowledgements stays so. */
    assert_int_equal(sb_admin_group_number(t, "plain", NULL), 2);
    ack.dead_letter = NULL;
    assert_int_equal(sb_admin_group_number(t, "plain", &ack), SHMBUS_ERR_MISMATCH);
    assert_int_equal(sb_admin_ack_dead_letter(t, 1, dl, sizeof(dl)), -ENOENT);
    /* Values given by the first member. */
    ack = (struct sb_admin_ack){.max_deliveries = 3, .dead_letter = "poison", .topic = name};
    assert_int_equal(sb_admin_group_number(t, "given", &ack), 3);
    assert_int_equal(atomic_load(&t->seg.groups[2].max_deliveries), 3);
    assert_shmbus_ok(sb_admin_ack_dead_letter(t, 2, dl, sizeof(dl)));
    assert_string_equal(dl, "poison");
    /* Refusals that number nothing. */
    ack = (struct sb_admin_ack){.max_deliveries = SHMBUS_MAX_DELIVERIES_MAX + 1, .topic = name};
    assert_int_equal(sb_admin_group_number(t, "x", &ack), SHMBUS_ERR_INVALID);
    ack = (struct sb_admin_ack){.dead_letter = name, .topic = name};
    assert_int_equal(sb_admin_group_number(t, "x", &ack), SHMBUS_ERR_INVALID);
    ack = (struct sb_admin_ack){.dead_letter = ".bad", .topic = name};
    assert_int_equal(sb_admin_group_number(t, "x", &ack), SHMBUS_ERR_BAD_NAME);
    memset(long_topic, 'a', SHMBUS_TOPIC_NAME_MAX - 2);
    long_topic[SHMBUS_TOPIC_NAME_MAX - 2] = '\0';
    ack = (struct sb_admin_ack){.topic = long_topic}; /* "<topic>.dlq" too long */
    assert_int_equal(sb_admin_group_number(t, "x", &ack), SHMBUS_ERR_BAD_NAME);
    assert_int_equal(t->seg.groups[3].name[0], '\0');
    /* A scribbled name is reported, not handed on. */
    memset(sb_acktab(&t->seg, 2)->dead_letter, '!', SB_DEAD_LETTER_LEN);
    assert_int_equal(sb_admin_ack_dead_letter(t, 2, dl, sizeof(dl)), SHMBUS_ERR_CORRUPT);
    shmbus_topic_destroy(t);
    tu_release(name);

    /* Lossy topics have no pending tables. */
    name = tu_name("lossy");
    lossy = raw_topic(name, SHMBUS_LOSSY);
    ack = (struct sb_admin_ack){.topic = name};
    assert_int_equal(sb_admin_group_number(lossy, "jobs", &ack), SHMBUS_ERR_INVALID);
    shmbus_topic_destroy(lossy);
    tu_release(name);
}

/* Put entry @p i of group 0 in state @p st with @p seq, @p deliveries and
 * @p reason, as a member or the daemon would have. */
static void entry_set(shmbus_topic *t, uint32_t i, uint32_t st, uint64_t seq, uint32_t deliveries,
                      uint32_t reason_or_owner)
{
    struct sb_shm_pending *e = sb_pending(&t->seg, 0, i);
    uint64_t w = atomic_load(&e->word);

    atomic_store(&e->seq, seq);
    atomic_store(&e->not_before, 0);
    atomic_store(&e->word, SB_PEND_WORD(SB_PEND_GEN(w) + 1u, deliveries, reason_or_owner, st));
    if (st == SB_PEND_RETURNED)
        atomic_fetch_add(&t->seg.groups[0].returned, 1);
}

/* Mark entry @p i of group 0 as returned from RESERVED (layout.h). */
static void entry_mark(shmbus_topic *t, uint32_t i)
{
    atomic_fetch_or(&sb_pending(&t->seg, 0, i)->word, SB_PEND_COPY);
}

/* Rewrite the cell of @p seq with seq + CAP, as a publisher that scanned
 * the gates before a give-back would (BUSY, bytes, COMMITTED). */
static void cell_reuse(shmbus_topic *t, uint64_t seq)
{
    struct sb_shm_cell *c = sb_cell(&t->seg, seq);
    uint8_t buf[MSG_MAX];
    uint32_t len = tu_fill(buf, 1, seq + CAP, 40);

    atomic_store(&c->stamp, SB_STAMP(seq + CAP, SB_ST_BUSY));
    memcpy(c + 1, buf, len);
    c->len = len;
    atomic_store(&c->stamp, SB_STAMP(seq + CAP, SB_ST_COMMITTED));
}

static uint32_t entry_state(shmbus_topic *t, uint32_t i)
{
    return SB_PEND_ST(atomic_load(&sb_pending(&t->seg, 0, i)->word));
}

static void publish_n(shmbus_pub *pub, uint32_t n, uint64_t first)
{
    uint8_t buf[MSG_MAX];

    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = tu_fill(buf, 1, first + i, 40);
        assert_shmbus_ok(shmbus_publish(pub, buf, len, 0));
    }
}

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

/* A topic and an acknowledging member of group "jobs" on bus @p bus. */
struct member {
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_sub *sub;
};

static int member_open(struct member *m, const char *bus, const char *topic,
                       const shmbus_sub_opts *so)
{
    *m = (struct member){0};
    if (connect_retry(bus, &m->bus) < 0 ||
        shmbus_open(m->bus, topic, NULL, SHMBUS_OPEN_NOCREATE, &m->t) < 0)
        return -1;
    return shmbus_sub_create(m->t, so, &m->sub);
}

static void member_close(struct member *m)
{
    shmbus_sub_destroy(m->sub);
    shmbus_topic_destroy(m->t);
    shmbus_close(m->bus);
}

static shmbus_sub_opts ack_opts(uint32_t inflight)
{
    return (shmbus_sub_opts){
        .group_name = "jobs", .flags = SHMBUS_SUB_ACK, .max_inflight = inflight, .spin_ns = -1};
}

/* The test's own topic on the daemon's bus, and a publisher. */
struct bench {
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
};

static void bench_open(struct bench *b, const struct du_daemon *d, const char *topic,
                       uint32_t stall_ms)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                           .capacity = CAP,
                           .max_msg_size = MSG_MAX,
                           .stall_timeout_ms = stall_ms};

    assert_shmbus_ok(connect_retry(d->bus, &b->bus));
    assert_shmbus_ok(shmbus_open(b->bus, topic, &o, 0, &b->t));
    assert_shmbus_ok(shmbus_pub_create(b->t, &b->pub));
}

static void bench_close(struct bench *b)
{
    shmbus_pub_destroy(b->pub);
    shmbus_topic_destroy(b->t);
    shmbus_close(b->bus);
}

/* Receive one message within @p timeout_ns: its seq and deliveries. */
static int take(shmbus_sub *sub, int64_t timeout_ns, uint64_t *seq, uint32_t *deliveries)
{
    uint8_t buf[MSG_MAX];
    struct tu_payload p;
    shmbus_msg info;
    int n = shmbus_recv(sub, buf, sizeof(buf), &info, timeout_ns);

    if (n < 0)
        return n;
    if (!tu_check(buf, (uint32_t)n, &p) || p.seq != info.seq)
        return SHMBUS_ERR_CORRUPT;
    *seq = info.seq;
    *deliveries = info.deliveries;
    return 0;
}

static void expect_take(shmbus_sub *sub, uint64_t seq, uint32_t deliveries)
{
    uint64_t s = 0;
    uint32_t dv = 0;

    assert_shmbus_ok(take(sub, DC_WAIT_NS, &s, &dv));
    assert_int_equal(s, seq);
    assert_int_equal(dv, deliveries);
}

static void expect_none(shmbus_sub *sub)
{
    uint64_t s;
    uint32_t dv;

    assert_int_equal(take(sub, 0, &s, &dv), -EAGAIN);
}

static void test_ack_options_on_bus(void **state)
{
    struct du_daemon *d = *state;
    shmbus_topic_opts lo = {.mode = SHMBUS_LOSSY, .capacity = CAP, .max_msg_size = MSG_MAX};
    shmbus_topic_opts ro = {.reserved = {1}};
    shmbus_sub_opts so = ack_opts(0);
    struct member plain, acked;
    shmbus_topic *lossy, *t;
    struct bench b;
    shmbus_sub *sub;

    bench_open(&b, d, "opts", 0);
    assert_shmbus_rc(shmbus_open(b.bus, "resv", &ro, 0, &t), SHMBUS_ERR_INVALID);
    assert_shmbus_ok(shmbus_open(b.bus, "lossy", &lo, 0, &lossy));
    assert_shmbus_rc(shmbus_sub_create(lossy, &so, &sub), SHMBUS_ERR_INVALID);
    so.group_name = NULL;
    assert_shmbus_rc(shmbus_sub_create(b.t, &so, &sub), SHMBUS_ERR_INVALID);
    so = ack_opts(SHMBUS_INFLIGHT_MAX + 1);
    assert_shmbus_rc(shmbus_sub_create(b.t, &so, &sub), SHMBUS_ERR_INVALID);
    so = ack_opts(0);
    so.max_deliveries = SHMBUS_MAX_DELIVERIES_MAX + 1;
    assert_shmbus_rc(shmbus_sub_create(b.t, &so, &sub), SHMBUS_ERR_INVALID);
    so = ack_opts(0);
    so.dead_letter = "no/slash";
    assert_shmbus_rc(shmbus_sub_create(b.t, &so, &sub), SHMBUS_ERR_BAD_NAME);
    so.dead_letter = "opts"; /* the topic itself */
    assert_shmbus_rc(shmbus_sub_create(b.t, &so, &sub), SHMBUS_ERR_INVALID);
    /* The first member fixes the kind; the other kind is refused. */
    so = ack_opts(0);
    so.max_deliveries = 3;
    assert_shmbus_ok(member_open(&acked, d->bus, "opts", &so));
    so = (shmbus_sub_opts){.group_name = "jobs"};
    assert_shmbus_rc(member_open(&plain, d->bus, "opts", &so), SHMBUS_ERR_MISMATCH);
    member_close(&plain);
    so = ack_opts(0);
    so.max_deliveries = 4;
    assert_shmbus_rc(member_open(&plain, d->bus, "opts", &so), SHMBUS_ERR_MISMATCH);
    member_close(&plain);
    member_close(&acked);
    shmbus_topic_destroy(lossy);
    bench_close(&b);
}

/* A process that inherited the member through fork() acks nothing. */
static int kid_acks_inherited(void *arg)
{
    shmbus_sub *sub = arg;

    if (shmbus_ack(sub, 0) != SHMBUS_ERR_INVALID || shmbus_nack(sub, 0, 0) != SHMBUS_ERR_INVALID)
        return 1;
    shmbus_sub_destroy(sub); /* its memory only */
    return 0;
}

/* A reliable publisher blocked on a pending message gets through after
 * the ack, not before (nor after a forked child's ack). */
static void test_ack_frees_the_cell(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(1);
    uint8_t buf[MSG_MAX];
    struct member m;
    struct bench b;
    pid_t kid;

    bench_open(&b, d, "free", 0);
    assert_shmbus_ok(member_open(&m, d->bus, "free", &so));
    publish_n(b.pub, 1, 0);
    expect_take(m.sub, 0, 1);
    publish_n(b.pub, CAP - 1, 1); /* the ring is full against seq 0 */
    assert_int_equal(shmbus_publish(b.pub, buf, tu_fill(buf, 1, CAP, 40), 0), -EAGAIN);
    assert_int_equal(shmbus_publish(b.pub, buf, tu_fill(buf, 1, CAP, 40), 50000000),
                     SHMBUS_ERR_TIMEOUT);
    kid = tu_fork(kid_acks_inherited, m.sub);
    assert_int_equal(tu_wait(kid), 0);
    assert_shmbus_ok(shmbus_ack(m.sub, 0));
    assert_int_equal(shmbus_ack(m.sub, 0), -ENOENT);
    assert_shmbus_ok(shmbus_publish(b.pub, buf, tu_fill(buf, 1, CAP, 40), 0));
    for (uint64_t s = 1; s <= CAP; s++) {
        expect_take(m.sub, s, 1);
        assert_shmbus_ok(shmbus_ack(m.sub, s));
    }
    member_close(&m);
    bench_close(&b);
}

/* Group 0's entries in state @p st owned by @p owner (0: by anyone). */
static uint32_t entries_in(shmbus_topic *t, uint32_t st, uint32_t owner)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < SB_ACK_ENTRIES; i++) {
        uint64_t w = atomic_load(&sb_pending(&t->seg, 0, i)->word);
        n += SB_PEND_ST(w) == st && (owner == 0 || SB_PEND_OWNER(w) == owner);
    }
    return n;
}

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

/* A pending entry scribbled by another process (a seq whose cell never
 * held it) is dropped and counted by the member that would take it, which
 * goes on with the next message. */
static void test_ack_scribbled_entry_counted(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(1);
    shmbus_topic_info info;
    struct member m;
    struct bench b;

    bench_open(&b, d, "scrib", 0);
    assert_shmbus_ok(member_open(&m, d->bus, "scrib", &so));
    entry_set(m.t, SB_ACK_ENTRIES - 1, SB_PEND_RETURNED, 12345, 1, SHMBUS_DL_DIED);
    publish_n(b.pub, 1, 0);
    expect_take(m.sub, 0, 1);
    assert_int_equal(entry_state(m.t, SB_ACK_ENTRIES - 1), SB_PEND_FREE);
    assert_shmbus_ok(shmbus_topic_info_get(m.t, &info));
    assert_int_equal(info.abandoned, 1);
    assert_shmbus_ok(shmbus_ack(m.sub, 0));
    member_close(&m);
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

/* A nacked message is not redelivered before its delay, and is on time
 * after it (the sleeper caps its sleep), its deliveries counted. */
static void test_ack_nack_delay(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(1);
    const int64_t delay = 300000000; /* 300 ms */
    shmbus_waitset *ws;
    shmbus_sub *ready = NULL;
    struct member m;
    struct bench b;
    uint64_t t0, seq;
    uint32_t dv;

    bench_open(&b, d, "nack", 0);
    assert_shmbus_ok(member_open(&m, d->bus, "nack", &so));
    publish_n(b.pub, 1, 0);
    expect_take(m.sub, 0, 1);
    t0 = sb_mono_ns();
    assert_shmbus_ok(shmbus_nack(m.sub, 0, delay));
    assert_int_equal(shmbus_nack(m.sub, 0, 0), -ENOENT);
    expect_none(m.sub);
    assert_int_equal(shmbus_sub_ready(m.sub), 0);
    assert_shmbus_ok(take(m.sub, DC_WAIT_NS, &seq, &dv));
    assert_true(sb_mono_ns() - t0 >= (uint64_t)delay);
    assert_true(sb_mono_ns() - t0 < (uint64_t)delay + 2000000000ull); /* on time, loaded box */
    assert_int_equal(seq, 0);
    assert_int_equal(dv, 2);
    /* A wait set sleeps until the delay is over too. */
    assert_shmbus_ok(shmbus_waitset_create(&ws));
    assert_shmbus_ok(shmbus_waitset_add(ws, m.sub));
    t0 = sb_mono_ns();
    assert_shmbus_ok(shmbus_nack(m.sub, 0, delay));
    assert_int_equal(shmbus_waitset_wait(ws, &ready, 1, 0), -EAGAIN);
    assert_int_equal(shmbus_waitset_wait(ws, &ready, 1, DC_WAIT_NS), 1);
    assert_true(sb_mono_ns() - t0 >= (uint64_t)delay);
    assert_ptr_equal(ready, m.sub);
    shmbus_waitset_destroy(ws);
    expect_take(m.sub, 0, 3);
    /* At once, with delay 0; and bounds. */
    assert_shmbus_ok(shmbus_nack(m.sub, 0, 0));
    expect_take(m.sub, 0, 4);
    assert_shmbus_rc(shmbus_nack(m.sub, 0, -1), SHMBUS_ERR_INVALID);
    assert_shmbus_rc(shmbus_nack(m.sub, 0, SHMBUS_NACK_DELAY_MAX + 1), SHMBUS_ERR_INVALID);
    assert_shmbus_ok(shmbus_ack(m.sub, 0));
    assert_int_equal(atomic_load(&m.t->seg.groups[0].redelivered), 3);
    member_close(&m);
    bench_close(&b);
}

/* A member at its limit sleeps through another member's nacked message
 * falling due (it cannot take it): no busy loop once the delay is over. */
static void test_ack_limit_sleeps_past_nack_delay(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(1);
    const uint64_t wait_ns = 600000000; /* 600 ms, the delay 20 ms */
    struct timespec c0, c1;
    struct member a, c;
    struct bench b;
    uint64_t seq, t0;
    uint32_t dv;

    bench_open(&b, d, "limit", 0);
    assert_shmbus_ok(member_open(&a, d->bus, "limit", &so));
    assert_shmbus_ok(member_open(&c, d->bus, "limit", &so));
    publish_n(b.pub, 2, 0);
    expect_take(a.sub, 0, 1);
    expect_take(c.sub, 1, 1);
    assert_shmbus_ok(shmbus_nack(c.sub, 1, 20000000));
    t0 = sb_mono_ns();
    assert_int_equal(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0), 0);
    assert_int_equal(take(a.sub, (int64_t)wait_ns, &seq, &dv), SHMBUS_ERR_TIMEOUT);
    assert_int_equal(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1), 0);
    assert_true(sb_mono_ns() - t0 >= wait_ns);
    /* Asleep: a few wake-ups per slice, not a spin on the clock. */
    assert_true((c1.tv_sec - c0.tv_sec) * 1000000000ll + (c1.tv_nsec - c0.tv_nsec) < 100000000ll);
    assert_shmbus_ok(shmbus_ack(a.sub, 0));
    expect_take(a.sub, 1, 2);
    assert_shmbus_ok(shmbus_ack(a.sub, 1));
    member_close(&a);
    member_close(&c);
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

/* What a poll delivered: seq and deliveries, in order. */
struct seen {
    uint32_t n;
    uint64_t seq[8];
    uint32_t deliveries[8];
};

static int seen_cb(const shmbus_msg *msg, void *arg)
{
    struct seen *s = arg;

    if (s->n < 8) {
        s->seq[s->n] = msg->seq;
        s->deliveries[s->n++] = msg->deliveries;
    }
    return 0;
}

/* A member at its limit takes nothing until it acks; another member gets
 * the rest. Redeliveries come before new messages, lowest seq first. */
static void test_ack_inflight_and_order(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so2 = ack_opts(2), so3 = ack_opts(3);
    struct seen a_seen = {0}, c_seen = {0};
    struct member a, c;
    struct bench b;

    bench_open(&b, d, "order", 0);
    assert_shmbus_ok(member_open(&a, d->bus, "order", &so2));
    assert_shmbus_ok(member_open(&c, d->bus, "order", &so3));
    publish_n(b.pub, 4, 0);
    assert_int_equal(shmbus_poll(a.sub, seen_cb, &a_seen, 8), 2);
    assert_int_equal(shmbus_poll(a.sub, seen_cb, &a_seen, 8), 0); /* at its limit */
    assert_int_equal(shmbus_sub_ready(a.sub), 0);
    assert_int_equal(a_seen.seq[0], 0);
    assert_int_equal(a_seen.seq[1], 1);
    /* Given back 1, then 0, while 2 and 3 wait at the cursor. */
    assert_shmbus_ok(shmbus_nack(a.sub, 1, 0));
    assert_shmbus_ok(shmbus_nack(a.sub, 0, 0));
    assert_int_equal(shmbus_sub_ready(c.sub), 1);
    assert_int_equal(shmbus_poll(c.sub, seen_cb, &c_seen, 8), 3); /* then at its limit */
    assert_int_equal(c_seen.seq[0], 0);
    assert_int_equal(c_seen.deliveries[0], 2);
    assert_int_equal(c_seen.seq[1], 1);
    assert_int_equal(c_seen.deliveries[1], 2);
    assert_int_equal(c_seen.seq[2], 2);
    assert_int_equal(c_seen.deliveries[2], 1);
    a_seen.n = 0;
    assert_int_equal(shmbus_poll(a.sub, seen_cb, &a_seen, 8), 1); /* the rest */
    assert_int_equal(a_seen.seq[0], 3);
    assert_int_equal(a_seen.deliveries[0], 1);
    for (uint64_t s = 0; s < 3; s++)
        assert_shmbus_ok(shmbus_ack(c.sub, s));
    assert_int_equal(shmbus_ack(c.sub, 3), -ENOENT); /* a's */
    assert_shmbus_ok(shmbus_ack(a.sub, 3));
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

/* Members in threads take, check and ack (nacking some) while a publisher
 * fills a 4-cell ring: no pending message is ever overwritten, and every
 * message is acknowledged. */
struct gate_kid {
    struct member m;
    _Atomic uint32_t *acked; /* per seq */
    _Atomic int *stop;
    int bad;
};

static void *gate_member(void *arg)
{
    struct gate_kid *k = arg;
    uint64_t seq;
    uint32_t dv;

    while (!atomic_load(k->stop)) {
        shmbus_msg info;
        uint8_t buf[MSG_MAX];
        struct tu_payload p;
        int n = shmbus_recv(k->m.sub, buf, sizeof(buf), &info, 10000000);

        if (n == SHMBUS_ERR_TIMEOUT || n == -EAGAIN)
            continue;
        if (n < 0 || !tu_check(buf, (uint32_t)n, &p) || p.seq != info.seq) {
            k->bad = 1;
            break;
        }
        seq = info.seq;
        dv = info.deliveries;
        if (seq % 7 == 0 && dv == 1) { /* once more, from any member */
            if (shmbus_nack(k->m.sub, seq, 0) < 0)
                k->bad = 1;
            continue;
        }
        if (shmbus_ack(k->m.sub, seq) < 0 || seq >= GATE_MSGS)
            k->bad = 1;
        else
            atomic_fetch_add(&k->acked[seq], 1);
    }
    return NULL;
}

static void test_ack_publishers_never_overwrite_pending(void **state)
{
    struct du_daemon *d = *state;
    shmbus_sub_opts so = ack_opts(2);
    struct gate_kid kids[GATE_KIDS];
    pthread_t th[GATE_KIDS];
    _Atomic uint32_t *acked = calloc(GATE_MSGS, sizeof(*acked));
    _Atomic int stop = 0;
    struct bench b;
    uint32_t done = 0;

    assert_non_null(acked);
    bench_open(&b, d, "gate", 0);
    for (int i = 0; i < GATE_KIDS; i++) {
        kids[i] = (struct gate_kid){.acked = acked, .stop = &stop};
        assert_shmbus_ok(member_open(&kids[i].m, d->bus, "gate", &so));
        assert_int_equal(pthread_create(&th[i], NULL, gate_member, &kids[i]), 0);
    }
    for (uint32_t i = 0; i < GATE_MSGS; i++) {
        uint8_t buf[MSG_MAX];
        assert_shmbus_ok(shmbus_publish(b.pub, buf, tu_fill(buf, 1, i, 8 + i % 48), DC_WAIT_NS));
    }
    for (int64_t end = du_now_ms() + READY_MS; du_now_ms() < end; du_sleep_ms(10)) {
        done = 0;
        for (uint32_t i = 0; i < GATE_MSGS; i++)
            done += atomic_load(&acked[i]) != 0;
        if (done == GATE_MSGS)
            break;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < GATE_KIDS; i++) {
        pthread_join(th[i], NULL);
        assert_false(kids[i].bad);
        member_close(&kids[i].m);
    }
    assert_int_equal(done, GATE_MSGS);
    for (uint32_t i = 0; i < GATE_MSGS; i++)
        assert_int_equal(atomic_load(&acked[i]), 1); /* nobody died: exactly once */
    free(acked);
    bench_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_options_refused),
        cmocka_unit_test(test_ack_group_kind_fixed_by_first),
        cmocka_unit_test(test_ack_dead_letter_primitives),
        cmocka_unit_test(test_ack_give_backs_of_gone_members),
        DAEMON_TEST(test_ack_options_on_bus),
        DAEMON_TEST(test_ack_frees_the_cell),
        DAEMON_TEST(test_ack_keeps_one_reservation),
        DAEMON_TEST(test_ack_scribbled_entry_counted),
        DAEMON_TEST(test_ack_returned_take_read_by_copy),
        DAEMON_TEST(test_ack_nack_delay),
        DAEMON_TEST(test_ack_limit_sleeps_past_nack_delay),
        DAEMON_TEST(test_ack_inflight_and_order),
        DAEMON_TEST(test_ack_gone_member_gives_back),
        DAEMON_TEST(test_ack_killed_after_ack_returns_nothing),
        DAEMON_TEST(test_ack_evicted_member_gives_back),
        DAEMON_TEST(test_ack_evicted_while_reading),
        DAEMON_TEST(test_ack_evicted_ack_gives_back),
        DAEMON_TEST(test_ack_publishers_never_overwrite_pending),
    };
    tu_init();
    return cmocka_run_group_tests_name("ack", tests, NULL, NULL);
}
