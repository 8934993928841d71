/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TCP bridge: remote clients subscribe and publish on the bus's topics
 * over TCP, in JSON lines or the Redis protocol (docs/protocol.md). It runs
 * in threads of its own beside the control thread: one I/O thread (an
 * epoll loop over the listening socket and the connections; it parses
 * commands and publishes) and pump threads that read the topics remote
 * clients subscribe to and copy each message to their sockets.
 *
 * Each topic with remote subscribers has one subscriber slot of the
 * bridge's (one cursor, whatever the number of remote clients), and a list
 * of the connections to deliver to, RCU-protected (liburcu urcu-memb): the
 * I/O thread adds and removes subscriptions while the pumps deliver,
 * without a lock between them. Each connection has a bounded output buffer;
 * a client that lets it fill is disconnected, so no client slows a
 * publisher or the other clients.
 */
#ifndef SHMBUSD_BRIDGE_H
#define SHMBUSD_BRIDGE_H

#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "registry.h"
#include "shmbus/monitor.h"

struct sbd_bridge;

/* The most subscriptions --bridge-max-subs may allow one connection: the
 * channels one SUBSCRIBE can carry (resp.h SBB_ARGV_MAX). */
#define SBD_BRIDGE_SUBS_MAX 1024u

/* Listen on cfg->bridge_host:bridge_port and start the threads. Installs
 * the registry's on_create hook. Call before the control loop runs.
 * @return 0 or -errno (the address cannot be bound, out of memory). */
int sbd_bridge_start(const struct sbd_config *cfg, struct sbd_registry *reg,
                     struct sbd_bridge **out);

/* Stop the threads, close every connection and give back the bridge's
 * slots and publisher records. Before the registry goes. Accepts NULL. */
void sbd_bridge_stop(struct sbd_bridge *b);

/* Is the peer of the accepted TCP socket @p fd, whose remote address is
 * @p addr, one the bridge serves without a token: a loopback peer whose
 * socket's uid the bus allows (bridge/peer.h)? For the other TCP doors
 * (the metrics endpoint), so that every door judges peers alike; if not,
 * why, for door @p door ("metrics endpoint") and its token option @p opt,
 * as one line in @p why (@p cap bytes). May block as sbb_peer_check()
 * does. Any thread. @return 1 if so, else 0. */
int sbd_bridge_peer_allowed(const struct sbd_config *cfg, int fd,
                            const struct sockaddr_storage *addr, const char *door, const char *opt,
                            char *why, size_t cap);

/* The bridge for `shmbus stat`: its totals into @p info, and up to @p cap
 * of its connections with ids above @p after into @p conns, in order of
 * id (@p conns may be NULL when @p cap is 0: the totals only). Any
 * registered thread (the control thread). Accepts NULL (no bridge: zero
 * totals). @return the connections stored. */
unsigned sbd_bridge_stat(struct sbd_bridge *b, uint64_t after, shmbus_bridge_info *info,
                         shmbus_bridge_conn *conns, unsigned cap);

#endif
