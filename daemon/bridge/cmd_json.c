/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON-lines commands (cmd.h, docs/protocol.md): AUTH, PING, SUB,
 * UNSUB and PUB, one object a line, each answered by one reply line.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "admit.h"
#include "json.h"
#include "link.h"
#include "publish.h"
#include "reply.h"

static void json_auth(struct sbd_bridge *b, struct sbb_conn *c, const struct sbb_jcommand *q)
{
    if (b->cfg->bridge_token[0] == '\0') {
        sbb_reply_json_err(c, "AUTH", &q->id, "no token is configured: AUTH is not needed");
    } else if (q->token.p == NULL || !sbb_admit_token_ok(b, q->token.p, q->token.len)) {
        sbb_reply_json_err(c, "AUTH", &q->id, "invalid token");
        sbb_admit_auth_wrong(b, c);
    } else {
        sbb_admit_auth_ok(c);
        sbb_reply_json(c, "AUTH", &q->id, 1, "");
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
        struct sbb_sub_req r = {
            .name = name, .len = q->topic.len, .why = why, .why_len = sizeof(why)};

        n = sbb_link_subscribe(io->b, c, &r) < 0 ? -1 : (long long)c->nsubs;
        s = r.sub; /* NULL after an error */
    } else if (q->cmd == SBB_J_UNSUB) {
        struct sbb_sub *u = sbb_link_sub_find(c, 0, name, q->topic.len);

        if (u != NULL)
            sbb_link_sub_del(u);
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

        if (sbb_publish(io, c, &pub) == SBB_RUN_PAUSE)
            return SBB_RUN_PAUSE;
        n = pub.receivers;
    }
    if (n < 0) {
        sbb_reply_json_err(c, cmd, &q->id, why);
        return SBB_RUN_OK;
    }
    snprintf(extra, sizeof(extra), ",\"topic\":\"%s\",\"%s\":%lld", name,
             q->cmd == SBB_J_PUB ? "receivers" : "subscriptions", n);
    sbb_reply_json(c, cmd, &q->id, 1, extra);
    if (s != NULL)
        sbb_reply_sub_go(io, s);
    return SBB_RUN_OK;
}

int sbb_cmd_json_run(struct sbb_io *io, struct sbb_conn *c, const char *line, size_t len)
{
    static const char *const names[] = {
        [SBB_J_SUB] = "SUB",   [SBB_J_UNSUB] = "UNSUB", [SBB_J_PUB] = "PUB",
        [SBB_J_PING] = "PING", [SBB_J_AUTH] = "AUTH",
    };
    struct sbd_bridge *b = io->b;
    char err[200], name[SHMBUS_TOPIC_NAME_MAX + 1];
    struct sbb_jcommand q;
    const char *cmd;

    if (sbb_json_parse(line, len, io->jscratch, &q, err, sizeof(err)) < 0) {
        sbb_reply_json_err(c, NULL, NULL, err);
        return SBB_RUN_OK;
    }
    cmd = names[q.cmd];
    if (q.cmd == SBB_J_AUTH)
        json_auth(b, c, &q);
    else if (b->cfg->bridge_token[0] != '\0' && !c->authed)
        sbb_reply_json_err(c, cmd, &q.id,
                           "authentication required: send AUTH with the token first");
    else if (q.cmd == SBB_J_PING)
        sbb_reply_json(c, cmd, &q.id, 1, "");
    else if (q.topic.p == NULL)
        sbb_reply_json_err(c, cmd, &q.id, "missing \"topic\"");
    else if (sbb_publish_topic_name(q.topic.p, q.topic.len, name) < 0)
        sbb_reply_json_err(c, cmd, &q.id, SBB_BAD_NAME_TEXT);
    else
        return json_topic(io, c, &q, cmd, name);
    return SBB_RUN_OK;
}
