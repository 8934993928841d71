/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client side of the bridge tests (bridgetest.h): raw TCP connections
 * read byte-exact, RESP replies and JSON deliveries parsed from them, and
 * hiredis connections, each closed by bt_teardown() if a test left it.
 */
#include "bridgetest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

/* -------------------------------------------------------------- escaping */

/* @p p as C-escaped text into a static buffer (for failure messages). */
const char *esc(const void *p, size_t n)
{
    static char out[4][2048];
    static unsigned k;
    const unsigned char *s = p;
    char *o = out[k++ % 4];
    size_t m = 0;

    for (size_t i = 0; i < n && m + 8 < sizeof(out[0]); i++) {
        if (s[i] == '\r')
            m += (size_t)sprintf(o + m, "\\r");
        else if (s[i] == '\n')
            m += (size_t)sprintf(o + m, "\\n");
        else if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\')
            m += (size_t)sprintf(o + m, "\\x%02x", s[i]);
        else
            o[m++] = (char)s[i];
    }
    if (m + 8 >= sizeof(out[0]))
        m += (size_t)sprintf(o + m, "...");
    o[m] = '\0';
    return o;
}

/* ------------------------------------------------------- TCP connections */

struct bc *bt_conns[BT_CONNS_MAX];
redisContext *bt_redis[BT_REDIS_MAX];

void bc_close(struct bc *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < BT_CONNS_MAX; i++)
        if (bt_conns[i] == c)
            bt_conns[i] = NULL;
    close(c->fd);
    free(c->buf);
    free(c);
}

/* Connect to the bridge; @p rcvbuf > 0 sets SO_RCVBUF first, @p mss > 0
 * TCP_MAXSEG (the daemon's socket then starts with a small send buffer). */
struct bc *bc_open_sock(int rcvbuf, int mss)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)bt_port)};
    struct bc *c = calloc(1, sizeof(*c));
    int one = 1;

    assert_non_null(c);
    c->cap = 131072; /* never NULL: memchr() and memcmp() on it even when empty */
    c->buf = malloc(c->cap);
    assert_non_null(c->buf);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    if (mss > 0)
        assert_int_equal(setsockopt(c->fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)), 0);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        fail_msg("connect to bridge port %d: %s", bt_port, strerror(errno));
    BT_TRACK(bt_conns, c);
    return c;
}

struct bc *bc_open_rcvbuf(int rcvbuf)
{
    return bc_open_sock(rcvbuf, 0);
}

struct bc *bc_open(void)
{
    return bc_open_sock(0, 0);
}

/* Send all @p len bytes. @return 0, or -errno when the connection
 * refused them (-EPIPE if send() took nothing). */
int bc_send_all(struct bc *c, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void bc_send(struct bc *c, const void *data, size_t len)
{
    int rc = bc_send_all(c, data, len);

    if (rc < 0)
        fail_msg("send: %s", strerror(-rc));
}

/* Send what the daemon may refuse to read (it closes after a protocol
 * error): a reset is not a failure here. */
void bc_send_lossy(struct bc *c, const void *data, size_t len)
{
    (void)bc_send_all(c, data, len);
}

void bc_send_str(struct bc *c, const char *s)
{
    bc_send(c, s, strlen(s));
}

/* Read what comes before @p end (ms). @return bytes read, 0 at EOF (or a
 * reset), -1 when time ran out. */
ssize_t bc_fill(struct bc *c, int64_t end)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int64_t left = end - du_now_ms();
    ssize_t n;

    if (c->eof)
        return 0;
    if (left < 0 || poll(&p, 1, (int)left) <= 0)
        return -1;
    if (c->cap - c->len < 65536) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return bc_fill(c, end);
    if (n <= 0) {
        c->eof = 1;
        return 0;
    }
    c->len += (size_t)n;
    return n;
}

/* Wait until @p c holds @p n bytes. @return 0, or -1 (EOF or timeout). */
int bc_need(struct bc *c, size_t n, int ms)
{
    int64_t end = du_now_ms() + ms;

    while (c->len < n)
        if (bc_fill(c, end) <= 0)
            return -1;
    return 0;
}

