/*
 * The bridge's connections: their lifetime on the I/O thread (accepted,
 * read and run, paused for back-pressure, closed) and the calls other
 * parts of the bridge make to end one.
 */
#ifndef SHMBUSD_BRIDGE_CONN_H
#define SHMBUSD_BRIDGE_CONN_H

#include <stdint.h>
#include <sys/epoll.h>

#include "state.h"

/* The epoll events @p c wants. Under c->mu. A paused or closing
 * connection reads nothing, and asks not even for EPOLLRDHUP, which a
 * client that half-closed would report over and over (EPOLLHUP and
 * EPOLLERR are reported whatever the mask). */
static inline uint32_t sbb_events(const struct sbb_conn *c)
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

#endif
