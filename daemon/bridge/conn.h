/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bridge's connections: their lifetime on the I/O thread (accepted,
 * read and run, paused for back-pressure, closed) and the calls other
 * parts of the bridge make to end one.
 */
#ifndef SHMBUSD_BRIDGE_CONN_H
#define SHMBUSD_BRIDGE_CONN_H

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "state.h"

/* The epoll events @p c wants. Under c->mu. A paused or closing
 * connection reads nothing, and asks not even for EPOLLRDHUP, which a
 * client that half-closed would report over and over (EPOLLHUP and
 * EPOLLERR are reported whatever the mask). */
static inline uint32_t sbb_conn_events(const struct sbb_conn *c)
{
    uint32_t ev = c->epout ? EPOLLOUT : 0u;

    if (!c->paused && !c->closing)
        ev |= EPOLLIN | EPOLLRDHUP;
    return ev;
}

/* Stop reading @p c and close it once its output is written. I/O thread. */
void sbb_conn_finish(struct sbb_conn *c);
/* End @p c with an error, whatever CLIENT REPLY says: "-@p resp" in RESP,
 * {"ok":false,"error":@p json} in JSON; then sbb_conn_finish(). I/O
 * thread. */
void sbb_conn_fail(struct sbb_conn *c, const char *resp, const char *json);

/* Bytes of one socket read (the size of io->rbuf). */
#define SBB_READ_CHUNK 65536u

/* A new connection on @p fd, whose peer is @p sa: listed and watched.
 * @return 0, or -1 (the caller closes @p fd). */
int sbb_conn_new(struct sbd_bridge *b, int fd, const struct sockaddr_storage *sa, socklen_t sl);
/* Close @p c: its subscriptions go, it is freed after a grace period. */
void sbb_conn_close(struct sbb_io *io, struct sbb_conn *c);
/* One epoll event of @p c. Input is read even when the peer hung up:
 * commands it sent before closing still run. */
void sbb_conn_event(struct sbb_io *io, struct sbb_conn *c, uint32_t events);

/* Retry the paused connections (a publish into a full topic, a pattern
 * being linked), at most once a millisecond. */
void sbb_conn_retry_paused(struct sbb_io *io);
/* Give back the large buffers of connections that drained them. */
void sbb_conn_trim_all(struct sbd_bridge *b);
/* Close the connections past --bridge-auth-timeout or --bridge-cmd-timeout. */
void sbb_conn_expire_all(struct sbb_io *io);
/* Close the connections marked for holding the most memory (mem.h). */
void sbb_conn_evict_marked(struct sbb_io *io);

#endif
