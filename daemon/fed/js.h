/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Persisted topics (shmbusd --persist): what the rest of federation sees
 * of its JetStream part. stream.c makes or checks a stream per --persist
 * pattern, jsexport.c sends the local messages of persisted exported
 * topics through JetStream with acknowledgements, holding a reliable
 * topic's publishers until JetStream has each message, and jsimport.c
 * fetches other buses' messages from a durable consumer per stream and
 * writes them into the local rings in each origin's order, acknowledging
 * only what a ring has (docs/design.md "Persisted topics (JetStream)").
 * A persisted topic crosses only through JetStream: the core exporter and
 * importer leave it alone.
 */
#ifndef SHMBUSD_FED_JS_H
#define SHMBUSD_FED_JS_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fed/meta.h"
#include "fed/order.h"
#include "fed/state.h"
#include "fed/stream.h"

/* Exporter threads of persisted topics, SB_RELAY_TOPICS_MAX topics each:
 * beyond SBF_JSX_MAX * SB_RELAY_TOPICS_MAX persisted exported topics, a
 * topic is refused for export (counted and logged). */
#define SBF_JSX_MAX 16u
/* How long a JetStream publish waits for its acknowledgement before it
 * counts as failed and the exporter resends from the oldest unacknowledged
 * message. A server that dies mid-stream costs about this much; a resend
 * too early only costs a duplicate the stream drops. */
#define SBF_JS_ACK_WAIT_MS 2000
/* Messages the importer fetches at once, and the consumer's bound on
 * messages delivered and not yet acknowledged: at least this, and at least
 * SBF_JS_PENDING_WINDOWS exporter windows (--persist-window), so that the
 * successors waiting for a resent predecessor (naked, still pending)
 * never keep the server from delivering it. */
#define SBF_JS_FETCH 256
/* Acknowledgements a stop sends once more, and the longest reply subject
 * kept for it ($JS.ACK.<stream>.<consumer>.<9 numbers>). */
#define SBF_JS_REACK           2048
#define SBF_JS_REPLY_MAX       256
#define SBF_JS_ACK_PENDING     1024
#define SBF_JS_PENDING_WINDOWS 8
/* The consumer's redelivery of a message not acknowledged: the importer
 * tells the server it is still working on one it waits to write
 * (natsMsg_InProgress) every half of it. A daemon that dies with messages
 * delivered and not acknowledged gets them again this much later. */
#define SBF_JS_CONSUMER_ACK_WAIT_NS (10ull * 1000000000ull)
/* How long a message waits for its predecessor (order.h), and the delay
 * of each nak meanwhile. Only reliable topics send Shmbus-Prev, and their
 * exporter sends a predecessor again until it is acknowledged: it comes
 * after an ack timeout and a reconnect or two, or after the exporting
 * daemon is restarted; the wait covers many of those. */
#define SBF_JS_ORDER_WAIT_NS (30ull * 1000000000ull)
#define SBF_JS_NAK_DELAY_NS  (250ull * 1000000ull)
/* Between attempts at the streams and consumers while the server is not
 * reachable. */
#define SBF_JS_RETRY_NS (1000ull * 1000000ull)

/* A stream's state (sbf_jsstream.state). */
enum sbf_jss_state {
    SBF_JSS_PENDING = 0, /* not made or checked yet: its topics wait */
    SBF_JSS_OK = 1,      /* usable */
    SBF_JSS_REFUSED = -1 /* cannot be: its topics are refused (logged) */
};