void bc_consume(struct bc *c, size_t n)
{
    if (c->len > n)
        memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The next @p len bytes must be @p want. */
void bc_expect_at(struct bc *c, const void *want, size_t len, int line)
{
    int short_read = bc_need(c, len, BT_MS) < 0;
    size_t n = c->len < len + 80 ? c->len : len + 80; /* show a little more */

    if (short_read || memcmp(c->buf, want, len) != 0)
        fail_msg("line %d: got %s\"%s\"%s, want \"%s\"", line, short_read ? "only " : "",
                 esc(c->buf, n), c->eof ? " and EOF" : "", esc(want, len));
    bc_consume(c, len);
}

/* Read and drop everything until the daemon closes @p c, within @p ms.
 * @return 1 if it closed (*dropped: bytes dropped), 0 if not. */
int bc_wait_eof(struct bc *c, int ms, size_t *dropped)
{
    int64_t end = du_now_ms() + ms;
    size_t total = 0;

    for (;;) {
        total += c->len;
        c->len = 0;
        if (c->eof)
            break;
        if (bc_fill(c, end) < 0)
            break;
    }
    if (dropped != NULL)
        *dropped = total;
    return c->eof;
}

/* Nothing arrives on @p c for @p ms: the daemon sends nothing more yet. */
void bc_quiet_at(struct bc *c, int ms, int line)
{
    int64_t end = du_now_ms() + ms;

    while (c->len == 0 && !c->eof && bc_fill(c, end) > 0)
        ;
    if (c->len > 0 || c->eof)
        fail_msg("line %d: want silence, got \"%s\"%s", line, esc(c->buf, c->len),
                 c->eof ? " and EOF" : "");
}

/* The next line (without "\n"), terminated, in a buffer the caller frees. */
char *bc_line_at(struct bc *c, int line)
{
    int64_t end = du_now_ms() + BT_MS;
    char *nl, *s;

    while ((nl = memchr(c->buf, '\n', c->len)) == NULL)
        if (c->len > BT_LINE_MAX || bc_fill(c, end) <= 0)
            fail_msg("line %d: no complete line; got \"%s\"%s", line, esc(c->buf, c->len),
                     c->eof ? " and EOF" : "");
    s = malloc((size_t)(nl - c->buf) + 1);
    assert_non_null(s);
    memcpy(s, c->buf, (size_t)(nl - c->buf));
    s[nl - c->buf] = '\0';
    bc_consume(c, (size_t)(nl - c->buf) + 1);
    return s;
}

/* The next line must be exactly @p want. */
void bc_expect_line_at(struct bc *c, const char *want, int line)
{
    char *s = bc_line_at(c, line);

    if (strcmp(s, want) != 0)
        fail_msg("line %d: got line '%s', want '%s'", line, esc(s, strlen(s)),
                 esc(want, strlen(want)));
    free(s);
}

/* ----------------------------------------------------------------- RESP */

/* Parse one value at @p p (< end) into @p f, pointing into the buffer.
 * @return bytes taken, 0 if incomplete, -1 if malformed. */
long rf_parse(const char *p, const char *end, struct rframe *f, int depth)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *b = p;

    if (nl == NULL)
        return 0;
    if (nl == p || nl[-1] != '\r')
        return -1;
    memset(f, 0, sizeof(*f));
    f->type = *p;
    f->s = (char *)p + 1;
    f->len = (size_t)(nl - 1 - (p + 1));
    if (f->type == '+' || f->type == '-')
        return nl + 1 - b;
    f->n = strtoll(p + 1, NULL, 10);
    p = nl + 1;
    if (f->type == ':')
        return p - b;
    if (f->type == '$') {
        if (f->n < 0)
            return p - b;
        if (end - p < f->n + 2)
            return 0;
        f->s = (char *)p;
        f->len = (size_t)f->n;
        return p + f->n + 2 - b;
    }
    if (f->type != '*' || depth > 0 || f->n > RF_MAX)
        return -1;
    f->el = calloc(RF_MAX, sizeof(*f->el));
    assert_non_null(f->el);
    for (f->nel = 0; f->nel < f->n; f->nel++) {
        long k = rf_parse(p, end, &f->el[f->nel], 1);

        if (k <= 0) {
            free(f->el);
            f->el = NULL;
            return k;
        }
        p += k;
    }
    return p - b;
}

