/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control path's requests (control.h): decode each message a session
 * sends, run its handler against the registry and send the reply. A
 * handler fills a struct ctl_reply: an error code and its text, or the OK
 * reply's body and the descriptor that goes with it. The socket, the
 * sessions and the loop that reads them are control.c's.
 */
#include "control_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "adopt.h"
#include "events.h"
#include "log.h"
#include "registry/admin.h"
#include "registry/monitor.h"

#define CTL_WHY SB_WIRE_ERR_TEXT

struct ctl_reply {
    int code; /* < 0: an error reply */
    char why[CTL_WHY];
    const void *body; /* OK reply: len bytes, usually in out */
    uint32_t len;
    int fd;    /* sent with an OK reply, or -1 */
    int close; /* disconnect after replying */
    union {
        struct sb_wire_hello_ok hello;
        struct sb_wire_open_ok open;
        struct sb_wire_sub_ok sub;
        struct sb_wire_bus_ok bus;
        uint8_t list[SB_WIRE_MAX] __attribute__((aligned(8))); /* LIST, BRIDGE, NATS, JOURNAL */
    } out;
};

static void reply_err(struct ctl_reply *r, int code, const char *why)
{
    r->code = code;
    snprintf(r->why, sizeof(r->why), "%s", why);
}

static void on_hello(struct sbd_control *c, struct sbd_session *s, const struct sb_wire_hello *h,
                     struct ctl_reply *r)
{
    if (s->hello) {
        reply_err(r, SHMBUS_ERR_PROTOCOL, "hello sent twice");
        return;
    }
    r->close = 1; /* unless accepted below */
    if ((pid_t)h->pid != s->pid) {
        snprintf(r->why, sizeof(r->why), "hello pid %u is not the socket peer's pid %d", h->pid,
                 (int)s->pid);
        r->code = SHMBUS_ERR_DENIED;
        return;
    }
    if (!s->allowed) {
        snprintf(r->why, sizeof(r->why), "uid %u is not allowed on this bus (--allow-uid)",
                 (unsigned)s->uid);
        r->code = SHMBUS_ERR_DENIED;
        return;
    }
    if (!sbd_control_client_room(c, s->uid)) {
        snprintf(r->why, sizeof(r->why), "client limit reached (%u, --max-clients%s)",
                 c->cfg->max_clients,
                 s->uid == geteuid() ? "" : "; the last quarter is the daemon's uid's");
        r->code = SHMBUS_ERR_LIMIT;
        return;
    }
    memcpy(s->name, h->name, sizeof(s->name));
    s->hello = 1;
    c->clients++;
    c->clients_other += s->uid != geteuid();
    sbd_control_wait_del(c, s);
    /* Its death is noticed even if a fork child keeps the socket open. */
    sbd_reaper_watch(&c->reaper, s->pid, s->start);
    r->close = 0;
    r->out.hello = (struct sb_wire_hello_ok){.session = s->id, .daemon_pid = (uint32_t)getpid()};
    r->body = &r->out.hello;
    r->len = sizeof(r->out.hello);
    sbd_log(SBD_INFO, "client %u connected: pid %d uid %u (%s)", s->id, (int)s->pid,
            (unsigned)s->uid, s->name);
}

static void on_open(struct sbd_control *c, struct sbd_session *s, const struct sb_wire_open *q,
                    struct ctl_reply *r)
{
    int own = sbd_events_reserved(q->name), make = !(q->flags & SHMBUS_OPEN_NOCREATE);
    struct sb_wire_open req = *q;
    struct sbd_topic *t;
    int created, rc;

    /* The daemon's own topics (events.h) are read, never made, by
     * clients: one nobody may publish on, and LIST does not show, would
     * only hide its bytes. Opened as without create, a segment of one
     * that waits to be taken over still answers "not ready". */
    if (own)
        req.flags |= SHMBUS_OPEN_NOCREATE;
    rc = sbd_topic_open(c->reg, &req, &t, &created, r->why, sizeof(r->why));
    if (rc == -ENOENT && own && make) {
        reply_err(r, SHMBUS_ERR_DENIED, "only the daemon makes its _shmbus. topics");
        return;
    }
    if (rc == 0)
        rc = sbd_session_hold(s, t, SBD_HOLD_OPEN, 0);
    if (rc < 0) {
        r->code = rc;
        return;
    }
    if (created)
        t->creator = s->uid; /* who may remove it besides the daemon's uid (on_remove()) */
    r->out.open = (struct sb_wire_open_ok){.topic = t->id, .created = (uint32_t)created};
    r->body = &r->out.open;
    r->len = sizeof(r->out.open);
    r->fd = sb_admin_topic_fd(t->t);
}

