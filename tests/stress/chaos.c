/*
 * Chaos (issues 4 and 10, "kill -9 never stalls the bus"): a private
 * shmbusd with its TCP bridge (--bridge 127.0.0.1:0), one reliable and one
 * lossy topic of 64 cells, and processes that the test kills with SIGKILL
 * at random moments (one every 50-300 ms) and replaces, for
 * $SHMBUS_CHAOS_SECONDS (default 30 s, 15 s under a sanitizer; `make soak`
 * runs it for longer): publishers and subscribers of both topics, members
 * of the consumer group "chaos-group" of the reliable topic, and a remote
 * subscriber of the reliable topic (a JSON-lines client of the bridge).
 * Killable publishers sometimes hold a zero-copy claim open and killable
 * members sometimes linger in their poll callback, so that kills land
 * between claim and commit and while a member holds a message. Every 3-6 s
 * the daemon itself is bounced: stopped by SIGTERM or SIGKILL in turn,
 * kept away for 50-500 ms while the killing goes on, and started again on
 * the same bus; the parent reconnects and hands the new bridge port to the
 * remote subscribers. Never killed: per topic one sentinel subscriber and
 * one sentinel publisher, and on the reliable topic one sentinel member of
 * the group and one sentinel remote subscriber. Every child but the remote
 * ones calls shmbus_bus_check() every CH_CHECK_MS, as a long-lived client
 * would, and so re-registers with each new daemon.
 *
 * Checked all along: the daemon answers (a LIST shows both topics, also
 * right after each bounce: the new daemon adopted them); a daemon stopped
 * by SIGTERM exits 0, and a new one serves within CH_DAEMON_MS; the
 * sentinels keep receiving and publishing: no gap longer than CH_STALL_MS,
 * on the reliable topic counted from when the bounced daemon serves again
 * (a SIGKILLed daemon's bridge slot, and the holds and claims of processes
 * killed while no daemon ran, gate it until the new daemon reaps them);
 * without a daemon for CH_FLOW_MS or more, the lossy topic's sentinels
 * moved meanwhile; killable processes started at any time, during a bounce
 * too, come up and work; every payload is intact and comes from a
 * publisher of its topic (with that publisher's pid, where the reader sees
 * one), no further than that publisher went.
 *
 * Plain subscribers: each message's seq and lost agree with the
 * subscriber's position, and each publisher's messages come in order.
 * Reliable: the sentinel subscriber gets every message of every publisher
 * but at most the last of a killed one (its unfinished claim), and its
 * losses are exactly the topic's skipped claims, all ended by the daemon,
 * at most one per killed publisher. It records each seq as a message or a
 * loss in a per-seq map (the first CH_SEQS seqs, over an hour of this
 * test), against which the group and the remote subscribers are checked.
 * Lossy: delivered + lost = the sequence numbers the sentinel passed.
 *
 * Group (reliable): the sentinel member is in the group from before the
 * first message to the end, so the group holds every message. A member
 * marks a message taken in the map when its callback starts and done
 * (delivered) when the callback returns; killable members sometimes
 * linger in between. Let C be the committed seqs (the sentinel
 * subscriber's messages), D those done, A the topic's abandoned count and
 * K the members killed. No seq is taken twice (checked at once), only a
 * committed seq is taken and only a taken one is done: D is a subset of C,
 * without duplicates. C - D <= A: a message no member finished was in the
 * hand of a member killed before its callback returned, which the daemon
 * counts abandoned. A <= K: the daemon counts at most one message per dead
 * member (one too many for a member that died between storing its hold
 * and losing the take, or after its callback but before clearing the
 * hold). Nothing is evicted (no stall timeout). Each member gets its
 * messages in seq order, each publisher's in that publisher's order; at
 * the end the sentinel member drains the group to the tail.
 *
 * Remote (reliable, JSON lines): within a connection each delivery's seq
 * is the previous one + 1 + its lost, each publisher's messages come
 * without a gap from the first one seen, and every seq the bridge reports
 * lost is one the sentinel subscriber saw skipped: the losses are exactly
 * the skipped claims, as the sentinel's. The sentinel remote subscriber's
 * first connection starts at seq 0 and at each publisher's first message.
 * Its connections end only at bounces (the daemon generation changed);
 * it then subscribes anew on the new daemon's bridge, whose slot starts
 * at the next message: what lies between two connections is counted
 * (missed), not checked. At the end its last connection reaches the tail:
 * it got every message from that connection's start on. It reads
 * continuously, far below --bridge-max-output (32 MiB); the killable one
 * is sometimes slow and reconnects whenever its connection ends (being
 * disconnected for overflow is allowed for it alone). Killing a remote
 * subscriber stalls nothing: the bridge drops it within the stall bounds.
 *
 * At the end every publisher is gone, and each sentinel publisher
 * published after the last kill, so that the last seq is a message the
 * remote sentinel must reach; no slot or publisher is left to a dead
 * process (the slots are exactly the sentinel readers' and the bridge's,
 * in the segment and, the bridge's aside, in the daemon's books), then
 * none at all; the last daemon exits 0 on SIGTERM leaving no segment
 * (du_teardown). Children report through shared mappings and their exit
 * status; $SHMBUS_CHAOS_SEED replays the test's own random choices (not
 * the scheduler's).
 */
#include "daemonutil.h"
#include "jsonline.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>

#define CH_RELIABLE      0 /* topic index */
#define CH_LOSSY         1
#define CH_TOPICS        2
#define CH_CHURN_PUBS    2 /* killable publishers per topic */
#define CH_CHURN_SUBS    2 /* killable subscribers per topic */
#define CH_PER_TOPIC     (CH_CHURN_PUBS + CH_CHURN_SUBS)
#define CH_CHURN_MEMBERS 3 /* killable members of the reliable topic's group */
#define CH_CHURN_REMOTES 1 /* killable remote subscribers of the reliable topic */
#define CH_CHURN         (CH_TOPICS * CH_PER_TOPIC + CH_CHURN_MEMBERS + CH_CHURN_REMOTES)
#define CH_IDS           (1u << 16) /* publisher ids in one run (one per process) */
#define CH_SEQS          (1u << 26) /* reliable seqs the per-seq map covers */
#define CH_CAPACITY      64
#define CH_SLOTS         32 /* subscriber slots and publisher records per topic */
#define CH_MSG_MIN       24
#define CH_MSG_MAX       256
#define CH_WAIT_NS       100000000ll /* one publish or receive attempt */
#define CH_HOLD_US       300         /* longest a killable publisher holds a claim */
#define CH_LINGER_US     1500        /* longest a killable member lingers in its callback */
#define CH_KILL_MIN_MS   50
#define CH_KILL_MAX_MS   300
#define CH_BOUNCE_MIN_MS 3000 /* between two daemon bounces */
#define CH_BOUNCE_MAX_MS 6000
#define CH_DOWN_MIN_MS   50 /* no daemon for this long at a bounce */
#define CH_DOWN_MAX_MS   500
#define CH_CHECK_MS      20    /* children look for a new daemon this often */
#define CH_DAEMON_MS     30000 /* a child finds a daemon within this */
#define CH_LIST_MS       1000  /* the parent asks the daemon for its list this often */
#define CH_READY_MS      30000 /* the sentinels are up within this */
#define CH_EXIT_MS       30000 /* a sentinel told to finish exits within this */
#define CH_DRAIN_MS      10000 /* a sentinel reader reads its topic's rest within this */
#define CH_NO_SLOT_MS    5000  /* a dead process's slot or record is free within this */
#define CH_RBUF          65536 /* a remote subscriber's read buffer */
#define CH_LINE_MAX      4096  /* longest line from the bridge */
#ifdef TU_SANITIZED
#define CH_SECONDS   15
#define CH_STALL_MS  4000 /* longest a sentinel may go without a message */
#define CH_SETTLE_MS 5000 /* the daemon frees the slots of the dead within this */
#define CH_FLOW_MS   400  /* no daemon this long: the lossy sentinels must move meanwhile */
#else
#define CH_SECONDS   30
#define CH_STALL_MS  2000
#define CH_SETTLE_MS 2000
#define CH_FLOW_MS   250
#endif

