/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's registry: topics by name and sessions by id, each in a
 * liburcu lock-free hash table (cds_lfht, urcu-memb flavour). Lookups
 * never take a lock: they run under urcu_memb_read_lock() from any
 * registered thread. Updates (adding topics, adding and removing
 * sessions) come only from the control thread; removed entries are freed
 * after a grace period (call_rcu). A topic's struct lives until the daemon
 * stops: a removed one (sbd_topic_remove()) leaves the name table and is
 * kept, retired, so that a pointer any thread holds stays valid.
 */
#ifndef SHMBUSD_REGISTRY_H
#define SHMBUSD_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <urcu/urcu-memb.h>

#include <urcu/rculfhash.h>

#include "config.h"
#include "registry/wire.h"
#include "shmbus/shmbus.h"
#include "tsan.h"

struct sbd_dl;
struct sbd_stall;
struct sbf_topic;

struct sbd_topic {
    struct cds_lfht_node node; /* in sbd_registry.topics, by name */
    shmbus_topic *t;           /* the daemon's own mapping */
    shmbus_topic_info info;    /* fixed parameters, read at creation */
    uint32_t id;
    /* Counts for monitoring; written by the control thread (and
     * subscribers by federation's exporters and the recorders, for their
     * slots), read by any
     * (relaxed: independent counters). */
    _Atomic uint32_t clients;
    _Atomic uint32_t publishers;
    _Atomic uint32_t subscribers;
    /* Set by the SIGBUS guard (guard.h) when a client truncated the
     * segment: 1 just broken, 2 handled (segment removed, by the control
     * thread). Read by any thread with sbd_topic_broken(). */
    _Atomic int broken;
    /* The bridge's state of this topic (bridge/state.h): its remote subscribers
     * and its publisher. The bridge's I/O thread only. */
    struct sbb_topic *bridge;
    shmbus_pub *bridge_pub;
    /* Federation's record of it (fed/state.h), NULL if not federated: set
     * once under the federation's mutex (release), read by its threads
     * (acquire), so that a reader sees the record complete. */
    _Atomic(struct sbf_topic *) fed;
    /* The dead-letter pass's (deadletter.c), control thread only: the
     * daemon's publisher of dead letters into this topic, made on first
     * use, and its groups' log limits when dead letters leave it. */
    shmbus_pub *dl_pub;
    struct sbd_dl *dl;
    /* Where its gates and claims stood (stall.c); control thread only. */
    struct sbd_stall *stall;
    int stall_nomem; /* stall.c said it had no memory for them */
    /* The reaper's (reaper_proc.c), control thread only: how many of the
     * processes it watches the topic's slots and records named first (at
     * most SBD_REAPER_PROCS_PER_TOPIC). */
    uint32_t procs;
    int procs_full; /* the reaper said it reached that bound */
    /* The uid whose client created it (the daemon's for adopted topics
     * and the bridge's): who besides the daemon's uid and root may remove
     * it. Control thread only. */
    uid_t creator;
    char name[SHMBUS_TOPIC_NAME_MAX + 1];
    char seg[SHMBUS_NAME_MAX + 1];
};

/* What a session holds: an open topic, a registered publisher or a slot. */
enum sbd_hold_kind { SBD_HOLD_OPEN, SBD_HOLD_PUB, SBD_HOLD_SLOT };
struct sbd_hold {
    struct sbd_topic *topic;
    uint32_t kind; /* enum sbd_hold_kind */
    uint32_t slot; /* SBD_HOLD_SLOT */
};

