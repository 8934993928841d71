/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The structs the TCP bridge's threads share: the I/O thread (io.c,
 * conn.c and the files it calls), the pumps (pump.c) and the control
 * thread (stat.c), and the I/O thread's own context (struct sbb_io).
 * The functions live in the headers of their concerns. Who may touch
 * what is stated per field:
 *   - "I/O": the I/O thread only;
 *   - "mu": under the connection's mutex;
 *   - "RCU": lists the I/O thread changes with the _rcu list operations
 *     and frees from after a grace period (call_rcu), read by the pumps
 *     and the control thread under urcu_memb_read_lock();
 *   - counters: relaxed atomics, independent monitoring values.
 * Names: a bridge function's name is sbb_, then the name of the file that
 * defines it (sbb_conn_new() is conn.c's, sbb_cmd_resp_run() cmd_resp.c's,
 * sbb_rlist_append() rlist.h's), so that a call says where to look; the
 * daemon's interface to the bridge (bridge.h) is sbd_bridge_*. The one
 * exception is this file's clock, sbb_now_ms(), which every file reads.
 */
#ifndef SHMBUSD_BRIDGE_STATE_H
#define SHMBUSD_BRIDGE_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <urcu/urcu-memb.h>

#include <urcu/list.h>

#include "bridge.h"
#include "admit.h"
#include "peer.h"
#include "resp.h"
#include "config.h"
#include "registry.h"
#include "registry/monitor.h"
#include "registry/relay.h"
#include "rlist.h"
#include "util/clock.h"

/* Topics per pump: one sb_relay_wait() covers them and the pump's bell. */
#define SBB_PUMP_TOPICS SB_RELAY_TOPICS_MAX
/* Pumps: SBB_PUMP_MAX * SBB_PUMP_TOPICS topics can have remote subscribers. */
#define SBB_PUMP_MAX 64
/* Messages a pump takes from one topic before it writes them out (the
 * bytes after which it stops sooner: SBB_ROUND_BYTES, pump.h). */
#define SBB_BATCH 64
/* Topics the I/O thread delivers itself after publishing, in one read. */
#define SBB_TOUCHED_MAX 16u

/* A RESP connection's CLIENT REPLY setting. */
enum sbb_reply_mode {
    SBB_REPLY_ON = 0, /* replies are sent */
    SBB_REPLY_OFF,    /* none is */
    SBB_REPLY_SKIP    /* the next one is not; then ON again */
};

struct sbb_conn {
    struct sbb_rnode node; /* in sbd_bridge.conns (RCU) */
    struct rcu_head rcu;
    struct sbd_bridge *b;
    uint64_t id;
    int fd; /* closed by the I/O thread under mu, with dead set */

    /* I/O */
    int authed;
    struct sbb_peer who;       /* without a token: may it use the bridge (peer.h) */
    int refused;               /* without a token, who is not SBB_PEER_OK: nothing it sends runs */
    int started;               /* a command ran: its first input was not HTTP */
    unsigned auth_fails;       /* wrong tokens it sent */
    enum sbb_reply_mode reply; /* RESP CLIENT REPLY */
    uint64_t accepted_ns;
    uint64_t cmd_ns;    /* when its incomplete command's first byte came (0: none) */
    uint64_t paused_ms; /* when a publish found its reliable topic full (sbb_now_ms()) */
    char *in;           /* unparsed input (a partial command) */
    size_t in_len, in_cap;
    struct sbb_scan scan;       /* how far the partial command's end was searched */
    uint32_t nsubs;             /* channels + patterns */
    size_t sub_mem;             /* bytes of its subscriptions and links (mem.h) */
    struct sbd_topic *last_pub; /* the topic of its last publish */
    struct sbb_sub *linking;    /* its PSUBSCRIBE waits for this one's links */
    unsigned link_arg;          /* ... which is this argument of the command */
    struct sbb_rlist subs;      /* struct sbb_sub (RCU: the control thread lists them) */

    pthread_mutex_t mu;
    /* mu */
    int dead;       /* the socket is closed: write nothing more */
    int doomed;     /* the output overflowed; the I/O thread closes it */
    int epout;      /* EPOLLOUT is armed: only the I/O thread writes */
    int paused;     /* EPOLLIN is off: back-pressure of a reliable topic */
    int closing;    /* QUIT or a protocol error: EPOLLIN off, close once written */
    uint32_t proto; /* enum sb_wire_bridge_proto */
    char *out;
    size_t out_off, out_len, out_cap;
    uint64_t mark; /* the pump batch that queued it for writing */
    char name[32];

    /* counters */
    _Atomic uint64_t buffered, msgs_in, msgs_out;
    _Atomic uint32_t nchan, npat;
    /* mem.c: the bytes it holds (input, output, subscriptions),
     * and 0, the bytes it lends while it is being closed for holding the
     * most, or SBB_EVICT_CLOSED. */
    _Atomic size_t mem, evicting;
    char peer[64]; /* set before the connection is listed */
};

/* A channel or pattern subscription of a connection. */
struct sbb_sub {
    struct sbb_rnode cnode;     /* in sbb_conn.subs (RCU) */
    struct cds_list_head links; /* its struct sbb_link (I/O) */
    struct rcu_head rcu;
    struct cds_list_head bnode; /* in sbd_bridge.subs_behind or subs_done (I/O) */
    struct sbb_conn *c;
    int pattern;
    uint32_t missed; /* I/O: new topics it could not be linked to (logged) */
    /* I/O (link.c): the entries of sbd_bridge.all it was matched
     * against; how many there were when it was made (a later one is linked
     * from its oldest message); its reply waits for upto to reach born. */
    uint32_t upto, born;
    int pending;
    char *failed;   /* pending, a link failed: the error of its reply */
    int fail_nomem; /* ... and there was no memory for that text */
    size_t len;
    char name[]; /* terminated */
};

/* One subscription delivering one topic: in the topic's list. */
struct sbb_link {
    struct sbb_rnode tnode;     /* in sbb_topic.links (RCU: the pumps deliver along it) */
    struct cds_list_head snode; /* in sbb_sub.links (I/O) */
    struct rcu_head rcu;
    struct sbb_conn *c;
    struct sbb_sub *s;
    struct sbb_topic *bt;
    uint32_t proto; /* the connection's, fixed before it could subscribe */
    int live;       /* I/O: in the topic's list (published after the reply) */
    int gone;       /* c->mu: unsubscribed; a round that still holds it adds nothing */
};

/* A topic remote clients subscribe to: the bridge's cursor in it. */
struct sbb_topic {
    struct sbd_topic *t;
    struct sbb_rlist links; /* struct sbb_link (RCU) */
    unsigned nlinks;        /* I/O */
    unsigned nlive;         /* I/O: of them, live (PUBLISH's receivers) */
    /* Whoever delivers holds it: the topic's pump, or the I/O thread
     * right after it published into the topic. */
    pthread_mutex_t poll_mu;
    shmbus_sub *sub;    /* poll_mu; NULL once taken back (sbb_pump_take()) */
    int failed;         /* poll_mu: the ring returned an error; delivery stopped */
    uint64_t bad_cells; /* poll_mu: damaged cells skipped (pump.c damaged_cell()) */
    struct sbb_pump *pump;
    /* Created while subscriptions were still behind the topic (it reads
     * from its oldest message): the pump leaves its messages in the ring
     * until every one of them has linked it (link.c fresh_done()),
     * so that none misses what an earlier link would have got. Written by
     * the I/O thread, read by whoever delivers. */
    _Atomic int hold;
    struct cds_list_head hnode;  /* I/O: in sbd_bridge.held while hold */
    struct sbb_topic *gone_next; /* pump's mu: in its list of topics taken back */
    struct rcu_head rcu;
};

/* Output gathered in one delivery round, and the connections to write. */
struct sbb_batch {
    uint64_t mark; /* unique per round: pump index and round number */
    struct sbb_topic *bt;
    /* The messages of one poll: payloads copied out, then encoded once
     * for each kind of receiver the round's links need. */
    unsigned n;
    char *json, *resp, *raw;
    size_t json_len, json_cap, resp_len, resp_cap, raw_len, raw_cap;
    size_t raw_off[SBB_BATCH + 1];
    uint64_t seq[SBB_BATCH], ts[SBB_BATCH], lost[SBB_BATCH];
    /* The links found after the poll: they get this round's messages. */
    struct sbb_link **links;
    size_t nlinks, links_cap;
    /* Connections with new output. */
    struct sbb_conn **dirty;
    size_t ndirty, dirty_cap;
    int failed; /* out of memory: some deliveries were dropped */
};

struct sbb_pump {
    struct sbd_bridge *b;
    pthread_t th;
    unsigned idx;
    _Atomic uint32_t bell; /* futex word: bumped on a change of want[] or stop */
    _Atomic int stop;      /* sbb_pump_stop(), after the I/O thread ended */
    pthread_mutex_t mu;
    struct sbb_topic *want[SBB_PUMP_TOPICS]; /* mu: the topics it should serve */
    unsigned nwant;                          /* mu */
    struct sbb_topic *gone;                  /* mu: taken back, to free */
    unsigned assigned;                       /* I/O: topics reserved, not taken back */
    /* The pump thread's own. */
    struct sbb_topic *have[SBB_PUMP_TOPICS];
    unsigned nhave;
    struct sbb_batch batch;
};

/* The I/O thread's context: the state it alone touches, which its
 * functions take instead of the bridge and a list of parameters. */
struct sbb_io {
    struct sbd_bridge *b;
    /* Topics published into during this read: delivered at its end. */
    struct sbd_topic *touched[SBB_TOUCHED_MAX];
    unsigned ntouched;
    /* Connections paused for back-pressure, and when to retry them. */
    struct sbb_conn **paused;
    size_t npaused, paused_cap;
    uint64_t next_retry_ms;
    /* accept() ran out of descriptors: listening resumes then (0: on); and
     * when that may be logged again. */
    uint64_t accept_resume_ms, log_emfile_ms;
    /* Scratch. */
    char *rep; /* replies of one connection, moved to its output in one go */
    size_t rep_len;
    struct sbb_conn *rep_conn;
    char *rbuf;              /* socket reads */
    char *jscratch;          /* JSON string decoding */
    struct sbb_argv argv;    /* the RESP command being run */
    struct sbb_batch direct; /* deliveries the I/O thread makes after publishing */
};

struct sbd_bridge {
    const struct sbd_config *cfg;
    struct sbd_registry *reg;
    int lfd, epfd, evfd; /* listening socket, epoll, eventfd (new topics, stop) */
    pthread_t io_thread;
    _Atomic int stop;
    char listen[64];

    struct sbb_rlist conns; /* struct sbb_conn (RCU) */
    uint32_t nconns;        /* I/O */
    uint64_t next_id;       /* I/O */

    /* Topics created since the I/O thread last looked (the on_create
     * hook), and all it ever listed: room for --max-topics (link.c). */
    pthread_mutex_t new_mu;
    struct sbd_topic **newt;
    size_t nnew, new_cap, nall_hook;
    /* I/O (link.c): the topics seen, in id order (the last one's id:
     * seen_id); later ones are in newt. Every subscription is matched
     * against them in turn, from link_pos, within link_budget steps a
     * pass; the nbehind in subs_behind have not reached the end of all yet
     * (the others are in subs_done). Of
     * those, nfresh were made before the end of all (they link the topics
     * they have not reached from their oldest message): while there are
     * any, the topics from fresh_id on are held (sbb_topic.hold). */
    struct sbd_topic **all;
    uint32_t nall, seen_id, fresh_id;
    struct cds_list_head subs_behind, subs_done, held;
    size_t nsubs_all, nbehind, nfresh;
    struct sbb_sub *link_pos;
    uint64_t link_budget;

    /* Pumps; created on demand by the I/O thread. */
    struct sbb_pump *pumps[SBB_PUMP_MAX];
    unsigned npumps;

    /* Topics the I/O thread holds a publisher in (to give them back). */
    struct sbd_topic **pubt;
    size_t npub, pub_cap;

    struct sbb_io io; /* the I/O thread's own */

    struct sbb_warn_limit warn[SBB_WARN_KINDS]; /* I/O: access log lines (admit.c) */

    _Atomic size_t mem;      /* bytes all connections hold (mem.h) */
    _Atomic size_t evicting; /* of them, held by connections being closed */
    /* shmbus stat's counters (SHMBUS_BRIDGE_TOTALS), added to relaxed */
    struct sb_monitor_bridge_counters count;
};

/* Milliseconds of the monotonic clock: the I/O thread's deadlines. */
static inline uint64_t sbb_now_ms(void)
{
    return sb_mono_ns() / 1000000u;
}

#endif
