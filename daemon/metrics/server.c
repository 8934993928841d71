/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics endpoint's thread (metrics.h): a poll() loop over a wake-up
 * pipe, the listening socket and at most SBD_METRICS_CONNS_MAX
 * connections. Each connection sends one request (http.h) within
 * SBD_METRICS_TIMEOUT_MS, gets one response and is closed. Access is the
 * bridge's: with --metrics-token-file every request needs
 * "Authorization: Bearer TOKEN" (401 without it); without, only loopback
 * peers whose uid the bus allows (sbd_bridge_peer_allowed()) get an answer
 * other than 403, which says why, as the log does (at most once in
 * SBM_REFUSED_WARN_NS).
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access.h"
#include "bridge/bridge.h"
#include "collect.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "util/clock.h"

#define SBM_BACKLOG 64
/* Out of descriptors (or memory): the listening socket is left alone this
 * long, since accepting again at once would fail again, and poll() would
 * report the waiting connection at once, round and round. The warning is
 * logged at most once in SBM_ACCEPT_WARN_NS. */
#define SBM_ACCEPT_PAUSE_NS (100ull * 1000 * 1000)
#define SBM_ACCEPT_WARN_NS  (10ull * 1000 * 1000 * 1000)
/* A refused peer is logged at most this often. */
#define SBM_REFUSED_WARN_NS (10ull * 1000 * 1000 * 1000)

struct sbm_conn {
    int fd;               /* -1: free */
    int allowed;          /* its peer passes without a token (no token configured) */
    char why[256];        /* else why not, for the 403 */
    int writing;          /* its response is in out */
    uint64_t deadline_ns; /* CLOCK_MONOTONIC: closed past it */
    size_t in_len, out_off;
    struct sbm_out out;
    char in[SBM_HTTP_REQ_MAX];
};

struct sbd_metrics {
    const struct sbd_config *cfg;
    struct sbm_source src;
    int lfd;
    uint64_t accept_resume_ns; /* sb_mono_ns() before which lfd is not polled; 0: polled */
    uint64_t accept_warn_ns;   /* sb_mono_ns() before which no accept warning is logged */
    uint64_t refused_warn_ns;  /* sb_mono_ns() before which no refused peer is logged */
    int wake[2];               /* a byte written to wake[1] stops the thread */
    pthread_t thread;
    struct sbm_scratch *scratch;
    struct sbm_out body;
    char listen[64];
    struct sbm_conn conns[SBD_METRICS_CONNS_MAX];
};

static void conn_close(struct sbm_conn *c)
{
    char drain[512];

    /* Read what the client sent past its request, so that closing does
     * not reset the connection before it read the response. Bounded. */
    for (int i = 0; i < 4 && recv(c->fd, drain, sizeof(drain), MSG_DONTWAIT) > 0; i++)
        ;
    close(c->fd);
    c->fd = -1;
    sbm_out_free(&c->out);
}

/* Put response @p status (@p reason) with @p body (@p blen bytes, of
 * type @p ctype) and @p extra header lines in c->out; @p head: no body. */
static void conn_respond(struct sbm_conn *c, int status, const char *reason, const char *ctype,
                         const char *extra, const char *body, size_t blen, int head)
{
    c->out.len = 0;
    c->out.oom = 0;
    sbm_out_fmt(&c->out,
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: "
                "close\r\n\r\n",
                status, reason, ctype, blen, extra);
    if (!head)
        sbm_out_put(&c->out, body, blen);
    c->writing = 1;
    c->out_off = 0;
    c->deadline_ns = sb_deadline(SBD_METRICS_TIMEOUT_MS * 1000000ll);
}