struct sbd_session {
    struct cds_lfht_node node; /* in sbd_registry.sessions, by id */
    struct rcu_head rcu;
    uint32_t id;
    int fd;
    pid_t pid;      /* SO_PEERCRED, checked against the hello */
    uint64_t start; /* the peer's start time (util/proc.h), read at accept */
    uid_t uid;
    gid_t gid;
    int hello;            /* the hello was accepted */
    int dead;             /* its process died: what it held is counted as reaped */
    uint64_t accepted_ns; /* CLOCK_MONOTONIC at accept: the hello deadline */
    int allowed;          /* the bus's rule lets the peer in (access.h), known at accept */
    uint32_t waiter;      /* before the hello: its index in sbd_control.waiters */
    int refused;          /* 0, or the error every request of this session gets */
    char name[SB_WIRE_CLIENT_NAME];
    /* Control thread only. */
    struct sbd_hold *holds;
    uint32_t nholds;
    size_t cap; /* of holds (util/vec.h) */
};

/* A segment of the bus whose adoption failed for a reason that may pass
 * (sbd_registry_adopt()): retried with back-off, never removed. */
struct sbd_pending {
    char seg[SHMBUS_NAME_MAX + 1];
    int rc;            /* the last attempt's error */
    uint32_t tries;    /* failed attempts */
    uint32_t delay_ms; /* between the last attempt and the next */
    uint64_t next_ns;  /* CLOCK_MONOTONIC of the next attempt */
};

/* Retries of a pending segment back off from the first delay to the last. */
#define SBD_RETRY_MIN_MS 10u
#define SBD_RETRY_MAX_MS 1000u
/* A segment still not ready this long after its last change is abandoned. */
#define SBD_ABANDONED_S 60

/* A subsystem told of each topic added (sbd_registry.on_create). */
struct sbd_listener {
    void (*fn)(void *arg, struct sbd_topic *t); /* NULL: none */
    void *arg;
};
enum sbd_listener_id { SBD_LISTENER_BRIDGE, SBD_LISTENER_FED, SBD_LISTENER_REC, SBD_LISTENERS };

struct sbd_registry {
    struct cds_lfht *topics;
    struct cds_lfht *sessions;
    const struct sbd_config *cfg;
    /* Serialises topic creation (sbd_topic_open()) between the control
     * thread and the bridge; guards ntopics, next_topic and shm_bytes. */
    pthread_mutex_t topic_lock;
    uint32_t ntopics, next_topic;
    uint32_t ntopics_own; /* of ntopics, the daemon's own (events.h): no client's */
    uint64_t shm_bytes;
    /* Removed topics (sbd_topic_remove()), freed by sbd_registry_fini();
     * under topic_lock (util/vec.h). */
    struct sbd_topic **retired;
    uint32_t nretired;
    size_t retired_cap;
    /* Segments waiting to be adopted: changed by the control thread under
     * topic_lock, read by sbd_topic_open() under it. */
    struct sbd_pending *pending;
    uint32_t npending;
    size_t pending_cap; /* util/vec.h */
    /* Control thread only. */
    uint32_t nsessions, next_session;
    /* Told of each topic the registry adds (sbd_topic_open(), adoption),
     * under topic_lock, in the adding thread (sbd_registry_created()): the
     * bridge links pattern subscriptions, federation exports, recording
     * seats its subscriber. One per
     * subsystem, set and cleared under topic_lock. */
    struct sbd_listener on_create[SBD_LISTENERS];
    /* Asked by the reaper (control thread) before it frees a kept slot
     * (registry/relay.h sb_relay_sub_keep()) of topic @p t whose owner
     * died: 1 leaves it gating where its owner left it, for the daemon to
     * adopt (sb_relay_sub_adopt()); 0 reaps it as any slot. It must say 1
     * for every topic whose kept slot the daemon may adopt. NULL: reap. */
    int (*keeps)(void *arg, const struct sbd_topic *t);
    void *keeps_arg;
};

/* Tell every listener that topic @p t was added. Under topic_lock. */
static inline void sbd_registry_created(struct sbd_registry *r, struct sbd_topic *t)
{
    for (unsigned i = 0; i < SBD_LISTENERS; i++)
        if (r->on_create[i].fn != NULL)
            r->on_create[i].fn(r->on_create[i].arg, t);
}