void rf_free(struct rframe *f)
{
    free(f->el);
    free(f->mem);
    memset(f, 0, sizeof(*f));
}

/* Fail the test on frame @p f (freed first), showing its last element. */
void rf_fail_at(struct rframe *f, const char *what, int line)
{
    char type = f->type;
    int nel = f->nel;
    const struct rframe *last = f->type == '*' && f->nel > 0 ? &f->el[f->nel - 1] : f;
    size_t len = last->len;
    const char *text = esc(last->s, len);

    rf_free(f);
    fail_msg("line %d: %s: '%c' reply of %d elements, the last '%s' (%zu bytes)", line, what, type,
             nel, text, len);
}

/* Read the next RESP reply on @p c into @p f (rf_free() it). */
void bc_frame_at(struct bc *c, struct rframe *f, int line)
{
    int64_t end = du_now_ms() + BT_MS;
    long k;

    while ((k = c->len > 0 ? rf_parse(c->buf, c->buf + c->len, f, 0) : 0) == 0)
        if (bc_fill(c, end) <= 0)
            fail_msg("line %d: no complete RESP reply; got \"%s\"%s", line, esc(c->buf, c->len),
                     c->eof ? " and EOF" : "");
    if (k < 0)
        fail_msg("line %d: malformed RESP: \"%s\"", line, esc(c->buf, c->len));
    /* Re-point into a private copy: the connection's buffer moves on. */
    f->mem = malloc((size_t)k);
    assert_non_null(f->mem);
    memcpy(f->mem, c->buf, (size_t)k);
    f->s = f->s != NULL ? f->mem + (f->s - c->buf) : NULL;
    for (int i = 0; i < f->nel; i++)
        f->el[i].s = f->mem + (f->el[i].s - c->buf);
    bc_consume(c, (size_t)k);
}

/* Is @p f a "message" push of @p topic (or a "pmessage" of @p pattern)? */
int rf_is_push(const struct rframe *f, const char *pattern, const char *topic)
{
    int k = pattern != NULL;

    if (f->type != '*' || f->nel != 3 + k)
        return 0;
    if (f->el[0].len != strlen(k ? "pmessage" : "message") ||
        memcmp(f->el[0].s, k ? "pmessage" : "message", f->el[0].len) != 0)
        return 0;
    if (k && (f->el[1].len != strlen(pattern) || memcmp(f->el[1].s, pattern, f->el[1].len) != 0))
        return 0;
    return f->el[1 + k].len == strlen(topic) &&
           memcmp(f->el[1 + k].s, topic, f->el[1 + k].len) == 0;
}

/* Read until the confirmation of @p kind with count @p count, skipping
 * message and pmessage pushes and the confirmations of @p kind before
 * it; other replies fail the test. */
void bc_skip_to_confirm_at(struct bc *c, const char *kind, long long count, int line)
{
    for (;;) {
        struct rframe f;
        int push, same, hit;

        bc_frame_at(c, &f, line);
        if (f.type != '*' || f.nel < 3 || f.el[0].type != '$')
            rf_fail_at(&f, "want a push or a confirmation", line);
        push = (f.el[0].len == 7 && memcmp(f.el[0].s, "message", 7) == 0) ||
               (f.el[0].len == 8 && memcmp(f.el[0].s, "pmessage", 8) == 0);
        same = f.el[0].len == strlen(kind) && memcmp(f.el[0].s, kind, f.el[0].len) == 0 &&
               f.el[2].type == ':';
        hit = same && f.el[2].n == count;
        rf_free(&f);
        if (hit)
            return;
        if (!push && !same)
            fail_msg("line %d: want '%s' %lld, got another reply", line, kind, count);
    }
}

