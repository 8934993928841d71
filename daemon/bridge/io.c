/*
 * The bridge's I/O thread (bridge.h, state.h): accepts connections,
 * reads and runs their commands (JSON lines or RESP2, told apart by the
 * first byte), keeps the subscription lists the pumps deliver along, and
 * publishes remote messages into the rings.
 *
 * Input is parsed straight from the read buffer; only a partial command is
 * copied into the connection; a drained output buffer larger than 4 KiB
 * is freed within a second, so an idle connection holds little memory.
 * Replies go through the same bounded output buffer as deliveries and are
 * written once per read. A publish into a full reliable topic leaves the
 * command unread and stops reading the connection (EPOLLIN off) until the
 * ring has room or --bridge-pub-timeout passes: back-pressure reaches the
 * client through TCP, and the daemon buffers nothing more for it.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "out.h"
#include "pump.h"
#include "state.h"
#include "log.h"
#include "ring/ring.h"
#include "tsan.h"
#include "util/clock.h"

static_assert(SBB_ARGV_MAX == SBD_BRIDGE_SUBS_MAX + 2, "--bridge-max-subs bound");

#define SBB_READ_CHUNK  65536u
#define SBB_READS_MAX   16u    /* reads of one connection per event: fairness */
#define SBB_INLINE_MAX  65536u /* one inline RESP command */
#define SBB_PATTERN_MAX 256u
#define SBB_REP_MAX     16384u /* replies gathered before they go to the output */

/* What running a command did to the connection. */
enum run_result { RUN_OK = 0, RUN_PAUSE = 1 };

/* A publish a client asked for: the topic name as it sent it (checked by
 * publish()) and the payload; what came of it: the receivers counted, or
 * -1 with why filled. */
struct sbb_pub {
    const char *name;
    size_t name_len;
    const void *data;
    size_t len;
    long long receivers;
    char *why;
    size_t why_len;
};

static uint64_t now_ms(void)
{
    return sb_mono_ns() / 1000000u;
}

/* ---------------------------------------------------------------- output */

/* Move the replies gathered for one connection to its output: one lock
 * for all the replies to a read's pipelined commands. */
static void rep_flush(struct sbb_io *io)
{
    struct sbb_conn *c = io->rep_conn;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    sbb_out_put(c, io->rep, io->rep_len);
    pthread_mutex_unlock(&c->mu);
    io->rep_len = 0;
    io->rep_conn = NULL;
}

/* Queue a command reply, honouring CLIENT REPLY OFF and SKIP. */
static void reply(struct sbb_conn *c, const void *data, size_t len)
{
    struct sbb_io *io = &c->b->io;

    if (c->reply == 1)
        return;
    if (c->reply == 2) {
        c->reply = 0;
        return;
    }
    if (io->rep_conn != c || io->rep_len + len > SBB_REP_MAX)
        rep_flush(io);
    if (len > SBB_REP_MAX) {
        pthread_mutex_lock(&c->mu);
        sbb_out_put(c, data, len);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    memcpy(io->rep + io->rep_len, data, len);
    io->rep_len += len;
    io->rep_conn = c;
}

static void reply_str(struct sbb_conn *c, const char *s)
{
    reply(c, s, strlen(s));
}

/* "-ERR ...\r\n" from a format. */
static void reply_err(struct sbb_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply_err(struct sbb_conn *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 3)
        n = (int)sizeof(buf) - 3;
    /* No CR or LF inside a simple error: they would end it early. */
    for (int i = 0; i < n; i++)
        if (buf[i] == '\r' || buf[i] == '\n')
            buf[i] = ' ';
    memcpy(buf + n, "\r\n", 2);
    reply(c, buf, (size_t)n + 2);
}

static void reply_int(struct sbb_conn *c, long long v)
{
    char buf[24];

    reply(c, buf, sbb_resp_int(buf, v));
}

static void reply_bulk(struct sbb_conn *c, const void *data, size_t len)
{
    char small[256];
    size_t n = sbb_resp_bulk_len(len);
    char *buf = n <= sizeof(small) ? small : malloc(n);

    if (buf == NULL) {
        reply_str(c, "-ERR out of memory\r\n");
        return;
    }
    sbb_resp_bulk(buf, data, len);
    reply(c, buf, n);
    if (buf != small)
        free(buf);
}

/* A (p)(un)subscribe confirmation: [kind, name or nil, count]. */
static void reply_sub(struct sbb_conn *c, const char *kind, const char *name, size_t len)
{
    char buf[64 + 2 * SBB_PATTERN_MAX];
    char *o = buf;
    int reply_mode;

    memcpy(o, "*3\r\n", 4);
    o += 4;
    o += sbb_resp_bulk(o, kind, strlen(kind));
    if (name != NULL) {
        o += sbb_resp_bulk(o, name, len);
    } else {
        memcpy(o, "$-1\r\n", 5);
        o += 5;
    }
    o += sbb_resp_int(o, c->nsubs);
    /* A push, not a reply: Redis sends it whatever CLIENT REPLY says. */
    reply_mode = c->reply;
    c->reply = 0;
    reply(c, buf, (size_t)(o - buf));
    c->reply = reply_mode;
}

/* A JSON reply line: {"ok":..,"command":..,["id":..,]<extra>}. @p extra is
 * either "" or starts with a comma. */
static void jreply(struct sbb_conn *c, const char *cmd, const struct sbb_jstr *id, int ok,
                   const char *extra)
{
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "{\"ok\":%s", ok ? "true" : "false");

    if (cmd != NULL)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ",\"command\":\"%s\"", cmd);
    if (id != NULL && id->p != NULL)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ",\"id\":%.*s", (int)id->len, id->p);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s}\n", extra);
    if ((size_t)n >= sizeof(buf))
        n = (int)sizeof(buf) - 1;
    reply(c, buf, (size_t)n);
}

/* A JSON error reply with a message. */
static void jerror(struct sbb_conn *c, const char *cmd, const struct sbb_jstr *id, const char *msg)
{
    char extra[16 + SBB_JSON_STR_MAX(400)];
    size_t len = strnlen(msg, 400);

    memcpy(extra, ",\"error\":", 9);
    extra[9 + sbb_json_str(extra + 9, msg, len)] = '\0';
    jreply(c, cmd, id, 0, extra);
}

