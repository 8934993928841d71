/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who may stay on the bridge (admit.c): the verdict on a new
 * connection's peer (peer.h) and the refusal of one the bus does
 * not serve; an HTTP request closed before it runs; wrong tokens counted
 * up to a close; a command not complete in --bridge-cmd-timeout. Each
 * is counted in the bridge's totals and logged. I/O thread only.
 */
#ifndef SHMBUSD_BRIDGE_ADMIT_H
#define SHMBUSD_BRIDGE_ADMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct sbd_bridge;
struct sbb_conn;

/* Wrong tokens that close a connection. */
#define SBB_AUTH_TRIES 3u

/* Log lines of one kind a second; the rest are counted and told in one
 * line, so a port scanner cannot flood the log. */
#define SBB_WARN_PER_S 10u

/* The kinds of access log lines, each limited on its own. */
enum sbb_warn_kind {
    SBB_WARN_REFUSED, /* a peer refused */
    SBB_WARN_HTTP,    /* HTTP closed */
    SBB_WARN_AUTH,    /* closed at its third wrong token */
    SBB_WARN_CMD,     /* a command not complete in time */
    SBB_WARN_KINDS
};

/* One kind's lines in the current second. */
struct sbb_warn_limit {
    uint64_t start_ms;   /* when the second began (sb_mono_ns() in ms) */
    unsigned lines;      /* logged in it */
    uint64_t suppressed; /* not logged in it */
};

/* Judge the peer of the new connection @p c, whose remote address is
 * @p sa (peer.h), unless the bridge has a token: set c->who and
 * c->authed, and log a refusal. May block a while (peer.h). */
void sbb_admit_judge(struct sbd_bridge *b, struct sbb_conn *c, const struct sockaddr_storage *sa);

/* Answer @p c, a peer the bridge does not serve without a token, with why
 * (in its protocol: RESP until it sent something) and close it once that
 * is written. Logged when it connected. */
void sbb_admit_refuse(struct sbb_conn *c);

/*
 * Does the first command of a RESP connection, at @p buf, look like HTTP:
 * a request line ("GET ", "POST ", "PUT ", "HEAD ", "OPTIONS ", ...) or a
 * header line ("Host: x")? A browser made to post to the bridge's port
 * sends one (cross-protocol scripting), and its body could carry commands.
 * Case-insensitive, as Redis treats "POST" and "Host:" (securityWarningCommand).
 * @return 1 if so, 0 if not, -1 while the first word is incomplete.
 */
int sbb_admit_http_like(const char *buf, size_t len);

/* Is the command named by @p name (@p len bytes) HTTP in a later place of
 * the stream: "POST", or a header name ending in ':'? */
int sbb_admit_http_word(const char *name, size_t len);

/* @p c sent HTTP (sbb_admit_http_like(), sbb_admit_http_word()): log it,
 * showing @p p (@p left bytes: the first line, or a later command's name),
 * and close without a reply; nothing from it on runs. */
void sbb_admit_http(struct sbd_bridge *b, struct sbb_conn *c, const char *p, size_t left);

/* A wrong token from @p c, after its error reply: counted, and the
 * connection closed once that is written at the SBB_AUTH_TRIES-th. */
void sbb_admit_auth_wrong(struct sbd_bridge *b, struct sbb_conn *c);

/* @p c's command stayed incomplete past --bridge-cmd-timeout: counted,
 * logged and answered; the caller closes it. */
void sbb_admit_cmd_expired(struct sbd_bridge *b, struct sbb_conn *c);

/* Is @p p (@p len bytes) the configured token? Constant time in the
 * token's bytes. */
int sbb_admit_token_ok(const struct sbd_bridge *b, const char *p, size_t len);
/* @p c gave the right token: it may run every command. */
void sbb_admit_auth_ok(struct sbb_conn *c);

/* Tell the access log lines of a second that ended that were not logged.
 * Every tick of the I/O thread. */
void sbb_admit_tick(struct sbd_bridge *b);

#endif