/* The topic of an OPEN hold of this session, by id. */
static struct sbd_topic *held_topic(const struct sbd_session *s, uint32_t id, struct ctl_reply *r)
{
    int i = sbd_session_find(s, id, SBD_HOLD_OPEN, 0);

    if (i >= 0)
        return s->holds[i].topic;
    r->code = -ENOENT;
    snprintf(r->why, sizeof(r->why), "topic id %u is not open on this connection", id);
    return NULL;
}

static void on_ref(struct sbd_session *s, uint16_t type, const struct sb_wire_ref *q,
                   struct ctl_reply *r)
{
    struct sbd_topic *t = held_topic(s, q->topic, r);
    uint32_t kind = type == SB_MSG_CLOSE     ? SBD_HOLD_OPEN
                    : type == SB_MSG_SUB_DEL ? SBD_HOLD_SLOT
                                             : SBD_HOLD_PUB;
    int i;

    if (t == NULL)
        return;
    if (type == SB_MSG_PUB_ADD && sbd_events_reserved(t->name)) {
        /* The daemon's own topics (the events topic): nobody else speaks
         * there (events.h). */
        reply_err(r, SHMBUS_ERR_DENIED, "only the daemon publishes on its _shmbus. topics");
        return;
    }
    if (type == SB_MSG_PUB_ADD) {
        r->code = sbd_session_hold(s, t, SBD_HOLD_PUB, 0);
        return;
    }
    i = sbd_session_find(s, q->topic, kind, q->slot);
    if (i < 0) {
        r->code = -ENOENT;
        snprintf(r->why, sizeof(r->why), "%s not held on this connection",
                 kind == SBD_HOLD_SLOT ? "slot" : "publisher");
        return;
    }
    sbd_session_release(s, (uint32_t)i);
}

/* An acknowledging member's request the daemon refuses before anything
 * is taken: a lossy topic (no pending tables), a dead-letter topic that
 * is the topic itself or one of the daemon's own. The rest (the group's
 * kind and values) sb_admin_group_number() judges. @return 0 or the
 * error, r filled. Any client that may subscribe to the topic may name
 * its group's dead-letter topic, which the daemon then creates as any
 * client could (docs/design.md, "Who may do what"). */
static int sub_ack_refused(const struct sbd_topic *t, const struct sb_wire_sub *q,
                           struct ctl_reply *r)
{
    char dflt[SHMBUS_TOPIC_NAME_MAX + 8];
    const char *dl = q->dead_letter;

    if (t->info.mode != SHMBUS_RELIABLE) {
        snprintf(r->why, sizeof(r->why),
                 "topic '%.40s' is lossy: acknowledging members need a reliable one", t->name);
        return r->code = SHMBUS_ERR_INVALID;
    }
    if (dl[0] == '\0') {
        snprintf(dflt, sizeof(dflt), "%s.dlq", t->name);
        dl = dflt;
    }
    if (strcmp(dl, t->name) == 0) {
        reply_err(r, SHMBUS_ERR_INVALID, "a group's dead-letter topic cannot be its own topic");
        return r->code;
    }
    if (sbd_events_reserved(dl)) {
        reply_err(r, SHMBUS_ERR_DENIED,
                  "the dead-letter topic is one of the daemon's own (" SBD_EVENTS_PREFIX "*)");
        return r->code;
    }
    return 0;
}

/* Number group @p q->group of @p t for the request, acknowledging or not.
 * @return the number, or an error with r's text filled. */
static int sub_group(const struct sbd_topic *t, const struct sb_wire_sub *q, struct ctl_reply *r)
{
    struct sb_admin_ack ack = {.max_deliveries = q->max_deliveries,
                               .dead_letter = q->dead_letter[0] ? q->dead_letter : NULL,
                               .topic = t->name};
    int g = sb_admin_group_number(t->t, q->group, (q->flags & SB_WIRE_SUB_ACK) ? &ack : NULL);

    if (g == SHMBUS_ERR_LIMIT)
        snprintf(r->why, sizeof(r->why), "every one of the %u groups of topic '%.60s' is named",
                 t->info.max_groups, t->name);
    else if (g == SHMBUS_ERR_MISMATCH)
        snprintf(r->why, sizeof(r->why),
                 "group '%.32s' is %s: its first member fixed kind, max_deliveries, dead_letter",
                 q->group, (q->flags & SB_WIRE_SUB_ACK) ? "not as asked" : "acknowledging");
    else if (g == SHMBUS_ERR_BAD_NAME)
        reply_err(r, g,
                  "the topic's name is too long for its default dead-letter topic (<topic>.dlq)");
    else if (g < 0)
        snprintf(r->why, sizeof(r->why), "group '%.40s': %s", q->group, shmbus_strerror(g));
    return g;
}