/* One --persist pattern's stream, and this bus's consumer of it. */
struct sbf_jsstream {
    struct sbf_stream s;
    /* enum sbf_jss_state: stored with release by the js thread once s is
     * settled; load-acquired by the exporters before they read s. */
    _Atomic int state;
    natsSubscription *sub; /* the importer's pull subscription; NULL until bound */
    /* made_here: this daemon made the consumer, so nothing was delivered
     * before and an origin's first message with a predecessor waits for it
     * (order.h hold_fresh). Else bound_delivered is the consumer's last
     * delivered stream seq when bound: a message at or below it is stale
     * (order.h); with messages delivered before and not acknowledged (a
     * daemon died), until hold_until a new message (above it) waits too,
     * as it may follow one of them. */
    int made_here;
    uint64_t bound_delivered;
    uint64_t hold_until;
    int unbound;         /* its consumer was refused for good: no imports from it */
    unsigned bind_fails; /* binds that failed in a row (sbf_stream_log_fail()) */
    /* The reply subjects of the last acknowledgements (a ring of
     * SBF_JS_REACK slots of SBF_JS_REPLY_MAX bytes, made on the first),
     * sent once more at a stop (sbf_jsimport_reack()). */
    char *replies;
    unsigned reply_next, nreplies;
};

/* One message in flight (jsexport.c): sent, acknowledged or failed. */
enum sbf_jsent_state { SBF_JSENT_SENT, SBF_JSENT_ACKED, SBF_JSENT_FAILED };
struct sbf_jsent {
    uint64_t seq;
    uint64_t prev;  /* has_prev: the Shmbus-Prev it was sent with */
    uint32_t state; /* enum sbf_jsent_state */
    uint32_t has_prev;
};

/* A persisted topic's JetStream state (sbf_topic.jst). */
struct sbf_jstopic {
    struct sbf_topic *t;
    struct sbf_jsstream *stream; /* the --persist stream that covers it */

    /* Export (jsexport.c). mu orders the acknowledgement callbacks
     * (cnats's thread) against the exporter thread. */
    pthread_mutex_t mu;
    struct sbf_jsent *win; /* ring of cap entries, in seq order from head */
    uint32_t cap, head, n; /* mu */
    uint32_t failed;       /* mu: entries FAILED since the exporter looked */
    natsStatus last_err;   /* mu: the last failure's status and JetStream code */
    int last_code;
    jsCtx *js;    /* its own: acknowledgements come back to it */
    uint64_t gen; /* exporter: the link generation js was made on */
    /* Set by a stop whose wait for acknowledgements ended with some still
     * owed: a callback may yet come, so jt is never freed (sbf_js_free()). */
    int left;
    /* The exporter thread's own. */
    shmbus_sub *sub;
    int held;      /* a reliable topic: the slot is held and kept */
    uint64_t next; /* the seq the exporter reads next */
    uint64_t prev; /* has_prev: the last seq sent in this epoch */
    int has_prev;
    uint64_t released; /* held: publishers may pass released - 1 */
    int room;          /* the window had room after the last pass */
    uint64_t backoff;  /* the pause after the last go-back-N (0: none) */
    uint64_t retry_at; /* no sends before (monotonic ns) */
    struct sbf_jsx *x; /* mu: the thread that serves it; NULL once stopped */

    /* Import (jsimport.c, the importer thread's own). */
    shmbus_pub *pub;
    struct sbf_order order;
};

/* The JetStream part of one federation (sbd_fed.js). */
struct sbf_js {
    struct sbd_fed *f;
    struct sbf_jsstream *streams; /* one per --persist pattern, in order */
    unsigned nstreams;
    int importing;    /* the bus has import patterns: a consumer per stream */
    jsCtx *jsm;       /* the js thread's: streams, consumers, fetches */
    uint64_t jsm_gen; /* js thread: the link generation jsm was made on */
    int asked;        /* js thread: the last pass asked the server (connected) */
    /* Bumped when the link makes a new connection (sbf_js_relinked()):
     * every JetStream context is remade on it. Relaxed: a number each
     * thread compares with its own; the connection itself is read under
     * RCU (sbf_link_conn()). */
    _Atomic uint64_t gen;
    /* Every persisted topic's state (util/vec.h), freed at the end. */
    pthread_mutex_t topics_mu;
    struct sbf_jstopic **topics;
    size_t ntopics, topics_cap;

