/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who may stay on the bridge (admit.h): the peer check's verdict
 * at accept, and the closes that guard the bridge against what is not a
 * client it serves: a peer of another uid or host without the token, a
 * browser a web page made post to the port, a token guesser, a command
 * dripped in too slowly to ever finish (slow loris).
 */
#include "admit.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "access.h"
#include "conn.h"
#include "state.h"
#include "log.h"

/* The window SBB_WARN_PER_S counts lines in: a second. */
#define SBB_WARN_WINDOW_MS 1000u
/* Printable bytes of an HTTP request line quoted in its log line. */
#define SBB_HTTP_QUOTE_MAX 80u

static const char *const warn_what[SBB_WARN_KINDS] = {
    [SBB_WARN_REFUSED] = "refused connections",
    [SBB_WARN_HTTP] = "HTTP requests closed",
    [SBB_WARN_AUTH] = "connections closed for wrong tokens",
    [SBB_WARN_CMD] = "commands not complete in time",
};

/* The longest first word looked at: methods and header names are shorter. */
#define HTTP_WORD_MAX 64

/* A character of an HTTP method or header name (RFC 9110 token, less the
 * punctuation no real name uses). */
static int http_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

/* A header name: token characters and a final ':'. */
static int http_header(const char *name, size_t len)
{
    if (len < 2 || name[len - 1] != ':')
        return 0;
    for (size_t i = 0; i < len - 1; i++)
        if (!http_tchar(name[i]))
            return 0;
    return 1;
}

/* An HTTP method, as the first word of a request line. */
static int http_method(const char *name, size_t len)
{
    static const char *const methods[] = {"GET",    "POST",  "PUT",   "HEAD",   "OPTIONS",
                                          "DELETE", "PATCH", "TRACE", "CONNECT"};

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i]) == len && strncasecmp(methods[i], name, len) == 0)
            return 1;
    return 0;
}

int sbb_admit_http_word(const char *name, size_t len)
{
    /* Only the two Redis closes on later: "GET" is a Redis command (a
     * client's mistake gets an error reply, not a close). */
    return http_header(name, len) || (len == 4 && strncasecmp(name, "POST", 4) == 0);
}

int sbb_admit_http_like(const char *buf, size_t len)
{
    size_t n = 0;

    while (n < len && n <= HTTP_WORD_MAX && http_tchar(buf[n]))
        n++;
    if (n < len && buf[n] == ':')
        return http_header(buf, n + 1);
    if (n == len)
        return n <= HTTP_WORD_MAX ? -1 : 0; /* the word goes on */
    /* A method is followed by a space (the request target comes next). */
    return buf[n] == ' ' && http_method(buf, n);
}

/* Log the lines of @p kind its last second did not, if it is over. */
static void warn_flush(struct sbd_bridge *b, enum sbb_warn_kind kind, uint64_t now)
{
    struct sbb_warn_limit *w = &b->warn[kind];

    if (now - w->start_ms < SBB_WARN_WINDOW_MS)
        return; /* the second goes on */
    if (w->suppressed > 0)
        sbd_log(SBD_WARN, "bridge: %llu more %s in %llu ms, not logged (at most %u a second)",
                (unsigned long long)w->suppressed, warn_what[kind],
                (unsigned long long)(now - w->start_ms), SBB_WARN_PER_S);
    w->start_ms = now;
    w->lines = 0;
    w->suppressed = 0;
}

