/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chaos test's parts (tests/stress/chaos.c): what the parent and its
 * children share (the mapping they report through, the limits and the
 * helpers both sides use) and the children's entry points: publishers,
 * subscribers and group members (chaos_kids.c), remote subscribers
 * through the bridge (chaos_remote.c), acknowledging members of a work
 * queue (chaos_ack.c, which also holds the parent's side of that queue:
 * its dead letters and its accounting).
 */
#ifndef SHMBUS_TESTS_CHAOS_H
#define SHMBUS_TESTS_CHAOS_H

#include "daemonutil.h"
#include "jsonline.h"
#include "stress/ack_ledger.h"

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
#define CH_CHURN_ACKERS  2 /* killable acknowledging members of the reliable topic */
#define CH_CHURN_FIRST_ACKER                                                                       \
    (CH_TOPICS * CH_PER_TOPIC + CH_CHURN_MEMBERS + CH_CHURN_REMOTES) /* churn index */
#define CH_CHURN         (CH_CHURN_FIRST_ACKER + CH_CHURN_ACKERS)
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

/* The work queue: an acknowledging group of the reliable topic, and its
 * dead-letter topic (the default name; the parent creates it first, so
 * that it reads every dead letter). */
#define CH_ACK_GROUP      "chaos-ack"
#define CH_DLQ            "chaos-reliable.dlq"
#define CH_ACK_DELIVERIES 3    /* the group's max_deliveries */
#define CH_POISON_ONE_IN  1024 /* messages nacked every time (ak_is_poison()) */
#define CH_ACK_INFLIGHT   3    /* max_inflight of odd killable ackers (even: 1) */
#define CH_ACK_INFLIGHT_S 4    /* ... of the sentinel */
#define CH_NACK_DELAY_NS  1000000ll
#define CH_DLQ_CAPACITY   1024
#define CH_DLQ_MSG_MAX    (CH_MSG_MAX + 512) /* the envelope's header and names */

enum ch_role { CH_PUB, CH_SUB, CH_MEMBER, CH_REMOTE, CH_ACKER, CH_ROLES };

static const char *const ch_role_names[CH_ROLES] = {"publisher", "subscriber", "group member",
                                                    "remote subscriber", "acknowledging member"};

/* The sentinels, one index each: a publisher and a subscriber per topic,
 * the reliable topic's member, remote subscriber and acknowledging member. */
#define CH_SENTINELS (2 * CH_TOPICS + 3)
#define CH_S_MEMBER  (2 * CH_TOPICS)
#define CH_S_REMOTE  (2 * CH_TOPICS + 1)
#define CH_S_ACKER   (2 * CH_TOPICS + 2)

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
    _Atomic uint64_t acker_msgs;            /* taken by killable acknowledging members */
    _Atomic uint64_t nacks;                 /* poison messages nacked */
    struct ch_sentinel sent[CH_SENTINELS];
    /* Acknowledging members: the ack each has in hand (CH_CHURN_ACKERS
     * killable ones, then the sentinel). */
    struct ak_hand hands[CH_CHURN_ACKERS + 1];
    _Atomic uint8_t *seqs; /* the per-seq map (a mapping of its own) */
    struct ak_seq *acks;   /* the work queue's ledger, CH_SEQS seqs (a mapping of its own) */
    struct ch_pubrec pubs[CH_IDS];
};

/* What a child is told (copied into it by the fork). */
struct ch_kid {
    struct ch_shared *sh;
    const char *bus;
    int topic;
    enum ch_role role;
    int sentinel;
    uint32_t id;       /* publishers */
    int hand;          /* acknowledging members: index of their ak_hand */
    uint32_t inflight; /* acknowledging members: max_inflight */
    uint64_t seed;
};

/* ------------------------------------------------------------ both sides */