/* The next line on @p c must be a delivery of @p topic: into @p m. */
void bc_jmsg_at(struct bc *c, const char *topic, struct jmsg *m, int line)
{
    char *s = bc_line_at(c, line);
    struct jobj o;
    const char *v, *p, *b;
    size_t len = 0, blen = 0;

    memset(m, 0, sizeof(*m));
    if (jobj_parse(s, &o) < 0 || (v = jobj_get(&o, "topic", NULL)) == NULL || strcmp(v, topic) != 0)
        fail_msg("line %d: want a delivery of '%s', got '%s'", line, topic, esc(s, strlen(s)));
    p = jobj_get(&o, "payload", &len);
    b = jobj_get(&o, "payload_base64", &blen);
    if (jobj_get(&o, "seq", NULL) == NULL || jobj_get(&o, "ts", NULL) == NULL ||
        (p == NULL) == (b == NULL) || len > sizeof(m->data) || blen > sizeof(m->data))
        fail_msg("line %d: malformed delivery '%s'", line, esc(s, strlen(s)));
    m->seq = strtoull(jobj_get(&o, "seq", NULL), NULL, 10);
    m->ts = strtoull(jobj_get(&o, "ts", NULL), NULL, 10);
    v = jobj_get(&o, "lost", NULL);
    m->lost = v != NULL ? strtoull(v, NULL, 10) : 0;
    m->b64 = b != NULL;
    if (p != NULL) {
        memcpy(m->data, p, len);
        m->len = len;
    } else {
        long n = b64_decode(m->data, b, blen);

        if (n < 0)
            fail_msg("line %d: bad base64 in '%s'", line, esc(s, strlen(s)));
        m->len = (size_t)n;
    }
    free(o.mem);
    free(s);
}

/* ---------------------------------------------------------------- hiredis */

/* A hiredis connection to the bridge on 127.0.0.1:@p port, whose connect,
 * reads and writes time out after @p ms: a hang fails the test. */
redisContext *bu_redis_open(int port, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", port, tv);

    if (r == NULL || r->err)
        fail_msg("hiredis connect: %s", r != NULL ? r->errstr : "out of memory");
    assert_int_equal(redisSetTimeout(r, tv), REDIS_OK);
    return r;
}

redisContext *rd_open(void)
{
    redisContext *r = bu_redis_open(bt_port, BT_MS);

    BT_TRACK(bt_redis, r);
    return r;
}

void rd_close(redisContext *r)
{
    for (int i = 0; i < BT_REDIS_MAX; i++)
        if (bt_redis[i] == r)
            bt_redis[i] = NULL;
    redisFree(r);
}

/* The next reply (a push, or the reply to an appended command). */
redisReply *rd_get_at(redisContext *r, int line)
{
    void *rep = NULL;

    if (redisGetReply(r, &rep) != REDIS_OK || rep == NULL)
        fail_msg("line %d: hiredis: no reply: %s", line, r->errstr);
    return rep;
}

/* @p rep must be an array of @p n elements whose first is the bulk @p kind
 * and whose second is @p name; with @p count >= 0, its last is that integer. */
void rd_check_array_at(redisReply *rep, size_t n, const char *kind, const char *name,
                       long long count, int line)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n ||
        rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, kind) != 0 ||
        rep->element[1]->type != REDIS_REPLY_STRING || strcmp(rep->element[1]->str, name) != 0 ||
        (count >= 0 && (rep->element[n - 1]->type != REDIS_REPLY_INTEGER ||
                        rep->element[n - 1]->integer != count)))
        fail_msg("line %d: want [%s, %s, ...] of %zu elements (type %d, %zu elements)", line, kind,
                 name, n, rep->type, rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0);
}

/* A message push on @p r must be @p topic with @p len bytes of @p data. */
void rd_expect_msg_at(redisContext *r, const char *topic, const void *data, size_t len, int line)
{
    redisReply *rep = rd_get_at(r, line);

    rd_check_array_at(rep, 3, "message", topic, -1, line);
    if (rep->element[2]->type != REDIS_REPLY_STRING || rep->element[2]->len != len ||
        memcmp(rep->element[2]->str, data, len) != 0)
        fail_msg("line %d: message '%s', want '%s'", line,
                 esc(rep->element[2]->str, rep->element[2]->len), esc(data, len));
    freeReplyObject(rep);
}

/* Run a command whose reply must be the integer @p want. */
void rd_expect_int_at(redisReply *rep, long long want, int line)
{
    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER || rep->integer != want)
        fail_msg("line %d: want integer %lld, got type %d '%s' %lld", line, want,
                 rep != NULL ? rep->type : -1, rep != NULL && rep->str ? rep->str : "",
                 rep != NULL ? rep->integer : 0);
    freeReplyObject(rep);
}