/* Set the connection's epoll interest from its state. Under c->mu. */
static void conn_interest(struct sbb_conn *c)
{
    struct epoll_event ev = {.events = sbb_events(c), .data.ptr = c};

    if (!c->dead && epoll_ctl(c->b->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        sbb_doom(c);
}

/* Stop reading @p c and close it once its output is written. */
void sbb_conn_finish(struct sbb_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    conn_interest(c);
    pthread_mutex_unlock(&c->mu);
}

void sbb_conn_fail(struct sbb_conn *c, const char *resp, const char *json)
{
    c->reply = 0; /* whatever CLIENT REPLY says: the last word it gets */
    if (c->proto == SB_BRIDGE_JSON)
        jerror(c, NULL, NULL, json);
    else
        reply_err(c, "-%s", resp);
    sbb_conn_finish(c);
}

/* ------------------------------------------------------------ subscriptions */

/* After a subscription's reply: start its deliveries. */
static void sub_go(struct sbb_io *io, struct sbb_sub *s)
{
    rep_flush(io);
    sbb_links_go(s);
}

/* --------------------------------------------------------------- publish */

/* A topic name from a client, checked and terminated into @p out. */
static int topic_name(const char *p, size_t len, char out[SHMBUS_TOPIC_NAME_MAX + 1])
{
    if (len == 0 || len > SHMBUS_TOPIC_NAME_MAX || memchr(p, '\0', len) != NULL)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return sb_wire_name_valid(out, SHMBUS_TOPIC_NAME_MAX) ? 0 : -1;
}

#define BAD_NAME_TEXT                                                                              \
    "invalid topic name: 1-128 characters of A-Z a-z 0-9 _ . : -, not starting with '.'"

/* The topic @p name, created with the default options if missing.
 * @return it, or NULL with @p why filled. */
static struct sbd_topic *pub_topic(struct sbd_bridge *b, const char *name, char *why,
                                   size_t why_len)
{
    struct sb_wire_open req;
    struct sbd_topic *t;
    int created;

    urcu_memb_read_lock();
    t = sbd_topic_lookup(b->reg, name); /* topics stay until the daemon stops */
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    if (t != NULL)
        return t;
    memset(&req, 0, sizeof(req));
    memcpy(req.name, name, strlen(name));
    if (b->cfg->bridge_no_create)
        req.flags = SHMBUS_OPEN_NOCREATE; /* "no topic 'x'" */
    if (sbd_topic_open(b->reg, &req, &t, &created, why, why_len) < 0)
        t = NULL;
    if (created)
        sbb_topics_new(b);
    return t;
}

/* The bridge's publisher in @p t, created on first use. @return 0 or -1
 * with @p why filled. */
static int pub_get(struct sbd_bridge *b, struct sbd_topic *t, char *why, size_t why_len)
{
    int rc;

    if (t->bridge_pub != NULL)
        return 0;
    /* Its one publisher would be the bridge's, for good. */
    if (t->info.flags & SHMBUS_TOPIC_EXCLUSIVE) {
        snprintf(why, why_len, "topic '%s' is exclusive (one publisher at a time): publish locally",
                 t->name);
        return -1;
    }
    if (b->npub == b->pub_cap) {
        size_t n = b->pub_cap ? b->pub_cap * 2 : 16;
        struct sbd_topic **p = realloc(b->pubt, n * sizeof(*p));

        if (p == NULL) {
            snprintf(why, why_len, "out of memory");
            return -1;
        }
        b->pubt = p;
        b->pub_cap = n;
    }
    rc = shmbus_pub_create(t->t, &t->bridge_pub);
    if (rc < 0) {
        snprintf(why, why_len, "cannot publish on topic '%s': %s", t->name, shmbus_strerror(rc));
        return -1;
    }
    /* Our pump is not woken for our own messages: deliver_touched(). */
    sb_pub_quiet(t->bridge_pub, SB_WAITER_BRIDGE);
    b->pubt[b->npub++] = t;
    return 0;
}

static void deliver_touched(struct sbb_io *io);

/* Remember @p t for delivery at the end of this read. The publish did not
 * wake its pump (sb_pub_quiet()): the delivery must happen. */
static void touch(struct sbb_io *io, struct sbd_topic *t)
{
    unsigned i = 0;

    while (i < io->ntouched && io->touched[i] != t)
        i++;
    if (i < io->ntouched)
        return;
    if (io->ntouched == SBB_TOUCHED_MAX)
        deliver_touched(io);
    io->touched[io->ntouched++] = t;
}

/* A reliable topic is full: wait (RUN_PAUSE) up to --bridge-pub-timeout,
 * then give up with @p p's why filled (RUN_OK). */
static int pub_full(const struct sbd_bridge *b, struct sbb_conn *c, const struct sbd_topic *t,
                    struct sbb_pub *p)
{
    uint64_t now = now_ms();

    if (c->paused_ms == 0)
        c->paused_ms = now == 0 ? 1 : now;
    if (now - c->paused_ms < b->cfg->bridge_pub_timeout_ms)
        return RUN_PAUSE;
    snprintf(p->why, p->why_len, "topic '%s' stayed full (reliable: a subscriber lags) for %u ms",
             t->name, b->cfg->bridge_pub_timeout_ms);
    c->paused_ms = 0;
    return RUN_OK;
}

/* The topic of @p p for @p c: the last one it published on, or the one
 * @p p names (checked here), created with the default options if missing,
 * as `shmbus pub` does. @return it, or NULL with @p p's why filled. */
static struct sbd_topic *pub_target(struct sbd_bridge *b, struct sbb_conn *c, struct sbb_pub *p)
{
    struct sbd_topic *t = c->last_pub;
    char checked[SHMBUS_TOPIC_NAME_MAX + 1];

    /* A publisher usually sends on one topic: skip the name check and the
     * lookup when it is the last one's. */
    if (t != NULL && p->name_len == strlen(t->name) && memcmp(p->name, t->name, p->name_len) == 0)
        return t;
    if (topic_name(p->name, p->name_len, checked) < 0) {
        snprintf(p->why, p->why_len, "%s", BAD_NAME_TEXT);
        return NULL;
    }
    t = pub_topic(b, checked, p->why, p->why_len);
    if (t == NULL || pub_get(b, t, p->why, p->why_len) < 0)
        return NULL;
    c->last_pub = t; /* topics stay until the daemon stops */
    return t;
}

/*
 * Publish @p p's payload on the topic it names for @p c.
 * @return RUN_OK: p->receivers is the count (>= 0), or -1 with p->why
 * filled; RUN_PAUSE when a reliable topic is full and the wait goes on.
 */
static int publish(struct sbb_io *io, struct sbb_conn *c, struct sbb_pub *p)
{
    struct sbd_bridge *b = io->b;
    struct sbd_topic *t;
    int rc;

    p->receivers = -1;
    t = pub_target(b, c, p);
    if (t == NULL)
        return RUN_OK;
    if (p->len > t->info.max_msg_size) {
        snprintf(p->why, p->why_len, "message of %zu bytes; topic '%s' takes at most %u", p->len,
                 t->name, t->info.max_msg_size);
        return RUN_OK;
    }
    /* Counted before: those the message goes to (as Redis counts; not the
     * links of a subscription still waiting for its reply).
     * relaxed: a monitoring count. */
    p->receivers = (long long)atomic_load_explicit(&t->subscribers, memory_order_relaxed) +
                   (t->bridge != NULL ? t->bridge->nlive : 0);
    rc = sbd_topic_broken(t) ? SHMBUS_ERR_TRUNCATED
                             : shmbus_publish(t->bridge_pub, p->data, p->len, 0);
    /* Lossy: a newer message took the cell while we wrote; readers count it
     * lost, like any other loss of a lossy topic, which publishers are not
     * told of either. */
    if (rc == SHMBUS_ERR_OVERRUN && t->info.mode == SHMBUS_LOSSY)
        rc = 0;
    if (rc < 0)
        p->receivers = -1;
    if (rc == -EAGAIN)
        return pub_full(b, c, t, p);
    c->paused_ms = 0;
    if (rc < 0) {
        snprintf(p->why, p->why_len, "message not published on '%s': %s", t->name,
                 shmbus_strerror(rc));
        return RUN_OK;
    }
    /* relaxed: counters. */
    atomic_fetch_add_explicit(&c->msgs_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->msgs_in, 1, memory_order_relaxed);
    if (t->bridge != NULL)
        touch(io, t);
    return RUN_OK;
}

/* Deliver what this read published, now, from this thread: the pump was
 * not woken for it (sb_pub_quiet()), so the path from a remote publisher
 * to a remote subscriber costs no thread wake-up. Waits only while the
 * pump is delivering the same topic. */
static void deliver_touched(struct sbb_io *io)
{
    if (io->ntouched == 0)
        return;
    urcu_memb_read_lock();
    for (unsigned i = 0; i < io->ntouched; i++) {
        struct sbb_topic *bt = io->touched[i]->bridge;
        int more;

        if (bt == NULL)
            continue; /* unsubscribed since: nobody remote to deliver to */
        /* One round: local publishers may keep the topic busy, and the I/O
         * thread has other connections to serve. What is left goes to the
         * pump, which the quiet publish did not wake: ring it. */
        pthread_mutex_lock(&bt->poll_mu);
        sbb_deliver(io->b, &io->direct, bt);
        more = bt->sub != NULL && sb_sub_ready_order(bt->sub, memory_order_acquire) != 0;
        pthread_mutex_unlock(&bt->poll_mu);
        if (more)
            sbb_pump_ring(bt->pump);
    }
    sbb_flush(&io->direct);
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    io->ntouched = 0;
}

/* ------------------------------------------------------------------ auth */

static int token_ok(const struct sbd_bridge *b, const char *p, size_t len)
{
    const char *tok = b->cfg->bridge_token;
    size_t tl = strlen(tok);
    unsigned char diff = (unsigned char)(len != tl);

    /* Constant time in the token's bytes. */
    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)(tok[i] ^ (i < len ? p[i] : 0));
    return diff == 0;
}

static void set_authed(struct sbb_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->authed = 1;
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ JSON lines */

static void json_auth(struct sbd_bridge *b, struct sbb_conn *c, const struct sbb_jcommand *q)
{
    if (b->cfg->bridge_token[0] == '\0') {
        jerror(c, "AUTH", &q->id, "no token is configured: AUTH is not needed");
    } else if (q->token.p == NULL || !token_ok(b, q->token.p, q->token.len)) {
        jerror(c, "AUTH", &q->id, "invalid token");
        sbb_gate_auth_wrong(b, c);
    } else {
        set_authed(c);
        jreply(c, "AUTH", &q->id, 1, "");
    }
}

/* SUB, UNSUB and PUB, on the checked topic @p name. */
static int json_topic(struct sbb_io *io, struct sbb_conn *c, const struct sbb_jcommand *q,
                      const char *cmd, const char *name)
{
    char why[256], extra[64 + SHMBUS_TOPIC_NAME_MAX];
    struct sbb_sub *s = NULL;
    long long n = 0;

    why[0] = '\0';
    if (q->cmd == SBB_J_SUB) {
        n = sbb_subscribe(io->b, c, 0, name, q->topic.len, &s, why, sizeof(why)) < 0
                ? -1
                : (long long)c->nsubs;
    } else if (q->cmd == SBB_J_UNSUB) {
        struct sbb_sub *u = sbb_sub_find(c, 0, name, q->topic.len);

        if (u != NULL)
            sbb_sub_del(u);
        n = c->nsubs;
    } else if (q->payload.p == NULL) {
        snprintf(why, sizeof(why), "missing \"payload\" or \"payload_base64\"");
        n = -1;
    } else {
        struct sbb_pub pub = {.name = name,
                              .name_len = q->topic.len,
                              .data = q->payload.p,
                              .len = q->payload.len,
                              .why = why,
                              .why_len = sizeof(why)};

        if (publish(io, c, &pub) == RUN_PAUSE)
            return RUN_PAUSE;
        n = pub.receivers;
    }
    if (n < 0) {
        jerror(c, cmd, &q->id, why);
        return RUN_OK;
    }
    snprintf(extra, sizeof(extra), ",\"topic\":\"%s\",\"%s\":%lld", name,
             q->cmd == SBB_J_PUB ? "receivers" : "subscriptions", n);
    jreply(c, cmd, &q->id, 1, extra);
    if (s != NULL)
        sub_go(io, s);
    return RUN_OK;
}

static int json_run(struct sbb_io *io, struct sbb_conn *c, const char *line, size_t len)
{
    static const char *const names[] = {NULL, "SUB", "UNSUB", "PUB", "PING", "AUTH"};
    struct sbd_bridge *b = io->b;
    char err[200], name[SHMBUS_TOPIC_NAME_MAX + 1];
    struct sbb_jcommand q;
    const char *cmd;

    if (sbb_json_parse(line, len, io->jscratch, &q, err, sizeof(err)) < 0) {
        jerror(c, NULL, NULL, err);
        return RUN_OK;
    }
    cmd = names[q.cmd];
    if (q.cmd == SBB_J_AUTH)
        json_auth(b, c, &q);
    else if (b->cfg->bridge_token[0] != '\0' && !c->authed)
        jerror(c, cmd, &q.id, "authentication required: send AUTH with the token first");
    else if (q.cmd == SBB_J_PING)
        jreply(c, cmd, &q.id, 1, "");
    else if (q.topic.p == NULL)
        jerror(c, cmd, &q.id, "missing \"topic\"");
    else if (topic_name(q.topic.p, q.topic.len, name) < 0)
        jerror(c, cmd, &q.id, BAD_NAME_TEXT);
    else
        return json_topic(io, c, &q, cmd, name);
    return RUN_OK;
}

/* ------------------------------------------------------------------ RESP */

static int arg_is(const struct sbb_argv *a, unsigned i, const char *s)
{
    return a->argl[i] == strlen(s) && strncasecmp(a->argv[i], s, a->argl[i]) == 0;
}

/* The command's name in lower case, for error texts. */
static void cmd_lower(const struct sbb_argv *a, char *out, size_t cap)
{
    size_t n = a->argl[0] < cap - 1 ? a->argl[0] : cap - 1;

    for (size_t i = 0; i < n; i++) {
        char ch = a->argv[0][i];

        out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : (ch < 0x20 ? '?' : ch));
    }
    out[n] = '\0';
}

static void reply_arity(struct sbb_conn *c, const struct sbb_argv *a)
{
    char name[32];

    cmd_lower(a, name, sizeof(name));
    reply_err(c, "-ERR wrong number of arguments for '%s' command", name);
}

/* SUBSCRIBE and PSUBSCRIBE. A pattern not yet linked to every topic that
 * existed when it came (link.h) leaves the command unread and the
 * connection paused, its later arguments not yet run: RUN_PAUSE. The
 * command runs again from that argument (c->link_arg) in a later pass,
 * and the pattern's reply goes out once its links are made. */
static int resp_subscribe(struct sbb_io *io, struct sbb_conn *c, const struct sbb_argv *a,
                          int pattern)
{
    const char *kind = pattern ? "psubscribe" : "subscribe";
    char why[256], name[SHMBUS_TOPIC_NAME_MAX + 1];
    struct sbb_sub *s;

    for (unsigned i = c->linking != NULL ? c->link_arg : 1; i < a->argc; i++) {
        const char *p = a->argv[i];
        size_t len = a->argl[i];
        int rc;

        if (!pattern && topic_name(p, len, name) < 0) {
            reply_err(c, "-ERR %s", BAD_NAME_TEXT);
            continue;
        }
        if (pattern && (len == 0 || len > SBB_PATTERN_MAX || memchr(p, '\0', len) != NULL)) {
            reply_err(c, "-ERR invalid pattern: 1 to %u bytes, no NUL", SBB_PATTERN_MAX);
            continue;
        }
        s = c->linking;
        c->linking = NULL;
        rc = s != NULL ? 0 : sbb_subscribe(io->b, c, pattern, p, len, &s, why, sizeof(why));
        if (rc == 0)
            rc = sbb_sub_ready(s, why, sizeof(why));
        if (rc > 0) {
            c->linking = s;
            c->link_arg = i;
            return RUN_PAUSE;
        }
        if (rc < 0) {
            reply_err(c, "-ERR %s", why);
        } else {
            reply_sub(c, kind, p, len);
            sub_go(io, s);
        }
    }
    return RUN_OK;
}

static void resp_unsubscribe(struct sbb_conn *c, const struct sbb_argv *a, int pattern)
{
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    struct sbb_sub *s;
    int any = 0;

    if (a->argc == 1) {
        sbd_rlist_each(s, nx, &c->subs, struct sbb_sub, cnode)
        {
            char name[SBB_PATTERN_MAX + 1];
            size_t len = s->len;

            if (s->pattern != pattern)
                continue;
            memcpy(name, s->name, len);
            sbb_sub_del(s);
            reply_sub(c, kind, name, len);
            any = 1;
        }
        if (!any)
            reply_sub(c, kind, NULL, 0);
        return;
    }
    for (unsigned i = 1; i < a->argc; i++) {
        if (a->argl[i] > SBB_PATTERN_MAX) {
            reply_err(c, "-ERR invalid %s: longer than %u bytes", pattern ? "pattern" : "channel",
                      SBB_PATTERN_MAX);
            continue;
        }
        s = sbb_sub_find(c, pattern, a->argv[i], a->argl[i]);
        if (s != NULL)
            sbb_sub_del(s);
        reply_sub(c, kind, a->argv[i], a->argl[i]);
    }
}

#define NAME_ERR "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"

/* Redis's rule for client names: printable, no spaces. */
static int name_ok(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] <= ' ' || p[i] > '~')
            return 0;
    return 1;
}

