/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The RESP2 commands (cmd.h, docs/protocol.md): the Redis pub/sub
 * commands and the few others client libraries send on connecting, each
 * checked against its table entry (arity, before AUTH, in subscribed
 * mode) in Redis's order, with Redis's error texts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd.h"
#include "conn.h"
#include "admit.h"
#include "link.h"
#include "publish.h"
#include "reply.h"

/* The Redis version HELLO and INFO report to client libraries. */
#define SBB_REDIS_VERSION "7.0.0"

/* Bytes of a client's word quoted in an error text: a command, subcommand
 * or option name; an argument of an unknown command, whose text stops
 * taking arguments past SBB_UNKNOWN_TEXT bytes. */
#define SBB_QUOTE_NAME   64u
#define SBB_QUOTE_ARG    32u
#define SBB_UNKNOWN_TEXT 300

/* The length to print of argument @p i, at most @p max bytes. */
static int arg_quote(const struct sbb_argv *a, unsigned i, size_t max)
{
    return (int)(a->argl[i] > max ? max : a->argl[i]);
}

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
    sbb_reply_err(c, "-ERR wrong number of arguments for '%s' command", name);
}

/* SUBSCRIBE and PSUBSCRIBE. A pattern not yet linked to every topic that
 * existed when it came (link.h) leaves the command unread and the
 * connection paused, its later arguments not yet run: SBB_RUN_PAUSE. The
 * command runs again from that argument (c->link_arg) in a later pass,
 * and the pattern's reply goes out once its links are made. */
static int resp_subscribe(struct sbb_io *io, struct sbb_conn *c, const struct sbb_argv *a,
                          int pattern)
{
    const char *kind = pattern ? "psubscribe" : "subscribe";
    char why[256], name[SHMBUS_TOPIC_NAME_MAX + 1];
    struct sbb_sub_req r;
    struct sbb_sub *s;

    for (unsigned i = c->linking != NULL ? c->link_arg : 1; i < a->argc; i++) {
        const char *p = a->argv[i];
        size_t len = a->argl[i];
        int rc;

        if (!pattern && sbb_publish_topic_name(p, len, name) < 0) {
            sbb_reply_err(c, "-ERR %s", SBB_BAD_NAME_TEXT);
            continue;
        }
        if (pattern && (len == 0 || len > SBB_PATTERN_MAX || memchr(p, '\0', len) != NULL)) {
            sbb_reply_err(c, "-ERR invalid pattern: 1 to %u bytes, no NUL", SBB_PATTERN_MAX);
            continue;
        }
        /* A pattern's links being made: its subscription runs again. */
        r = (struct sbb_sub_req){.pattern = pattern,
                                 .name = p,
                                 .len = len,
                                 .sub = c->linking,
                                 .why = why,
                                 .why_len = sizeof(why)};
        c->linking = NULL;
        rc = r.sub != NULL ? 0 : sbb_link_subscribe(io->b, c, &r);
        s = r.sub;
        if (rc == 0)
            rc = sbb_link_sub_ready(s, why, sizeof(why));
        if (rc > 0) {
            c->linking = s;
            c->link_arg = i;
            return SBB_RUN_PAUSE;
        }
        if (rc < 0) {
            sbb_reply_err(c, "-ERR %s", why);
        } else {
            sbb_reply_sub(c, kind, p, len);
            sbb_reply_sub_go(io, s);
        }
    }
    return SBB_RUN_OK;
}

static void resp_unsubscribe(struct sbb_conn *c, const struct sbb_argv *a, int pattern)
{
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    struct sbb_sub *s;
    int any = 0;

    if (a->argc == 1) {
        sbb_rlist_each (s, nx, &c->subs, struct sbb_sub, cnode) {
            char name[SBB_PATTERN_MAX + 1];
            size_t len = s->len;

            if (s->pattern != pattern)
                continue;
            memcpy(name, s->name, len);
            sbb_link_sub_del(s);
            sbb_reply_sub(c, kind, name, len);
            any = 1;
        }
        if (!any)
            sbb_reply_sub(c, kind, NULL, 0);
        return;
    }
    for (unsigned i = 1; i < a->argc; i++) {
        if (a->argl[i] > SBB_PATTERN_MAX) {
            sbb_reply_err(c, "-ERR invalid %s: longer than %u bytes",
                          pattern ? "pattern" : "channel", SBB_PATTERN_MAX);
            continue;
        }
        s = sbb_link_sub_find(c, pattern, a->argv[i], a->argl[i]);
        if (s != NULL)
            sbb_link_sub_del(s);
        sbb_reply_sub(c, kind, a->argv[i], a->argl[i]);
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
                     "*14\r\n$6\r\nserver\r\n$6\r\nshmbus\r\n$7\r\nversion\r\n$%zu\r\n%s\r\n"
                     "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:%llu\r\n$4\r\nmode\r\n$10\r\n"
                     "standalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
                     sizeof(SBB_REDIS_VERSION) - 1, SBB_REDIS_VERSION, (unsigned long long)c->id);

    sbb_reply(c, buf, (size_t)n);
}

