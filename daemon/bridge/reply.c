/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command replies (reply.h). CLIENT REPLY OFF and SKIP are honoured here,
 * except for (un)subscribe confirmations, which Redis pushes whatever it
 * says.
 */
#include "reply.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "link.h"
#include "out.h"
#include "resp.h"

/* Move the replies gathered for one connection to its output: one lock
 * for all the replies to a read's pipelined commands. */
void sbb_reply_flush(struct sbb_io *io)
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
void sbb_reply(struct sbb_conn *c, const void *data, size_t len)
{
    struct sbb_io *io = &c->b->io;

    if (c->reply == SBB_REPLY_OFF)
        return;
    if (c->reply == SBB_REPLY_SKIP) {
        c->reply = SBB_REPLY_ON;
        return;
    }
    if (io->rep_conn != c || io->rep_len + len > SBB_REP_MAX)
        sbb_reply_flush(io);
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

void sbb_reply_str(struct sbb_conn *c, const char *s)
{
    sbb_reply(c, s, strlen(s));
}

/* "-ERR ...\r\n" from a format. */
void sbb_reply_err(struct sbb_conn *c, const char *fmt, ...)
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
    sbb_reply(c, buf, (size_t)n + 2);
}

void sbb_reply_int(struct sbb_conn *c, long long v)
{
    char buf[24];

    sbb_reply(c, buf, sbb_resp_int(buf, v));
}

void sbb_reply_bulk(struct sbb_conn *c, const void *data, size_t len)
{
    char small[256];
    size_t n = sbb_resp_bulk_len(len);
    char *buf = n <= sizeof(small) ? small : malloc(n);

    if (buf == NULL) {
        sbb_reply_str(c, "-ERR out of memory\r\n");
        return;
    }
    sbb_resp_bulk(buf, data, len);
    sbb_reply(c, buf, n);
    if (buf != small)
        free(buf);
}

/* A (p)(un)subscribe confirmation: [kind, name or nil, count]. */
void sbb_reply_sub(struct sbb_conn *c, const char *kind, const char *name, size_t len)
{
    char buf[64 + 2 * SBB_PATTERN_MAX];
    char *o = buf;
    enum sbb_reply_mode reply_mode;

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
    c->reply = SBB_REPLY_ON;
    sbb_reply(c, buf, (size_t)(o - buf));
    c->reply = reply_mode;
}

/* A JSON reply line: {"ok":..,"command":..,["id":..,]<extra>}. @p extra is
 * either "" or starts with a comma. */
void sbb_reply_json(struct sbb_conn *c, const char *cmd, const struct sbb_jstr *id, int ok,
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
    sbb_reply(c, buf, (size_t)n);
}

/* A JSON error reply with a message. */
void sbb_reply_json_err(struct sbb_conn *c, const char *cmd, const struct sbb_jstr *id,
                        const char *msg)
{
    char extra[16 + SBB_JSON_STR_MAX(400)];
    size_t len = strnlen(msg, 400);

    memcpy(extra, ",\"error\":", 9);
    extra[9 + sbb_json_str(extra + 9, msg, len)] = '\0';
    sbb_reply_json(c, cmd, id, 0, extra);
}

/* After a subscription's reply: start its deliveries. */
void sbb_reply_sub_go(struct sbb_io *io, struct sbb_sub *s)
{
    sbb_reply_flush(io);
    sbb_link_sub_go(s);
}
