/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Work queue under kill -9 (issue 14): a private shmbusd, a reliable topic
 * of 64 cells with one acknowledging group (SHMBUS_SUB_ACK, max_deliveries
 * SA_MAX_DELIVERIES, the default dead-letter topic `<topic>.dlq`), one
 * publisher that is never killed, SA_WORKERS members that the test kills
 * with SIGKILL every 60-250 ms and replaces, and a reader of the
 * dead-letter topic. Members hold 1 or SA_INFLIGHT messages at once
 * (max_inflight) and often sleep a little between taking a message and
 * acknowledging it, so that kills land between take and ack, and now and
 * then just before or after the ack itself (did it happen?); one message
 * in SA_POISON_ONE_IN is poison, nacked (with a short delay) every time.
 *
 * Checked all along: the publisher publishes (no gap over SA_STALL_MS: a
 * killed member's messages gate it only until the daemon returns them);
 * every payload is intact and is the publisher's
 * message of that seq; a member gets a message at most once as each
 * delivery number, never beyond max_deliveries, a poison message at
 * every delivery; a member at max_inflight takes nothing; every ack and
 * nack succeeds. Each dead letter parses (shmbus_dead_letter_parse())
 * and carries the topic, the group, the seq, the publisher's pid, times
 * in order, deliveries = max_deliveries and a reason: nacked, or died
 * (its last member was killed holding it).
 *
 * Then the publisher stops and every member is killed: once the daemon
 * has returned what they held and dead-lettered what was due, exact
 * accounting by seq (ack_ledger.h): every published seq is acknowledged,
 * dead-lettered or still pending in the table, exactly one of them, and
 * the three add up to the published count; a member killed with an ack
 * in hand counts as having acknowledged unless the message is found
 * elsewhere. A message redelivered without having been nacked was in the
 * hand of a killed member: such redeliveries are at most what the killed
 * members held (max_inflight, + 1 taken but not yet recorded, each), and
 * there are some: kills did land between take and ack. Last, one member that is never killed drains
 * the group: everything is acknowledged or dead-lettered, nothing pending, every poison message in
 * the dead-letter topic, and the group's counters agree (dead_lettered = dead letters read, none
 * failed, redelivered >= the redeliveries members saw, nothing lost). The daemon exits 0 and leaves
 * no segment (du_teardown); children are killed and reaped on every exit path.
 */
#include "ack_ledger.h"
#include "daemonutil.h"

#define SA_TOPIC          "ack-work"
#define SA_DLQ            "ack-work.dlq"
#define SA_GROUP          "ack-group"
#define SA_WORKERS        4
#define SA_INFLIGHT       4 /* the larger max_inflight (the other members: 1) */
#define SA_MAX_DELIVERIES 4
#define SA_POISON_ONE_IN  40
#define SA_CAPACITY       64
#define SA_DLQ_CAPACITY   1024
#define SA_MSG_MIN        24
#define SA_MSG_MAX        160
#define SA_DLQ_MSG_MAX    (SA_MSG_MAX + 512) /* the envelope's header and names */
#define SA_SEQS           (1u << 21)
#define SA_WAIT_NS        50000000ll
#define SA_ACK_SLEEP_US   2000 /* longest a killable member sleeps before an ack */
#define SA_HAND_SLEEP_US  500  /* ... with the ack in hand (sa_member_dawdle()) */
#define SA_NACK_DELAY_NS  2000000ll
#define SA_PARK_NS        3000000000ll /* nack delay of a message put aside at the end */
#define SA_KILL_MIN_MS    60
#define SA_KILL_MAX_MS    250
#define SA_READY_MS       30000
#define SA_REST_MS        15000 /* the daemon returns and dead-letters within this */
#define SA_DRAIN_MS       30000 /* one member drains the group within this */
#define SA_KILLS_MAX      4096
#ifdef TU_SANITIZED
#define SA_SECONDS  8
#define SA_STALL_MS 6000 /* longest the publisher may go without publishing */
#else
#define SA_SECONDS  12
#define SA_STALL_MS 3000
#endif

/* Shared by the parent and every child (an anonymous shared mapping). */
struct sa_shared {
    _Atomic uint32_t stop;     /* the publisher: finish */
    _Atomic uint32_t park;     /* killable members: nack for SA_PARK_NS, do not ack */
    _Atomic uint32_t quit;     /* the draining member and the dead-letter reader: finish */
    _Atomic uint32_t pub_pid;  /* the publisher's, before its first message */
    _Atomic uint64_t ready;    /* children up */
    _Atomic uint64_t position; /* the draining member: the group's position */
    _Atomic uint64_t dl_read;  /* dead letters read */
    _Atomic uint64_t acked, nacked, at_limit_checks;
    _Atomic uint32_t failures, why_claimed, why_done;
    char why[512];
    struct ak_hand hands[SA_WORKERS + 1];
};

