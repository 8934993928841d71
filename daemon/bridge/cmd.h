/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The commands remote clients run: JSON lines (cmd_json.c) and RESP2
 * (cmd_resp.c). Each runs one parsed command of a connection and answers
 * it through reply.h. I/O thread only.
 */
#ifndef SHMBUSD_BRIDGE_CMD_H
#define SHMBUSD_BRIDGE_CMD_H

#include <stddef.h>

#include "resp.h"
#include "state.h"

/* The longest pattern (and unsubscribed channel name) a client may send. */
#define SBB_PATTERN_MAX 256u

/* What running a command did to the connection. */
enum sbb_run {
    SBB_RUN_OK = 0,   /* done: the next command may run */
    SBB_RUN_PAUSE = 1 /* it must wait (a full reliable topic, a pattern being linked):
                       * left unread, run again later */
};

/* Run the JSON line @p line (@p len bytes, without its newline) of @p c.
 * @return enum sbb_run. */
int sbb_cmd_json_run(struct sbb_io *io, struct sbb_conn *c, const char *line, size_t len);
/* Run the RESP command @p a of @p c. @return enum sbb_run. */
int sbb_cmd_resp_run(struct sbb_io *io, struct sbb_conn *c, const struct sbb_argv *a);

#endif