/* Set the name (cut to what stat shows). */
static void set_name(struct sbb_conn *c, const char *p, size_t len)
{
    if (len > sizeof(c->name) - 1)
        len = sizeof(c->name) - 1;
    pthread_mutex_lock(&c->mu);
    memcpy(c->name, p, len);
    c->name[len] = '\0';
    pthread_mutex_unlock(&c->mu);
}

/* HELLO's server map, flat as RESP2 has it. */
static void hello_reply(struct sbb_conn *c)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "*14\r\n$6\r\nserver\r\n$6\r\nshmbus\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
                     "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:%llu\r\n$4\r\nmode\r\n$10\r\n"
                     "standalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
                     (unsigned long long)c->id);

    reply(c, buf, (size_t)n);
}

static void resp_hello(struct sbd_bridge *b, struct sbb_conn *c, const struct sbb_argv *a)
{
    unsigned i = 2, setname = 0;

    if (a->argc >= 2 && !(a->argl[1] == 1 && a->argv[1][0] == '2')) {
        if (a->argl[1] == 1 && a->argv[1][0] == '3')
            reply_str(c, "-NOPROTO unsupported protocol version\r\n");
        else
            reply_str(c, "-ERR Protocol version is not an integer or out of range\r\n");
        return;
    }
    for (; i < a->argc; i++) {
        if (arg_is(a, i, "AUTH") && i + 2 < a->argc) {
            if (b->cfg->bridge_token[0] == '\0' || !arg_is(a, i + 1, "default") ||
                !token_ok(b, a->argv[i + 2], a->argl[i + 2])) {
                reply_str(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
                if (b->cfg->bridge_token[0] != '\0')
                    sbb_gate_auth_wrong(b, c); /* a guess, not a client without a token */
                return;
            }
            set_authed(c);
            i += 2;
        } else if (arg_is(a, i, "SETNAME") && i + 1 < a->argc) {
            setname = ++i;
            if (!name_ok(a->argv[i], a->argl[i])) {
                reply_str(c, NAME_ERR);
                return;
            }
        } else {
            reply_err(c, "-ERR Syntax error in HELLO option '%.*s'",
                      (int)(a->argl[i] > 64 ? 64 : a->argl[i]), a->argv[i]);
            return;
        }
    }
    if (b->cfg->bridge_token[0] != '\0' && !c->authed) {
        reply_str(c, "-NOAUTH HELLO must be called with the client already authenticated, "
                     "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                     "authenticate the client and select the RESP protocol version at the same "
                     "time\r\n");
        return;
    }
    if (setname > 0)
        set_name(c, a->argv[setname], a->argl[setname]);
    hello_reply(c);
}

static void resp_client(struct sbb_conn *c, const struct sbb_argv *a)
{
    if (arg_is(a, 1, "SETNAME") && a->argc == 3) {
        if (!name_ok(a->argv[2], a->argl[2])) {
            reply_str(c, NAME_ERR);
        } else {
            set_name(c, a->argv[2], a->argl[2]);
            reply_str(c, "+OK\r\n");
        }
    } else if (arg_is(a, 1, "GETNAME") && a->argc == 2) {
        if (c->name[0] == '\0')
            reply_str(c, "$-1\r\n");
        else
            reply_bulk(c, c->name, strlen(c->name));
    } else if (arg_is(a, 1, "ID") && a->argc == 2) {
        reply_int(c, (long long)c->id);
    } else if (arg_is(a, 1, "SETINFO") && a->argc == 4) {
        reply_str(c, "+OK\r\n");
    } else if (arg_is(a, 1, "REPLY") && a->argc == 3) {
        if (arg_is(a, 2, "ON")) {
            c->reply = 0;
            reply_str(c, "+OK\r\n");
        } else if (arg_is(a, 2, "OFF")) {
            c->reply = 1;
        } else if (arg_is(a, 2, "SKIP")) {
            if (c->reply == 0)
                c->reply = 2;
        } else {
            reply_str(c, "-ERR syntax error\r\n");
        }
    } else {
        reply_err(c, "-ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
                  (int)(a->argl[1] > 64 ? 64 : a->argl[1]), a->argv[1]);
    }
}

static void resp_unknown(struct sbb_conn *c, const struct sbb_argv *a)
{
    char msg[400];
    int n = snprintf(msg, sizeof(msg), "-ERR unknown command '%.*s', with args beginning with: ",
                     (int)(a->argl[0] > 64 ? 64 : a->argl[0]), a->argv[0]);

    for (unsigned i = 1; i < a->argc && n < 300; i++)
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "'%.*s' ",
                      (int)(a->argl[i] > 32 ? 32 : a->argl[i]), a->argv[i]);
    reply_err(c, "%s", msg);
}