/* What a child is told (copied into it by the fork). */
struct sa_kid {
    struct sa_shared *sh;
    struct ak_seq *l;
    const char *bus;
    int worker; /* members: index of its hand; SA_WORKERS: the drainer */
    uint32_t inflight;
    uint64_t seed;
};

static uint64_t sa_rand(uint64_t *s)
{
    return tu_rng_next(s);
}

static uint32_t sa_between(uint64_t *s, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(sa_rand(s) % (hi - lo + 1u));
}

/* A child found something wrong: keep the first report. @return 3. */
__attribute__((format(printf, 2, 3))) static int sa_fail(struct sa_shared *sh, const char *fmt, ...)
{
    va_list ap;

    /* relaxed: the claim only picks one writer; why_done publishes the text. */
    if (atomic_fetch_add_explicit(&sh->why_claimed, 1, memory_order_relaxed) == 0) {
        va_start(ap, fmt);
        vsnprintf(sh->why, sizeof(sh->why), fmt, ap);
        va_end(ap);
        /* release: pairs with the parent's acquire load; the text is complete. */
        atomic_store_explicit(&sh->why_done, 1, memory_order_release);
    }
    /* relaxed: the parent waits for why_done before it reads the text. */
    atomic_fetch_add_explicit(&sh->failures, 1, memory_order_relaxed);
    return 3;
}

static void sa_ready(struct sa_shared *sh)
{
    /* relaxed: a count the parent polls; what it stands for is checked
     * through the daemon and the ledger. */
    atomic_fetch_add_explicit(&sh->ready, 1, memory_order_relaxed);
}

/* Connect and open @p topic (the parent created it). */
static int sa_open(const struct sa_kid *k, const char *topic, shmbus_bus **bus, shmbus_topic **t)
{
    int rc = shmbus_connect(k->bus, bus);

    if (rc == 0)
        rc = shmbus_open(*bus, topic, NULL, SHMBUS_OPEN_NOCREATE, t);
    if (rc < 0)
        return sa_fail(k->sh, "pid %d: open %s: %s", (int)getpid(), topic, shmbus_strerror(rc));
    return 0;
}

/* ------------------------------------------------------------- publisher */

/* Publish index i at seq i (the only publisher, never killed) until told
 * to stop, in bursts; a full ring (pending messages gate it) waits. */