/* The topic of a node of sbd_registry.topics. Topics are added by the
 * control thread and the bridge's: this also tells ThreadSanitizer that
 * the topic was complete when it was added (cds_lfht_add() publishes it
 * with liburcu's barriers, which TSan does not see). */
static inline struct sbd_topic *sbd_topic_of(struct cds_lfht_node *n)
{
    struct sbd_topic *t = caa_container_of(n, struct sbd_topic, node);

    SBD_TSAN_ACQUIRE(t);
    return t;
}

/* The topic's SIGBUS state (0 fine, 1 just broken, 2 handled). relaxed:
 * a flag polled off the fast path; what broke is the mapping itself, which
 * the guard replaced before setting it. */
static inline int sbd_topic_broken(const struct sbd_topic *t)
{
    return atomic_load_explicit(&t->broken, memory_order_relaxed);
}

/* Create the tables. @return 0 or -ENOMEM. */
int sbd_registry_init(struct sbd_registry *r, const struct sbd_config *cfg);

/*
 * Stop (@p retire): remove the topics no live process uses (no connection
 * holds them, no live process owns a subscriber slot or a publisher record
 * in them), or every topic with cfg->stop_clean: each is marked gone
 * (sb_admin_topic_gone()) and its segment unlinked. The others keep
 * their segments, for the next daemon to adopt. Without @p retire (a
 * start that failed after adopting: it never served, so it knows nothing
 * of who uses what) every segment stays. Then drop every session and free
 * the tables. Logs what it keeps and removes.
 * Control thread; no other thread may use the registry any more.
 */
void sbd_registry_fini(struct sbd_registry *r, int retire);

/* Find a topic by name. Call with urcu_memb_read_lock held; the topic
 * stays valid until the daemon stops. @return the topic or NULL. */
struct sbd_topic *sbd_topic_lookup(struct sbd_registry *r, const char *name);

/* Find a topic by name from a registered thread outside any read-side
 * section (the lock-free way in before sbd_topic_open()): its own short
 * one. Topics stay until the daemon stops, so the topic stays valid after
 * it. @return the topic or NULL. */
struct sbd_topic *sbd_topic_find(struct sbd_registry *r, const char *name);

/* Point @p it at the topic named @p name (its node NULL if there is none),
 * to go on with cds_lfht_next() from there (the reaper's walk resumes so
 * in each RCU read section). Call with urcu_memb_read_lock held. */
void sbd_topic_seek(struct sbd_registry *r, const char *name, struct cds_lfht_iter *it);

/*
 * Find the topic @p req names, or create it with its options.
 * @p why receives a reason for the log and the reply on failure.
 * @return 0 with *out set (and *created); -ENOENT (NOCREATE);
 *         SHMBUS_ERR_NOT_READY (its segment waits to be adopted);
 *         SHMBUS_ERR_MISMATCH; SHMBUS_ERR_LIMIT; SHMBUS_ERR_INVALID;
 *         SHMBUS_ERR_NO_SPACE; -EEXIST (a segment of that name exists
 *         that we did not create); -errno. Any registered thread
 *         (topic_lock serialises creation).
 */
int sbd_topic_open(struct sbd_registry *r, const struct sb_wire_open *req, struct sbd_topic **out,
                   int *created, char *why, size_t why_len);

/*
 * Remove topic @p t (a client's REMOVE): refused while it is in use (the
 * test by which sbd_registry_fini() keeps a topic: a live process's
 * connection holds it, or a live process other than the daemon owns a
 * slot or publisher record in it) unless @p force. Else it is marked gone
 * (sb_admin_topic_gone(): every mapper gets SHMBUS_ERR_TOPIC_GONE, and
 * sleepers are woken), its segment unlinked, its name taken out of the
 * table (the next OPEN creates it anew) and the struct retired: it stays
 * valid, mapped, until the daemon stops, and its segment counts in
 * shm_bytes (--max-shm) until then. Control thread.
 * @return 0; SHMBUS_ERR_BUSY with @p why naming the user; -ENOENT if
 *         @p t is no longer in the table.
 */