/* One RESP command being run: what its handler gets. */
struct resp_call {
    struct sbb_io *io;
    struct sbb_conn *c;
    const struct sbb_argv *a;
};

/* One RESP command: its handler and where it may run. */
struct resp_cmd {
    const char *name;
    int (*run)(const struct resp_call *r);
    unsigned min, max; /* argument counts, the name included */
    int before_auth;   /* allowed before AUTH */
    int subscribed;    /* allowed with subscriptions (RESP2's subscribed mode) */
};

static int cmd_quit(const struct resp_call *r)
{
    struct sbb_conn *c = r->c;
    struct sbb_sub *s;

    /* Nothing after +OK, as Redis: no more deliveries. */
    sbd_rlist_each(s, nx, &c->subs, struct sbb_sub, cnode) sbb_sub_del(s);
    reply_str(c, "+OK\r\n");
    sbb_conn_finish(c);
    return RUN_OK;
}

static int cmd_auth(const struct resp_call *r)
{
    struct sbd_bridge *b = r->io->b;
    struct sbb_conn *c = r->c;
    const struct sbb_argv *a = r->a;

    if (b->cfg->bridge_token[0] == '\0') {
        reply_str(c, "-ERR AUTH <password> called without any password configured for the "
                     "default user. Are you sure your configuration is correct?\r\n");
    } else if ((a->argc == 3 && !arg_is(a, 1, "default")) ||
               !token_ok(b, a->argv[a->argc - 1], a->argl[a->argc - 1])) {
        reply_str(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        sbb_gate_auth_wrong(b, c);
    } else {
        set_authed(c);
        reply_str(c, "+OK\r\n");
    }
    return RUN_OK;
}

static int cmd_hello(const struct resp_call *r)
{
    resp_hello(r->io->b, r->c, r->a);
    return RUN_OK;
}

static int cmd_subscribe(const struct resp_call *r)
{
    return resp_subscribe(r->io, r->c, r->a, arg_is(r->a, 0, "PSUBSCRIBE"));
}

static int cmd_unsubscribe(const struct resp_call *r)
{
    resp_unsubscribe(r->c, r->a, arg_is(r->a, 0, "PUNSUBSCRIBE"));
    return RUN_OK;
}

static int cmd_ping(const struct resp_call *r)
{
    static const char pong[] = "*2\r\n$4\r\npong\r\n";
    struct sbb_conn *c = r->c;
    const struct sbb_argv *a = r->a;
    const char *msg = a->argc == 2 ? a->argv[1] : "";
    size_t len = a->argc == 2 ? a->argl[1] : 0, n = sizeof(pong) - 1 + sbb_resp_bulk_len(len);
    char *buf;

    if (c->nsubs == 0 && a->argc == 1) {
        reply_str(c, "+PONG\r\n");
    } else if (c->nsubs == 0) {
        reply_bulk(c, msg, len);
    } else if ((buf = malloc(n)) == NULL) {
        reply_str(c, "-ERR out of memory\r\n");
    } else {
        memcpy(buf, pong, sizeof(pong) - 1);
        sbb_resp_bulk(buf + sizeof(pong) - 1, msg, len);
        reply(c, buf, n);
        free(buf);
    }
    return RUN_OK;
}

static int cmd_publish(const struct resp_call *r)
{
    char why[256];
    struct sbb_pub pub = {.name = r->a->argv[1],
                          .name_len = r->a->argl[1],
                          .data = r->a->argv[2],
                          .len = r->a->argl[2],
                          .why = why,
                          .why_len = sizeof(why)};

    why[0] = '\0';
    if (publish(r->io, r->c, &pub) == RUN_PAUSE)
        return RUN_PAUSE;
    if (pub.receivers < 0)
        reply_err(r->c, "-ERR %s", why);
    else
        reply_int(r->c, pub.receivers);
    return RUN_OK;
}

static int cmd_reset(const struct resp_call *r)
{
    struct sbb_conn *c = r->c;
    struct sbb_sub *s;

    sbd_rlist_each(s, nx, &c->subs, struct sbb_sub, cnode) sbb_sub_del(s);
    c->reply = 0;
    reply_str(c, "+RESET\r\n");
    return RUN_OK;
}

static int cmd_client(const struct resp_call *r)
{
    resp_client(r->c, r->a);
    return RUN_OK;
}

static int cmd_echo(const struct resp_call *r)
{
    reply_bulk(r->c, r->a->argv[1], r->a->argl[1]);
    return RUN_OK;
}

static int cmd_select(const struct resp_call *r)
{
    if (r->a->argl[1] == 1 && r->a->argv[1][0] == '0')
        reply_str(r->c, "+OK\r\n");
    else
        reply_str(r->c, "-ERR DB index is out of range\r\n");
    return RUN_OK;
}

static int cmd_command(const struct resp_call *r)
{
    reply_str(r->c, "*0\r\n"); /* redis-cli asks for command docs; there are none */
    return RUN_OK;
}

/* INFO: what client libraries look at on connecting (ioredis reads
 * "loading" before it says it is ready). */
static int cmd_info(const struct resp_call *r)
{
    static const char info[] = "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\n"
                               "server_name:shmbus\r\n\r\n# Persistence\r\nloading:0\r\n";

    reply_bulk(r->c, info, sizeof(info) - 1);
    return RUN_OK;
}

#define ANY_ARGS SBB_ARGV_MAX

static const struct resp_cmd resp_cmds[] = {
    {"PUBLISH", cmd_publish, 3, 3, 0, 0},
    {"SUBSCRIBE", cmd_subscribe, 2, ANY_ARGS, 0, 1},
    {"PSUBSCRIBE", cmd_subscribe, 2, ANY_ARGS, 0, 1},
    {"UNSUBSCRIBE", cmd_unsubscribe, 1, ANY_ARGS, 0, 1},
    {"PUNSUBSCRIBE", cmd_unsubscribe, 1, ANY_ARGS, 0, 1},
    {"PING", cmd_ping, 1, 2, 0, 1},
    {"QUIT", cmd_quit, 1, ANY_ARGS, 1, 1},
    {"AUTH", cmd_auth, 2, 3, 1, 1},
    {"HELLO", cmd_hello, 1, ANY_ARGS, 1, 0},
    {"RESET", cmd_reset, 1, 1, 0, 1},
    {"CLIENT", cmd_client, 2, ANY_ARGS, 0, 0},
    {"ECHO", cmd_echo, 2, 2, 0, 0},
    {"SELECT", cmd_select, 2, 2, 0, 0},
    {"COMMAND", cmd_command, 1, ANY_ARGS, 0, 0},
    {"INFO", cmd_info, 1, ANY_ARGS, 0, 0},
};

static int resp_run(struct sbb_io *io, struct sbb_conn *c, const struct sbb_argv *a)
{
    const struct resp_call call = {.io = io, .c = c, .a = a};
    const struct resp_cmd *cmd = NULL;

    if (a->argc == 0)
        return RUN_OK;
    for (size_t i = 0; i < sizeof(resp_cmds) / sizeof(resp_cmds[0]) && cmd == NULL; i++)
        if (arg_is(a, 0, resp_cmds[i].name))
            cmd = &resp_cmds[i];
    /* Checked in Redis's order. */
    if (cmd == NULL) {
        resp_unknown(c, a);
    } else if (a->argc < cmd->min || a->argc > cmd->max) {
        reply_arity(c, a);
    } else if (!cmd->before_auth && io->b->cfg->bridge_token[0] != '\0' && !c->authed) {
        reply_str(c, "-NOAUTH Authentication required.\r\n");
    } else if (!cmd->subscribed && c->nsubs > 0) {
        char name[32];

        cmd_lower(a, name, sizeof(name));
        reply_err(c,
                  "-ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                  "QUIT / RESET are allowed in this context",
                  name);
    } else {
        return cmd->run(&call);
    }
    return RUN_OK;
}

/* ------------------------------------------------------------- connections */

static void conn_free_cb(struct rcu_head *h)
{
    struct sbb_conn *c = caa_container_of(h, struct sbb_conn, rcu);

    SBD_TSAN_ACQUIRE(c);
    SBD_TSAN_GRACE();
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void unpause(struct sbb_io *io, struct sbb_conn *c)
{
    for (size_t i = 0; i < io->npaused; i++) {
        if (io->paused[i] == c) {
            io->paused[i] = io->paused[--io->npaused];
            break;
        }
    }
    pthread_mutex_lock(&c->mu);
    c->paused = 0;
    conn_interest(c);
    pthread_mutex_unlock(&c->mu);
}

/* Resize @p c's input buffer to @p cap bytes (0: free it), within
 * --bridge-max-memory. @return 0 or -1. */
static int in_resize(struct sbb_conn *c, size_t cap)
{
    char *p = NULL;

    if (cap > c->in_cap && sbb_mem_charge(c->b, c, cap - c->in_cap, 0) < 0)
        return -1;
    if (cap > 0 && (p = realloc(c->in, cap)) == NULL) {
        sbb_mem_charge(c->b, c, 0, cap - c->in_cap);
        return -1;
    }
    if (cap == 0)
        free(c->in);
    if (cap < c->in_cap)
        sbb_mem_charge(c->b, c, 0, c->in_cap - cap);
    c->in = p;
    c->in_cap = cap;
    return 0;
}

static void conn_close(struct sbb_io *io, struct sbb_conn *c)
{
    struct sbd_bridge *b = io->b;
    struct sbb_sub *s;

    for (size_t i = 0; i < io->npaused; i++) {
        if (io->paused[i] == c) {
            io->paused[i] = io->paused[--io->npaused];
            break;
        }
    }
    if (io->rep_conn == c) {
        io->rep_len = 0;
        io->rep_conn = NULL;
    }
    sbd_rlist_each(s, nx, &c->subs, struct sbb_sub, cnode) sbb_sub_del(s);
    pthread_mutex_lock(&c->mu);
    if (c->doomed)
        sbd_log(SBD_DEBUG, "bridge: connection %llu closed after its output overflowed",
                (unsigned long long)c->id);
    c->dead = 1;
    epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    sbb_out_release(c);
    /* relaxed: a monitoring value. */
    atomic_store_explicit(&c->buffered, 0, memory_order_relaxed);
    pthread_mutex_unlock(&c->mu);
    in_resize(c, 0);
    c->in_len = 0;
    sbb_evict_done(c);
    sbd_rlist_remove(&b->conns, &c->node);
    b->nconns--;
    SBD_TSAN_RELEASE(c);
    urcu_memb_call_rcu(&c->rcu, conn_free_cb);
}

/* A new connection on @p fd: listed and watched. @return 0 or -1. */
static int conn_new(struct sbd_bridge *b, int fd, const struct sockaddr_storage *sa, socklen_t sl)
{
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
    struct sbb_conn *c = calloc(1, sizeof(*c));
    int one = 1, keep_idle = 60, keep_intvl = 10, keep_cnt = 6;

    if (c == NULL) {
        sbd_log(SBD_ERROR, "bridge: out of memory: connection refused");
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A peer that vanished (host down, cable out) is found in about 2 min
     * and closed, instead of holding its place for good. */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keep_idle, sizeof(keep_idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keep_intvl, sizeof(keep_intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keep_cnt, sizeof(keep_cnt));
    getnameinfo((const struct sockaddr *)sa, sl, host, sizeof(host), port, sizeof(port),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
    c->b = b;
    c->fd = fd;
    c->id = ++b->next_id;
    c->accepted_ns = sb_mono_ns();
    sbb_gate_judge(b, c, sa);
    sbd_rlist_init(&c->subs);
    pthread_mutex_init(&c->mu, NULL);
    ev.data.ptr = c;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        sbd_log(SBD_WARN, "bridge: epoll: %s", strerror(errno));
        pthread_mutex_destroy(&c->mu);
        free(c);
        return -1;
    }
    sbd_rlist_append(&b->conns, &c->node);
    b->nconns++;
    /* relaxed: a counter (the refused are counted by sbb_gate_judge()). */
    if (!c->refused)
        atomic_fetch_add_explicit(&b->accepted, 1, memory_order_relaxed);
    sbd_log(SBD_DEBUG, "bridge: connection %llu from %s", (unsigned long long)c->id, c->peer);
    return 0;
}

/* Out of descriptors: stop watching the listening socket for 100 ms (the
 * pending connection stays queued; accepting it now would fail again). */
static void accept_pause(struct sbb_io *io)
{
    struct sbd_bridge *b = io->b;
    struct epoll_event ev = {.events = 0, .data.ptr = &b->lfd};
    uint64_t now = now_ms();

    if (now >= io->log_emfile_ms) {
        sbd_log(SBD_WARN, "bridge: accept: %s (descriptor limit: see --bridge-max-conns)",
                strerror(errno));
        io->log_emfile_ms = now + 1000;
    }
    epoll_ctl(b->epfd, EPOLL_CTL_MOD, b->lfd, &ev);
    io->accept_resume_ms = now + 100;
}

static void accept_resume(struct sbb_io *io)
{
    struct sbd_bridge *b = io->b;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &b->lfd};

    if (io->accept_resume_ms == 0 || now_ms() < io->accept_resume_ms)
        return;
    epoll_ctl(b->epfd, EPOLL_CTL_MOD, b->lfd, &ev);
    io->accept_resume_ms = 0;
}

static void conn_accept(struct sbb_io *io)
{
    static const char full[] = "-ERR max number of clients reached\r\n";
    struct sbd_bridge *b = io->b;

    for (;;) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        int fd = accept4(b->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(io);
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                sbd_log(SBD_WARN, "bridge: accept: %s", strerror(errno));
            return;
        }
        if (b->nconns >= b->cfg->bridge_max_conns) {
            /* relaxed: a counter. */
            atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
            if (send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                sbd_log(SBD_DEBUG, "bridge: refused connection: %s", strerror(errno));
            close(fd);
        } else if (conn_new(b, fd, &sa, sl) < 0) {
            close(fd);
        }
    }
}

/* A request that breaks the protocol: say why (in the connection's
 * protocol) and close once that is written. */
static void conn_protocol_error(struct sbd_bridge *b, struct sbb_conn *c, const char *why)
{
    /* relaxed: a counter. */
    atomic_fetch_add_explicit(&b->proto_errors, 1, memory_order_relaxed);
    sbb_conn_fail(c, why, why);
}

static int blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/* The next JSON line of @p p: run it. @return the bytes taken (0: no
 * complete line yet); sets *paused. */
static size_t json_step(struct sbb_io *io, struct sbb_conn *c, const char *p, size_t left,
                        int *paused)
{
    struct sbd_bridge *b = io->b;
    const char *nl = sbb_scan_line(&c->scan, p, left, b->cfg->bridge_max_request + 1);
    size_t ll;

    if (nl == NULL) {
        if (left > b->cfg->bridge_max_request)
            conn_protocol_error(b, c, "line longer than --bridge-max-request");
        return 0;
    }
    ll = (size_t)(nl - p);
    if (ll > 0 && p[ll - 1] == '\r')
        ll--;
    if (!blank(p, ll) && json_run(io, c, p, ll) == RUN_PAUSE) {
        *paused = 1;
        return 0;
    }
    return (size_t)(nl - p) + 1;
}

/* The next RESP command of @p p: run it. As json_step(). */
static size_t resp_step(struct sbb_io *io, struct sbb_conn *c, const char *p, size_t left,
                        int *paused)
{
    struct sbd_bridge *b = io->b;
    uint64_t max_req = b->cfg->bridge_max_request;
    const char *err = NULL;
    int http = c->started || p[0] == '*' ? 0 : sbb_http_like(p, left);
    ssize_t n;

    /* The first word of the first inline command, before any parsing: a
     * request line is refused before its line, or the next, could run. */
    if (http != 0) {
        if (http > 0)
            sbb_gate_http(b, c, p, left);
        return 0;
    }
    n = sbb_resp_parse(p, left, max_req, SBB_INLINE_MAX, &c->scan, &io->argv, &err);
    if (n > 0 && io->argv.argc > 0 && sbb_http_word(io->argv.argv[0], io->argv.argl[0])) {
        sbb_gate_http(b, c, io->argv.argv[0], io->argv.argl[0]);
        return 0;
    }
    if (n > 0 && io->argv.argc > 0)
        c->started = 1;
    if (n < 0) {
        conn_protocol_error(b, c, err);
        return 0;
    }
    if (n == 0) {
        if (left > max_req + 65536)
            conn_protocol_error(b, c, "ERR Protocol error: request too large");
        return 0;
    }
    if (resp_run(io, c, &io->argv) == RUN_PAUSE) {
        *paused = 1;
        return 0;
    }
    return (size_t)n;
}

/* Run the complete commands in @p buf. @return the bytes consumed; sets
 * *paused when a publish must wait. */
static size_t conn_run(struct sbb_io *io, struct sbb_conn *c, const char *buf, size_t len,
                       int *paused)
{
    size_t off = 0, n;

    *paused = 0;
    while (off < len && !c->closing) {
        if (c->proto == SB_BRIDGE_UNKNOWN) {
            while (off < len && strchr(" \t\r\n", buf[off]) != NULL && buf[off] != '\0')
                off++;
            if (off == len)
                break;
            pthread_mutex_lock(&c->mu);
            c->proto = buf[off] == '{' ? SB_BRIDGE_JSON : SB_BRIDGE_RESP;
            pthread_mutex_unlock(&c->mu);
        }
        if (c->refused) {
            sbb_gate_refuse(c); /* nothing it sent runs */
            return len;
        }
        if (c->proto == SB_BRIDGE_JSON)
            n = json_step(io, c, buf + off, len - off, paused);
        else
            n = resp_step(io, c, buf + off, len - off, paused);
        if (n == 0)
            break;
        off += n;
        memset(&c->scan, 0, sizeof(c->scan)); /* the next command's search */
    }
    return off;
}

/* Keep the unconsumed input. @return 0 or -1 (out of memory). */
static int conn_keep(struct sbb_conn *c, const char *p, size_t len)
{
    if (len == 0) {
        c->in_len = 0;
        return in_resize(c, 0);
    }
    /* @p p is in the read buffer, or already in c->in. */
    if (p != c->in) {
        if (len > c->in_cap && in_resize(c, len) < 0)
            return -1;
        memmove(c->in, p, len);
    }
    c->in_len = len;
    return 0;
}

static void conn_pause(struct sbb_io *io, struct sbb_conn *c)
{
    if (io->npaused == io->paused_cap) {
        size_t n = io->paused_cap ? io->paused_cap * 2 : 16;
        struct sbb_conn **p = realloc(io->paused, n * sizeof(*p));

        if (p == NULL)
            return; /* it stays readable: the next event retries */
        io->paused = p;
        io->paused_cap = n;
    }
    for (size_t i = 0; i < io->npaused; i++)
        if (io->paused[i] == c)
            return;
    io->paused[io->npaused++] = c;
    pthread_mutex_lock(&c->mu);
    c->paused = 1;
    conn_interest(c);
    pthread_mutex_unlock(&c->mu);
}

/* Run what @p c has buffered (and @p data just read), keep the rest.
 * @return 0; 1 when a publish waits for room (the connection is paused);
 * -1 to close the connection now. */
static int conn_input(struct sbb_io *io, struct sbb_conn *c, const char *data, size_t n)
{
    const char *buf = data;
    size_t len = n, used;
    int paused;

    if (c->in_len > 0) {
        if (n > 0) {
            size_t cap = c->in_cap * 2 > c->in_len + n ? c->in_cap * 2 : c->in_len + n;

            if (c->in_len + n > c->in_cap && in_resize(c, cap) < 0)
                return -1;
            memcpy(c->in + c->in_len, data, n);
            c->in_len += n;
        }
        buf = c->in;
        len = c->in_len;
    }
    used = conn_run(io, c, buf, len, &paused);
    if (conn_keep(c, buf + used, len - used) < 0)
        return -1;
    /* --bridge-cmd-timeout counts from the first byte of the command left
     * incomplete: a command ended in this read leaves one begun in it.
     * A paused publish is complete; --bridge-pub-timeout bounds it. */
    if (paused || c->in_len == 0)
        c->cmd_ns = 0;
    else if (used > 0 || c->cmd_ns == 0)
        c->cmd_ns = sb_mono_ns();
    if (paused)
        conn_pause(io, c);
    return paused;
}

static void conn_flush(struct sbb_conn *c)
{
    rep_flush(&c->b->io);
    pthread_mutex_lock(&c->mu);
    sbb_out_flush(c);
    pthread_mutex_unlock(&c->mu);
}

/* Output drained and QUIT seen (or a protocol error): time to close. */
static int conn_done(struct sbb_conn *c)
{
    int done;

    pthread_mutex_lock(&c->mu);
    done = c->doomed || (c->closing && c->out_off == c->out_len);
    pthread_mutex_unlock(&c->mu);
    return done;
}

/* Read and run what @p c sent. @return 1 if the connection was closed. */
static int conn_readable(struct sbb_io *io, struct sbb_conn *c)
{
    struct sbd_bridge *b = io->b;
    int end = 0;

    for (unsigned r = 0; r < SBB_READS_MAX && !c->paused && !c->closing; r++) {
        ssize_t n = recv(c->fd, io->rbuf, SBB_READ_CHUNK, MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            end = 1; /* end of stream, or reset: the replies so far still go */
            break;
        }
        if (conn_input(io, c, io->rbuf, (size_t)n) < 0) {
            /* relaxed: a counter. */
            atomic_fetch_add_explicit(&b->proto_errors, 1, memory_order_relaxed);
            sbd_log(SBD_WARN,
                    "bridge: connection %llu (%s): no memory for its input "
                    "(--bridge-max-memory or the system's): closed",
                    (unsigned long long)c->id, c->peer);
            end = 1;
            break;
        }
        if ((size_t)n < SBB_READ_CHUNK)
            break;
    }
    deliver_touched(io);
    conn_flush(c);
    if (!end && !conn_done(c))
        return 0;
    conn_close(io, c);
    return 1;
}

/* Write what @p c has waiting. @return 1 if the connection was closed. */
static int conn_writable(struct sbb_io *io, struct sbb_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->epout = 0;
    sbb_out_flush(c);
    if (!c->epout)
        conn_interest(c);
    pthread_mutex_unlock(&c->mu);
    if (!conn_done(c))
        return 0;
    conn_close(io, c);
    return 1;
}

/* One epoll event of a connection. Input is read even when the peer hung
 * up: commands it sent before closing still run. */
static void conn_event(struct sbb_io *io, struct sbb_conn *c, uint32_t events)
{
    if ((events & EPOLLOUT) && conn_writable(io, c))
        return;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && conn_readable(io, c))
        return;
    if (events & (EPOLLHUP | EPOLLERR))
        conn_close(io, c); /* paused or closing: nothing more will be read */
}

/* Retry the publishes that found their topics full, once a millisecond,
 * and the PSUBSCRIBEs whose patterns got linked. A connection stays paused
 * (EPOLLIN off, no epoll call) while its publish still finds the topic
 * full or its pattern is still being linked; the latter is not re-parsed
 * (its command may be 64 KB of inline input) until it is linked. */
static void retry_paused(struct sbb_io *io)
{
    size_t n = io->npaused;
    struct sbb_conn **list;
    uint64_t now = now_ms();

    if (n == 0 || now < io->next_retry_ms)
        return;
    io->next_retry_ms = now + 1;
    list = malloc(n * sizeof(*list));
    if (list == NULL)
        return;
    memcpy(list, io->paused, n * sizeof(*list));
    for (size_t i = 0; i < n; i++) {
        struct sbb_conn *c = list[i];
        int rc;

        if (c->linking != NULL && sbb_sub_linking(c->linking))
            continue; /* nothing to run yet: O(1) */
        rc = conn_input(io, c, NULL, 0);
        if (rc == 0)
            unpause(io, c);
        deliver_touched(io);
        conn_flush(c);
        if (rc < 0 || conn_done(c))
            conn_close(io, c);
    }
    free(list);
}

/* Give back the large buffers of connections that drained them. */
static void trim_buffers(struct sbd_bridge *b)
{
    struct sbb_conn *c;

    sbd_rlist_each(c, nx, &b->conns, struct sbb_conn, node)
    {
        pthread_mutex_lock(&c->mu);
        sbb_out_trim(c);
        pthread_mutex_unlock(&c->mu);
    }
}

/* Close connections that did not authenticate in time, those refused
 * that sent nothing (--bridge-auth-timeout), and those with a command
 * incomplete for too long (--bridge-cmd-timeout). */
static void expire_conns(struct sbb_io *io)
{
    struct sbd_bridge *b = io->b;
    uint64_t now = sb_mono_ns(), limit = (uint64_t)b->cfg->bridge_auth_ms * 1000000u;
    uint64_t cmd_limit = (uint64_t)b->cfg->bridge_cmd_ms * 1000000u;
    struct sbb_conn *c;

    sbd_rlist_each(c, nx, &b->conns, struct sbb_conn, node)
    {
        if (c->cmd_ns != 0 && now - c->cmd_ns >= cmd_limit && !c->closing) {
            sbb_gate_cmd_expired(b, c);
        } else if (c->authed || now - c->accepted_ns < limit) {
            continue;
        } else if (c->closing) {
            /* Refused or failed, answered already: its output never drained. */
        } else if (c->refused) {
            sbb_gate_refuse(c); /* it sent nothing */
        } else {
            /* relaxed: a counter. */
            atomic_fetch_add_explicit(&b->auth_expired, 1, memory_order_relaxed);
            sbb_conn_fail(c, "ERR authentication timeout", "authentication timeout");
        }
        conn_flush(c);
        conn_close(io, c);
    }
}

/* Close the connections marked for holding the most memory when the
 * budget was full (mem.h). After a batch of events: none of them
 * points to a closed connection. */
static void evict_run(struct sbb_io *io)
{
    struct sbd_bridge *b = io->b;
    struct sbb_conn *c;

    while ((c = sbb_evict_next(b)) != NULL) {
        /* relaxed: a counter and a monitoring value. */
        atomic_fetch_add_explicit(&b->evicted, 1, memory_order_relaxed);
        sbd_log(SBD_WARN,
                "bridge: connection %llu (%s) holds the most memory, %zu bytes of input, output "
                "and subscriptions, and all connections reached --bridge-max-memory %llu: "
                "disconnected",
                (unsigned long long)c->id, c->peer,
                atomic_load_explicit(&c->mem, memory_order_relaxed),
                (unsigned long long)b->cfg->bridge_max_memory);
        conn_close(io, c);
    }
}

/* What the I/O thread does every tick: deadlines, buffer trimming. */
static void tick_work(struct sbb_io *io)
{
    expire_conns(io);
    trim_buffers(io->b);
    sbb_gate_tick(io->b);
}

/* The tick: a second, or a quarter of the shortest deadline, so that each
 * is kept to within a quarter of itself. */
static uint64_t tick_ms(const struct sbd_config *cfg)
{
    uint64_t t = 4000;

    if (cfg->bridge_cmd_ms < t)
        t = cfg->bridge_cmd_ms;
    if (cfg->bridge_auth_ms < t)
        t = cfg->bridge_auth_ms;
    return (t + 3) / 4;
}

static void *io_main(void *arg)
{
    struct sbd_bridge *b = arg;
    struct sbb_io *io = &b->io;
    struct epoll_event ev[64];
    uint64_t tick = tick_ms(b->cfg);
    uint64_t next_tick = now_ms() + tick;
    struct sbb_conn *c;

    urcu_memb_register_thread();
    /* relaxed: the eventfd wakes us; stop is re-read after every wait. */
    while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
        int timeout = sbb_link_busy(b)            ? 0
                      : io->npaused > 0           ? 1
                      : io->accept_resume_ms != 0 ? 100
                                                  : (int)tick;
        int n = epoll_wait(b->epfd, ev, 64, timeout);

        if (n < 0 && errno != EINTR) {
            sbd_log(SBD_ERROR, "bridge: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;

            if (p == &b->lfd) {
                conn_accept(io);
            } else if (p == &b->evfd) {
                uint64_t v;

                if (read(b->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    sbd_log(SBD_WARN, "bridge: eventfd: %s", strerror(errno));
                sbb_topics_new(b);
            } else {
                conn_event(io, p, ev[i].events);
            }
        }
        evict_run(io);
        sbb_link_work(b);
        retry_paused(io);
        accept_resume(io);
        if (now_ms() >= next_tick) {
            tick_work(io);
            next_tick = now_ms() + tick;
        }
    }
    sbd_rlist_each(c, nx, &b->conns, struct sbb_conn, node) conn_close(io, c);
    free(io->paused);
    urcu_memb_unregister_thread();
    return NULL;
}

/* ------------------------------------------------------------ start, stop */

static int listen_on(struct sbd_bridge *b, const struct sbd_config *cfg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    char host[INET6_ADDRSTRLEN], port[8];
    int one = 1, rc;

    rc = getaddrinfo(cfg->bridge_host, cfg->bridge_port, &hints, &ai);
    if (rc != 0) {
        sbd_log(SBD_ERROR, "bridge: address %s: %s", cfg->bridge_host, gai_strerror(rc));
        return -EINVAL;
    }
    b->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (b->lfd < 0 || setsockopt(b->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(b->lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(b->lfd, 1024) < 0 ||
        getsockname(b->lfd, (struct sockaddr *)&sa, &sl) < 0) {
        rc = -errno;
        freeaddrinfo(ai);
        return rc;
    }
    freeaddrinfo(ai);
    getnameinfo((struct sockaddr *)&sa, sl, host, sizeof(host), port, sizeof(port),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(b->listen, sizeof(b->listen), sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
             port);
    return 0;
}

static void bridge_free(struct sbd_bridge *b)
{
    struct sbb_io *io = &b->io;

    if (b->lfd >= 0)
        close(b->lfd);
    if (b->epfd >= 0)
        close(b->epfd);
    if (b->evfd >= 0)
        close(b->evfd);
    pthread_mutex_destroy(&b->new_mu);
    sbb_batch_free(&io->direct);
    sbb_link_fini(b);
    free(b->pubt);
    free(io->rbuf);
    free(io->rep);
    free(io->jscratch);
    free(b);
}

/* Sockets and buffers of a new bridge. @return 0 or -errno. */
static int bridge_open(struct sbd_bridge *b)
{
    struct sbb_io *io = &b->io;
    struct epoll_event ev = {.events = EPOLLIN};
    int rc;

    io->rbuf = malloc(SBB_READ_CHUNK);
    io->rep = malloc(SBB_REP_MAX);
    io->jscratch = malloc(b->cfg->bridge_max_request + 1);
    if (io->rbuf == NULL || io->rep == NULL || io->jscratch == NULL || sbb_link_init(b) < 0)
        return -ENOMEM;
    rc = listen_on(b, b->cfg);
    if (rc < 0)
        return rc;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    b->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->epfd < 0 || b->evfd < 0)
        return -errno;
    ev.data.ptr = &b->lfd;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->lfd, &ev) < 0)
        return -errno;
    ev.data.ptr = &b->evfd;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->evfd, &ev) < 0)
        return -errno;
    return 0;
}

int sbd_bridge_start(const struct sbd_config *cfg, struct sbd_registry *reg,
                     struct sbd_bridge **out)
{
    struct sbd_bridge *b = calloc(1, sizeof(*b));
    int rc;

    if (b == NULL)
        return -ENOMEM;
    sbb_peer_warn(cfg);
    b->cfg = cfg;
    b->reg = reg;
    b->lfd = b->epfd = b->evfd = -1;
    b->io.b = b;
    b->io.direct.mark = 1;
    sbd_rlist_init(&b->conns);
    pthread_mutex_init(&b->new_mu, NULL);
    rc = bridge_open(b);
    if (rc < 0) {
        bridge_free(b);
        return rc;
    }
    sbb_link_hook(reg, b);
    rc = pthread_create(&b->io_thread, NULL, io_main, b);
    if (rc != 0) {
        sbb_link_hook(reg, NULL);
        bridge_free(b);
        return -rc;
    }
    sbd_log(SBD_INFO, "bridge: listening on %s (JSON lines and Redis protocol%s)", b->listen,
            cfg->bridge_token[0] != '\0' ? ", AUTH required" : "");
    *out = b;
    return 0;
}

void sbd_bridge_stop(struct sbd_bridge *b)
{
    uint64_t one = 1;

    if (b == NULL)
        return;
    sbb_link_hook(b->reg, NULL);
    /* relaxed: the eventfd and the bells wake the threads, which re-read it. */
    atomic_store_explicit(&b->stop, 1, memory_order_relaxed);
    if (write(b->evfd, &one, sizeof(one)) < 0)
        sbd_log(SBD_WARN, "bridge: eventfd: %s", strerror(errno));
    pthread_join(b->io_thread, NULL);
    for (unsigned i = 0; i < b->npumps; i++)
        sbb_pump_stop(b->pumps[i]);
    for (size_t i = 0; i < b->npub; i++) {
        shmbus_pub_destroy(b->pubt[i]->bridge_pub);
        b->pubt[i]->bridge_pub = NULL;
    }
    /* The frees queued by the threads run before the registry goes. */
    urcu_memb_barrier();
    bridge_free(b);
}

/* "a,b,p:x*" into @p out, ending "..." when cut. Under the read lock. */
static void subs_text(struct sbb_conn *c, char *out, size_t cap)
{
    struct sbb_sub *s;
    size_t n = 0;

    out[0] = '\0';
    sbd_rlist_each(s, nx, &c->subs, struct sbb_sub, cnode)
    {
        size_t need;

        need = s->len + (s->pattern ? 2 : 0) + (n > 0);
        if (n + need + 4 > cap) {
            memcpy(out + n, "...", 4);
            return;
        }
        n += (size_t)snprintf(out + n, cap - n, "%s%s%s", n > 0 ? "," : "", s->pattern ? "p:" : "",
                              s->name);
    }
}

unsigned sbd_bridge_stat(struct sbd_bridge *b, uint64_t after, struct sb_wire_bridge_ok *out)
{
    struct sbb_conn *c;
    uint64_t now = sb_mono_ns();
    unsigned k = 0;

    memset(out, 0, sizeof(*out));
    if (b == NULL)
        return 0;
    snprintf(out->listen, sizeof(out->listen), "%s", b->listen);
    /* relaxed, all: independent counters. */
    out->accepted = atomic_load_explicit(&b->accepted, memory_order_relaxed);
    out->slow_closed = atomic_load_explicit(&b->slow_closed, memory_order_relaxed);
    out->refused = atomic_load_explicit(&b->refused, memory_order_relaxed);
    out->auth_failed = atomic_load_explicit(&b->auth_failed, memory_order_relaxed);
    out->auth_expired = atomic_load_explicit(&b->auth_expired, memory_order_relaxed);
    out->proto_errors = atomic_load_explicit(&b->proto_errors, memory_order_relaxed);
    out->msgs_in = atomic_load_explicit(&b->msgs_in, memory_order_relaxed);
    out->msgs_out = atomic_load_explicit(&b->msgs_out, memory_order_relaxed);
    out->bad_cells = atomic_load_explicit(&b->bad_cells, memory_order_relaxed);
    out->memory = atomic_load_explicit(&b->mem, memory_order_relaxed);
    out->evicted = atomic_load_explicit(&b->evicted, memory_order_relaxed);
    urcu_memb_read_lock();
    sbd_rlist_each(c, nx, &b->conns, struct sbb_conn, node)
    {
        struct sb_wire_bridge_conn *e = &out->conns[k];

        out->connections++;
        if (c->id <= after || k == SB_WIRE_BRIDGE_MAX)
            continue;
        memset(e, 0, sizeof(*e));
        e->id = c->id;
        e->age_ms = (now - c->accepted_ns) / 1000000u;
        e->buffered = atomic_load_explicit(&c->buffered, memory_order_relaxed);
        e->msgs_out = atomic_load_explicit(&c->msgs_out, memory_order_relaxed);
        e->msgs_in = atomic_load_explicit(&c->msgs_in, memory_order_relaxed);
        e->memory = atomic_load_explicit(&c->mem, memory_order_relaxed);
        e->channels = atomic_load_explicit(&c->nchan, memory_order_relaxed);
        e->patterns = atomic_load_explicit(&c->npat, memory_order_relaxed);
        pthread_mutex_lock(&c->mu);
        e->proto = c->proto;
        e->flags = (c->authed ? SB_BRIDGE_AUTHED : 0u) | (c->paused ? SB_BRIDGE_PAUSED : 0u);
        memcpy(e->name, c->name, sizeof(e->name));
        pthread_mutex_unlock(&c->mu);
        snprintf(e->peer, sizeof(e->peer), "%.47s", c->peer);
        subs_text(c, e->subs, sizeof(e->subs));
        k++;
    }
    SBD_TSAN_READ_DONE();
    urcu_memb_read_unlock();
    out->count = k;
    return k;
}