static inline uint64_t ch_rand(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint32_t ch_between(uint64_t *s, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(ch_rand(s) % (hi - lo + 1u));
}

static inline void ch_sleep_us(uint32_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The index of the sentinel of @p role on @p topic. */
static inline int ch_sidx(enum ch_role role, int topic)
{
    switch (role) {
    case CH_PUB:
        return topic;
    case CH_SUB:
        return CH_TOPICS + topic;
    case CH_MEMBER:
        return CH_S_MEMBER;
    case CH_ACKER:
        return CH_S_ACKER;
    default:
        return CH_S_REMOTE;
    }
}

static inline const char *ch_who(const struct ch_kid *k)
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
__attribute__((format(printf, 2, 3))) static inline int ch_fail(struct ch_shared *sh,
                                                                const char *fmt, ...)
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
static inline uint8_t ch_seq_or(const struct ch_shared *sh, uint64_t seq, uint8_t bits)
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
static inline int64_t ch_since(const struct ch_shared *sh, int topic, int64_t last_ms)
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
static inline int ch_draining(const struct ch_shared *sh)
{
    /* acquire: pairs with the release store in ch_finish(); nids and tail
     * were stored before it. */
    return atomic_load_explicit(&sh->drain, memory_order_acquire) != 0;
}

/* The children: each runs until killed or told to finish, and returns an
 * exit status (0, or CH_FAILED with ch_shared.why filled in). */
int ch_pub_run(void *arg);
int ch_sub_run(void *arg);
int ch_member_run(void *arg);
int ch_remote_run(void *arg);
int ch_acker_run(void *arg);

/* Shared by the readers (chaos_kids.c), local and remote. The payload of a
 * message a reader got: intact, from a publisher of the reader's topic, no
 * further in that publisher's stream than it went. @return 0 with *p
 * filled, or CH_FAILED. */
int ch_check_payload(const struct ch_kid *k, const void *data, uint32_t len, uint64_t seq,
                     struct tu_payload *p);

/* A sentinel reader reports what it got at the end. */
void ch_report(const struct ch_kid *k, uint64_t received, uint64_t lost, uint64_t position);

/* The local children's connection (chaos_kids.c): connect, open the topic
 * and create the publisher or subscriber (an acknowledging member joins
 * the work queue), retried while a bounce explains a failure; and, every
 * CH_CHECK_MS, re-register with a new daemon. */
struct ch_conn {
    shmbus_bus *bus;
    shmbus_topic *t;
    shmbus_pub *pub;
    shmbus_sub *sub;
    int64_t check_ms; /* last shmbus_bus_check() */
};

int ch_conn_open(const struct ch_kid *k, struct ch_conn *c);
void ch_conn_close(struct ch_conn *c);
int ch_keep_connected(const struct ch_kid *k, struct ch_conn *c);
int ch_check_pid(const struct ch_kid *k, const shmbus_msg *m, const struct tu_payload *p);

/* ------------------------------------------- the parent's work queue side */

/* What the parent keeps of the work queue (chaos_ack.c). */
struct ch_acks {
    shmbus_topic *dlq;
    shmbus_sub *dl_sub; /* the parent's reader of the dead-letter topic */
    uint64_t *in_hand;  /* seqs killed ackers were acknowledging (malloc) */
    size_t n_in_hand, cap_in_hand;
    uint64_t could_return; /* what the killed ackers may have held */
    uint64_t dl_read;      /* dead letters read */
    struct ak_sums sums;   /* the final accounting */
    struct ak_table tab;   /* the final table */
};

/* Create the dead-letter topic and subscribe to it, before any member. */
void ch_acks_open(struct ch_acks *a, shmbus_bus *bus);
/* Churn acker @p j was killed and reaped: note the ack it had in hand. */
void ch_acks_killed(struct ch_acks *a, struct ch_shared *sh, int j);
/* Read the dead letters there are; fails the test on a bad one. */
void ch_acks_read_dlq(struct ch_acks *a, struct ch_shared *sh);
/* At the end (every child reaped, the sentinel acker drained the queue):
 * read the last dead letters; the table is empty; exact accounting.
 * @p published: the reliable topic's tail; @p kill9: daemon SIGKILLs. */
void ch_acks_account(struct ch_acks *a, struct ch_shared *sh, const char *bus, uint64_t published,
                     unsigned kill9);
void ch_acks_summary(const struct ch_acks *a, const struct ch_shared *sh, unsigned kills);
void ch_acks_close(struct ch_acks *a);

/* ----------------------------------------------------------- the parent */

/* A child the parent forked (chaos.c), and the parent's state for the
 * run, which the end-of-run report (chaos_report.c) reads. */
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
    struct ch_acks acks;
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

/* Print what the topics look like now (evidence for a failure). */
void ch_dump(const struct ch_run *run);

/* The per-seq map, read once every writer is reaped. */
struct ch_seqsum {
    uint64_t mapped;      /* seqs the map covers */
    uint64_t got;         /* messages (committed seqs) */
    uint64_t done;        /* of them, delivered to a member (its callback returned) */
    uint64_t in_hand;     /* of them, taken by a member that was killed in the callback */
    uint64_t undelivered; /* of them, delivered to none */
    uint64_t bridge_lost; /* seqs a remote subscriber was told were lost */
};

/* The end-of-run checks (chaos_report.c), once every child is reaped; each
 * fails the test, after ch_dump(), on what it finds wrong. */
void ch_check_reliable(const struct ch_run *run);
void ch_check_lossy(const struct ch_run *run);
void ch_check_seqs(const struct ch_run *run, struct ch_seqsum *sum);
void ch_check_group(const struct ch_run *run, const struct ch_seqsum *sum);
void ch_check_remote(const struct ch_run *run);
void ch_summary(const struct ch_run *run, unsigned seconds, const struct ch_seqsum *sum);

#endif