/* A WARN line of @p kind, if its second has room. */
static void access_warn(struct sbd_bridge *b, enum sbb_warn_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void access_warn(struct sbd_bridge *b, enum sbb_warn_kind kind, const char *fmt, ...)
{
    struct sbb_warn_limit *w = &b->warn[kind];
    char line[512];
    va_list ap;

    warn_flush(b, kind, sbb_now_ms());
    if (w->lines >= SBB_WARN_PER_S) {
        w->suppressed++;
        return;
    }
    w->lines++;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    sbd_log(SBD_WARN, "%s", line);
}

void sbb_admit_tick(struct sbd_bridge *b)
{
    uint64_t now = sbb_now_ms();

    for (int k = 0; k < SBB_WARN_KINDS; k++)
        warn_flush(b, (enum sbb_warn_kind)k, now);
}

void sbb_admit_judge(struct sbd_bridge *b, struct sbb_conn *c, const struct sockaddr_storage *sa)
{
    char why[256];

    /* With a token, the token decides (AUTH), whoever the peer is. */
    if (b->cfg->bridge_token[0] != '\0')
        return;
    sbb_peer_check(b->cfg, c->fd, sa, &c->who);
    c->authed = c->who.verdict == SBB_PEER_OK;
    c->refused = !c->authed;
    if (c->authed)
        return;
    /* relaxed: a counter. Counted here, once, whether it then sends
     * something, nothing, or hangs up. */
    atomic_fetch_add_explicit(&b->count.refused, 1, memory_order_relaxed);
    sbb_peer_why(&c->who, "bridge", "--bridge-token-file", why, sizeof(why));
    access_warn(b, SBB_WARN_REFUSED, "bridge: connection %llu from %s refused: %s",
                (unsigned long long)c->id, c->peer, why);
}

void sbb_admit_refuse(struct sbb_conn *c)
{
    char why[256], resp[272];

    sbb_peer_why(&c->who, "bridge", "--bridge-token-file", why, sizeof(why));
    snprintf(resp, sizeof(resp), "NOPERM %s", why);
    sbb_conn_fail(c, resp, why);
}

void sbb_admit_http(struct sbd_bridge *b, struct sbb_conn *c, const char *p, size_t left)
{
    size_t n = 0;

    while (n < left && n < SBB_HTTP_QUOTE_MAX && p[n] >= ' ' && p[n] <= '~')
        n++;
    /* relaxed: a counter. */
    atomic_fetch_add_explicit(&b->count.proto_errors, 1, memory_order_relaxed);
    access_warn(b, SBB_WARN_HTTP,
                "bridge: connection %llu (%s) sent HTTP (\"%.*s\") %s, maybe a web page made a "
                "browser post to the bridge: closed, %s",
                (unsigned long long)c->id, c->peer, (int)n, p,
                c->started ? "after commands that ran" : "first",
                c->started ? "nothing from it on ran" : "nothing it sent ran");
    sbb_conn_finish(c);
}

/* Redis lets a client guess forever; NATS closes at the first wrong
 * credential; a few tries forgive a typo, and each batch of guesses costs
 * a new connection and a log line. */
void sbb_admit_auth_wrong(struct sbd_bridge *b, struct sbb_conn *c)
{
    /* relaxed: a counter. */
    atomic_fetch_add_explicit(&b->count.auth_failed, 1, memory_order_relaxed);
    if (++c->auth_fails < SBB_AUTH_TRIES)
        return;
    access_warn(b, SBB_WARN_AUTH, "bridge: connection %llu (%s): %u wrong tokens: closed",
                (unsigned long long)c->id, c->peer, c->auth_fails);
    sbb_conn_finish(c);
}

/* A slow-loris client holds a connection and its buffer with a command
 * it never ends. */
void sbb_admit_cmd_expired(struct sbd_bridge *b, struct sbb_conn *c)
{
    unsigned ms = b->cfg->bridge_cmd_ms;
    char resp[128];

    /* relaxed: a counter. */
    atomic_fetch_add_explicit(&b->count.proto_errors, 1, memory_order_relaxed);
    access_warn(b, SBB_WARN_CMD,
                "bridge: connection %llu (%s): a command of %zu bytes so far not complete "
                "after %u ms (--bridge-cmd-timeout): closed",
                (unsigned long long)c->id, c->peer, c->in_len, ms);
    snprintf(resp, sizeof(resp), "ERR command not complete within %u ms (--bridge-cmd-timeout)",
             ms);
    sbb_conn_fail(c, resp, "command not complete in time (--bridge-cmd-timeout)");
}

int sbb_admit_token_ok(const struct sbd_bridge *b, const char *p, size_t len)
{
    return sbd_access_token_ok(b->cfg->bridge_token, p, len);
}

void sbb_admit_auth_ok(struct sbb_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->authed = 1;
    pthread_mutex_unlock(&c->mu);
}
