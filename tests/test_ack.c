/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Acknowledged groups (ring/ack.c, registry/admin_ack.c): the options a
 * member is refused for, the group's kind as the daemon's numbering fixes
 * it, and, with a real shmbusd (daemonclient.h), what members see: an ack
 * frees the cell a reliable publisher waits for, a scribbled entry is
 * counted, a nack's delay is kept, max_inflight bounds what a member
 * holds, redeliveries come first and in order, and no publisher ever
 * overwrites a pending message. What happens to the messages of members
 * that are gone is in test_ack_gone.c.
 */
#include "acktest.h"

/* ------------------------------------------------ without a daemon */

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
    so = (shmbus_sub_opts){.reserved = {1}};
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

/* --------------------------------------------------- with a daemon */
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
        DAEMON_TEST(test_ack_options_on_bus),
        DAEMON_TEST(test_ack_frees_the_cell),
        DAEMON_TEST(test_ack_scribbled_entry_counted),
        DAEMON_TEST(test_ack_nack_delay),
        DAEMON_TEST(test_ack_limit_sleeps_past_nack_delay),
        DAEMON_TEST(test_ack_inflight_and_order),
        DAEMON_TEST(test_ack_publishers_never_overwrite_pending),
    };
    tu_init();
    return cmocka_run_group_tests_name("ack", tests, NULL, NULL);
}
