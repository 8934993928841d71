/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec.h - the worker pool of `shmbus sub --ack --exec CMD`: it takes the
 * messages of an acknowledging group member, runs `sh -c CMD` for each
 * (payload on standard input, SHMBUS_TOPIC, SHMBUS_SEQ and SHMBUS_DELIVERY
 * in the environment), up to a number at once, and acknowledges a message
 * when its command exits 0 and nacks it otherwise.
 */
#ifndef SHMBUS_TOOLS_EXEC_H
#define SHMBUS_TOOLS_EXEC_H

#include <stdint.h>

#include "shmbus/shmbus.h"

/* What the pool runs and how. */
struct cli_exec_conf {
    const char *topic;      /* for SHMBUS_TOPIC and messages */
    char *cmd;              /* run as `sh -c cmd` */
    unsigned inflight;      /* commands at once, 1..SHMBUS_INFLIGHT_MAX */
    uint64_t count;         /* messages to take, then finish (0: no limit) */
    int64_t retry_delay_ns; /* shmbus_nack()'s delay for a failed command */
};

/*
 * Run the pool on the acknowledging member @p s until SIGINT or SIGTERM
 * (then the running commands finish, are acknowledged or nacked, and it
 * returns), --count messages, or an error. A second signal stops waiting:
 * it returns at once, leaving the commands running, and the caller's
 * shmbus_sub_destroy() gives their messages back to the group.
 * Installs its own SIGINT, SIGTERM and SIGCHLD handlers.
 * @param buf  receive buffer of @p cap bytes (the topic's max_msg_size).
 * @return an exit status (CLI_EXIT_OK or CLI_EXIT_FAIL, reported).
 */
int cli_exec_run(shmbus_sub *s, const struct cli_exec_conf *c, void *buf, size_t cap);

#endif /* SHMBUS_TOOLS_EXEC_H */
