/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control path: the bus's AF_UNIX socket, an epoll loop over it, the
 * client connections and a signalfd (control.c), and the handlers of each
 * request (control_cmd.c, docs/protocol.md). One thread runs it; it is the
 * registry's only updater.
 */
#ifndef SHMBUSD_CONTROL_H
#define SHMBUSD_CONTROL_H

#include <signal.h>

#include "bridge/bridge.h"
#include "config.h"
#include "fed/fed.h"
#include "reaper.h"
#include "rec/rec.h"
#include "registry.h"

/* Connections that may wait for their hello at once. */
#define SBD_WAITING_MAX 64

struct sbd_control {
    const struct sbd_config *cfg;
    struct sbd_registry *reg;
    struct sbd_bridge *bridge; /* NULL without --bridge */
    struct sbd_fed *fed;       /* NULL without --nats */
    struct sbd_rec *rec;       /* NULL without --record */
    struct sbd_reaper reaper;
    int lfd;          /* listening socket */
    int epfd;         /* epoll instance */
    int sigfd;        /* SIGTERM and SIGINT */
    uint32_t clients; /* sessions that said hello */
    /* Those of another uid than the daemon's (sbd_control_client_room()). */
    uint32_t clients_other;
    uint32_t waiting; /* sessions that have not said hello yet */
    /* Those sessions, in no order (control thread only). */
    struct sbd_session *waiters[SBD_WAITING_MAX];
    /* Accepting paused (out of descriptors) until this CLOCK_MONOTONIC
     * time, 0 if not; and when to log the next such pause. */
    uint64_t accept_resume_ns, accept_log_ns;
};

/*
 * Block SIGTERM and SIGINT, the stop signals, in the calling thread and
 * fill @p set with them. main() calls it before it starts any thread, so
 * that every thread, liburcu's and libnats' included, inherits the mask:
 * a library thread that sets its own mask only once it runs would take a
 * stop signal with its default action in between, killing the daemon
 * before it cleans up. The stop signals reach only the control loop's
 * signalfd. @return 0 or -errno.
 */
int sbd_control_block_signals(sigset_t *set);

/*
 * Bind the socket at cfg->sock_path (replacing a stale one: the caller
 * holds the bus lock), set its owner and mode, and prepare the loop, which
 * reads the stop signals (sbd_control_block_signals(), called before) from
 * a signalfd. @return 0 or -errno.
 */
int sbd_control_open(struct sbd_control *c, const struct sbd_config *cfg, struct sbd_registry *reg);

/* Serve until SIGTERM or SIGINT. @return 0, or -errno if epoll fails. */
int sbd_control_run(struct sbd_control *c);

/* Close the sockets and remove the socket file. */
void sbd_control_close(struct sbd_control *c);

#endif
