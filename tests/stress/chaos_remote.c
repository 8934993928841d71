/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chaos test's remote subscribers (chaos.h): JSON-lines connections
 * to the daemon's bridge, each delivery checked against the connection's
 * position and the sentinel's per-seq map.
 */
#include "stress/chaos.h"

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

int ch_remote_run(void *arg)
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