    pthread_mutex_t mu;               /* the exporters list */
    struct sbf_jsx *jsx[SBF_JSX_MAX]; /* mu: started on demand */
    unsigned njsx;                    /* mu */

    pthread_t th; /* streams, then the importer (jsimport.c) */
    int started;
    _Atomic int stop;
};

/* Set up the JetStream part of @p f (cfg->fed has --persist patterns):
 * the streams' names and filters (a pattern that cannot be a filter is
 * refused here, logged), the registry's keeps hook, and the thread that
 * makes the streams once the link is up and then imports. No --persist:
 * f->js stays NULL, returns 0. @return 0 or -errno. Manager, at start. */
int sbf_js_start(struct sbd_fed *f);

/* Stop the threads, let what is in flight be acknowledged (a while), and
 * leave each held slot kept, gating, for the next daemon (a clean stop is
 * a restart too: what JetStream has not acknowledged is resent by the
 * next one). Before the link closes. The JetStream contexts and the
 * subscriptions stay for sbf_js_free(): cnats 3.4's read loop may still
 * hand a message to a subscription destroyed meanwhile in another thread
 * (writing into freed memory; cnats PR 638), so they are destroyed once
 * the connection is closed and its read loop joined. Accepts f->js NULL. */
void sbf_js_stop(struct sbd_fed *f);

/* The link made a new connection (sbf_fed_relinked(), link thread): the
 * JetStream contexts are remade on it, and what was in flight on the old
 * one is sent again. Accepts f->js NULL. */
void sbf_js_relinked(struct sbd_fed *f);

/* Destroy the JetStream contexts and subscriptions and free the
 * JetStream part. After the link closed (its read loop joined). Accepts
 * f->js NULL. */
void sbf_js_free(struct sbd_fed *f);

/* Topic @p t is a new record: if a --persist glob matched it
 * (SHMBUS_NATS_PERSIST; the core exporter and importer leave it), set
 * t->jst and, for an exported topic, give it to an exporter thread. Under
 * f->mu, before the record is published. @return 1 if JetStream carries
 * it, 0 if it is not persisted, or -errno: refused, no stream's subjects
 * cover it (logged, counted in refused, the record ended). */
int sbf_js_topic(struct sbd_fed *f, struct sbf_topic *t);

/* jsexport.c: start serving @p jt: its slot at once (from the next
 * message; the caller is the registry's listener, before anyone can
 * publish), then its first exporter thread with room. @return 0 or -errno
 * (no room, or no slot: logged, the record ended). */
int sbf_jsexport_add(struct sbf_js *js, struct sbf_jstopic *jt);
/* Wake exporter thread @p x (a new connection to move to). */
void sbf_jsexport_ring(struct sbf_jsx *x);
/* Stop every exporter thread (the held slots stay kept). */
void sbf_jsexport_stop(struct sbf_js *js);

/* jsimport.c: bind this bus's durable consumer of each usable stream not
 * bound yet. @return how many are still to bind (ask again later). */
unsigned sbf_jsimport_bind(struct sbf_js *js);
/* Fetch each bound consumer once (waiting up to @p wait_ms in all) and
 * write what came into the local rings. js thread. @return how many
 * fetches waited as asked (0: none bound, or the connection is down: nap). */
unsigned sbf_jsimport_fetch(struct sbf_js *js, int64_t wait_ms);
/* Drop the subscriptions (the durable consumers stay on the server), to
 * bind again on a new connection. js thread. */
void sbf_jsimport_unbind(struct sbf_js *js);
/* Send the last SBF_JS_REACK acknowledgements of each stream once more
 * (a consumer leader that died may have lost them: they would come again
 * to the next daemon, which cannot tell them from new ones once its ring
 * no longer holds them). js thread, at its end, before the flush. */
void sbf_jsimport_reack(struct sbf_js *js);
/* Drop the importer's publishers. After the js thread ended. */
void sbf_jsimport_fini(struct sbf_js *js);

#endif