static void on_sub(struct sbd_session *s, const struct sb_wire_sub *q, struct ctl_reply *r)
{
    struct sbd_topic *t = held_topic(s, q->topic, r);
    int group = 0, slot;

    if (t == NULL)
        return;
    if (sbd_topic_broken(t)) {
        reply_err(r, SHMBUS_ERR_TRUNCATED, "a client truncated the topic's segment");
        return;
    }
    if ((q->flags & SB_WIRE_SUB_ACK) && sub_ack_refused(t, q, r) < 0)
        return;
    /* The slot first: a request that fails names no group. */
    slot = sb_admin_slot_take(t->t, (uint32_t)s->pid, s->start);
    if (slot < 0) {
        snprintf(r->why, sizeof(r->why), "every subscriber slot of topic '%.60s' is taken",
                 t->name);
        r->code = slot;
        return;
    }
    if (q->group[0] != '\0' && (group = sub_group(t, q, r)) < 0)
        r->code = group;
    else
        r->code = sbd_session_hold(s, t, SBD_HOLD_SLOT, (uint32_t)slot);
    if (r->code < 0) {
        sb_admin_slot_free(t->t, (uint32_t)slot, 0);
        return;
    }
    r->out.sub = (struct sb_wire_sub_ok){.slot = (uint32_t)slot, .group = (uint32_t)group};
    r->body = &r->out.sub;
    r->len = sizeof(r->out.sub);
}

/* A client re-registers a slot it took from a daemon before us. */
static void on_adopt(struct sbd_session *s, const struct sb_wire_ref *q, struct ctl_reply *r)
{
    struct sbd_topic *t = held_topic(s, q->topic, r);
    uint32_t pid;
    uint64_t start;

    if (t == NULL)
        return;
    if (sbd_topic_broken(t)) {
        reply_err(r, SHMBUS_ERR_TRUNCATED, "a client truncated the topic's segment");
        return;
    }
    if (q->slot >= t->info.max_subscribers ||
        !sb_admin_owner(t->t, SB_ADMIN_SLOT, q->slot, &pid, &start) || (pid_t)pid != s->pid ||
        start != s->start) {
        reply_err(r, -ENOENT, "no slot of this process there");
        return;
    }
    if (sbd_session_find(s, t->id, SBD_HOLD_SLOT, q->slot) < 0)
        r->code = sbd_session_hold(s, t, SBD_HOLD_SLOT, q->slot);
}

static void on_list(struct sbd_control *c, const struct sb_wire_list *q, struct ctl_reply *r)
{
    shmbus_topic_entry e[SB_WIRE_LIST_MAX];
    struct sb_wire_list_ok *ok = (struct sb_wire_list_ok *)(void *)r->out.list;

    ok->count = sbd_topic_list(c->reg, q->after, e, SB_WIRE_LIST_MAX);
    ok->pad = 0;
    for (uint32_t i = 0; i < ok->count; i++)
        sb_monitor_topic_put(&ok->entries[i], &e[i]);
    r->body = r->out.list;
    r->len = (uint32_t)(sizeof(*ok) + ok->count * sizeof(ok->entries[0]));
}

static void on_bridge(struct sbd_control *c, const struct sb_wire_bridge *q, struct ctl_reply *r)
{
    struct sb_wire_bridge_ok *ok = (struct sb_wire_bridge_ok *)(void *)r->out.list;
    shmbus_bridge_conn conns[SB_WIRE_BRIDGE_MAX];
    shmbus_bridge_info info;
    unsigned n = sbd_bridge_stat(c->bridge, q->after, &info, conns, SB_WIRE_BRIDGE_MAX);

    memset(ok, 0, sizeof(*ok));
    sb_monitor_bridge_put(ok, &info);
    ok->count = n;
    for (unsigned i = 0; i < n; i++)
        sb_monitor_conn_put(&ok->conns[i], &conns[i]);
    r->body = r->out.list;
    r->len = (uint32_t)(sizeof(*ok) + n * sizeof(ok->conns[0]));
}

/* Where the daemon records a topic of this session (rec/rec.h). */
static void on_journal(struct sbd_control *c, struct sbd_session *s, const struct sb_wire_ref *q,
                       struct ctl_reply *r)
{
    struct sb_wire_journal_ok *ok = (struct sb_wire_journal_ok *)(void *)r->out.list;
    struct sbd_topic *t = held_topic(s, q->topic, r);