/* A short text response: the status, and @p why if not NULL. */
static void conn_text(struct sbm_conn *c, int status, const char *reason, const char *extra,
                      const char *why, int head)
{
    char body[384];
    int n = snprintf(body, sizeof(body), "%d %s%s%s\n", status, reason, why != NULL ? ": " : "",
                     why != NULL ? why : "");

    if ((size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    conn_respond(c, status, reason, "text/plain; charset=utf-8", extra, body, (size_t)n, head);
}

/* Is the request @p r let in (the module's comment)? */
static int conn_allowed(const struct sbd_metrics *m, const struct sbm_conn *c,
                        const struct sbm_http_req *r)
{
    if (m->cfg->metrics_token[0] == '\0')
        return c->allowed;
    return r->token != NULL && sbd_access_token_ok(m->cfg->metrics_token, r->token, r->token_len);
}

/* Answer 200 with a scrape (500 without memory for it). */
static void conn_metrics(struct sbd_metrics *m, struct sbm_conn *c, int head)
{
    m->body.len = 0;
    m->body.oom = 0;
    if (sbm_collect(&m->src, &m->scratch, &m->body) < 0)
        conn_text(c, 500, "Internal Server Error", "", NULL, head);
    else
        conn_respond(c, 200, "OK", SBM_EXPO_CONTENT_TYPE, "", m->body.p, m->body.len, head);
}

/* Answer the request c->in holds, once complete. */
static void conn_request(struct sbd_metrics *m, struct sbm_conn *c)
{
    struct sbm_http_req r;
    int rc = sbm_http_parse(c->in, c->in_len, &r), head;

    if (rc == SBM_HTTP_MORE)
        return;
    head = rc == SBM_HTTP_OK && r.method == SBM_HTTP_HEAD;
    if (rc == SBM_HTTP_BAD)
        conn_text(c, 400, "Bad Request", "", NULL, 0);
    else if (rc == SBM_HTTP_LARGE)
        conn_text(c, 431, "Request Header Fields Too Large", "", NULL, 0);
    else if (!conn_allowed(m, c, &r)) {
        /* With a token: none or a wrong one; without: a peer refused. */
        if (m->cfg->metrics_token[0] != '\0')
            conn_text(c, 401, "Unauthorized", "WWW-Authenticate: Bearer\r\n", NULL, head);
        else
            conn_text(c, 403, "Forbidden", "", c->why, head);
    } else if (!r.metrics)
        conn_text(c, 404, "Not Found", "", NULL, head);
    else if (r.method == SBM_HTTP_OTHER)
        conn_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", NULL, 0);
    else
        conn_metrics(m, c, head);
}

/* Read what @p c sent; answer it once complete. */
static void conn_read(struct sbd_metrics *m, struct sbm_conn *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* Gone, or closed its side before a whole request: nobody to answer. */
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    conn_request(m, c);
}

/* Write what is left of @p c's response; close it once written. */
static void conn_write(struct sbm_conn *c)
{
    ssize_t n;

    /* No memory for the response: nothing to send. */
    if (c->out.oom) {
        conn_close(c);
        return;
    }
    n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->out_off += (size_t)n;
    if (c->out_off == c->out.len) {
        shutdown(c->fd, SHUT_WR);
        conn_close(c);
    }
}

/* Answer 503 to @p fd, best effort (a full socket buffer drops it). */
static void metrics_busy(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";

    (void)!send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* A place for a new connection: a free one, else that of the connection
 * waiting longest for its request, answered 503 and closed (connections
 * that never send one would otherwise keep every scrape out, each
 * reconnected as its timeout ends), else NULL: all are being answered. */
static struct sbm_conn *metrics_place(struct sbd_metrics *m)
{
    struct sbm_conn *old = NULL;

    for (unsigned i = 0; i < SBD_METRICS_CONNS_MAX; i++) {
        struct sbm_conn *c = &m->conns[i];

        if (c->fd < 0)
            return c;
        if (!c->writing && (old == NULL || c->deadline_ns < old->deadline_ns))
            old = c;
    }
    if (old != NULL) {
        metrics_busy(old->fd);
        conn_close(old);
    }
    return old;
}

/* Accept the connections waiting; past the limit, make room (metrics_place())
 * or answer 503 and close. */
static void metrics_accept(struct sbd_metrics *m)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    struct sbm_conn *c;
    int fd;

    for (;;) {
        fd = accept4(m->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                if (sb_mono_ns() >= m->accept_warn_ns) {
                    sbd_log(SBD_WARN, "metrics: accept: %s; scrapes wait", strerror(errno));
                    m->accept_warn_ns = sb_deadline(SBM_ACCEPT_WARN_NS);
                }
                m->accept_resume_ns = sb_deadline(SBM_ACCEPT_PAUSE_NS);
            } else if (errno != EAGAIN) {
                sbd_log(SBD_WARN, "metrics: accept: %s", strerror(errno));
            }
            return;
        }
        sl = sizeof(sa);
        c = metrics_place(m);
        if (c == NULL) {
            metrics_busy(fd);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->in_len = 0;
        c->writing = 0;
        c->allowed = 0;
        c->deadline_ns = sb_deadline(SBD_METRICS_TIMEOUT_MS * 1000000ll);
        /* One netlink round trip (at most a second) and maybe a user
         * database lookup: the other connections wait that long. */
        if (m->cfg->metrics_token[0] != '\0')
            continue;
        c->allowed = sbd_bridge_peer_allowed(m->cfg, fd, &sa, "metrics endpoint",
                                             "--metrics-token-file", c->why, sizeof(c->why));
        if (!c->allowed && sb_mono_ns() >= m->refused_warn_ns) {
            sbd_log(SBD_WARN, "metrics: a connection refused (403): %s", c->why);
            m->refused_warn_ns = sb_deadline(SBM_REFUSED_WARN_NS);
        }
    }
}

/* Close the connections past their deadline. */
static void metrics_expire(struct sbd_metrics *m)
{
    uint64_t now = sb_mono_ns();

    for (unsigned i = 0; i < SBD_METRICS_CONNS_MAX; i++)
        if (m->conns[i].fd >= 0 && now >= m->conns[i].deadline_ns)
            conn_close(&m->conns[i]);
}

/* One poll and what it found. @return 0 to go on, 1 to stop. */
static int metrics_step(struct sbd_metrics *m)
{
    struct pollfd pf[2 + SBD_METRICS_CONNS_MAX];
    struct sbm_conn *at[2 + SBD_METRICS_CONNS_MAX];
    nfds_t n = 2;

    pf[0] = (struct pollfd){.fd = m->wake[0], .events = POLLIN};
    if (m->accept_resume_ns != 0 && sb_mono_ns() >= m->accept_resume_ns)
        m->accept_resume_ns = 0;
    /* Paused (metrics_accept()): a negative fd is not polled. */
    pf[1] = (struct pollfd){.fd = m->accept_resume_ns == 0 ? m->lfd : -1, .events = POLLIN};
    for (unsigned i = 0; i < SBD_METRICS_CONNS_MAX; i++) {
        struct sbm_conn *c = &m->conns[i];

        if (c->fd < 0)
            continue;
        at[n] = c;
        pf[n++] = (struct pollfd){.fd = c->fd, .events = c->writing ? POLLOUT : POLLIN};
    }
    /* A quarter of a second: deadlines are checked at least that often. */
    if (poll(pf, n, 250) < 0 && errno != EINTR) {
        sbd_log(SBD_ERROR, "metrics: poll: %s; no more scrapes are served", strerror(errno));
        return 1;
    }
    if (pf[0].revents != 0)
        return 1;
    for (nfds_t i = 2; i < n; i++) {
        if (pf[i].revents == 0)
            continue;
        if (at[i]->writing)
            conn_write(at[i]);
        else
            conn_read(m, at[i]);
    }
    if (pf[1].revents != 0)
        metrics_accept(m);
    metrics_expire(m);
    return 0;
}

static void *metrics_main(void *arg)
{
    struct sbd_metrics *m = arg;

    urcu_memb_register_thread();
    while (metrics_step(m) == 0)
        ;
    urcu_memb_unregister_thread();
    return NULL;
}

static void metrics_free(struct sbd_metrics *m)
{
    for (unsigned i = 0; i < SBD_METRICS_CONNS_MAX; i++)
        if (m->conns[i].fd >= 0)
            conn_close(&m->conns[i]);
    if (m->lfd >= 0)
        close(m->lfd);
    if (m->wake[0] >= 0)
        close(m->wake[0]);
    if (m->wake[1] >= 0)
        close(m->wake[1]);
    sbm_collect_free(m->scratch);
    sbm_out_free(&m->body);
    free(m);
}

int sbd_metrics_start(const struct sbd_config *cfg, struct sbd_registry *reg,
                      struct sbd_bridge *bridge, struct sbd_fed *fed, struct sbd_metrics **out)
{
    struct sbd_metrics *m;
    int rc;

    *out = NULL;
    /* No --metrics: no endpoint. */
    if (!cfg->metrics)
        return 0;
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return -ENOMEM;
    m->cfg = cfg;
    m->src = (struct sbm_source){
        .reg = reg, .bridge = bridge, .fed = fed, .max_slots = cfg->metrics_max_slots};
    m->wake[0] = m->wake[1] = -1;
    for (unsigned i = 0; i < SBD_METRICS_CONNS_MAX; i++)
        m->conns[i].fd = -1;
    m->lfd = sbd_listen_tcp("metrics", cfg->metrics_host, cfg->metrics_port, SBM_BACKLOG, m->listen,
                            sizeof(m->listen));
    if (m->lfd < 0 || pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        rc = m->lfd < 0 ? m->lfd : -errno;
        metrics_free(m);
        return rc;
    }
    rc = pthread_create(&m->thread, NULL, metrics_main, m);
    if (rc != 0) {
        metrics_free(m);
        return -rc;
    }
    sbd_log(SBD_INFO, "metrics: serving http://%s/metrics (%s)", m->listen,
            cfg->metrics_token[0] != '\0' ? "bearer token" : "local peers the bus allows");
    *out = m;
    return 0;
}

void sbd_metrics_stop(struct sbd_metrics *m)
{
    char b = 1;

    if (m == NULL)
        return;
    (void)!write(m->wake[1], &b, 1);
    pthread_join(m->thread, NULL);
    metrics_free(m);
}