static const char *const ch_topic_names[CH_TOPICS] = {"chaos-reliable", "chaos-lossy"};
#define CH_GROUP "chaos-group"

enum ch_role { CH_PUB, CH_SUB, CH_MEMBER, CH_REMOTE, CH_ROLES };

static const char *const ch_role_names[CH_ROLES] = {"publisher", "subscriber", "group member",
                                                    "remote subscriber"};

/* The sentinels, one index each: a publisher and a subscriber per topic,
 * the reliable topic's member and remote subscriber. */
#define CH_SENTINELS (2 * CH_TOPICS + 2)
#define CH_S_MEMBER  (2 * CH_TOPICS)
#define CH_S_REMOTE  (2 * CH_TOPICS + 1)

/* What the per-seq map says of a reliable seq (bits). */
#define CH_SEQ_GOT         1u  /* the sentinel subscriber got a message there */
#define CH_SEQ_LOST        2u  /* the sentinel subscriber counted it lost (skipped) */
#define CH_SEQ_TAKEN       4u  /* a group member's callback got it */
#define CH_SEQ_DONE        8u  /* ... and returned: delivered */
#define CH_SEQ_BRIDGE_LOST 16u /* a remote subscriber was told it was lost */

/* Exit status of a child that found something wrong (it says what in
 * ch_shared.why); killed children end with 128 + SIGKILL. */
#define CH_FAILED 3

/* One publisher id: one publisher process. */
struct ch_pubrec {
    _Atomic uint32_t topic; /* 1 + topic index; the parent sets it before the fork */
    _Atomic uint32_t pid;   /* the publisher sets it before its first message */
    _Atomic uint64_t sent;  /* indices it is done with (published, or overrun) */
};

/* A sentinel's vital signs. */
struct ch_sentinel {
    _Atomic uint32_t ready;
    _Atomic uint32_t id;       /* publishers: their id */
    _Atomic int64_t last_ms;   /* last message received or published (a member: the
                                  group's cursor moved) */
    _Atomic uint64_t count;    /* published; readers, at the end: received */
    _Atomic uint64_t lost;     /* readers, at the end: lost */
    _Atomic uint64_t position; /* readers, at the end */
    _Atomic uint64_t conns;    /* remote, at the end: connections made */
    _Atomic uint64_t missed;   /* remote, at the end: seqs between connections */
};

/* Shared by the parent and every child (an anonymous shared mapping). */
struct ch_shared {
    _Atomic uint32_t stop;  /* sentinel publishers: finish */
    _Atomic uint32_t drain; /* sentinel readers: read to the tail, check, report */
    _Atomic uint32_t nids;  /* publisher ids handed out (set before drain) */
    _Atomic uint64_t tail;  /* the reliable topic's last seq + 1 (set before drain) */
    _Atomic uint32_t failures;
    _Atomic uint32_t why_claimed, why_done;
    char why[512]; /* the first failure */
    /* Bounces: the parent bumps daemon_gen before it signals a daemon,
     * and sets bridge_gen to it once the new one serves on bridge_port. */
    _Atomic uint32_t daemon_gen, bridge_gen, bridge_port;
    _Atomic uint32_t down;                  /* no daemon serves (a bounce is under way) */
    _Atomic int64_t back_ms;                /* when the last bounced daemon served again */
    _Atomic uint64_t overruns[CH_TOPICS];   /* SHMBUS_ERR_OVERRUN seen by publishers */
    _Atomic uint64_t churn_msgs[CH_TOPICS]; /* received by killable subscribers */
    _Atomic uint64_t member_msgs;           /* received by killable members */
    _Atomic uint64_t remote_msgs;           /* received by killable remote subscribers */
    struct ch_sentinel sent[CH_SENTINELS];
    _Atomic uint8_t *seqs; /* the per-seq map (a mapping of its own) */
    struct ch_pubrec pubs[CH_IDS];
};

/* What a child is told (copied into it by the fork). */
struct ch_kid {
    struct ch_shared *sh;
    const char *bus;
    int topic;
    enum ch_role role;
    int sentinel;
    uint32_t id; /* publishers */
    uint64_t seed;
};

/* ------------------------------------------------------------ both sides */