static void resp_hello(struct sbd_bridge *b, struct sbb_conn *c, const struct sbb_argv *a)
{
    unsigned i = 2, setname = 0;

    if (a->argc >= 2 && !(a->argl[1] == 1 && a->argv[1][0] == '2')) {
        if (a->argl[1] == 1 && a->argv[1][0] == '3')
            sbb_reply_str(c, "-NOPROTO unsupported protocol version\r\n");
        else
            sbb_reply_str(c, "-ERR Protocol version is not an integer or out of range\r\n");
        return;
    }
    for (; i < a->argc; i++) {
        if (arg_is(a, i, "AUTH") && i + 2 < a->argc) {
            if (b->cfg->bridge_token[0] == '\0' || !arg_is(a, i + 1, "default") ||
                !sbb_admit_token_ok(b, a->argv[i + 2], a->argl[i + 2])) {
                sbb_reply_str(c,
                              "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
                if (b->cfg->bridge_token[0] != '\0')
                    sbb_admit_auth_wrong(b, c); /* a guess, not a client without a token */
                return;
            }
            sbb_admit_auth_ok(c);
            i += 2;
        } else if (arg_is(a, i, "SETNAME") && i + 1 < a->argc) {
            setname = ++i;
            if (!name_ok(a->argv[i], a->argl[i])) {
                sbb_reply_str(c, NAME_ERR);
                return;
            }
        } else {
            sbb_reply_err(c, "-ERR Syntax error in HELLO option '%.*s'",
                          arg_quote(a, i, SBB_QUOTE_NAME), a->argv[i]);
            return;
        }
    }
    if (b->cfg->bridge_token[0] != '\0' && !c->authed) {
        sbb_reply_str(c, "-NOAUTH HELLO must be called with the client already authenticated, "
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
            sbb_reply_str(c, NAME_ERR);
        } else {
            set_name(c, a->argv[2], a->argl[2]);
            sbb_reply_str(c, "+OK\r\n");
        }
    } else if (arg_is(a, 1, "GETNAME") && a->argc == 2) {
        if (c->name[0] == '\0')
            sbb_reply_str(c, "$-1\r\n");
        else
            sbb_reply_bulk(c, c->name, strlen(c->name));
    } else if (arg_is(a, 1, "ID") && a->argc == 2) {
        sbb_reply_int(c, (long long)c->id);
    } else if (arg_is(a, 1, "SETINFO") && a->argc == 4) {
        sbb_reply_str(c, "+OK\r\n");
    } else if (arg_is(a, 1, "REPLY") && a->argc == 3) {
        if (arg_is(a, 2, "ON")) {
            c->reply = SBB_REPLY_ON;
            sbb_reply_str(c, "+OK\r\n");
        } else if (arg_is(a, 2, "OFF")) {
            c->reply = SBB_REPLY_OFF;
        } else if (arg_is(a, 2, "SKIP")) {
            if (c->reply == SBB_REPLY_ON)
                c->reply = SBB_REPLY_SKIP;
        } else {
            sbb_reply_str(c, "-ERR syntax error\r\n");
        }
    } else {
        sbb_reply_err(c, "-ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
                      arg_quote(a, 1, SBB_QUOTE_NAME), a->argv[1]);
    }
}

static void resp_unknown(struct sbb_conn *c, const struct sbb_argv *a)
{
    char msg[400];
    int n = snprintf(msg, sizeof(msg), "-ERR unknown command '%.*s', with args beginning with: ",
                     arg_quote(a, 0, SBB_QUOTE_NAME), a->argv[0]);

    for (unsigned i = 1; i < a->argc && n < SBB_UNKNOWN_TEXT; i++)
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "'%.*s' ", arg_quote(a, i, SBB_QUOTE_ARG),
                      a->argv[i]);
    sbb_reply_err(c, "%s", msg);
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
    unsigned min_args, max_args; /* argument counts, the name included */
    unsigned flags;              /* enum resp_cmd_flag */
};