    if (t == NULL)
        return;
    memset(ok, 0, sizeof(*ok)); /* NUL-padded: nothing of the daemon's memory goes out */
    if (sbd_rec_dir(c->rec, t->name, ok->dir, sizeof(ok->dir)) < 0) {
        reply_err(r, -ENOENT, "the daemon does not record this topic (shmbusd --record)");
        return;
    }
    r->body = ok;
    r->len = sizeof(*ok);
}

static void on_nats(struct sbd_control *c, const struct sb_wire_nats *q, struct ctl_reply *r)
{
    struct sb_wire_nats_ok *ok = (struct sb_wire_nats_ok *)(void *)r->out.list;
    shmbus_nats_topic topics[SB_WIRE_NATS_MAX];
    shmbus_nats_info info;
    unsigned n = sbd_fed_stat(c->fed, q->after, &info, topics, SB_WIRE_NATS_MAX);

    memset(ok, 0, sizeof(*ok));
    sb_monitor_nats_put(ok, &info);
    ok->count = n;
    for (unsigned i = 0; i < n; i++)
        sb_monitor_nats_topic_put(&ok->entries[i], &topics[i]);
    r->body = r->out.list;
    r->len = (uint32_t)(sizeof(*ok) + n * sizeof(ok->entries[0]));
}

/* The bus's use against its limits (shmbus_bus_stat()). */
static void on_bus(struct sbd_control *c, struct ctl_reply *r)
{
    const struct sbd_config *cfg = c->cfg;
    struct sbd_registry *reg = c->reg;

    /* topic_lock guards the counts (registry.h); the bridge adds topics too. */
    pthread_mutex_lock(&reg->topic_lock);
    r->out.bus = (struct sb_wire_bus_ok){.shm_bytes = reg->shm_bytes,
                                         .max_shm = cfg->max_shm,
                                         .max_segment = cfg->max_segment,
                                         .topics = reg->ntopics - reg->ntopics_own,
                                         .max_topics = cfg->max_topics,
                                         .clients = c->clients,
                                         .max_clients = cfg->max_clients};
    pthread_mutex_unlock(&reg->topic_lock);
    r->body = &r->out.bus;
    r->len = sizeof(r->out.bus);
}

/* May this session remove @p t? Not the daemon's own topics, nor one a
 * subsystem of the daemon serves (federated, recorded: they keep their
 * state of it until the daemon stops); the daemon's uid, root and the
 * uid whose client created it may (docs/design.md, "Who may do what").
 * @return 0 or the error, r filled. */
static int remove_refused(struct sbd_control *c, const struct sbd_session *s,
                          const struct sbd_topic *t, struct ctl_reply *r)
{
    char dir[SB_WIRE_PATH_MAX];

    if (sbd_events_reserved(t->name)) {
        reply_err(r, SHMBUS_ERR_DENIED, "the daemon's own _shmbus. topics cannot be removed");
        return r->code;
    }
    if (s->uid != geteuid() && s->uid != 0 && s->uid != t->creator) {
        snprintf(r->why, sizeof(r->why), "topic '%.40s' was created by uid %u, not by uid %u",
                 t->name, (unsigned)t->creator, (unsigned)s->uid);
        return r->code = SHMBUS_ERR_DENIED;
    }
    /* acquire: pairs with federation's release of its record (registry.h). */
    if (atomic_load_explicit(&t->fed, memory_order_acquire) != NULL ||
        sbd_rec_dir(c->rec, t->name, dir, sizeof(dir)) != -ENOENT) {
        snprintf(r->why, sizeof(r->why),
                 "topic '%.40s' is federated or recorded by the daemon: not removable", t->name);
        return r->code = SHMBUS_ERR_BUSY;
    }
    return 0;
}

static void on_remove(struct sbd_control *c, struct sbd_session *s, const struct sb_wire_remove *q,
                      struct ctl_reply *r)
{
    int force = (q->flags & SHMBUS_REMOVE_FORCE) != 0;
    struct sbd_topic *t = sbd_topic_find(c->reg, q->name);

