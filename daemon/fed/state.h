/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The structs federation's threads share: the registry listener and the
 * manager (fed.c: the topic records, the check for broken segments), the
 * exporters (export.c), the importer (import.c), cnats's own threads (the
 * connection callbacks of link.c), the JetStream files' threads (js.h)
 * and the control thread (stat.c). Who may touch what is stated per
 * field:
 *   - "mu": under sbd_fed.mu: the topic records' table (appended to,
 *     never shrunk: records live until sbd_fed_stop(), which frees them
 *     after every thread ended, so a pointer to one stays good);
 *   - "manager", "exporter", "importer": that thread only;
 *   - counters: relaxed atomics, independent monitoring values.
 * Names: a federation function's name is sbf_, then the name of the file
 * that defines it (sbf_meta_subject() is meta.c's); the daemon's
 * interface (fed.h) is sbd_fed_*.
 */
#ifndef SHMBUSD_FED_STATE_H
#define SHMBUSD_FED_STATE_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <urcu/urcu-memb.h>

#include "config.h"
#include "fed.h"
#include "meta.h"
#include "registry.h"
#include "registry/relay.h"
#include "shmbus/monitor.h"

/* Topics per exporter thread: one sb_relay_wait() covers them and its bell. */
#define SBF_EXPORT_TOPICS SB_RELAY_TOPICS_MAX
/* Exporter threads: SBF_EXPORTERS_MAX * SBF_EXPORT_TOPICS topics can be
 * exported (beyond them a topic is refused for export, counted and logged). */
#define SBF_EXPORTERS_MAX 64

/* Messages an exporter takes from one topic in one poll. */
#define SBF_EXPORT_BATCH 64
/* cnats's bounds: bytes it buffers for publishes while reconnecting (what
 * does not fit is lost_out), messages and bytes a subscription holds
 * before it drops (lost_in), the wait between reconnect attempts, and the
 * longest a write to a stalled server blocks before the connection counts
 * as broken. */
#define SBF_RECONNECT_BUF     (8 * 1024 * 1024)
#define SBF_PENDING_MSGS      65536
#define SBF_PENDING_BYTES     (64 * 1024 * 1024)
#define SBF_RECONNECT_WAIT_MS 1000
#define SBF_WRITE_DEADLINE_MS 2000
/* Distinct errors the link remembers (struct sbf_link.errs). */
#define SBF_LINK_ERRS 4
/* After cnats closed the connection for good, a new one is made this
 * much later. */
#define SBF_LINK_REMAKE_MS 2000
/* The longest an import waits for room in a full reliable topic before
 * the message counts as lost_in (and the topic's next ones, while it stays
 * full, do not wait): one full topic delays the others' imports by this
 * once per episode, never forever. */
#define SBF_IMPORT_FULL_MS 100
/* Log lines of one kind (enum sbf_warn) per second; the rest are counted
 * and said with the next line logged. */
#define SBF_WARN_PER_S 5

/* Kinds of log lines that may repeat with traffic, each limited on its
 * own (sbf_fed_warn()). */
enum sbf_warn {
    SBF_WARN_REFUSED, /* a subject refused */
    SBF_WARN_HEADERS, /* a message's headers (or origin) refused */
    SBF_WARN_GAP,     /* a gap per origin: lost_in */
    SBF_WARN_CREATE,  /* an imported topic could not be created or written */
    SBF_WARN_SEND,    /* a message could not go out */
    SBF_WARN_KINDS
};

struct sbf_warn_limit {
    uint64_t start_ms;   /* when the second began */
    unsigned lines;      /* logged in it */
    uint64_t suppressed; /* not logged since the last line */
};

/* A topic's counters (SHMBUS_NATS_TOPIC_COUNTERS), added to relaxed. */
#define SBF_COUNTER_ATOMIC(kind, field, key, doc) _Atomic uint64_t field;
struct sbf_counters {
    SHMBUS_NATS_TOPIC_COUNTERS(SBF_COUNTER_ATOMIC)
};

/* One pattern option (--federate, --export, --import, --persist), in
 * command-line order: what it makes of the topics its glob matches. */
struct sbf_pattern {
    const struct sbd_fed_pattern *p; /* cfg->fed[i] */
    size_t len;                      /* of p->glob */
    uint32_t flags;                  /* SHMBUS_NATS_EXPORT | IMPORT | PERSIST it adds */
};

/* The link to NATS (link.c): one connection, made and watched by the link
 * thread, which also runs the core-NATS import (import.c). cnats's
 * callbacks run on its own threads and touch only the fields marked so. */
struct sbf_link {
    natsOptions *opts;
    /* The connection. cnats reconnects it forever, but closes it for good
     * on the same authorization error twice in a row; the link thread then
     * makes a new one (after SBF_LINK_REMAKE_MS), so refused credentials
     * never stop the retries. Read with sbf_link_conn() under
     * urcu_memb_read_lock(); the link thread destroys a replaced one
     * after a grace period. NULL until the first one is made. */
    _Atomic(natsConnection *) nc;
    uint64_t gen; /* link thread (after it, sbf_link_stop()): connections made */
    pthread_t th;
    /* Stored and read under mu (the link thread's naps wait on cond), so
     * relaxed: the mutex orders it; read outside mu only as a hint. */
    _Atomic int stop;
    int started;         /* the link thread runs (sbd_fed_stop() joins it) */
    pthread_mutex_t mu;  /* also the callbacks' */
    pthread_cond_t cond; /* mu: signalled on closed and stop */
    uint64_t closed;     /* mu: closed callbacks so far (one per connection made) */
    /* Callbacks' and any thread's; relaxed, all: independent monitoring
     * values that order nothing else (see link.c). */
    _Atomic uint32_t state;      /* enum shmbus_nats_state */
    _Atomic int ever_connected;  /* state after a close: RECONNECTING, not CONNECTING */
    _Atomic int64_t max_payload; /* the server's, read at each (re)connect; 0 unknown */
    _Atomic uint64_t reconnects, errors;
    /* mu */
    char server[128]; /* the connected server's URL ("" when not connected) */
    /* The errors logged since the link last worked (the oldest replaced),
     * and how many came again meanwhile: the same errors on every retry
     * (a refused authorisation) are logged once each, then their count
     * when the link heals. */
    char errs[SBF_LINK_ERRS][200];
    unsigned nerrs, next_err;
    uint64_t err_repeats;
};

/* A federated topic: made when a topic matching an export or import
 * pattern is first seen (existing at start, created on the bus, or created
 * by the importer for a first message), in order of id. A topic whose
 * name cannot be a subject gets none: it is refused (logged, counted in
 * sbd_fed.refused) when first seen. */
struct sbf_topic {
    struct sbd_fed *f;
    struct sbd_topic *t;               /* the registry's: lives until the daemon stops */
    uint64_t id;                       /* from 1 */
    uint32_t flags;                    /* enum shmbus_nats_topic_flags; fixed */
    char subject[SBF_SUBJECT_MAX + 1]; /* PREFIX.TOPIC (fixed) */
    /* The topic's segment broke (a client truncated it) or the topic
     * cannot be served any more: its threads let it go and it stays
     * listed, with its counters, until the daemon stops. Set by whoever
     * finds out; relaxed: a flag, what it ends is each thread's own. */
    _Atomic int ended;

    /* Export over core NATS (export.c). */
    struct sbf_exporter *exp; /* mu: the thread that serves it */
    pthread_mutex_t poll_mu;  /* the exporter's reads against sbf_export_take() */
    shmbus_sub *sub;          /* poll_mu: its subscriber; NULL once taken back */
    uint64_t epoch;           /* the segment's create_time_ns (fixed) */
    uint64_t taken;           /* poll_mu: messages taken for export (Shmbus-Count) */
    uint64_t next;            /* poll_mu: the seq after the last one the exporter read */
    int warned_size;          /* exporter: max_msg_size > max_payload was logged */

    /* Import over core NATS (import.c). */
    shmbus_pub *pub;            /* importer: its publisher, made on the first message */
    uint64_t full;              /* importer: messages lost since the reliable ring was found full */
    struct sbf_origins origins; /* importer: order per origin (meta.h) */

    struct sbf_jstopic *jst; /* persisted topics: the JetStream files' state (js.h) */

    struct sbf_counters count;
};

/* An exporter thread: serves up to SBF_EXPORT_TOPICS topics. */
struct sbf_exporter {
    struct sbd_fed *f;
    pthread_t th;
    unsigned idx;
    _Atomic uint32_t bell; /* futex word: a change of want[], or stop */
    _Atomic int stop;
    pthread_mutex_t mu;
    struct sbf_topic *want[SBF_EXPORT_TOPICS]; /* mu: the topics it should serve */
    unsigned nwant;                            /* mu */
    unsigned assigned;                         /* sbd_fed.mu: topics given, not taken back */
    /* The thread's own. */
    struct sbf_topic *have[SBF_EXPORT_TOPICS];
    unsigned nhave;
};

/* The core-NATS import (import.c), run by the link thread. */
struct sbf_importer {
    natsSubscription *sub; /* on PREFIX.>, NULL while there is no connection */
    int64_t dropped;       /* what cnats said it dropped from sub so far (lost_in) */
    uint64_t heard;        /* messages taken: the origins' recency (sbf_origin.heard) */
    uint64_t log_ms;       /* when a refusal was last logged (rate limit) */
    uint64_t unlogged;     /* refusals since, not logged */
};

struct sbd_fed {
    const struct sbd_config *cfg;
    struct sbd_registry *reg;
    struct sbf_link link;

    /* The pattern table: cfg->fed[] in order. */
    struct sbf_pattern *pats;
    unsigned npats;
    uint32_t all_flags; /* the union of their flags */

    pthread_mutex_t mu;
    struct sbf_topic **recs; /* mu: the records, in id order (util/vec.h) */
    size_t nrecs, recs_cap;  /* mu */

    /* The manager thread (fed.c). */
    pthread_t manager;
    _Atomic uint32_t bell; /* futex word: stop */
    _Atomic int stop;      /* stored under mu: no record is made after it */
    int started;           /* the manager runs (sbd_fed_stop() joins it) */

    struct sbf_exporter *exps[SBF_EXPORTERS_MAX]; /* mu: started on demand */
    unsigned nexps;                               /* mu */
    struct sbf_importer imp;                      /* the link thread's */
    struct sbf_js *js;                            /* the JetStream files' (js.h); NULL if none */

    pthread_mutex_t warn_mu;
    struct sbf_warn_limit warn[SBF_WARN_KINDS]; /* warn_mu */

    _Atomic uint64_t refused; /* topics and subjects refused (shmbus_nats_info.refused) */
    /* Messages of no record: for a topic the importer could not create or
     * find (--max-topics, a mismatch). Added to the totals. */
    struct sbf_counters orphan;
};

/* fed.c's, for the other files. */

/* Log a line of kind @p kind at level WARN, unless SBF_WARN_PER_S lines of
 * that kind were logged this second (counted, and said with the next
 * one). Any thread. */
void sbf_fed_warn(struct sbd_fed *f, enum sbf_warn kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The record of topic @p t: the existing one, or a new one if a pattern
 * matches it (@p need: the flags one must add, SHMBUS_NATS_IMPORT for the
 * importer; 0 for any). @return it, or NULL (no pattern matches, a name
 * that cannot be a subject, a broken segment, out of memory: logged).
 * Any registered thread; the registry listener calls it under topic_lock,
 * so it never takes that lock. */
struct sbf_topic *sbf_fed_track(struct sbd_fed *f, struct sbd_topic *t, uint32_t need);

/* The flags the patterns give topic @p name (enum shmbus_nats_topic_flags;
 * PERSIST only with EXPORT or IMPORT), and in *@p imp (unless NULL) the
 * first --federate or --import pattern that matched, whose options create
 * the topic for an import. Any thread. */
uint32_t sbf_fed_match(struct sbd_fed *f, const char *name, const struct sbd_fed_pattern **imp);

/* A new connection was made (link thread): what holds objects made from
 * the old one remakes them on @p nc. The old one is destroyed after. */
void sbf_fed_relinked(struct sbd_fed *f, natsConnection *nc);

/* Add @p n to a counter (relaxed: an independent monitoring value). */
static inline void sbf_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

#endif
