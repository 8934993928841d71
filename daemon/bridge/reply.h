/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command replies, in RESP or JSON lines: gathered per connection in the
 * I/O thread's reply buffer (struct sbb_io) and moved to the connection's
 * output in one go (one lock for all the replies to a read's pipelined
 * commands). I/O thread only.
 */
#ifndef SHMBUSD_BRIDGE_REPLY_H
#define SHMBUSD_BRIDGE_REPLY_H

#include <stddef.h>

#include "json.h"
#include "state.h"

/* Replies gathered before they go to the output (the size of io->rep). */
#define SBB_REP_MAX 16384u

/* Move the replies gathered for one connection to its output. */
void sbb_reply_flush(struct sbb_io *io);
/* Queue a command reply, honouring CLIENT REPLY OFF and SKIP. */
void sbb_reply(struct sbb_conn *c, const void *data, size_t len);
void sbb_reply_str(struct sbb_conn *c, const char *s);
/* "-ERR ...\r\n" from a format; CR and LF in it become spaces. */
void sbb_reply_err(struct sbb_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbb_reply_int(struct sbb_conn *c, long long v);
void sbb_reply_bulk(struct sbb_conn *c, const void *data, size_t len);
/* A (p)(un)subscribe confirmation: [kind, name or nil, count], sent
 * whatever CLIENT REPLY says. @p len is at most SBB_PATTERN_MAX. */
void sbb_reply_sub(struct sbb_conn *c, const char *kind, const char *name, size_t len);
/* A JSON reply line: {"ok":..,"command":..,["id":..,]<extra>}. @p extra is
 * either "" or starts with a comma. */
void sbb_reply_json(struct sbb_conn *c, const char *cmd, const struct sbb_jstr *id, int ok,
                    const char *extra);
/* A JSON error reply with a message. */
void sbb_reply_json_err(struct sbb_conn *c, const char *cmd, const struct sbb_jstr *id,
                        const char *msg);
/* After a subscription's reply: flush the replies, so that it goes out
 * before the deliveries, and start them. */
void sbb_reply_sub_go(struct sbb_io *io, struct sbb_sub *s);

#endif
