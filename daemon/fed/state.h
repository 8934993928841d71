/*
 * The structs federation's threads share: the manager (fed.c: the topic
 * records, the registry listener's queue, the periodic checks), the
 * exporters (export.c), the importer (import.c), cnats's own threads (the
 * connection callbacks of link.c), the JetStream files' threads (js.h)
 * and the control thread (stat.c). Who may touch what is stated per
 * field:
 *   - "mu": under sbd_fed.mu (the topic list's writers);
 *   - "RCU": the topic list, appended to with cds_list_add_tail_rcu()
 *     under mu and read under urcu_memb_read_lock(); records live until
 *     sbd_fed_stop(), which frees them after every thread ended;
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

#include <urcu/rculist.h>

#include "config.h"
#include "fed.h"
#include "registry.h"
#include "registry/relay.h"
#include "shmbus/monitor.h"

/* Topics per exporter thread: one sb_relay_wait() covers them and its bell. */
#define SBF_EXPORT_TOPICS SB_RELAY_TOPICS_MAX
/* Exporter threads: SBF_EXPORTERS_MAX * SBF_EXPORT_TOPICS topics can be
 * exported (beyond them a topic is refused for export, counted and logged). */
#define SBF_EXPORTERS_MAX 64
/* Origins (other buses) whose last seq an imported topic tracks, per
 * epoch; beyond them the least recently heard one is forgotten (its next
 * message starts it again, no gap counted). */
#define SBF_ORIGINS_MAX 32

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

/* The link to NATS (link.c). cnats's callbacks run on its threads. */
struct sbf_link {
    natsOptions *opts;
    natsConnection *nc;          /* set once at start; NULL if it could not be made */
    _Atomic uint32_t state;      /* enum shmbus_nats_state */
    _Atomic int64_t max_payload; /* the server's, read at each (re)connect; 0 unknown */
    _Atomic uint64_t reconnects, errors;
    pthread_mutex_t mu;
    /* mu */
    char server[128]; /* the connected server's URL ("" when not connected) */
    /* The last error logged, and how many times it came again since: the
     * same error on every retry (a refused authorisation) is logged once,
     * then with its count when another one comes or the link heals. */
    char last_err[160];
    uint64_t err_repeats;
};

/* The last message of one origin on an imported topic (importer). */
struct sbf_origin {
    char name[64];  /* Shmbus-Origin */
    uint64_t epoch; /* Shmbus-Epoch: a new one starts over */
    uint64_t next;  /* the seq expected next from it */
    uint64_t heard; /* importer's message count when last heard (the least is replaced) */
};

/* A federated topic: made when a topic matching an export or import
 * pattern is first seen (existing at start, created on the bus, or created
 * by the importer for a first message), in order of id. */
struct sbf_topic {
    struct cds_list_head node; /* in sbd_fed.topics (RCU) */
    struct sbd_fed *f;
    struct sbd_topic *t; /* the registry's: lives until the daemon stops */
    uint64_t id;         /* from 1 */
    uint32_t flags;      /* enum shmbus_nats_topic_flags; fixed */
    uint32_t refused;    /* its name cannot be a subject: nothing crosses (fixed) */
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
    int warned_size;          /* exporter: max_msg_size > max_payload was logged */

    /* Import over core NATS (import.c). */
    shmbus_pub *pub; /* importer: its publisher, made on the first message */
    struct sbf_origin origins[SBF_ORIGINS_MAX]; /* importer */
    unsigned norigins;                          /* importer */

    struct sbf_js *js; /* persisted topics: the JetStream files' state (js.h) */

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

struct sbf_importer; /* import.c */

struct sbd_fed {
    const struct sbd_config *cfg;
    struct sbd_registry *reg;
    struct sbf_link link;

    /* The pattern table: cfg->fed[] in order. */
    struct sbf_pattern *pats;
    unsigned npats;
    uint32_t all_flags; /* the union of their flags */

    pthread_mutex_t mu;
    struct cds_list_head topics; /* struct sbf_topic, in id order (RCU) */
    uint64_t next_id;            /* mu */
    _Atomic uint32_t ntopics;    /* relaxed: a count for stat */

    /* Topics created since the manager last looked (the registry
     * listener, which runs under the registry's topic_lock). */
    pthread_mutex_t new_mu;
    struct sbd_topic **newt; /* new_mu (util/vec.h) */
    size_t nnew, new_cap;

    /* The manager thread (fed.c). */
    pthread_t manager;
    _Atomic uint32_t bell; /* futex word: new topics, or stop */
    _Atomic int stop;
    int started; /* the manager runs (sbd_fed_stop() joins it) */

    struct sbf_exporter *exps[SBF_EXPORTERS_MAX]; /* mu: started on demand */
    unsigned nexps;                               /* mu */
    struct sbf_importer *imp;                     /* NULL without import patterns */
    struct sbf_js *js;                            /* the JetStream files' (js.h); NULL if none */

    _Atomic uint64_t refused; /* topics and subjects refused (shmbus_nats_info.refused) */
    /* Messages of no record: for a topic the importer could not create or
     * find (--max-topics, a mismatch). Added to the totals. */
    struct sbf_counters orphan;
};

/* Add @p n to a counter (relaxed: an independent monitoring value). */
static inline void sbf_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

#endif