/* Where a RESP command may run besides the usual (authenticated, without
 * subscriptions). */
enum resp_cmd_flag {
    RESP_CMD_BEFORE_AUTH = 1u << 0, /* allowed before AUTH */
    RESP_CMD_SUBSCRIBED = 1u << 1,  /* allowed with subscriptions (RESP2's subscribed mode) */
};

static int cmd_quit(const struct resp_call *r)
{
    struct sbb_conn *c = r->c;
    struct sbb_sub *s;

    /* Nothing after +OK, as Redis: no more deliveries. */
    sbb_rlist_each (s, nx, &c->subs, struct sbb_sub, cnode)
        sbb_link_sub_del(s);
    sbb_reply_str(c, "+OK\r\n");
    sbb_conn_finish(c);
    return SBB_RUN_OK;
}

static int cmd_auth(const struct resp_call *r)
{
    struct sbd_bridge *b = r->io->b;
    struct sbb_conn *c = r->c;
    const struct sbb_argv *a = r->a;

    if (b->cfg->bridge_token[0] == '\0') {
        sbb_reply_str(c, "-ERR AUTH <password> called without any password configured for the "
                         "default user. Are you sure your configuration is correct?\r\n");
    } else if ((a->argc == 3 && !arg_is(a, 1, "default")) ||
               !sbb_admit_token_ok(b, a->argv[a->argc - 1], a->argl[a->argc - 1])) {
        sbb_reply_str(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        sbb_admit_auth_wrong(b, c);
    } else {
        sbb_admit_auth_ok(c);
        sbb_reply_str(c, "+OK\r\n");
    }
    return SBB_RUN_OK;
}

static int cmd_hello(const struct resp_call *r)
{
    resp_hello(r->io->b, r->c, r->a);
    return SBB_RUN_OK;
}

static int cmd_subscribe(const struct resp_call *r)
{
    return resp_subscribe(r->io, r->c, r->a, arg_is(r->a, 0, "PSUBSCRIBE"));
}

static int cmd_unsubscribe(const struct resp_call *r)
{
    resp_unsubscribe(r->c, r->a, arg_is(r->a, 0, "PUNSUBSCRIBE"));
    return SBB_RUN_OK;
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
        sbb_reply_str(c, "+PONG\r\n");
    } else if (c->nsubs == 0) {
        sbb_reply_bulk(c, msg, len);
    } else if ((buf = malloc(n)) == NULL) {
        sbb_reply_str(c, "-ERR out of memory\r\n");
    } else {
        memcpy(buf, pong, sizeof(pong) - 1);
        sbb_resp_bulk(buf + sizeof(pong) - 1, msg, len);
        sbb_reply(c, buf, n);
        free(buf);
    }
    return SBB_RUN_OK;
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
    if (sbb_publish(r->io, r->c, &pub) == SBB_RUN_PAUSE)
        return SBB_RUN_PAUSE;
    if (pub.receivers < 0)
        sbb_reply_err(r->c, "-ERR %s", why);
    else
        sbb_reply_int(r->c, pub.receivers);
    return SBB_RUN_OK;
}

static int cmd_reset(const struct resp_call *r)
{
    struct sbb_conn *c = r->c;
    struct sbb_sub *s;

    sbb_rlist_each (s, nx, &c->subs, struct sbb_sub, cnode)
        sbb_link_sub_del(s);
    c->reply = SBB_REPLY_ON;
    sbb_reply_str(c, "+RESET\r\n");
    return SBB_RUN_OK;
}

static int cmd_client(const struct resp_call *r)
{
    resp_client(r->c, r->a);
    return SBB_RUN_OK;
}

static int cmd_echo(const struct resp_call *r)
{
    sbb_reply_bulk(r->c, r->a->argv[1], r->a->argl[1]);
    return SBB_RUN_OK;
}

static int cmd_select(const struct resp_call *r)
{
    if (r->a->argl[1] == 1 && r->a->argv[1][0] == '0')
        sbb_reply_str(r->c, "+OK\r\n");
    else
        sbb_reply_str(r->c, "-ERR DB index is out of range\r\n");
    return SBB_RUN_OK;
}

static int cmd_command(const struct resp_call *r)
{
    sbb_reply_str(r->c, "*0\r\n"); /* redis-cli asks for command docs; there are none */
    return SBB_RUN_OK;
}