    if (t == NULL) {
        r->code = sbd_pending_has_topic(c->reg, q->name) ? SHMBUS_ERR_NOT_READY : -ENOENT;
        snprintf(r->why, sizeof(r->why), "%s '%.60s'",
                 r->code == -ENOENT ? "no topic" : "not taken over yet, try again: topic", q->name);
        return;
    }
    if (remove_refused(c, s, t, r) < 0)
        return;
    r->code = sbd_topic_remove(c->reg, t, force, r->why, sizeof(r->why));
    if (r->code < 0)
        return;
    sbd_log(SBD_INFO, "topic %s removed by client %u (pid %d uid %u%s)", t->name, s->id,
            (int)s->pid, (unsigned)s->uid, force ? ", forced" : "");
    sbd_event("topic_removed",
              (struct sbd_ev_field[]){SBD_EV_S("topic", t->name), SBD_EV_U("pid", s->pid),
                                      SBD_EV_U("uid", s->uid), SBD_EV_U("force", force)},
              4);
}

/* Handle one decoded request. */
static void ctl_dispatch(struct sbd_control *c, struct sbd_session *s, const struct sb_wire_req *q,
                         struct ctl_reply *r)
{
    if (q->hdr.type == SB_MSG_HELLO)
        on_hello(c, s, &q->u.hello, r);
    else if (!s->hello)
        reply_err(r, SHMBUS_ERR_PROTOCOL, "say hello first");
    else if (q->hdr.type == SB_MSG_OPEN)
        on_open(c, s, &q->u.open, r);
    else if (q->hdr.type == SB_MSG_SUB_ADD)
        on_sub(s, &q->u.sub, r);
    else if (q->hdr.type == SB_MSG_LIST)
        on_list(c, &q->u.list, r);
    else if (q->hdr.type == SB_MSG_SUB_ADOPT)
        on_adopt(s, &q->u.ref, r);
    else if (q->hdr.type == SB_MSG_BRIDGE)
        on_bridge(c, &q->u.bridge, r);
    else if (q->hdr.type == SB_MSG_NATS)
        on_nats(c, &q->u.nats, r);
    else if (q->hdr.type == SB_MSG_JOURNAL)
        on_journal(c, s, &q->u.ref, r);
    else if (q->hdr.type == SB_MSG_REMOVE)
        on_remove(c, s, &q->u.remove, r);
    else if (q->hdr.type == SB_MSG_BUS)
        on_bus(c, r);
    else
        on_ref(s, q->hdr.type, &q->u.ref, r);
}

/* The reply that handed out @p slot of topic @p topic could not be sent
 * (the client gave up waiting and shut its socket): nobody knows the
 * slot's number, so it is freed now rather than when the process dies. */
static void ctl_slot_unsent(struct sbd_session *s, uint32_t topic, uint32_t slot)
{
    int i = sbd_session_find(s, topic, SBD_HOLD_SLOT, slot);

    if (i < 0)
        return; /* not this session's: nothing to give back */
    sbd_log(SBD_DEBUG, "client %u: slot %u never reached it: freed", s->id, slot);
    sbd_session_release(s, (uint32_t)i);
}

/* Decode and handle one received message, then send the reply. */
int sbd_control_request(struct sbd_control *c, struct sbd_session *s, const uint8_t *msg, long n)
{
    struct ctl_reply r = {.fd = -1};
    struct sb_wire_req q;
    const char *why = NULL;
    int rc;

    if (n < 0) {
        rc = (int)n; /* longer than SB_WIRE_MAX: the rest was dropped */
        why = "message longer than the protocol's maximum";
        /* The first SB_WIRE_MAX bytes arrived: answer with the request's id. */
        memset(&q, 0, sizeof(q));
        memcpy(&q.hdr, msg, sizeof(q.hdr));
    } else {
        rc = sb_wire_decode_req(msg, (size_t)n, &q, &why);
    }
    if (rc < 0)
        reply_err(&r, rc, why);
    else if (s->refused)
        reply_err(&r, s->refused, "client limit reached (--max-clients)");
    else
        ctl_dispatch(c, s, &q, &r);
    if (r.code < 0) {
        sbd_log(SBD_DEBUG, "client %u: request %u refused: %s (%s)", s->id, q.hdr.type,
                shmbus_strerror(r.code), r.why);
        rc = sb_wire_send_err(s->fd, q.hdr.req, r.code, r.why[0] ? r.why : NULL);
    } else {
        rc = sb_wire_send(s->fd, SB_MSG_OK, q.hdr.req, r.body, r.len, r.fd);
    }
    if (rc < 0)
        sbd_log(SBD_WARN, "client %u: reply failed (%s): disconnecting", s->id,
                shmbus_strerror(rc));
    if (rc < 0 && r.code >= 0 && q.hdr.type == SB_MSG_SUB_ADD)
        ctl_slot_unsent(s, q.u.sub.topic, r.out.sub.slot);
    return rc < 0 || r.close || s->refused ? -1 : 0;
}