static int sa_pub_run(void *arg)
{
    const struct sa_kid *k = arg;
    uint8_t buf[SA_MSG_MAX];
    uint64_t rng = k->seed, i = 0;
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_pub *pub = NULL;
    int rc = sa_open(k, SA_TOPIC, &bus, &t);

    /* relaxed: read by children after our first commit (release). */
    atomic_store_explicit(&k->sh->pub_pid, (uint32_t)getpid(), memory_order_relaxed);
    if (rc == 0 && (rc = shmbus_pub_create(t, &pub)) < 0)
        rc = sa_fail(k->sh, "publisher: %s", shmbus_strerror(rc));
    if (rc == 0)
        sa_ready(k->sh);
    /* relaxed: polled. */
    while (rc == 0 && atomic_load_explicit(&k->sh->stop, memory_order_relaxed) == 0) {
        for (uint32_t n = sa_between(&rng, 1, 16); n > 0 && i < SA_SEQS; n--) {
            uint32_t len = tu_fill(buf, 0, i, sa_between(&rng, SA_MSG_MIN, SA_MSG_MAX));
            int prc = shmbus_publish(pub, buf, len, SA_WAIT_NS);

            if (prc == SHMBUS_ERR_TIMEOUT || prc == -EINTR)
                break; /* gated: the same index again */
            if (prc < 0) {
                rc =
                    sa_fail(k->sh, "publish %llu: %s", (unsigned long long)i, shmbus_strerror(prc));
                break;
            }
            i++;
        }
        usleep(sa_between(&rng, 0, 500));
    }
    shmbus_pub_destroy(pub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return rc;
}

/* ---------------------------------------------------------------- members */

struct sa_member {
    const struct sa_kid *k;
    shmbus_sub *sub;
    uint64_t rng;
    uint32_t n;
    struct {
        uint64_t seq;
        int poison;
    } held[SA_INFLIGHT];
};

/* A message taken: intact, the publisher's of that seq, a delivery number
 * in range and new for that seq; record it held. */
static int sa_member_got(struct sa_member *mb, const void *data, const shmbus_msg *m)
{
    const struct sa_kid *k = mb->k;
    struct tu_payload p = {0};
    /* relaxed: the publisher stored it before its first commit (release),
     * which our receive read with acquire. */
    uint32_t pid = atomic_load_explicit(&k->sh->pub_pid, memory_order_relaxed);

    if (!tu_check(data, m->len, &p) || p.publisher != 0 || p.seq != m->seq || m->seq >= SA_SEQS ||
        m->publisher_pid != pid)
        return sa_fail(k->sh, "member %d: seq %llu: a wrong payload (%u bytes, index %llu, pid %u)",
                       k->worker, (unsigned long long)m->seq, m->len, (unsigned long long)p.seq,
                       m->publisher_pid);
    if (m->deliveries < 1 || m->deliveries > SA_MAX_DELIVERIES)
        return sa_fail(k->sh, "member %d: seq %llu delivered as delivery %u of at most %u",
                       k->worker, (unsigned long long)m->seq, m->deliveries, SA_MAX_DELIVERIES);
    if (ak_took(&k->l[m->seq], m->deliveries))
        return sa_fail(k->sh, "member %d: seq %llu delivered twice as delivery %u", k->worker,
                       (unsigned long long)m->seq, m->deliveries);
    if (mb->n >= k->inflight)
        return sa_fail(k->sh, "member %d: seq %llu taken while holding %u of max_inflight %u",
                       k->worker, (unsigned long long)m->seq, mb->n, k->inflight);
    mb->held[mb->n].seq = m->seq;
    mb->held[mb->n].poison = ak_is_poison(0, p.seq, SA_POISON_ONE_IN);
    mb->n++;
    return 0;
}

/* Poll callback at max_inflight: nothing may come. */
static int sa_member_over(const shmbus_msg *m, void *arg)
{
    struct sa_member *mb = arg;

    sa_fail(mb->k->sh, "member %d: poll took seq %llu at max_inflight %u", mb->k->worker,
            (unsigned long long)m->seq, mb->k->inflight);
    return 1;
}

/* Take up to max_inflight messages: wait for the first, then take what
 * is there; at the limit a poll must take nothing. @return 0 or 3. */
static int sa_member_fill(struct sa_member *mb)
{
    const struct sa_kid *k = mb->k;
    uint8_t buf[SA_MSG_MAX];
    shmbus_msg m;
    int n;

    while (mb->n < k->inflight) {
        n = shmbus_recv(mb->sub, buf, sizeof(buf), &m, mb->n == 0 ? SA_WAIT_NS : 0);
        if (n == SHMBUS_ERR_TIMEOUT || n == -EAGAIN || n == -EINTR)
            return 0;
        if (n < 0)
            return sa_fail(k->sh, "member %d: recv: %s", k->worker, shmbus_strerror(n));
        if (sa_member_got(mb, buf, &m) != 0)
            return 3;
    }
    if (sa_rand(&mb->rng) % 4 == 0) {
        /* relaxed: a counter for the summary. */
        atomic_fetch_add_explicit(&k->sh->at_limit_checks, 1, memory_order_relaxed);
        n = shmbus_poll(mb->sub, sa_member_over, mb, 1);
        if (n != 0)
            return sa_fail(k->sh, "member %d: poll at max_inflight -> %d (%s)", k->worker, n,
                           shmbus_strerror(n));
    }
    return 0;
}

/* A killable member now and then dawdles with an ack in hand, just before
 * or just after shmbus_ack(), so that kills land there too: the parent
 * cannot know whether the ack happened, and the accounting must find out. */
static void sa_member_dawdle(struct sa_member *mb, int killable)
{
    if (killable && sa_rand(&mb->rng) % 16 == 0)
        usleep(sa_between(&mb->rng, 0, SA_HAND_SLEEP_US));
}

/* Nack a poison message; ack any other, a killable member often after a
 * short sleep (a kill may land there, or in the ack). */
static int sa_member_finish(struct sa_member *mb, uint64_t seq, int poison)
{
    const struct sa_kid *k = mb->k;
    struct ak_hand *hand = &k->sh->hands[k->worker];
    int rc;

    int killable = k->worker < SA_WORKERS;
    /* relaxed: polled; set once, at the end. */
    int park = killable && atomic_load_explicit(&k->sh->park, memory_order_relaxed);

    if (poison || park) {
        ak_mark_nacked(&k->l[seq], poison);
        rc = shmbus_nack(mb->sub, seq,
                         poison ? (int64_t)(sa_rand(&mb->rng) % SA_NACK_DELAY_NS) : SA_PARK_NS);
        if (rc < 0)
            return sa_fail(k->sh, "member %d: nack %llu: %s", k->worker, (unsigned long long)seq,
                           shmbus_strerror(rc));
        /* relaxed: a counter for the summary. */
        atomic_fetch_add_explicit(&k->sh->nacked, 1, memory_order_relaxed);
        return 0;
    }
    if (killable && sa_rand(&mb->rng) % 2 == 0)
        usleep(sa_between(&mb->rng, 0, SA_ACK_SLEEP_US));
    ak_hand_acking(hand, seq);
    sa_member_dawdle(mb, killable);
    rc = shmbus_ack(mb->sub, seq);
    if (rc < 0)
        return sa_fail(k->sh, "member %d: ack %llu: %s", k->worker, (unsigned long long)seq,
                       shmbus_strerror(rc));
    sa_member_dawdle(mb, killable);
    if (ak_hand_acked(hand, &k->l[seq]) != 0)
        return sa_fail(k->sh, "member %d: seq %llu acknowledged twice", k->worker,
                       (unsigned long long)seq);
    /* relaxed: a counter for the summary. */
    atomic_fetch_add_explicit(&k->sh->acked, 1, memory_order_relaxed);
    return 0;
}

/* The drainer reports the group's position. @return 1 once told to quit. */
static int sa_member_done(const struct sa_member *mb)
{
    shmbus_sub_stats st;

    if (mb->k->worker < SA_WORKERS)
        return 0; /* a killable member works until it is killed */
    shmbus_sub_stats_get(mb->sub, &st);
    /* relaxed, both: polled by the parent, which also reads the table. */
    atomic_store_explicit(&mb->k->sh->position, st.position, memory_order_relaxed);
    return mb->n == 0 && atomic_load_explicit(&mb->k->sh->quit, memory_order_relaxed) != 0;
}

static int sa_member_run(void *arg)
{
    const struct sa_kid *k = arg;
    shmbus_sub_opts so = {.group_name = SA_GROUP,
                          .flags = SHMBUS_SUB_ACK,
                          .max_inflight = k->inflight,
                          .max_deliveries = SA_MAX_DELIVERIES};
    struct sa_member mb = {.k = k, .rng = k->seed};
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    int rc = sa_open(k, SA_TOPIC, &bus, &t);

    if (rc == 0 && (rc = shmbus_sub_create(t, &so, &mb.sub)) < 0)
        rc = sa_fail(k->sh, "member %d: join: %s", k->worker, shmbus_strerror(rc));
    if (rc == 0)
        sa_ready(k->sh);
    while (rc == 0 && !sa_member_done(&mb)) {
        rc = sa_member_fill(&mb);
        for (uint32_t i = 0; rc == 0 && i < mb.n; i++)
            rc = sa_member_finish(&mb, mb.held[i].seq, mb.held[i].poison);
        mb.n = 0;
    }
    shmbus_sub_destroy(mb.sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return rc;
}

/* ---------------------------------------------------- dead-letter reader */

/* One dead letter: well formed, of our topic and group, the publisher's
 * message of its seq, given up after max_deliveries, and why. */
static int sa_dl_check(const struct sa_kid *k, const void *buf, int n)
{
    shmbus_dead_letter dl;
    struct tu_payload p = {0};
    uint32_t pid;
    int rc = shmbus_dead_letter_parse(buf, (size_t)n, &dl);

    if (rc < 0)
        return sa_fail(k->sh, "dead letter of %d bytes: %s", n, shmbus_strerror(rc));
    /* relaxed: stored before the publisher's first commit. */
    pid = atomic_load_explicit(&k->sh->pub_pid, memory_order_relaxed);
    if (strcmp(dl.topic, SA_TOPIC) != 0 || strcmp(dl.group, SA_GROUP) != 0 || dl.seq >= SA_SEQS ||
        !tu_check(dl.data, dl.len, &p) || p.seq != dl.seq || dl.publisher_pid != pid ||
        dl.timestamp_ns == 0 || dl.dead_ns < dl.timestamp_ns)
        return sa_fail(k->sh,
                       "dead letter: topic '%s' group '%s' seq %llu (%u bytes, index %llu) pid %u, "
                       "published at %llu, dead at %llu",
                       dl.topic, dl.group, (unsigned long long)dl.seq, dl.len,
                       (unsigned long long)p.seq, dl.publisher_pid,
                       (unsigned long long)dl.timestamp_ns, (unsigned long long)dl.dead_ns);
    if (dl.deliveries != SA_MAX_DELIVERIES ||
        (dl.reason != SHMBUS_DL_NACKED && dl.reason != SHMBUS_DL_DIED) ||
        (dl.reason == SHMBUS_DL_NACKED && !ak_was_nacked(&k->l[dl.seq])))
        return sa_fail(
            k->sh, "dead letter seq %llu%s: %u deliveries, reason %u", (unsigned long long)dl.seq,
            ak_is_poison(0, dl.seq, SA_POISON_ONE_IN) ? " (poison)" : "", dl.deliveries, dl.reason);
    if (ak_dead(&k->l[dl.seq], dl.reason) != 0)
        return sa_fail(k->sh, "seq %llu dead-lettered twice", (unsigned long long)dl.seq);
    /* relaxed: polled by the parent, which reads the ledger after it
     * stopped us. */
    atomic_fetch_add_explicit(&k->sh->dl_read, 1, memory_order_relaxed);
    return 0;
}

static int sa_dl_run(void *arg)
{
    const struct sa_kid *k = arg;
    shmbus_sub_opts so = {0};
    uint8_t buf[SA_DLQ_MSG_MAX];
    shmbus_bus *bus = NULL;
    shmbus_topic *t = NULL;
    shmbus_sub *sub = NULL;
    shmbus_msg m;
    int rc = sa_open(k, SA_DLQ, &bus, &t), n;

    if (rc == 0 && (rc = shmbus_sub_create(t, &so, &sub)) < 0)
        rc = sa_fail(k->sh, "dead-letter reader: %s", shmbus_strerror(rc));
    if (rc == 0)
        sa_ready(k->sh);
    /* relaxed: polled; the parent sets quit once it saw us read all. */
    while (rc == 0 && atomic_load_explicit(&k->sh->quit, memory_order_relaxed) == 0) {
        n = shmbus_recv(sub, buf, sizeof(buf), &m, SA_WAIT_NS);
        if (n >= 0)
            rc = m.lost != 0
                     ? sa_fail(k->sh, "dead-letter reader: %llu lost", (unsigned long long)m.lost)
                     : sa_dl_check(k, buf, n);
        else if (n != SHMBUS_ERR_TIMEOUT && n != -EINTR)
            rc = sa_fail(k->sh, "dead-letter reader: recv: %s", shmbus_strerror(n));
    }
    shmbus_sub_destroy(sub);
    shmbus_topic_destroy(t);
    shmbus_close(bus);
    return rc;
}

/* ------------------------------------------------------------------ parent */

struct sa_run {
    struct du_daemon *d;
    struct sa_shared *sh;
    struct ak_seq *l;
    shmbus_bus *bus;
    shmbus_topic *t, *dlq;
    pid_t pub, dl, drainer;
    pid_t workers[SA_WORKERS];
    struct sa_kid kids[SA_WORKERS + 3];
    uint64_t rng;
    uint64_t in_hand[SA_KILLS_MAX];
    size_t n_in_hand;
    unsigned kills;
    uint64_t could_return; /* what the killed members may have held */
};

static void sa_check_failures(const struct sa_run *run)
{
    int64_t end = du_now_ms() + 1000;

    /* relaxed: see sa_fail(). */
    if (atomic_load_explicit(&run->sh->failures, memory_order_relaxed) == 0)
        return;
    /* acquire: pairs with the release in sa_fail(); the writer may have
     * been killed while writing, so wait only a little. */
    while (atomic_load_explicit(&run->sh->why_done, memory_order_acquire) == 0 && du_now_ms() < end)
        du_sleep_ms(10);
    fail_msg("%u failure(s) in children; first: %s",
             atomic_load_explicit(&run->sh->failures, memory_order_relaxed), run->sh->why);
}

/* No child may end by itself. */
static void sa_check_alive(struct sa_run *run)
{
    pid_t all[SA_WORKERS + 3] = {run->pub, run->dl, run->drainer};
    int n = 3, st;

    for (int i = 0; i < SA_WORKERS; i++)
        all[n++] = run->workers[i];
    for (int i = 0; i < n; i++) {
        if (all[i] > 0 && waitpid(all[i], &st, WNOHANG) == all[i]) {
            sa_check_failures(run);
            fail_msg("child %d ended by itself: status %d", (int)all[i],
                     WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
    }
}

static pid_t sa_spawn(struct sa_run *run, int (*fn)(void *), int idx, int worker, uint32_t inflight)
{
    struct sa_kid *k = &run->kids[idx];

    *k = (struct sa_kid){.sh = run->sh,
                         .l = run->l,
                         .bus = run->d->bus,
                         .worker = worker,
                         .inflight = inflight,
                         .seed = sa_rand(&run->rng)};
    return tu_fork(fn, k);
}

/* Wait until @p want children said they are up. */
static void sa_await_ready(struct sa_run *run, uint64_t want)
{
    int64_t end = du_now_ms() + SA_READY_MS;

    /* relaxed: see sa_ready(). */
    while (atomic_load_explicit(&run->sh->ready, memory_order_relaxed) < want) {
        sa_check_failures(run);
        if (du_now_ms() > end)
            fail_msg("children not up within %d ms", SA_READY_MS);
        du_sleep_ms(5);
    }
}

/* Member @p i: max_inflight 1 for even ones, SA_INFLIGHT for odd ones. */
static uint32_t sa_inflight(int i)
{
    return i % 2 ? SA_INFLIGHT : 1;
}

static void sa_spawn_worker(struct sa_run *run, int i)
{
    run->workers[i] = sa_spawn(run, sa_member_run, i, i, sa_inflight(i));
}

/* SIGKILL member @p i and reap it; note the ack it had in hand. */
static void sa_kill(struct sa_run *run, int i)
{
    uint64_t hand;
    int st;

    kill(run->workers[i], SIGKILL);
    st = tu_wait(run->workers[i]);
    run->workers[i] = 0;
    if (st != 128 + SIGKILL) {
        sa_check_failures(run);
        fail_msg("member %d ended with status %d before the kill", i, st);
    }
    run->kills++;
    run->could_return += sa_inflight(i) + 1;
    hand = ak_hand_take(&run->sh->hands[i]);
    if (hand != 0) {
        assert_true(run->n_in_hand < SA_KILLS_MAX);
        run->in_hand[run->n_in_hand++] = hand - 1;
    }
}

/* The topics (the group's and its dead-letter topic, created first so
 * that its reader sees every dead letter), the reader, the members, then
 * the publisher. */
static void sa_start(struct sa_run *run)
{
    shmbus_topic_opts o = {.mode = SHMBUS_RELIABLE,
                           .capacity = SA_CAPACITY,
                           .max_msg_size = SA_MSG_MAX,
                           .max_subscribers = 16,
                           .max_groups = 2};
    shmbus_topic_opts od = {
        .mode = SHMBUS_RELIABLE, .capacity = SA_DLQ_CAPACITY, .max_msg_size = SA_DLQ_MSG_MAX};

    assert_shmbus_ok(shmbus_connect(run->d->bus, &run->bus));
    assert_shmbus_ok(shmbus_open(run->bus, SA_DLQ, &od, 0, &run->dlq));
    assert_shmbus_ok(shmbus_open(run->bus, SA_TOPIC, &o, 0, &run->t));
    run->dl = sa_spawn(run, sa_dl_run, SA_WORKERS + 1, SA_WORKERS, 0);
    for (int i = 0; i < SA_WORKERS; i++)
        sa_spawn_worker(run, i);
    sa_await_ready(run, 1 + SA_WORKERS);
    run->pub = sa_spawn(run, sa_pub_run, SA_WORKERS + 2, SA_WORKERS, 0);
    sa_await_ready(run, 2 + SA_WORKERS);
}

static uint64_t sa_published(shmbus_topic *t)
{
    shmbus_topic_info ti;

    assert_shmbus_ok(shmbus_topic_info_get(t, &ti));
    return ti.published;
}

/* Kill a random member every SA_KILL_MIN_MS..SA_KILL_MAX_MS and replace it. */
/* The publisher moves: a message published within SA_STALL_MS (a dead
 * member's messages gate it until the daemon returns them). */
static void sa_check_stall(const struct sa_run *run, uint64_t *last, int64_t *last_ms)
{
    uint64_t now = sa_published(run->t);
    struct ak_table tab;

    if (now != *last) {
        *last = now;
        *last_ms = du_now_ms();
        return;
    }
    if (du_now_ms() - *last_ms <= SA_STALL_MS)
        return;
    ak_table_read(run->d->bus, SA_TOPIC, SA_GROUP, &tab);
    fail_msg("nothing published for %d ms, at %llu: the group at %llu, %u pending (%u held, "
             "%u returned, %u of them due, %u dead)",
             SA_STALL_MS, (unsigned long long)now, (unsigned long long)tab.cursor, tab.n, tab.held,
             tab.returned, tab.ripe, tab.dead);
}

/* Kill a random member every SA_KILL_MIN_MS..SA_KILL_MAX_MS and replace it. */
static void sa_chaos(struct sa_run *run, unsigned seconds)
{
    int64_t end = du_now_ms() + (int64_t)seconds * 1000, last_ms = du_now_ms();
    uint64_t last = 0;

    while (du_now_ms() < end) {
        int i = (int)(sa_rand(&run->rng) % SA_WORKERS);

        du_sleep_ms(sa_between(&run->rng, SA_KILL_MIN_MS, SA_KILL_MAX_MS));
        sa_check_failures(run);
        sa_check_alive(run);
        sa_check_stall(run, &last, &last_ms);
        sa_kill(run, i);
        sa_spawn_worker(run, i);
    }
}

/* Every seq the single publisher claimed is its message. */
static int sa_is_msg(uint64_t seq, void *arg)
{
    (void)seq;
    (void)arg;
    return 1;
}

/* Wait until the table is at rest (@p drained: empty, the drainer at the
 * tail) and the reader has read every dead letter, for @p ms at most. */
static void sa_settle(struct sa_run *run, struct ak_table *tab, int drained, int ms)
{
    int64_t end = du_now_ms() + ms;
    uint64_t tail = sa_published(run->t);

    for (;;) {
        /* relaxed, both: monitoring; the ledger is read once all is still. */
        uint64_t read = atomic_load_explicit(&run->sh->dl_read, memory_order_relaxed);
        uint64_t pos = atomic_load_explicit(&run->sh->position, memory_order_relaxed);

        sa_check_failures(run);
        ak_table_read(run->d->bus, SA_TOPIC, SA_GROUP, tab);
        if (ak_table_at_rest(tab) && read == sa_published(run->dlq) &&
            (!drained || (tab->n == 0 && pos == tail)))
            return;
        if (du_now_ms() > end)
            fail_msg("not at rest after %d ms: %u pending (%u held, %u returned, %u of them due, "
                     "%u dead), %llu of %llu dead letters read, drainer at %llu of %llu (%s)",
                     ms, tab->n, tab->held, tab->returned, tab->ripe, tab->dead,
                     (unsigned long long)read, (unsigned long long)sa_published(run->dlq),
                     (unsigned long long)pos, (unsigned long long)tail,
                     drained ? "draining" : "no member");
        du_sleep_ms(20);
    }
}

static void sa_account(struct sa_run *run, const struct ak_table *tab, struct ak_sums *s)
{
    struct ak_books b = {.l = run->l,
                         .published = sa_published(run->t),
                         .is_msg = sa_is_msg,
                         .in_hand = run->in_hand,
                         .n_in_hand = run->n_in_hand,
                         .tab = tab};
    char why[512];

    qsort(run->in_hand, run->n_in_hand, sizeof(run->in_hand[0]), ak_u64_cmp);
    if (ak_account(&b, s, why, sizeof(why)) < 0)
        fail_msg("accounting: %s", why);
    /* Never nacked, yet delivered again: only what killed members held. */
    if (s->returns > run->could_return)
        fail_msg("%llu redeliveries of messages never nacked; the %u killed members held at "
                 "most %llu",
                 (unsigned long long)s->returns, run->kills, (unsigned long long)run->could_return);
    if (tab->lost != 0 || tab->max_deliveries != SA_MAX_DELIVERIES)
        fail_msg("group: lost %llu, max_deliveries %u", (unsigned long long)tab->lost,
                 tab->max_deliveries);
    print_message("accounting: %llu published = %llu acknowledged (%llu in hand at a kill and "
                  "again by another) + %llu dead-lettered (%llu never nacked) + %llu pending; "
                  "%llu poison, %llu redeliveries seen, %llu after kills\n",
                  (unsigned long long)s->messages, (unsigned long long)s->acked,
                  (unsigned long long)s->twice, (unsigned long long)s->dead,
                  (unsigned long long)s->dead_unnacked, (unsigned long long)s->pending,
                  (unsigned long long)s->poison, (unsigned long long)s->seen_redeliveries,
                  (unsigned long long)s->returns);
}

/* The members (no longer killed) take every message published: the
 * group's cursor reaches the tail. A group without members holds nothing
 * back, so what it had not taken before they all died would be no
 * member's, nor in the table. */
static void sa_await_cursor(struct sa_run *run, struct ak_table *tab)
{
    int64_t end = du_now_ms() + SA_REST_MS;
    uint64_t tail = sa_published(run->t);

    for (;;) {
        sa_check_failures(run);
        sa_check_alive(run);
        ak_table_read(run->d->bus, SA_TOPIC, SA_GROUP, tab);
        if (tab->cursor == tail)
            return;
        if (du_now_ms() > end)
            fail_msg("the group is at %llu of %llu after %d ms", (unsigned long long)tab->cursor,
                     (unsigned long long)tail, SA_REST_MS);
        du_sleep_ms(10);
    }
}

/* The members put aside (nack for SA_PARK_NS) what they take from now on;
 * the publisher stops; the members take the rest; then all are killed and
 * the daemon returns what they held and dead-letters what is due:
 * account, with what is pending (put aside, or returned). */
static void sa_stop_all(struct sa_run *run, struct ak_table *tab, struct ak_sums *s)
{
    int st;

    /* relaxed, both: polled by the members and the publisher. */
    atomic_store_explicit(&run->sh->park, 1, memory_order_relaxed);
    du_sleep_ms(100);
    atomic_store_explicit(&run->sh->stop, 1, memory_order_relaxed);
    st = du_wait_ms(run->pub, SA_READY_MS);
    run->pub = 0;
    if (st != 0) {
        sa_check_failures(run);
        fail_msg("publisher: status %d (-1: did not finish)", st);
    }
    sa_await_cursor(run, tab);
    for (int i = 0; i < SA_WORKERS; i++)
        sa_kill(run, i);
    sa_settle(run, tab, 0, SA_REST_MS);
    sa_account(run, tab, s);
}

/* One member that is never killed takes the rest: all acknowledged or
 * dead-lettered; then it and the reader finish. */
static void sa_drain(struct sa_run *run, struct ak_table *tab, struct ak_sums *s)
{
    int st;

    run->drainer = sa_spawn(run, sa_member_run, SA_WORKERS, SA_WORKERS, SA_INFLIGHT);
    sa_settle(run, tab, 1, SA_DRAIN_MS);
    /* relaxed: polled by the drainer and the reader. */
    atomic_store_explicit(&run->sh->quit, 1, memory_order_relaxed);
    st = du_wait_ms(run->drainer, SA_READY_MS);
    run->drainer = 0;
    if (st == 0) {
        st = du_wait_ms(run->dl, SA_READY_MS);
        run->dl = 0;
    }
    if (st != 0) {
        sa_check_failures(run);
        fail_msg("drainer or reader: status %d (-1: did not finish)", st);
    }
    ak_table_read(run->d->bus, SA_TOPIC, SA_GROUP, tab);
    sa_account(run, tab, s);
}

static void test_ack_kill9_accounting(void **state)
{
    struct sa_run run = {.d = *state};
    struct ak_table *tab = calloc(1, sizeof(*tab));
    struct ak_sums s1, s2;
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    const char *env = getenv("SHMBUS_ACK_SEED");

    assert_non_null(tab);
    if (env != NULL && *env != '\0')
        seed = strtoull(env, NULL, 10);
    run.rng = seed;
    print_message("stress_ack: %u s, seed %llu (SHMBUS_ACK_SEED), bus %s\n", SA_SECONDS,
                  (unsigned long long)seed, run.d->bus);
    run.sh = mmap(NULL, sizeof(*run.sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(run.sh != MAP_FAILED);
    run.l = ak_ledger_map(SA_SEQS);
    sa_start(&run);
    sa_chaos(&run, SA_SECONDS);
    sa_stop_all(&run, tab, &s1);
    if (s1.pending == 0)
        fail_msg("nothing pending with the members dead after 100 ms of putting aside");
    sa_drain(&run, tab, &s2);
    /* Drained: nothing pending, every poison message dead-lettered. */
    if (s2.pending != 0 || s2.poison_dead != s2.poison)
        fail_msg("drained: %llu pending, %llu of %llu poison dead-lettered",
                 (unsigned long long)s2.pending, (unsigned long long)s2.poison_dead,
                 (unsigned long long)s2.poison);
    if (tab->dead_lettered != s2.dead || tab->dead_letter_failed != 0 ||
        tab->redelivered < s2.seen_redeliveries || s2.poison == 0 || s2.returns == 0)
        fail_msg("group counters: dead_lettered %llu (read %llu), dead_letter_failed %llu, "
                 "redelivered %llu (seen %llu); %llu poison, %llu redelivered after a kill",
                 (unsigned long long)tab->dead_lettered, (unsigned long long)s2.dead,
                 (unsigned long long)tab->dead_letter_failed, (unsigned long long)tab->redelivered,
                 (unsigned long long)s2.seen_redeliveries, (unsigned long long)s2.poison,
                 (unsigned long long)s2.returns);
    print_message(
        "stress_ack: %u kills, %llu acks, %llu nacks, %llu checks at max_inflight, "
        "%llu in hand at a kill\n",
        run.kills, (unsigned long long)atomic_load_explicit(&run.sh->acked, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&run.sh->nacked, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&run.sh->at_limit_checks, memory_order_relaxed),
        (unsigned long long)run.n_in_hand);
    shmbus_topic_destroy(run.t);
    shmbus_topic_destroy(run.dlq);
    shmbus_close(run.bus);
    ak_ledger_unmap(run.l, SA_SEQS);
    munmap(run.sh, sizeof(*run.sh));
    free(tab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ack_kill9_accounting, du_setup, du_teardown),
    };

    tu_init();
    return cmocka_run_group_tests_name("stress_ack", tests, NULL, NULL);
}