/* INFO: what client libraries look at on connecting (ioredis reads
 * "loading" before it says it is ready). */
static int cmd_info(const struct resp_call *r)
{
    static const char info[] =
        "# Server\r\nredis_version:" SBB_REDIS_VERSION "\r\nredis_mode:standalone\r\n"
        "server_name:shmbus\r\n\r\n# Persistence\r\nloading:0\r\n";

    sbb_reply_bulk(r->c, info, sizeof(info) - 1);
    return SBB_RUN_OK;
}

#define ANY_ARGS SBB_ARGV_MAX

static const struct resp_cmd resp_cmds[] = {
    {.name = "PUBLISH", .run = cmd_publish, .min_args = 3, .max_args = 3},
    {.name = "SUBSCRIBE",
     .run = cmd_subscribe,
     .min_args = 2,
     .max_args = ANY_ARGS,
     .flags = RESP_CMD_SUBSCRIBED},
    {.name = "PSUBSCRIBE",
     .run = cmd_subscribe,
     .min_args = 2,
     .max_args = ANY_ARGS,
     .flags = RESP_CMD_SUBSCRIBED},
    {.name = "UNSUBSCRIBE",
     .run = cmd_unsubscribe,
     .min_args = 1,
     .max_args = ANY_ARGS,
     .flags = RESP_CMD_SUBSCRIBED},
    {.name = "PUNSUBSCRIBE",
     .run = cmd_unsubscribe,
     .min_args = 1,
     .max_args = ANY_ARGS,
     .flags = RESP_CMD_SUBSCRIBED},
    {.name = "PING", .run = cmd_ping, .min_args = 1, .max_args = 2, .flags = RESP_CMD_SUBSCRIBED},
    {.name = "QUIT",
     .run = cmd_quit,
     .min_args = 1,
     .max_args = ANY_ARGS,
     .flags = RESP_CMD_BEFORE_AUTH | RESP_CMD_SUBSCRIBED},
    {.name = "AUTH",
     .run = cmd_auth,
     .min_args = 2,
     .max_args = 3,
     .flags = RESP_CMD_BEFORE_AUTH | RESP_CMD_SUBSCRIBED},
    {.name = "HELLO",
     .run = cmd_hello,
     .min_args = 1,
     .max_args = ANY_ARGS,
     .flags = RESP_CMD_BEFORE_AUTH},
    {.name = "RESET", .run = cmd_reset, .min_args = 1, .max_args = 1, .flags = RESP_CMD_SUBSCRIBED},
    {.name = "CLIENT", .run = cmd_client, .min_args = 2, .max_args = ANY_ARGS},
    {.name = "ECHO", .run = cmd_echo, .min_args = 2, .max_args = 2},
    {.name = "SELECT", .run = cmd_select, .min_args = 2, .max_args = 2},
    {.name = "COMMAND", .run = cmd_command, .min_args = 1, .max_args = ANY_ARGS},
    {.name = "INFO", .run = cmd_info, .min_args = 1, .max_args = ANY_ARGS},
};

int sbb_cmd_resp_run(struct sbb_io *io, struct sbb_conn *c, const struct sbb_argv *a)
{
    const struct resp_call call = {.io = io, .c = c, .a = a};
    const struct resp_cmd *cmd = NULL;

    if (a->argc == 0)
        return SBB_RUN_OK;
    for (size_t i = 0; i < sizeof(resp_cmds) / sizeof(resp_cmds[0]) && cmd == NULL; i++)
        if (arg_is(a, 0, resp_cmds[i].name))
            cmd = &resp_cmds[i];
    /* Checked in Redis's order. */
    if (cmd == NULL) {
        resp_unknown(c, a);
    } else if (a->argc < cmd->min_args || a->argc > cmd->max_args) {
        reply_arity(c, a);
    } else if (!(cmd->flags & RESP_CMD_BEFORE_AUTH) && io->b->cfg->bridge_token[0] != '\0' &&
               !c->authed) {
        sbb_reply_str(c, "-NOAUTH Authentication required.\r\n");
    } else if (!(cmd->flags & RESP_CMD_SUBSCRIBED) && c->nsubs > 0) {
        char name[32];

        cmd_lower(a, name, sizeof(name));
        sbb_reply_err(c,
                      "-ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                      "QUIT / RESET are allowed in this context",
                      name);
    } else {
        return cmd->run(&call);
    }
    return SBB_RUN_OK;
}