static uint64_t ch_rand(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t ch_between(uint64_t *s, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(ch_rand(s) % (hi - lo + 1u));
}

static void ch_sleep_us(uint32_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The index of the sentinel of @p role on @p topic. */
static int ch_sidx(enum ch_role role, int topic)
{
    switch (role) {
    case CH_PUB:
        return topic;
    case CH_SUB:
        return CH_TOPICS + topic;
    case CH_MEMBER:
        return CH_S_MEMBER;
    default:
        return CH_S_REMOTE;
    }
}

static const char *ch_who(const struct ch_kid *k)
{
    static char who[112];

    if (k->role == CH_PUB)
        snprintf(who, sizeof(who), "%s %s publisher %u (pid %d)", ch_topic_names[k->topic],
                 k->sentinel ? "sentinel" : "killable", k->id, (int)getpid());
    else
        snprintf(who, sizeof(who), "%s %s %s (pid %d)", ch_topic_names[k->topic],
                 k->sentinel ? "sentinel" : "killable", ch_role_names[k->role], (int)getpid());
    return who;
}

/* A child found something wrong: keep the first report. @return CH_FAILED. */
__attribute__((format(printf, 2, 3))) static int ch_fail(struct ch_shared *sh, const char *fmt, ...)
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
    return CH_FAILED;
}

/* Set @p bits in the map entry of reliable seq @p seq (beyond the map:
 * nothing). @return the entry's bits before. */
static uint8_t ch_seq_or(const struct ch_shared *sh, uint64_t seq, uint8_t bits)
{
    if (seq >= CH_SEQS)
        return 0;
    /* relaxed: the RMW alone decides who set a bit first; the parent reads
     * the map after reaping every writer. */
    return atomic_fetch_or_explicit(&sh->seqs[seq], bits, memory_order_relaxed);
}

/* Since when a reader of @p topic that last got something at @p last_ms
 * may have been waiting: a reliable topic stalls at a bounce until the new
 * daemon has reaped what was left (a SIGKILLed daemon's bridge slot; the
 * holds and claims of processes killed while no daemon ran), so its wait
 * counts from when the daemon served again. @return -1 while no daemon
 * serves (not judged). */
static int64_t ch_since(const struct ch_shared *sh, int topic, int64_t last_ms)
{
    int64_t back;

    if (topic != CH_RELIABLE)
        return last_ms;
    /* relaxed, both: monitoring; the parent stores back_ms before it clears down. */
    if (atomic_load_explicit(&sh->down, memory_order_relaxed))
        return -1;
    back = atomic_load_explicit(&sh->back_ms, memory_order_relaxed);
    return back > last_ms ? back : last_ms;
}

/* Has the parent told the sentinel readers to drain? */
static int ch_draining(const struct ch_shared *sh)
{
    /* acquire: pairs with the release store in ch_finish(); nids and tail
     * were stored before it. */
    return atomic_load_explicit(&sh->drain, memory_order_acquire) != 0;
}

/* ---------------------------------------------------------------- children */

struct ch_conn {
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_sub *sub;
    int64_t check_ms; /* last shmbus_bus_check() */
};

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
static int ch_conn_open(const struct ch_kid *k, struct ch_conn *c)
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

static void ch_conn_close(struct ch_conn *c)
{
    shmbus_pub_destroy(c->pub);
    shmbus_sub_destroy(c->sub);
    shmbus_topic_destroy(c->t);
    shmbus_close(c->bus);
}

/* Every CH_CHECK_MS: reconnect to a new daemon once one serves (none yet
 * is fine), re-registering the topic, publisher and slot with it. */
static int ch_keep_connected(const struct ch_kid *k, struct ch_conn *c)
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

static int ch_pub_run(void *arg)
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

/* The payload of a message a reader got: intact, from a publisher of the
 * reader's topic, no further in that publisher's stream than it went.
 * @return 0 with *p filled, or CH_FAILED. */
static int ch_check_payload(const struct ch_kid *k, const void *data, uint32_t len, uint64_t seq,
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
static int ch_check_pid(const struct ch_kid *k, const shmbus_msg *m, const struct tu_payload *p)
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

/* A sentinel reader reports what it got at the end. */
static void ch_report(const struct ch_kid *k, uint64_t received, uint64_t lost, uint64_t position)
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

static int ch_sub_run(void *arg)
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

static int ch_member_run(void *arg)
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

/* ------------------------------------------------------ remote subscribers */

/* One line from the bridge: a reply ({"ok":...}) or a delivery. */
struct ch_jline {
    int reply, ok, has_seq, payloads;
    uint64_t seq, lost;
    char topic[SHMBUS_TOPIC_NAME_MAX + 1];
    uint32_t len;
    uint8_t data[CH_MSG_MAX];
};

/* The number @p val (digits only) into *out. @return 0 or -1. */
static int ch_jnum(const uint8_t *val, long n, uint64_t *out)
{
    *out = 0;
    for (long i = 0; i < n; i++) {
        if (val[i] < '0' || val[i] > '9')
            return -1;
        *out = *out * 10 + (uint64_t)(val[i] - '0');
    }
    return n > 0 ? 0 : -1;
}

/* Store field @p i of object @p o in @p j. A delivery has topic, seq, ts,
 * lost (when not 0) and one of payload and payload_base64.
 * @return 0, or -1 for a field no delivery has, or a bad value. */
static int ch_jfield(struct ch_jline *j, const struct jobj *o, int i)
{
    const char *key = o->f[i].key, *val = o->f[i].val;
    size_t n = o->f[i].len;
    int str = o->f[i].str;
    uint8_t raw[CH_LINE_MAX / 4 * 3]; /* base64 of a line's length decoded */
    long len;

    if (strcmp(key, "topic") == 0 && str && n < sizeof(j->topic)) {
        memcpy(j->topic, val, n + 1); /* with its NUL */
    } else if (strcmp(key, "seq") == 0 && !str) {
        j->has_seq = 1;
        return ch_jnum((const uint8_t *)val, (long)n, &j->seq);
    } else if (strcmp(key, "lost") == 0 && !str) {
        return ch_jnum((const uint8_t *)val, (long)n, &j->lost);
    } else if (strcmp(key, "ts") == 0 && !str) {
        return 0;
    } else if (strcmp(key, "payload") == 0 && str && n <= CH_MSG_MAX) {
        memcpy(j->data, val, n);
        j->len = (uint32_t)n;
        j->payloads++;
    } else if (strcmp(key, "payload_base64") == 0 && str && n <= CH_LINE_MAX &&
               (len = b64_decode(raw, val, n)) >= 0 && len <= CH_MSG_MAX) {
        memcpy(j->data, raw, (size_t)len);
        j->len = (uint32_t)len;
        j->payloads++;
    } else {
        return -1;
    }
    return 0;
}

/* Parse one line, a flat JSON object: a reply (its first field "ok";
 * what follows is not looked at) or a delivery. @return 0, or -1 if
 * malformed. */
static int ch_jparse(const char *s, struct ch_jline *j)
{
    struct jobj o;
    int rc = jobj_parse(s, &o);

    memset(j, 0, sizeof(*j));
    if (rc == 0 && o.n > 0 && strcmp(o.f[0].key, "ok") == 0 && !o.f[0].str) {
        j->reply = 1;
        j->ok = strcmp(o.f[0].val, "true") == 0;
    } else {
        for (int i = 0; i < o.n && rc == 0; i++)
            rc = ch_jfield(j, &o, i);
    }
    free(o.mem);
    return rc;
}

/* A remote subscriber's private view: one connection at a time. */
struct ch_remote {
    const struct ch_kid *k;
    uint64_t *next; /* per publisher id, in this connection: the index expected next (0: none) */
    int fd;
    uint32_t gen;  /* the daemon generation it connected to */
    int strict;    /* the sentinel's first connection: from seq 0 and each publisher's first */
    int have_pos;  /* pos is the seq expected next on this connection */
    int have_prev; /* prev_end is where the last connection ended */
    uint64_t pos, prev_end, received, lost, conns, missed, rng;
    int64_t last_ms, drain_end;
    size_t have;
    char buf[CH_RBUF];
};

/* A delivery: checked against the connection's position and each
 * publisher's stream; the seqs it says were lost go into the map. */
static int ch_remote_msg(struct ch_remote *r, const struct ch_jline *j)
{
    const struct ch_kid *k = r->k;
    struct tu_payload p;
    uint64_t want;

    if (ch_check_payload(k, j->data, j->len, j->seq, &p) != 0)
        return CH_FAILED;
    if (j->seq < j->lost || (r->have_pos && j->seq != r->pos + j->lost))
        return ch_fail(k->sh, "%s: seq %llu with %llu lost after position %llu", ch_who(k),
                       (unsigned long long)j->seq, (unsigned long long)j->lost,
                       (unsigned long long)r->pos);
    want = r->next[p.publisher];
    if ((r->strict || want != 0) && p.seq != want)
        return ch_fail(k->sh, "%s: seq %llu: publisher %u index %llu, expected %llu", ch_who(k),
                       (unsigned long long)j->seq, p.publisher, (unsigned long long)p.seq,
                       (unsigned long long)want);
    if (!r->have_pos && r->have_prev && j->seq - j->lost > r->prev_end)
        r->missed += j->seq - j->lost - r->prev_end;
    for (uint64_t s = j->seq - j->lost; s < j->seq; s++)
        ch_seq_or(k->sh, s, CH_SEQ_BRIDGE_LOST);
    r->next[p.publisher] = p.seq + 1;
    r->pos = j->seq + 1;
    r->have_pos = 1;
    r->received++;
    r->lost += j->lost;
    r->last_ms = du_now_ms();
    /* relaxed, both: monitoring. */
    if (k->sentinel)
        atomic_store_explicit(&k->sh->sent[CH_S_REMOTE].last_ms, r->last_ms, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&k->sh->remote_msgs, 1, memory_order_relaxed);
    return 0;
}

static int ch_remote_line(struct ch_remote *r, const char *line)
{
    const struct ch_kid *k = r->k;
    struct ch_jline j;

    if (ch_jparse(line, &j) < 0)
        return ch_fail(k->sh, "%s: malformed line from the bridge: %.200s", ch_who(k), line);
    if (j.reply && !j.ok)
        return ch_fail(k->sh, "%s: the bridge refused: %.200s", ch_who(k), line);
    if (j.reply) {
        /* relaxed: polled by the parent. */
        if (k->sentinel)
            atomic_store_explicit(&k->sh->sent[CH_S_REMOTE].ready, 1, memory_order_relaxed);
        return 0;
    }
    if (strcmp(j.topic, ch_topic_names[CH_RELIABLE]) != 0 || !j.has_seq || j.payloads != 1)
        return ch_fail(k->sh, "%s: malformed delivery: %.200s", ch_who(k), line);
    return ch_remote_msg(r, &j);
}

/* Handle the complete lines in the buffer; keep the rest. */
static int ch_remote_lines(struct ch_remote *r)
{
    char *start = r->buf, *end = r->buf + r->have, *nl;
    int rc = 0;

    while (rc == 0 && (nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
        *nl = '\0';
        if (nl > start && nl[-1] == '\r')
            nl[-1] = '\0';
        if (*start != '\0')
            rc = ch_remote_line(r, start);
        start = nl + 1;
    }
    r->have = (size_t)(end - start);
    memmove(r->buf, start, r->have);
    if (rc == 0 && r->have > CH_LINE_MAX)
        return ch_fail(r->k->sh, "%s: a line of more than %d bytes", ch_who(r->k), CH_LINE_MAX);
    return rc;
}

/* A TCP connection to the bridge on 127.0.0.1:@p port. @return it, or -1. */
static int ch_tcp(uint32_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Connect to the bridge of the daemon that serves now (waiting while a
 * bounce is under way) and subscribe: a new connection, checked on its
 * own. */
static int ch_remote_connect(struct ch_remote *r)
{
    static const char sub[] = "{\"command\":\"SUB\",\"topic\":\"chaos-reliable\"}\n";
    const struct ch_kid *k = r->k;
    int64_t end = du_now_ms() + CH_DAEMON_MS;
    uint32_t gen;

    for (;;) {
        /* acquire, both: pair with the parent's release stores (ch_bounce(),
         * ch_serve()); bridge_port is the serving daemon's. */
        gen = atomic_load_explicit(&k->sh->daemon_gen, memory_order_acquire);
        r->fd = atomic_load_explicit(&k->sh->bridge_gen, memory_order_acquire) == gen
                    ? ch_tcp(atomic_load_explicit(&k->sh->bridge_port, memory_order_relaxed))
                    : -1;
        if (r->fd >= 0 &&
            send(r->fd, sub, sizeof(sub) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(sub) - 1)
            break;
        if (r->fd >= 0)
            close(r->fd); /* that daemon is going: wait for the next one */
        if (du_now_ms() > end)
            return ch_fail(k->sh, "%s: no bridge to connect to for %d ms", ch_who(k), CH_DAEMON_MS);
        du_sleep_ms(10);
    }
    r->gen = gen;
    r->conns++;
    r->strict = k->sentinel && r->conns == 1;
    r->have_pos = r->strict;
    r->pos = 0;
    r->have = 0;
    r->last_ms = du_now_ms();
    memset(r->next, 0, CH_IDS * sizeof(*r->next));
    return 0;
}

/* The connection ended: the sentinel's only at a bounce. Connect again. */
static int ch_remote_closed(struct ch_remote *r)
{
    const struct ch_kid *k = r->k;

    close(r->fd);
    r->fd = -1;
    /* acquire: pairs with the parent's release increment before it
     * signals the daemon, so a connection the bounce ended sees it. */
    if (k->sentinel && atomic_load_explicit(&k->sh->daemon_gen, memory_order_acquire) == r->gen)
        return ch_fail(k->sh, "%s: the bridge closed the connection at seq %llu, with no bounce",
                       ch_who(k), (unsigned long long)r->pos);
    if (r->have_pos) {
        r->prev_end = r->pos;
        r->have_prev = 1;
    }
    return ch_remote_connect(r);
}

/* The sentinel told to drain: done once its connection reached the tail. */
static int ch_remote_drained(struct ch_remote *r, int *done)
{
    const struct ch_kid *k = r->k;
    struct ch_sentinel *me = &k->sh->sent[CH_S_REMOTE];
    /* relaxed: stored before drain, which ch_draining() read with acquire. */
    uint64_t tail = atomic_load_explicit(&k->sh->tail, memory_order_relaxed);

    if (r->drain_end == 0)
        r->drain_end = du_now_ms() + CH_DRAIN_MS;
    if (!r->have_pos || r->pos < tail) {
        if (du_now_ms() < r->drain_end)
            return 0;
        return ch_fail(k->sh, "%s: stuck at seq %llu of %llu after the end", ch_who(k),
                       (unsigned long long)r->pos, (unsigned long long)tail);
    }
    if (r->pos != tail)
        return ch_fail(k->sh, "%s: seq %llu beyond the tail %llu", ch_who(k),
                       (unsigned long long)r->pos - 1, (unsigned long long)tail);
    *done = 1;
    ch_report(k, r->received, r->lost, r->pos);
    /* relaxed, both: the parent reads them after reaping us. */
    atomic_store_explicit(&me->conns, r->conns, memory_order_relaxed);
    atomic_store_explicit(&me->missed, r->missed, memory_order_relaxed);
    return 0;
}

/* A killable remote subscriber is sometimes slow, and must not starve. */
static int ch_remote_idle(struct ch_remote *r)
{
    int64_t since = ch_since(r->k->sh, CH_RELIABLE, r->last_ms), now = du_now_ms();

    if (since >= 0 && now - since > CH_STALL_MS)
        return ch_fail(r->k->sh, "%s: nothing received for %lld ms", ch_who(r->k),
                       (long long)(now - since));
    if (ch_rand(&r->rng) % 256 == 0)
        ch_sleep_us(ch_between(&r->rng, 1000, 20000));
    return 0;
}

/* Read what came (waiting up to 50 ms) and handle it. */
static int ch_remote_step(struct ch_remote *r, int *done)
{
    struct pollfd pf = {.fd = r->fd, .events = POLLIN};
    ssize_t n;
    int rc = 0;

    if (poll(&pf, 1, 50) > 0) {
        n = read(r->fd, r->buf + r->have, sizeof(r->buf) - 1 - r->have);
        if (n > 0) {
            r->have += (size_t)n;
            rc = ch_remote_lines(r);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            rc = ch_remote_closed(r);
        }
    }
    if (rc != 0)
        return rc;
    if (!r->k->sentinel)
        return ch_remote_idle(r);
    return ch_draining(r->k->sh) ? ch_remote_drained(r, done) : 0;
}

static int ch_remote_run(void *arg)
{
    const struct ch_kid *k = arg;
    struct ch_remote *r = calloc(1, sizeof(*r));
    int rc, done = 0;

    if (r == NULL || (r->next = calloc(CH_IDS, sizeof(*r->next))) == NULL)
        return ch_fail(k->sh, "%s: out of memory", ch_who(k));
    r->k = k;
    r->rng = k->seed;
    rc = ch_remote_connect(r);
    while (rc == 0 && !done)
        rc = ch_remote_step(r, &done);
    if (r->fd >= 0)
        close(r->fd);
    free(r->next);
    free(r);
    return rc;
}

/* ------------------------------------------------------------------ parent */

struct ch_child {
    pid_t pid; /* 0: none */
    struct ch_kid k;
};

struct ch_run {
    struct du_daemon *d;
    const char *const *extra; /* the daemon's arguments, at every start */
    struct ch_shared *sh;
    _Atomic uint8_t *seqs;
    shmbus_bus *bus;
    shmbus_topic *t[CH_TOPICS];
    struct ch_child churn[CH_CHURN];
    struct ch_child sent[CH_SENTINELS];
    uint64_t seed, rng;
    uint32_t next_id;
    unsigned kills[CH_TOPICS][CH_ROLES];
    unsigned bounces[2];       /* by SIGTERM, by SIGKILL */
    unsigned kill9_first;      /* the first bounce is by SIGKILL */
    int64_t gap[CH_SENTINELS]; /* longest sentinel gap seen, ms */
    int64_t away_ms;           /* longest time without a daemon */
    int64_t list_ms;           /* last LIST */
    int64_t bounce_ms;         /* next bounce */
};

static unsigned ch_env(const char *name, unsigned dflt)
{
    const char *s = getenv(name);
    char *end;
    unsigned long v;

    if (s == NULL || *s == '\0')
        return dflt;
    v = strtoul(s, &end, 10);
    return *end == '\0' && v > 0 && v < UINT32_MAX ? (unsigned)v : dflt;
}

/* Forget a child reaped outside tu_wait() (daemonutil.h du_wait_ms()). */
static void ch_forget(pid_t pid)
{
    for (int i = 0; i < TU_MAX_KIDS; i++)
        if (tu_kids[i] == pid)
            tu_kids[i] = 0;
}

/* The topic and role of killable child @p i. */
static void ch_churn_role(int i, int *topic, enum ch_role *role)
{
    if (i < CH_TOPICS * CH_PER_TOPIC) {
        *topic = i / CH_PER_TOPIC;
        *role = i % CH_PER_TOPIC < CH_CHURN_PUBS ? CH_PUB : CH_SUB;
        return;
    }
    *topic = CH_RELIABLE;
    *role = i - CH_TOPICS * CH_PER_TOPIC < CH_CHURN_MEMBERS ? CH_MEMBER : CH_REMOTE;
}

/* Fork child @p c: a publisher gets a fresh id (none left: no child). */
static void ch_spawn(struct ch_run *run, struct ch_child *c, int topic, enum ch_role role,
                     int sentinel)
{
    static int (*const fns[CH_ROLES])(void *) = {ch_pub_run, ch_sub_run, ch_member_run,
                                                 ch_remote_run};

    c->k = (struct ch_kid){.sh = run->sh,
                           .bus = run->d->bus,
                           .topic = topic,
                           .role = role,
                           .sentinel = sentinel,
                           .seed = ch_rand(&run->rng)};
    c->pid = 0;
    if (role == CH_PUB) {
        if (run->next_id >= CH_IDS)
            return; /* a very long soak: the killed publishers stay dead */
        c->k.id = run->next_id++;
        /* relaxed: the fork orders it before the child. */
        atomic_store_explicit(&run->sh->pubs[c->k.id].topic, (uint32_t)topic + 1,
                              memory_order_relaxed);
    }
    c->pid = tu_fork(fns[role], &c->k);
}

/* Print what the topics look like now (evidence for a failure). */
static void ch_dump(const struct ch_run *run)
{
    for (int i = 0; i < CH_TOPICS; i++) {
        shmbus_slot_info si[CH_SLOTS];
        shmbus_topic_info ti;
        int n = shmbus_topic_slots_get(run->t[i], si, CH_SLOTS);

        shmbus_topic_info_get(run->t[i], &ti);
        print_error("%s: published %llu skipped %llu unblocked %llu overruns %llu reaped %llu "
                    "abandoned %llu evicted %llu, %d slots:\n",
                    ch_topic_names[i], (unsigned long long)ti.published,
                    (unsigned long long)ti.skipped, (unsigned long long)ti.unblocked,
                    (unsigned long long)ti.overruns, (unsigned long long)ti.reaped,
                    (unsigned long long)ti.abandoned, (unsigned long long)ti.evicted, n);
        for (int s = 0; s < n && s < CH_SLOTS; s++)
            print_error("  slot %u pid %u group %u position %llu received %llu lost %llu\n",
                        si[s].index, si[s].pid, si[s].group, (unsigned long long)si[s].position,
                        (unsigned long long)si[s].received, (unsigned long long)si[s].lost);
    }
    print_error("daemon pid %d (bounces: %u by SIGTERM, %u by SIGKILL); seed %llu "
                "(SHMBUS_CHAOS_SEED)\n",
                (int)run->d->pid, run->bounces[0], run->bounces[1], (unsigned long long)run->seed);
}

/* A child reported a failure: fail with its text. */
static void ch_check_failures(const struct ch_run *run)
{
    int64_t end = du_now_ms() + 1000;

    /* relaxed: see ch_fail(). */
    if (atomic_load_explicit(&run->sh->failures, memory_order_relaxed) == 0)
        return;
    /* acquire: pairs with the release in ch_fail(); the writer may have
     * been killed while writing, so wait only a little. */
    while (atomic_load_explicit(&run->sh->why_done, memory_order_acquire) == 0 && du_now_ms() < end)
        du_sleep_ms(10);
    ch_dump(run);
    fail_msg("%u failure(s) in children; first: %s",
             atomic_load_explicit(&run->sh->failures, memory_order_relaxed), run->sh->why);
}

/* A child that ended other than by our SIGKILL. */
static void ch_child_ended(const struct ch_run *run, const struct ch_child *c, int st)
{
    ch_check_failures(run);
    ch_dump(run);
    fail_msg("%s %s %s (pid %d) ended by itself: status %d", ch_topic_names[c->k.topic],
             c->k.sentinel ? "sentinel" : "killable", ch_role_names[c->k.role], (int)c->pid, st);
}

/* Children that ended by themselves, and the daemon. */
static void ch_check_alive(struct ch_run *run)
{
    struct ch_child *all[CH_CHURN + CH_SENTINELS];
    int n = 0, st;

    for (int i = 0; i < CH_CHURN; i++)
        all[n++] = &run->churn[i];
    for (int i = 0; i < CH_SENTINELS; i++)
        all[n++] = &run->sent[i];
    for (int i = 0; i < n; i++) {
        if (all[i]->pid > 0 && waitpid(all[i]->pid, &st, WNOHANG) == all[i]->pid) {
            ch_forget(all[i]->pid);
            ch_child_ended(run, all[i], WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
    }
    if (waitpid(run->d->pid, &st, WNOHANG) == run->d->pid) {
        run->d->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        run->d->pid = 0;
        ch_dump(run);
        fail_msg("shmbusd died during the chaos: status %d", run->d->status);
    }
}

/* The sentinels move: a message received and published within
 * CH_STALL_MS (on the reliable topic, of the daemon serving again). */
static void ch_check_stalls(struct ch_run *run)
{
    int64_t now = du_now_ms();

    for (int i = 0; i < CH_SENTINELS; i++) {
        const struct ch_kid *k = &run->sent[i].k;
        /* relaxed: monitoring. */
        int64_t last = atomic_load_explicit(&run->sh->sent[i].last_ms, memory_order_relaxed);
        int64_t since = ch_since(run->sh, k->topic, last);

        if (now - last > run->gap[i])
            run->gap[i] = now - last;
        if (since < 0 || now - since <= CH_STALL_MS)
            continue;
        ch_check_failures(run);
        ch_dump(run);
        fail_msg("%s: the sentinel %s has not %s for %lld ms", ch_topic_names[k->topic],
                 ch_role_names[k->role], k->role == CH_PUB ? "published" : "received anything",
                 (long long)(now - since));
    }
}

/* The daemon answers a LIST with both topics, once per CH_LIST_MS. */
static void ch_check_daemon_answers(struct ch_run *run)
{
    shmbus_topic_entry e[CH_TOPICS + 1];
    int n;

    if (du_now_ms() - run->list_ms < CH_LIST_MS)
        return;
    n = shmbus_list(run->bus, NULL, e, CH_TOPICS + 1);
    if (n != CH_TOPICS) {
        ch_dump(run);
        fail_msg("shmbus_list -> %d (%s), want %d topics", n, n < 0 ? shmbus_strerror(n) : "",
                 CH_TOPICS);
    }
    run->list_ms = du_now_ms();
}

static void ch_watch(struct ch_run *run)
{
    ch_check_failures(run);
    ch_check_alive(run);
    ch_check_stalls(run);
    ch_check_daemon_answers(run);
}

/* SIGKILL killable child @p i and reap it; @p respawn a replacement. */
static void ch_kill(struct ch_run *run, int i, int respawn)
{
    struct ch_child *c = &run->churn[i];
    enum ch_role role;
    int topic, st;

    ch_churn_role(i, &topic, &role);
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        st = tu_wait(c->pid);
        if (st != 128 + SIGKILL)
            ch_child_ended(run, c, st);
        run->kills[topic][role]++;
        c->pid = 0;
    }
    if (respawn)
        ch_spawn(run, c, topic, role, 0);
}

/* The daemon serves (it just started): our connection is back and has
 * re-registered our topics (the very segments we map), and the bridge's
 * port goes to the remote subscribers. */
static void ch_serve(struct ch_run *run)
{
    int64_t end = du_now_ms() + CH_DAEMON_MS;
    shmbus_bridge_info bi;
    const char *colon;
    int rc;

    while ((rc = shmbus_bus_check(run->bus)) == SHMBUS_ERR_DAEMON_LOST && du_now_ms() < end)
        du_sleep_ms(5);
    if (rc == 0)
        rc = shmbus_bridge_stat(run->bus, 0, &bi, NULL, 0);
    if (rc < 0) {
        ch_dump(run);
        fail_msg("shmbusd (pid %d) does not serve: %s", (int)run->d->pid, shmbus_strerror(rc));
    }
    colon = strrchr(bi.listen, ':');
    if (colon == NULL || atoi(colon + 1) <= 0)
        fail_msg("the bridge listens on '%s'", bi.listen);
    /* relaxed: published by the release store of bridge_gen. */
    atomic_store_explicit(&run->sh->bridge_port, (uint32_t)atoi(colon + 1), memory_order_relaxed);
    /* release: pairs with the acquire loads in ch_remote_connect(); the
     * parent is the only writer of daemon_gen (relaxed load). */
    atomic_store_explicit(&run->sh->bridge_gen,
                          atomic_load_explicit(&run->sh->daemon_gen, memory_order_relaxed),
                          memory_order_release);
    /* relaxed, both: monitoring (ch_since()); back_ms first. */
    atomic_store_explicit(&run->sh->back_ms, du_now_ms(), memory_order_relaxed);
    atomic_store_explicit(&run->sh->down, 0, memory_order_relaxed);
}

/* No daemon for @p ms: kill (and replace) 0-2 children meanwhile, whose
 * slots, claims and holds wait for the next daemon; the lossy topic's
 * sentinels are watched all along (ch_since()). */
static void ch_without_daemon(struct ch_run *run, unsigned ms)
{
    unsigned kills = ch_between(&run->rng, 0, 2);
    int64_t start = du_now_ms();

    for (unsigned i = 0; i <= kills; i++) {
        while (du_now_ms() - start < (int64_t)(ms * (i + 1) / (kills + 1))) {
            du_sleep_ms(10);
            ch_check_failures(run);
            ch_check_stalls(run);
        }
        if (i < kills)
            ch_kill(run, (int)(ch_rand(&run->rng) % CH_CHURN), 1);
    }
}

/* With no daemon since @p gone_ms for CH_FLOW_MS or more, the lossy
 * topic's sentinels published and received meanwhile: the data path does
 * not need the daemon. */
static void ch_check_flow(const struct ch_run *run, int64_t gone_ms)
{
    if (du_now_ms() - gone_ms < CH_FLOW_MS)
        return;
    for (int role = CH_PUB; role <= CH_SUB; role++) {
        /* relaxed: monitoring. */
        int64_t last = atomic_load_explicit(&run->sh->sent[ch_sidx(role, CH_LOSSY)].last_ms,
                                            memory_order_relaxed);

        if (last > gone_ms)
            continue;
        ch_dump(run);
        fail_msg("%s: the sentinel %s did nothing in the %lld ms without a daemon",
                 ch_topic_names[CH_LOSSY], ch_role_names[role], (long long)(du_now_ms() - gone_ms));
    }
}

/* Stop the daemon (SIGTERM and SIGKILL in turn), go on killing without
 * one for a while, start a new one on the same bus and serve again. */
static void ch_bounce(struct ch_run *run)
{
    unsigned kill9 = (run->bounces[0] + run->bounces[1] + run->kill9_first) % 2;
    int want = kill9 ? 128 + SIGKILL : 0, st;
    int64_t gone_ms;

    /* relaxed: polled (ch_since()); the release below orders it too. */
    atomic_store_explicit(&run->sh->down, 1, memory_order_relaxed);
    /* release: pairs with the acquire loads in ch_remote_closed(). */
    atomic_fetch_add_explicit(&run->sh->daemon_gen, 1, memory_order_release);
    st = du_stop_sig(run->d, kill9 ? SIGKILL : SIGTERM);
    gone_ms = du_now_ms();
    if (st != want) {
        ch_dump(run);
        fail_msg("shmbusd stopped by %s: status %d, want %d", kill9 ? "SIGKILL" : "SIGTERM", st,
                 want);
    }
    ch_without_daemon(run, ch_between(&run->rng, CH_DOWN_MIN_MS, CH_DOWN_MAX_MS));
    ch_check_flow(run, gone_ms);
    if (du_launch(run->d, run->extra) < 0) {
        ch_dump(run);
        fail_msg("no new shmbusd after a bounce");
    }
    ch_serve(run);
    run->bounces[kill9]++;
    if (du_now_ms() - gone_ms > run->away_ms)
        run->away_ms = du_now_ms() - gone_ms;
    run->list_ms = 0; /* the new daemon lists both topics: it adopted them */
    ch_check_daemon_answers(run);
}

/* Wait until a sentinel says it is ready. */
static void ch_await_ready(struct ch_run *run, _Atomic uint32_t *flag, const char *what)
{
    int64_t end = du_now_ms() + CH_READY_MS;

    /* relaxed: a flag; what it stands for is checked through the daemon. */
    while (atomic_load_explicit(flag, memory_order_relaxed) == 0) {
        ch_check_failures(run);
        if (du_now_ms() > end)
            fail_msg("the %s did not start within %d ms", what, CH_READY_MS);
        du_sleep_ms(5);
    }
}

/* Start sentinel @p role of @p topic and wait until it is ready. */
static void ch_start_sentinel(struct ch_run *run, enum ch_role role, int topic)
{
    int i = ch_sidx(role, topic);

    ch_spawn(run, &run->sent[i], topic, role, 1);
    if (role == CH_PUB) {
        /* relaxed: the sentinel subscriber reads it after the end. */
        atomic_store_explicit(&run->sh->sent[i].id, run->sent[i].k.id, memory_order_relaxed);
    }
    ch_await_ready(run, &run->sh->sent[i].ready, ch_role_names[role]);
}

/* Our connection, both topics, the bridge's port, the sentinel readers
 * (before anyone publishes: they see every message, and the group and the
 * bridge's slot start at seq 0), the sentinel publishers, then the
 * killable children. */
static void ch_start(struct ch_run *run)
{
    for (int i = 0; i < CH_TOPICS; i++) {
        shmbus_topic_opts o = {.mode = i == CH_RELIABLE ? SHMBUS_RELIABLE : SHMBUS_LOSSY,
                               .capacity = CH_CAPACITY,
                               .max_msg_size = CH_MSG_MAX,
                               .max_subscribers = CH_SLOTS,
                               .max_publishers = CH_SLOTS};

        assert_shmbus_ok(shmbus_open(run->bus, ch_topic_names[i], &o, 0, &run->t[i]));
    }
    ch_serve(run);
    for (int i = 0; i < CH_TOPICS; i++)
        ch_start_sentinel(run, CH_SUB, i);
    ch_start_sentinel(run, CH_MEMBER, CH_RELIABLE);
    ch_start_sentinel(run, CH_REMOTE, CH_RELIABLE);
    for (int i = 0; i < CH_TOPICS; i++)
        ch_start_sentinel(run, CH_PUB, i);
    for (int i = 0; i < CH_CHURN; i++)
        ch_kill(run, i, 1);
}

/* Kill a random killable child every 50-300 ms for @p seconds, and bounce
 * the daemon every 3-6 s (not in the last 1.5 s). */
static void ch_chaos(struct ch_run *run, unsigned seconds)
{
    int64_t end = du_now_ms() + (int64_t)seconds * 1000;

    run->bounce_ms = du_now_ms() + ch_between(&run->rng, CH_BOUNCE_MIN_MS, CH_BOUNCE_MAX_MS);
    while (du_now_ms() < end) {
        du_sleep_ms(ch_between(&run->rng, CH_KILL_MIN_MS, CH_KILL_MAX_MS));
        ch_watch(run);
        if (du_now_ms() >= run->bounce_ms && end - du_now_ms() > CH_BOUNCE_MIN_MS / 2) {
            ch_bounce(run);
            run->bounce_ms =
                du_now_ms() + ch_between(&run->rng, CH_BOUNCE_MIN_MS, CH_BOUNCE_MAX_MS);
            continue;
        }
        ch_kill(run, (int)(ch_rand(&run->rng) % CH_CHURN), 1);
    }
    ch_watch(run);
}

/* Wait for a sentinel told to finish; it must exit 0. */
static void ch_reap_sentinel(struct ch_run *run, struct ch_child *c)
{
    int st = du_wait_ms(c->pid, CH_EXIT_MS + CH_DRAIN_MS);

    if (st != 0) {
        ch_check_failures(run);
        ch_dump(run);
        fail_msg("%s sentinel %s: status %d (-1: did not finish)", ch_topic_names[c->k.topic],
                 ch_role_names[c->k.role], st);
    }
    c->pid = 0;
}

/* After the last kill each sentinel publisher claims again: the last seq
 * of each topic is then its message (index count + 1 is claimed after the
 * kills, since index count was not done before them). */
static void ch_await_last_publish(struct ch_run *run)
{
    for (int i = 0; i < CH_TOPICS; i++) {
        _Atomic uint64_t *count = &run->sh->sent[ch_sidx(CH_PUB, i)].count;
        /* relaxed, both: monitoring; the publisher is reaped before its
         * messages are counted. */
        uint64_t c0 = atomic_load_explicit(count, memory_order_relaxed);
        int64_t end = du_now_ms() + CH_EXIT_MS;

        while (atomic_load_explicit(count, memory_order_relaxed) < c0 + 2) {
            ch_watch(run);
            if (du_now_ms() > end)
                fail_msg("%s: the sentinel publisher is stuck at %llu", ch_topic_names[i],
                         (unsigned long long)c0);
            du_sleep_ms(5);
        }
    }
}

static shmbus_topic_entry ch_entry(const struct ch_run *run, int topic)
{
    shmbus_topic_entry e[CH_TOPICS + 1];
    int n = shmbus_list(run->bus, NULL, e, CH_TOPICS + 1);

    assert_shmbus_ok(n);
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].name, ch_topic_names[topic]) == 0)
            return e[i];
    fail_msg("topic %s not listed", ch_topic_names[topic]);
    return e[0];
}

/* Does @p topic show exactly the slots of the sentinel readers (with
 * @p readers; else none) and no publisher, in the segment and in the
 * daemon's books? The readers: the sentinel subscriber, and on the
 * reliable topic the sentinel member and the bridge's slot (the daemon's,
 * not in its books) for the sentinel remote subscriber. */
static int ch_slots_are(const struct ch_run *run, int topic, int readers)
{
    shmbus_slot_info si[CH_SLOTS];
    shmbus_topic_entry e = ch_entry(run, topic);
    int n = shmbus_topic_slots_get(run->t[topic], si, CH_SLOTS), nw = 0, books = 0, found;
    uint32_t want[3];

    if (readers) {
        want[nw++] = (uint32_t)run->sent[ch_sidx(CH_SUB, topic)].pid;
        if (topic == CH_RELIABLE) {
            want[nw++] = (uint32_t)run->sent[CH_S_MEMBER].pid;
            want[nw++] = (uint32_t)run->d->pid;
        }
        books = topic == CH_RELIABLE ? 2 : 1;
    }
    if (n != nw || e.subscribers != (uint32_t)books || e.publishers != 0)
        return 0;
    for (int i = 0; i < nw; i++) {
        found = 0;
        for (int s = 0; s < n; s++)
            found += si[s].pid == want[i];
        if (found != 1)
            return 0;
    }
    return 1;
}

/* Within CH_SETTLE_MS every slot of the dead is free again. */
static void ch_expect_slots(const struct ch_run *run, int readers)
{
    int64_t end = du_now_ms() + CH_SETTLE_MS;

    for (int i = 0; i < CH_TOPICS; i++) {
        while (!ch_slots_are(run, i, readers) && du_now_ms() < end)
            du_sleep_ms(10);
        if (!ch_slots_are(run, i, readers)) {
            shmbus_topic_entry e = ch_entry(run, i);

            ch_dump(run);
            fail_msg("%s: %d slots in use, daemon lists %u subscribers and %u publishers; want "
                     "%s and no publisher",
                     ch_topic_names[i], shmbus_topic_slots_get(run->t[i], NULL, 0), e.subscribers,
                     e.publishers, readers ? "the sentinel readers' and the bridge's" : "none");
        }
    }
}

/* Stop everything in order, checking at each step. */
static void ch_finish(struct ch_run *run)
{
    shmbus_topic_info ti;

    for (int i = 0; i < CH_CHURN; i++)
        ch_kill(run, i, 0);
    ch_watch(run);
    ch_await_last_publish(run);
    /* relaxed: polled by the sentinel publishers. */
    atomic_store_explicit(&run->sh->stop, 1, memory_order_relaxed);
    for (int i = 0; i < CH_TOPICS; i++)
        ch_reap_sentinel(run, &run->sent[ch_sidx(CH_PUB, i)]);
    ch_expect_slots(run, 1);
    assert_shmbus_ok(shmbus_topic_info_get(run->t[CH_RELIABLE], &ti));
    /* relaxed, both: published by the release store of drain. */
    atomic_store_explicit(&run->sh->tail, ti.published, memory_order_relaxed);
    atomic_store_explicit(&run->sh->nids, run->next_id, memory_order_relaxed);
    /* release: pairs with the acquire in ch_draining(). */
    atomic_store_explicit(&run->sh->drain, 1, memory_order_release);
    for (int i = CH_TOPICS; i < CH_SENTINELS; i++)
        ch_reap_sentinel(run, &run->sent[i]);
    ch_check_failures(run);
    ch_expect_slots(run, 0);
}

/* Reliable: every loss is a dead publisher's claim the daemon ended. */
static void ch_check_reliable(const struct ch_run *run)
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
static void ch_check_lossy(const struct ch_run *run)
{
    const struct ch_sentinel *s = &run->sh->sent[ch_sidx(CH_SUB, CH_LOSSY)];
    shmbus_topic_info ti;

    assert_shmbus_ok(shmbus_topic_info_get(run->t[CH_LOSSY], &ti));
    /* relaxed: written by a reaped child. */
    assert_int_equal(atomic_load_explicit(&s->position, memory_order_relaxed), ti.published);
}

/* The per-seq map, read once every writer is reaped. */
struct ch_seqsum {
    uint64_t mapped;      /* seqs the map covers */
    uint64_t got;         /* messages (committed seqs) */
    uint64_t done;        /* of them, delivered to a member (its callback returned) */
    uint64_t in_hand;     /* of them, taken by a member that was killed in the callback */
    uint64_t undelivered; /* of them, delivered to none */
    uint64_t bridge_lost; /* seqs a remote subscriber was told were lost */
};

/* Each reliable seq is a message or a loss to the sentinel subscriber; a
 * member took only messages, and finished only what it took; the bridge
 * lost only losses. */
static void ch_check_seqs(const struct ch_run *run, struct ch_seqsum *sum)
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
static void ch_check_group(const struct ch_run *run, const struct ch_seqsum *sum)
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
static void ch_check_remote(const struct ch_run *run)
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

/* The daemon is still there and serves a new client. */
static void ch_check_daemon(const struct ch_run *run)
{
    shmbus_topic_entry e[CH_TOPICS + 1];
    shmbus_bus *bus = NULL;

    assert_int_equal(kill(run->d->pid, 0), 0);
    assert_int_equal(waitpid(run->d->pid, NULL, WNOHANG), 0);
    assert_shmbus_ok(shmbus_connect(run->d->bus, &bus));
    assert_int_equal(shmbus_list(bus, NULL, e, CH_TOPICS + 1), CH_TOPICS);
    shmbus_close(bus);
}

/* relaxed: written by reaped children. */
#define CH_LD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

static void ch_summary(const struct ch_run *run, unsigned seconds, const struct ch_seqsum *sum)
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
    print_message("chaos daemon: %u bounces by SIGTERM, %u by SIGKILL; longest without a daemon "
                  "%lld ms\n",
                  run->bounces[0], run->bounces[1], (long long)run->away_ms);
}

#undef CH_LD

/* Shared mappings for the children: the state and the per-seq map. */
static void ch_map(struct ch_run *run)
{
    run->sh =
        mmap(NULL, sizeof(*run->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(run->sh != MAP_FAILED);
    run->seqs = mmap(NULL, CH_SEQS, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(run->seqs != MAP_FAILED);
    run->sh->seqs = run->seqs;
}

/* The daemon's arguments, at every start: its bridge on a port the kernel
 * picks (ch_serve() asks which), and a connection limit that keeps it from
 * warning about descriptors. */
static const char *const ch_daemon_args[] = {"--bridge", "127.0.0.1:0", "--bridge-max-conns", "64",
                                             NULL};

static void test_chaos_kill9_never_stalls(void **state)
{
    struct ch_run run = {.d = *state, .extra = ch_daemon_args};
    unsigned seconds = ch_env("SHMBUS_CHAOS_SECONDS", CH_SECONDS);
    struct ch_seqsum sum;

    run.seed = ch_env("SHMBUS_CHAOS_SEED", (unsigned)time(NULL) ^ (unsigned)getpid());
    run.rng = run.seed;
    run.kill9_first = (unsigned)(ch_rand(&run.rng) % 2);
    print_message("chaos: %u s, seed %llu, bus %s\n", seconds, (unsigned long long)run.seed,
                  run.d->bus);
    ch_map(&run);
    assert_shmbus_ok(shmbus_connect(run.d->bus, &run.bus));
    ch_start(&run);
    ch_chaos(&run, seconds);
    ch_finish(&run);
    ch_check_reliable(&run);
    ch_check_lossy(&run);
    ch_check_seqs(&run, &sum);
    ch_check_group(&run, &sum);
    ch_check_remote(&run);
    ch_check_daemon(&run);
    ch_summary(&run, seconds, &sum);
    for (int i = 0; i < CH_TOPICS; i++)
        shmbus_topic_destroy(run.t[i]);
    shmbus_close(run.bus);
    munmap(run.seqs, CH_SEQS);
    munmap(run.sh, sizeof(*run.sh));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_chaos_kill9_never_stalls, du_setup,
                                                 du_teardown, (void *)ch_daemon_args),
    };

    tu_init();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("chaos", tests, NULL, NULL);
}