int sbd_topic_remove(struct sbd_registry *r, struct sbd_topic *t, int force, char *why,
                     size_t why_len);

/* What became of a segment given to sbd_registry_adopt(). */
enum sbd_adopt {
    SBD_ADOPTED,         /* served from now on */
    SBD_ADOPT_LATER,     /* queued: sbd_registry_retry() tries again */
    SBD_ADOPT_LEFT,      /* not a topic this daemon can serve: left in place */
    SBD_ADOPT_REMOVED,   /* shorter than its header says: removed */
    SBD_ADOPT_VANISHED,  /* removed by someone else meanwhile */
    SBD_ADOPT_UNTRUSTED, /* not a regular file of our uid that only we (and
                            the bus's group) can write: never served;
                            removed if we may */
    SBD_ADOPT_NOMEM,     /* to be retried, but no memory to queue it: the daemon
                            must not serve without it (clients would take it for gone) */
};

/*
 * Serve the segment @p seg (shmbus.BUS.TOPIC, or shmbus.BUS..GEN.TOPIC) that a previous daemon of
 * the bus left: attach it and register the topic. Its slots and records
 * stay as they are; the reaper watches their owners. A failure that may
 * pass (its creator still writing it, SHMBUS_ERR_NOT_READY; descriptors
 * or memory short) queues it for sbd_registry_retry(), and opens of its
 * topic get SHMBUS_ERR_NOT_READY meanwhile. A file the daemon did not
 * create (another uid's, writable by others, not a regular file: checked
 * on the open descriptor) is never served, and removed if the daemon may.
 * A segment this daemon cannot serve (another layout version, which
 * processes of another library may use; not a topic; a second one of a
 * topic) is left in place. A segment shorter than its header says, which
 * every mapper would fault on, is removed; so is one that faults while it
 * is read (truncated meanwhile: guard.h sbd_guard_window()). Each outcome
 * but success is logged. Control thread.
 * @return enum sbd_adopt.
 */
int sbd_registry_adopt(struct sbd_registry *r, const char *seg);

/* Try the queued segments whose time has come again (the reaper's tick);
 * the queue is emptied as they are served, left or gone. Control thread. */
void sbd_registry_retry(struct sbd_registry *r);

/* Up to @p cap topics with names after @p after, in name order.
 * @return the number stored. Any registered thread. */
unsigned sbd_topic_list(struct sbd_registry *r, const char *after, shmbus_topic_entry *out,
                        unsigned cap);

/* Add a session for connection @p fd (not yet hello'd). Control thread.
 * @return the session or NULL (-ENOMEM). */
struct sbd_session *sbd_session_add(struct sbd_registry *r, int fd);

/* Give back everything the session holds (its slots only if s->dead: a
 * live process may still use them), close its socket and remove it (freed
 * after a grace period). Control thread. */
void sbd_session_remove(struct sbd_registry *r, struct sbd_session *s);

/* Most holds (open topics, publishers, slots) of one connection. */
#define SBD_HOLDS_MAX 65536u

/* Record a hold. @return 0, SHMBUS_ERR_LIMIT (SBD_HOLDS_MAX) or -ENOMEM.
 * Control thread. */
int sbd_session_hold(struct sbd_session *s, struct sbd_topic *t, uint32_t kind, uint32_t slot);

/* Find a hold; @p slot matters for SBD_HOLD_SLOT only. @return its index or -1. */
int sbd_session_find(const struct sbd_session *s, uint32_t topic_id, uint32_t kind, uint32_t slot);

/* Give back hold @p i (counts; a slot is freed) and drop it. Control thread. */
void sbd_session_release(struct sbd_session *s, uint32_t i);

/* Free slot @p idx of @p t whose owner died: through the session that
 * holds it, if one does (so that it is never freed twice), else directly.
 * Control thread. */
void sbd_slot_reap(struct sbd_registry *r, struct sbd_topic *t, uint32_t idx);

#endif
